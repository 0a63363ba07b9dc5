"""Synthetic source videos for the data-preparation tests, and a chroma-key stand-in for the person
detector and the matting network.

The "people" in these videos are painted pure green, so a stand-in that finds green pixels is an
independent ground truth: it detects one box per green blob and mattes green pixels as person.
:func:`install` swaps it in (tests call it through monkeypatch; Ray workers through
``worker_process_setup_hook``).
"""

from __future__ import annotations

import cv2
import numpy as np

from dynascene_core.camera import make_preset, render_synthetic_clip
from dynascene_core.camera.trajectory import CameraTrajectory
from dynascene_core.video import write_video

GREEN = (0, 255, 0)
SIZE = (120, 192)  # height, width of the test videos
FPS = 12.0


def green_mask(frames: np.ndarray) -> np.ndarray:
    """``(n, H, W)`` bool: pixels close to pure green (survive H.264 and resizing)."""
    f = frames.astype(np.int16)
    green = (f[..., 1] > 190) & (f[..., 0] < 80) & (f[..., 2] < 80)
    out = np.zeros_like(green)
    for i, mask in enumerate(green):  # keep blobs over 0.5% of the frame (texture specks are not people)
        count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8))
        big = np.flatnonzero(stats[:, cv2.CC_STAT_AREA] > 0.005 * mask.size)
        out[i] = np.isin(labels, big[big > 0])
    return out


def chroma_detector(frames: np.ndarray) -> list[np.ndarray]:
    """One box (score 1) per green blob."""
    out = []
    for mask in green_mask(frames):
        _, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8))
        boxes = [[x, y, x + w, y + h, 1.0] for x, y, w, h, _ in stats[1:]]
        out.append(np.array(boxes, np.float32).reshape(-1, 5))
    return out


def chroma_matte(frames: np.ndarray, config: dict, device: str) -> np.ndarray:
    """Alpha 1 on the green blobs."""
    return green_mask(frames).astype(np.float32)


def install(monkeypatch=None) -> None:
    """Replace the person detector and RVM by the chroma key (monkeypatch, or for good in a worker)."""
    from dynascene_core.data import build, scan

    if monkeypatch is None:
        scan._detector = lambda settings, device: chroma_detector
        build.matte_frames = chroma_matte
        return
    monkeypatch.setattr(scan, "_detector", lambda settings, device: chroma_detector)
    monkeypatch.setattr(build, "matte_frames", chroma_matte)


def render(num_frames: int, preset: str | None = "orbit_left", seed: int = 0, people: int = 1,
           noise_background: bool = False) -> np.ndarray:
    """``(F, H, W, 3)`` uint8: the synthetic room along ``preset`` (None: a static camera) with ``people``
    green actors; ``noise_background`` replaces the room by fresh grey noise in every frame (plenty of
    change for eq. 3, nothing a camera estimate can track)."""
    height, width = SIZE
    trajectory = make_preset(preset, num_frames) if preset else CameraTrajectory.static(num_frames)
    clip = render_synthetic_clip(trajectory, height, width, seed=seed, actor=people > 0)
    frames = clip.frames.copy()
    if noise_background:
        noise = np.random.default_rng(seed).integers(40, 200, size=frames.shape[:3], dtype=np.uint8)
        frames = np.repeat(cv2.GaussianBlur(noise.reshape(-1, width), (3, 3), 0).reshape(noise.shape)[..., None], 3, -1)
    if people:
        masks = clip.masks > 0.5
        if people == 2:  # a second person standing at the left edge, apart from the actor
            masks[:, int(0.4 * height):int(0.95 * height), int(0.02 * width):int(0.14 * width)] = True
        frames[masks] = GREEN
    return frames


def write(path, frames: np.ndarray) -> str:
    write_video(str(path), frames, FPS)
    return str(path)
