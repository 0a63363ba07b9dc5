"""Shot cuts with PySceneDetect's content detector, and the clips each shot is cut into."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Segment:
    """Frames ``[start, end)`` of a source video; ``shot`` and ``piece`` number it inside the video."""

    shot: int
    piece: int
    start: int
    end: int

    @property
    def num_frames(self) -> int:
        return self.end - self.start

    def clip_id(self, video_key: str) -> str:
        return f"{video_key}-s{self.shot:03d}p{self.piece:02d}"


def detect_shots(path: str, threshold: float, min_shot_frames: int) -> tuple[list[tuple[int, int]], int]:
    """``([(start, end), ...], decoded frame count)``: shots as half-open frame ranges covering the video.

    PySceneDetect's :class:`ContentDetector` (HSV difference between consecutive frames, the tool
    the paper names) with ``min_scene_len = min_shot_frames``; a video without a cut is one shot.
    """
    from scenedetect import ContentDetector, SceneManager, open_video

    video = open_video(path)
    manager = SceneManager()
    manager.add_detector(ContentDetector(threshold=threshold, min_scene_len=max(1, min_shot_frames)))
    manager.detect_scenes(video)
    decoded = int(video.frame_number)
    shots = [(int(s.frame_num), int(e.frame_num)) for s, e in manager.get_scene_list(start_in_scene=True)]
    return [(s, min(e, decoded)) for s, e in shots if min(e, decoded) > s], decoded


def plan_segments(shots: list[tuple[int, int]], fps: float, min_shot_seconds: float, max_clip_seconds: float
                  ) -> tuple[list[Segment], list[tuple[int, int]]]:
    """Clips to build and the shots dropped as too short.

    A shot of at least ``min_shot_seconds`` becomes ``ceil(length / max_clip_seconds)`` clips of
    equal length (± 1 frame), so no clip is longer than ``max_clip_seconds``.
    """
    min_frames = int(math.ceil(min_shot_seconds * fps - 1e-9))
    max_frames = max(1, int(math.floor(max_clip_seconds * fps + 1e-9)))
    segments, short = [], []
    for index, (start, end) in enumerate(shots):
        length = end - start
        if length < min_frames:
            short.append((start, end))
            continue
        pieces = int(math.ceil(length / max_frames))
        bounds = [start + round(i * length / pieces) for i in range(pieces + 1)]
        segments += [Segment(index, i, bounds[i], bounds[i + 1]) for i in range(pieces)]
    return segments, short
