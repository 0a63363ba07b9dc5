"""Per-clip stages of data preparation: matting (RVM), camera poses with a quality verdict, the scene
image, and the atomic clip write with its state file.

:func:`build_video_clips` decodes one video once and builds its candidate clips in order (a local
worker, or a Ray task placed on a GPU worker). Each finished clip leaves ``clips/<id>/`` (renamed into
place by :func:`write_clip`) and then its state file; a clip whose state file exists is finished.
"""

from __future__ import annotations

import time
import warnings
import zlib
from dataclasses import asdict

import numpy as np

from .clips import write_clip
from .scan import Candidate, StageTimes, resize_short_side
from .state import ClipOutcome, write_clip_state

_MATTERS: dict = {}


def resolve_device(name: str) -> str:
    """``auto`` → ``cuda`` when available, else ``cpu``; other names as given."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def load_matting_model(path: str | None, device: str):
    """RVM from the user's weight file (one per process); a clear error naming the setting when missing."""
    import os

    from ..matting import load_rvm

    if not path:
        raise FileNotFoundError("matting needs Robust Video Matting weights: give --rvm PATH (or matting.rvm in "
                                "the config), e.g. models/rvm/rvm_mobilenetv3.pth from "
                                "github.com/PeterL1n/RobustVideoMatting/releases")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"--rvm / matting.rvm: {path}: no such file (Robust Video Matting weights, "
                                "rvm_mobilenetv3.pth or rvm_resnet50.pth)")
    key = (os.path.abspath(path), device)
    if key not in _MATTERS:
        _MATTERS[key] = load_rvm(path, device=device)
    return _MATTERS[key]


def matte_frames(frames: np.ndarray, config: dict, device: str) -> np.ndarray:
    """Person alpha ``(F, H, W)`` float32 in [0, 1] for ``frames (F, H, W, 3)`` uint8 (RVM)."""
    from ..matting import matte_video

    model = load_matting_model(config["matting"]["rvm"], device)
    return matte_video(model, frames, chunk=config["matting"]["chunk"]).alpha[:, 0].numpy()


def scene_frame_index(clip_id: str, num_frames: int, seed: int) -> int:
    """The frame the scene image is taken from: random, but the same on every run and machine."""
    return int(np.random.default_rng([seed, zlib.crc32(clip_id.encode())]).integers(num_frames))


def scene_image(frame: np.ndarray, alpha: np.ndarray, dilation_fraction: float) -> np.ndarray:
    """``frame (H, W, 3)`` uint8 with the person (``alpha (H, W)``) grown by ``dilation_fraction`` × the
    long side set to black: the paper's scene images "with human masks (black region)"."""
    import torch

    from ..matting import human_removed_mask

    radius = max(1, int(round(dilation_fraction * max(frame.shape[:2]))))
    removed = human_removed_mask(torch.from_numpy(alpha[None].astype(np.float32)), radius)[0].numpy()
    return (frame * (1 - removed[..., None])).round().astype(np.uint8)


def estimate_camera(frames: np.ndarray, alpha: np.ndarray, config: dict):
    """Trajectory and :class:`~dynascene_core.camera.quality.CameraQuality` of ``frames`` ``(F, H, W, 3)`` uint8 with
    the person ``alpha`` ``(F, H, W)`` masked, reduced to ``camera.longer_side``.

    Poses use normalised intrinsics, so they hold at any resolution of the same frames.
    """
    from ..camera import estimate_trajectory

    settings = config["camera"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the quality verdict carries the same findings
        trajectory, stats = estimate_trajectory(frames, alpha, settings["fov_deg"], method=settings["method"],
                                                readout=settings["readout"],
                                                readout_direction=settings["readout_direction"],
                                                longer_side=settings["longer_side"])
    return trajectory, stats.quality


def build_video_clips(source: dict, candidates: list[Candidate], config: dict, out: str,
                      device: str = "cpu") -> list[ClipOutcome]:
    """Build ``candidates`` (in frame order) of one video; each outcome is also saved as a state file."""
    from ..video import VideoError, iter_video

    pending = sorted(candidates, key=lambda c: c.segment.start)
    outcomes: list[ClipOutcome] = []
    buffer: list[np.ndarray] = []
    frame_index = 0
    short_side = config["write"]["short_side"]
    try:
        for chunk in iter_video(source["path"], chunk=32, max_frames=pending[-1].segment.end if pending else 0):
            for frame in resize_short_side(chunk, short_side):
                if pending and frame_index >= pending[0].segment.start:
                    buffer.append(frame)
                frame_index += 1
                if pending and frame_index == pending[0].segment.end:
                    outcomes.append(build_clip(source, pending.pop(0), np.stack(buffer), config, out, device))
                    buffer = []
    except VideoError as exc:
        detail = f"decoding stopped at frame {frame_index} ({exc})"
        for candidate in pending:
            outcomes.append(_dropped(source, candidate, "write", "unreadable", detail, out))
        pending = []
    for candidate in pending:  # the video ended early
        outcomes.append(_dropped(source, candidate, "write", "unreadable",
                                 f"video ended at frame {frame_index}", out))
    return outcomes


def _dropped(source: dict, candidate: Candidate, stage: str, reason: str, detail: str, out: str,
             times: StageTimes | None = None, camera: dict | None = None) -> ClipOutcome:
    outcome = ClipOutcome(candidate.segment.clip_id(source["key"]), source["path"],
                          [candidate.segment.start, candidate.segment.end], candidate.motion_score,
                          drop={"stage": stage, "reason": reason, "detail": detail}, camera=camera,
                          times=times or StageTimes())
    write_clip_state(out, outcome)
    return outcome


def build_clip(source: dict, candidate: Candidate, frames: np.ndarray, config: dict, out: str,
               device: str) -> ClipOutcome:
    """Matting → camera → scene image → write for one clip's ``frames (F, H, W, 3)`` uint8."""
    times = StageTimes()
    clip_id = candidate.segment.clip_id(source["key"])
    count = len(frames)
    started = time.perf_counter()
    alpha = matte_frames(frames, config, device)
    times.add("matting", time.perf_counter() - started, count)
    coverage = float(alpha.mean())
    if coverage < config["matting"]["min_person_fraction"]:
        return _dropped(source, candidate, "matting", "no_matte", f"the matte covers {coverage:.2%} of the frames "
                        f"(minimum {config['matting']['min_person_fraction']:.2%})", out, times)
    started = time.perf_counter()
    try:
        trajectory, quality = estimate_camera(frames, alpha, config)
    except (ValueError, np.linalg.LinAlgError) as exc:
        times.add("camera", time.perf_counter() - started, count)
        return _dropped(source, candidate, "camera", "camera_failed", f"{type(exc).__name__}: {exc}", out, times)
    times.add("camera", time.perf_counter() - started, count)
    verdict = quality.verdict
    if verdict == "unreliable" or (verdict == "uncertain" and not config["camera"]["keep_uncertain"]):
        return _dropped(source, candidate, "camera", f"camera_{verdict}", "; ".join(quality.reasons) or verdict,
                        out, times, quality.to_dict())
    started = time.perf_counter()
    scene_index = scene_frame_index(clip_id, count, config["scene"]["seed"])
    scene = scene_image(frames[scene_index], alpha[scene_index], config["scene"]["removal_dilation"])
    times.add("scene", time.perf_counter() - started, 1)
    started = time.perf_counter()
    record = write_clip(out, clip_id, frames, trajectory, source["fps"], masks=alpha, scene_images={scene_index: scene},
                        video_storage=config["write"]["video_storage"], mask_storage=config["write"]["mask_storage"],
                        motion_score=candidate.motion_score)
    times.add("write", time.perf_counter() - started, count)
    outcome = ClipOutcome(clip_id, source["path"], [candidate.segment.start, candidate.segment.end],
                          candidate.motion_score, record=asdict(record), camera=quality.to_dict(),
                          scene_frame=scene_index, times=times)
    write_clip_state(out, outcome)
    return outcome
