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
        denoiser; ``Bb`` is 1 or the video batch B), or ``{block name: (keys, values)}`` already
        projected by the reading attention (:meth:`DynaSceneDenoiser.project_reference`).
    reference_mask: ``B`` host-side bools, which videos read the bank (False = unconditional CFG branch).
    camera_tokens: per camera scale, features laid out like temporal tokens ``(B*h*w, F, C)``.
    num_frames: frames per video in the current call (denoiser batch is ``B*F``, frames inner).
    grid: the token grid ``(h, w)`` of each U-Net level in the current call (for the position code).
    """

    bank: dict | None = None
    reference_mask: tuple[bool, ...] | None = None
    camera_tokens: list | None = None
    num_frames: int = 1
    grid: tuple | None = None

    def snapshot(self) -> tuple:
        return (self.bank, self.reference_mask, self.camera_tokens, self.num_frames, self.grid)

    def restore(self, snap: tuple) -> None:
        self.bank, self.reference_mask, self.camera_tokens, self.num_frames, self.grid = snap

    def clear(self) -> None:
        self.restore((None, None, None, 1, None))


def sinusoidal_positions_2d(height: int, width: int, channels: int) -> torch.Tensor:
    """The fixed 2D sine-cosine position code of a ``height x width`` token grid -> ``(height*width, channels)``
    float32, row-major like the tokens: the first half of the channels encodes the row, the second the column,
    each as ``[sin(p·ω_k) | cos(p·ω_k)]`` with ``ω_k = 10000^(−k/(channels/4))`` (the code of MAE / ViT-style 2D
    embeddings; ``channels`` a multiple of 4)."""
    if channels % 4:
        raise ValueError(f"a 2D sine-cosine position code needs channels divisible by 4, got {channels}")
    quarter = channels // 4
    omega = 10000.0 ** (-torch.arange(quarter, dtype=torch.float64) / quarter)

    def axis(positions: torch.Tensor) -> torch.Tensor:
        angles = positions.double()[:, None] * omega[None]
        return torch.cat([angles.sin(), angles.cos()], dim=1)

    rows = torch.arange(height).repeat_interleave(width)
    cols = torch.arange(width).repeat(height)
    return torch.cat([axis(rows), axis(cols)], dim=1).float()


class ReferenceBank(dict):
    """``{block name: (Bb, h*w, C)}`` reference tokens (or their projected ``(keys, values)``), with ``grid``: the
    token grid ``(h, w)`` of each U-Net level of the scene latent that wrote them (for the position code)."""

    def __init__(self, entries=(), grid: tuple = ()):
        super().__init__(entries)
        self.grid = tuple(grid)


_POSITION_CODES: dict = {}


def position_code(grids, tokens: int, like: torch.Tensor) -> torch.Tensor:
    """The :func:`sinusoidal_positions_2d` code ``(tokens, C)`` of the level of ``grids`` (``(h, w)`` per level)
    that has ``tokens`` tokens, ``C`` and device/dtype from ``like (b, tokens, C)``; cached per grid."""
    grid = next((tuple(size) for size in grids or () if size[0] * size[1] == tokens), None)
    if grid is None:
        raise ValueError(f"spatial attention over {tokens} tokens matches no level of the token grids {grids}")
    key = (grid, like.shape[-1], like.device, like.dtype)
    if key not in _POSITION_CODES:
        _POSITION_CODES[key] = sinusoidal_positions_2d(*grid, like.shape[-1]).to(like.device, like.dtype)
    return _POSITION_CODES[key]


def _placed(tokens: torch.Tensor, grids) -> torch.Tensor:
    """``(b, n, C)`` tokens with the position code of their grid added (query and key inputs, never values);
    unchanged when ``grids`` is None (a model without the code).

    A narrow U-Net knows little of where a token lies (only what zero padding tells its few convolutions), so its
    reference attention cannot find the scene image's token at the same place; the code tells query and key."""
    return tokens if grids is None else tokens + position_code(grids, tokens.shape[1], tokens)


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


def _plain(attn, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor | None,
           grids=None) -> torch.Tensor:
    """Plain attention; for self-attention with ``grids`` (the call's level grids) the position code is added to
    the query and key inputs."""
    context = hidden_states if encoder_hidden_states is None else encoder_hidden_states
    if encoder_hidden_states is not None and attn.norm_cross:
        context = attn.norm_encoder_hidden_states(context)
    placed = _placed(hidden_states, grids)
    out = attention(attn.to_q(placed), attn.to_k(placed if encoder_hidden_states is None else context),
                    attn.to_v(context), attn.heads)
    return _finish(attn, out, hidden_states)


class ChunkedAttnProcessor:
    """Plain self-/cross-attention through :func:`attention` (replaces diffusers' default)."""

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None):
        _check_plain(attn, attention_mask)
        return _plain(attn, hidden_states, encoder_hidden_states)


class ReferenceWriteProcessor:
    """ReferenceNet spatial ``attn1``: records its input ``norm1(h)`` ``(b, h*w, C)`` into
    ``state.bank[name]`` (when a bank is being collected, once: a recomputation for gradient checkpointing does
    not replace it), then plain self-attention (with the position code on query and key when ``positions``)."""

    def __init__(self, name: str, state: ControlState, positions: bool = False):
        self.name, self.state, self.positions = name, state, positions

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None):
        _check_plain(attn, attention_mask)
        if self.state.bank is not None:
            self.state.bank.setdefault(self.name, hidden_states)
        return _plain(attn, hidden_states, None, self.state.grid if self.positions else None)


def project_reference(attn, bank: torch.Tensor, grids=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference tokens ``(Bb, m, C)`` -> ``(keys, values)`` with ``attn``'s own ``to_k``/``to_v`` (with ``grids``,
    the scene latent's level grids, the keys get the position code)."""
    return attn.to_k(_placed(bank, grids)), attn.to_v(bank)


def _with_reference(own: torch.Tensor, reference: torch.Tensor, videos: range, frames: int) -> torch.Tensor:
    """``[own tokens | reference tokens of the frame's video]`` per frame row: own ``(n*F, L, C)``,
    reference ``(1 or B, m, C)`` -> ``(n*F, L+m, C)`` (one copy; the reference is broadcast over frames)."""
    n, length, channels = len(videos), own.shape[1], own.shape[2]
    ref = reference if reference.shape[0] == 1 else reference[videos.start:videos.stop]
    ref = ref[:, None].expand(n, frames, *ref.shape[1:])
    return torch.cat([own.view(n, frames, length, channels), ref], dim=2).view(n * frames, -1, channels)


class ReferenceReadProcessor:
    """Denoiser spatial ``attn1`` with reference attention (Moore-AnimateAnyone's pattern).

    Input ``(B*F, h*w, C)`` with frames inner. For videos selected by ``state.reference_mask``
    keys/values are ``[own tokens | bank tokens of that video]`` projected with this attention's own
    ``to_k``/``to_v`` (no new weights; a pre-projected bank skips that); the other videos
    (unconditional CFG branch) attend to their own tokens only. Each run of videos with the same
    mask value is one attention call over a slice of the batch (no -inf mask, so flash kernels stay
    usable; no device sync, the mask is on the host). With no bank this is plain self-attention.
    """

    def __init__(self, name: str, state: ControlState, positions: bool = False):
        self.name, self.state, self.positions = name, state, positions

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None):
        _check_plain(attn, attention_mask)
        bank = self.state.bank.get(self.name) if self.state.bank is not None else None
        frames = self.state.num_frames
        videos = hidden_states.shape[0] // frames
        mask = self.state.reference_mask or (True,) * videos
        own_grid = self.state.grid if self.positions else None
        if bank is None or not any(mask):
            return _plain(attn, hidden_states, None, own_grid)
        if isinstance(bank, tuple):
            ref_key, ref_value = bank
        else:
            scene_grid = bank_grid(self.state.bank) if self.positions else None
            ref_key, ref_value = project_reference(attn, bank.to(hidden_states.dtype), scene_grid)
        placed = _placed(hidden_states, own_grid)
        query, key, value = attn.to_q(placed), attn.to_k(placed), attn.to_v(hidden_states)
        pieces = []
        for start, stop, reads in _runs(mask):
            rows = slice(start * frames, stop * frames)
            if reads:
                own = range(start, stop)
                pieces.append(attention(query[rows], _with_reference(key[rows], ref_key.to(key.dtype), own, frames),
                                        _with_reference(value[rows], ref_value.to(value.dtype), own, frames),
                                        attn.heads))
            else:
                pieces.append(attention(query[rows], key[rows], value[rows], attn.heads))
        out = pieces[0] if len(pieces) == 1 else torch.cat(pieces)
        return _finish(attn, out, hidden_states)


def bank_grid(bank: dict) -> tuple:
    """The level grids of the scene latent that wrote ``bank`` (a :class:`ReferenceBank`)."""
    grid = getattr(bank, "grid", ())
    if not grid:
        raise ValueError("a model with a spatial position code needs the reference bank's grid: pass the "
                         "ReferenceBank its ReferenceNet returned (or its project_reference)")
    return grid


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
