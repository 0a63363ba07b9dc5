"""OpenCV's robust model fits, guarded. Its USAC estimators (MAGSAC) fail an internal assertion
(``!model.empty()``) on some small, noisy point sets instead of returning no model; one such set in a clip
must count as no model, not crash the estimate (it did, on a generated background of the proof
evaluation)."""

from __future__ import annotations

import cv2


def robust_fit(fit, *args, **kwargs):
    """``fit(*args, **kwargs)`` for ``cv2.findHomography`` / ``findFundamentalMat`` / ``findEssentialMat``:
    its ``(model, inlier mask)``, or ``(None, None)`` where OpenCV fails on the points."""
    try:
        return fit(*args, **kwargs)
    except cv2.error:
        return None, None
