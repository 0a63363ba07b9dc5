"""The run report of data preparation: ``report.json``, a printed table and ``contact_sheet.png``."""

from __future__ import annotations

import json
import os
from collections import Counter

import numpy as np

from .scan import BUILD_STAGES, SCAN_STAGES, VideoScan
from .state import ClipOutcome

PAPER_MEAN_MOTION = 0.64  # paper Table 1, DynaScene data set
HISTOGRAM_BINS = np.round(np.arange(0.0, 1.0001, 0.05), 2)


def make_report(scans: list[VideoScan], outcomes: dict[str, ClipOutcome], wall_seconds: float) -> dict:
    """Counts, drops per stage and reason, hours in and out, eq. 3 statistics and per-stage throughput."""
    drops: dict[str, Counter] = {stage: Counter() for stage in SCAN_STAGES + BUILD_STAGES}
    for scan in scans:
        for drop in scan.drops:
            drops[drop["stage"]][drop["reason"]] += 1
    written = [o for o in outcomes.values() if o.record is not None]
    for outcome in outcomes.values():
        if outcome.drop is not None:
            drops[outcome.drop["stage"]][outcome.drop["reason"]] += 1
    seconds, frames = Counter(), Counter()
    for times in [s.times for s in scans] + [o.times for o in outcomes.values()]:
        seconds.update(times.seconds)
        frames.update(times.frames)
    hours_in = sum(s.decoded_frames / s.source["fps"] for s in scans if s.source and s.decoded_frames) / 3600
    hours_out = sum(o.record["num_frames"] / o.record["fps"] for o in written) / 3600
    scores = [score for s in scans for score in s.motion_scores]
    kept_scores = [o.motion_score for o in written]
    hist, _ = np.histogram(scores, bins=HISTOGRAM_BINS)
    return {
        "videos_in": len(scans),
        "videos_readable": sum(s.source is not None for s in scans),
        "shots": sum(s.shots for s in scans),
        "candidate_clips": sum(len(s.candidates) for s in scans),
        "clips_out": len(written),
        "hours_in": round(hours_in, 4),
        "hours_out": round(hours_out, 4),
        "drops": {stage: dict(sorted(c.items())) for stage, c in drops.items() if c},
        "motion": {
            "histogram_bins": HISTOGRAM_BINS.tolist(),
            "histogram_all_scored": hist.tolist(),
            "mean_all_scored": round(float(np.mean(scores)), 4) if scores else None,
            "mean_clips_out": round(float(np.mean(kept_scores)), 4) if kept_scores else None,
            "paper_mean": PAPER_MEAN_MOTION,
        },
        "camera_verdicts": dict(Counter((o.camera or {}).get("verdict", "none") for o in outcomes.values())),
        "throughput": {stage: {"seconds": round(seconds[stage], 3), "frames": int(frames[stage]),
                               "frames_per_second": round(frames[stage] / seconds[stage], 2) if seconds[stage] else None}
                       for stage in SCAN_STAGES[:3] + ("decode",) + SCAN_STAGES[3:] + BUILD_STAGES
                       if stage in seconds},
        "wall_seconds": round(wall_seconds, 2),
    }


def format_report(report: dict) -> str:
    """The printed summary table."""
    lines = [f"videos in {report['videos_in']} (readable {report['videos_readable']}), shots {report['shots']}, "
             f"candidate clips {report['candidate_clips']}, clips out {report['clips_out']}",
             f"footage {report['hours_in'] * 60:.2f} min in, {report['hours_out'] * 60:.2f} min out; mean S of clips "
             f"out {report['motion']['mean_clips_out']} (paper: {PAPER_MEAN_MOTION})",
             f"{'stage':<11}{'dropped':>8}  reasons", "-" * 60]
    for stage in SCAN_STAGES + BUILD_STAGES:
        reasons = report["drops"].get(stage, {})
        speed = report["throughput"].get(stage, {}).get("frames_per_second")
        text = ", ".join(f"{r} {n}" for r, n in reasons.items()) or "-"
        lines.append(f"{stage:<11}{sum(reasons.values()):>8}  {text}" + (f"   [{speed} frames/s]" if speed else ""))
    return "\n".join(lines)


def write_report(out: str, report: dict) -> str:
    path = os.path.join(out, "report.json")
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=1)
    os.replace(tmp, path)
    return path


def contact_sheet(out: str, records: list, count: int, tile_height: int = 144) -> np.ndarray | None:
    """One row per sample clip: first frame, a middle frame with the mask in red, the scene image and the
    camera trajectory; ``(H, W, 3)`` uint8, or None when there is no clip. Clips are spread over the list."""
    import cv2

    from ..camera.plot import plot_trajectory
    from .clips import clip_files, load_trajectory, read_clip_frames, read_scene_image

    if not records or count < 1:
        return None
    picks = [records[i] for i in np.unique(np.linspace(0, len(records) - 1, count).round().astype(int))]
    rows = []
    for record in picks:
        files = clip_files(out, record)
        middle = record.num_frames // 2
        clip = read_clip_frames(record, files, [0, middle])
        overlay = clip.frames[1].astype(np.float32)
        overlay[..., 0] = overlay[..., 0] * (1 - clip.masks[1]) + 255 * clip.masks[1]
        scene_frame = sorted(files.scene_images)[0]
        tiles = [clip.frames[0], overlay.astype(np.uint8), read_scene_image(record, files, scene_frame)]
        width = int(round(tile_height * record.width / record.height))
        tiles = [cv2.resize(t, (width, tile_height), interpolation=cv2.INTER_AREA) for t in tiles]
        tiles.append(plot_trajectory(load_trajectory(record, files), (2 * tile_height, tile_height)))
        row = np.concatenate(tiles, 1)
        label = f"{record.clip_id}  S={record.motion_score:.2f}  scene frame {scene_frame}"
        cv2.putText(row, label, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 0), 1, cv2.LINE_AA)
        rows.append(row)
    width = max(r.shape[1] for r in rows)
    return np.concatenate([np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows])
