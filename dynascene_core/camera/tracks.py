"""Input checks and background point tracking (pyramidal KLT, OpenCV) for camera estimation."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from .robust import robust_fit


@dataclass
class Tracks:
    """Point tracks over a clip."""

    points: np.ndarray  # (F, N, 2) float64 pixel positions, NaN where the track is absent

    @property
    def valid(self) -> np.ndarray:
        return ~np.isnan(self.points[..., 0])

    def coverage(self, allowed: np.ndarray, grid: int = 8) -> float:
        """Median over frames of the share of the picture's ``grid × grid`` cells that hold a track seen in at least
        two frames, counting only cells at least half background (``allowed``: ``(F, H, W)``, > 0 = usable): how
        widely the tracks spread over the background, for the quality report. Features bunched on one small object
        leave a turn and a sideways travel hard to tell apart."""
        frames, height, width = allowed.shape
        rows = np.r_[np.arange(grid) * height // grid, height]  # cell i spans rows[i] … rows[i + 1] - 1
        cols = np.r_[np.arange(grid) * width // grid, width]
        cell_area = np.diff(rows)[:, None] * np.diff(cols)[None, :]
        valid = self.valid
        counted = valid & (valid.sum(0) >= 2)
        shares = []
        for index in range(frames):
            summed = cv2.integral((allowed[index] > 0).astype(np.uint8))[rows][:, cols]  # (grid + 1, grid + 1)
            usable = summed[1:, 1:] - summed[:-1, 1:] - summed[1:, :-1] + summed[:-1, :-1]
            background = usable >= 0.5 * cell_area
            if not background.any():
                continue
            points = self.points[index, counted[index]]
            held = np.zeros((grid, grid), bool)
            held[np.searchsorted(rows, np.clip(points[:, 1], 0, height - 1), "right") - 1,
                 np.searchsorted(cols, np.clip(points[:, 0], 0, width - 1), "right") - 1] = True
            shares.append((held & background).sum() / background.sum())
        return float(np.median(shares)) if shares else 0.0


# ----------------------------------------------------------------------------------------------
# input handling

def as_uint8_frames(frames) -> np.ndarray:
    from ..video import to_uint8

    if isinstance(frames, torch.Tensor):
        if frames.ndim != 4 or frames.shape[1] != 3:
            raise ValueError(f"frame tensor must be (F, 3, H, W) in [0, 1], got {tuple(frames.shape)}")
        return to_uint8(frames)
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be (F, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
    return frames


def as_masks(masks, frames: np.ndarray) -> np.ndarray | None:
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


def _reduced_size(height: int, width: int, longer_side: int) -> tuple[int, int] | None:
    """OpenCV's ``(width, height)`` of a picture reduced to ``longer_side``, or None when it is no larger."""
    scale = longer_side / max(height, width)
    return None if scale >= 1 else (max(1, round(width * scale)), max(1, round(height * scale)))


def reduced_frames(frames: np.ndarray, longer_side: int) -> np.ndarray:
    """``frames`` ``(F, H, W, 3)`` uint8 reduced by area averaging so that their longer side is ``longer_side``;
    frames no larger are returned as they are."""
    size = _reduced_size(*frames.shape[1:3], longer_side)
    if size is None:
        return frames
    return np.stack([cv2.resize(frame, size, interpolation=cv2.INTER_AREA) for frame in frames])


def reduced_masks(human: np.ndarray, longer_side: int) -> np.ndarray:
    """``human`` ``(F, H, W)`` bool masks reduced as :func:`reduced_frames` reduces frames of their size, a reduced
    pixel human where any part of it was (the person is excluded from tracking, so none of it may slip through)."""
    size = _reduced_size(*human.shape[1:3], longer_side)
    if size is None:
        return human
    return np.stack([cv2.resize(mask.astype(np.float32), size, interpolation=cv2.INTER_AREA) for mask in human]) > 0


# ----------------------------------------------------------------------------------------------
# tracking

_CRITERIA = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 0.01)
FINE_LK = dict(winSize=(9, 9), maxLevel=4, criteria=_CRITERIA)
WIDE_LK = dict(winSize=(21, 21), maxLevel=3, criteria=_CRITERIA)
"""KLT settings: a step is tracked with the FINE_LK window, and again with the WIDE_LK one when the fine window's
tracks moved LARGE_MOTION_PX or more (median), or when it kept fewer than LOST_SHARE of them and the wide window keeps
more. A 21-px window straddles depth edges and mixes near and far texture: on phone clips with COLMAP poses its tracks
held the bundle adjustment 1-4 deg off; a 9-px window (one pyramid level more for the reach) cut the p90 of those
clips from 6.5 to 2.1 deg. Steps of 20 px or more between key frames of a walk change the picture too much for 9 px:
the wide window keeps more of their tracks (BENCHMARKS.md, "A finer KLT window")."""


LOST_SHARE = 0.5
LARGE_MOTION_PX = 20.0
"""A step that keeps fewer than LOST_SHARE of its tracks while a homography of descriptor matches moves them by
LARGE_MOTION_PX or more (median) is tracked again from the positions it predicts: motion too large for the
KLT pyramid (fast turns between the key frames of a walk: 24–137 px on the HoloLens clips of the real-footage
benchmark). Slow steps keep the plain KLT result: there the tracks were lost to occlusion or the image border,
not to the search range (KITTI's forward drive loses half its tracks at 5–36 px; see BENCHMARKS.md)."""


def _moved(points: np.ndarray, homography: np.ndarray) -> np.ndarray:
    """``points (N, 2)`` mapped by ``homography (3, 3)`` (float32, as KLT takes them)."""
    return cv2.perspectiveTransform(points.reshape(-1, 1, 2).astype(np.float64), homography
                                    ).reshape(-1, 2).astype(np.float32)


def _track_step(previous: np.ndarray, current: np.ndarray, positions: np.ndarray, fb_px: float, lk: dict,
                homography: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Forward–backward KLT (settings ``lk``) of ``positions (N, 2)`` from ``previous`` to ``current`` → (symmetric
    positions ``(N, 2)``, kept flags ``(N,)``). With a ``homography`` (previous → current) each search starts where
    it predicts the point (forward) and where its inverse predicts the point back (backward)."""
    if homography is None:
        nxt, st1, _ = cv2.calcOpticalFlowPyrLK(previous, current, positions, None, **lk)
        back, st2, _ = cv2.calcOpticalFlowPyrLK(current, previous, nxt, None, **lk)
    else:
        nxt, st1, _ = cv2.calcOpticalFlowPyrLK(previous, current, positions, _moved(positions, homography),
                                               flags=cv2.OPTFLOW_USE_INITIAL_FLOW, **lk)
        back, st2, _ = cv2.calcOpticalFlowPyrLK(current, previous, nxt, _moved(nxt, np.linalg.inv(homography)),
                                                flags=cv2.OPTFLOW_USE_INITIAL_FLOW, **lk)
    good = (st1.ravel() == 1) & (st2.ravel() == 1) & (np.linalg.norm(back - positions, axis=1) < fb_px)
    # symmetric estimate: the mean of the forward position and the one the backward track implies
    # (forward position minus the round-trip residual)
    return nxt - 0.5 * (back - positions), good


def _median_shift(start: np.ndarray, end: np.ndarray) -> float:
    """Median distance (px) between matching rows of ``start`` and ``end`` ``(N, 2)``."""
    return float(np.median(np.linalg.norm(end - start, axis=1)))


def _tracked_step(previous: np.ndarray, current: np.ndarray, positions: np.ndarray, fb_px: float,
                  homography) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_track_step` with the window chosen as :data:`FINE_LK` says, and a step that still loses more than
    :data:`LOST_SHARE` of its tracks tried again from ``homography()``'s prediction (previous → current, or None;
    asked for only then) when that moves them :data:`LARGE_MOTION_PX` or more. Returns (positions, kept flags)."""
    nxt, good = _track_step(previous, current, positions, fb_px, FINE_LK)
    if good.any() and _median_shift(positions[good], nxt[good]) >= LARGE_MOTION_PX:
        nxt, good = _track_step(previous, current, positions, fb_px, WIDE_LK)
    elif good.sum() < LOST_SHARE * len(positions):
        wide, wide_good = _track_step(previous, current, positions, fb_px, WIDE_LK)
        if wide_good.sum() > good.sum():
            nxt, good = wide, wide_good
    if good.sum() < LOST_SHARE * len(positions):
        hom = homography()
        if hom is not None and _median_shift(positions, _moved(positions, hom)) >= LARGE_MOTION_PX:
            retried, retried_good = _track_step(previous, current, positions, fb_px, WIDE_LK, hom)
            if retried_good.sum() > good.sum():
                nxt, good = retried, retried_good
    return nxt, good


def _orb_features(image: np.ndarray, allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """ORB keypoint positions ``(N, 2)`` float32 and descriptors ``(N, 32)`` uint8 (None when none) on the
    allowed pixels of ``image``."""
    keypoints, descriptors = cv2.ORB_create(1500).detectAndCompute(image, allowed)
    return np.float32([k.pt for k in keypoints]).reshape(-1, 2), descriptors


def _descriptor_homography(previous: tuple[np.ndarray, np.ndarray | None],
                           current: tuple[np.ndarray, np.ndarray | None]) -> np.ndarray | None:
    """Homography ``(3, 3)`` previous → current from the cross-checked matches of two frames'
    :func:`_orb_features`, or None when fewer than 20 matches agree on one."""
    (pts_a, des_a), (pts_b, des_b) = previous, current
    if des_a is None or des_b is None or len(pts_a) < 20 or len(pts_b) < 20:
        return None
    matches = cv2.BFMatcher(cv2.NORM_HAMMING, crossCheck=True).match(des_a, des_b)
    if len(matches) < 20:
        return None
    a = pts_a[[m.queryIdx for m in matches]]
    b = pts_b[[m.trainIdx for m in matches]]
    hom, inliers = robust_fit(cv2.findHomography, a, b, cv2.USAC_MAGSAC, 3.0)
    return None if hom is None or inliers.sum() < 20 else hom


def track_points(gray: np.ndarray, allowed: np.ndarray, max_features: int, fb_px: float, progress=None) -> Tracks:
    """KLT tracks over allowed (background) pixels; ``allowed`` is ``(F, H, W)`` uint8 (255 = usable).
    Each step is tracked forward and back: tracks whose round trip misses by ``fb_px`` or more are dropped,
    the others are moved by half the round-trip residual (symmetric forward–backward estimate). The search window
    is :data:`FINE_LK`'s, :data:`WIDE_LK`'s for large or lossy steps; a step too large for the KLT pyramid is
    tracked again from an ORB homography's prediction (:data:`LARGE_MOTION_PX`).
    ``progress(frames_done, frames)`` is called after each frame (it may raise to cancel)."""
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

    # ORB features of the last two frames asked for: consecutive retried steps share a frame
    orb_features = functools.lru_cache(maxsize=2)(lambda index: _orb_features(gray[index], allowed[index]))

    seen = []  # per frame: (track ids, positions (N, 2)); the (F, tracks, 2) table is filled once at the end
    for index in range(frames):
        if index > 0 and len(positions):
            nxt, good = _tracked_step(gray[index - 1], gray[index], positions, fb_px,
                                      lambda: _descriptor_homography(orb_features(index - 1), orb_features(index)))
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
        seen.append((ids, positions))
        if progress is not None:
            progress(index + 1, frames)
    table = np.full((frames, next_id, 2), np.nan)
    for index, (frame_ids, frame_positions) in enumerate(seen):
        table[index, frame_ids] = frame_positions
    return Tracks(table)
