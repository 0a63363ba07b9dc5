"""The denoising U-Net: SD1.5-inpainting U-Net + AnimateDiff-v2 motion modules (diffusers
``UNetMotionModel``), with reference attention in every spatial self-attention and a camera adaptor
on the first temporal attention of every motion module."""

from __future__ import annotations

import functools

import torch
from diffusers import UNetMotionModel
from diffusers.models.attention import BasicTransformerBlock
from diffusers.models.unets.unet_motion_model import AnimateDiffTransformer3D
from torch import nn

from .attention import (CameraAdaptorProcessor, ChunkedAttnProcessor, ControlState, ReferenceBank,
                        ReferenceReadProcessor, bank_grid, checkpoint_with_state, project_reference)
from .camera_encoder import level_sizes
from .config import DynaSceneConfig

_MOTION_BLOCK_TYPES = {
    "CrossAttnDownBlock2D": "CrossAttnDownBlockMotion",
    "DownBlock2D": "DownBlockMotion",
    "CrossAttnUpBlock2D": "CrossAttnUpBlockMotion",
    "UpBlock2D": "UpBlockMotion",
}


def motion_unet_kwargs(config: DynaSceneConfig) -> dict:
    """``UNetMotionModel`` kwargs equivalent to ``config.unet`` (a ``UNet2DConditionModel`` config)
    plus ``config.motion``; the spatial parameters keep the 2D U-Net's names and shapes."""
    u, m = config.unet, config.motion
    return {
        "sample_size": u["sample_size"],
        "in_channels": u["in_channels"],
        "out_channels": u["out_channels"],
        "down_block_types": tuple(_MOTION_BLOCK_TYPES[t] for t in u["down_block_types"]),
        "up_block_types": tuple(_MOTION_BLOCK_TYPES[t] for t in u["up_block_types"]),
        "block_out_channels": tuple(u["block_out_channels"]),
        "layers_per_block": u["layers_per_block"],
        "downsample_padding": u["downsample_padding"],
        "mid_block_scale_factor": u["mid_block_scale_factor"],
        "act_fn": u["act_fn"],
        "norm_num_groups": u["norm_num_groups"],
        "norm_eps": u["norm_eps"],
        "cross_attention_dim": u["cross_attention_dim"],
        "use_linear_projection": u["use_linear_projection"],
        "num_attention_heads": u["attention_head_dim"],  # diffusers' legacy SD1.5 naming
        "temporal_transformer_layers_per_block": m["motion_transformer_layers_per_block"],
        "motion_num_attention_heads": m["motion_num_attention_heads"],
        "motion_max_seq_length": m["motion_max_seq_length"],
        "use_motion_mid_block": m["use_motion_mid_block"],
    }


def _camera_scale(module_name: str, levels: int) -> int:
    """Camera scale feeding the motion module ``module_name``: down i -> i, mid -> last, up i -> last - i."""
    part, _, rest = module_name.partition(".")
    if part == "mid_block":
        return levels - 1
    index = int(rest.split(".")[0])
    return index if part == "down_blocks" else levels - 1 - index


FEED_FORWARD_PIECES = 4
"""Default slices of every feed-forward's batch (:meth:`DynaSceneDenoiser.feed_forward_chunks`)."""


@functools.lru_cache(maxsize=256)
def _slice_rows(total: int, pieces: int) -> int | None:
    """Rows per feed-forward slice: the largest divisor of ``total`` at most ``ceil(total / pieces)``
    (diffusers' chunking takes equal slices only); None (no slicing) for one piece or one row."""
    if pieces == 1 or total == 1:
        return None
    limit = -(-total // pieces)
    return max(d for d in range(1, limit + 1) if total % d == 0)


def skip_upsample_size_log_when_compiling() -> None:
    """Let ``torch.compile`` skip the one logger call of diffusers' ``UNetMotionModel.forward``: it logs
    "Forward upsample size ..." (at info level, not shown) for latents not divisible by 8 — 768x432's
    96x54 — and a logger call inside a graph is a graph break."""
    import torch._dynamo
    from diffusers.models.unets import unet_motion_model

    for name in ("ignore_logging_functions", "ignore_logger_methods"):  # torch's newer / older name
        ignored = getattr(torch._dynamo.config, name, None)
        if ignored is not None:
            ignored.add(unet_motion_model.logger.info)


class PerFrameGroupNorm(nn.GroupNorm):
    """GroupNorm with statistics per frame, as AnimateDiff, CameraCtrl and Moore-AnimateAnyone apply it
    in their motion modules (``(b f) c h w``).

    diffusers' ``AnimateDiffTransformer3D`` calls its norm on ``(b, c, f, h, w)``, which a plain GroupNorm
    normalises over all frames together; released motion-module weights only behave as trained with
    per-frame statistics. Same parameters (``weight``, ``bias``) as the GroupNorm it replaces.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 5:
            return super().forward(x)
        b, c, f, h, w = x.shape
        frames = x.transpose(1, 2).reshape(b * f, c, h, w)
        return super().forward(frames).reshape(b, f, c, h, w).transpose(1, 2)

    @classmethod
    def replacing(cls, norm: nn.GroupNorm) -> "PerFrameGroupNorm":
        """A per-frame norm that shares ``norm``'s parameters (and so its device, dtype and values)."""
        new = cls(norm.num_groups, norm.num_channels, norm.eps, norm.affine, device="meta")
        new.weight, new.bias = norm.weight, norm.bias
        return new


class _CheckpointableMotionModule(AnimateDiffTransformer3D):
    """A down/up-block motion module that checkpoints itself under diffusers' gradient checkpointing (which sets
    ``gradient_checkpointing`` on every module that has it): diffusers' down/up blocks checkpoint only their
    resnets, so the temporal transformers kept their activations over all frames, most of a stage-II step's
    memory. Same parameters and names as the module it replaces."""

    gradient_checkpointing = False

    def forward(self, hidden_states, *args, **kwargs):
        if torch.is_grad_enabled() and self.gradient_checkpointing:
            return self._gradient_checkpointing_func(functools.partial(super().forward, **kwargs), hidden_states,
                                                     *args)
        return super().forward(hidden_states, *args, **kwargs)


class _Identity(nn.Module):
    """A motion module that returns its input (takes the motion module's call signature)."""

    def forward(self, hidden_states, *args, **kwargs):
        return hidden_states


class DynaSceneDenoiser(nn.Module):
    """``forward(sample (B,9,F,h,w), timestep, image_embeds (B,1,D), reference, reference_mask,
    camera_features) -> (B,4,F,h,w)``.

    ``self.unet`` is a diffusers ``UNetMotionModel``; its processors are
    :class:`ReferenceReadProcessor` on spatial ``attn1``, :class:`CameraAdaptorProcessor` on
    ``motion_modules.*.transformer_blocks.0.attn1`` and :class:`ChunkedAttnProcessor` elsewhere.
    """

    def __init__(self, config: DynaSceneConfig):
        super().__init__()
        self.config = config
        self.control = ControlState()
        self.unet = UNetMotionModel(**motion_unet_kwargs(config))
        self.levels = len(config.unet["block_out_channels"])
        for name, module in self.unet.named_modules():
            # Fresh motion modules start as the identity (AnimateDiff zero-initialises proj_out;
            # diffusers does not), so an untrained video U-Net equals its image U-Net frame by frame.
            if name.endswith(".proj_out") and ".motion_modules." in name:
                nn.init.zeros_(module.weight)
                nn.init.zeros_(module.bias)
        for name, module in self.unet.named_modules():
            if isinstance(module, AnimateDiffTransformer3D):
                module.norm = PerFrameGroupNorm.replacing(module.norm)
                if not name.startswith("mid_block."):  # the mid block checkpoints its motion modules itself
                    module.__class__ = _CheckpointableMotionModule
        plain = ChunkedAttnProcessor()
        for name, module in self.unet.named_modules():
            if not name.endswith((".attn1", ".attn2")):
                continue
            block = name.rsplit(".", 1)[0]
            if ".motion_modules." in name:
                if name.endswith("transformer_blocks.0.attn1"):
                    scale = _camera_scale(name, self.levels)
                    module.set_processor(CameraAdaptorProcessor(module.query_dim, scale, self.control))
                else:
                    module.set_processor(plain)
            elif name.endswith(".attn1"):
                module.set_processor(ReferenceReadProcessor(block, self.control, config.spatial_position is not None))
            else:
                module.set_processor(plain)
        self._reference_blocks = tuple(n.rsplit(".", 1)[0] for n, m in self.unet.named_modules()
                                       if n.endswith(".attn1") and ".motion_modules." not in n)
        self._spatial_blocks = [self.unet.get_submodule(n) for n in self._reference_blocks]  # plain list: no new keys
        self._motion_blocks = [(module, _camera_scale(name, self.levels)) for name, module in self.unet.named_modules()
                               if ".motion_modules." in name and isinstance(module, BasicTransformerBlock)]
        self._feed_forward_pieces = FEED_FORWARD_PIECES

    def bypass_motion_modules(self) -> int:
        """Run as an image model: replace every motion module by an identity (stage I training — the
        paper trains stage I without temporal modules). Irreversible for this instance; returns the
        number replaced. Motion-module parameters leave the model, so stage-I files never hold them."""
        replaced = 0
        for module in self.unet.modules():
            motion = getattr(module, "motion_modules", None)
            if isinstance(motion, nn.ModuleList):
                for i in range(len(motion)):
                    motion[i] = _Identity()
                    replaced += 1
        self._motion_blocks = []  # nothing keeps the removed modules (and their parameters) alive
        return replaced

    @property
    def max_frames(self) -> int:
        return self.config.motion["motion_max_seq_length"]

    def reference_block_names(self) -> list[str]:
        """Names of the spatial transformer blocks that read the reference bank."""
        return list(self._reference_blocks)

    def project_reference(self, bank: dict) -> dict:
        """``{block: (Bb, h*w, C)}`` -> ``{block: (keys, values)}`` projected once by each reading
        attention (in this model's dtype): pass the result as ``reference`` to every step and window of
        a generation instead of re-projecting the same bank in every call. Inference only — training
        passes the raw bank so gradients reach the projections through every call."""
        dtype = self.unet.dtype
        grid = bank_grid(bank) if self.config.spatial_position is not None else None
        return ReferenceBank({name: project_reference(self.unet.get_submodule(name).attn1, bank[name].to(dtype), grid)
                              for name in self._reference_blocks}, getattr(bank, "grid", ()))

    def feed_forward_chunks(self, pieces: int = FEED_FORWARD_PIECES) -> None:
        """Run every transformer block's feed-forward (spatial and temporal) on ``pieces`` slices of its batch
        (diffusers' feed-forward chunking; 1 = whole batch at once). The GEGLU activation
        (``B*F*h*w x 8C``: 1.2 GiB at 24 frames 768x432 with CFG in fp16) is the largest tensor of a step
        and sets the U-Net's memory peak; in ``pieces`` slices it is that much smaller. Slices split the
        batch — frames of the spatial blocks (``B*F``), positions of the motion modules (``B*h*w``) — into
        equal parts (the largest divisor of the batch at most ``batch / pieces``). Same result up to float
        rounding."""
        if pieces < 1:
            raise ValueError(f"feed-forward pieces must be >= 1, got {pieces}")
        self._feed_forward_pieces = pieces

    def _set_feed_forward_chunks(self, videos: int, frames: int, h: int, w: int) -> None:
        pieces = self._feed_forward_pieces
        for block in self._spatial_blocks:
            block.set_chunk_feed_forward(_slice_rows(videos * frames, pieces), 0)
        sizes = level_sizes(h, w, self.levels)
        for block, level in self._motion_blocks:
            block.set_chunk_feed_forward(_slice_rows(videos * sizes[level][0] * sizes[level][1], pieces), 0)

    def compile_unet(self, **options) -> None:
        """Compile the U-Net with ``torch.compile`` as one graph (``fullgraph=True``: the processors take
        no device syncs and branch only on host values), in place so parameter names do not change.
        Compiles on the first call (tens of seconds at full size; inductor keeps its kernels in its cache
        directory, ``TORCHINDUCTOR_CACHE_DIR``, default ``/tmp/torchinductor_<user>``, so a later process
        compiles faster) and again for a new window length, batch (CFG on/off) or dtype; timesteps, steps,
        windows, samplers and new reference banks reuse the graph. ``options`` go to ``torch.compile``
        (e.g. ``mode="reduce-overhead"`` for CUDA graphs)."""
        skip_upsample_size_log_when_compiling()
        self.unet.compile(**{"fullgraph": True, "dynamic": False, **options})

    def enable_gradient_checkpointing(self) -> None:
        """Checkpoint diffusers' blocks and every motion module; recomputation sees this call's reference bank
        and camera features."""
        self.unet.enable_gradient_checkpointing(gradient_checkpointing_func=checkpoint_with_state(self.control))

    def disable_gradient_checkpointing(self) -> None:
        self.unet.disable_gradient_checkpointing()

    def _check_inputs(self, sample, image_embeds, reference, reference_mask, camera_features):
        u = self.config.unet
        if sample.ndim != 5 or sample.shape[1] != u["in_channels"]:
            raise ValueError(f"denoiser sample must be (B, {u['in_channels']}, F, h, w) = "
                             f"[noisy latent | mask | foreground latent], got {tuple(sample.shape)}")
        batch, _, frames, h, w = sample.shape
        if frames > self.max_frames:
            raise ValueError(f"denoiser: {frames} frames exceed the motion modules' positional encoding "
                             f"length {self.max_frames} (motion_max_seq_length); use context windows")
        dim = u["cross_attention_dim"]
        if image_embeds.ndim != 3 or image_embeds.shape[0] != batch or image_embeds.shape[2] != dim:
            raise ValueError(f"image_embeds must be ({batch}, 1, {dim}), got {tuple(image_embeds.shape)}")
        if reference is not None:
            missing = sorted(set(self._reference_blocks) - set(reference))
            if missing:
                raise ValueError(f"reference bank lacks blocks {missing[:3]} ({len(missing)} missing)")
            sizes = {(t[0] if isinstance(t, tuple) else t).shape[0] for t in reference.values()}
            if not sizes <= {1, batch}:
                raise ValueError(f"reference bank batch sizes {sorted(sizes)} must be 1 or the video batch {batch}")
        if reference_mask is not None and (len(reference_mask) != batch
                                           or not all(isinstance(m, bool) for m in reference_mask)):
            raise ValueError(f"reference_mask must be {batch} Python bools (one per video), got {reference_mask!r}")
        if camera_features is not None:
            if len(camera_features) != self.levels:
                raise ValueError(f"camera_features must be a list of {self.levels} tensors, got {len(camera_features)}")
            for i, (feat, (hi, wi), c) in enumerate(zip(camera_features, level_sizes(h, w, self.levels),
                                                       u["block_out_channels"])):
                if feat.ndim != 5 or feat.shape[1:] != (c, frames, hi, wi) or batch % feat.shape[0]:
                    raise ValueError(f"camera_features[{i}] must be (b, {c}, {frames}, {hi}, {wi}) with b dividing "
                                     f"{batch}, got {tuple(feat.shape)}")

    def forward(self, sample: torch.Tensor, timestep, image_embeds: torch.Tensor, reference: dict | None = None,
                reference_mask=None, camera_features: list | None = None) -> torch.Tensor:
        """Noise prediction ``(B, 4, F, h, w)``.

        reference: bank from :class:`ReferenceNet` (``{block: (1 or B, h*w, C)}``) or its
            :meth:`project_reference` (inference: projected once per generation); None = no reference.
        reference_mask: ``B`` Python bools (a host-side sequence, so selecting rows needs no device sync);
            False for videos that must not read the bank (CFG uncond). None = all read it.
        camera_features: from :class:`CameraEncoder`, batch B or a divisor of it (repeated, CFG).
        """
        self._check_inputs(sample, image_embeds, reference, reference_mask, camera_features)
        frames = sample.shape[2]
        tokens = None
        if camera_features is not None:
            # (b, C, F, h, w) -> temporal token layout (b*h*w, F, C)
            tokens = [f.permute(0, 3, 4, 2, 1).reshape(-1, frames, f.shape[1]) for f in camera_features]
        self._set_feed_forward_chunks(sample.shape[0], frames, *sample.shape[3:])
        mask = tuple(reference_mask) if reference_mask is not None else None
        self.control.restore((reference, mask, tokens, frames, tuple(level_sizes(*sample.shape[3:], self.levels))))
        try:
            context = image_embeds.repeat_interleave(frames, dim=0)
            if not torch.is_tensor(timestep):  # a device tensor made in place: no copy, no per-value recompile;
                # float32 for every sampler (DDIM's int steps, Euler's fractional ones): one compiled graph,
                # the same embedding (diffusers converts timesteps to float32 first)
                timestep = torch.full((), float(timestep), device=sample.device)
            return self.unet(sample, timestep, encoder_hidden_states=context).sample
        finally:
            self.control.clear()
