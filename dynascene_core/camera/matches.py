"""Tracks from matched SIFT features (OpenCV) for the accurate camera estimate, and the fast one's long or doubtful
clips.

Each frame's SIFT features are matched with those of every frame up to :data:`MATCH_WINDOW` frames away (nearest
neighbours by one matrix product in torch, Lowe's ratio test, then a fundamental matrix by MAGSAC so that only
matches agreeing with the two views' epipolar geometry are kept, or a homography where no fundamental matrix is
found), and the matches are chained into tracks. Unlike KLT, which follows each point from frame to frame and
carries every step's small error into the next, a feature found again in a later frame is matched there directly:
on phone clips with COLMAP poses the bundle adjustment on these tracks ends at 0.1–0.6° where the KLT tracks held it
1–4° away (BENCHMARKS.md).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import cv2
import numpy as np
import torch

from .robust import robust_fit
from .tracks import Tracks

MATCH_WINDOW = 12  # frames: each frame is matched with this many after it (the accurate method's)
RATIO = 0.8  # Lowe's ratio test
EPIPOLAR_PX = 1.0  # a match farther than this from its epipolar line is dropped
MIN_PAIR_MATCHES = 15  # pairs with fewer verified matches add none
CONTRAST = 0.01  # SIFT's contrast threshold (OpenCV's default 0.04 leaves plain sheets and desks without features)


@contextmanager
def _torch_on_half_the_threads():
    """The calling thread's torch operations on half its CPU threads (one on a 2-core machine) while the block runs.
    The matching overlaps the SIFT detection, which OpenCV spreads over every core, and on two cores torch's OpenMP
    workers waiting beside OpenCV's made the matching a third slower (BENCHMARKS.md); half leaves a large machine most
    of torch's speed. With OpenMP the setting is the calling thread's own, and the one threads started later begin
    with; both are given back."""
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, threads // 2))
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _ratio_matches(descriptors_a: torch.Tensor, descriptors_b: torch.Tensor) -> np.ndarray:
    """Index pairs ``(M, 2)`` of frame a's features ``(N, 128)`` and their nearest of frame b's ``(K, 128)``, K >= 2,
    by L2 distance, where that one is nearer than :data:`RATIO` × the second nearest (Lowe's ratio test). The same
    pairs as OpenCV's brute-force ``knnMatch(k=2)``, from one matrix product: about three times faster."""
    partial = torch.addmm((descriptors_b * descriptors_b).sum(1), descriptors_a, descriptors_b.T, alpha=-2)
    nearest = partial.topk(2, dim=1, largest=False)  # squared distances less a's squared norm
    squared = nearest.values + (descriptors_a * descriptors_a).sum(1, keepdim=True)
    passed = (squared[:, 0] < RATIO ** 2 * squared[:, 1]).numpy()
    return np.c_[np.flatnonzero(passed), nearest.indices[passed, 0].numpy()]


def _verified_pairs(points_a: np.ndarray, points_b: np.ndarray, descriptors_a: torch.Tensor | None,
                    descriptors_b: torch.Tensor | None) -> np.ndarray:
    """Index pairs ``(M, 2)`` of features of frame a and frame b that match and agree with one epipolar geometry."""
    if descriptors_a is None or descriptors_b is None or len(points_a) < 2 or len(points_b) < 2:
        return np.zeros((0, 2), int)
    index = _ratio_matches(descriptors_a, descriptors_b)
    if len(index) < MIN_PAIR_MATCHES:
        return np.zeros((0, 2), int)
    a, b = points_a[index[:, 0]], points_b[index[:, 1]]
    _, inliers = robust_fit(cv2.findFundamentalMat, a, b, cv2.USAC_MAGSAC, EPIPOLAR_PX, 0.999)
    if inliers is None:  # no fundamental matrix (a pure turn or a static camera): a homography decides
        _, inliers = robust_fit(cv2.findHomography, a, b, cv2.RANSAC, 2 * EPIPOLAR_PX)
    if inliers is None or inliers.sum() < MIN_PAIR_MATCHES:
        return np.zeros((0, 2), int)
    return index[inliers.ravel() > 0]


def match_tracks(gray: np.ndarray, allowed: np.ndarray, max_features: int, progress=None, *,
                 window: int = MATCH_WINDOW) -> Tracks:
    """Tracks over allowed (background) pixels from SIFT matches: ``gray`` ``(F, H, W)`` uint8, ``allowed``
    ``(F, H, W)`` uint8 (255 = usable), at most ``max_features`` features per frame, each frame matched with the
    ``window`` frames after it. Matches are chained into
    tracks (connected components); a track that would hold two features of one frame is dropped (a repeated
    pattern matched twice). ``progress(frames_done, frames)`` is called after each frame's matching."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    frames = len(gray)
    sift = cv2.SIFT_create(nfeatures=max_features, contrastThreshold=CONTRAST)

    def detect(index: int) -> tuple[np.ndarray, torch.Tensor | None]:
        keypoints, found = sift.detectAndCompute(gray[index], allowed[index])
        points = np.array([k.pt for k in keypoints], np.float64).reshape(-1, 2)
        return points, None if found is None else torch.from_numpy(found)

    points, descriptors, edges = [], [], []
    # the features are detected on a helper thread ahead of the matching (OpenCV and torch release the GIL), so the two
    # overlap: the same tracks in four fifths of the time on 8 real clips (BENCHMARKS.md)
    detector = ThreadPoolExecutor(max_workers=1)
    try:
        with _torch_on_half_the_threads():
            detected = [detector.submit(detect, index) for index in range(frames)]
            for index in range(frames):
                found_points, found = detected[index].result()
                points.append(found_points)
                descriptors.append(found)
                for earlier in range(max(0, index - window), index):
                    pairs = _verified_pairs(points[earlier], points[index], descriptors[earlier], descriptors[index])
                    edges.append(np.c_[np.full(len(pairs), earlier), pairs[:, 0],
                                       np.full(len(pairs), index), pairs[:, 1]])
                if progress is not None:
                    progress(index + 1, frames)
    finally:
        detector.shutdown(cancel_futures=True)  # a cancelling progress stops the detection too
    offsets = np.r_[0, np.cumsum([len(p) for p in points])]
    total = int(offsets[-1])
    if total == 0:
        return Tracks(np.full((frames, 0, 2), np.nan))
    edges = np.concatenate(edges) if edges else np.zeros((0, 4), int)
    a, b = offsets[edges[:, 0]] + edges[:, 1], offsets[edges[:, 2]] + edges[:, 3]
    _, label = connected_components(coo_matrix((np.ones(len(a)), (a, b)), shape=(total, total)), directed=False)
    frame_of = np.repeat(np.arange(frames), np.diff(offsets))
    per_frame = np.zeros((label.max() + 1, frames), int)  # features of each component in each frame
    np.add.at(per_frame, (label, frame_of), 1)
    keep = (per_frame.sum(1) >= 2) & (per_frame.max(1) <= 1)
    column = np.cumsum(keep) - 1
    feature = np.flatnonzero(keep[label])
    table = np.full((frames, int(keep.sum()), 2), np.nan)
    table[frame_of[feature], column[label[feature]]] = np.concatenate(points)[feature]
    return Tracks(table)
