"""Camera-following error: does the generated background move the way the requested camera moved?

The camera of the generated video is estimated from its background (person masked) with
:func:`dynascene_core.camera.estimate_trajectory` and compared with the trajectory that conditioned the
generation. Both are first expressed relative to their own first frame (so frame 0 is aligned exactly),
then, per frame ``j``:

* **rotation error**: the geodesic angle between the requested and estimated relative rotations,
  ``arccos((tr(R_reqᵀ R_est) − 1) / 2)``;
* **translation error**: monocular estimates have no scale, so the requested camera centres are scaled to
  unit extent (the farthest centre from frame 0 is at distance 1) and the estimated centres get the one
  least-squares scale ``s ≥ 0`` that best fits them, ``s = Σ p_req·p_est / Σ |p_est|²``; the error is
  ``|p_req − s·p_est|`` in units of the requested trajectory's extent;
* **translation-direction error**: the angle between ``p_req`` and ``p_est`` (scale-free); undefined
  (NaN) on frames where either camera has not moved from frame 0 (< 1e-3 of the extent).

* **turn ratio** (one number per clip): how much of the requested turn the background makes, from the
  rotation vectors (axis × angle) of the last frame relative to frame 0, ``r_est·r_req / |r_req|²`` — 1 follows
  fully, 0.25 turns a quarter as far the right way, 0 stays still (or turns across), negative turns the other
  way; undefined (NaN) when the request turns less than 1°. RotErr says how far off a clip is; the turn
  ratio says whether it under- or over-turns.

Like CameraCtrl's RotErr / TransErr, the per-frame errors are **summed** over a clip (RotErr in radians);
per-frame means (degrees) are reported too, over frames 1…F−1 (frame 0 is zero by construction). A
requested trajectory without translation has no extent: its translation errors are reported as NaN.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

STILL_FRACTION = 1e-3  # camera centres closer than this (× extent) to frame 0 have no direction
MIN_TURN_DEG = 1.0  # requests turning less than this have no turn ratio


@dataclass
class CameraError:
    """Per-frame errors ``(F,)`` of one clip and the diagnostics of the estimate; ``scale`` is the fitted
    factor from estimated to requested translation units."""

    rotation_deg: np.ndarray
    translation: np.ndarray
    direction_deg: np.ndarray
    scale: float
    turn_ratio: float = math.nan
    requested_turn_deg: np.ndarray | None = None
    """Per-frame angle of the requested rotation from frame 0 (degrees); ``estimated_turn_deg`` the same of
    the estimate."""
    estimated_turn_deg: np.ndarray | None = None
    unreliable_frames: list[int] = field(default_factory=list)
    estimator_mode: str = ""
    estimator_warnings: list[str] = field(default_factory=list)

    @property
    def rot_err(self) -> float:
        """CameraCtrl-style RotErr: sum of per-frame rotation errors in radians."""
        return float(np.radians(self.rotation_deg).sum())

    @property
    def trans_err(self) -> float:
        """CameraCtrl-style TransErr: sum of per-frame translation errors (units of the requested extent)."""
        return float(self.translation.sum())

    def summary(self) -> dict:
        """JSON-ready numbers (NaN → None) and per-frame lists."""
        moving = slice(1, None)
        return {
            "rot_err": _finite(self.rot_err),
            "trans_err": _finite(self.trans_err),
            "rot_err_mean_deg": _finite(_nanmean(self.rotation_deg[moving])),
            "trans_err_mean": _finite(_nanmean(self.translation[moving])),
            "trans_dir_err_mean_deg": _finite(_nanmean(self.direction_deg[moving])),
            "scale": _finite(self.scale),
            "turn_ratio": _finite(self.turn_ratio),
            "unreliable_frames": list(self.unreliable_frames),
            "estimator_mode": self.estimator_mode,
            "estimator_warnings": list(self.estimator_warnings),
            "per_frame": {
                "rotation_deg": [_finite(v) for v in self.rotation_deg],
                "translation": [_finite(v) for v in self.translation],
                "direction_deg": [_finite(v) for v in self.direction_deg],
                "requested_turn_deg": _finite_list(self.requested_turn_deg),
                "estimated_turn_deg": _finite_list(self.estimated_turn_deg),
            },
        }


def _nanmean(values: np.ndarray) -> float:
    values = values[np.isfinite(values)]
    return float(values.mean()) if len(values) else math.nan


def _finite(value) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _finite_list(values: np.ndarray | None) -> list | None:
    return None if values is None else [_finite(v) for v in values]


def turn_ratio(rot_requested: np.ndarray, rot_estimated: np.ndarray) -> float:
    """``r_est·r_req / |r_req|²`` of two rotations ``(3, 3)`` relative to frame 0 (rotation vectors); NaN when
    the requested one turns less than :data:`MIN_TURN_DEG`."""
    from ..camera.trajectory import matrix_to_axis_angle

    r_req, r_est = matrix_to_axis_angle(rot_requested), matrix_to_axis_angle(rot_estimated)
    norm2 = float(r_req @ r_req)
    return float(r_est @ r_req) / norm2 if math.degrees(math.sqrt(norm2)) >= MIN_TURN_DEG else math.nan


def trajectory_error(requested, estimated) -> CameraError:
    """Per-frame errors of ``estimated`` against ``requested`` (two ``CameraTrajectory`` of equal length)."""
    from ..camera.trajectory import rotation_angle_deg

    if len(requested) != len(estimated):
        raise ValueError(f"trajectories differ in length: requested {len(requested)}, estimated {len(estimated)}")
    req = requested.relative_to(0).c2w.numpy()
    est = estimated.relative_to(0).c2w.numpy()
    rotation = rotation_angle_deg(req[:, :3, :3], est[:, :3, :3])
    identity = np.broadcast_to(np.eye(3), req[:, :3, :3].shape)
    turns = {"turn_ratio": turn_ratio(req[-1, :3, :3], est[-1, :3, :3]),
             "requested_turn_deg": rotation_angle_deg(identity, req[:, :3, :3]),
             "estimated_turn_deg": rotation_angle_deg(identity, est[:, :3, :3])}
    p_req, p_est = req[:, :3, 3], est[:, :3, 3]
    extent = float(np.linalg.norm(p_req, axis=1).max())
    if extent <= 0:
        nan = np.full(len(req), math.nan)
        return CameraError(rotation, nan, nan.copy(), math.nan, **turns)
    p_req = p_req / extent
    denom = float((p_est * p_est).sum())
    scale = max(0.0, float((p_req * p_est).sum()) / denom) if denom > 0 else 0.0
    translation = np.linalg.norm(p_req - scale * p_est, axis=1)
    norm_req, norm_est = np.linalg.norm(p_req, axis=1), np.linalg.norm(p_est, axis=1)
    est_extent = norm_est.max()
    moving = (norm_req > STILL_FRACTION) & (norm_est > STILL_FRACTION * max(est_extent, 1e-12))
    cos = (p_req * p_est).sum(1) / np.where(moving, norm_req * norm_est, 1.0)
    direction = np.where(moving, np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))), math.nan)
    return CameraError(rotation, translation, direction, scale * extent, **turns)


def fov_of(trajectory, height: int, width: int) -> float:
    """Field of view (degrees, across the longer side) of the trajectory's first-frame intrinsics fitted to
    ``width × height`` with square pixels (as the camera condition is built)."""
    fitted = trajectory.fit_aspect(width, height)
    fx, fy = (float(v) for v in fitted.intrinsics[0, :2])
    focal_px = fx * width if width >= height else fy * height
    return math.degrees(2 * math.atan(max(width, height) / (2 * focal_px)))


def camera_following_error(frames, requested, alpha=None, fov_deg: float | None = None) -> CameraError:
    """Estimate the camera of ``frames`` (``(F, H, W, 3)`` uint8) from its background (``alpha``
    ``(F, H, W)``, 1 = person, masked out) and compare it with the ``requested`` trajectory.

    The estimator uses the requested trajectory's field of view unless ``fov_deg`` is given, and frames larger than
    its working size (``ESTIMATION_SIDE``, the longer side) are reduced to it. Frames the
    estimator could not solve (confidence 0) are listed in ``unreliable_frames``; they stay in the sums.
    """
    import warnings

    from ..camera import ESTIMATION_SIDE, estimate_trajectory

    height, width = frames.shape[1:3]
    fov = fov_of(requested, height, width) if fov_deg is None else fov_deg
    with warnings.catch_warnings():  # the estimator's warnings are recorded in its stats instead
        warnings.simplefilter("ignore", UserWarning)
        estimated, stats = estimate_trajectory(frames, alpha, fov_deg=fov, longer_side=ESTIMATION_SIDE)
    error = trajectory_error(requested, estimated)
    error.unreliable_frames = np.flatnonzero(np.asarray(stats.confidence) <= 0).tolist()
    error.estimator_mode = stats.mode
    error.estimator_warnings = list(stats.warnings)
    return error
