"""One training step's loss: conditions from a batch, noising, prediction, (weighted) MSE.

Loss: mean squared error of the model config's prediction — the noise (SD1.5-inpainting's epsilon
parameterisation) or ``v`` — over the whole latent video, as Moore-AnimateAnyone and AnimateDiff train (no
extra weight on the generated region). Optional min-SNR-γ weighting (``min(SNR, γ) / SNR`` per video for
epsilon, ``min(SNR, γ) / (SNR + 1)`` for v) and noise offset (``offset · N(0, 1)`` per video and channel
added to the noise).

All randomness of a step (noise, timesteps, dropout) comes from a generator seeded with
``(seed, step, micro-batch, process)``, so a resumed run on the same kind of device draws exactly the same
values (the noise itself is drawn on the training device, from a seed that generator gives).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from dynascene_core.camera import CameraTrajectory, plucker_embedding
from dynascene_core.conditioning import (LatentCodec, denoiser_input, encode_frames, foreground_pixels,
                                         generation_mask)
from dynascene_core.sampling.schedule import training_scheduler


@dataclass
class LossSettings:
    stage: int
    uncond_dropout: float = 0.1
    noise_offset: float = 0.0
    snr_gamma: float | None = None
    vae_chunk: int = 8
    camera: bool = True
    """Stage II: give the networks the Plücker condition (``False``: the camera ablation, no camera input)."""
    prediction_type: str = "epsilon"
    """The model config's: the loss target is the noise (``epsilon``) or ``v = √ᾱ·ε − √(1−ᾱ)·x₀``."""
    timestep_sampling: str = "uniform"
    """How training timesteps are drawn: ``uniform`` over the schedule (the paper's), or one of diffusers' SD3
    densities (``logit_normal``: ``t/1000 = sigmoid(N(logit_mean, logit_std))``, a positive mean favours the noisy
    end, where a video's layout and camera motion are laid down; ``mode``)."""
    logit_mean: float = 0.0
    logit_std: float = 1.0
    mode_scale: float = 1.29


def step_generator(seed: int, step: int, micro: int, rank: int) -> torch.Generator:
    """CPU generator for one micro-batch; distinct per process and step, identical on resume."""
    mixed = (seed * 1_000_003 + step) * 1_009 + micro
    return torch.Generator("cpu").manual_seed((mixed * 65_537 + rank) % (2 ** 63))


def batch_plucker(c2w: torch.Tensor, intrinsics: torch.Tensor, height: int, width: int, device) -> torch.Tensor:
    """``c2w (B, F, 4, 4)``, ``intrinsics (B, F, 4)`` → Plücker ``(B, F, 6, H, W)`` float32 on ``device``."""
    return torch.stack([plucker_embedding(CameraTrajectory(c.double(), k.double()), height, width, device=device)
                        for c, k in zip(c2w, intrinsics)])


class LossComputer:
    """Turns batches into losses; holds the frozen encoders and the noise schedule."""

    def __init__(self, codec: LatentCodec, image_encoder, settings: LossSettings):
        self.codec = codec
        self.image_encoder = image_encoder
        self.settings = settings
        self.scheduler = training_scheduler(prediction_type=settings.prediction_type)
        self.alphas_cumprod = self.scheduler.alphas_cumprod.clone()

    @torch.no_grad()
    def conditions(self, batch: dict, device) -> dict:
        """Latents and conditions of a batch: ``latents (B,4,F,h,w)``, ``gen_mask (B,1,F,h,w)``,
        ``fg_latent (B,4,F,h,w)``, ``scene_latent (B,4,h,w)``, ``image_embeds (B,1,D)``,
        ``plucker (B,F,6,H,W)`` (stage II) or None."""
        pixels = batch["pixels"].to(device)            # (B, F, 3, H, W)
        alpha = batch["alpha"].to(device)              # (B, F, 1, H, W)
        scene = batch["scene"].to(device)              # (B, 3, H, W)
        b, f, _, height, width = pixels.shape

        def video(x: torch.Tensor) -> torch.Tensor:   # (B*F, C, h, w) -> (B, C, F, h, w)
            return x.reshape(b, f, *x.shape[1:]).transpose(1, 2)

        chunk = self.settings.vae_chunk
        latents = video(encode_frames(self.codec, pixels.flatten(0, 1), chunk))
        size = tuple(latents.shape[-2:])
        fg_latent = video(encode_frames(self.codec, foreground_pixels(pixels, alpha).flatten(0, 1), chunk))
        image_embeds = self.image_encoder(scene).float()
        return {
            "latents": latents,
            "fg_latent": fg_latent,
            "gen_mask": video(generation_mask(alpha.flatten(0, 1), size)),
            "scene_latent": encode_frames(self.codec, scene, chunk),
            "image_embeds": image_embeds,
            "plucker": (batch_plucker(batch["c2w"], batch["intrinsics"], height, width, device)
                        if self.settings.stage == 2 and self.settings.camera else None),
        }

    def sample_timesteps(self, count: int, generator: torch.Generator) -> torch.Tensor:
        """``(count,)`` int64 training timesteps in ``[0, 1000)``, drawn as ``settings.timestep_sampling`` says."""
        total = self.scheduler.config.num_train_timesteps
        if self.settings.timestep_sampling == "uniform":
            return torch.randint(0, total, (count,), generator=generator)
        from diffusers.training_utils import compute_density_for_timestep_sampling

        share = compute_density_for_timestep_sampling(
            self.settings.timestep_sampling, count, logit_mean=self.settings.logit_mean,
            logit_std=self.settings.logit_std, mode_scale=self.settings.mode_scale, generator=generator)
        return (share * total).long().clamp(0, total - 1)

    def loss(self, networks, batch: dict, generator: torch.Generator, device, autocast) -> torch.Tensor:
        """Scalar training loss for ``batch`` (see module docstring)."""
        cond = self.conditions(batch, device)
        latents = cond["latents"]
        b = latents.shape[0]
        # Small draws on the CPU generator; the noise on the training device from a seed drawn there (drawing
        # B·C·F·h·w normals on the host cost the small model's host-bound step 9 ms at batch 64 on an H200 machine).
        timesteps = self.sample_timesteps(b, generator)
        # Unconditional videos: as many as independent draws give, placed first. A batch's examples are
        # independent draws (training.data.ExampleBatchSampler), so this is the distribution of independent
        # dropout, and reference attention runs on two slices of the batch instead of one per run of equal flags
        # (about 2·p·B: the host-bound small model's step grew with the batch, 347 -> 592 ms from B = 64 to 256).
        dropped = torch.arange(b) < int((torch.rand(b, generator=generator) < self.settings.uncond_dropout).sum())
        noise_seed = int(torch.randint(0, 2 ** 62, (1,), generator=generator))
        on_device = torch.Generator(latents.device).manual_seed(noise_seed)
        noise = torch.randn(latents.shape, generator=on_device, device=latents.device)
        if self.settings.noise_offset:
            noise += self.settings.noise_offset * torch.randn((b, latents.shape[1], 1, 1, 1), generator=on_device,
                                                              device=latents.device)
        timesteps = timesteps.to(device)
        noisy = self.scheduler.add_noise(latents, noise, timesteps)
        sample = denoiser_input(noisy, cond["gen_mask"], cond["fg_latent"])
        with autocast():
            pred = networks(sample, timesteps, cond["image_embeds"], dropped, cond["scene_latent"], cond["plucker"])
        v_prediction = self.settings.prediction_type == "v_prediction"
        target = self.scheduler.get_velocity(latents, noise, timesteps) if v_prediction else noise
        per_video = F.mse_loss(pred.float(), target, reduction="none").mean(dim=(1, 2, 3, 4))
        if self.settings.snr_gamma:
            ac = self.alphas_cumprod.to(device)[timesteps]
            snr = ac / (1 - ac)
            per_video = per_video * torch.clamp(snr, max=self.settings.snr_gamma) / (snr + 1 if v_prediction else snr)
        return per_video.mean()
