"""Camera trajectory estimation from a video with the human masked out (OpenCV + COLMAP bundle adjustment).

Pipeline:

1. **Tracking** on background pixels only (masks dilated): pyramidal KLT frame to frame with a
   forward–backward check (a 9-px window, 21 px for steps of 20 px or more; a step too large for the pyramid is
   tracked again from an ORB homography's prediction), points entering the human mask dropped, new corners
   detected wherever the track count falls below ``max_features`` (:mod:`.tracks`). The accurate method instead
   matches SIFT features between every pair of frames up to 12 apart, verified by epipolar geometry, and chains the
   matches (:mod:`.matches`).
2. **Static test**: the median background motion stays below ``static_px`` → identity poses.
3. **Parallax test**: robust homography vs. epipolar residuals between frame 0 and later frames (and,
   when the tracks of frame 0 end before mid-clip, between later frames). Without parallax the motion is
   a pure rotation (pan/tilt/roll) or zoom: rotations are fitted to bearing vectors of homography
   inliers (Kabsch), translation 0; an unknown focal is the one that makes the motion most rotation-like; a
   rolling shutter is corrected as below (:mod:`.rotation_only`). A homography also fits a plane under any
   motion: when the rotations leave more than ``parallax_px`` (a wall passed or circled, or parallax the test
   missed), general motion is solved too and kept if it fits clearly better (:data:`PLANE_GAIN`).
4. **General motion**: essential matrix + PnP initialisation (:mod:`.geometry`; a frame whose tracks are
   all new is bridged by the essential matrix with the frame before), then **bundle
   adjustment of the whole clip** with COLMAP's adjuster (:mod:`.bundle`): all poses, all points and
   an unknown focal refined jointly with a robust loss, outlier observations dropped and solved again; then the
   tracks are unrolled for a rolling shutter whose readout and direction are found from the clip
   (:mod:`.rolling_shutter`).
   The unit is set so that the median depth of the background points seen in frame 0 is ``scene_depth``.

Methods: ``"fast"`` (default; one initialisation, and when an estimated focal comes out undetermined two
other starting focals screened with a small adjustment, one solved in full only if it fits clearly better; with the
focal estimated, the clip then solved again from the focal found; a clip its KLT tracks leave in doubt is estimated
again on SIFT matches, and a clip of more than ``quality.LONG_KLT_FRAMES`` frames on SIFT matches first, see
:func:`estimate_trajectory`)
and ``"accurate"`` (SIFT tracks, every track in the bundle adjustment, a refinement pass of the initialisation,
several initial focal lengths, starts from the poses the initial pair's dominant plane allows, one more outlier
round; slower). Both check a clip that would be reported reliable
with a second start from another pair of frames: a gap makes the verdict uncertain.
Intrinsics: ``fov_deg`` (field of view across the **longer side**), or ``intrinsics`` (a file or
normalised ``(fx, fy, cx, cy)``), or neither: the focal is then estimated (square pixels, principal
point at the centre). Poses are relative to the first frame (its camera is the world frame). Every
result carries a :class:`~.quality.CameraQuality` report (``stats.quality``).
"""

from __future__ import annotations

import warnings
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch

from ..matting.masks import dilate
from .geometry import (later_parallax, parallax_pair, parallax_residuals, second_start_frame, solve_general,
                       step_disagreement)
from .intrinsics import DEFAULT_FOV_DEG, focal_is_determined, fov_of, intrinsics_for_fov, resolve_intrinsics
from .matches import match_tracks
from .quality import FOCAL_UNDETERMINED, LONG_KLT_CLIP, LONG_KLT_FRAMES, VERDICTS, CameraQuality, assess
from .rolling_shutter import DIRECTIONS, MAX_READOUT, unroll_tracks
from .rotation_only import rotation_solution
from .solutions import (MIN_FRAME_INLIERS, STEP_MIN_INLIERS, adjust_start, best_adjustment, clearly_better,
                        fixed_focal_cost, general_solution, median_error, plane_start, rotation_gap)
from .tracks import Tracks, as_masks, as_uint8_frames, reduced_frames, reduced_masks, track_points
from .trajectory import CameraTrajectory

SIFT_FEATURES = 1000
ESTIMATION_SIDE = 512  # px: the longer side the pixel thresholds were set and the speed measured at (BENCHMARKS.md)
SMALLEST_SIDE = 128  # px: the smallest longer side frames may be reduced to (``longer_side``)

METHODS = {
    "fast": dict(tracker="klt", plane_check=1.0, plane_starts=False, max_features=600, refine_passes=0, rounds=2,
                 max_points=500, max_iterations=50, pnp_iterations=200, start_fovs=(DEFAULT_FOV_DEG,),
                 retry_fovs=(45.0, 85.0), focal_restart=True, readout_points=150, doubt_retry=True),
    # accurate tracks matched SIFT features: on phone clips with COLMAP poses the KLT tracks hold the adjustment 1–4°
    # from poses that SIFT matches put within 0.6° (BENCHMARKS.md); plane_starts: the initial pair is also started
    # from the poses its dominant plane allows (plane_start); focal_restart: an estimated focal's clip solved again from
    # the focal found (fast only: the accurate method starts from three focals, and the 66 earlier clips got worse)
    "accurate": dict(tracker="sift", plane_check=0.5, plane_starts=True, max_features=SIFT_FEATURES, refine_passes=1,
                     rounds=3, max_points=3000, max_iterations=50, pnp_iterations=200,
                     start_fovs=(DEFAULT_FOV_DEG, 45.0, 85.0), retry_fovs=(), focal_restart=False, readout_points=500,
                     match_window=12, doubt_retry=False),
}
# the fast method's other tracks (estimate_trajectory): SIFT matches between frames up to 4 apart, with its other
# settings; its second try on a clip its KLT tracks leave in doubt (on 75 COLMAP-posed clips 13 of the 14 doubtful
# ones were kept, 12 of them 2.8-16.8 deg closer, none farther, and the p90 went 6.54 -> 2.04 deg; BENCHMARKS.md)
FAST_SIFT = dict(tracker="sift", max_features=SIFT_FEATURES, match_window=4)
# on a clip of more than quality.LONG_KLT_FRAMES frames, where KLT tracks drift, the fast method tracks FAST_SIFT's
# matches first (and KLT only when they leave the clip in doubt; 48- and 96-frame phone clips, focal given: 0.79 / 2.89
# deg median / p90 on KLT, 0.35 / 0.77 and 0.46 / 0.90 on these; BENCHMARKS.md), and either method adjusts at least
# this many points per frame: a long clip's 500 (accurate: 3000) longest tracks leave each frame few, and too many
# observations unexplained for a reliable verdict
LONG_POINTS_PER_FRAME = 32
# the fast method's quick look at other starting focals: a small, short adjustment of a cheaper initialisation
# (on the 66 real and 46 synthetic clips of BENCHMARKS.md it chose the same starts as 200 PnP samples and 50
# iterations; 20 iterations still see the two wrong minima of the unit tests)
SCREENING = dict(METHODS["fast"], rounds=1, max_points=150, max_iterations=20, pnp_iterations=50)
CHECK = dict(METHODS["fast"], rounds=1)  # the second start's settings: one round finds where that start ends
PLANE_GAIN = 0.5  # a general solution replaces a poor rotation-only fit only below this share of its error
ROTATION_KEPT = "rotation-only poses kept (translation not estimated)"  # ends each reason a turn was kept over travel


@dataclass
class EstimationStats:
    """Per-frame diagnostics of :func:`estimate_trajectory` (arrays of length F) and the clip's report."""

    tracked: np.ndarray  # background tracks alive in the frame
    inliers: np.ndarray  # tracks consistent with the frame's estimated pose
    confidence: np.ndarray  # in [0, 1]: inlier fraction × min(1, inliers / 50)
    reprojection_px: np.ndarray  # median reprojection error of the inliers (pixels)
    mode: str = "general"  # motion found: "general", "rotation", "static"
    fov_deg: float = DEFAULT_FOV_DEG
    warnings: list[str] = field(default_factory=list)
    quality: CameraQuality | None = None  # the per-clip report (always set by estimate_trajectory)


def _plane_fits_better(general: dict, rotation: dict) -> bool:
    """Whether the general solution of a clip without homography parallax (a plane seen while travelling) replaces
    its rotation-only one: at most :data:`PLANE_GAIN` × its reprojection error, with no more unreliable frames."""
    return bool(general["reprojection"] <= PLANE_GAIN * rotation["reprojection"]
                and len(general["unreliable"]) <= len(rotation["unreliable"]))


def estimate_trajectory(frames, masks=None, fov_deg: float | None = None, *, intrinsics=None,
                        method: str = "fast", readout: float | None = None, readout_direction: str | None = None,
                        max_features: int | None = None, longer_side: int | None = None, progress=None, **options
                        ) -> tuple[CameraTrajectory, EstimationStats]:
    """Estimate the camera of a clip from its background; poses relative to the first frame.

    ``frames``: ``(F, H, W, 3)`` uint8 (or a ``(F, 3, H, W)`` float tensor in [0, 1], any device).
    ``masks``: optional ``(F, H, W)`` / ``(F, 1, H, W)``, 1 (or > 127 for uint8) = human; dilated by
    ``mask_dilation`` × the longer side before use. ``fov_deg``: FOV across the longer side, or
    ``intrinsics``: an intrinsics file (JSON / COLMAP ``cameras.txt`` / RealEstate10K poses) or normalised
    ``(fx, fy, cx, cy)``; with neither, the focal is estimated. ``method``: ``"fast"`` or ``"accurate"``.
    ``readout``: the rolling-shutter readout in frame intervals of the clip (0: global shutter, no correction;
    None: found from the clip); ``readout_direction``: where it goes in the picture (``"down"``: rows top to
    bottom, ``"up"``, ``"right"``: columns left to right, ``"left"``; None: found). ``longer_side``: frames
    (and masks) whose longer side exceeds it are reduced to it first (None: estimated at their size; the callers
    that read whole videos pass :data:`ESTIMATION_SIDE`); the poses do not depend on the size (normalised
    intrinsics), the report's pixel figures are at the size estimated (``quality.width``, ``quality.height``).
    Returns the trajectory and :class:`EstimationStats` (``stats.quality`` is the per-clip report).
    Too few background features → a static trajectory, a ``UserWarning`` and an "unreliable" verdict.
    ``progress(frames_done, frames)`` is called after each tracked frame and before the pose solve (again from 1
    when the fast method tries a clip a second time); it may raise to cancel. ``options``: the thresholds of
    :func:`_estimate` (``mask_dilation``, ``fb_px``, ``static_px``, ``parallax_px``, ``parallax_ratio``,
    ``min_points``, ``scene_depth``).

    The fast method tries a clip its KLT tracks leave in doubt (a verdict other than reliable for a reason
    besides an undetermined focal) a second time on SIFT matches (:data:`FAST_SIFT`), and keeps that result,
    unless it is unreliable, when its verdict is better, or as good with fewer reasons for doubt, or as many with a
    larger share of its observations explained (:func:`_ranked`): KLT carries each
    step's error into the next, and on such clips the matches held the poses 2.8-16.8 deg closer (BENCHMARKS.md).
    A clip of more than ``quality.LONG_KLT_FRAMES`` frames, over which that error grows, is tracked the other way
    round: SIFT matches first, KLT tracks when they leave it in doubt; either method then adjusts at least
    :data:`LONG_POINTS_PER_FRAME` points per frame.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {sorted(METHODS)}, got {method!r}")
    if readout is not None and not 0 <= readout <= MAX_READOUT:
        raise ValueError(f"readout must be None or 0-{MAX_READOUT:g} frame intervals, got {readout!r}")
    if readout_direction is not None and readout_direction not in DIRECTIONS:
        raise ValueError(f"readout_direction must be None or one of {list(DIRECTIONS)}, got {readout_direction!r}")
    if longer_side is not None and longer_side < SMALLEST_SIDE:
        raise ValueError(f"longer_side must be None or at least {SMALLEST_SIDE} px, got {longer_side!r}")
    frames = as_uint8_frames(frames)
    if len(frames) < 1:
        raise ValueError("estimate_trajectory needs at least one frame")
    human = as_masks(masks, frames)
    if longer_side is not None:
        frames = reduced_frames(frames, longer_side)
        human = None if human is None else reduced_masks(human, longer_side)
    settings = METHODS[method]

    long_clip = len(frames) > LONG_KLT_FRAMES
    fewest_points = LONG_POINTS_PER_FRAME * len(frames) if long_clip else 0  # adjusted on a long clip

    def run(how: dict) -> tuple[CameraTrajectory, EstimationStats]:
        how = dict(how, max_features=max_features or how["max_features"],
                   max_points=max(how["max_points"], fewest_points))
        return _estimate(frames, human, fov_deg, intrinsics, how, readout, readout_direction, progress, **options)

    first, second = settings, dict(settings, **FAST_SIFT)
    if settings["tracker"] == "klt" and long_clip:  # KLT tracks drift over long clips
        first, second = second, first
    trajectory, stats = run(first)
    if settings["doubt_retry"] and _in_doubt(stats.quality):
        retried = run(second)
        if retried[1].quality.verdict != "unreliable" and _ranked(retried[1].quality) < _ranked(stats.quality):
            trajectory, stats = retried
    for text in stats.warnings:
        warnings.warn(text, UserWarning, stacklevel=2)
    return trajectory, stats


def _in_doubt(quality: CameraQuality) -> bool:
    """Whether a clip's verdict is other than reliable for a reason besides an undetermined focal (which other
    tracks cannot mend: most real clips with the focal estimated)."""
    return quality.verdict != "reliable" and any(reason != FOCAL_UNDETERMINED for reason in quality.reasons)


def _ranked(quality: CameraQuality) -> tuple[int, int, float]:
    """Sort key of two estimates of one clip: the better verdict first, then the fewer reasons for doubt, then the
    larger share of agreeing observations."""
    return VERDICTS.index(quality.verdict), len(quality.reasons), -quality.inlier_ratio


def _estimate(frames: np.ndarray, human: np.ndarray | None, fov_deg: float | None, intrinsics, settings: dict,
              readout: float | None, readout_direction: str | None, progress, mask_dilation: float = 0.02,
              fb_px: float = 0.5, static_px: float = 0.3, parallax_px: float = 0.6, parallax_ratio: float = 3.0,
              min_points: int = 20, scene_depth: float = 1.0) -> tuple[CameraTrajectory, EstimationStats]:
    """One estimate of :func:`estimate_trajectory` with a :data:`METHODS` entry's ``settings`` (``frames``
    ``(F, H, W, 3)`` uint8, ``human`` ``(F, H, W)`` bool or None); warnings are left in ``stats.warnings``."""
    count, height, width = frames.shape[:3]
    given = resolve_intrinsics(intrinsics, fov_deg, height, width)
    estimate_focal = given is None
    gray = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames])
    allowed = np.full(gray.shape, 255, np.uint8)
    if human is not None:
        radius = max(1, int(round(mask_dilation * max(height, width))))
        grown = dilate(torch.from_numpy(human[:, None].astype(np.float32)), radius)[:, 0].numpy() > 0.5
        allowed[grown] = 0
    border = max(2, width // 100)
    allowed[:, :border], allowed[:, -border:], allowed[:, :, :border], allowed[:, :, -border:] = 0, 0, 0, 0
    pixels = np.array([width, height, width, height])
    tracks = None

    def finish(c2w, intr, motion, tracked, inliers, residual, unreliable, focal_estimated, focal_determined=True,
               failure=None, ratio=1.0, reprojection=0.0, zoom=None, disagreement=None, fallback=None,
               check_start=None, late_parallax=False, readout=0.0, readout_direction=None, weak_links=None):
        notes = [failure] if failure else []
        notes += [f"camera estimation: {fallback}"] if fallback else []
        if len(unreliable):
            notes.append(f"camera estimation: no reliable pose for frames {list(map(int, unreliable))}")
        lengths = tracks.valid.sum(0) if tracks is not None else np.zeros(0, int)
        valid_tracks = int((lengths >= 2).sum())
        coverage = tracks.coverage(allowed) if valid_tracks else None
        mean_track_frames = float(lengths[lengths >= 2].mean()) if valid_tracks else None

        def report(start_gap: float | None) -> CameraQuality:
            return assess(frames=count, motion=motion, reprojection_px=reprojection, track_count=valid_tracks,
                          inlier_ratio=ratio, focal_px=float(0.5 * (intr[0] * width + intr[1] * height)),
                          fov_deg=fov_of(intr, height, width), focal_estimated=focal_estimated,
                          unreliable_frames=list(unreliable), failure=failure, focal_determined=focal_determined,
                          step_disagreement_deg=disagreement, weak_links=weak_links, fallback=fallback,
                          start_disagreement_deg=start_gap, late_parallax=late_parallax, readout=readout,
                          readout_direction=readout_direction,
                          coverage=coverage, mean_track_frames=mean_track_frames, tracker=settings["tracker"],
                          width=width, height=height,
                          focal_source="estimated" if focal_estimated else "given" if given is not None else "assumed")

        quality = report(None)
        # the second start can only add a doubt: a clip already in doubt is not checked, unless only for its length
        # (a long clip on KLT tracks: the fast method's second try), where what the check finds ranks the estimate
        if check_start is not None and all(reason == LONG_KLT_CLIP for reason in quality.reasons):
            start_gap = check_start()
            quality = quality if start_gap is None else report(start_gap)
        per_frame = np.tile(intr, (count, 1))
        if zoom is not None:
            per_frame[:, :2] *= zoom[:, None]
        confidence = np.where(inliers > 0, inliers / np.maximum(tracked, 1) * np.minimum(1.0, inliers / 50.0), 0.0)
        confidence[list(unreliable)] = 0.0
        confidence[0] = 0.0 if failure else 1.0
        stats = EstimationStats(tracked, inliers, np.clip(confidence, 0, 1), residual, motion,
                                fov_of(intr, height, width), notes, quality)
        return CameraTrajectory(torch.from_numpy(c2w), torch.from_numpy(per_frame)), stats

    fallback = intrinsics_for_fov(DEFAULT_FOV_DEG, height, width) if estimate_focal else given
    identity = np.tile(np.eye(4), (count, 1, 1))
    zeros = np.zeros(count, int)
    if count == 1:
        return finish(identity, fallback, "static", zeros, zeros, np.zeros(count), [], False)
    features = settings["max_features"]
    tracks = (match_tracks(gray, allowed, features, progress, window=settings["match_window"])
              if settings["tracker"] == "sift" else track_points(gray, allowed, features, fb_px, progress))
    valid = tracks.valid
    tracked = valid.sum(1)
    if tracked.min() < min_points:
        bad = int(np.argmin(tracked))
        return finish(identity, fallback, "static", tracked, zeros, np.zeros(count), [], False,
                      failure=f"camera estimation: only {tracked[bad]} background features in frame {bad} "
                              f"(need {min_points}); returning a static camera", ratio=0.0)

    # static test: median frame-to-frame motion of background tracks, accumulated
    steps = np.linalg.norm(tracks.points[1:] - tracks.points[:-1], axis=-1)
    step_median = np.array([np.median(s[~np.isnan(s)]) if (~np.isnan(s)).sum() else np.inf for s in steps])
    if step_median.sum() < static_px:
        return finish(identity, fallback, "static", tracked, tracked.copy(), np.zeros(count), [], False)

    # parallax test against frame 0: a homography (rotation / zoom) must explain the tracks clearly
    # worse than epipolar geometry does before translation is estimated
    pairs, residuals = [], []
    for i in sorted(set(range(max(1, count // 8), count, max(1, count // 8))) | {1}):
        common = valid[0] & valid[i]
        if common.sum() < max(40, min_points):
            break
        pairs.append((0, i))
        residuals.append((i, *parallax_residuals(tracks.points[0, common], tracks.points[i, common], parallax_px,
                                                 parallax_ratio)))
    best, has_parallax = parallax_pair(residuals, parallax_px, parallax_ratio)
    reach = pairs[-1][1] if pairs else 0  # the last frame still sharing enough tracks with frame 0
    late_parallax = False
    if not has_parallax and reach < count // 2:
        # fast motion ended the tracks of frame 0 before mid-clip, maybe before their parallax showed
        has_parallax = late_parallax = later_parallax(tracks, max(40, min_points), parallax_px, parallax_ratio)
        if has_parallax and residuals:  # initialise on the frame-0 pair with the most motion
            best = max(residuals, key=lambda r: r[1])[0]
    rotation_fit = plane_second = None  # the rotation-only solution when the parallax test found none; see below
    if not has_parallax:
        rotation_fit = rotation_solution(tracks, given, pairs, min_points, height, width, readout, readout_direction)
        # a homography fits a plane (a wall, a floor) under any motion: when no rotation explains the tracks that
        # homographies fit, the camera may be travelling past a plane, so general motion is solved too, started
        # from the two frame-0 pairs with the most homography residual (the accurate method's SIFT positions are
        # precise enough to doubt a rotation at half that residual: a slow random move taken for a turn left 0.48 px)
        if rotation_fit["reprojection"] > settings["plane_check"] * parallax_px and len(residuals) >= 2:
            has_parallax = True
            best, plane_second = [i for _, i in sorted((-res, i) for i, res, _ in residuals)[:2]]
    if progress is not None:  # a cancel point before the pose solve (bundle adjustment is the slow part)
        progress(count, count)

    if has_parallax:
        def start_k(start_fov: float | None) -> np.ndarray:
            """Pixel intrinsics of a starting FOV (the given ones when the focal is known)."""
            return (intrinsics_for_fov(start_fov, height, width) if estimate_focal else given) * pixels

        def start_from(start_fov: float | None, how: dict = settings) -> list:
            """:func:`solve_general` from a starting FOV, then its bundle adjustment (``how``: a METHODS entry) →
            [(start_fov, (result, solved))], or [] when either fails."""
            k = start_k(start_fov)
            start = solve_general(tracks, k, best, how["refine_passes"], how["pnp_iterations"])
            solution = adjust_start(tracks, start, k, width, height, estimate_focal, how)
            return [] if solution is None else [(start_fov, solution)]

        def result_intrinsics(result) -> np.ndarray:
            """Normalised intrinsics of an adjustment's result."""
            return (np.array([result.focal_px, result.focal_px, width / 2, height / 2]) / pixels
                    if estimate_focal else given)

        # OpenCV and the adjustments (bundle._solve) release the GIL, so work that need not wait for the solution at
        # hand runs on a helper thread beside it: the other starting focals' screening (used when the focal comes out
        # undetermined, as on most real clips), the restart from the focal found, the second start (initialised and
        # adjusted) when the focal is given, the two-view check of the chosen solution's steps and whether its focal
        # is determined, and the accurate method's other starting focals beside the first
        second = (plane_second if plane_second is not None
                  else second_start_frame(tracks, residuals, best, parallax_px, parallax_ratio))
        raw = tracks  # the tracks before a rolling-shutter correction (below)

        def second_start(k: np.ndarray):
            """The start from the ``second`` pair adjusted at pixel intrinsics ``k`` on the ``raw`` tracks: where
            that start ends (:data:`CHECK`) → (result, solved), or None."""
            start = solve_general(raw, k, second, CHECK["refine_passes"], CHECK["pnp_iterations"])
            return adjust_start(raw, start, k, width, height, False, CHECK)

        helper = ThreadPoolExecutor(max_workers=1)
        try:
            screening = [helper.submit(start_from, fov, SCREENING)
                         for fov in (settings["retry_fovs"] if estimate_focal else ())]
            # a given focal needs nothing from the solution to check it: the second start runs beside the first
            checking = (helper.submit(second_start, start_k(None))
                        if second is not None and not estimate_focal else None)
            starts = settings["start_fovs"] if estimate_focal else (None,)
            beside = [helper.submit(start_from, fov) for fov in starts[1:]]
            candidates = [solution for _, solution in start_from(starts[0])
                          + [found for future in beside for found in future.result()]]
            if candidates:
                result, solved = best_adjustment(candidates)
                if settings["plane_starts"]:  # before the focal retry below, which chooses among `candidates` again:
                    # the accurate method, which starts from the plane's poses, has no retry_fovs
                    result, solved = plane_start(tracks, (result, solved), best,
                                                  lambda found: result_intrinsics(found) * pixels, width, height,
                                                  estimate_focal, settings)

                def check_steps() -> Future:
                    """:func:`step_disagreement` of the current solution, on the helper thread."""
                    return helper.submit(step_disagreement, tracks, result.w2c, solved,
                                         result_intrinsics(result) * pixels, STEP_MIN_INLIERS)

                def focal_pinned(found, found_solved, found_tracks: Tracks) -> bool:
                    """Whether a solution's estimated focal is determined (:func:`focal_is_determined`)."""
                    cost = fixed_focal_cost(found_tracks, found, found_solved, width, height, settings["max_points"])
                    return focal_is_determined(median_error(found), cost, found.focal_px)

                focal_determined = True
                if estimate_focal:
                    judged = result
                    # the restart (below) from this focal, used unless the retry changes the result
                    restart = (helper.submit(start_from, fov_of(result_intrinsics(result), height, width))
                               if settings["focal_restart"] else None)
                    focal_determined = focal_pinned(result, solved, tracks)
                    if not focal_determined and settings["retry_fovs"]:
                        # a flat cost around the refined focal may be a local minimum: other starting focals were
                        # screened with a small adjustment, and one that fits clearly better is solved in full
                        screened = [found for future in screening for found in future.result()]
                        promising = [fov for fov, (trial, _) in screened
                                     if clearly_better(trial, result, 0.0)]  # the screening has fewer points
                        result, solved = best_adjustment(candidates + [solution for fov in promising
                                                                        for _, solution in start_from(fov)])
                    if settings["focal_restart"]:
                        # poses initialised at a starting focal far from the clip's can settle, as the focal moves,
                        # in a wrong minimum that one started at the focal found avoids: the clip is solved again
                        # from there, and that solution kept (the p90 rotation error fell from 1.82 to 1.44 deg on 75
                        # phone and drone clips and from 5.2 to 3.6 deg on 66 others, the worst 43 to 11; BENCHMARKS.md)
                        found_fov = fov_of(result_intrinsics(result), height, width)
                        if result is judged:
                            restarted = restart.result()
                        else:
                            restart.cancel()  # it starts from the focal the retry replaced
                            restarted = start_from(found_fov)
                        if restarted:
                            result, solved = restarted[0][1]
                for future in screening:  # unstarted ones are not needed any more
                    future.cancel()
                steps_checked = check_steps()
                pinned = (helper.submit(focal_pinned, result, solved, tracks) if estimate_focal and result is not judged
                          else None)
                # a rolling shutter bends the frames of a turning camera: the tracks are unrolled and adjusted again
                k_found = result_intrinsics(result) * pixels
                found_readout, found_direction, unrolled = unroll_tracks(tracks, result, solved, k_found, width, height,
                                                                         readout, readout_direction,
                                                                         settings["readout_points"])

                def corrected(solution, k: np.ndarray, refine_focal: bool, how: dict):
                    """A solution ``(result, solved)`` on the raw tracks adjusted to the ``unrolled`` ones: one round
                    of at most 10 iterations, its outliers known → (result, solved) or None."""
                    found, found_solved = solution
                    start = (found.w2c, found.points3d, ~np.isnan(found.errors).all(0), found_solved)
                    return adjust_start(unrolled, start, k, width, height, refine_focal,
                                        dict(how, rounds=1, max_iterations=10))

                redone = unrolled and corrected((result, solved), k_found, estimate_focal, settings)
                if redone:
                    tracks, (result, solved) = unrolled, redone
                    steps_checked = check_steps()
                shutter = (found_readout, found_direction) if redone else (0.0, None)
                focal_determined = pinned.result() if pinned is not None else focal_determined
                general = general_solution(tracks, result, solved, result_intrinsics(result), pixels,
                                            focal_determined, steps_checked.result(), scene_depth, estimate_focal,
                                            late_parallax, *shutter)
        finally:  # what is still queued is not needed
            helper.shutdown(cancel_futures=True)
        if candidates and rotation_fit is not None and not _plane_fits_better(general, rotation_fit):
            # the turn's error asked for travel too, and solving for it did not halve that error: the tracks hold
            # parallax neither explains (a walk up stairs read as a turn ended 1-7 deg off, reported reliable)
            return finish(**rotation_fit, fallback=f"a turn leaves {rotation_fit['reprojection']:.2f} px, over "
                                                   f"{settings['plane_check'] * parallax_px:.2f} px, and solving for "
                                                   "travel too did not halve it: the camera may also have travelled; "
                                                   f"{ROTATION_KEPT}")
        if candidates:
            unreliable = general["unreliable"]

            def start_gap() -> float | None:
                """A start can settle in a wrong minimum that fits as well (a fast turn read as reversed sideways
                travel): the ``second`` pair's start, at the focal found (and corrected for a rolling shutter as the
                solution was), compared with the solution over the frames both hold reliably. None when that solve
                fails, or fits clearly worse (:func:`clearly_better`: a worse minimum is no rival; a circled wall's
                second pair ends in the plane's other decomposition with under half the inlier observations)."""
                check = (checking.result() if checking is not None and not checking.cancelled()
                         else second_start(k_found))
                if check is not None and tracks is not raw:
                    check = corrected(check, general["intr"] * pixels, False, CHECK)
                if check is None:
                    return None
                other, other_solved = check
                if clearly_better(result, other, 0.5):
                    return None
                held = (solved & (general["inliers"] >= MIN_FRAME_INLIERS) & other_solved
                        & (other.used.sum(1) >= MIN_FRAME_INLIERS))
                return rotation_gap(result.w2c, other.w2c, held)

            check_start = start_gap if second is not None else None
            if 2 * len(unreliable) < count - 1:
                return finish(**general, check_start=check_start)
            # bundle adjustment left half the frames or more without a reliable pose (unconstrained poses: tens
            # of degrees off on near-still, flickering backgrounds): keep the rotation-only solve if, by the
            # same inlier bar, it holds more frames (no readout searched: on a clip with parallax the rotation fit's
            # error measures the parallax, which a readout would absorb; one given is used)
            rotation = rotation_solution(raw, given, pairs, min_points, height, width, readout or 0.0,
                                         readout_direction)
            if int((rotation["inliers"][1:] >= MIN_FRAME_INLIERS).sum()) <= count - 1 - len(unreliable):
                return finish(**general, check_start=check_start)
            return finish(**rotation, fallback=f"bundle adjustment left {len(unreliable)} of {count - 1} frames "
                                               f"unreliable: {ROTATION_KEPT}")
    rotation = rotation_fit or rotation_solution(tracks, given, pairs, min_points, height, width, readout,
                                                 readout_direction)
    if has_parallax:  # the tracks asked for general motion, whose solve found nothing
        return finish(**rotation, fallback="general motion could not be solved although the tracks show parallax: "
                                           f"{ROTATION_KEPT}")
    return finish(**rotation)
