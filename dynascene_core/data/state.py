"""Resumable state of a data-preparation run, kept in ``OUT/state/``.

* ``state/<video key>.scan.json``: the scan of one video (shots, drops, candidate clips);
* ``state/clips/<clip id>.json``: the outcome of one candidate clip, written after its folder is in
  place, so a clip with a state file is finished; one without (a kill mid-clip) is built again.

Every file is written to a temporary name and renamed. ``manifest.jsonl`` and ``review.csv`` are
rebuilt from the state files, so they always list exactly the finished clips.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from dataclasses import asdict, dataclass, field

from ..io_utils import atomic_open
from .clips import CLIPS_DIR, ClipRecord, write_manifest
from .scan import StageTimes, VideoScan

STATE_DIR = "state"
REVIEW_NAME = "review.csv"
CONFIG_NAME = "prepare_config.json"


@dataclass
class ClipOutcome:
    """One candidate clip: ``record`` (manifest line) when written, ``drop`` (stage, reason, detail) when not."""

    clip_id: str
    video: str
    frames: list
    motion_score: float
    record: dict | None = None
    drop: dict | None = None
    camera: dict | None = None  # CameraQuality.to_dict()
    scene_frame: int | None = None
    times: StageTimes = field(default_factory=StageTimes)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ClipOutcome":
        data = dict(data)
        data["times"] = StageTimes(**data["times"])
        return cls(**data)


def _write_json(path: str, data: dict) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with atomic_open(path) as handle:
        json.dump(data, handle, indent=1, sort_keys=True)


def scan_state_path(out: str, key: str) -> str:
    return os.path.join(out, STATE_DIR, f"{key}.scan.json")


def clip_state_path(out: str, clip_id: str) -> str:
    return os.path.join(out, STATE_DIR, "clips", f"{clip_id}.json")


def write_scan_state(out: str, scan: VideoScan) -> None:
    _write_json(scan_state_path(out, scan.key), scan.to_dict())


def read_scan_state(out: str, key: str) -> VideoScan | None:
    path = scan_state_path(out, key)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as handle:
        return VideoScan.from_dict(json.load(handle))


def write_clip_state(out: str, outcome: ClipOutcome) -> None:
    _write_json(clip_state_path(out, outcome.clip_id), outcome.to_dict())


def read_clip_states(out: str) -> dict[str, ClipOutcome]:
    """Every finished clip outcome, by clip id."""
    folder = os.path.join(out, STATE_DIR, "clips")
    outcomes = {}
    if os.path.isdir(folder):
        for name in sorted(os.listdir(folder)):
            if name.endswith(".json"):
                with open(os.path.join(folder, name), encoding="utf-8") as handle:
                    outcome = ClipOutcome.from_dict(json.load(handle))
                outcomes[outcome.clip_id] = outcome
    return outcomes


def _comparable_settings(config: dict) -> dict:
    """The settings that change what a clip is (not worker counts or the device), as JSON would give them."""
    comparable = {k: v for k, v in config.items() if k != "run"}
    comparable["matting"] = {k: v for k, v in config["matting"].items() if k != "device"}
    return json.loads(json.dumps(comparable))


def check_run_config(out: str, config: dict) -> None:
    """Refuse settings that differ from those of an earlier run in ``OUT`` (finished clips were made with
    them, so mixing would give an inconsistent data set); reads only."""
    path = os.path.join(out, STATE_DIR, CONFIG_NAME)
    if not os.path.isfile(path):
        return
    with open(path, encoding="utf-8") as handle:
        previous = json.load(handle)
    comparable = _comparable_settings(config)
    if previous != comparable:
        changed = sorted(f"{section}.{key}" for section in comparable for key in comparable[section]
                         if previous.get(section, {}).get(key) != comparable[section][key])
        raise ValueError(f"{out} was prepared with other settings ({', '.join(changed)} differ; see {path}); "
                         "use a new output folder, or the same settings to resume")


def record_run_config(out: str, config: dict) -> None:
    """Save the first run's settings in ``OUT`` (what :func:`check_run_config` compares with later)."""
    path = os.path.join(out, STATE_DIR, CONFIG_NAME)
    if not os.path.isfile(path):
        _write_json(path, _comparable_settings(config))


def remove_unfinished(out: str) -> int:
    """Delete clip folders left half-written by a killed run (temporary names); returns how many."""
    folder = os.path.join(out, CLIPS_DIR)
    if not os.path.isdir(folder):
        return 0
    stale = [n for n in os.listdir(folder) if ".tmp-" in n]
    for name in stale:
        shutil.rmtree(os.path.join(folder, name), ignore_errors=True)
    return len(stale)


def write_outputs(out: str, outcomes: dict[str, ClipOutcome]) -> list[ClipRecord]:
    """Rewrite ``manifest.jsonl`` (written clips, sorted by id) and ``review.csv`` (camera drops)."""
    records = [ClipRecord(**o.record) for _, o in sorted(outcomes.items()) if o.record is not None]
    write_manifest(out, records)
    rows = [o for _, o in sorted(outcomes.items()) if o.drop is not None and o.drop["stage"] == "camera"]
    with atomic_open(os.path.join(out, REVIEW_NAME), newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["clip_id", "video", "start_frame", "end_frame", "verdict", "reasons", "reprojection_px",
                         "inlier_ratio", "track_count", "fov_deg", "unreliable_frames"])
        for o in rows:
            cam = o.camera or {}
            writer.writerow([o.clip_id, o.video, o.frames[0], o.frames[1], cam.get("verdict", o.drop["reason"]),
                             o.drop["detail"], cam.get("reprojection_px"), cam.get("inlier_ratio"),
                             cam.get("track_count"), cam.get("fov_deg"),
                             " ".join(str(i) for i in cam.get("unreliable_frames", []))])
    return records
