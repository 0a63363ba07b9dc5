"""Attention processors that add DynaScene's conditioning to diffusers' ``Attention`` modules.

All processors follow diffusers' processor protocol ``processor(attn, hidden_states,
encoder_hidden_states=None, attention_mask=None)`` and run attention through one helper,
:func:`attention`, which splits the batch when ``batch x heads`` would exceed the 65,535 grid limit
of some fused kernels (temporal attention at 768x432 with CFG has 2*96*54*8 = 82,944).

Conditioning reaches the processors through a :class:`ControlState` owned by the model: the model
fills it at the start of its forward and clears it in a ``finally``, so a reference bank never
leaks from one call into the next.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

MAX_BATCH_HEADS = 65535


def attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, heads: int) -> torch.Tensor:
    """Multi-head SDPA on ``(b, n, heads*d)`` projections -> ``(b, n, heads*d)``.

    Splits along ``b`` into chunks of at most ``MAX_BATCH_HEADS // heads`` sequences so every kernel
    launch stays under the grid limit; results are identical to one call.
    """
    b, n, inner = query.shape
    d = inner // heads
    q = query.view(b, n, heads, d).transpose(1, 2)
    k = key.view(b, key.shape[1], heads, d).transpose(1, 2)
    v = value.view(b, value.shape[1], heads, d).transpose(1, 2)
    step = max(1, MAX_BATCH_HEADS // heads)
    if b <= step:
        out = F.scaled_dot_product_attention(q, k, v)
    else:
        out = torch.cat([F.scaled_dot_product_attention(q[i:i + step], k[i:i + step], v[i:i + step])
                         for i in range(0, b, step)])
    return out.transpose(1, 2).reshape(b, n, inner).to(query.dtype)


@dataclass
class ControlState:
    """Per-call conditioning shared by a model and its processors.

    bank: ``{block name: (Bb, h*w, C)}`` reference tokens (written by the ReferenceNet, read by the
        denoiser; ``Bb`` is 1 or the video batch B).
    reference_mask: ``B`` host-side bools, which videos read the bank (False = unconditional CFG branch).
    camera_tokens: per camera scale, features laid out like temporal tokens ``(B*h*w, F, C)``.
    num_frames: frames per video in the current call (denoiser batch is ``B*F``, frames inner).
    """

    bank: dict | None = None
    reference_mask: tuple[bool, ...] | None = None
    camera_tokens: list | None = None
    num_frames: int = 1

    def snapshot(self) -> tuple:
        return (self.bank, self.reference_mask, self.camera_tokens, self.num_frames)

    def restore(self, snap: tuple) -> None:
        self.bank, self.reference_mask, self.camera_tokens, self.num_frames = snap

    def clear(self) -> None:
        self.restore((None, None, None, 1))


def checkpoint_with_state(state: ControlState):
    """A diffusers ``gradient_checkpointing_func`` whose recomputation sees the same ControlState.

    Non-reentrant checkpointing recomputes blocks during backward, after the model's forward has
    cleared its state; the snapshot taken at forward time is put back for the recomputation.
    """

    def run(module, *args):
        snap = state.snapshot()

        def replay(*inner):
            before = state.snapshot()
            state.restore(snap)
            try:
                return module(*inner)
            finally:
                state.restore(before)

        return torch.utils.checkpoint.checkpoint(replay, *args, use_reentrant=False)

    return run


def _check_plain(attn, attention_mask) -> None:
    if attention_mask is not None:
        raise ValueError("DynaScene attention processors do not take an attention_mask")
    if attn.spatial_norm is not None or attn.group_norm is not None or attn.norm_q is not None:
        raise ValueError("DynaScene attention processors support plain Attention modules only "
                         "(no spatial_norm / group_norm / qk-norm)")


def _finish(attn, out: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
    """Output projection, dropout, optional residual and rescale, as diffusers' processors do."""
    out = attn.to_out[1](attn.to_out[0](out))
    if attn.residual_connection:
        out = out + residual
    return out / attn.rescale_output_factor


def _plain(attn, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor | None) -> torch.Tensor:
    context = hidden_states if encoder_hidden_states is None else encoder_hidden_states
    if encoder_hidden_states is not None and attn.norm_cross:
        context = attn.norm_encoder_hidden_states(context)
    out = attention(attn.to_q(hidden_states), attn.to_k(context), attn.to_v(context), attn.heads)
    return _finish(attn, out, hidden_states)


class ChunkedAttnProcessor:
    """Plain self-/cross-attention through :func:`attention` (replaces diffusers' default)."""

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None):
        _check_plain(attn, attention_mask)
        return _plain(attn, hidden_states, encoder_hidden_states)


class ReferenceWriteProcessor:
    """ReferenceNet spatial ``attn1``: records its input ``norm1(h)`` ``(b, h*w, C)`` into
    ``state.bank[name]`` (when a bank is being collected), then plain self-attention."""

    def __init__(self, name: str, state: ControlState):
        self.name, self.state = name, state

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None):
        _check_plain(attn, attention_mask)
        if self.state.bank is not None:
            self.state.bank[self.name] = hidden_states
        return _plain(attn, hidden_states, None)


class ReferenceReadProcessor:
    """Denoiser spatial ``attn1`` with reference attention (Moore-AnimateAnyone's pattern).

    Input ``(B*F, h*w, C)`` with frames inner. For videos selected by ``state.reference_mask``
    keys/values are ``[own tokens | bank tokens of that video]`` projected with this attention's own
    ``to_k``/``to_v`` (no new weights); the other videos (unconditional CFG branch) attend to their
    own tokens only. The mask is a host-side tuple of bools, so selecting rows needs no device sync:
    consecutive videos with the same flag run as one attention call on a slice (flash kernels stay
    usable; no additive -inf mask). With no bank this is plain self-attention.
    """

    def __init__(self, name: str, state: ControlState):
        self.name, self.state = name, state

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None):
        _check_plain(attn, attention_mask)
        bank = self.state.bank.get(self.name) if self.state.bank is not None else None
        frames = self.state.num_frames
        videos = hidden_states.shape[0] // frames
        mask = self.state.reference_mask or (True,) * videos
        if bank is None or not any(mask):
            return _plain(attn, hidden_states, None)
        bank = bank.to(hidden_states.dtype).expand(videos, -1, -1)
        query, key, value = attn.to_q(hidden_states), attn.to_k(hidden_states), attn.to_v(hidden_states)
        parts = []
        for first, last, reads in _runs(mask):
            rows = slice(first * frames, last * frames)
            k, v = key[rows], value[rows]
            if reads:  # project the bank once per video, then share it with all frames of that video
                k = torch.cat([k, attn.to_k(bank[first:last]).repeat_interleave(frames, dim=0)], 1)
                v = torch.cat([v, attn.to_v(bank[first:last]).repeat_interleave(frames, dim=0)], 1)
            parts.append(attention(query[rows], k, v, attn.heads))
        out = parts[0] if len(parts) == 1 else torch.cat(parts)
        return _finish(attn, out, hidden_states)


def _runs(flags: tuple[bool, ...]) -> list[tuple[int, int, bool]]:
    """Maximal runs of equal flags as ``(first, stop, flag)``: ``(F, F, T) -> [(0, 2, F), (2, 3, T)]``."""
    runs, first = [], 0
    for i in range(1, len(flags) + 1):
        if i == len(flags) or flags[i] != flags[first]:
            runs.append((first, i, flags[first]))
            first = i
    return runs


class CameraAdaptorProcessor(nn.Module):
    """First temporal attention of a motion module, with CameraCtrl's pose adaptor.

    Input ``h`` is the temporal token tensor ``(B*h*w, F, C)`` (after norm1 and positional encoding).
    With camera features ``p`` of the matching scale laid out the same way, the attention input
    becomes ``h + qkv_merge(h + p)`` before q/k/v. ``qkv_merge`` is zero-initialised, so an untrained
    adaptor leaves the motion module bit-identical. When the U-Net batch is ``k`` stacked copies
    of the camera batch (CFG ``[uncond; cond]``), ``p`` is repeated ``k`` times.
    """

    def __init__(self, channels: int, scale: int, state: ControlState):
        super().__init__()
        self.scale = scale
        self.state = state
        self.qkv_merge = nn.Linear(channels, channels)
        nn.init.zeros_(self.qkv_merge.weight)
        nn.init.zeros_(self.qkv_merge.bias)

    def forward(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None):
        _check_plain(attn, attention_mask)
        tokens = self.state.camera_tokens
        if tokens is not None:
            p = tokens[self.scale]
            if hidden_states.shape[0] % p.shape[0] or p.shape[1:] != hidden_states.shape[1:]:
                raise ValueError(f"camera features of scale {self.scale} have token shape {tuple(p.shape)}, "
                                 f"temporal attention has {tuple(hidden_states.shape)}")
            repeats = hidden_states.shape[0] // p.shape[0]
            if repeats > 1:
                p = p.repeat(repeats, 1, 1)
            hidden_states = hidden_states + self.qkv_merge(hidden_states + p.to(hidden_states.dtype))
        return _plain(attn, hidden_states, None)
