"""Rendered rolling-shutter clips with known cameras, shared by the estimator's and the node's tests."""

from __future__ import annotations

import numpy as np
import torch

from dynascene_core.camera import CameraTrajectory, make_preset, render_synthetic_clip
from dynascene_core.camera.trajectory import axis_angle_to_matrix

QUARTER_TURN = np.array([[0.0, -1, 0, 0], [1, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
"""Camera axes (X, Y, Z) → (−Y, X, Z): the camera of a picture turned a quarter clockwise, pixel (x, y) →
(H − y, x)."""


def _trajectory(rotations_deg: np.ndarray, centres: np.ndarray) -> CameraTrajectory:
    c2w = np.tile(np.eye(4), (len(centres), 1, 1))
    c2w[:, :3, :3] = axis_angle_to_matrix(np.radians(rotations_deg))
    c2w[:, :3, 3] = centres
    return CameraTrajectory(torch.from_numpy(c2w), make_preset("static", len(centres)).intrinsics)


def shaky_trajectory(frames: int = 20) -> CameraTrajectory:
    """Sideways travel with a hand's shake: yaw and pitch swinging at different periods. A turn at a constant
    rate bends every frame alike, which the points' positions absorb (BENCHMARKS.md), so the shutter shows only
    where the rate changes."""
    i = np.arange(frames)
    return _trajectory(np.c_[2 * np.sin(2 * np.pi * i / 7), 4 * np.sin(2 * np.pi * i / 10), np.zeros(frames)],
                       np.c_[0.05 * i, np.zeros(frames), 0.02 * i])


def shaky_pan(frames: int = 20) -> CameraTrajectory:
    """A hand-held pan: yaw sweeping 1° a frame with a shake, pitch swinging; no travel (no parallax)."""
    i = np.arange(frames)
    return _trajectory(np.c_[1.5 * np.sin(2 * np.pi * i / 9), i + 1.5 * np.sin(2 * np.pi * i / 6), np.zeros(frames)],
                       np.zeros((frames, 3)))


def fov_of(trajectory: CameraTrajectory) -> float:
    """Field of view (degrees) across the width of the trajectory's normalised intrinsics."""
    return float(np.degrees(2 * np.arctan(0.5 / trajectory.intrinsics[0, 0].item())))


def turned_clip(trajectory: CameraTrajectory, height: int, width: int, readout: float, quarter_turns: int = 0
                ) -> tuple[np.ndarray, np.ndarray, CameraTrajectory]:
    """``(frames (F, H', W', 3) uint8, masks, true trajectory)`` of ``trajectory`` rendered at ``height × width``
    through a rolling shutter reading rows top to bottom in ``readout`` frame, then turned ``quarter_turns`` × 90°
    clockwise (negative: counter-clockwise, 2: upside down), as a phone held so records."""
    clip = render_synthetic_clip(trajectory, height, width, seed=2, readout=readout)
    turn = np.linalg.matrix_power(QUARTER_TURN, quarter_turns % 4)
    frames, masks = (np.ascontiguousarray(np.rot90(a, -quarter_turns, axes=(1, 2))) for a in (clip.frames, clip.masks))
    truth = CameraTrajectory(torch.from_numpy(trajectory.c2w.numpy() @ turn.T), trajectory.intrinsics)
    return frames, masks, truth
