"""Human video matting: Robust Video Matting in plain PyTorch, chunked video matting, mask tools.

    model = load_rvm("models/rvm/rvm_mobilenetv3.pth", device="cuda")   # fp16 on CUDA, fp32 on CPU
    result = matte_video(model, frames)            # frames (F, 3, H, W) in [0, 1], or uint8 chunks
    result.alpha, result.foreground, result.foreground_video          # (F,1,H,W), (F,3,H,W), (F,3,H,W)
"""

from .loader import default_dtype, detect_variant, load_rvm, rvm_from_state_dict
from .masks import (
    dilate,
    erode,
    feather,
    fill_holes,
    human_removed_mask,
    remove_small_islands,
    temporal_average,
    temporal_ema,
    threshold,
    validate_mask,
)
from .matte import MattingInputError, MattingResult, auto_downsample_ratio, check_frames, iter_matting, matte_video
from .rvm import VARIANTS, RobustVideoMatting

__all__ = [
    "VARIANTS", "MattingInputError", "MattingResult", "RobustVideoMatting", "auto_downsample_ratio",
    "check_frames", "default_dtype", "detect_variant", "dilate", "erode", "feather", "fill_holes",
    "human_removed_mask", "iter_matting", "load_rvm", "matte_video", "remove_small_islands",
    "rvm_from_state_dict", "temporal_average", "temporal_ema", "threshold", "validate_mask",
]
