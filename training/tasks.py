"""The paper's training tasks (§3.2): each function builds one training example from one clip.

An example is a dict of tensors at training resolution ``H × W``:

- ``pixels (F, 3, H, W)``: the target frames (ground truth) in [0, 1]; ``F = 1`` in stage I;
- ``alpha (F, 1, H, W)``: the human alpha that defines the condition — the foreground the model sees is
  ``pixels · alpha`` and the generation mask is ``1 − alpha`` (:mod:`dynascene_core.conditioning`);
  all zeros means "foreground 0, generation mask 1" (the scene tasks);
- ``scene (3, H, W)``: the scene image for the ReferenceNet and CLIP;
- ``c2w (F, 4, 4)``, ``intrinsics (F, 4)``: the target frames' cameras relative to the scene image's
  camera (DESIGN.md §3), intrinsics normalised for ``H × W``; the step turns them into Plücker rays;
- ``scene_frame``: index in the clip of the scene image's camera; ``frame_indices (F,)``;
  ``task``: index into :data:`TASK_NAMES`; ``clip_id``.

Stage I tasks sample equally among background outpainting, scene image variation and image background
generation; stage II among scene video variation, video background generation and adaptive background
illumination. Scene tasks (outpainting, variation) use scene-only clips (``has_person: false``, the
paper uses RealEstate10K for them); the others use clips with a person.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

import numpy as np
import torch

from dynascene_core.camera import CameraTrajectory, relative_cameras
from dynascene_core.data import ClipRecord
from dynascene_core.matting import human_removed_mask


class ClipSource(Protocol):
    """One clip, read at training resolution (implemented by ``training.data``)."""

    record: ClipRecord
    trajectory: CameraTrajectory
    """All frames' cameras, intrinsics already adjusted for the resize + centre crop."""
    scene_frames: list[int]
    """Frames with a stored human-free scene image."""

    def read(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """``pixels (n, 3, H, W)``, ``alpha (n, 1, H, W)`` float in [0, 1]."""

    def scene_image(self, frame: int) -> torch.Tensor:
        """The stored scene image of ``frame`` as ``(3, H, W)``."""


@dataclass
class TaskSettings:
    """Task randomness ranges (config section ``tasks``) and the stage II clip length."""

    num_frames: int = 24
    frame_stride: tuple[int, int] = (1, 1)
    outpaint_fraction: tuple[float, float] = (0.2, 0.5)
    removal_dilation: int = 10
    brightness: tuple[float, float] = (0.7, 1.3)
    contrast: tuple[float, float] = (0.7, 1.3)
    gamma: tuple[float, float] = (0.7, 1.4)
    temperature: tuple[float, float] = (-0.1, 0.1)
    enabled: tuple[str, ...] | None = None
    """Task names to train (None: every task of the stage)."""


# -- helpers ------------------------------------------------------------------------------------

def _other_frame(num_frames: int, avoid: int, rng: np.random.Generator) -> int:
    """A random frame different from ``avoid`` (``avoid`` itself for one-frame clips)."""
    if num_frames == 1:
        return avoid
    j = int(rng.integers(0, num_frames - 1))
    return j + 1 if j >= avoid else j


def video_window(clip_frames: int, num_frames: int, stride_range: tuple[int, int],
                 rng: np.random.Generator) -> list[int]:
    """``num_frames`` frame indices with a random stride in ``stride_range`` (capped so the window fits)
    at a random start."""
    if clip_frames < num_frames:
        raise ValueError(f"clip has {clip_frames} frames, {num_frames} needed")
    longest = (clip_frames - 1) // (num_frames - 1) if num_frames > 1 else stride_range[1]
    high = max(1, min(stride_range[1], longest))
    stride = int(rng.integers(min(stride_range[0], high), high + 1))
    start = int(rng.integers(0, clip_frames - (num_frames - 1) * stride))
    return [start + k * stride for k in range(num_frames)]


def outpainting_scene(frame: torch.Tensor, fraction: float, side: int) -> torch.Tensor:
    """``frame (3, H, W)`` with a strip covering ``fraction`` of it blanked (0) along ``side``
    (0 left, 1 right, 2 top, 3 bottom): the part the model must outpaint."""
    out = frame.clone()
    _, height, width = frame.shape
    if side in (0, 1):
        cut = max(1, round(width * fraction))
        if side == 0:
            out[:, :, :cut] = 0
        else:
            out[:, :, width - cut:] = 0
    else:
        cut = max(1, round(height * fraction))
        if side == 2:
            out[:, :cut] = 0
        else:
            out[:, height - cut:] = 0
    return out


def remove_human(frame: torch.Tensor, alpha: torch.Tensor, dilation: int) -> torch.Tensor:
    """Scene image from a frame with a person: ``frame (3, H, W)`` with the human (``alpha (1, H, W)``)
    grown by ``dilation`` px set to 0 (paper: mask the human, dilate to hide its halo)."""
    removed = human_removed_mask(alpha[None], dilation)[0]
    return frame * (1 - removed)


def adjust_illumination(image: torch.Tensor, rng: np.random.Generator, settings: TaskSettings) -> torch.Tensor:
    """Random brightness, contrast (around the mean), gamma and colour temperature on ``(3, H, W)``."""
    brightness = rng.uniform(*settings.brightness)
    contrast = rng.uniform(*settings.contrast)
    gamma = rng.uniform(*settings.gamma)
    temperature = rng.uniform(*settings.temperature)
    x = (image * brightness).clamp(0, 1)
    x = ((x - x.mean()) * contrast + x.mean()).clamp(0, 1)
    x = x.pow(gamma)
    gains = torch.tensor([1 + temperature, 1.0, 1 - temperature], dtype=x.dtype).view(3, 1, 1)
    return (x * gains).clamp(0, 1)


def _example(task: str, clip: ClipSource, pixels: torch.Tensor, alpha: torch.Tensor, scene: torch.Tensor,
             scene_frame: int, frames: list[int]) -> dict:
    height, width = pixels.shape[-2:]
    cameras = relative_cameras(clip.trajectory, scene_frame, height, width)[frames]
    return {
        "pixels": pixels.float().contiguous(),
        "alpha": alpha.float().contiguous(),
        "scene": scene.float().contiguous(),
        "c2w": cameras.c2w.float(),
        "intrinsics": cameras.intrinsics.float(),
        "scene_frame": torch.tensor(scene_frame),
        "frame_indices": torch.tensor(frames),
        "task": torch.tensor(TASK_NAMES.index(task)),
        "clip_id": clip.record.clip_id,
    }


def _scene_for_person_clip(clip: ClipSource, rng: np.random.Generator, settings: TaskSettings
                           ) -> tuple[torch.Tensor, int]:
    """A stored human-free scene image if the clip has one, else a random frame with the human removed."""
    if clip.scene_frames:
        frame = clip.scene_frames[int(rng.integers(len(clip.scene_frames)))]
        return clip.scene_image(frame), frame
    frame = int(rng.integers(clip.record.num_frames))
    pixels, alpha = clip.read([frame])
    return remove_human(pixels[0], alpha[0], settings.removal_dilation), frame


# -- stage I ------------------------------------------------------------------------------------

def background_outpainting(clip: ClipSource, rng: np.random.Generator, settings: TaskSettings) -> dict:
    """Target: a random frame. Scene: the same frame with 20–50% blanked along one side.
    Foreground 0, generation mask 1 (the model restores the whole frame, inventing the blank)."""
    i = int(rng.integers(clip.record.num_frames))
    pixels, alpha = clip.read([i])
    scene = outpainting_scene(pixels[0], rng.uniform(*settings.outpaint_fraction), int(rng.integers(4)))
    return _example("background_outpainting", clip, pixels, torch.zeros_like(alpha), scene, i, [i])


def scene_image_variation(clip: ClipSource, rng: np.random.Generator, settings: TaskSettings) -> dict:
    """Target: a random frame. Scene: another frame of the clip (new viewpoint). Foreground 0, mask 1."""
    n = clip.record.num_frames
    i = int(rng.integers(n))
    j = _other_frame(n, i, rng)
    pixels, alpha = clip.read([i, j])
    return _example("scene_image_variation", clip, pixels[:1], torch.zeros_like(alpha[:1]), pixels[1], j, [i])


def image_background_generation(clip: ClipSource, rng: np.random.Generator, settings: TaskSettings) -> dict:
    """Target: a random frame with its person as the foreground. Scene: a different frame of the same
    clip with the person removed by a dilated mask (paper §3.2, task 3)."""
    n = clip.record.num_frames
    i = int(rng.integers(n))
    j = _other_frame(n, i, rng)
    pixels, alpha = clip.read([i, j])
    scene = remove_human(pixels[1], alpha[1], settings.removal_dilation)
    return _example("image_background_generation", clip, pixels[:1], alpha[:1], scene, j, [i])


# -- stage II -----------------------------------------------------------------------------------

def scene_video_variation(clip: ClipSource, rng: np.random.Generator, settings: TaskSettings) -> dict:
    """Target: consecutive frames of a scene-only clip. Scene: a stored scene image or a random frame
    of the clip. Foreground 0, mask 1; cameras relative to the scene frame."""
    frames = video_window(clip.record.num_frames, settings.num_frames, settings.frame_stride, rng)
    if clip.scene_frames:
        scene_frame = clip.scene_frames[int(rng.integers(len(clip.scene_frames)))]
        scene = clip.scene_image(scene_frame)
        pixels, alpha = clip.read(frames)
    else:
        scene_frame = int(rng.integers(clip.record.num_frames))
        pixels, alpha = clip.read(frames + [scene_frame])
        scene, pixels, alpha = pixels[-1], pixels[:-1], alpha[:-1]
    return _example("scene_video_variation", clip, pixels, torch.zeros_like(alpha), scene, scene_frame, frames)


def video_background_generation(clip: ClipSource, rng: np.random.Generator, settings: TaskSettings) -> dict:
    """Target: consecutive frames with the person as foreground. Scene: a stored scene image, or a
    random frame with the person removed (dilated mask). Cameras relative to the scene frame."""
    frames = video_window(clip.record.num_frames, settings.num_frames, settings.frame_stride, rng)
    pixels, alpha = clip.read(frames)
    scene, scene_frame = _scene_for_person_clip(clip, rng, settings)
    return _example("video_background_generation", clip, pixels, alpha, scene, scene_frame, frames)


def adaptive_background_illumination(clip: ClipSource, rng: np.random.Generator, settings: TaskSettings) -> dict:
    """Video background generation with random lighting on the scene image only (ground truth and
    foreground unchanged), so the model adapts the background's light to the foreground's."""
    example = video_background_generation(clip, rng, settings)
    example["scene"] = adjust_illumination(example["scene"], rng, settings)
    example["task"] = torch.tensor(TASK_NAMES.index("adaptive_background_illumination"))
    return example


Task = Callable[[ClipSource, np.random.Generator, TaskSettings], dict]

TASKS: dict[str, Task] = {
    "background_outpainting": background_outpainting,
    "scene_image_variation": scene_image_variation,
    "image_background_generation": image_background_generation,
    "scene_video_variation": scene_video_variation,
    "video_background_generation": video_background_generation,
    "adaptive_background_illumination": adaptive_background_illumination,
}
TASK_NAMES = tuple(TASKS)
STAGE_TASKS = {
    1: ("background_outpainting", "scene_image_variation", "image_background_generation"),
    2: ("scene_video_variation", "video_background_generation", "adaptive_background_illumination"),
}
SCENE_TASKS = frozenset({"background_outpainting", "scene_image_variation", "scene_video_variation"})
"""Tasks trained on scene-only clips; the others need a clip with a person."""


def task_accepts(task: str, record: ClipRecord, settings: TaskSettings) -> bool:
    """Whether ``task`` can use the clip: scene tasks take scene-only clips, the others clips with a
    person; video tasks need at least ``num_frames`` frames, image tasks two. Disabled tasks take none."""
    if settings.enabled is not None and task not in settings.enabled:
        return False
    if (task in SCENE_TASKS) == record.has_person:
        return False
    video = task in STAGE_TASKS[2]
    return record.num_frames >= (settings.num_frames if video else 2)
