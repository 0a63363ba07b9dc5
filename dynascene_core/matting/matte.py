"""Running Robust Video Matting over a whole video in chunks, carrying its recurrent state.

Frames come in as one ``(F, 3, H, W)`` float tensor in [0, 1], a ``(F, H, W, 3)`` uint8 array, or an
iterator of ``(n, H, W, 3)`` uint8 chunks (what :func:`dynascene_core.video.iter_video` yields), so a
long video can be matted without ever holding all of it. The ConvGRU states after each chunk are fed
to the next one, which makes chunked processing give the same result as one pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

import numpy as np
import torch
from torch import Tensor

from ..video import to_tensor
from .rvm import RobustVideoMatting

FrameSource = Tensor | np.ndarray | Iterable[np.ndarray]
Progress = Callable[[int, "int | None"], None]

# RVM's authors: run the network at 256–512 px (inference.py targets a 512 px long side). Ratios
# are rounded down to a multiple of 1/40, which gives their table's 0.25 at 1920×1080 and 0.125 at
# 3840×2160, and 0.4 at 1280×720.
_TARGET_LONG_SIDE = 512
_RATIO_STEPS = 40


class MattingInputError(ValueError):
    """Frames or masks given to matting have the wrong shape, type or range; the message says which."""


@dataclass
class MattingResult:
    """Matting of ``F`` frames, float32 in [0, 1]; 1 in ``alpha`` = human.

    ``alpha`` ``(F, 1, H, W)``; ``foreground`` ``(F, 3, H, W)`` is RVM's predicted foreground colour
    (meaningful where alpha > 0); ``foreground_video`` ``(F, 3, H, W)`` = frames × alpha, background
    zero: the foreground input DynaScene encodes.
    """

    alpha: Tensor
    foreground: Tensor
    foreground_video: Tensor

    def __len__(self) -> int:
        return self.alpha.shape[0]


def auto_downsample_ratio(height: int, width: int) -> float:
    """Downsample ratio putting RVM's internal long side at about 512 px (never above 1)."""
    long_side = max(height, width)
    if long_side <= _TARGET_LONG_SIDE:
        return 1.0
    steps = _TARGET_LONG_SIDE * _RATIO_STEPS // long_side
    return steps / _RATIO_STEPS if steps else _TARGET_LONG_SIDE / long_side


def check_frames(frames: Tensor, name: str = "frames") -> Tensor:
    """Validate a ``(F, 3, H, W)`` float tensor in [0, 1]; returns it unchanged."""
    if not isinstance(frames, Tensor):
        raise MattingInputError(f"{name}: expected a torch tensor (F, 3, H, W), got {type(frames).__name__}")
    if frames.ndim != 4:
        raise MattingInputError(f"{name}: expected shape (F, 3, H, W), got {tuple(frames.shape)}")
    if frames.shape[0] == 0:
        raise MattingInputError(f"{name}: the video is empty (0 frames)")
    _check_channels(frames.shape[1], tuple(frames.shape), name, "(F, 3, H, W)")
    if not frames.is_floating_point():
        raise MattingInputError(f"{name}: expected float values in [0, 1], got dtype {frames.dtype} "
                                "(convert uint8 frames with dynascene_core.video.to_tensor)")
    low, high = float(frames.min()), float(frames.max())
    if low < 0 or high > 1:
        raise MattingInputError(f"{name}: values must be in [0, 1], got [{low:g}, {high:g}]"
                                + (" (looks like 0..255: divide by 255)" if high > 1.5 else ""))
    return frames


def _check_channels(channels: int, shape: tuple, name: str, layout: str) -> None:
    if channels != 3:
        kind = {1: "grayscale", 4: "RGBA"}.get(channels, f"{channels}-channel")
        raise MattingInputError(f"{name}: expected 3 colour channels (RGB) in layout {layout}, got {channels} "
                                f"({kind} frames, shape {shape}); convert them to RGB first")


def _uint8_chunk(chunk: np.ndarray, index: int) -> Tensor:
    """Validate one ``(n, H, W, 3)`` uint8 chunk and convert it to ``(n, 3, H, W)`` float."""
    name = f"frame chunk {index}"
    chunk = np.asarray(chunk)
    if chunk.ndim != 4:
        raise MattingInputError(f"{name}: expected shape (n, H, W, 3), got {chunk.shape}")
    _check_channels(chunk.shape[-1], chunk.shape, name, "(n, H, W, 3)")
    if chunk.dtype != np.uint8:
        raise MattingInputError(f"{name}: expected uint8 pixels, got {chunk.dtype}")
    return to_tensor(chunk)


def _chunks(frames: FrameSource, chunk: int) -> Iterator[Tensor]:
    """Yield ``(n <= chunk, 3, H, W)`` float chunks; checks that every chunk has the first one's size."""
    if isinstance(frames, Tensor):
        pieces: Iterable[Tensor] = [check_frames(frames)]
    elif isinstance(frames, np.ndarray):
        pieces = [_uint8_chunk(frames, 0)]
    else:
        pieces = (_uint8_chunk(c, i) for i, c in enumerate(frames))
    size, total = None, 0
    for piece in pieces:
        if size is None:
            size = tuple(piece.shape[2:])
        elif tuple(piece.shape[2:]) != size:
            raise MattingInputError(f"frames: frame size changed from {size[1]}x{size[0]} to "
                                    f"{piece.shape[3]}x{piece.shape[2]} (W x H) after {total} frames")
        for start in range(0, piece.shape[0], chunk):
            yield piece[start:start + chunk]
        total += piece.shape[0]
    if total == 0:
        raise MattingInputError("frames: the video is empty (0 frames)")


def iter_matting(model: RobustVideoMatting, frames: FrameSource, chunk: int = 8,
                 downsample_ratio: float | None = None, progress: Progress | None = None
                 ) -> Iterator[MattingResult]:
    """Matte a video chunk by chunk, yielding one :class:`MattingResult` per chunk (results on CPU).

    Memory is bounded by ``chunk`` frames whatever the video length. ``downsample_ratio`` defaults
    to :func:`auto_downsample_ratio` of the frame size. ``progress(done, total)`` is called after
    each chunk (``total`` is ``None`` for iterators).
    """
    if chunk < 1:
        raise MattingInputError(f"chunk must be >= 1, got {chunk}")
    if downsample_ratio is not None and not 0 < downsample_ratio <= 1:
        raise MattingInputError(f"downsample_ratio must be in (0, 1], got {downsample_ratio}")
    total = len(frames) if isinstance(frames, (Tensor, np.ndarray)) else None
    param = next(model.parameters())
    rec: list[Tensor | None] = [None] * 4
    done = 0
    with torch.no_grad():
        for piece in _chunks(frames, chunk):
            ratio = downsample_ratio or auto_downsample_ratio(*piece.shape[2:])
            src = piece.to(param.device, param.dtype).unsqueeze(0)
            fgr, pha, *rec = model(src, *rec, downsample_ratio=ratio)
            alpha = pha[0].float().cpu()
            source = piece.float().cpu()
            yield MattingResult(alpha, fgr[0].float().cpu(), source * alpha)
            done += piece.shape[0]
            if progress is not None:
                progress(done, total)


def matte_video(model: RobustVideoMatting, frames: FrameSource, chunk: int = 8,
                downsample_ratio: float | None = None, progress: Progress | None = None) -> MattingResult:
    """Matte a whole video and return all frames' results; see :func:`iter_matting` for the arguments.

    The model's memory stays bounded by ``chunk``; the returned tensors hold every frame (use
    :func:`iter_matting` to write results out as they come for very long videos).
    """
    parts = list(iter_matting(model, frames, chunk, downsample_ratio, progress))
    return MattingResult(*(torch.cat([getattr(p, name) for p in parts])
                           for name in ("alpha", "foreground", "foreground_video")))
