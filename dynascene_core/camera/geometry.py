"""Two-view and multi-view geometry for camera estimation (OpenCV): parallax tests, rotation/zoom fits,
triangulation, PnP, and the incremental initialisation that bundle adjustment refines."""

from __future__ import annotations

import math

import cv2
import numpy as np

from .robust import robust_fit
from .tracks import Tracks
from .trajectory import rotation_angle_deg



def _bearings(points: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Pixel points ``(N, 2)`` → unit bearing vectors ``(N, 3)``."""
    rays = np.stack([(points[:, 0] - k[2]) / k[0], (points[:, 1] - k[3]) / k[1], np.ones(len(points))], 1)
    return rays / np.linalg.norm(rays, axis=1, keepdims=True)


def _kabsch(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Rotation R minimising Σ|dst − R src|² for unit vectors ``(N, 3)``."""
    u, _, vt = np.linalg.svd(dst.T @ src)
    d = np.sign(np.linalg.det(u @ vt))
    return u @ np.diag([1, 1, d]) @ vt


def _homography_inliers(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Inlier flags of a robust homography a → b (1 px)."""
    hom, inl = robust_fit(cv2.findHomography, a.astype(np.float32), b.astype(np.float32), cv2.USAC_MAGSAC, 1.0)
    return np.zeros(len(a), bool) if hom is None else inl.ravel().astype(bool)


def parallax_residuals(a: np.ndarray, b: np.ndarray, parallax_px: float = 0.0,
                       ratio: float = np.inf) -> tuple[float, float]:
    """(homography, epipolar) median residuals in px over the fundamental matrix's inliers.

    Both models are fitted robustly; a clearly larger homography residual means translation parallax.
    Moving foreground points are outliers of both and do not enter the medians. Under little parallax MAGSAC's
    fundamental matrix can settle on a nearly degenerate fit that leaves several times the tracks' error (a
    synthetic turn with a slow travel: 0.30 px where the true cameras leave 0.06 px), which hides the parallax.
    Where its residual alone keeps a homography residual of at least ``parallax_px`` under ``ratio`` × it (the
    parallax test's thresholds; by default always), the lower of it and :func:`_held_out_epipolar_px` is kept.
    """
    fmat, inl = robust_fit(cv2.findFundamentalMat, a, b, cv2.USAC_MAGSAC, 1.0, 0.999)
    if fmat is None or fmat.shape != (3, 3) or inl.sum() < 8:
        return 0.0, float("inf")
    keep = inl.ravel().astype(bool)
    a, b = a[keep], b[keep]
    epipolar = float(np.median(_epipolar_px(fmat, a, b)))
    hom, _ = robust_fit(cv2.findHomography, a, b, cv2.USAC_MAGSAC, 1.0)
    if hom is None:
        return float("inf"), epipolar
    homography = float(np.median(np.linalg.norm(cv2.perspectiveTransform(a.reshape(-1, 1, 2), hom).reshape(-1, 2) - b,
                                                axis=1)))
    if parallax_px <= homography < ratio * epipolar:
        epipolar = min(epipolar, _held_out_epipolar_px(a, b))
    return homography, epipolar


def parallax_pair(residuals: list[tuple[int, float, float]], parallax_px: float, ratio: float) -> tuple[int, bool]:
    """``(frame, has_parallax)`` from the ``(frame, homography px, epipolar px)`` of frame pairs.

    A pair shows parallax when the homography residual is at least ``parallax_px`` and ``ratio`` × the
    epipolar one. Any such pair decides (a later pair with a larger homography residual can have a noisier
    epipolar fit too); the initialisation pair is the one with the largest residual among them.
    """
    shown = [(res, i) for i, res, epi in residuals if _shows_parallax(res, epi, parallax_px, ratio)]
    return (max(shown)[1], True) if shown else (0, False)


def _shows_parallax(homography_px: float, epipolar_px: float, parallax_px: float, ratio: float) -> bool:
    return homography_px >= parallax_px and homography_px >= ratio * epipolar_px


def second_start_frame(tracks: Tracks, residuals: list[tuple[int, float, float]], best: int, parallax_px: float,
                       ratio: float) -> int | None:
    """The frame whose pair with frame 0 checks the start (0, ``best``): the other pair showing parallax that shares
    the most tracks with frame 0, or None."""
    shown = [i for i, res, epi in residuals if i != best and _shows_parallax(res, epi, parallax_px, ratio)]
    return max(shown, key=lambda i: int((tracks.valid[0] & tracks.valid[i]).sum())) if shown else None


def later_parallax(tracks: Tracks, min_common: int, parallax_px: float, ratio: float) -> bool:
    """Whether a pair of later frames (each with the farthest frame it still shares ``min_common`` tracks
    with) shows parallax by the rule of :func:`_shows_parallax`."""
    valid = tracks.valid
    count = len(valid)
    for j in range(1, count - 1, max(1, count // 8)):
        shared = (valid[j] & valid[j + 1:]).sum(1) >= min_common
        if not shared.any():
            continue
        i = j + 1 + int(np.flatnonzero(shared)[-1])
        common = valid[j] & valid[i]
        if _shows_parallax(*parallax_residuals(tracks.points[j, common], tracks.points[i, common], parallax_px, ratio),
                           parallax_px, ratio):
            return True
    return False


def _held_out_epipolar_px(a: np.ndarray, b: np.ndarray) -> float:
    """Median epipolar residual (px) of least-median-of-squares fundamental matrices (OpenCV's LMedS) fitted to every
    other match of ``a`` → ``b`` ``(N, 2)`` and measured on the rest, both ways; the larger (inf where a fit fails).
    LMedS minimises the median it reports, so on the matches it was fitted to it follows their noise where they are
    few (0.007 px on 17 tracks of a flickering background that leave 0.65-0.88 px held out)."""
    medians = []
    for fitted, held in ((slice(0, None, 2), slice(1, None, 2)), (slice(1, None, 2), slice(0, None, 2))):
        fmat, _ = robust_fit(cv2.findFundamentalMat, a[fitted], b[fitted], cv2.FM_LMEDS)
        if fmat is None or fmat.shape != (3, 3):
            return float("inf")
        medians.append(float(np.median(_epipolar_px(fmat, a[held], b[held]))))
    return max(medians)


def _epipolar_px(fmat: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Symmetric point-to-epipolar-line distances (px) of matches ``a`` → ``b`` ``(N, 2)`` under ``fmat``."""
    ah, bh = np.c_[a, np.ones(len(a))], np.c_[b, np.ones(len(b))]
    lb, la = ah @ fmat.T, bh @ fmat
    num = np.abs(np.sum(bh * lb, 1))
    return 0.5 * (num / np.hypot(lb[:, 0], lb[:, 1]) + num / np.hypot(la[:, 0], la[:, 1]))


def _fit_rotation_zoom(a: np.ndarray, b: np.ndarray, k: np.ndarray, k_key: np.ndarray, fit_zoom: bool,
                       around: float):
    """Rotation (and focal change, for zooms) mapping key-frame pixels ``a`` to pixels ``b``.

    Returns ``(R, zoom, median residual px)`` with bearings_b = R · bearings_a, where frame b's focal
    is ``zoom ×`` the key frame's. The zoom is searched within 0.7–1.43 × ``around`` (the frame before's, so that a
    zoom growing past that range from the key frame is followed) and kept only when it clearly explains the motion
    better than none; ``fit_zoom=False`` fits none (most of the cost is the zoom's search).
    """
    ba = _bearings(a, k_key)

    def fit(zoom: float):
        kb = k_key * np.array([zoom, zoom, 1, 1])
        rot = _kabsch(ba, _bearings(b, kb))
        proj = ba @ rot.T
        px = np.stack([proj[:, 0] / proj[:, 2] * kb[0] + kb[2], proj[:, 1] / proj[:, 2] * kb[1] + kb[3]], 1)
        return rot, float(np.median(np.linalg.norm(px - b, axis=1)))

    rot1, res1 = fit(1.0)
    if not fit_zoom:
        return rot1, 1.0, res1
    zoom = math.exp(golden_minimum(lambda log_zoom: fit(math.exp(log_zoom))[1], math.log(0.7 * around),
                                   math.log(1.43 * around), 20))
    rot_z, res_z = fit(zoom)
    if res_z < 0.7 * res1 and abs(math.log(zoom)) > 0.005:
        return rot_z, zoom, res_z
    return rot1, 1.0, res1


def solve_rotation(tracks: Tracks, k: np.ndarray, min_common: int, fit_zoom: bool = True):
    """Pure-rotation / zoom poses against a key frame (chained when tracks run out), translation 0
    (``fit_zoom=False``: rotation only).

    Returns ``(c2w (F, 4, 4), inliers (F,), compared (F,), residual px (F,), zoom (F,))``; ``compared`` counts
    the tracks shared with the key frame. A frame without 8 consistent tracks keeps the previous pose.
    """
    pts, valid = tracks.points, tracks.valid
    frames = len(pts)
    rot = np.tile(np.eye(3), (frames, 1, 1))
    zoom = np.ones(frames)
    inliers, compared, residual = np.zeros(frames, int), np.zeros(frames, int), np.zeros(frames)
    key = 0
    inliers[0] = compared[0] = valid[0].sum()
    for i in range(1, frames):
        common = valid[key] & valid[i]
        if common.sum() < min_common and key != i - 1:
            key = i - 1
            common = valid[key] & valid[i]
        compared[i] = common.sum()
        inl = _homography_inliers(pts[key, common], pts[i, common]) if common.sum() >= 8 else np.zeros(0, bool)
        if inl.sum() < 8:
            rot[i], zoom[i] = rot[i - 1], zoom[i - 1]
            continue
        a, b = pts[key, common][inl], pts[i, common][inl]
        k_key = k * np.array([zoom[key], zoom[key], 1, 1])
        r_rel, z_rel, residual[i] = _fit_rotation_zoom(a, b, k, k_key, fit_zoom, zoom[i - 1] / zoom[key])
        rot[i] = rot[key] @ r_rel.T
        zoom[i] = zoom[key] * z_rel
        inliers[i] = int(inl.sum())
    c2w = np.tile(np.eye(4), (frames, 1, 1))
    c2w[:, :3, :3] = rot
    return c2w, inliers, compared, residual, zoom


def _project(points3d: np.ndarray, w2c: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    cam = points3d @ w2c[:3, :3].T + w2c[:3, 3]
    z = cam[:, 2]
    safe = np.where(np.abs(z) > 1e-9, z, 1e-9)
    return np.stack([cam[:, 0] / safe * k[0] + k[2], cam[:, 1] / safe * k[1] + k[3]], 1), z


def _triangulate(w2c_a, w2c_b, pa, pb, k, max_err_px: float, min_angle_deg: float):
    """Two-view triangulation with cheirality, reprojection and triangulation-angle checks → (X, ok)."""
    kmat = _camera_matrix(k)
    xh = cv2.triangulatePoints(kmat @ w2c_a[:3], kmat @ w2c_b[:3], pa.T.astype(np.float64), pb.T.astype(np.float64))
    with np.errstate(divide="ignore", invalid="ignore"):
        x = (xh[:3] / xh[3]).T
    ok = np.isfinite(x).all(1)
    x = np.where(ok[:, None], x, 0.0)
    for w2c, p in ((w2c_a, pa), (w2c_b, pb)):
        proj, z = _project(x, w2c, k)
        ok &= (z > 0) & (np.linalg.norm(proj - p, axis=1) < max_err_px)
    ca, cb = -w2c_a[:3, :3].T @ w2c_a[:3, 3], -w2c_b[:3, :3].T @ w2c_b[:3, 3]
    ra, rb = x - ca, x - cb
    cos = np.sum(ra * rb, 1) / (np.linalg.norm(ra, axis=1) * np.linalg.norm(rb, axis=1) + 1e-12)
    ok &= cos < math.cos(math.radians(min_angle_deg))
    return x, ok


def _pnp(points3d, points2d, k, guess_w2c, threshold_px: float, iterations: int):
    """RANSAC PnP (at most ``iterations`` samples) + LM refinement → (w2c or None, inlier flags, median
    reprojection px)."""
    kmat = _camera_matrix(k)
    obj, img = points3d.astype(np.float64), points2d.astype(np.float64)
    if len(obj) < 6:
        return None, np.zeros(len(obj), bool), float("nan")
    rvec0, _ = cv2.Rodrigues(guess_w2c[:3, :3])
    ok, rvec, tvec, inl = cv2.solvePnPRansac(obj, img, kmat, None, rvec0.copy(), guess_w2c[:3, 3:].copy(),
                                             useExtrinsicGuess=True, iterationsCount=iterations,
                                             reprojectionError=threshold_px, confidence=0.999,
                                             flags=cv2.SOLVEPNP_ITERATIVE)
    if not ok or inl is None or len(inl) < 6:
        return None, np.zeros(len(obj), bool), float("nan")
    flags = np.zeros(len(obj), bool)
    flags[inl.ravel()] = True
    rvec, tvec = cv2.solvePnPRefineLM(obj[flags], img[flags], kmat, None, rvec, tvec)
    w2c = np.eye(4)
    w2c[:3, :3] = cv2.Rodrigues(rvec)[0]
    w2c[:3, 3] = tvec.ravel()
    proj, z = _project(obj, w2c, k)
    err = np.linalg.norm(proj - img, axis=1)
    flags = (err < threshold_px) & (z > 0)
    return w2c, flags, float(np.median(err[flags])) if flags.any() else float("nan")


def _camera_matrix(k: np.ndarray) -> np.ndarray:
    """3×3 camera matrix of pixel intrinsics ``(fx, fy, cx, cy)``."""
    return np.array([[k[0], 0, k[2]], [0, k[1], k[3]], [0, 0, 1]])


def _essential_pose(a: np.ndarray, b: np.ndarray, kmat: np.ndarray):
    """Relative pose of view b to view a from pixel matches ``(N, 2)`` (robust essential matrix, 1 px):
    ``(R, t (unit), inlier flags (N,))`` with x_b = R x_a + t, or None."""
    ess, mask = robust_fit(cv2.findEssentialMat, a, b, kmat, cv2.USAC_MAGSAC, 0.999, 1.0)
    if ess is None or ess.shape != (3, 3):
        return None
    _, r, t, mask = cv2.recoverPose(ess, a, b, kmat, mask=mask)
    return r, t.ravel(), mask.ravel() > 0


def plane_poses(a: np.ndarray, b: np.ndarray, k: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Relative poses of view b to view a that a plane through pixel matches ``(N, 2)`` allows: the decompositions
    of their robust homography (1 px) that keep its inliers in front of both cameras, each ``(R, t, inlier flags
    (N,))`` as :func:`_essential_pose` gives them (t scaled by the plane's distance). Two views of a plane fit two
    such poses equally well; the essential matrix picks one of them at random."""
    hom, inl = robust_fit(cv2.findHomography, a.astype(np.float32), b.astype(np.float32), cv2.USAC_MAGSAC, 1.0)
    if hom is None or inl.sum() < 8:
        return []
    kmat = _camera_matrix(k)
    _, rotations, translations, normals = cv2.decomposeHomographyMat(hom, kmat)
    inlier = inl.ravel().astype(bool)
    before, after = (cv2.undistortPoints(p[inlier].reshape(-1, 1, 2).astype(np.float64), kmat, None).astype(np.float32)
                     for p in (a, b))
    visible = cv2.filterHomographyDecompByVisibleRefpoints(rotations, normals, before, after)
    return [(rotations[i], translations[i].ravel(), inlier) for i in np.ravel(visible if visible is not None else [])]


def _consecutive_pose(pts: np.ndarray, valid: np.ndarray, i: int, kmat: np.ndarray, min_inliers: int):
    """:func:`_essential_pose` of frame i − 1 → i from their common tracks, or None when fewer than
    ``min_inliers`` matches are shared or end in front of both cameras."""
    common = valid[i - 1] & valid[i]
    if common.sum() < min_inliers:
        return None
    relative = _essential_pose(pts[i - 1, common], pts[i, common], kmat)
    return None if relative is None or relative[2].sum() < min_inliers else relative


def _step_from_essential(pts, valid, w2c, solved, i: int, kmat: np.ndarray):
    """Pose of frame i from the essential matrix with frame i − 1 when PnP has too few triangulated points
    (fast motion renews the tracks before they are triangulated); the step length is the previous step's.
    Returns w2c ``(4, 4)`` or None. The bundle adjustment refines it with the points it lets triangulate."""
    relative = _consecutive_pose(pts, valid, i, kmat, 12)
    if relative is None:
        return None
    centres = [-w2c[j, :3, :3].T @ w2c[j, :3, 3] for j in range(i) if solved[j]]
    step = np.linalg.norm(centres[-1] - centres[-2]) if len(centres) >= 2 else 1.0
    move = np.eye(4)
    move[:3, :3], move[:3, 3] = relative[0], step * relative[1]
    return move @ w2c[i - 1]


def step_disagreement(tracks: Tracks, w2c: np.ndarray, solved: np.ndarray, k: np.ndarray,
                      min_inliers: int) -> np.ndarray:
    """Angle (degrees) between each solved step's rotation (frame i − 1 → i, from ``w2c (F, 4, 4)``) and the
    two-view essential-matrix rotation of the same pair of frames: ``(F,)``, NaN for frame 0, unsolved frames
    and pairs whose essential pose keeps fewer than ``min_inliers`` matches in front of both cameras.

    A two-view rotation is noisier than a bundle adjustment's (a few degrees on single pairs), but it cannot
    drift: several consecutive large disagreements mean the adjustment settled on a wrong solution."""
    pts, valid = tracks.points, tracks.valid
    kmat = _camera_matrix(k)
    angles = np.full(len(w2c), np.nan)
    for i in range(1, len(w2c)):
        relative = _consecutive_pose(pts, valid, i, kmat, min_inliers) if solved[i - 1] and solved[i] else None
        if relative is not None:
            angles[i] = rotation_angle_deg(w2c[i, :3, :3] @ w2c[i - 1, :3, :3].T, relative[0])
    return angles


def solve_general(tracks: Tracks, k: np.ndarray, init: int, refine_passes: int, pnp_iterations: int,
                  relative: tuple | None = None):
    """Initialisation on (0, init) from its essential matrix (or from ``relative``, a pose of
    :func:`plane_poses`), then PnP (RANSAC of at most ``pnp_iterations`` samples) +
    triangulation of every frame (a frame that shares too few triangulated points for PnP is placed by the
    essential matrix with the frame before, unless that frame was placed so too).

    Returns ``(w2c (F, 4, 4), points (N, 3), has_point (N,), solved (F,))`` or None if it fails.
    """
    pts, valid = tracks.points, tracks.valid
    frames, count = valid.shape
    common = valid[0] & valid[init]
    kmat = _camera_matrix(k)
    relative = relative or _essential_pose(pts[0, common], pts[init, common], kmat)
    if relative is None:
        return None
    r, t, inlier = relative
    w2c = np.tile(np.eye(4), (frames, 1, 1))
    solved = np.zeros(frames, bool)
    solved[0] = solved[init] = True
    w2c[init, :3, :3], w2c[init, :3, 3] = r, t
    xyz = np.zeros((count, 3))
    has_xyz = np.zeros(count, bool)
    idx = np.flatnonzero(common)[inlier]
    if len(idx) < 12:
        return None
    x, ok = _triangulate(w2c[0], w2c[init], pts[0, idx], pts[init, idx], k, 2.0, 0.3)
    xyz[idx[ok]], has_xyz[idx[ok]] = x[ok], True
    if has_xyz.sum() < 12:
        return None

    def triangulate_from(i: int, min_angle: float) -> None:
        """Triangulate tracks seen in frame i (solved) from their earliest solved observation."""
        cand = valid[i] & ~has_xyz
        if not cand.any():
            return
        first_seen = np.argmax(valid & solved[:, None], axis=0)
        for j in np.unique(first_seen[cand]):
            if j == i:
                continue
            sel = np.flatnonzero(cand & (first_seen == j))
            x, ok = _triangulate(w2c[j], w2c[i], pts[j, sel], pts[i, sel], k, 2.0, min_angle)
            xyz[sel[ok]], has_xyz[sel[ok]] = x[ok], True

    bridged = set()
    for pass_index in range(1 + refine_passes):
        order = list(range(1, frames))
        for i in order:
            if pass_index == 0 and i == init:
                triangulate_from(i, 1.0)
                continue
            use = valid[i] & has_xyz
            guess = w2c[i] if solved[i] else w2c[i - 1]
            pose, flags, err = _pnp(xyz[use], pts[i, use], k, guess, 2.0, pnp_iterations)
            if pose is None and pass_index == 0 and solved[i - 1] and i - 1 not in bridged:
                # one frame whose tracks are all new; a run of them is no track to bridge (e.g. noise)
                pose = _step_from_essential(pts, valid, w2c, solved, i, kmat)
                if pose is not None:
                    bridged.add(i)
            if pose is None:
                w2c[i], solved[i] = guess, False
                continue
            w2c[i], solved[i] = pose, True
            if pass_index == 0:
                triangulate_from(i, 1.0)
        # re-triangulate every track from its widest solved baseline (first and last observation)
        seen = valid & solved[:, None]
        n_seen = seen.sum(0)
        first = np.argmax(seen, 0)
        last = frames - 1 - np.argmax(seen[::-1], 0)
        for j, l in set(zip(first[n_seen >= 2].tolist(), last[n_seen >= 2].tolist())):
            sel = np.flatnonzero((first == j) & (last == l) & (n_seen >= 2))
            x, ok = _triangulate(w2c[j], w2c[l], pts[j, sel], pts[l, sel], k, 3.0, 0.5)
            xyz[sel[ok]], has_xyz[sel[ok]] = x[ok], True
            has_xyz[sel[~ok]] = False
    return w2c, xyz, has_xyz, solved


def rotation_focal_residual(tracks: Tracks, focal: float, k: np.ndarray, pairs: list[tuple[int, int]]) -> float:
    """Mean over frame pairs of the median pixel residual of a pure-rotation fit with focal ``focal``
    (``k`` gives the principal point; homography inliers only). Used to estimate the focal of pans."""
    kf = np.array([focal, focal, k[2], k[3]])
    total = 0.0
    for a, b in pairs:
        common = tracks.valid[a] & tracks.valid[b]
        pa, pb = tracks.points[a, common], tracks.points[b, common]
        inl = _homography_inliers(pa, pb)
        pa, pb = (pa[inl], pb[inl]) if inl.sum() >= 8 else (pa, pb)
        ba = _bearings(pa, kf)
        rot = _kabsch(ba, _bearings(pb, kf))
        proj = ba @ rot.T
        px = np.stack([proj[:, 0] / proj[:, 2] * focal + k[2], proj[:, 1] / proj[:, 2] * focal + k[3]], 1)
        total += float(np.median(np.linalg.norm(px - pb, axis=1)))
    return total / max(1, len(pairs))


def golden_minimum(function, low: float, high: float, iterations: int = 24) -> float:
    """Minimiser of a unimodal ``function`` on [low, high] (golden-section search)."""
    ratio = (math.sqrt(5) - 1) / 2
    a, b = low, high
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = function(c), function(d)
    for _ in range(iterations):
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = function(c)
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = function(d)
    return (a + b) / 2
