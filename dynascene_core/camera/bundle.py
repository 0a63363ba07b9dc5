"""Bundle adjustment of a whole clip with COLMAP's bundle adjuster (``pycolmap``, Ceres on the CPU).

All poses, all triangulated background points and (optionally) the shared focal length are refined
jointly with a robust (Cauchy) loss, so that frames far from the initialisation pair do not inherit its
errors. Observations whose reprojection error stays above ``outlier_px`` are dropped and the problem is
solved again, so tracks that slid onto a moving object or a depth edge cannot pull the cameras. COLMAP builds each
problem and chooses the solver's settings; ``pyceres`` solves it without the GIL where it can (:func:`_solve`).
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np


@dataclass
class BundleResult:
    w2c: np.ndarray  # (F, 4, 4) refined world-to-camera poses
    points3d: np.ndarray  # (N, 3) refined points (rows of unused tracks unchanged)
    used: np.ndarray  # (F, N) bool: observation kept as an inlier
    errors: np.ndarray  # (F, N) reprojection error in pixels, NaN where not observed / no point
    focal_px: float  # refined (or given) focal length in pixels


def reprojection_errors(points2d: np.ndarray, w2c: np.ndarray, points3d: np.ndarray, k: np.ndarray
                        ) -> np.ndarray:
    """Pixel errors ``(F, N)`` of points ``(N, 3)`` projected with poses ``(F, 4, 4)`` and
    ``k = (fx, fy, cx, cy)`` against observations ``(F, N, 2)`` (NaN stays NaN; behind the camera → inf)."""
    cam = points3d[None] @ np.transpose(w2c[:, :3, :3], (0, 2, 1)) + w2c[:, None, :3, 3]
    z = cam[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        u = cam[..., 0] / z * k[0] + k[2]
        v = cam[..., 1] / z * k[1] + k[3]
        err = np.hypot(u - points2d[..., 0], v - points2d[..., 1])
    return np.where(z > 1e-9, err, np.where(np.isnan(points2d[..., 0]), np.nan, np.inf))


def agreeing_share(points2d: np.ndarray, result: BundleResult, solved: np.ndarray, k: np.ndarray,
                   outlier_px: float = 2.0, depth_angle_deg: float = 1.0) -> float:
    """Share of the observations that ``result``'s poses explain, over every track seen in at least two ``solved``
    frames: the adjustment's inliers, and for a track it held no point for, the observations within ``outlier_px``
    of the point triangulated (linear, from all of them) in front of the cameras. A point whose first and last rays
    meet at under ``depth_angle_deg`` may sit on either side (noise flips a far point's depth) and is not judged
    by side. The adjustment's own ratio leaves such tracks out: a circled wall solved in the plane's other
    decomposition puts the points of about half its observations behind the cameras, yet kept all its inliers.
    ``points2d``: ``(F, N, 2)``; ``k``: pixel ``(fx, fy, cx, cy)``."""
    observed = ~np.isnan(points2d[..., 0]) & solved[:, None]
    tracked = observed.sum(0) >= 2
    pointless = tracked & ~np.isfinite(result.errors).any(0)
    seen = observed[:, pointless]  # (F, M)
    rays = np.stack([(points2d[:, pointless, 0] - k[2]) / k[0], (points2d[:, pointless, 1] - k[3]) / k[1],
                     np.ones(seen.shape)], -1)  # (F, M, 3) normalised image coordinates
    rays = np.where(seen[..., None], rays, 0.0)  # absent: no ray, no equations
    projection = result.w2c[:, :3]  # (F, 3, 4)
    # x (P₃ X) − P₁ X = 0 and y (P₃ X) − P₂ X = 0 for each observation; absent ones are zero rows
    rows = np.concatenate([rays[..., :1] * projection[:, None, 2] - projection[:, None, 0],
                           rays[..., 1:2] * projection[:, None, 2] - projection[:, None, 1]])  # (2F, M, 4)
    rows = np.where(np.concatenate([seen, seen])[..., None], rows, 0.0).transpose(1, 0, 2)
    rows /= np.linalg.norm(rows, axis=2, keepdims=True) + 1e-12
    homogeneous = np.linalg.svd(rows, full_matrices=False)[2][:, -1]  # (M, 4)
    homogeneous *= np.where(homogeneous[:, 3] < 0, -1.0, 1.0)[:, None]
    cam = np.einsum("fij,mj->fmi", projection, homogeneous)  # (F, M, 3); depth sign = sign of cam z (w >= 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        error = np.hypot(cam[..., 0] / cam[..., 2] * k[0] + k[2] - points2d[:, pointless, 0],
                         cam[..., 1] / cam[..., 2] * k[1] + k[3] - points2d[:, pointless, 1])
    world = np.einsum("fji,fmj->fmi", result.w2c[:, :3, :3], rays)  # rays in world axes
    first, last = np.argmax(seen, 0), len(seen) - 1 - np.argmax(seen[::-1], 0)
    columns = np.arange(seen.shape[1])
    a, b = world[first, columns], world[last, columns]
    cosine = np.sum(a * b, 1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-12)
    sided = cosine < np.cos(np.radians(depth_angle_deg))
    agree = seen & (error < outlier_px) & ((cam[..., 2] > 0) | ~sided[None])
    kept = (result.used & observed & tracked[None]).sum()
    return float((kept + agree.sum()) / max(1, (observed & tracked[None]).sum()))


def refit_error(points2d: np.ndarray, result: BundleResult, solved: np.ndarray, k: np.ndarray, width: int,
                height: int, max_points: int, max_iterations: int) -> float:
    """Median reprojection px of ``result``'s inlier observations, taken from ``points2d (F, N, 2)``, after a short
    adjustment (one round, fixed intrinsics ``k``) of its poses and points to them: how well a changed focal or
    changed observations fit, starting from ``result``."""
    inliers = np.where(result.used[..., None], points2d, np.nan)
    trial = bundle_adjust(inliers, result.w2c, result.points3d, result.used.any(0), solved, k, width, height,
                          refine_focal=False, rounds=1, max_iterations=max_iterations, max_points=max_points)
    return float(np.nanmedian(trial.errors[result.used]))


def _released_solver():
    """pyceres, when installed and built on pycolmap's Ceres release, else None. Its ``solve`` runs COLMAP's problem
    without the GIL (pycolmap's ``BundleAdjuster.solve`` holds it), so adjustments on two threads run side by side
    (:mod:`.estimate`). The two wheels compile Ceres apart, so a result can differ in its last digits, which a free
    focal's flat cost can carry further (BENCHMARKS.md, "Adjustments without the GIL")."""
    global _SOLVER
    if _SOLVER is None:
        import pycolmap
        try:
            import pyceres
        except ImportError:
            pyceres = None
        ceres = getattr(pycolmap, "__ceres_version__", None)
        _SOLVER = pyceres if pyceres is not None and ceres and pyceres.__ceres_version__ == ceres else False
    return _SOLVER or None


_SOLVER = None  # _released_solver's answer once found (False: none)
_QUIET = threading.Lock()
_quiet_users = 0  # adjustments running under _errors_only
_saved_levels: list[int] = []


@contextmanager
def _errors_only(logs: list):
    """Only errors logged by the glog modules ``logs`` while any adjustment runs (levels restored after the last one,
    whichever thread ends last). Ceres warns each time Levenberg-Marquardt retries a step on a singular system
    (degenerate tracks): routine here, and the quality report says what matters."""
    global _quiet_users, _saved_levels
    with _QUIET:
        if _quiet_users == 0:
            _saved_levels = [log.minloglevel for log in logs]
            for log in logs:
                log.minloglevel = max(log.minloglevel, int(log.Level.ERROR))
        _quiet_users += 1
    try:
        yield
    finally:
        with _QUIET:
            _quiet_users -= 1
            if _quiet_users == 0:
                for log, level in zip(logs, _saved_levels):
                    log.minloglevel = level


def _solve(options, config, reconstruction) -> None:
    """Adjust ``reconstruction`` in place with COLMAP's Ceres problem and solver settings (``options``: pycolmap
    ``BundleAdjustmentOptions``; ``config``: its ``BundleAdjustmentConfig``), without the GIL where
    :func:`_released_solver` allows."""
    import pycolmap

    pyceres = _released_solver()
    with _errors_only([pycolmap.logging] + ([pyceres.logging] if pyceres else [])):
        if not pyceres:
            pycolmap.create_default_bundle_adjuster(options, config, reconstruction).solve()
            return
        adjuster = pycolmap.create_default_ceres_bundle_adjuster(options, config, reconstruction)
        problem = adjuster.problem  # the adjuster owns it and the loss: both stay alive while solving
        if problem.num_residuals():
            pyceres.solve(options.ceres.create_solver_options(config, problem), problem, pyceres.SolverSummary())


def bundle_adjust(points2d: np.ndarray, w2c: np.ndarray, points3d: np.ndarray, has_point: np.ndarray,
                  solved: np.ndarray, k: np.ndarray, width: int, height: int, *, refine_focal: bool,
                  outlier_px: float = 2.0, rounds: int = 2, max_iterations: int = 50, max_points: int = 1000
                  ) -> BundleResult:
    """Refine poses of ``solved`` frames, points with ``has_point`` and (``refine_focal``) one focal.

    ``points2d``: ``(F, N, 2)`` track positions (NaN = absent); ``w2c``: ``(F, 4, 4)`` initial poses;
    ``points3d``: ``(N, 3)``; ``k``: pixel ``(fx, fy, cx, cy)``. A refined focal keeps square pixels
    (one focal, COLMAP ``SIMPLE_PINHOLE``); the principal point stays fixed. At most ``max_points``
    points enter the adjustment (the longest tracks); the others keep their initial position.
    """
    import pycolmap

    frames, count = points2d.shape[:2]
    w2c, points3d = w2c.copy(), points3d.copy()
    k = np.asarray(k, np.float64).copy()
    observed = ~np.isnan(points2d[..., 0]) & solved[:, None] & has_point[None, :]
    used = observed.copy()
    errors = None
    for round_index in range(rounds):
        length = used.sum(0)
        keep = length >= 2
        if keep.sum() > max_points:
            keep &= length >= np.sort(length[keep])[-max_points]
        frame_ok = (used & keep[None]).sum(1) >= 6
        if frame_ok.sum() < 2:
            break
        rec = pycolmap.Reconstruction()
        if refine_focal:
            camera = pycolmap.Camera(model="SIMPLE_PINHOLE", width=width, height=height, camera_id=1,
                                     params=[0.5 * (k[0] + k[1]), k[2], k[3]])
        else:
            camera = pycolmap.Camera(model="PINHOLE", width=width, height=height, camera_id=1,
                                     params=[k[0], k[1], k[2], k[3]])
        rec.add_camera_with_trivial_rig(camera)
        slots = np.full((frames, count), -1)
        for i in np.flatnonzero(frame_ok):
            index = np.flatnonzero(used[i] & keep)
            slots[i, index] = np.arange(len(index))
            image = pycolmap.Image(name=str(i), keypoints=points2d[i, index].astype(np.float64), camera_id=1,
                                   image_id=int(i) + 1)
            pose = pycolmap.Rigid3d(pycolmap.Rotation3d(w2c[i, :3, :3]), w2c[i, :3, 3])
            rec.add_image_with_trivial_frame(image, pose)
        # tracks from flat lists of observations: a numpy call per point cost as much as building them
        kept = np.flatnonzero(keep)
        kept_slots = slots[:, kept].T  # (K, F)
        point_of, frame_of = np.nonzero(kept_slots >= 0)  # observations ordered by point
        elements = [pycolmap.TrackElement(i, s)
                    for i, s in zip((frame_of + 1).tolist(), kept_slots[point_of, frame_of].tolist())]
        bounds = np.searchsorted(point_of, np.arange(len(kept) + 1)).tolist()
        point_ids = {}
        for n, j in enumerate(kept.tolist()):
            if bounds[n + 1] - bounds[n] >= 2:
                point_ids[j] = rec.add_point3D(points3d[j], pycolmap.Track(elements[bounds[n]:bounds[n + 1]]))
        options = pycolmap.BundleAdjustmentOptions()
        options.print_summary = False
        options.refine_focal_length = refine_focal
        options.refine_principal_point = False
        options.refine_extra_params = False
        options.ceres.loss_function_type = pycolmap.LossFunctionType.CAUCHY
        options.ceres.loss_function_scale = 1.0
        options.ceres.solver_options.max_num_iterations = max_iterations
        # COLMAP turns Ceres' relative-decrease stop off (0) and so always ran every iteration here; the
        # poses stop changing long before. A free focal sits in a flat valley, hence the tighter bound in the
        # last round (the rounds before it only have to find the outliers)
        last = round_index == rounds - 1
        options.ceres.solver_options.function_tolerance = 1e-7 if refine_focal and last else 1e-6
        options.ceres.solver_options.num_threads = 1
        config = pycolmap.BundleAdjustmentConfig()
        for i in np.flatnonzero(frame_ok):
            config.add_image(int(i) + 1)
        config.fix_gauge(pycolmap.BundleAdjustmentGauge.TWO_CAMS_FROM_WORLD)  # else the solver drifts in 7 dof
        _solve(options, config, rec)
        for i in np.flatnonzero(frame_ok):
            pose = rec.image(int(i) + 1).cam_from_world()
            w2c[i, :3, :3] = pose.rotation.matrix()
            w2c[i, :3, 3] = pose.translation
        for j, point_id in point_ids.items():
            if rec.exists_point3D(point_id):  # the adjuster may drop degenerate points
                points3d[j] = rec.point3D(point_id).xyz
        params = rec.camera(1).params
        k = np.array([params[0], params[0], k[2], k[3]]) if refine_focal else k
        errors = reprojection_errors(points2d, w2c, points3d, k)
        used = observed & (errors < outlier_px)
    if errors is None:  # nothing was adjusted
        errors = reprojection_errors(points2d, w2c, points3d, k)
    errors[~observed] = np.nan
    return BundleResult(w2c, points3d, observed & (errors < outlier_px), errors, float(0.5 * (k[0] + k[1])))
