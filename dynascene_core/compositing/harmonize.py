"""Colour harmonization: adapt the person's exposure and colour balance to the new background.

The person in the source video is lit consistently with the source video's own background, so the
correction that keeps the person consistent in the new scene is the change of the surroundings:
per frame, the ratio of the new background's mean colour in a ring around the person to the source
frame's mean colour in the same ring (per channel, in log units). A fraction ``strength`` of that difference is applied to the
person as per-channel gains (an exposure and white-balance change, the things that differ most
between a shot and a new scene); the person's colours relative to their surroundings are kept.
The gains are averaged over ``2·temporal_radius + 1`` frames so the correction cannot flicker: with
a moving average, consecutive gains differ by at most ``(max − min of the per-frame gains) / (2·radius + 1)``.

Statistics are taken at a reduced resolution (long side :data:`STATS_SIDE`), so the cost per frame
at full resolution is one area resize and one multiply.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

STATS_SIDE = 160
"""Long side (pixels) at which the colour statistics are measured."""
RING_FRACTION = 0.15
"""Width of the background ring around the person, as a fraction of the short side."""
EPS = 1e-4
"""Added to the mean colours before the log ratio (a black ring does not divide by zero)."""
MAX_LOG_GAIN = math.log(2.0)
"""The applied correction is limited to one stop per channel either way (a person filmed on a red wall
and put on a green field is not turned green)."""
MIN_PIXELS = 4.0
"""A frame whose person (or ring) covers less than this many stats pixels gets no correction of its own."""


def _reduce(images: torch.Tensor) -> torch.Tensor:
    """Average-pool by the integer factor that brings the long side to about :data:`STATS_SIDE`."""
    factor = max(1, round(max(images.shape[-2:]) / STATS_SIDE))
    return F.avg_pool2d(images.float(), factor) if factor > 1 else images.float()


def frame_log_gains(frames: torch.Tensor, alpha: torch.Tensor, background: torch.Tensor) -> torch.Tensor:
    """Per-frame log gains ``(F, 3)``: log of the mean colour of ``background`` over that of ``frames`` in a
    ring around the person (width :data:`RING_FRACTION` of the short side, weighted by ``1 − α``).

    ``frames`` (the source, with its old background) and ``background`` (the new one) ``(F, 3, H, W)``,
    ``alpha`` ``(F, 1, H, W)`` in [0, 1]. Frames without a person or without background around it get
    ``nan`` (filled in by :func:`smooth_gains`).
    """
    old, new, a = _reduce(frames), _reduce(background), _reduce(alpha)
    ring = max(1, round(RING_FRACTION * min(a.shape[-2:]))) * 2 + 1
    grown = F.max_pool2d(a, (1, ring), stride=1, padding=(0, ring // 2))         # square dilation, separably
    near = F.max_pool2d(grown, (ring, 1), stride=1, padding=(ring // 2, 0)) * (1 - a)
    weight = near.sum((1, 2, 3))
    gains = ((new * near).sum((2, 3)) + EPS).log() - ((old * near).sum((2, 3)) + EPS).log()
    valid = (weight >= MIN_PIXELS) & (a.sum((1, 2, 3)) >= MIN_PIXELS)
    return torch.where(valid[:, None], gains, torch.full_like(gains, float("nan")))


def smooth_gains(log_gains: torch.Tensor, radius: int) -> torch.Tensor:
    """Moving average of ``(F, 3)`` gains over ``2·radius + 1`` frames (ends replicated); ``nan``
    frames are ignored, and are 0 (no correction) if no frame has a value."""
    valid = ~torch.isnan(log_gains[:, :1])
    if not bool(valid.any()):
        return torch.zeros_like(log_gains)
    values = torch.nan_to_num(log_gains) * valid
    radius, size = max(0, radius), 2 * max(0, radius) + 1

    def box(x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x.T[None], (radius, radius), mode="replicate")
        return F.avg_pool1d(x, size, stride=1)[0].T

    weight = box(valid.float())
    mean = box(values) / weight.clamp_min(1e-6)
    overall = values.sum(0) / valid.sum()
    return torch.where(weight > 0, mean, overall)


def harmonization_gains(frames: torch.Tensor, alpha: torch.Tensor, background: torch.Tensor,
                        strength: float, temporal_radius: int) -> torch.Tensor:
    """Multiplicative per-channel gains ``(F, 3)`` for the person: ``exp(strength · smoothed log gains)``,
    limited to ±:data:`MAX_LOG_GAIN`."""
    log_gains = smooth_gains(frame_log_gains(frames, alpha, background), temporal_radius)
    return torch.exp((strength * log_gains).clamp(-MAX_LOG_GAIN, MAX_LOG_GAIN))


def apply_gains(foreground: torch.Tensor, gains: torch.Tensor) -> torch.Tensor:
    """``(F, 3, H, W) × (F, 3)`` gains, clamped to [0, 1]."""
    return (foreground * gains.to(foreground)[:, :, None, None]).clamp(0, 1)
