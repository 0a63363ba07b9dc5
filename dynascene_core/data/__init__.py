"""The clip-folder dataset format shared by training and data-preparation tools, and the motion
intensity score of paper eq. 3. See :mod:`.clips` for the layout."""

from .clips import (CLIPS_DIR, MANIFEST_NAME, SPLITS, ClipError, ClipFiles, ClipFrames, ClipRecord, clip_files,
                    load_trajectory, read_clip_frames, read_manifest, read_scene_image, validate_clip, write_clip,
                    write_manifest)
from .motion import LOW_MOTION_THRESHOLD, is_low_motion, motion_intensity, motion_sample_indices, ssim

__all__ = [
    "CLIPS_DIR", "MANIFEST_NAME", "SPLITS", "ClipError", "ClipFiles", "ClipFrames", "ClipRecord", "clip_files",
    "load_trajectory", "read_clip_frames", "read_manifest", "read_scene_image", "validate_clip", "write_clip",
    "write_manifest", "LOW_MOTION_THRESHOLD", "is_low_motion", "motion_intensity", "motion_sample_indices", "ssim",
]
