"""Conversions between ComfyUI's types and the core library's, and progress reporting.

ComfyUI IMAGE is ``(B, H, W, 3)`` float in [0, 1] (video frames on B); MASK is ``(B, H, W)``.
The core uses frames ``(F, 3, H, W)`` and masks ``(F, 1, H, W)`` (1 = human).
"""

from __future__ import annotations


import torch

from dynascene_core.conditioning import LATENT_SCALE

from . import host


def image_to_frames(image: torch.Tensor, name: str = "image") -> torch.Tensor:
    """IMAGE ``(B, H, W, C)`` -> core frames ``(F, 3, H, W)`` float32 (alpha dropped, grey repeated)."""
    if image.ndim != 4 or image.shape[-1] not in (1, 3, 4):
        raise ValueError(f"{name}: expected an IMAGE batch (frames, height, width, channels 1/3/4), "
                         f"got shape {tuple(image.shape)}")
    frames = image[..., :3] if image.shape[-1] != 1 else image.expand(-1, -1, -1, 3)
    return frames.permute(0, 3, 1, 2).float().contiguous()


def frames_to_image(frames: torch.Tensor) -> torch.Tensor:
    """Core frames ``(F, 3, H, W)`` -> IMAGE ``(F, H, W, 3)`` float32 on the CPU, clamped to [0, 1]."""
    if frames.ndim != 4 or frames.shape[1] != 3:
        raise ValueError(f"expected core frames (frames, 3, height, width), got shape {tuple(frames.shape)}")
    return frames.detach().float().clamp(0, 1).permute(0, 2, 3, 1).cpu().contiguous()


def mask_to_core(mask: torch.Tensor, num_frames: int | None = None, name: str = "mask") -> torch.Tensor:
    """MASK ``(B, H, W)`` (or one ``(H, W)``) -> ``(F, 1, H, W)``; a single mask is repeated to ``num_frames``."""
    if mask.ndim == 2:
        mask = mask[None]
    if mask.ndim != 3:
        raise ValueError(f"{name}: expected a MASK (frames, height, width), got shape {tuple(mask.shape)}")
    if num_frames is not None and mask.shape[0] != num_frames:
        if mask.shape[0] != 1:
            raise ValueError(f"{name}: has {mask.shape[0]} frames but the video has {num_frames}")
        mask = mask.expand(num_frames, -1, -1)
    return mask[:, None].float().contiguous()


def core_to_mask(mask: torch.Tensor) -> torch.Tensor:
    """Core mask ``(F, 1, H, W)`` -> MASK ``(F, H, W)`` float32 on the CPU."""
    if mask.ndim != 4 or mask.shape[1] != 1:
        raise ValueError(f"expected a core mask (frames, 1, height, width), got shape {tuple(mask.shape)}")
    return mask[:, 0].detach().float().clamp(0, 1).cpu().contiguous()


def latents_to_host(latents: torch.Tensor) -> dict:
    """Core latents ``(1, 4, F, h, w)`` (scaled by 0.18215) -> host LATENT ``{"samples": (F, 4, h, w)}``, unscaled:
    ComfyUI's SD1.5 convention for video (frames on the batch axis), so its VAE Decode gives F frames."""
    if latents.ndim != 5 or latents.shape[0] != 1:
        raise ValueError(f"expected core latents (1, channels, frames, h, w), got shape {tuple(latents.shape)}")
    return {"samples": (latents[0].permute(1, 0, 2, 3) / LATENT_SCALE).float().cpu().contiguous()}


class ProgressReporter:
    """Callable passed to core loops as ``progress(step, total, x0_latent=None)``.

    Each call first honours Cancel (``throw_exception_if_processing_interrupted``), then moves the
    node's progress bar; with an SD1.5 latent ``(B, 4, F, h, w)`` it also shows the middle frame as a
    preview through the host's previewer (respecting the user's preview setting). Without a host it
    only counts steps.
    """

    def __init__(self, total: int, preview: bool = True):
        self.total = total
        self.step = 0
        self._bar = host.progress_bar(total)
        self._previewer = host.sd15_latent_previewer() if preview and self._bar is not None else None

    def __call__(self, step: int, total: int | None = None, x0_latent: torch.Tensor | None = None) -> None:
        host.check_interrupted()
        self.step = step
        if total is not None:
            self.total = total
        if self._bar is None:
            return
        preview = None
        if self._previewer is not None and x0_latent is not None:
            latent = x0_latent[:1, :, x0_latent.shape[2] // 2] if x0_latent.ndim == 5 else x0_latent[:1]
            preview = self._previewer.decode_latent_to_preview_image("JPEG", latent)
        self._bar.update_absolute(step, self.total, preview)
