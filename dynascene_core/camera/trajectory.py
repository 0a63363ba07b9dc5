"""Camera trajectories: per-frame camera-to-world poses (OpenCV axes) and normalised intrinsics.

Conventions (identical to CameraCtrl / RealEstate10K):

* axes: x right, y down, z forward; ``c2w`` maps camera coordinates to world coordinates;
* intrinsics ``(fx, fy, cx, cy)`` normalised: fx, cx divided by the image width, fy, cy by the height;
* RealEstate10K text file: first line a URL or comment (skipped), then one line per frame
  ``timestamp fx fy cx cy 0 0 r11 r12 r13 t1 r21 r22 r23 t2 r31 r32 r33 t3`` holding the row-major
  3×4 **world-to-camera** matrix;
* TUM text file: ``timestamp tx ty tz qx qy qz qw`` (camera-to-world), ``#`` comment lines allowed.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import numpy as np
import torch

from ..io_utils import atomic_open

DEFAULT_INTRINSICS = (0.474812461, 0.844111024, 0.5, 0.5)
"""RealEstate10K's usual normalised ``(fx, fy, cx, cy)`` (a 1280×720 source, ~93° horizontal FOV)."""

_RE10K_FIELDS = 19
_TUM_FIELDS = 8
_ROTATION_TOLERANCE = 1e-3  # max |R Rᵀ - I| entry accepted in a pose file (files print 6-9 decimals)


class PoseFileError(ValueError):
    """A pose file is malformed; the message names the file and the line number."""


# ----------------------------------------------------------------------------------------------
# rotation helpers (float64 numpy; one place for quaternion / axis-angle maths in the pack)

def quaternion_to_matrix(q: np.ndarray) -> np.ndarray:
    """Unit quaternions ``(..., 4)`` in ``(x, y, z, w)`` order → rotation matrices ``(..., 3, 3)``."""
    q = np.asarray(q, np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    x, y, z, w = np.moveaxis(q, -1, 0)
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
        np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
        np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
    ], -2)


def matrix_to_quaternion(rot: np.ndarray) -> np.ndarray:
    """Rotation matrices ``(..., 3, 3)`` → unit quaternions ``(..., 4)`` ``(x, y, z, w)`` with ``w >= 0``."""
    rot = np.asarray(rot, np.float64)
    flat = rot.reshape(-1, 3, 3)
    out = np.empty((len(flat), 4))
    for n, m in enumerate(flat):  # Shepperd's method: pick the numerically largest component
        trace = np.trace(m)
        k = int(np.argmax([trace, m[0, 0], m[1, 1], m[2, 2]]))
        if k == 0:
            s = 2 * math.sqrt(max(trace + 1, 0.0))
            q = [(m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, s / 4]
        elif k == 1:
            s = 2 * math.sqrt(max(1 + m[0, 0] - m[1, 1] - m[2, 2], 0.0))
            q = [s / 4, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s, (m[2, 1] - m[1, 2]) / s]
        elif k == 2:
            s = 2 * math.sqrt(max(1 + m[1, 1] - m[0, 0] - m[2, 2], 0.0))
            q = [(m[0, 1] + m[1, 0]) / s, s / 4, (m[1, 2] + m[2, 1]) / s, (m[0, 2] - m[2, 0]) / s]
        else:
            s = 2 * math.sqrt(max(1 + m[2, 2] - m[0, 0] - m[1, 1], 0.0))
            q = [(m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, s / 4, (m[1, 0] - m[0, 1]) / s]
        q = np.asarray(q) / np.linalg.norm(q)
        out[n] = -q if q[3] < 0 else q
    return out.reshape(rot.shape[:-2] + (4,))


def axis_angle_to_matrix(axis_angle: np.ndarray) -> np.ndarray:
    """Rotation vectors ``(..., 3)`` (axis × angle in radians) → matrices ``(..., 3, 3)`` (Rodrigues)."""
    v = np.asarray(axis_angle, np.float64)
    angle = np.linalg.norm(v, axis=-1, keepdims=True)
    axis = v / np.where(angle > 1e-15, angle, 1.0)
    x, y, z = np.moveaxis(axis, -1, 0)
    zero = np.zeros_like(x)
    skew = np.stack([np.stack([zero, -z, y], -1), np.stack([z, zero, -x], -1), np.stack([-y, x, zero], -1)], -2)
    a = angle[..., None]
    return np.eye(3) + np.sin(a) * skew + (1 - np.cos(a)) * (skew @ skew)


def matrix_to_axis_angle(rot: np.ndarray) -> np.ndarray:
    """Rotation matrices ``(..., 3, 3)`` → rotation vectors ``(..., 3)`` (via quaternions, stable near 0 and π)."""
    q = matrix_to_quaternion(rot)
    sin_half = np.linalg.norm(q[..., :3], axis=-1, keepdims=True)
    angle = 2 * np.arctan2(sin_half, q[..., 3:])
    return q[..., :3] * np.where(sin_half > 1e-15, angle / np.where(sin_half > 1e-15, sin_half, 1.0), 2.0)


def rotation_angle_deg(rot_a: np.ndarray, rot_b: np.ndarray) -> np.ndarray:
    """Geodesic angle in degrees between rotation matrices ``(..., 3, 3)``."""
    rel = np.swapaxes(np.asarray(rot_a), -1, -2) @ np.asarray(rot_b)
    cos = (np.trace(rel, axis1=-2, axis2=-1) - 1) / 2
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def slerp(rot_a: np.ndarray, rot_b: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Spherical interpolation between rotation matrices ``(N, 3, 3)`` at weights ``(N,)`` in [0, 1] (weights
    outside it extrapolate along the same turn)."""
    rel = matrix_to_axis_angle(np.swapaxes(rot_a, -1, -2) @ rot_b)
    return rot_a @ axis_angle_to_matrix(rel * np.asarray(weight, np.float64)[:, None])


# ----------------------------------------------------------------------------------------------

@dataclass
class CameraTrajectory:
    """Per-frame camera poses and intrinsics.

    ``c2w``: ``(F, 4, 4)`` float64 camera-to-world matrices, OpenCV axes (x right, y down, z forward).
    ``intrinsics``: ``(F, 4)`` float64 normalised ``(fx, fy, cx, cy)`` (fx, cx / width; fy, cy / height).
    ``timestamps``: ``(F,)`` float64, carried through files (RealEstate10K uses microseconds).
    """

    c2w: torch.Tensor
    intrinsics: torch.Tensor
    timestamps: torch.Tensor = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        self.c2w = torch.as_tensor(self.c2w, dtype=torch.float64)
        if self.c2w.ndim != 3 or self.c2w.shape[1:] != (4, 4) or len(self.c2w) == 0:
            raise ValueError(f"c2w must be (F, 4, 4) with F >= 1, got {tuple(self.c2w.shape)}")
        frames = len(self.c2w)
        intr = torch.as_tensor(self.intrinsics, dtype=torch.float64)
        if intr.ndim == 1:
            intr = intr.expand(frames, 4)
        if intr.shape != (frames, 4):
            raise ValueError(f"intrinsics must be (F, 4) = ({frames}, 4), got {tuple(intr.shape)}")
        self.intrinsics = intr.clone()
        if self.timestamps is None:
            self.timestamps = torch.arange(frames, dtype=torch.float64)
        self.timestamps = torch.as_tensor(self.timestamps, dtype=torch.float64).reshape(-1)
        if len(self.timestamps) != frames:
            raise ValueError(f"timestamps must have {frames} entries, got {len(self.timestamps)}")

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def from_w2c(cls, w2c, intrinsics=DEFAULT_INTRINSICS, timestamps=None) -> "CameraTrajectory":
        """Build from world-to-camera matrices ``(F, 4, 4)`` or ``(F, 3, 4)``."""
        w2c = np.asarray(torch.as_tensor(w2c, dtype=torch.float64))
        if w2c.shape[1:] == (3, 4):
            w2c = np.concatenate([w2c, np.tile([[[0, 0, 0, 1.0]]], (len(w2c), 1, 1))], 1)
        return cls(torch.from_numpy(np.linalg.inv(w2c)), torch.as_tensor(intrinsics, dtype=torch.float64),
                   timestamps)

    @classmethod
    def static(cls, num_frames: int, intrinsics=DEFAULT_INTRINSICS) -> "CameraTrajectory":
        """``num_frames`` identity poses."""
        return cls(torch.eye(4, dtype=torch.float64).repeat(num_frames, 1, 1),
                   torch.as_tensor(intrinsics, dtype=torch.float64))

    # -- basic protocol ----------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.c2w)

    def __getitem__(self, index) -> "CameraTrajectory":
        """Frames selected by an int, slice, list or index tensor (always a trajectory)."""
        if isinstance(index, int):
            index = slice(index, index + 1 if index != -1 else None)
        return CameraTrajectory(self.c2w[index], self.intrinsics[index], self.timestamps[index])

    def trim(self, start: int = 0, stop: int | None = None) -> "CameraTrajectory":
        """Frames ``start:stop``."""
        return self[start:stop]

    @property
    def w2c(self) -> torch.Tensor:
        """``(F, 4, 4)`` world-to-camera matrices."""
        return torch.linalg.inv(self.c2w)

    @property
    def positions(self) -> torch.Tensor:
        """``(F, 3)`` camera centres in world coordinates."""
        return self.c2w[:, :3, 3]

    def intrinsics_pixels(self, height: int, width: int) -> torch.Tensor:
        """``(F, 4)`` pixel ``(fx, fy, cx, cy)`` for an image of the given size."""
        return self.intrinsics * torch.tensor([width, height, width, height], dtype=torch.float64)

    # -- transforms --------------------------------------------------------------------------
    def relative_to(self, index: int = 0) -> "CameraTrajectory":
        """Express every pose in the camera frame of frame ``index``: ``c2w_rel[i] = w2c[index] @ c2w[i]``."""
        ref = torch.linalg.inv(self.c2w[index])
        c2w = ref @ self.c2w
        c2w[index] = torch.eye(4, dtype=torch.float64)  # exact, so the reference Plücker moment is exactly 0
        return CameraTrajectory(c2w, self.intrinsics, self.timestamps)

    def resample(self, num_frames: int) -> "CameraTrajectory":
        """Resample to ``num_frames`` evenly spaced in time; endpoints are kept exactly.

        Rotations are slerped, translations, intrinsics and timestamps interpolated linearly.
        """
        if num_frames < 1:
            raise ValueError(f"num_frames must be >= 1, got {num_frames}")
        frames = len(self)
        pos = np.linspace(0, frames - 1, num_frames) if num_frames > 1 else np.zeros(1)
        lo = np.clip(np.floor(pos).astype(int), 0, frames - 1)
        hi = np.minimum(lo + 1, frames - 1)
        w = pos - lo
        c2w = self.c2w.numpy()
        out = np.tile(np.eye(4), (num_frames, 1, 1))
        out[:, :3, :3] = slerp(c2w[lo, :3, :3], c2w[hi, :3, :3], w)
        out[:, :3, 3] = (1 - w)[:, None] * c2w[lo, :3, 3] + w[:, None] * c2w[hi, :3, 3]
        wt = torch.from_numpy(w)

        def lerp(x: torch.Tensor) -> torch.Tensor:
            return (1 - wt).reshape(-1, *[1] * (x.ndim - 1)) * x[lo] + wt.reshape(-1, *[1] * (x.ndim - 1)) * x[hi]

        return CameraTrajectory(torch.from_numpy(out), lerp(self.intrinsics), lerp(self.timestamps))

    @staticmethod
    def concat(trajectories: list["CameraTrajectory"], chain: bool = True) -> "CameraTrajectory":
        """Join trajectories in order.

        ``chain=True`` (camera design): each later piece's motion is re-anchored at the previous piece's
        last pose, and its first frame (which coincides with that pose) is dropped, so the camera moves
        on without a jump or a repeated frame. ``chain=False``: poses are stacked unchanged.
        """
        if not trajectories:
            raise ValueError("concat needs at least one trajectory")
        c2w, intr = [trajectories[0].c2w], [trajectories[0].intrinsics]
        for traj in trajectories[1:]:
            if chain:
                moved = c2w[-1][-1] @ traj.relative_to(0).c2w
                c2w.append(moved[1:])
                intr.append(traj.intrinsics[1:])
            else:
                c2w.append(traj.c2w)
                intr.append(traj.intrinsics)
        return CameraTrajectory(torch.cat(c2w), torch.cat(intr))

    def scale_speed(self, factor: float) -> "CameraTrajectory":
        """Same frame count, each frame-to-frame step scaled by ``factor`` (rotation angle and translation).

        The step ``Δ_i = c2w[i-1]⁻¹ c2w[i]`` is scaled in the moving camera's frame and re-integrated from
        frame 0, so a pan stays a pan and an orbit stays (to first order) an orbit. Intrinsics changes
        (zoom) are scaled in log space the same way.
        """
        c2w = self.c2w.numpy()
        steps = np.linalg.inv(c2w[:-1]) @ c2w[1:]
        scaled = np.tile(np.eye(4), (len(steps), 1, 1))
        scaled[:, :3, :3] = axis_angle_to_matrix(matrix_to_axis_angle(steps[:, :3, :3]) * factor)
        scaled[:, :3, 3] = steps[:, :3, 3] * factor
        out = [c2w[0]]
        for step in scaled:
            out.append(out[-1] @ step)
        focal = self.intrinsics[:, :2].numpy()
        log_steps = np.diff(np.log(focal), axis=0) * factor
        new_focal = focal[0] * np.exp(np.concatenate([np.zeros((1, 2)), np.cumsum(log_steps, 0)]))
        intr = self.intrinsics.clone()
        intr[:, :2] = torch.from_numpy(new_focal)
        return CameraTrajectory(torch.from_numpy(np.stack(out)), intr, self.timestamps)

    def for_resolution(self, src_width: int, src_height: int, dst_width: int, dst_height: int
                       ) -> "CameraTrajectory":
        """Intrinsics after resizing the source frames on the short side and centre-cropping to the target.

        Pixels stay square; for centred principal points this is CameraCtrl's ``rescale_fxy``
        (wider source: ``fx *= H·aspect_src / W``, otherwise ``fy *= (W / aspect_src) / H``).
        """
        scale = max(dst_width / src_width, dst_height / src_height)
        resized_w, resized_h = src_width * scale, src_height * scale
        fx, fy, cx, cy = self.intrinsics.unbind(-1)
        intr = torch.stack([
            fx * resized_w / dst_width,
            fy * resized_h / dst_height,
            (cx * resized_w - (resized_w - dst_width) / 2) / dst_width,
            (cy * resized_h - (resized_h - dst_height) / 2) / dst_height,
        ], -1)
        return CameraTrajectory(self.c2w, intr, self.timestamps)

    def fit_aspect(self, width: int, height: int) -> "CameraTrajectory":
        """Intrinsics for frames of ``width × height`` when the source aspect is unknown: the source is
        taken to have had square pixels (aspect ``fy / fx`` of the first frame) and is fitted by
        :meth:`for_resolution` (resize short side + centre crop). A no-op when pixels are already square
        at the target size (e.g. trajectories estimated from the target video or adapted by
        ``for_resolution``)."""
        fx, fy = float(self.intrinsics[0, 0]), float(self.intrinsics[0, 1])
        if fx <= 0 or fy <= 0:
            raise ValueError(f"focal lengths must be positive, got fx={fx}, fy={fy}")
        return self.for_resolution(fy / fx, 1.0, width, height)

    # -- files -------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | os.PathLike, format: str | None = None,
             intrinsics=DEFAULT_INTRINSICS) -> "CameraTrajectory":
        """Read a RealEstate10K or TUM pose file (format detected from the field count unless given).

        ``intrinsics`` (normalised fx, fy, cx, cy) is used for TUM files, which carry none.
        Raises :class:`PoseFileError` naming the file and line for malformed content.
        """
        path = os.fspath(path)
        try:
            with open(path, encoding="utf-8") as handle:
                lines = handle.read().splitlines()
        except OSError as exc:
            raise PoseFileError(f"{path}: cannot read pose file ({exc.strerror or exc})") from exc
        except UnicodeDecodeError as exc:
            raise PoseFileError(f"{path}: binary content, not a text pose file (RealEstate10K or TUM)") from exc
        if not any(line.strip() for line in lines):
            raise PoseFileError(f"{path}: empty pose file (no lines)")
        rows = _numeric_rows(path, lines, format)
        fmt, rows = rows
        numbers = np.array([r[1] for r in rows], np.float64)
        line_numbers = [r[0] for r in rows]
        if fmt == "realestate10k":
            w2c = np.tile(np.eye(4), (len(numbers), 1, 1))
            w2c[:, :3, :] = numbers[:, 7:].reshape(-1, 3, 4)
            _check_rotations(path, line_numbers, w2c[:, :3, :3])
            return cls.from_w2c(w2c, numbers[:, 1:5], numbers[:, 0])
        quats = numbers[:, 4:8]
        norms = np.linalg.norm(quats, axis=1)
        for line_no, norm in zip(line_numbers, norms):
            if abs(norm - 1) > _ROTATION_TOLERANCE:
                raise PoseFileError(f"{path}:{line_no}: quaternion norm {norm:.6g} is not 1 (not a rotation)")
        c2w = np.tile(np.eye(4), (len(numbers), 1, 1))
        c2w[:, :3, :3] = quaternion_to_matrix(quats)
        c2w[:, :3, 3] = numbers[:, 1:4]
        return cls(torch.from_numpy(c2w), torch.as_tensor(intrinsics, dtype=torch.float64), numbers[:, 0])

    def save(self, path: str | os.PathLike, format: str = "realestate10k") -> None:
        """Write a RealEstate10K (default; world-to-camera, 9 decimals) or TUM (camera-to-world) file."""
        path = os.fspath(path)
        stamps = self.timestamps.numpy()
        integral = bool(np.all(stamps == np.round(stamps)))

        def stamp(value: float) -> str:
            return f"{int(value)}" if integral else f"{value:.6f}"

        if format == "realestate10k":
            w2c = np.linalg.inv(self.c2w.numpy())
            lines = ["# DynaScene camera trajectory (RealEstate10K format: timestamp fx fy cx cy 0 0 "
                     "+ row-major 3x4 world-to-camera, OpenCV axes)"]
            for ts, intr, mat in zip(stamps, self.intrinsics.numpy(), w2c):
                values = list(intr) + [0.0, 0.0] + list(mat[:3].reshape(-1))
                lines.append(" ".join([stamp(ts)] + [f"{v:.9f}" for v in values]))
        elif format == "tum":
            c2w = self.c2w.numpy()
            quats = matrix_to_quaternion(c2w[:, :3, :3])
            lines = ["# timestamp tx ty tz qx qy qz qw (camera-to-world, OpenCV axes)"]
            for ts, mat, quat in zip(stamps, c2w, quats):
                lines.append(" ".join([stamp(ts)] + [f"{v:.9f}" for v in list(mat[:3, 3]) + list(quat)]))
        else:
            raise ValueError(f"unknown pose file format {format!r}; use 'realestate10k' or 'tum'")
        with atomic_open(path) as handle:
            handle.write("\n".join(lines) + "\n")


def _numeric_rows(path: str, lines: list[str], format: str | None) -> tuple[str, list[tuple[int, list[float]]]]:
    """Detect the format and parse data lines into ``(line number, values)``; errors name path:line."""
    if format not in (None, "realestate10k", "tum"):
        raise ValueError(f"unknown pose file format {format!r}; use 'realestate10k' or 'tum'")

    def is_numeric_line(text: str) -> bool:
        try:
            [float(v) for v in text.split()]
            return bool(text.split())
        except ValueError:
            return False

    # RealEstate10K always skips line 1 (a URL); TUM keeps it when it is data.
    first_is_data = bool(lines) and is_numeric_line(lines[0]) and len(lines[0].split()) == _TUM_FIELDS
    start = 0 if (format == "tum" or (format is None and first_is_data)) else 1
    candidates = [(n + 1, text.strip()) for n, text in enumerate(lines) if n >= start]
    candidates = [(n, t) for n, t in candidates if t and not t.startswith("#")]
    if not candidates:
        raise PoseFileError(f"{path}: no pose lines found")
    if format is None:
        count = len(candidates[0][1].split())
        if count == _RE10K_FIELDS:
            format = "realestate10k"
        elif count == _TUM_FIELDS:
            format = "tum"
        else:
            raise PoseFileError(f"{path}:{candidates[0][0]}: expected {_RE10K_FIELDS} fields (RealEstate10K) "
                                f"or {_TUM_FIELDS} (TUM), got {count}")
    expected = _RE10K_FIELDS if format == "realestate10k" else _TUM_FIELDS
    rows = []
    for line_no, text in candidates:
        parts = text.split()
        if len(parts) != expected:
            raise PoseFileError(f"{path}:{line_no}: expected {expected} fields ({format}), got {len(parts)}")
        try:
            values = [float(p) for p in parts]
        except ValueError as exc:
            raise PoseFileError(f"{path}:{line_no}: not a number ({exc})") from None
        if not all(math.isfinite(v) for v in values):
            raise PoseFileError(f"{path}:{line_no}: NaN or infinite value")
        rows.append((line_no, values))
    return format, rows


def _check_rotations(path: str, line_numbers: list[int], rots: np.ndarray) -> None:
    for line_no, rot in zip(line_numbers, rots):
        det = float(np.linalg.det(rot))
        if abs(det) < 1e-6:
            raise PoseFileError(f"{path}:{line_no}: singular pose matrix (det {det:.3g})")
        err = float(np.abs(rot @ rot.T - np.eye(3)).max())
        if err > _ROTATION_TOLERANCE or det < 0:
            raise PoseFileError(f"{path}:{line_no}: 3x3 block is not a rotation (|R R^T - I| = {err:.3g}, "
                                f"det {det:.3g})")
