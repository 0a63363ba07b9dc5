"""Mask tools around matting: clean-up, softening, temporal smoothing, and checking external masks.

Every function takes a float mask ``(F, 1, H, W)`` or ``(F, H, W)`` (ComfyUI's MASK layout) with
1 = human, and returns the same shape, dtype and device. Spatial morphology runs in OpenCV, one
frame at a time (masks are single-channel, so this is cheap); radii are in pixels and structuring
elements are discs (OpenCV ellipses), so growth is the same in every direction.
"""

from __future__ import annotations

from typing import Callable

import cv2
import numpy as np
import torch
from torch import Tensor

from .matte import MattingInputError, check_frames

DEFAULT_REMOVAL_DILATION = 10  # pixels added around the human when removing it to make a scene image


def _check_mask_layout(mask: Tensor, name: str = "mask") -> None:
    if not isinstance(mask, Tensor):
        raise MattingInputError(f"{name}: expected a torch tensor (F, 1, H, W) or (F, H, W), "
                                f"got {type(mask).__name__}")
    if not (mask.ndim == 3 or (mask.ndim == 4 and mask.shape[1] == 1)):
        raise MattingInputError(f"{name}: expected shape (F, 1, H, W) or (F, H, W), got {tuple(mask.shape)}")


def _per_frame(mask: Tensor, op: Callable[[np.ndarray], np.ndarray]) -> Tensor:
    """Apply ``op`` to each ``(H, W)`` float32 frame in numpy; restore shape, dtype and device."""
    _check_mask_layout(mask)
    frames = mask.detach().reshape(-1, *mask.shape[-2:]).float().cpu().numpy()
    out = np.stack([op(np.ascontiguousarray(frame)) for frame in frames]) if len(frames) else frames
    return torch.from_numpy(out).reshape(mask.shape).to(mask.device, mask.dtype)


def _disc(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def _check_radius(radius: int, name: str = "radius") -> int:
    if int(radius) != radius or radius < 0:
        raise MattingInputError(f"{name} must be a whole number of pixels >= 0, got {radius}")
    return int(radius)


def threshold(mask: Tensor, level: float = 0.5) -> Tensor:
    """Binary mask: 1 where ``mask >= level``, else 0."""
    _check_mask_layout(mask)
    return (mask >= level).to(mask.dtype)


def dilate(mask: Tensor, radius: int) -> Tensor:
    """Grow the mask by ``radius`` pixels (grey-level max over a disc; soft edges stay soft)."""
    radius = _check_radius(radius)
    if radius == 0:
        return mask.clone()
    return _per_frame(mask, lambda m: cv2.dilate(m, _disc(radius)))


def erode(mask: Tensor, radius: int) -> Tensor:
    """Shrink the mask by ``radius`` pixels (grey-level min over a disc); the frame border does not erode."""
    radius = _check_radius(radius)
    if radius == 0:
        return mask.clone()
    return _per_frame(mask, lambda m: cv2.erode(m, _disc(radius)))


def feather(mask: Tensor, radius: int) -> Tensor:
    """Soften edges with a Gaussian blur of ``2·radius + 1`` taps (sigma = radius / 2).

    Flat regions farther than ``radius`` from an edge keep their value; the frame border is
    replicated, so a mask touching the border does not fade there.
    """
    radius = _check_radius(radius)
    if radius == 0:
        return mask.clone()
    size = 2 * radius + 1
    return _per_frame(mask, lambda m: cv2.GaussianBlur(m, (size, size), radius / 2,
                                                       borderType=cv2.BORDER_REPLICATE))


def fill_holes(mask: Tensor, level: float = 0.5) -> Tensor:
    """Set to 1 every background region (below ``level``) that is enclosed by the mask.

    A background region touching the frame border is outside, not a hole. Soft values elsewhere
    are kept.
    """
    def fill(m: np.ndarray) -> np.ndarray:
        background = (m < level).astype(np.uint8)
        count, labels = cv2.connectedComponents(background, connectivity=4)
        border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
        holes = (labels > 0) & ~np.isin(labels, border)
        return np.where(holes, np.float32(1), m)

    return _per_frame(mask, fill)


def remove_small_islands(mask: Tensor, min_area: int, level: float = 0.5) -> Tensor:
    """Zero every connected region (8-connected, ``>= level``) smaller than ``min_area`` pixels."""
    min_area = _check_radius(min_area, "min_area")

    def clean(m: np.ndarray) -> np.ndarray:
        count, labels, stats, _ = cv2.connectedComponentsWithStats((m >= level).astype(np.uint8), connectivity=8)
        small = np.flatnonzero(stats[:, cv2.CC_STAT_AREA] < min_area)
        small = small[small > 0]  # label 0 is the background
        return np.where(np.isin(labels, small), np.float32(0), m)

    return _per_frame(mask, clean)


def temporal_average(mask: Tensor, radius: int = 1) -> Tensor:
    """Centred moving average over ``2·radius + 1`` frames (fewer at the ends) to calm flicker."""
    _check_mask_layout(mask)
    radius = _check_radius(radius)
    if radius == 0 or mask.shape[0] < 2:
        return mask.clone()
    values = mask.float()
    zero = torch.zeros_like(values[:1])
    cumsum = torch.cat([zero, values.cumsum(0)])
    index = torch.arange(mask.shape[0], device=mask.device)
    low = (index - radius).clamp(min=0)
    high = (index + radius + 1).clamp(max=mask.shape[0])
    count = (high - low).to(values.dtype).view(-1, *([1] * (mask.ndim - 1)))
    return ((cumsum[high] - cumsum[low]) / count).to(mask.dtype)


def temporal_ema(mask: Tensor, decay: float = 0.5) -> Tensor:
    """Causal exponential moving average: ``out[t] = decay·out[t-1] + (1 - decay)·mask[t]``, ``out[0] = mask[0]``."""
    _check_mask_layout(mask)
    if not 0 <= decay < 1:
        raise MattingInputError(f"decay must be in [0, 1), got {decay}")
    out = mask.clone()
    for t in range(1, mask.shape[0]):
        out[t] = decay * out[t - 1] + (1 - decay) * mask[t]
    return out


def human_removed_mask(mask: Tensor, dilation: int = DEFAULT_REMOVAL_DILATION, level: float = 0.5) -> Tensor:
    """Binary mask of what to remove from a frame to make a scene image: the human, grown by ``dilation`` px.

    Matting edges (hair, motion blur) and shadows next to the body are then removed too.
    """
    return dilate(threshold(mask, level), dilation)


def validate_mask(mask: Tensor | np.ndarray, frames: Tensor, name: str = "mask") -> Tensor:
    """Check an external mask against ``frames`` ``(F, 3, H, W)`` and return it as ``(F, 1, H, W)`` float32.

    Lets any segmentation (e.g. another ComfyUI node's MASK ``(F, H, W)``) replace RVM's alpha:
    frame count, height and width must match, values must be in [0, 1] (1 = human).
    """
    check_frames(frames)
    if isinstance(mask, np.ndarray):
        mask = torch.from_numpy(mask)
    _check_mask_layout(mask, name)
    if mask.dtype == torch.bool:
        mask = mask.float()
    if not mask.is_floating_point():
        raise MattingInputError(f"{name}: expected float values in [0, 1], got dtype {mask.dtype}"
                                + (" (uint8 masks: divide by 255)" if mask.dtype == torch.uint8 else ""))
    count, height, width = mask.shape[0], mask.shape[-2], mask.shape[-1]
    if count != frames.shape[0]:
        raise MattingInputError(f"{name}: has {count} frames but the video has {frames.shape[0]}")
    if (height, width) != tuple(frames.shape[-2:]):
        raise MattingInputError(f"{name}: is {width}x{height} (W x H) but the frames are "
                                f"{frames.shape[-1]}x{frames.shape[-2]}")
    if count:
        low, high = float(mask.min()), float(mask.max())
        if not (0 <= low and high <= 1):  # also catches NaN
            raise MattingInputError(f"{name}: values must be in [0, 1], got [{low:g}, {high:g}]")
    return mask.reshape(count, 1, height, width).float()
