"""Evaluation report: JSON (written atomically) and a table in the layout of the paper's Tables 2–4."""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field

# (key, column title, format); arrows as in the paper: ↓ lower is better, ↑ higher is better
COLUMNS = (
    ("l1", "L1↓", "{:.2e}"),
    ("psnr", "PSNR↑", "{:.2f}"),
    ("ssim", "SSIM↑", "{:.3f}"),
    ("lpips", "LPIPS↓", "{:.3f}"),
    ("fid", "FID↓", "{:.2f}"),
    ("fvd_i3d", "FVD_I3D↓", "{:.2f}"),
    ("fvd_3dres", "FVD_3DRes↓", "{:.2f}"),
    ("rot_err", "RotErr↓", "{:.3f}"),
    ("trans_err", "TransErr↓", "{:.3f}"),
)


@dataclass
class EvaluationReport:
    """Results of one evaluation.

    ``metrics``: dataset-level numbers keyed as in :data:`COLUMNS` (L1/PSNR/SSIM/LPIPS: means over all
    frames; FID/FVD: one Fréchet distance over the whole set; RotErr (radians) / TransErr: CameraCtrl-style
    per-clip sums averaged over clips). ``skipped``: metric → why it did not run. ``per_clip``: clip name →
    its frame means, frame count and camera-error details. ``camera``: per-frame camera error means.
    """

    metrics: dict[str, float | None]
    skipped: dict[str, str]
    per_clip: dict[str, dict]
    num_frames: int
    settings: dict = field(default_factory=dict)
    camera: dict | None = None

    def to_dict(self) -> dict:
        return {"metrics": {k: _json_number(v) for k, v in self.metrics.items()}, "skipped": self.skipped,
                "camera": self.camera, "num_clips": len(self.per_clip), "num_frames": self.num_frames,
                "settings": self.settings, "per_clip": self.per_clip}

    def write_json(self, path: str | os.PathLike) -> None:
        """Write :meth:`to_dict` as JSON atomically (never a half-written report)."""
        from ..io_utils import atomic_open

        path = os.fspath(path)
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with atomic_open(path) as handle:
            json.dump(self.to_dict(), handle, indent=2, allow_nan=False)
            handle.write("\n")

    def table(self, label: str = "generated") -> str:
        """One-row table plus the skipped metrics (see :func:`format_table`)."""
        lines = [format_table({label: self.metrics})]
        if self.camera:
            lines.append("camera: RotErr = per-clip sum of rotation errors (radians), TransErr = per-clip sum of "
                         "translation errors (requested extent = 1), averaged over clips; per frame: rotation "
                         f"{_degrees(self.camera['rot_err_mean_deg'])}, translation direction "
                         f"{_degrees(self.camera['trans_dir_err_mean_deg'])}")
            if self.camera.get("turn_ratio_median") is not None:
                lines.append("camera: turn ratio (share of the requested turn made at the last frame, 1 = all), "
                             f"median over clips {self.camera['turn_ratio_median']:.2f}")
            if self.camera["clips_with_unreliable_frames"]:
                lines.append(f"camera: unreliable estimates in {self.camera['clips_with_unreliable_frames']}")
        lines += [f"skipped {name}: {reason}" for name, reason in self.skipped.items()]
        return "\n".join(lines)


def _degrees(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}°"


def _json_number(value):
    return None if value is None or (isinstance(value, float) and not math.isfinite(value)) else value


def format_table(rows: dict[str, dict[str, float | None]]) -> str:
    """Rows ``{label: metrics}`` as a text table with the paper's columns (``—`` = not computed)."""
    header = ["Methods"] + [title for _, title, _ in COLUMNS]
    body = [[label] + ["—" if metrics.get(key) is None else fmt.format(metrics[key]) for key, _, fmt in COLUMNS]
            for label, metrics in rows.items()]
    widths = [max(len(r[i]) for r in [header] + body) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in [header] + body)
