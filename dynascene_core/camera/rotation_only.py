"""Poses of a clip without parallax: a pure rotation (pan, tilt, roll) or zoom, translation 0.

An unknown focal is the one that makes the motion most rotation-like. A rolling shutter bends the frames of a
hand-held pan as it does those of any turning camera (0.2° → 0.8–1.0° at the end of a shaky synthetic pan read in
0.5–0.9 frame): the tracks are unrolled with the rotation rates of a first fit (:mod:`.rolling_shutter`), the
readout and its direction found by the rotation fit's error (:data:`MIN_GAIN`, a higher bar than the bundle
adjustment's), and the rotations fitted again. A fit already worse than the quality report's "uncertain" bar is
not searched: its error is more likely parallax the parallax test missed (a walking HoloLens clip 47° off went
from 3.15 px, unreliable, to 2.49 px, uncertain, with a readout of 0.67 read upward).
"""

from __future__ import annotations

import math

import numpy as np

from .geometry import golden_minimum, rotation_focal_residual, solve_rotation
from .intrinsics import DEFAULT_FOV_DEG, focal_bounds, focal_is_determined, intrinsics_for_fov
from .quality import UNCERTAIN_REPROJECTION_PX
from .rolling_shutter import find_readout, unroll
from .tracks import Tracks

MIN_INLIERS = 8  # a frame whose rotation rests on fewer homography inliers keeps the one before (unreliable)
MIN_GAIN = 0.05
"""A readout is kept only when it lowers the rotation fit's error by this share: with no points to absorb it, a
global-shutter pan's fit still gained up to 1.8 % from a spurious readout (synthetic presets, BENCHMARKS.md),
while shaky pans read in 0.35 and 0.7 frame gained 34 % and 55 %."""


def _fit_error(solved: tuple) -> float:
    """Median over frames of :func:`solve_rotation`'s residual px, among frames resting on enough inliers."""
    inliers, residual = solved[1], solved[3]
    ok = inliers[1:] >= MIN_INLIERS
    return float(np.median(residual[1:][ok])) if ok.any() else np.nan


def rotation_solution(tracks: Tracks, given: np.ndarray | None, pairs: list, min_points: int, height: int,
                      width: int, readout: float | None, readout_direction: str | None) -> dict:
    """Rotation (or zoom) only poses of ``tracks``, with the focal estimated from the frame ``pairs`` when ``given``
    (normalised intrinsics) is None, and the rolling shutter's ``readout`` and ``readout_direction`` (None: found;
    readout 0: none) corrected: the keyword arguments of ``estimate_trajectory``'s ``finish``."""
    pixels = np.array([width, height, width, height])
    focal_determined = True
    if given is None:
        k0 = intrinsics_for_fov(DEFAULT_FOV_DEG, height, width) * pixels
        low, high = focal_bounds(height, width)
        pairs = pairs or [(0, 1)]
        cost = lambda focal: rotation_focal_residual(tracks, focal, k0, pairs)  # noqa: E731
        focal = math.exp(golden_minimum(lambda log_f: cost(math.exp(log_f)), math.log(low), math.log(high)))
        focal_determined = focal_is_determined(cost(focal), cost, focal)
        intr = np.array([focal, focal, width / 2, height / 2]) / pixels
    else:
        intr = given
    k, min_common = intr * pixels, max(40, min_points)
    first = solve_rotation(tracks, k, min_common)
    found, direction = 0.0, None
    solved = first
    # a readout is searched only where the fit holds (else it would absorb a wrong model); one given is used
    if readout or (readout is None and _fit_error(first) <= UNCERTAIN_REPROJECTION_PX):
        w2c = np.linalg.inv(first[0])
        zooming = bool(np.any(first[4] != 1.0))  # no zoom searched where the first fit found none (5× faster)

        def unrolled(value: float, towards: str) -> Tracks:
            return Tracks(unroll(tracks.points, w2c, k, width, height, value, towards))

        def error(value: float, towards: str) -> float:
            if not value:
                return _fit_error(first)
            return _fit_error(solve_rotation(unrolled(value, towards), k, min_common, fit_zoom=zooming))

        found, direction = find_readout(error, width, height, readout, readout_direction, MIN_GAIN)
        solved = solve_rotation(unrolled(found, direction), k, min_common) if found else first
    c2w, inliers, compared, residual, zoom = solved
    return dict(c2w=c2w, intr=intr, motion="rotation", tracked=tracks.valid.sum(1), inliers=inliers,
                residual=residual, unreliable=[i for i in range(1, len(inliers)) if inliers[i] < MIN_INLIERS],
                focal_estimated=given is None, focal_determined=focal_determined,
                ratio=float(inliers[1:].sum() / max(1, compared[1:].sum())), reprojection=_fit_error(solved),
                zoom=zoom, readout=found, readout_direction=direction)
