"""Bundle-adjusted starts of a general-motion camera solve, and how one is chosen (used by :mod:`.estimate`).

A start is an initialisation (:func:`~.geometry.solve_general`) adjusted by :func:`~.bundle.bundle_adjust`; another
starting focal or a plane's other pose replaces the default start only when it fits clearly better or explains
clearly more of the observations.
"""

from __future__ import annotations

import numpy as np

from .bundle import agreeing_share, bundle_adjust, refit_error
from .geometry import plane_poses, solve_general
from .intrinsics import focal_bounds
from .tracks import Tracks
from .trajectory import rotation_angle_deg

MIN_FRAME_INLIERS = 12  # a frame whose pose rests on fewer inlier observations is reported unreliable
STEP_MIN_INLIERS = 30  # two-view poses resting on fewer matches are not compared, and a step that fewer inlier
# points tie across is weakly linked
STEP_DISAGREEMENT_DEG = 3.0  # a step whose rotation differs more from its two-view rotation disagrees ...
STEP_DISAGREEMENT_RUN = 2  # ... and this many consecutive disagreeing steps make the clip uncertain
CLEAR_GAIN = 0.7  # another starting focal replaces the default's solution only below this share of its error
SHARE_GAIN = 0.1  # a plane's other pose replaces a solution when it explains this much more of the observations
PLANE_RETRY_SHARE = 0.9  # ... which is tried only for a solution explaining less than this share


def adjust_start(tracks: Tracks, start, k: np.ndarray, width: int, height: int, refine_focal: bool, settings: dict):
    """Bundle adjustment of an initialisation (:func:`solve_general`'s result, or None) → (BundleResult, solved) or
    None."""
    if start is None:
        return None
    w2c, points, has_point, solved = start
    result = bundle_adjust(tracks.points, w2c, points, has_point, solved, k, width, height,
                           refine_focal=refine_focal, rounds=settings["rounds"], max_points=settings["max_points"],
                           max_iterations=settings["max_iterations"])
    low, high = focal_bounds(height, width)
    if refine_focal and not low <= result.focal_px <= high:
        return None
    return result, solved


def median_error(result) -> float:
    """Median reprojection error (px) of a bundle adjustment's inlier observations (inf without any)."""
    return float(np.nanmedian(result.errors[result.used])) if result.used.any() else float("inf")


def clearly_better(result, first, min_share: float) -> bool:
    """Whether bundle adjustment ``result`` fits clearly better than ``first``: a median reprojection error at most
    :data:`CLEAR_GAIN` × first's while keeping at least ``min_share`` × its inlier observations, or no higher error
    with at least twice its inlier observations."""
    error, first_error = median_error(result), median_error(first)
    kept, first_kept = result.used.sum(), first.used.sum()
    return bool((error <= CLEAR_GAIN * first_error and kept >= min_share * first_kept)
                or (error <= first_error and kept >= 2 * first_kept))


def best_adjustment(candidates: list) -> tuple:
    """The first ``(result, solved)`` (the default start), unless another start fits clearly better
    (:func:`clearly_better`, keeping at least half the first's inlier observations: an initialisation that
    triangulated few points would otherwise win with a small, easy subset); then the lowest-error such.
    Starts that end a few % apart are ranked by noise: on 66 real clips the lowest error among such near-ties
    was the worse camera on 32 and the better one on 15."""
    first = candidates[0]
    better = [c for c in candidates[1:] if clearly_better(c[0], first[0], 0.5)]
    return min(better, key=lambda c: median_error(c[0])) if better else first


def plane_start(tracks: Tracks, chosen: tuple, init: int, k_of, width: int, height: int, refine_focal: bool,
                 settings: dict) -> tuple:
    """``chosen`` (an adjustment's ``(result, solved)``), or, when it explains under :data:`PLANE_RETRY_SHARE` of the
    observations (:func:`agreeing_share`), the adjustment started from a pose that the dominant plane of the tracks
    of frames (0, ``init``) allows (:func:`plane_poses`) if that explains :data:`SHARE_GAIN` more. Two views of a
    plane fit two poses; the essential matrix can start in the wrong one, which the clip's other frames fit about as
    well, with many points behind the cameras (a circled wall: 20° off at 0.17 px, 76 % explained; a drone over a
    field: 17° off, 26 %). ``k_of(result)``: its pixel intrinsics."""
    k = k_of(chosen[0])
    chosen_share = agreeing_share(tracks.points, *chosen, k)
    if chosen_share >= PLANE_RETRY_SHARE:
        return chosen
    common = tracks.valid[0] & tracks.valid[init]
    best, best_share = chosen, chosen_share + SHARE_GAIN
    for pose in plane_poses(tracks.points[0, common], tracks.points[init, common], k):
        start = solve_general(tracks, k, init, settings["refine_passes"], settings["pnp_iterations"], pose)
        solution = adjust_start(tracks, start, k, width, height, refine_focal, settings)
        share = agreeing_share(tracks.points, *solution, k_of(solution[0])) if solution else 0.0
        if share >= best_share:
            best, best_share = solution, share
    return best


def fixed_focal_cost(tracks: Tracks, result, solved: np.ndarray, width: int, height: int, max_points: int):
    """``cost(focal)``: median reprojection px of ``result``'s inlier observations after a short adjustment of its
    poses and points to them at that (fixed) focal. Compared with ``result``'s own error (already adjusted to the
    same observations, with the focal free), not with a fourth adjustment at its focal: one adjustment fewer."""
    return lambda focal: refit_error(tracks.points, result, solved, np.array([focal, focal, width / 2, height / 2]),
                                     width, height, max_points, max_iterations=10)


def rotation_gap(w2c_a: np.ndarray, w2c_b: np.ndarray, frames: np.ndarray) -> float:
    """Largest angle (degrees) between two solutions' rotations relative to frame 0 over ``frames`` (bool ``(F,)``);
    ``w2c_a``, ``w2c_b``: ``(F, 4, 4)``."""
    rel_a = w2c_a[frames, :3, :3] @ w2c_a[0, :3, :3].T
    rel_b = w2c_b[frames, :3, :3] @ w2c_b[0, :3, :3].T
    return float(np.max(rotation_angle_deg(rel_a, rel_b), initial=0.0))


def disagreeing_runs(angles: np.ndarray) -> list[int]:
    """Frames ending the steps of runs of at least STEP_DISAGREEMENT_RUN consecutive steps whose rotation
    differs from the two-view one by more than STEP_DISAGREEMENT_DEG (``angles``: ``(F,)``, NaN = not compared)."""
    flagged, run = [], []
    for i, angle in enumerate(np.nan_to_num(angles, nan=0.0)):
        if angle > STEP_DISAGREEMENT_DEG:
            run.append(i)
            continue
        flagged += run if len(run) >= STEP_DISAGREEMENT_RUN else []
        run = []
    return flagged + (run if len(run) >= STEP_DISAGREEMENT_RUN else [])


def weak_links(used: np.ndarray, solved: np.ndarray) -> dict[int, int]:
    """Frame ``i`` → how many inlier points tie the frames before it to frames ``i`` on (seen as inliers on both
    sides), for the steps between solved frames that fewer than :data:`STEP_MIN_INLIERS` tie: a step bridged by so
    few points rests its turn on them, and two-view geometry cannot check it either (on the stair walk three such
    clips ended 2.8-9.8 deg off, reported reliable). ``used``: ``(F, N)`` inlier observations."""
    before = np.logical_or.accumulate(used, axis=0)[:-1]
    after = np.logical_or.accumulate(used[::-1], axis=0)[::-1][1:]
    ties = (before & after).sum(1)  # ties[i - 1]: across the step into frame i
    return {i: int(ties[i - 1]) for i in range(1, len(used))
            if solved[i - 1] and solved[i] and ties[i - 1] < STEP_MIN_INLIERS}


def general_solution(tracks: Tracks, result, solved: np.ndarray, intr: np.ndarray, pixels: np.ndarray,
                      focal_determined: bool, disagreement: np.ndarray, scene_depth: float, focal_estimated: bool,
                      late_parallax: bool, readout: float, readout_direction: str | None) -> dict:
    """A bundle adjustment's poses (relative to frame 0, unit: median depth of frame 0's points = ``scene_depth``)
    and diagnostics: the keyword arguments of ``estimate_trajectory``'s ``finish``. ``intr``: normalised intrinsics;
    ``pixels``: ``(W, H, W, H)``, their scale to pixels."""
    count = len(result.w2c)
    inliers = result.used.sum(1)
    residual = np.array([np.median(e[u]) if u.any() else np.nan for e, u in zip(result.errors, result.used)])
    c2w = np.linalg.inv(result.w2c)
    c2w = np.linalg.inv(c2w[0]) @ c2w
    seen = tracks.valid[0] & result.used.any(0)
    depth = (result.points3d[seen] @ result.w2c[0, :3, :3].T + result.w2c[0, :3, 3])[:, 2]
    depth = depth[depth > 0]
    c2w[:, :3, 3] *= scene_depth / float(np.median(depth)) if len(depth) else 1.0
    return dict(c2w=c2w, intr=intr, motion="general", tracked=tracks.valid.sum(1), inliers=inliers,
                residual=np.nan_to_num(residual),
                unreliable=[i for i in range(1, count) if not solved[i] or inliers[i] < MIN_FRAME_INLIERS],
                focal_estimated=focal_estimated, focal_determined=focal_determined,
                ratio=agreeing_share(tracks.points, result, solved, intr * pixels),
                reprojection=float(np.median(result.errors[result.used])) if result.used.any() else np.nan,
                disagreement={i: float(disagreement[i]) for i in disagreeing_runs(disagreement)},
                weak_links=weak_links(result.used, solved),
                late_parallax=late_parallax, readout=readout, readout_direction=readout_direction)
