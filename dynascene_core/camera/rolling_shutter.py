"""Rolling-shutter correction of point tracks (rotation only), with the readout time found from the clip.

A rolling-shutter sensor reads its rows one after another, so row ``y`` of frame ``i`` is seen at time
``i + readout · (y − cy) / height`` (in frame intervals of the clip; 0 at the principal row). A camera that turns
during the readout bends and shears the picture, which the bundle adjustment's global-shutter pinhole model
absorbs into wrong poses: on hand-held Kinect footage (TUM RGB-D fr1/desk, BENCHMARKS.md) a degree or more at
the end of a 1.6 s clip. With the rotation rates of a first solution, each observation is moved to where the
camera at its frame's principal-row time would have seen it (rotation only: at hand-held speeds the turn
dominates what the shutter does to the picture), and the clip is adjusted again on the moved tracks.

The readout is a property of the camera and of how many frames were skipped (a 30 ms readout is 0.9 frame at
30 frames/s, 0.45 at every second frame), so it is found per clip: short adjustments at readouts along
:data:`READOUT_GRID` are compared by their median reprojection error, and the best is refined by a parabola.
Rows are assumed read top to bottom, as sensors do in the orientation they record.
"""

from __future__ import annotations

import numpy as np

from .bundle import BundleResult, refit_error
from .tracks import Tracks
from .trajectory import matrix_to_axis_angle

READOUT_STEP = 0.25
READOUT_GRID = tuple(READOUT_STEP * n for n in range(1, 6))
"""Readouts (frame intervals) tried after 0, in order; the search stops once the error rises."""
MAX_READOUT = 2.0
"""The largest readout a caller may give (frame intervals)."""


def rotation_rates(w2c: np.ndarray) -> np.ndarray:
    """Per-frame rotation rates ``(F, 3)`` (axis × radians per frame, in the frame's camera axes) of world-to-camera
    poses ``(F, 4, 4)``: central differences, one-sided at the ends."""
    rot = w2c[:, :3, :3]
    count = len(rot)
    before, after = np.maximum(np.arange(count) - 1, 0), np.minimum(np.arange(count) + 1, count - 1)
    span = np.maximum(after - before, 1)[:, None]
    return matrix_to_axis_angle(rot[after] @ np.swapaxes(rot[before], -1, -2)) / span


def unroll(points: np.ndarray, w2c: np.ndarray, k: np.ndarray, height: int, readout: float) -> np.ndarray:
    """Track positions ``(F, N, 2)`` (NaN = absent) moved to where a global-shutter camera at each frame's pose
    ``w2c (F, 4, 4)`` would see them, for a sensor reading rows top to bottom in ``readout`` frame intervals;
    ``k``: pixel ``(fx, fy, cx, cy)``."""
    x, y = points[..., 0], points[..., 1]
    bearing = np.stack([(x - k[2]) / k[0], (y - k[3]) / k[1], np.ones_like(x)], -1)
    delay = np.nan_to_num(readout * (y - k[3]) / height)  # (F, N) frame intervals after the principal row
    # the camera seen at time i + delay is exp(delay·ω) ∘ (pose i): undo that extra turn on the bearing (Rodrigues'
    # formula on the vectors: no (F, N, 3, 3) matrices)
    rate = rotation_rates(w2c)[:, None, :]  # (F, 1, 3)
    speed = np.linalg.norm(rate, axis=-1, keepdims=True)
    axis = rate / np.where(speed > 0, speed, 1.0)
    angle = -delay[..., None] * speed
    bearing = np.nan_to_num(bearing)
    moved = (bearing * np.cos(angle) + np.cross(axis, bearing) * np.sin(angle)
             + axis * (bearing @ axis[:, 0, :, None]) * (1 - np.cos(angle)))
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.stack([moved[..., 0] / moved[..., 2] * k[0] + k[2], moved[..., 1] / moved[..., 2] * k[1] + k[3]], -1)
    out[np.isnan(x)] = np.nan
    return out


def fit_readout(points: np.ndarray, result: BundleResult, solved: np.ndarray, k: np.ndarray, width: int,
                height: int, max_points: int) -> float:
    """The readout (frame intervals, ≥ 0) that best fits ``result``'s inlier observations of ``points (F, N, 2)``:
    each readout of 0 and :data:`READOUT_GRID` (stopping once the error rises) is scored by the median
    reprojection error after a short adjustment of ``result``'s poses and its ``max_points`` longest-tracked points
    to their unrolled observations at focal ``k`` (pixel ``(fx, fy, cx, cy)``); the best is refined by a parabola
    through its neighbours."""
    longest = np.argsort(-result.used.sum(0), kind="stable")[:max_points]  # the points every short adjustment moves
    subset = BundleResult(result.w2c, result.points3d[longest], result.used[:, longest], result.errors[:, longest],
                          result.focal_px)
    tracked = points[:, longest]

    def error(readout: float) -> float:
        moved = unroll(tracked, result.w2c, k, height, readout) if readout else tracked
        return refit_error(moved, subset, solved, k, width, height, max_points, max_iterations=5)

    errors = [error(0.0)]
    for readout in READOUT_GRID:
        errors.append(error(readout))
        if errors[-1] > min(errors[:-1]):
            break
    best = int(np.argmin(errors))
    if best == 0:
        return 0.0
    shift = 0.0
    if best + 1 < len(errors):
        low, mid, high = errors[best - 1:best + 2]
        curvature = low - 2 * mid + high
        shift = float(np.clip(0.5 * (low - high) / curvature, -0.5, 0.5)) if curvature > 0 else 0.0
    return READOUT_STEP * (best + shift)


def unroll_tracks(tracks: Tracks, result: BundleResult, solved: np.ndarray, k: np.ndarray, width: int, height: int,
                  readout: float | None, max_points: int) -> tuple[float, Tracks | None]:
    """``(readout, tracks unrolled for it)`` from ``result``'s poses: the ``readout`` given, or (None) the one
    :func:`fit_readout` finds; the tracks are None when the readout is 0."""
    if readout is None:
        readout = fit_readout(tracks.points, result, solved, k, width, height, max_points)
    return readout, (Tracks(unroll(tracks.points, result.w2c, k, height, readout)) if readout else None)
