"""Camera trajectory estimation from a video with the human masked out (OpenCV).

Pipeline:

1. **Tracking** on background pixels only (masks dilated): pyramidal KLT frame to frame with a
   forward–backward check, points entering the human mask dropped, new corners detected
   (``goodFeaturesToTrack``) wherever the track count falls below ``max_features``.
2. **Static test**: the median background motion stays below ``static_px`` → identity poses.
3. **Parallax test**: a robust homography between frame 0 and each later frame; if the median
   homography residual never exceeds ``parallax_px`` the motion is a pure rotation (pan/tilt/roll)
   or zoom: rotations are fitted to the bearing vectors of homography inliers (Kabsch), chaining
   through key frames when too few tracks survive, translation 0.
4. **General motion**: essential matrix (USAC MAGSAC) + ``recoverPose`` on the pair with the most
   parallax, triangulation, then PnP (RANSAC + Levenberg–Marquardt refinement) for every frame and
   triangulation of new tracks as they appear; all tracks are then re-triangulated from their widest
   baseline and every pose refined again. PnP against one point cloud gives **one consistent
   translation scale** for the whole clip; the unit is set so that the median depth of the
   background points seen in the first frame is ``scene_depth`` (default 1).

Intrinsics: ``fov_deg`` is the field of view across the image's **longer side** (default
:data:`DEFAULT_FOV_DEG` = 65°, a typical phone main camera in video mode); ``focal_search=True``
picks the FOV with the lowest reprojection error among candidates instead. The principal point is
the image centre. Poses are relative to the first frame (its camera is the world frame).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch

from ..matting.masks import dilate
from .intrinsics import fov_of, intrinsics_for_fov, resolve_intrinsics
from .quality import CameraQuality, assess
from .trajectory import CameraTrajectory

DEFAULT_FOV_DEG = 65.0
"""Default field of view (degrees) across the longer image side used when ``fov_deg`` is not given."""


@dataclass
class EstimationStats:
    """Per-frame diagnostics of :func:`estimate_trajectory` (arrays of length F)."""

    tracked: np.ndarray  # background tracks alive in the frame
    inliers: np.ndarray  # tracks consistent with the frame's estimated pose
    confidence: np.ndarray  # in [0, 1]: inlier fraction × min(1, inliers / 50)
    reprojection_px: np.ndarray  # median reprojection error of the inliers (pixels)
    mode: str = "general"  # "general", "rotation", "static"
    fov_deg: float = DEFAULT_FOV_DEG
    warnings: list[str] = field(default_factory=list)
    quality: CameraQuality | None = None  # the per-clip report (always set by estimate_trajectory)


@dataclass
class _Tracks:
    points: np.ndarray  # (F, N, 2) float64 pixel positions, NaN where the track is absent

    @property
    def valid(self) -> np.ndarray:
        return ~np.isnan(self.points[..., 0])


# ----------------------------------------------------------------------------------------------
# input handling

def _as_uint8_frames(frames) -> np.ndarray:
    from ..video import to_uint8

    if isinstance(frames, torch.Tensor):
        if frames.ndim != 4 or frames.shape[1] != 3:
            raise ValueError(f"frame tensor must be (F, 3, H, W) in [0, 1], got {tuple(frames.shape)}")
        return to_uint8(frames)
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be (F, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
    return frames


def _as_masks(masks, frames: np.ndarray) -> np.ndarray | None:
    """``(F, H, W)`` or ``(F, 1, H, W)`` masks (1 = human) → bool ``(F, H, W)``; shape errors name both sizes."""
    if masks is None:
        return None
    m = masks.detach().cpu().numpy() if isinstance(masks, torch.Tensor) else np.asarray(masks)
    if m.ndim == 4 and m.shape[1] == 1:
        m = m[:, 0]
    if m.ndim != 3:
        raise ValueError(f"masks must be (F, H, W) or (F, 1, H, W), got {m.shape}")
    if len(m) != len(frames):
        raise ValueError(f"masks have {len(m)} frames but the video has {len(frames)}")
    if m.shape[1:] != frames.shape[1:3]:
        raise ValueError(f"mask size {m.shape[2]}x{m.shape[1]} differs from the frame size "
                         f"{frames.shape[2]}x{frames.shape[1]}")
    threshold = 127 if m.dtype == np.uint8 else 0.5
    return m > threshold


# ----------------------------------------------------------------------------------------------
# tracking

_LK = dict(winSize=(21, 21), maxLevel=3, criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 0.01))


def _track(gray: np.ndarray, allowed: np.ndarray, max_features: int, fb_px: float, progress) -> _Tracks:
    """KLT tracks over allowed (background) pixels; ``allowed`` is ``(F, H, W)`` uint8 (255 = usable)."""
    frames, height, width = gray.shape
    min_distance = max(6, width // 80)
    next_id = 0
    positions = np.zeros((0, 2), np.float32)
    ids = np.zeros(0, int)

    def detect(index: int, existing: np.ndarray, count: int) -> np.ndarray:
        mask = allowed[index].copy()
        for x, y in existing:
            cv2.circle(mask, (int(x), int(y)), min_distance, 0, -1)
        found = cv2.goodFeaturesToTrack(gray[index], maxCorners=count, qualityLevel=0.005,
                                        minDistance=min_distance, mask=mask, blockSize=7)
        return np.zeros((0, 2), np.float32) if found is None else found.reshape(-1, 2)

    table = np.full((frames, 0, 2), np.nan)
    for index in range(frames):
        if index > 0 and len(positions):
            nxt, st1, _ = cv2.calcOpticalFlowPyrLK(gray[index - 1], gray[index], positions, None, **_LK)
            back, st2, _ = cv2.calcOpticalFlowPyrLK(gray[index], gray[index - 1], nxt, None, **_LK)
            good = (st1.ravel() == 1) & (st2.ravel() == 1) & (np.linalg.norm(back - positions, axis=1) < fb_px)
            xi, yi = np.round(nxt[:, 0]).astype(int), np.round(nxt[:, 1]).astype(int)
            inside = (xi >= 0) & (yi >= 0) & (xi < width) & (yi < height)
            good &= inside
            good[inside] &= allowed[index][yi[inside], xi[inside]] > 0
            positions, ids = nxt[good], ids[good]
        if len(positions) < 0.8 * max_features:
            new = detect(index, positions, max_features - len(positions))
            new_ids = np.arange(next_id, next_id + len(new))
            next_id += len(new)
            positions = np.concatenate([positions, new]).astype(np.float32)
            ids = np.concatenate([ids, new_ids])
        if table.shape[1] < next_id:
            table = np.concatenate([table, np.full((frames, next_id - table.shape[1], 2), np.nan)], 1)
        table[index, ids] = positions
        progress(index + 1, frames)
    return _Tracks(table)


# ----------------------------------------------------------------------------------------------
# geometry

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
    hom, inl = cv2.findHomography(a.astype(np.float32), b.astype(np.float32), cv2.USAC_MAGSAC, 1.0)
    return np.zeros(len(a), bool) if hom is None else inl.ravel().astype(bool)


def _parallax(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(homography, epipolar) median residuals in px over the fundamental matrix's inliers.

    Both models are fitted robustly; a clearly larger homography residual means translation parallax.
    Moving foreground points are outliers of both and do not enter the medians.
    """
    fmat, inl = cv2.findFundamentalMat(a, b, cv2.USAC_MAGSAC, 1.0, 0.999)
    if fmat is None or fmat.shape != (3, 3) or inl.sum() < 8:
        return 0.0, float("inf")
    keep = inl.ravel().astype(bool)
    a, b = a[keep], b[keep]
    ah, bh = np.c_[a, np.ones(len(a))], np.c_[b, np.ones(len(b))]
    lb, la = ah @ fmat.T, bh @ fmat
    num = np.abs(np.sum(bh * lb, 1))
    epipolar = 0.5 * (num / np.hypot(lb[:, 0], lb[:, 1]) + num / np.hypot(la[:, 0], la[:, 1]))
    hom, _ = cv2.findHomography(a, b, cv2.USAC_MAGSAC, 1.0)
    if hom is None:
        return float("inf"), float(np.median(epipolar))
    proj = cv2.perspectiveTransform(a.reshape(-1, 1, 2), hom).reshape(-1, 2)
    return float(np.median(np.linalg.norm(proj - b, axis=1))), float(np.median(epipolar))


def _fit_rotation_zoom(a: np.ndarray, b: np.ndarray, k: np.ndarray, k_key: np.ndarray):
    """Rotation (and focal change, for zooms) mapping key-frame pixels ``a`` to pixels ``b``.

    Returns ``(R, zoom, median residual px)`` with bearings_b = R · bearings_a, where frame b's focal
    is ``zoom ×`` the key frame's. The zoom is kept only when it clearly explains the motion better.
    """
    ba = _bearings(a, k_key)

    def fit(zoom: float):
        kb = k_key * np.array([zoom, zoom, 1, 1])
        rot = _kabsch(ba, _bearings(b, kb))
        proj = ba @ rot.T
        px = np.stack([proj[:, 0] / proj[:, 2] * kb[0] + kb[2], proj[:, 1] / proj[:, 2] * kb[1] + kb[3]], 1)
        return rot, float(np.median(np.linalg.norm(px - b, axis=1)))

    rot1, res1 = fit(1.0)
    lo, hi = math.log(0.7), math.log(1.43)  # golden-section search over log zoom
    ratio = (math.sqrt(5) - 1) / 2
    for _ in range(20):
        m1, m2 = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
        if fit(math.exp(m1))[1] < fit(math.exp(m2))[1]:
            hi = m2
        else:
            lo = m1
    zoom = math.exp((lo + hi) / 2)
    rot_z, res_z = fit(zoom)
    if res_z < 0.7 * res1 and abs(math.log(zoom)) > 0.005:
        return rot_z, zoom, res_z
    return rot1, 1.0, res1


def _solve_rotation(tracks: _Tracks, k: np.ndarray, min_common: int):
    """Pure-rotation / zoom poses against a key frame (chained when tracks run out), translation 0."""
    pts, valid = tracks.points, tracks.valid
    frames = len(pts)
    rot = np.tile(np.eye(3), (frames, 1, 1))
    zoom = np.ones(frames)
    inliers, residual = np.zeros(frames, int), np.zeros(frames)
    key = 0
    inliers[0] = valid[0].sum()
    for i in range(1, frames):
        common = valid[key] & valid[i]
        if common.sum() < min_common and key != i - 1:
            key = i - 1
            common = valid[key] & valid[i]
        if common.sum() < 8:
            rot[i], zoom[i] = rot[i - 1], zoom[i - 1]
            continue
        a, b = pts[key, common], pts[i, common]
        inl = _homography_inliers(a, b)
        if inl.sum() < 8:
            inl = np.ones(len(a), bool)
        k_key = k * np.array([zoom[key], zoom[key], 1, 1])
        r_rel, z_rel, residual[i] = _fit_rotation_zoom(a[inl], b[inl], k, k_key)
        rot[i] = rot[key] @ r_rel.T
        zoom[i] = zoom[key] * z_rel
        inliers[i] = int(inl.sum())
    c2w = np.tile(np.eye(4), (frames, 1, 1))
    c2w[:, :3, :3] = rot
    return c2w, inliers, residual, zoom


def _project(points3d: np.ndarray, w2c: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    cam = points3d @ w2c[:3, :3].T + w2c[:3, 3]
    z = cam[:, 2]
    safe = np.where(np.abs(z) > 1e-9, z, 1e-9)
    return np.stack([cam[:, 0] / safe * k[0] + k[2], cam[:, 1] / safe * k[1] + k[3]], 1), z


def _triangulate(w2c_a, w2c_b, pa, pb, k, max_err_px: float, min_angle_deg: float):
    """Two-view triangulation with cheirality, reprojection and triangulation-angle checks → (X, ok)."""
    kmat = np.array([[k[0], 0, k[2]], [0, k[1], k[3]], [0, 0, 1]])
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


def _pnp(points3d, points2d, k, guess_w2c, threshold_px: float):
    """RANSAC PnP + LM refinement → (w2c or None, inlier flags, median reprojection px)."""
    kmat = np.array([[k[0], 0, k[2]], [0, k[1], k[3]], [0, 0, 1]])
    obj, img = points3d.astype(np.float64), points2d.astype(np.float64)
    if len(obj) < 6:
        return None, np.zeros(len(obj), bool), float("nan")
    rvec0, _ = cv2.Rodrigues(guess_w2c[:3, :3])
    ok, rvec, tvec, inl = cv2.solvePnPRansac(obj, img, kmat, None, rvec0.copy(), guess_w2c[:3, 3:].copy(),
                                             useExtrinsicGuess=True, iterationsCount=200,
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


def _solve_general(tracks: _Tracks, k: np.ndarray, init: int, scene_depth: float, refine_passes: int):
    """Essential-matrix initialisation on (0, init), then PnP + triangulation; None if it fails."""
    pts, valid = tracks.points, tracks.valid
    frames, count = valid.shape
    common = valid[0] & valid[init]
    kmat = np.array([[k[0], 0, k[2]], [0, k[1], k[3]], [0, 0, 1]])
    a, b = pts[0, common], pts[init, common]
    ess, mask = cv2.findEssentialMat(a, b, kmat, cv2.USAC_MAGSAC, 0.999, 1.0)
    if ess is None or ess.shape != (3, 3):
        return None
    _, r, t, mask = cv2.recoverPose(ess, a, b, kmat, mask=mask)
    w2c = np.tile(np.eye(4), (frames, 1, 1))
    solved = np.zeros(frames, bool)
    solved[0] = solved[init] = True
    w2c[init, :3, :3], w2c[init, :3, 3] = r, t.ravel()
    xyz = np.zeros((count, 3))
    has_xyz = np.zeros(count, bool)
    idx = np.flatnonzero(common)[mask.ravel() > 0]
    if len(idx) < 12:
        return None
    x, ok = _triangulate(w2c[0], w2c[init], pts[0, idx], pts[init, idx], k, 2.0, 0.3)
    xyz[idx[ok]], has_xyz[idx[ok]] = x[ok], True
    if has_xyz.sum() < 12:
        return None

    inliers, residual = np.zeros(frames, int), np.zeros(frames)

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

    for pass_index in range(1 + refine_passes):
        order = list(range(1, frames))
        for i in order:
            if pass_index == 0 and i == init:
                triangulate_from(i, 1.0)
                continue
            use = valid[i] & has_xyz
            guess = w2c[i] if solved[i] else w2c[i - 1]
            pose, flags, err = _pnp(xyz[use], pts[i, use], k, guess, 2.0)
            if pose is None:
                w2c[i], solved[i] = guess, False
                continue
            w2c[i], solved[i] = pose, True
            inliers[i], residual[i] = int(flags.sum()), err
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
    inliers[0] = int((valid[0] & has_xyz).sum())
    # scale: median depth of the first frame's background points = scene_depth
    depth = xyz[valid[0] & has_xyz, 2]
    depth = depth[depth > 0]
    scale = scene_depth / float(np.median(depth)) if len(depth) else 1.0
    c2w = np.linalg.inv(w2c)
    c2w[:, :3, 3] *= scale
    return c2w, inliers, residual, solved


# ----------------------------------------------------------------------------------------------

def estimate_trajectory(frames, masks=None, fov_deg: float | None = None, *, intrinsics=None,
                        focal_search: bool = False,
                        max_features: int = 600, mask_dilation: float = 0.02, fb_px: float = 0.5,
                        static_px: float = 0.3, parallax_px: float = 0.6, parallax_ratio: float = 3.0, min_points: int = 20,
                        scene_depth: float = 1.0, refine_passes: int = 2, progress=None
                        ) -> tuple[CameraTrajectory, EstimationStats]:
    """Estimate the camera of a clip from its background; poses relative to the first frame.

    ``frames``: ``(F, H, W, 3)`` uint8 (or a ``(F, 3, H, W)`` float tensor in [0, 1], any device).
    ``masks``: optional ``(F, H, W)`` / ``(F, 1, H, W)``, 1 (or > 127 for uint8) = human; dilated by
    ``mask_dilation`` × the longer side before use. ``fov_deg``: FOV across the longer side, or
    ``intrinsics``: an intrinsics file (JSON / COLMAP ``cameras.txt``) or normalised ``(fx, fy, cx, cy)``;
    with neither, :data:`DEFAULT_FOV_DEG` (``focal_search`` picks it by reprojection error instead).
    Returns the trajectory and :class:`EstimationStats` (``stats.quality`` is the per-clip report).
    Too few background features → a static trajectory, a ``UserWarning`` and an "unreliable" verdict.
    ``progress(done, frames)``: called per tracked frame and before each pose solve (raise in it to cancel).
    """
    frames, progress = _as_uint8_frames(frames), progress or (lambda done, total: None)
    human = _as_masks(masks, frames)
    count, height, width = frames.shape[:3]
    if count < 1:
        raise ValueError("estimate_trajectory needs at least one frame")
    given = resolve_intrinsics(intrinsics, fov_deg, height, width)
    gray = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames])
    allowed = np.full(gray.shape, 255, np.uint8)
    if human is not None:
        radius = max(1, int(round(mask_dilation * max(height, width))))
        grown = dilate(torch.from_numpy(human[:, None].astype(np.float32)), radius)[:, 0].numpy() > 0.5
        allowed[grown] = 0
    border = max(2, width // 100)
    allowed[:, :border], allowed[:, -border:], allowed[:, :, :border], allowed[:, :, -border:] = 0, 0, 0, 0

    def report(intr: np.ndarray, motion: str, reprojection: float, ratio: float, unreliable, failure=None):
        valid_tracks = int((tracks.valid.sum(0) >= 2).sum()) if tracks is not None else 0
        return assess(frames=count, motion=motion, reprojection_px=reprojection, track_count=valid_tracks,
                      inlier_ratio=ratio, focal_px=float(0.5 * (intr[0] * width + intr[1] * height)),
                      fov_deg=fov_of(intr, height, width), focal_estimated=given is None and focal_search,
                      unreliable_frames=list(unreliable), failure=failure)

    def static_result(mode: str, message: str | None, intr: np.ndarray, tracked=None):
        notes = []
        if message:
            warnings.warn(message, UserWarning, stacklevel=3)
            notes.append(message)
        tracked = np.zeros(count, int) if tracked is None else tracked
        quality = report(intr, mode, 0.0, 0.0 if message else 1.0, [], message)
        stats = EstimationStats(tracked, tracked.copy() if mode == "static" and not message else np.zeros(count, int),
                                np.full(count, 0.0 if message else 1.0), np.zeros(count), mode,
                                fov_of(intr, height, width), notes, quality)
        return CameraTrajectory.static(count, intr), stats

    tracks = None
    default_intr = intrinsics_for_fov(DEFAULT_FOV_DEG, height, width) if given is None else given
    if count == 1:
        return static_result("static", None, default_intr)
    tracks = _track(gray, allowed, max_features, fb_px, progress)
    fov = fov_of(default_intr, height, width)
    valid = tracks.valid
    tracked = valid.sum(1)
    if tracked.min() < min_points:
        bad = int(np.argmin(tracked))
        return static_result("static", f"camera estimation: only {tracked[bad]} background features in frame "
                             f"{bad} (need {min_points}); returning a static camera", default_intr, tracked)

    # static test: median frame-to-frame motion of background tracks, accumulated
    steps = np.linalg.norm(tracks.points[1:] - tracks.points[:-1], axis=-1)
    step_median = np.array([np.median(s[~np.isnan(s)]) if (~np.isnan(s)).sum() else 0.0 for s in steps])
    if step_median.sum() < static_px:
        return static_result("static", None, default_intr, tracked)

    # parallax test against frame 0: a homography (rotation / zoom) must explain the tracks clearly
    # worse than epipolar geometry does before translation is estimated
    best, best_res, epipolar = 0, 0.0, float("inf")
    for i in sorted(set(range(max(1, count // 8), count, max(1, count // 8))) | {1}):
        common = valid[0] & valid[i]
        if common.sum() < max(40, min_points):
            break
        res, epi = _parallax(tracks.points[0, common], tracks.points[i, common])
        if res > best_res:
            best, best_res, epipolar = i, res, epi
    has_parallax = best_res >= parallax_px and best_res >= parallax_ratio * epipolar

    def solve(fov_value: float):
        progress(count, count)
        intr = intrinsics_for_fov(fov_value, height, width) if given is None else given
        k = intr * np.array([width, height, width, height])
        if has_parallax:
            general = _solve_general(tracks, k, best, scene_depth, refine_passes)
            if general is not None:
                c2w, inl, res, solved = general
                return c2w, inl, res, "general", solved, np.ones(count)
        c2w, inl, res, zoom = _solve_rotation(tracks, k, max(40, min_points))
        return c2w, inl, res, "rotation", inl >= 8, zoom

    if focal_search and given is None:
        scores = {}
        for candidate in list(range(40, 105, 5)):
            _, inl, res, _, solved, _ = solve(candidate)
            scores[candidate] = float(np.median(res[1:][solved[1:]])) if solved[1:].any() else float("inf")
        coarse = min(scores, key=scores.get)
        for candidate in range(coarse - 4, coarse + 5):
            if candidate not in scores and 20 <= candidate <= 130:
                _, inl, res, _, solved, _ = solve(candidate)
                scores[candidate] = float(np.median(res[1:][solved[1:]])) if solved[1:].any() else float("inf")
        fov = float(min(scores, key=scores.get))

    c2w, inliers, residual, mode, solved, zoom = solve(fov)
    notes = []
    unsolved = np.flatnonzero(~solved[1:]) + 1
    if len(unsolved):
        notes.append(f"camera estimation: no reliable pose for frames {unsolved.tolist()} (pose held)")
        warnings.warn(notes[-1], UserWarning, stacklevel=2)
    confidence = np.where(solved, inliers / np.maximum(tracked, 1) * np.minimum(1.0, inliers / 50.0), 0.0)
    confidence[0] = 1.0
    intr = intrinsics_for_fov(fov, height, width) if given is None else given
    per_frame = np.tile(intr, (count, 1))
    per_frame[:, :2] *= zoom[:, None]
    traj = CameraTrajectory(torch.from_numpy(c2w), torch.from_numpy(per_frame))
    ok = solved[1:]
    reprojection = float(np.median(residual[1:][ok])) if ok.any() else float("nan")
    ratio = float(inliers[1:].sum() / max(1, tracked[1:].sum()))
    quality = report(intr, mode, reprojection, ratio, unsolved.tolist())
    return traj, EstimationStats(tracked, inliers, np.clip(confidence, 0, 1), residual, mode, fov, notes, quality)
