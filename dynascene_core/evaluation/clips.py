"""Evaluation inputs: clips in memory (:class:`EvalClip`) and folders of clips matched by name.

A clip folder holds videos (``NAME.mp4`` …, read with :mod:`dynascene_core.video`) and/or frame folders
(``NAME/`` with images). Generated and ground-truth clips are matched by ``NAME``; optional matte videos
(``--masks``, white = person, same names) and pose files (``--cameras``, ``NAME.txt``, RealEstate10K or TUM)
join by the same name. :func:`match_clip_folders` checks names, frame counts, sizes and pose-file lengths
of every clip before any frame is decoded, so bad input fails in seconds with a one-line error.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch


class EvaluationInputError(ValueError):
    """Evaluation input does not fit together; the one-line message names the clip and the mismatch."""


@dataclass
class EvalClip:
    """One clip to evaluate.

    ``generated`` / ``ground_truth``: ``(F, H, W, 3)`` uint8 (or ``(F, 3, H, W)`` float tensors in [0, 1],
    converted). ``alpha``: optional human matte ``(F, H, W)`` (or ``(F, 1, H, W)``) in [0, 1], 1 = person
    (uint8 mattes are divided by 255). ``camera``: the trajectory that conditioned the generation, one pose
    per frame (needed for the camera-following error).
    """

    name: str
    generated: np.ndarray
    ground_truth: np.ndarray
    alpha: np.ndarray | None = None
    camera: object | None = None  # CameraTrajectory (imported lazily: the camera package loads OpenCV)

    def __post_init__(self) -> None:
        from ..video import to_uint8

        self.generated = to_uint8(self.generated)
        self.ground_truth = to_uint8(self.ground_truth)
        gen, gt = self.generated.shape, self.ground_truth.shape
        if len(gen) != 4 or gen[-1] != 3:
            raise EvaluationInputError(f"clip '{self.name}': generated frames must be (F, H, W, 3), got {gen}")
        if gen[0] != gt[0]:
            raise EvaluationInputError(f"clip '{self.name}': generated has {gen[0]} frames, ground truth {gt[0]}")
        if gen != gt:
            raise EvaluationInputError(f"clip '{self.name}': generated frames are {gen[2]}x{gen[1]}, "
                                       f"ground truth {gt[2]}x{gt[1]}")
        if self.alpha is not None:
            alpha = self.alpha.detach().cpu().numpy() if isinstance(self.alpha, torch.Tensor) else np.asarray(self.alpha)
            if alpha.ndim == 4 and alpha.shape[1] == 1:
                alpha = alpha[:, 0]
            if alpha.shape != gen[:3]:
                raise EvaluationInputError(f"clip '{self.name}': mask is {alpha.shape} (F, H, W), frames "
                                           f"{gen[:3]}")
            self.alpha = alpha.astype(np.float32) / 255.0 if alpha.dtype == np.uint8 else alpha.astype(np.float32)
            covered = np.flatnonzero((self.alpha >= 1).all(axis=(1, 2)))
            if len(covered):
                raise EvaluationInputError(f"clip '{self.name}': the mask covers the whole frame (no background "
                                           f"to evaluate) in frames {covered[:10].tolist()}")
        if self.camera is not None and len(self.camera) != gen[0]:
            raise EvaluationInputError(f"clip '{self.name}': camera trajectory has {len(self.camera)} poses, "
                                       f"the clip {gen[0]} frames")

    def __len__(self) -> int:
        return len(self.generated)


@dataclass(frozen=True)
class ClipSource:
    """Where one clip's parts are on disk, and its checked size."""

    name: str
    generated: str
    ground_truth: str
    mask: str | None
    camera: str | None
    frames: int
    height: int
    width: int


def list_clips(folder: str | os.PathLike, what: str) -> dict[str, str]:
    """``{name: path}`` of the videos and frame folders in ``folder`` (``what`` names it in errors)."""
    from ..video import IMAGE_SUFFIXES, VIDEO_SUFFIXES

    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise EvaluationInputError(f"{what} folder {folder} does not exist")
    clips: dict[str, str] = {}
    for entry in sorted(os.listdir(folder)):
        path = os.path.join(folder, entry)
        if os.path.isdir(path):
            if not any(n.lower().endswith(IMAGE_SUFFIXES) for n in os.listdir(path)):
                continue
            name = entry
        elif entry.lower().endswith(VIDEO_SUFFIXES):
            name = os.path.splitext(entry)[0]
        else:
            continue
        if name in clips:
            raise EvaluationInputError(f"{what} folder {folder}: two clips named '{name}' "
                                       f"({os.path.basename(clips[name])}, {entry})")
        clips[name] = path
    if not clips:
        raise EvaluationInputError(f"{what} folder {folder} holds no videos or frame folders")
    return clips


def _names(names) -> str:
    names = sorted(names)
    return ", ".join(names[:8]) + (f" … ({len(names)} in all)" if len(names) > 8 else "")


def match_clip_folders(generated_dir: str | os.PathLike, ground_truth_dir: str | os.PathLike,
                       masks_dir: str | os.PathLike | None = None,
                       cameras_dir: str | os.PathLike | None = None) -> list[ClipSource]:
    """Match clips by name and check frame counts, sizes, masks and pose files (no frame is decoded)."""
    from ..video import probe_video

    generated = list_clips(generated_dir, "generated")
    truth = list_clips(ground_truth_dir, "ground-truth")
    if set(generated) != set(truth):
        only_gen, only_gt = set(generated) - set(truth), set(truth) - set(generated)
        parts = ([f"only in {os.fspath(generated_dir)}: {_names(only_gen)}"] if only_gen else []) + \
                ([f"only in {os.fspath(ground_truth_dir)}: {_names(only_gt)}"] if only_gt else [])
        raise EvaluationInputError("generated and ground-truth clips do not match by name (" + "; ".join(parts) + ")")
    masks = list_clips(masks_dir, "masks") if masks_dir is not None else None
    if masks is not None and set(generated) - set(masks):
        raise EvaluationInputError(f"no mask in {os.fspath(masks_dir)} for clips {_names(set(generated) - set(masks))}")
    sources = []
    for name in sorted(generated):
        gen_shape, gt_shape = probe_video(generated[name]), probe_video(truth[name])
        if gen_shape[0] != gt_shape[0]:
            raise EvaluationInputError(f"clip '{name}': generated has {gen_shape[0]} frames "
                                       f"({generated[name]}), ground truth {gt_shape[0]} ({truth[name]})")
        if gen_shape[1:] != gt_shape[1:]:
            raise EvaluationInputError(f"clip '{name}': generated frames are {gen_shape[2]}x{gen_shape[1]} "
                                       f"({generated[name]}), ground truth {gt_shape[2]}x{gt_shape[1]}")
        mask = masks[name] if masks is not None else None
        if mask is not None and probe_video(mask) != gen_shape:
            frames, height, width = probe_video(mask)
            raise EvaluationInputError(f"clip '{name}': mask {mask} has {frames} frames of {width}x{height}, "
                                       f"the clip {gen_shape[0]} of {gen_shape[2]}x{gen_shape[1]}")
        camera = None
        if cameras_dir is not None:
            camera = os.path.join(os.fspath(cameras_dir), f"{name}.txt")
            if not os.path.isfile(camera):
                raise EvaluationInputError(f"clip '{name}': no pose file {camera}")
            poses = len(_load_camera(camera))
            if poses != gen_shape[0]:
                raise EvaluationInputError(f"clip '{name}': pose file {camera} has {poses} poses, "
                                           f"the clip {gen_shape[0]} frames")
        sources.append(ClipSource(name, generated[name], truth[name], mask, camera, *gen_shape))
    return sources


def _load_camera(path: str):
    from ..camera import CameraTrajectory, PoseFileError

    try:
        return CameraTrajectory.load(path)
    except PoseFileError as exc:
        raise EvaluationInputError(str(exc)) from exc


def load_clip(source: ClipSource) -> EvalClip:
    """Decode one matched clip (frames, matte, trajectory)."""
    from ..video import matte_from_frames, read_video

    alpha = matte_from_frames(read_video(source.mask).frames) if source.mask else None
    camera = _load_camera(source.camera) if source.camera else None
    return EvalClip(source.name, read_video(source.generated).frames, read_video(source.ground_truth).frames,
                    alpha, camera)
