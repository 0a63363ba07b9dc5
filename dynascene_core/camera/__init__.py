"""Cameras: trajectories and pose files, presets, Plücker embedding, estimation from video,
synthetic scenes with known cameras, and trajectory plots.

CLI: ``python -m dynascene_core.camera {estimate,preset,plot} ...`` (see ``__main__.py``).
"""

from .trajectory import DEFAULT_INTRINSICS, CameraTrajectory, PoseFileError
from .presets import EASINGS, PRESET_NAMES, canonical_easing, combine, make_preset, random_smooth_trajectory
from .plucker import camera_condition, plucker_embedding, plucker_to_rgb, relative_cameras
from .synthetic import SyntheticClip, demo_clip, render_synthetic_clip
from .quality import CameraQuality
from .intrinsics import load_intrinsics
from .estimate import DEFAULT_FOV_DEG, ESTIMATION_SIDE, EstimationStats, estimate_trajectory
from .plot import plot_trajectory

__all__ = [
    "DEFAULT_INTRINSICS", "CameraTrajectory", "PoseFileError", "EASINGS", "PRESET_NAMES", "canonical_easing", "combine",
    "make_preset", "random_smooth_trajectory", "plucker_embedding", "plucker_to_rgb", "camera_condition", "relative_cameras", "SyntheticClip", "demo_clip",
    "render_synthetic_clip", "DEFAULT_FOV_DEG", "ESTIMATION_SIDE", "EstimationStats", "CameraQuality",
    "load_intrinsics", "estimate_trajectory",
    "plot_trajectory",
]
