"""Per-video analysis stages of data preparation: probe, resolution, shot cuts, one person, motion.

:func:`scan_video` runs them on one video (a local worker or a CPU Ray task) and returns the clips
worth building plus every drop with its stage and reason. Frames are decoded once, in order; only
the frames the person detector and eq. 3 look at are kept, at reduced size.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import cv2
import numpy as np

from .motion import motion_intensity, motion_sample_indices
from .people import make_person_detector, person_verdict
from .shots import Segment, detect_shots, plan_segments
from .sources import SourceVideo, probe_video

SCAN_STAGES = ("probe", "resolution", "cuts", "person", "motion")
BUILD_STAGES = ("matting", "camera", "scene", "write")


@dataclass
class StageTimes:
    """Seconds and frames handled per stage (for throughput: frames / seconds)."""

    seconds: dict = field(default_factory=dict)
    frames: dict = field(default_factory=dict)

    def add(self, stage: str, seconds: float, frames: int) -> None:
        self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds
        self.frames[stage] = self.frames.get(stage, 0) + int(frames)


@dataclass
class Candidate:
    """A clip that passed the scan: its segment, eq. 3 score and the person detector's summary."""

    segment: Segment
    motion_score: float
    person: str

    def to_dict(self) -> dict:
        return {"segment": asdict(self.segment), "motion_score": self.motion_score, "person": self.person}

    @classmethod
    def from_dict(cls, data: dict) -> "Candidate":
        return cls(Segment(**data["segment"]), float(data["motion_score"]), data["person"])


@dataclass
class VideoScan:
    """Everything :func:`scan_video` learnt about one video (saved as its state file)."""

    path: str
    key: str
    source: dict | None = None
    decoded_frames: int = 0
    shots: int = 0
    candidates: list = field(default_factory=list)
    drops: list = field(default_factory=list)
    motion_scores: list = field(default_factory=list)  # every segment that reached eq. 3
    times: StageTimes = field(default_factory=StageTimes)

    def drop(self, stage: str, reason: str, detail: str, segment: Segment | None = None) -> None:
        entry = {"stage": stage, "reason": reason, "detail": detail, "video": self.path}
        if segment is not None:
            entry.update(clip_id=segment.clip_id(self.key), frames=[segment.start, segment.end])
        self.drops.append(entry)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["candidates"] = [c.to_dict() for c in self.candidates]
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "VideoScan":
        data = dict(data)
        data["candidates"] = [Candidate.from_dict(c) for c in data["candidates"]]
        data["times"] = StageTimes(**data["times"])
        return cls(**data)


def resize_short_side(frames: np.ndarray, short_side: int | None) -> np.ndarray:
    """``(n, H, W, 3)`` uint8 resized (area filter) so the short side is ``short_side`` (never enlarged);
    both sides are rounded to even numbers, as H.264 needs."""
    height, width = frames.shape[1:3]
    if short_side is None or min(height, width) <= short_side:
        return frames
    scale = short_side / min(height, width)
    size = (max(2, int(round(width * scale / 2)) * 2), max(2, int(round(height * scale / 2)) * 2))
    return np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames])


_DETECTORS: dict = {}


def _detector(settings: dict, device: str):
    """One detector per process and settings (loading weights once per worker)."""
    key = (settings["detector"], settings["weights"], settings["architecture"], device)
    if key not in _DETECTORS:
        _DETECTORS[key] = make_person_detector(settings, device)
    return _DETECTORS[key]


def scan_video(path: str, key: str, config: dict, device: str = "cpu") -> VideoScan:
    """Probe → resolution → cuts → one person → motion for one video; never raises for a bad video."""
    scan = VideoScan(path, key)
    started = time.perf_counter()
    try:
        source = probe_video(path, key)
    except ValueError as exc:
        scan.drop("probe", "unreadable", str(exc))
        return scan
    scan.source = source.to_dict()
    scan.times.add("probe", time.perf_counter() - started, 0)
    min_side = config["resolution"]["min_short_side"]
    if min(source.width, source.height) < min_side:
        scan.drop("resolution", "low_resolution", f"{source.width}x{source.height}: short side "
                                                  f"{min(source.width, source.height)} < {min_side}")
        return scan
    shots_cfg = config["shots"]
    started = time.perf_counter()
    try:
        shots, scan.decoded_frames = detect_shots(path, shots_cfg["threshold"],
                                                  int(round(shots_cfg["min_shot_seconds"] * source.fps)))
    except Exception as exc:  # PySceneDetect raises its own types for broken streams
        scan.drop("cuts", "unreadable", f"{path}: shot detection failed ({type(exc).__name__}: {exc})")
        return scan
    scan.times.add("cuts", time.perf_counter() - started, scan.decoded_frames)
    if scan.decoded_frames == 0:
        scan.drop("cuts", "unreadable", f"{path}: no frame could be decoded")
        return scan
    scan.shots = len(shots)
    segments, short = plan_segments(shots, source.fps, shots_cfg["min_shot_seconds"], shots_cfg["max_clip_seconds"])
    for start, end in short:
        scan.drop("cuts", "shot_too_short", f"shot {start}-{end}: {(end - start) / source.fps:.2f} s < "
                                            f"{shots_cfg['min_shot_seconds']:g} s")
    if segments:
        _scan_segments(scan, source, segments, config, device)
    return scan


def _sample_plan(segments: list[Segment], fps: float, config: dict) -> dict[int, list[tuple[int, str]]]:
    """``{source frame: [(segment index, "person" | "motion"), ...]}`` for the frames to keep."""
    plan: dict[int, list[tuple[int, str]]] = {}
    for index, segment in enumerate(segments):
        for what, rate in (("person", config["person"]["sample_fps"]), ("motion", config["motion"]["sample_fps"])):
            for offset in motion_sample_indices(segment.num_frames, fps, rate):
                plan.setdefault(segment.start + int(offset), []).append((index, what))
    return plan


def _scan_segments(scan: VideoScan, source: SourceVideo, segments: list[Segment], config: dict,
                   device: str) -> None:
    from ..video import VideoError, iter_video

    plan = _sample_plan(segments, source.fps, config)
    kept = {(i, what): [] for i in range(len(segments)) for what in ("person", "motion")}
    sizes = {"person": config["person"]["detect_short_side"], "motion": config["motion"]["short_side"]}
    started, frame_index = time.perf_counter(), 0
    try:
        for chunk in iter_video(source.path, chunk=32, max_frames=segments[-1].end):
            for frame in chunk:
                for index, what in plan.get(frame_index, ()):
                    kept[index, what].append(resize_short_side(frame[None], sizes[what])[0])
                frame_index += 1
    except VideoError as exc:
        scan.drop("cuts", "unreadable", f"{source.path}: decoding stopped at frame {frame_index} ({exc})")
    scan.times.add("decode", time.perf_counter() - started, frame_index)  # the samples for person and motion
    detector = _detector(config["person"], device)
    motion_cfg = config["motion"]
    for index, segment in enumerate(segments):
        person_frames, motion_frames = kept[index, "person"], kept[index, "motion"]
        if segment.end > frame_index:
            scan.drop("cuts", "unreadable", f"frames {segment.start}-{segment.end} could not be decoded", segment)
            continue
        started = time.perf_counter()
        verdict = person_verdict(detector(np.stack(person_frames)), person_frames[0].shape[:2], config["person"])
        scan.times.add("person", time.perf_counter() - started, segment.num_frames)
        if verdict.reason is not None:
            scan.drop("person", verdict.reason, verdict.detail, segment)
            continue
        started = time.perf_counter()
        try:
            score = motion_intensity(np.stack(motion_frames), motion_cfg["sample_fps"], motion_cfg["sample_fps"],
                                     motion_cfg["gap"])
        except ValueError as exc:
            scan.drop("motion", "too_short_for_motion", str(exc), segment)
            continue
        finally:
            scan.times.add("motion", time.perf_counter() - started, segment.num_frames)
        scan.motion_scores.append(score)
        if score >= motion_cfg["max_score"]:
            scan.drop("motion", "low_motion", f"S = {score:.3f} >= {motion_cfg['max_score']:g}", segment)
            continue
        scan.candidates.append(Candidate(segment, score, verdict.detail))
