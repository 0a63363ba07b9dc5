"""Context windows for videos longer than the motion modules' training length.

Windows are fixed (the same at every step) and never wrap around the end of the video. Where windows
overlap, their predictions are cross-faded with linear ramps; the per-frame weights of all windows
sum to exactly 1, so a video that fits in one window gets exactly the single-window result.
"""

from __future__ import annotations

import math

import torch


def context_windows(num_frames: int, length: int = 24, overlap: int = 4) -> list[range]:
    """Frame ranges covering ``0..num_frames-1``, spread evenly: the fewest windows of ``length`` frames
    whose neighbours share at least ``overlap`` frames, with starts evenly spaced from 0 to
    ``num_frames - length`` so all overlaps are equal (within one frame of rounding).

    E.g. 48 frames, length 24, overlap 4: ``0–24, 12–36, 24–48`` (overlaps 12 and 12), not
    ``0–24, 20–44, 24–48``.
    """
    if num_frames < 1:
        raise ValueError(f"context windows need at least one frame, got {num_frames}")
    if length < 1 or not 0 <= overlap < length:
        raise ValueError(f"context window length must be >= 1 and 0 <= overlap < length "
                         f"(got length={length}, overlap={overlap})")
    if num_frames <= length:
        return [range(num_frames)]
    count = math.ceil((num_frames - overlap) / (length - overlap))
    span = num_frames - length
    starts = [round(i * span / (count - 1)) for i in range(count)]
    return [range(s, s + length) for s in starts]


def window_weights(windows: list[range], num_frames: int) -> torch.Tensor:
    """Per-window, per-frame fusion weights ``(len(windows), num_frames)``; each column sums to 1.

    Inside a window a frame's raw weight rises linearly across the part shared with the previous
    window and falls across the part shared with the next one; frames seen by one window get 1.
    """
    raw = torch.zeros(len(windows), num_frames, dtype=torch.float64)
    for i, window in enumerate(windows):
        w = torch.ones(len(window), dtype=torch.float64)
        if i > 0:
            shared = windows[i - 1].stop - window.start
            if shared > 0:
                w[:shared] = torch.minimum(w[:shared], torch.arange(1, shared + 1, dtype=torch.float64) / (shared + 1))
        if i + 1 < len(windows):
            shared = window.stop - windows[i + 1].start
            if shared > 0:
                ramp = torch.arange(shared, 0, -1, dtype=torch.float64) / (shared + 1)
                w[-shared:] = torch.minimum(w[-shared:], ramp)
        raw[i, window.start:window.stop] = w
    return (raw / raw.sum(0, keepdim=True)).float()
