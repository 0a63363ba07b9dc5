"""Context windows for videos longer than the motion modules' training length.

Windows are fixed (the same at every step) and never wrap around the end of the video. Where windows
overlap, their predictions are cross-faded with linear ramps; the per-frame weights of all windows
sum to exactly 1, so a video that fits in one window gets exactly the single-window result.
"""

from __future__ import annotations

import torch


def context_windows(num_frames: int, length: int = 24, overlap: int = 4) -> list[range]:
    """Frame ranges covering ``0..num_frames-1``; consecutive windows share at least ``overlap`` frames.

    The last window is aligned to the end of the video (so it may overlap its neighbour by more).
    """
    if num_frames < 1:
        raise ValueError(f"context windows need at least one frame, got {num_frames}")
    if length < 1 or not 0 <= overlap < length:
        raise ValueError(f"context window length must be >= 1 and 0 <= overlap < length "
                         f"(got length={length}, overlap={overlap})")
    if num_frames <= length:
        return [range(num_frames)]
    stride = length - overlap
    starts = list(range(0, num_frames - length, stride)) + [num_frames - length]
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
