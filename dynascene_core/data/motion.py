"""Motion intensity of a clip (paper §4.2, eq. 3): mean SSIM between frames four apart at 8 fps.

A lower score means more change between frames. Clips with ``S >= LOW_MOTION_THRESHOLD`` (0.8)
are "low motion" and the paper drops them; its dataset averages 0.64.
"""

from __future__ import annotations

import cv2
import numpy as np

LOW_MOTION_THRESHOLD = 0.8
MOTION_SAMPLE_FPS = 8.0
MOTION_FRAME_GAP = 4


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Structural similarity of two uint8 images ``(H, W)`` or ``(H, W, 3)`` (compared in grey).

    Wang et al. 2004 with the usual constants: 11×11 Gaussian window, sigma 1.5,
    ``C1 = (0.01·255)²``, ``C2 = (0.03·255)²``; the mean of the SSIM map.
    """
    if a.shape != b.shape:
        raise ValueError(f"ssim: image shapes differ, {a.shape} vs {b.shape}")
    x, y = (_grey(i).astype(np.float64) for i in (a, b))
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def blur(img: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(img, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x ** 2
    var_y = blur(y * y) - mu_y ** 2
    cov = blur(x * y) - mu_x * mu_y
    num = (2 * mu_x * mu_y + c1) * (2 * cov + c2)
    den = (mu_x ** 2 + mu_y ** 2 + c1) * (var_x + var_y + c2)
    return float(np.mean(num / den))


def _grey(image: np.ndarray) -> np.ndarray:
    if image.ndim == 3:
        return cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)
    return image


def motion_sample_indices(num_frames: int, fps: float, sample_fps: float = MOTION_SAMPLE_FPS) -> np.ndarray:
    """Indices of the frames kept when a ``fps`` clip is resampled to ``sample_fps`` (nearest frame)."""
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    step = max(fps / sample_fps, 1.0)
    return np.unique(np.minimum(np.round(np.arange(0, num_frames, step)).astype(int), num_frames - 1))


def motion_intensity(frames: np.ndarray, fps: float, sample_fps: float = MOTION_SAMPLE_FPS,
                     gap: int = MOTION_FRAME_GAP) -> float:
    """Paper eq. 3 on ``frames (F, H, W, 3)`` uint8 recorded at ``fps``.

    Frames are resampled to ``sample_fps`` (8), then ``S = mean_i SSIM(I_i, I_{i+gap})`` over every
    ``i`` with ``i + gap`` inside the resampled clip (the ``1/(n − 4)`` normalisation of eq. 3).
    Raises ``ValueError`` when the clip is too short to hold one pair.
    """
    kept = motion_sample_indices(len(frames), fps, sample_fps)
    if len(kept) <= gap:
        raise ValueError(f"motion intensity needs more than {gap} frames at {sample_fps:g} fps; the clip has "
                         f"{len(frames)} frames at {fps:g} fps ({len(kept)} after resampling)")
    sampled = [frames[i] for i in kept]
    return float(np.mean([ssim(sampled[i], sampled[i + gap]) for i in range(len(sampled) - gap)]))


def is_low_motion(score: float, threshold: float = LOW_MOTION_THRESHOLD) -> bool:
    """The paper's filter: ``S >= 0.8`` is low motion."""
    return score >= threshold
