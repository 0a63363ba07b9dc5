"""Camera intrinsics for estimation: from a field of view, a ``(fx, fy, cx, cy)`` tuple or a file.

Intrinsics are normalised by the image size (``fx / W, fy / H, cx / W, cy / H``), as in pose files.
Files (pixels, scaled to the video when the calibration size differs in scale only):

- JSON: ``{"fx": .., "fy": .., "cx": .., "cy": .., "width": W, "height": H}``; ``"f"`` may replace
  ``fx``/``fy``; without ``width``/``height`` the numbers are pixels of the video itself;
- COLMAP ``cameras.txt``: the first camera line, ``ID MODEL W H PARAMS...`` for the pinhole family
  (``SIMPLE_PINHOLE``, ``PINHOLE``, ``SIMPLE_RADIAL``, ``RADIAL``, ``OPENCV``: distortion ignored);
- a RealEstate10K pose file (CameraCtrl's format): its first frame's normalised ``fx fy cx cy``, which hold for the
  video when its aspect ratio is the one they imply with square pixels.
"""

from __future__ import annotations

import json
import math
import os

import numpy as np

DEFAULT_FOV_DEG = 65.0
"""Field of view (degrees, longer side) that starts the focal estimation (a typical phone camera)."""
FOCAL_RANGE_DEG = (20.0, 120.0)  # fields of view the focal estimation considers
FOCAL_STEP = 1.15  # focal ratio of the determinacy check

_COLMAP_FOCALS = {"SIMPLE_PINHOLE": 1, "SIMPLE_RADIAL": 1, "RADIAL": 1, "PINHOLE": 2, "OPENCV": 2,
                  "FULL_OPENCV": 2, "SIMPLE_RADIAL_FISHEYE": 1, "RADIAL_FISHEYE": 1, "OPENCV_FISHEYE": 2}


def focal_bounds(height: int, width: int) -> tuple[float, float]:
    """Focal range (pixels) of :data:`FOCAL_RANGE_DEG`."""
    side = max(height, width) / 2
    return side / math.tan(math.radians(FOCAL_RANGE_DEG[1]) / 2), side / math.tan(math.radians(FOCAL_RANGE_DEG[0]) / 2)


def focal_is_determined(base: float, cost, focal: float) -> bool:
    """True when changing ``focal`` by FOCAL_STEP either way raises ``cost`` (median reprojection px) clearly
    (≥ 0.05 px and 10%) above ``base``, the cost at ``focal`` (for a bundle adjustment: its own error there). The
    smaller focal is tried only when the larger one raised it (the larger one alone already fails on most real clips
    in BENCHMARKS.md, and each try is an adjustment)."""
    margin = max(0.05, 0.1 * base)
    return cost(focal * FOCAL_STEP) - base >= margin and cost(focal / FOCAL_STEP) - base >= margin


def intrinsics_for_fov(fov_deg: float, height: int, width: int) -> np.ndarray:
    """Normalised ``(fx, fy, cx, cy)`` for a FOV across the longer side, square pixels, centred."""
    if not 1.0 <= fov_deg <= 179.0:
        raise ValueError(f"field of view must be within 1..179 degrees, got {fov_deg}")
    focal = max(height, width) / 2 / math.tan(math.radians(fov_deg) / 2)
    return np.array([focal / width, focal / height, 0.5, 0.5])


def fov_of(intrinsics: np.ndarray, height: int, width: int) -> float:
    """Field of view (degrees) across the longer side of normalised intrinsics (mean of fx, fy in pixels)."""
    focal = 0.5 * (intrinsics[0] * width + intrinsics[1] * height)
    return float(math.degrees(2 * math.atan(max(height, width) / 2 / focal)))


def load_intrinsics(path: str | os.PathLike, height: int, width: int) -> np.ndarray:
    """Read an intrinsics file (JSON or COLMAP ``cameras.txt``) → normalised ``(fx, fy, cx, cy)`` for a
    ``width`` × ``height`` video. Errors name the file and what is wrong."""
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise ValueError(f"cannot read intrinsics file {path}: {exc.strerror}") from None
    rows = [row.split() for row in text.splitlines() if row.strip() and not row.lstrip().startswith("#")]
    if text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
            fx = float(data.get("fx", data.get("f")))
            fy = float(data.get("fy", data.get("f")))
            cx, cy = float(data["cx"]), float(data["cy"])
            size = (float(data["width"]), float(data["height"])) if "width" in data else (width, height)
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"intrinsics file {path}: expected JSON with fx, fy (or f), cx, cy and optionally "
                             f"width, height in pixels ({exc})") from None
    elif not (rows and len(rows[0]) >= 5 and rows[0][1] in _COLMAP_FOCALS):
        return _pose_file_intrinsics(path, height, width)
    else:
        line = rows[0]
        values = [float(v) for v in line[2:]]
        size = (values[0], values[1])
        if _COLMAP_FOCALS[line[1]] == 1:
            fx = fy = values[2]
            cx, cy = values[3], values[4]
        else:
            fx, fy, cx, cy = values[2:6]
    calib_w, calib_h = size
    if min(fx, fy, calib_w, calib_h) <= 0:
        raise ValueError(f"intrinsics file {path}: focal lengths and image size must be positive")
    if abs(calib_w / calib_h - width / height) > 0.02 * width / height:
        raise ValueError(f"intrinsics file {path} is for a {calib_w:g}x{calib_h:g} image, but the video is "
                         f"{width}x{height} (different aspect ratio)")
    return np.array([fx / calib_w, fy / calib_h, cx / calib_w, cy / calib_h])


def _pose_file_intrinsics(path: str, height: int, width: int) -> np.ndarray:
    """The first frame's normalised intrinsics of a RealEstate10K pose file, refused when with square pixels they
    imply another aspect ratio than the ``width`` × ``height`` video's (a crop or another source)."""
    from .trajectory import CameraTrajectory, PoseFileError

    try:
        first = CameraTrajectory.load(path, format="realestate10k").intrinsics[0].numpy()
    except PoseFileError as exc:
        raise ValueError(f"intrinsics file {path}: expected JSON, a COLMAP cameras.txt line 'ID MODEL WIDTH HEIGHT "
                         f"PARAMS' with a pinhole-family model, or a RealEstate10K pose file (read as one: {exc})"
                         ) from None
    if not (np.isfinite(first).all() and (first[:2] > 0).all()):
        raise ValueError(f"intrinsics file {path}: the first frame's focal lengths must be positive, got "
                         f"{first[:2].tolist()}")
    implied = first[1] / first[0]  # width / height where fx and fy are the same number of pixels
    if abs(implied / (width / height) - 1) > 0.02:
        raise ValueError(f"intrinsics file {path}: its focal lengths ({first[0]:.4g}, {first[1]:.4g} of the width "
                         f"and height) are square pixels on a {implied:.3f}:1 picture, but the video is "
                         f"{width}x{height} (different aspect ratio)")
    return first


def resolve_intrinsics(intrinsics, fov_deg: float | None, height: int, width: int) -> np.ndarray | None:
    """The given intrinsics as normalised ``(fx, fy, cx, cy)``, or None when the focal must be estimated.

    ``intrinsics``: a file path, or 4 normalised numbers; ``fov_deg``: FOV across the longer side.
    Giving both is an error (they could disagree).
    """
    if intrinsics is not None and fov_deg is not None:
        raise ValueError("give either fov_deg or intrinsics, not both")
    if fov_deg is not None:
        return intrinsics_for_fov(float(fov_deg), height, width)
    if intrinsics is None:
        return None
    if isinstance(intrinsics, (str, os.PathLike)):
        return load_intrinsics(intrinsics, height, width)
    if hasattr(intrinsics, "detach"):  # a torch tensor, possibly on an accelerator
        intrinsics = intrinsics.detach().cpu().numpy()
    values = np.asarray(intrinsics, dtype=np.float64).reshape(-1)
    if values.shape != (4,) or not np.isfinite(values).all() or (values[:2] <= 0).any():
        raise ValueError(f"intrinsics must be 4 normalised numbers (fx, fy, cx, cy) > 0, got {values.tolist()}")
    return values
