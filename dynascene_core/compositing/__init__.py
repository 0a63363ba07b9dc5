"""Compositing the person over the generated background so that it looks filmed.

    out = composite(frames, background, alpha, foreground=rvm_fgr)    # (F, 3, H, W), all in [0, 1]
    out = composite(frames, background, alpha, settings=CompositeSettings(shadow=0.4))

Matte-aware edges (the matting network's foreground colour, or one estimated from the frames),
light wrap, temporally smoothed colour harmonization and an optional contact shadow.
"""

from .composite import CompositeSettings, composite
from .edges import estimate_foreground, light_wrap, spread_foreground
from .harmonize import apply_gains, frame_log_gains, harmonization_gains, smooth_gains
from .shadow import cast_shadow, foot_rows, shadow_matte

__all__ = [
    "CompositeSettings", "apply_gains", "cast_shadow", "composite", "estimate_foreground", "foot_rows",
    "frame_log_gains", "harmonization_gains", "light_wrap", "shadow_matte", "smooth_gains", "spread_foreground",
]
