"""Designed camera motions ("presets"), combinable with ``+`` (e.g. ``"dolly_in+pan_right"``).

Every preset starts at the identity pose (frame 0 = reference camera) with OpenCV axes: x right,
y down, z forward. Signs, as seen by the camera operator:

========================  ==========================================================================
``static``                no motion
``pan_left/right``        camera yaws (turns about its vertical axis) to its left / right
``tilt_up/down``          camera pitches so it looks up / down
``pan_up/down``           camera moves (translates) straight up / down without turning ("pedestal")
``truck_left/right``      camera moves sideways to its left / right without turning
``dolly_in/out``          camera moves forward / backward along its viewing direction
``zoom_in/out``           focal length grows / shrinks (intrinsics only, camera does not move)
``roll_clockwise``        camera rotates about its viewing axis clockwise as seen from behind it
                          (the picture content turns anticlockwise); ``roll_anticlockwise`` opposite
``orbit_left/right``      camera travels to its left / right on a circle around a point
                          ``ORBIT_RADIUS`` ahead, turning to keep that point centred
========================  ==========================================================================

Magnitudes at ``speed=1`` per frame: rotation ``ROTATION_DEG_PER_FRAME``, translation
``TRANSLATION_PER_FRAME`` scene units, orbit ``ORBIT_DEG_PER_FRAME``, zoom ``ZOOM_PER_FRAME``
(focal ratio). The easing reshapes timing but keeps the total motion, ``rate × (frames − 1) × speed``.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .trajectory import DEFAULT_INTRINSICS, CameraTrajectory, axis_angle_to_matrix

ROTATION_DEG_PER_FRAME = 0.5
TRANSLATION_PER_FRAME = 0.025
ORBIT_DEG_PER_FRAME = 1.0
ORBIT_RADIUS = 2.0
ZOOM_PER_FRAME = 1.01

# name -> (kind, signed direction); rotations are about camera axes (x right, y down, z forward)
_PRESETS: dict[str, tuple[str, tuple[float, float, float] | float]] = {
    "static": ("static", 0.0),
    "pan_left": ("rotate", (0.0, -1.0, 0.0)),
    "pan_right": ("rotate", (0.0, 1.0, 0.0)),
    "tilt_up": ("rotate", (1.0, 0.0, 0.0)),
    "tilt_down": ("rotate", (-1.0, 0.0, 0.0)),
    "roll_clockwise": ("rotate", (0.0, 0.0, 1.0)),
    "roll_anticlockwise": ("rotate", (0.0, 0.0, -1.0)),
    "pan_up": ("translate", (0.0, -1.0, 0.0)),
    "pan_down": ("translate", (0.0, 1.0, 0.0)),
    "truck_left": ("translate", (-1.0, 0.0, 0.0)),
    "truck_right": ("translate", (1.0, 0.0, 0.0)),
    "dolly_in": ("translate", (0.0, 0.0, 1.0)),
    "dolly_out": ("translate", (0.0, 0.0, -1.0)),
    "zoom_in": ("zoom", 1.0),
    "zoom_out": ("zoom", -1.0),
    "orbit_left": ("orbit", -1.0),
    "orbit_right": ("orbit", 1.0),
}
PRESET_NAMES: tuple[str, ...] = tuple(_PRESETS)
EASINGS = ("linear", "ease_in", "ease_out", "ease_in_out")
"""Canonical easing names (underscores, like the preset names); every CLI and node offers exactly these."""


def canonical_easing(name: str) -> str:
    """An easing name as typed (``ease-in``, ``Ease In``, ``ease_in``) → its canonical spelling in
    :data:`EASINGS`; unknown names come back unchanged so that the caller's choice check names them."""
    canonical = name.strip().lower().replace("-", "_").replace(" ", "_")
    return canonical if canonical in EASINGS else name


def ease(progress: np.ndarray, easing: str) -> np.ndarray:
    """Map linear progress in [0, 1] through an easing curve (0 → 0, 1 → 1)."""
    t = np.asarray(progress, np.float64)
    name = canonical_easing(easing)
    if name == "linear":
        return t
    if name == "ease_in":
        return t * t
    if name == "ease_out":
        return 1 - (1 - t) ** 2
    if name == "ease_in_out":
        return t * t * (3 - 2 * t)
    raise ValueError(f"unknown easing {easing!r}; choose from {', '.join(EASINGS)}")


def parse_combo(name_or_combo: str | list[str] | tuple[str, ...]) -> list[str]:
    """``"dolly_in+pan_right"`` or a list → validated preset names (spaces, case and ``-`` tolerated)."""
    parts = name_or_combo.split("+") if isinstance(name_or_combo, str) else list(name_or_combo)
    names = [p.strip().lower().replace("-", "_").replace(" ", "_") for p in parts]
    unknown = [n for n in names if n not in _PRESETS]
    if unknown or not names:
        raise ValueError(f"unknown camera preset {unknown or name_or_combo!r}; choose from "
                         f"{', '.join(PRESET_NAMES)} (combine with '+')")
    return names


def _single(name: str, amount: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """c2w ``(F, 4, 4)`` and focal factor ``(F,)`` of one preset at per-frame motion ``amount`` (in frames)."""
    kind, direction = _PRESETS[name]
    frames = len(amount)
    c2w = np.tile(np.eye(4), (frames, 1, 1))
    focal = np.ones(frames)
    if kind == "rotate":
        angle = np.radians(ROTATION_DEG_PER_FRAME) * amount
        c2w[:, :3, :3] = axis_angle_to_matrix(np.outer(angle, direction))
    elif kind == "translate":
        c2w[:, :3, 3] = np.outer(TRANSLATION_PER_FRAME * amount, direction)
    elif kind == "zoom":
        focal = ZOOM_PER_FRAME ** (direction * amount)
    elif kind == "orbit":
        phi = np.radians(ORBIT_DEG_PER_FRAME) * amount * direction
        # moving right (phi > 0) the camera yaws left to keep the target (0, 0, R) centred
        c2w[:, :3, :3] = axis_angle_to_matrix(np.outer(-phi, (0.0, 1.0, 0.0)))
        c2w[:, 0, 3] = ORBIT_RADIUS * np.sin(phi)
        c2w[:, 2, 3] = ORBIT_RADIUS * (1 - np.cos(phi))
    return c2w, focal


def make_preset(name_or_combo: str | list[str], num_frames: int, speed: float = 1.0, easing: str = "linear",
                intrinsics=DEFAULT_INTRINSICS) -> CameraTrajectory:
    """A designed trajectory of ``num_frames`` frames starting at the identity pose.

    Combined presets (``"dolly_in+pan_right"``) compose their poses in the order given
    (``c2w = c2w_dolly @ c2w_pan``) and multiply their zoom factors.
    """
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    names = parse_combo(name_or_combo)
    progress = np.linspace(0.0, 1.0, num_frames) if num_frames > 1 else np.zeros(1)
    amount = ease(progress, easing) * (num_frames - 1) * float(speed)
    c2w = np.tile(np.eye(4), (num_frames, 1, 1))
    focal = np.ones(num_frames)
    for name in names:
        pose, zoom = _single(name, amount)
        c2w = c2w @ pose
        focal = focal * zoom
    intr = np.tile(np.asarray(intrinsics, np.float64), (num_frames, 1))
    intr[:, :2] *= focal[:, None]
    return CameraTrajectory(torch.from_numpy(c2w), torch.from_numpy(intr))


def combine(names: list[str], num_frames: int, speed: float = 1.0, easing: str = "linear") -> CameraTrajectory:
    """Same as ``make_preset("+".join(names), ...)``."""
    return make_preset(list(names), num_frames, speed, easing)


def random_smooth_trajectory(num_frames: int, seed: int = 0, max_rotation_deg: float = 8.0,
                             max_translation: float = 0.6) -> CameraTrajectory:
    """A random smooth hand-held-like motion (cubic-eased rotation and translation) for tests/benchmarks."""
    rng = np.random.default_rng(seed)
    axis_angle = rng.normal(size=3)
    axis_angle *= math.radians(rng.uniform(0.3, 1.0) * max_rotation_deg) / np.linalg.norm(axis_angle)
    shift = rng.normal(size=3)
    shift *= rng.uniform(0.3, 1.0) * max_translation / np.linalg.norm(shift)
    wobble = rng.normal(size=(2, 3)) * 0.15
    t = np.linspace(0, 1, num_frames)
    s = ease(t, "ease_in_out")
    c2w = np.tile(np.eye(4), (num_frames, 1, 1))
    c2w[:, :3, :3] = axis_angle_to_matrix(np.outer(s, axis_angle) + np.outer(np.sin(np.pi * t), wobble[0])
                                          * np.linalg.norm(axis_angle))
    c2w[:, :3, 3] = np.outer(s, shift) + np.outer(np.sin(np.pi * t), wobble[1]) * max_translation
    return CameraTrajectory(torch.from_numpy(c2w), torch.as_tensor(DEFAULT_INTRINSICS, dtype=torch.float64))
