"""Trajectory pictures drawn with OpenCV (no matplotlib): top view and side view, coloured by time."""

from __future__ import annotations

import cv2
import numpy as np

from .trajectory import CameraTrajectory

_BACKGROUND = (250, 250, 248)
_GRID = (225, 225, 222)
_TEXT = (60, 60, 70)


def _panel(positions: np.ndarray, forward: np.ndarray, colours: np.ndarray, width: int, height: int,
           axes: tuple[int, int], flip: tuple[bool, bool], labels: tuple[str, str], title: str) -> np.ndarray:
    """One orthographic view: world axes ``axes`` → (right, up) of the panel, ``flip`` negates them."""
    img = np.full((height, width, 3), _BACKGROUND, np.uint8)
    sign = np.array([-1.0 if f else 1.0 for f in flip])
    pts = positions[:, axes] * sign
    dirs = forward[:, axes] * sign
    margin = max(18, height // 9)
    lo, hi = pts.min(0), pts.max(0)
    span = float((hi - lo).max()) * 1.25
    if span < 1e-6:  # a camera that does not move: one unit around it
        span = 1.0
    centre = (lo + hi) / 2
    drawable = min(width - 2 * margin, height - 2 * margin - 14)
    scale = drawable / span

    def to_px(p: np.ndarray) -> np.ndarray:
        x = width / 2 + (p[..., 0] - centre[0]) * scale
        y = (height + 14) / 2 - (p[..., 1] - centre[1]) * scale
        return np.stack([x, y], -1)

    # grid at "nice" world spacing
    step = max(m * 10 ** e for e in range(int(np.floor(np.log10(span))) - 2, int(np.floor(np.log10(span))) + 1)
               for m in (1, 2, 5) if span / (m * 10 ** e) >= 4)
    for axis in (0, 1):
        first = np.ceil((centre[axis] - span) / step) * step
        for value in np.arange(first, centre[axis] + span, step):
            p = np.array([[value, centre[1] - span], [value, centre[1] + span]]) if axis == 0 else \
                np.array([[centre[0] - span, value], [centre[0] + span, value]])
            a, b = to_px(p).astype(int)
            cv2.line(img, tuple(a), tuple(b), _GRID, 1, cv2.LINE_AA)
    px = to_px(pts)
    for i in range(len(px) - 1):  # path
        cv2.line(img, tuple(px[i].astype(int)), tuple(px[i + 1].astype(int)), tuple(int(c) for c in colours[i]),
                 2, cv2.LINE_AA)
    start, end = px[0].astype(int), px[-1].astype(int)
    cv2.circle(img, tuple(start), 7, (40, 160, 60), 2, cv2.LINE_AA)
    cv2.rectangle(img, tuple(end - 6), tuple(end + 6), (200, 50, 50), 2, cv2.LINE_AA)
    # viewing directions, drawn last and a fixed share of the panel long (a pan or tilt changes only them);
    # a direction out of the view's plane is foreshortened as in the orthographic view
    arrow_px = 0.3 * drawable
    tips = px + dirs * np.array([1.0, -1.0]) * arrow_px
    thickness = 2 if min(width, height) >= 160 else 1
    stride = max(1, len(px) // 12)
    for i in list(range(0, len(px), stride)) + [len(px) - 1]:
        colour = tuple(int(c) for c in colours[i])
        cv2.arrowedLine(img, tuple(px[i].astype(int)), tuple(tips[i].astype(int)), colour, thickness, cv2.LINE_AA,
                        tipLength=0.15)
        cv2.circle(img, tuple(px[i].astype(int)), 3, colour, -1, cv2.LINE_AA)
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(img, title, (8, 16), font, 0.45, _TEXT, 1, cv2.LINE_AA)
    cv2.arrowedLine(img, (10, height - 10), (40, height - 10), _TEXT, 1, cv2.LINE_AA, tipLength=0.25)
    cv2.arrowedLine(img, (10, height - 10), (10, height - 40), _TEXT, 1, cv2.LINE_AA, tipLength=0.25)
    cv2.putText(img, labels[0], (44, height - 6), font, 0.4, _TEXT, 1, cv2.LINE_AA)
    cv2.putText(img, labels[1], (4, height - 44), font, 0.4, _TEXT, 1, cv2.LINE_AA)
    return img


def plot_trajectory(trajectory: CameraTrajectory, size: tuple[int, int] = (512, 256)) -> np.ndarray:
    """Picture of camera positions and viewing directions → ``(H, W, 3)`` uint8 RGB, ``size = (W, H)``.

    Left: top view (x right, z forward up the page); right: side view (z to the right, up = −y).
    Colour runs from dark purple (first frame) to yellow (last); the first camera is circled in
    green, the last boxed in red; arrows (up to 13) show viewing directions at 30 % of the panel, whatever
    the path's size, so pans and tilts show. Axes in the trajectory's own world frame.
    """
    width, height = int(size[0]), int(size[1])
    if width < 64 or height < 48:
        raise ValueError(f"plot size must be at least 64x48, got {width}x{height}")
    c2w = trajectory.c2w.numpy()
    positions, forward = c2w[:, :3, 3], c2w[:, :3, 2]
    ramp = np.linspace(0, 255, len(c2w)).astype(np.uint8).reshape(-1, 1)
    colours = cv2.applyColorMap(ramp, cv2.COLORMAP_VIRIDIS).reshape(-1, 3)[:, ::-1]  # BGR → RGB
    left_w = width // 2
    top = _panel(positions, forward, colours, left_w, height, (0, 2), (False, False), ("x", "z"), "top view (x-z)")
    side = _panel(positions, forward, colours, width - left_w, height, (2, 1), (False, True), ("z", "-y"),
                  "side view (z, up = -y)")
    out = np.concatenate([top, side], 1)
    out[:, left_w - 1] = _GRID
    return out
