"""Rolling-shutter correction of point tracks (rotation only), with the readout time and direction found from the clip.

A rolling-shutter sensor reads its rows one after another, so with rows read top to bottom, row ``y`` of frame
``i`` is seen at time ``i + readout · (y − cy) / height`` (in frame intervals of the clip; 0 at the principal
row). A camera that turns during the readout bends and shears the picture, which the bundle adjustment's
global-shutter pinhole model absorbs into wrong poses: on hand-held Kinect footage (TUM RGB-D fr1/desk,
BENCHMARKS.md) a degree or more at the end of a 1.6 s clip. With the rotation rates of a first solution, each
observation is moved to where the camera at its frame's principal-line time would have seen it (rotation only:
at hand-held speeds the turn dominates what the shutter does to the picture), and the clip is adjusted again on
the moved tracks.

The readout is a property of the camera and of how many frames were skipped (a 30 ms readout is 0.9 frame at
30 frames/s, 0.45 at every second frame), so it is found per clip: short adjustments at readouts along
:data:`READOUT_GRID` are compared by their median reprojection error, and the best is refined by a parabola.
The direction the sensor's rows advance in the picture (:data:`DIRECTIONS`) depends on how the camera was held:
a phone recording landscape upside down reads bottom to top, one recording portrait reads its rows as the
picture's columns. It is chosen at the first step of the search among :func:`candidate_directions`. The search
(:func:`find_readout`) takes any error: the bundle adjustment's (:func:`fit_readout`), or the rotation fit's for
clips without parallax (:mod:`.rotation_only`).
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
MIN_GAIN = 0.01
"""A readout found is kept only when it lowers the error at readout 0 by this share: on the 66 real clips of
BENCHMARKS.md every correction gaining less (four clips of global-shutter KITTI at 0.0–0.5 %, five hand-held ones)
worsened the rotation slightly, while gains from 1.7 % up corrected hand-held clips by up to 2°."""
DIRECTIONS = {"down": (1, 1.0), "up": (1, -1.0), "right": (0, 1.0), "left": (0, -1.0)}
"""Where the sensor's readout goes in the picture → (image axis it advances along: 0 = x, 1 = y; sign):
"down" = rows read top to bottom, "right" = columns read left to right."""


def candidate_directions(width: int, height: int) -> tuple[str, ...]:
    """Readout directions searched for a ``width × height`` clip: rows either way (a landscape sensor held upright
    or upside down), and in a frame at least as tall as wide columns either way too (a landscape sensor held in
    portrait; a portrait crop of landscape video keeps the rows)."""
    return ("down", "up") + (("right", "left") if height >= width else ())


def rotation_rates(w2c: np.ndarray) -> np.ndarray:
    """Per-frame rotation rates ``(F, 3)`` (axis × radians per frame, in the frame's camera axes) of world-to-camera
    poses ``(F, 4, 4)``: central differences, one-sided at the ends."""
    rot = w2c[:, :3, :3]
    count = len(rot)
    before, after = np.maximum(np.arange(count) - 1, 0), np.minimum(np.arange(count) + 1, count - 1)
    span = np.maximum(after - before, 1)[:, None]
    return matrix_to_axis_angle(rot[after] @ np.swapaxes(rot[before], -1, -2)) / span


def unroll(points: np.ndarray, w2c: np.ndarray, k: np.ndarray, width: int, height: int, readout: float,
           direction: str = "down") -> np.ndarray:
    """Track positions ``(F, N, 2)`` (NaN = absent) moved to where a global-shutter camera at each frame's pose
    ``w2c (F, 4, 4)`` would see them, for a sensor reading the picture in ``readout`` frame intervals in
    ``direction`` (a key of :data:`DIRECTIONS`); ``k``: pixel ``(fx, fy, cx, cy)``."""
    axis_index, sign = DIRECTIONS[direction]
    x, y = points[..., 0], points[..., 1]
    bearing = np.stack([(x - k[2]) / k[0], (y - k[3]) / k[1], np.ones_like(x)], -1)
    line = points[..., axis_index] - k[2 + axis_index]  # (F, N) px past the principal line, along the readout
    delay = np.nan_to_num(sign * readout * line / (width, height)[axis_index])  # frame intervals after it
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


def find_readout(score, width: int, height: int, readout: float | None = None, direction: str | None = None,
                 min_gain: float = MIN_GAIN) -> tuple[float, str | None]:
    """``(readout, direction)`` (frame intervals ≥ 0; a key of :data:`DIRECTIONS`, None at readout 0) with the
    lowest ``score(readout, direction)``, an error such as a median reprojection px (at readout 0 the direction
    plays no part); a ``readout`` or ``direction`` given is kept. The direction is the best of
    :func:`candidate_directions` at the given readout, or else at the search's first step: readouts 0 and
    :data:`READOUT_GRID`, stopping once the error rises, the best refined by a parabola through its neighbours, and
    kept if it lowers the error at readout 0 by the share ``min_gain``."""
    def finite(value: float, towards: str) -> float:
        error = score(value, towards)
        return error if np.isfinite(error) else np.inf  # a fit that failed ranks last

    def best_direction(value: float) -> tuple[str, float]:
        """The direction fitting best at readout ``value``, and its error."""
        error, towards = min((finite(value, towards), towards) for towards in
                             ((direction,) if direction else candidate_directions(width, height)))
        return towards, error

    if readout is not None:  # given: only the direction is searched
        return (readout, direction or best_direction(readout)[0]) if readout else (0.0, None)
    errors = [finite(0.0, "down")]
    if errors[0] == np.inf:  # nothing to compare with
        return 0.0, None
    direction, first = best_direction(READOUT_GRID[0])
    errors.append(first)
    for value in READOUT_GRID[1:] if errors[1] <= errors[0] else ():
        errors.append(finite(value, direction))
        if errors[-1] > min(errors[:-1]):
            break
    best = int(np.argmin(errors))
    if best == 0 or errors[best] > (1 - min_gain) * errors[0]:
        return 0.0, None
    shift = 0.0
    if best + 1 < len(errors):
        low, mid, high = errors[best - 1:best + 2]
        curvature = low - 2 * mid + high
        if np.isfinite(curvature) and curvature > 0:  # a failed fit beside the best: no refinement
            shift = float(np.clip(0.5 * (low - high) / curvature, -0.5, 0.5))
    return READOUT_STEP * (best + shift), direction


def fit_readout(points: np.ndarray, result: BundleResult, solved: np.ndarray, k: np.ndarray, width: int,
                height: int, max_points: int, readout: float | None = None, direction: str | None = None
                ) -> tuple[float, str | None]:
    """:func:`find_readout` for a bundle adjustment ``result`` of ``points (F, N, 2)``: each candidate scored by the
    median reprojection error of ``result``'s inlier observations after a short adjustment of its poses and its
    ``max_points`` longest-tracked points to their unrolled observations at focal ``k`` (pixel
    ``(fx, fy, cx, cy)``)."""
    longest = np.argsort(-result.used.sum(0), kind="stable")[:max_points]  # the points every short adjustment moves
    subset = BundleResult(result.w2c, result.points3d[longest], result.used[:, longest], result.errors[:, longest],
                          result.focal_px)
    tracked = points[:, longest]

    def error(value: float, towards: str) -> float:
        moved = unroll(tracked, result.w2c, k, width, height, value, towards) if value else tracked
        return refit_error(moved, subset, solved, k, width, height, max_points, max_iterations=5)

    return find_readout(error, width, height, readout, direction)


def unroll_tracks(tracks: Tracks, result: BundleResult, solved: np.ndarray, k: np.ndarray, width: int, height: int,
                  readout: float | None, direction: str | None, max_points: int
                  ) -> tuple[float, str | None, Tracks | None]:
    """``(readout, direction, tracks unrolled for them)`` from ``result``'s poses: those given, or (None) those
    :func:`fit_readout` finds; the tracks are None when the readout is 0."""
    readout, direction = fit_readout(tracks.points, result, solved, k, width, height, max_points, readout, direction)
    if not readout:
        return 0.0, None, None
    return readout, direction, Tracks(unroll(tracks.points, result.w2c, k, width, height, readout, direction))
