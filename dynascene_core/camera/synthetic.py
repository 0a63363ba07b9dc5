"""Synthetic scenes with known cameras: a textured room with boxes and billboards, plus a moving "actor".

Used by the camera tests and benchmarks, as the pack's built-in demo data and as the default training
dataset. Rendering is per-pixel ray casting against textured rectangles (numpy, vectorised over pixels)
with OpenCV ``remap`` texture lookups, so any trajectory, resolution and length works. Everything is
deterministic from ``seed``.

World layout (OpenCV axes, the reference camera at the origin looking down +z): a closed room
x ∈ [-5, 5], y ∈ [-3, 1.5] (floor at y = 1.5, below the camera), z ∈ [-6, 9], with boxes and
billboards 2.5–7 units ahead. The trajectory is rendered relative to its first frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .presets import make_preset
from .trajectory import CameraTrajectory, slerp

_TEXELS_PER_UNIT = 40.0


@dataclass
class SyntheticClip:
    """A rendered clip: ``frames (F, H, W, 3)`` uint8, ``masks (F, H, W)`` float32 (1 = actor),
    the ground-truth ``trajectory`` and ``scene_image (H, W, 3)`` uint8 (frame 0 without the actor)."""

    frames: np.ndarray
    masks: np.ndarray
    trajectory: CameraTrajectory
    scene_image: np.ndarray


@dataclass
class _Quad:
    origin: np.ndarray  # (3,) corner
    axis_u: np.ndarray  # (3,) edge vector along texture x
    axis_v: np.ndarray  # (3,) edge vector along texture y
    texture: np.ndarray  # (th, tw, 3) uint8


@dataclass(frozen=True)
class _Detail:
    shapes_per_unit2: float  # random rectangles and discs per square unit of surface (plus 10)
    shape_size: tuple[float, float]  # their side / diameter range in units
    grain: float  # standard deviation of the per-texel noise, in 8-bit levels


DETAILS = {
    "fine": _Detail(6.0, (0.1, 0.8), 6.0),
    "coarse": _Detail(0.4, (0.6, 2.4), 0.0),
}
"""Texture detail of the rooms: ``fine`` (many small shapes and grain: plenty of corners for the camera
estimator at full resolution) or ``coarse`` (a few large shapes several pixels wide even at 64×96 px:
the proof-of-learning scenes, which a model of a few MB can learn to reproduce)."""

PROOF_DETAIL = "coarse"
"""Room textures of the small model's world: its training and test rooms (``training.prepare_proof``) and the
demo room it is shown on (``generate --demo``). The ``fine`` textures are pixel-sized noise at 64×96 px, which
no model of a few MB learns to reproduce in minutes: after GPU training it still drew noise-like frames."""


def _texture(rng: np.random.Generator, width_units: float, height_units: float, detail: _Detail) -> np.ndarray:
    """A procedural texture with corners (random rectangles and discs on a base colour, optional grain),
    anti-aliased."""
    tw = max(8, int(round(width_units * _TEXELS_PER_UNIT)))
    th = max(8, int(round(height_units * _TEXELS_PER_UNIT)))
    base = rng.integers(60, 200, size=3)
    img = np.empty((th, tw, 3), np.uint8)
    img[:] = base
    count = int(width_units * height_units * detail.shapes_per_unit2) + 10
    for _ in range(count):
        colour = tuple(int(c) for c in rng.integers(0, 256, size=3))
        x, y = int(rng.integers(0, tw)), int(rng.integers(0, th))
        size = rng.uniform(*detail.shape_size, size=2) * _TEXELS_PER_UNIT
        if rng.random() < 0.75:
            cv2.rectangle(img, (x, y), (int(x + size[0]), int(y + size[1])), colour, -1)
        else:
            cv2.circle(img, (x, y), int(size[0] / 2), colour, -1)
    img = img.astype(np.float32)
    if detail.grain:
        img = np.clip(img + rng.normal(0, detail.grain, size=(th, tw, 1)), 0, 255)
    return cv2.GaussianBlur(img, (0, 0), 1.2).astype(np.uint8)


def _quad(rng, detail: _Detail, origin, axis_u, axis_v, shade: float = 1.0) -> _Quad:
    axis_u, axis_v = np.asarray(axis_u, np.float64), np.asarray(axis_v, np.float64)
    tex = _texture(rng, np.linalg.norm(axis_u), np.linalg.norm(axis_v), detail)
    return _Quad(np.asarray(origin, np.float64), axis_u, axis_v, np.clip(tex * shade, 0, 255).astype(np.uint8))


def _build_scene(rng: np.random.Generator, detail: _Detail) -> list[_Quad]:
    x0, x1, y0, y1, z0, z1 = -5.0, 5.0, -3.0, 1.5, -6.0, 9.0
    quads = [
        _quad(rng, detail, (x0, y1, z0), (x1 - x0, 0, 0), (0, 0, z1 - z0), 0.9),  # floor
        _quad(rng, detail, (x0, y0, z0), (x1 - x0, 0, 0), (0, 0, z1 - z0), 0.7),  # ceiling
        _quad(rng, detail, (x0, y0, z1), (x1 - x0, 0, 0), (0, y1 - y0, 0), 1.0),  # back wall
        _quad(rng, detail, (x0, y0, z0), (x1 - x0, 0, 0), (0, y1 - y0, 0), 1.0),  # wall behind the camera
        _quad(rng, detail, (x0, y0, z0), (0, 0, z1 - z0), (0, y1 - y0, 0), 0.85),  # left wall
        _quad(rng, detail, (x1, y0, z0), (0, 0, z1 - z0), (0, y1 - y0, 0), 0.85),  # right wall
    ]
    for _ in range(3):  # boxes standing on the floor: front face and one side face
        w, h = rng.uniform(0.6, 1.4), rng.uniform(0.6, 1.8)
        x, z = rng.uniform(-3.5, 2.5), rng.uniform(3.0, 6.5)
        quads.append(_quad(rng, detail, (x, y1 - h, z), (w, 0, 0), (0, h, 0), 1.0))
        side_x = x if x > 0 else x + w
        quads.append(_quad(rng, detail, (side_x, y1 - h, z), (0, 0, w), (0, h, 0), 0.75))
    for _ in range(3):  # hanging billboards
        w, h = rng.uniform(0.8, 1.6), rng.uniform(0.5, 1.0)
        x, y, z = rng.uniform(-3.5, 2.5), rng.uniform(-2.5, -0.5), rng.uniform(2.5, 7.0)
        quads.append(_quad(rng, detail, (x, y, z), (w, 0, 0), (0, h, 0), 1.05))
    return quads


def _render_view(quads: list[_Quad], c2w: np.ndarray, intrinsics: np.ndarray, height: int, width: int
                 ) -> np.ndarray:
    """Ray-cast one view → ``(H, W, 3)`` uint8 (nearest surface wins); ``c2w``: ``(4, 4)``, or ``(H, 4, 4)`` one
    pose per row (a rolling shutter)."""
    fx, fy, cx, cy = intrinsics * np.array([width, height, width, height])
    v, u = np.mgrid[0:height, 0:width].astype(np.float32) + 0.5
    d_cam = np.stack([(u - cx) / fx, (v - cy) / fy, np.ones_like(u)], -1)
    rows = c2w.reshape(-1, 4, 4).astype(np.float32)  # (H or 1, 4, 4)
    d = np.einsum("hwj,hij->hwi", d_cam, rows[:, :3, :3])
    o = rows[:, None, :3, 3]
    depth = np.full((height, width), np.inf, np.float32)
    image = np.zeros((height, width, 3), np.uint8)
    for quad in quads:
        normal = np.cross(quad.axis_u, quad.axis_v).astype(np.float32)
        denom = d @ normal
        with np.errstate(divide="ignore", invalid="ignore"):
            t = ((quad.origin.astype(np.float32) - o) @ normal) / denom
        hit = o + d * t[..., None] - quad.origin.astype(np.float32)
        su = hit @ (quad.axis_u / (quad.axis_u @ quad.axis_u)).astype(np.float32)
        sv = hit @ (quad.axis_v / (quad.axis_v @ quad.axis_v)).astype(np.float32)
        visible = (t > 1e-3) & (t < depth) & (su >= 0) & (su <= 1) & (sv >= 0) & (sv <= 1)
        if not visible.any():
            continue
        th, tw = quad.texture.shape[:2]
        map_x = np.where(visible, su * (tw - 1), -1).astype(np.float32)
        map_y = np.where(visible, sv * (th - 1), -1).astype(np.float32)
        colour = cv2.remap(quad.texture, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        image[visible] = colour[visible]
        depth[visible] = t[visible]
    return image


def _row_poses(c2w: np.ndarray, frame: int, cy: float, height: int, readout: float) -> np.ndarray:
    """``(H, 4, 4)`` camera-to-world poses of the rows of ``frame`` for a sensor reading rows top to bottom in
    ``readout`` frame intervals (row ``v`` at time frame + readout·(v + 0.5 − cy)/H): rotation and centre
    interpolated along ``c2w (F, 4, 4)`` at constant rate between frames, extrapolated past the ends."""
    times = frame + readout * (np.arange(height) + 0.5 - cy) / height
    base = np.clip(np.floor(times).astype(int), 0, max(0, len(c2w) - 2))
    after = np.minimum(base + 1, len(c2w) - 1)
    weight = (times - base)[:, None]
    poses = np.tile(np.eye(4), (height, 1, 1))
    poses[:, :3, :3] = slerp(c2w[base, :3, :3], c2w[after, :3, :3], weight[:, 0])  # weights past [0, 1] extrapolate
    poses[:, :3, 3] = (1 - weight) * c2w[base, :3, 3] + weight * c2w[after, :3, 3]
    return poses


def _actor_layers(rng: np.random.Generator, trajectory: CameraTrajectory, height: int, width: int,
                  detail: _Detail) -> tuple[np.ndarray, np.ndarray]:
    """Actor colours ``(F, H, W, 3)`` uint8 and mask ``(F, H, W)`` float32.

    A textured capsule body with a head (~20–25% of the frame) that slides horizontally across a
    quarter of the width, opposite to the background's apparent motion, bobbing slightly.
    """
    frames = len(trajectory)
    rel = trajectory.relative_to(0)
    # apparent motion of a background point 4 units ahead between the first and last frame
    w2c_last = np.linalg.inv(rel.c2w[-1].numpy())
    p = w2c_last[:3, :3] @ np.array([0.0, 0.0, 4.0]) + w2c_last[:3, 3]
    fx, _, cx, _ = rel.intrinsics[-1].numpy()
    flow_x = (fx * p[0] / max(p[2], 1e-3) + cx - 0.5) if p[2] > 0 else 0.0
    direction = -np.sign(flow_x) if abs(flow_x) > 1e-3 else 1.0
    progress = np.linspace(0, 1, frames) if frames > 1 else np.zeros(1)
    centre_x = (0.5 - direction * 0.125 + direction * 0.25 * progress) * width
    bob = 0.02 * height * np.sin(progress * 2 * np.pi * rng.uniform(1.0, 2.0))

    body_w, body_h, head_r = 0.34 * width, 0.68 * height, 0.11 * height
    tex = _texture(rng, 4.0 * width / max(width, height), 4.0 * height / max(width, height), detail)
    tex = cv2.resize(tex, (int(body_w * 1.3) + 2, height + 2), interpolation=cv2.INTER_LINEAR)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    colours = np.zeros((frames, height, width, 3), np.uint8)
    masks = np.zeros((frames, height, width), np.float32)
    for i in range(frames):
        top = height - body_h + bob[i]
        dx = xx - centre_x[i]
        radius = body_w / 2
        body_y = np.clip(yy, top + radius, height + radius)  # capsule: rounded top, runs off the bottom
        body = (dx ** 2 + (yy - body_y) ** 2 <= radius ** 2) & (yy >= top)
        head = dx ** 2 + (yy - (top - head_r * 0.9)) ** 2 <= head_r ** 2
        mask = body | head
        tx = np.clip(dx + tex.shape[1] / 2, 0, tex.shape[1] - 1).astype(np.float32)
        ty = np.clip(yy - top + head_r * 2, 0, tex.shape[0] - 1).astype(np.float32)
        colours[i] = cv2.remap(tex, tx, ty, cv2.INTER_LINEAR)
        masks[i] = mask
    return colours, masks


def render_synthetic_clip(trajectory: CameraTrajectory, height: int, width: int, seed: int = 0,
                          actor: bool = True, detail: str = "fine", readout: float = 0.0) -> SyntheticClip:
    """Render the seeded scene along ``trajectory`` (relative to its first frame) at ``height × width``.

    ``actor=False`` gives an empty room (masks all 0); ``detail`` is a key of :data:`DETAILS`. ``readout`` > 0
    renders a rolling shutter reading rows top to bottom in that many frame intervals (the trajectory's pose is
    the principal row's).
    """
    if height < 8 or width < 8:
        raise ValueError(f"synthetic clips need at least 8x8 pixels, got {width}x{height}")
    if detail not in DETAILS:
        raise ValueError(f"unknown texture detail {detail!r}; expected one of {sorted(DETAILS)}")
    rng = np.random.default_rng(seed)
    quads = _build_scene(rng, DETAILS[detail])
    rel = trajectory.relative_to(0)
    c2w, intr = rel.c2w.numpy(), rel.intrinsics.numpy()
    poses = [_row_poses(c2w, i, intr[i, 3] * height, height, readout) if readout else c2w[i] for i in range(len(rel))]
    frames = np.stack([_render_view(quads, poses[i], intr[i], height, width) for i in range(len(rel))])
    scene_image = frames[0].copy()
    if actor:
        colours, masks = _actor_layers(rng, rel, height, width, DETAILS[detail])
        frames = np.where(masks[..., None] > 0, colours, frames)
    else:
        masks = np.zeros(frames.shape[:3], np.float32)
    return SyntheticClip(frames, masks, trajectory, scene_image)


def demo_clip(num_frames: int = 24, height: int = 288, width: int = 512, preset: str = "orbit_left",
              seed: int = 0, actor: bool = True, detail: str = "fine") -> SyntheticClip:
    """A ready-made demo: the seeded scene along a preset (``"dolly_in+pan_right"`` style combos work)."""
    return render_synthetic_clip(make_preset(preset, num_frames), height, width, seed=seed, actor=actor,
                                 detail=detail)
