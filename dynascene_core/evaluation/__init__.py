"""Evaluation: the paper's metrics (L1, PSNR, SSIM, LPIPS, FID, FVD-I3D, FVD-3DRes) and the
camera-following error (RotErr / TransErr of the camera estimated from the generated background).

CLI: ``python -m dynascene_core.evaluate GENERATED GROUND_TRUTH [--masks DIR] [--cameras DIR] ...``.
Python::

    from dynascene_core.evaluation import EvalClip, evaluate_clips, evaluate_folders, format_table
    report = evaluate_folders("outputs/generated", "data/ground_truth", masks_dir="data/mattes")
    print(report.table()); report.write_json("outputs/eval.json")

Importing this package is cheap: torchmetrics, lpips, torchvision and OpenCV load when a metric runs.
"""

from .camera_error import CameraError, camera_following_error, trajectory_error
from .clips import ClipSource, EvalClip, EvaluationInputError, list_clips, load_clip, match_clip_folders
from .pixel import fill_foreground, l1_per_frame, psnr_per_frame, ssim_per_frame
from .report import COLUMNS, EvaluationReport, format_table
from .run import METRICS, evaluate_clips, evaluate_folders
from .weights import DEFAULT_WEIGHTS_DIR, WEIGHT_FILES, MissingWeightsError, weight_path

__all__ = [
    "CameraError", "camera_following_error", "trajectory_error", "ClipSource", "EvalClip",
    "EvaluationInputError", "list_clips", "load_clip", "match_clip_folders", "fill_foreground", "l1_per_frame",
    "psnr_per_frame", "ssim_per_frame", "COLUMNS", "EvaluationReport", "format_table", "METRICS",
    "evaluate_clips", "evaluate_folders", "DEFAULT_WEIGHTS_DIR", "WEIGHT_FILES", "MissingWeightsError",
    "weight_path",
]
