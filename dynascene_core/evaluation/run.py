"""Evaluate generated clips against ground truth: the paper's metrics plus the camera-following error.

One pass over the clips (one clip in memory at a time): pixel metrics and LPIPS per frame, Inception
features for FID per frame, I3D / R3D features per window of ``fvd_frames`` frames, the camera estimate per
clip. FID and FVD are then computed once over the whole set (never per clip and averaged: a Fréchet
distance of one sample per set degenerates to the distance of the means).

With mattes, metrics are computed on the background: L1/PSNR/SSIM as weighted means with weight
``1 − alpha``; for SSIM, LPIPS, FID and FVD the generated frames' human region is first replaced by the
ground truth (:func:`~.pixel.fill_foreground`), so the person, identical in both, adds no difference.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from .clips import ClipSource, EvalClip, EvaluationInputError, load_clip
from .report import EvaluationReport
from .weights import DEFAULT_WEIGHTS_DIR, MissingWeightsError, weight_path

log = logging.getLogger("dynascene.evaluate")

METRICS = ("l1", "psnr", "ssim", "lpips", "fid", "fvd_i3d", "fvd_3dres", "camera")
"""Metric names accepted by :func:`evaluate_clips` (``camera`` = RotErr/TransErr)."""


@dataclass
class _Plan:
    run: list[str]
    skipped: dict[str, str]


def _plan(clips: Sequence[EvalClip | ClipSource], metrics: Sequence[str] | None, weights_dir: str,
          lpips_net: str, fvd_frames: int) -> _Plan:
    """Which metrics run. Missing inputs skip a default metric with the reason, but fail a requested one."""
    from .backbones import LPIPS_NETS

    explicit = metrics is not None
    wanted = list(METRICS if metrics is None else metrics)
    unknown = [m for m in wanted if m not in METRICS]
    if unknown:
        raise ValueError(f"unknown metrics {unknown}; choose from {', '.join(METRICS)}")
    if not clips:
        raise EvaluationInputError("no clips to evaluate")
    weights = {"lpips": LPIPS_NETS.get(lpips_net, "lpips_alex"), "fid": "inception", "fvd_i3d": "i3d",
               "fvd_3dres": "r3d"}
    lengths = {c.name: (c.frames if isinstance(c, ClipSource) else len(c)) for c in clips}
    shortest = min(lengths, key=lengths.get)
    run, skipped = [], {}
    for metric in wanted:
        reason = None
        if metric in weights:
            try:
                weight_path(weights[metric], weights_dir)
            except MissingWeightsError as exc:
                if explicit:
                    raise
                reason = str(exc)
        if metric.startswith("fvd") and reason is None:
            windows = sum(n // fvd_frames for n in lengths.values())
            if lengths[shortest] < fvd_frames:
                reason = (f"clip '{shortest}' has {lengths[shortest]} frames, fewer than the FVD window of "
                          f"{fvd_frames} (set fvd_frames / --fvd-frames)")
            elif windows < 2:
                reason = f"FVD needs at least 2 windows of {fvd_frames} frames per set, the clips give {windows}"
        if metric == "fid" and reason is None and sum(lengths.values()) < 2:
            reason = "FID needs at least 2 frames per set"
        if metric == "camera":
            missing = [c.name for c in clips if c.camera is None]
            if missing:
                reason = f"no conditioning trajectory for clips {missing[:5]} (give --cameras DIR with NAME.txt)"
        if reason is not None:
            if explicit:
                raise EvaluationInputError(f"{metric}: {reason}")
            skipped[metric] = reason
        else:
            run.append(metric)
    return _Plan(run, skipped)


def _batches(tensor: torch.Tensor, size: int):
    for start in range(0, len(tensor), size):
        yield tensor[start:start + size]


def evaluate_clips(clips: Sequence[EvalClip | ClipSource], metrics: Sequence[str] | None = None, *,
                   weights_dir: str | os.PathLike = DEFAULT_WEIGHTS_DIR, device: str | torch.device | None = None,
                   lpips_net: str = "alex", fvd_frames: int = 16, batch_size: int = 16,
                   camera_fov_deg: float | None = None) -> EvaluationReport:
    """Evaluate clips (in memory, or :class:`ClipSource` entries decoded one at a time).

    ``metrics``: names from :data:`METRICS`; ``None`` runs every metric whose inputs exist and lists the
    others with the reason in ``report.skipped``; an explicit list raises instead. ``fvd_frames``: FVD
    samples are consecutive non-overlapping windows of this many frames (16, as in the FVD literature).
    Returns an :class:`EvaluationReport` (set-level FID/FVD, frame means of the pixel metrics, camera
    errors averaged over clips, per-clip numbers).
    """
    from ..video import to_tensor
    from . import backbones
    from .pixel import fill_foreground, l1_per_frame, psnr_per_frame, ssim_per_frame

    weights_dir = os.fspath(weights_dir)
    device = torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
    plan = _plan(clips, metrics, weights_dir, lpips_net, fvd_frames)
    lpips_model = backbones.load_lpips(weights_dir, lpips_net).to(device) if "lpips" in plan.run else None
    fid = backbones.fid_metric(weights_dir, device) if "fid" in plan.run else None
    fvd = {}
    if "fvd_i3d" in plan.run:
        fvd["fvd_i3d"] = backbones.video_fid_metric(backbones.load_i3d(weights_dir), device)
    if "fvd_3dres" in plan.run:
        fvd["fvd_3dres"] = backbones.video_fid_metric(backbones.load_r3d(weights_dir), device)

    frame_values: dict[str, list[torch.Tensor]] = {m: [] for m in ("l1", "psnr", "ssim", "lpips") if m in plan.run}
    per_clip: dict[str, dict] = {}
    camera_errors = {}
    masked = False
    for index, item in enumerate(clips):
        clip = load_clip(item) if isinstance(item, ClipSource) else item
        log.info("clip %d/%d: %s (%d frames)", index + 1, len(clips), clip.name, len(clip))
        gen, gt = to_tensor(clip.generated), to_tensor(clip.ground_truth)
        alpha = torch.from_numpy(clip.alpha)[:, None] if clip.alpha is not None else None
        masked = masked or alpha is not None
        weights = 1 - alpha if alpha is not None else None
        filled = fill_foreground(gen, gt, alpha) if alpha is not None else gen
        values = {}
        if "l1" in plan.run:
            values["l1"] = l1_per_frame(gen, gt, weights)
        if "psnr" in plan.run:
            values["psnr"] = psnr_per_frame(gen, gt, weights)
        if "ssim" in plan.run:
            values["ssim"] = ssim_per_frame(filled, gt, weights)
        with torch.no_grad():
            if lpips_model is not None:
                values["lpips"] = torch.cat([
                    lpips_model(a.to(device), b.to(device), normalize=True).flatten().cpu()
                    for a, b in zip(_batches(filled, batch_size), _batches(gt, batch_size))])
            filled_u8 = filled.mul(255).round().to(torch.uint8)
            truth_u8 = torch.from_numpy(clip.ground_truth).permute(0, 3, 1, 2)
            if fid is not None:
                for a, b in zip(_batches(filled_u8, batch_size), _batches(truth_u8, batch_size)):
                    fid.update(a.to(device), real=False)
                    fid.update(b.to(device), real=True)
            usable = len(clip) // fvd_frames * fvd_frames
            for metric in fvd.values():
                fake = filled_u8[:usable].reshape(-1, fvd_frames, *filled_u8.shape[1:])
                real = truth_u8[:usable].reshape(-1, fvd_frames, *truth_u8.shape[1:])
                for a, b in zip(_batches(fake, max(1, batch_size // fvd_frames)),
                                _batches(real, max(1, batch_size // fvd_frames))):
                    metric.update(a.to(device), real=False)
                    metric.update(b.to(device), real=True)
        for name, value in values.items():
            frame_values[name].append(value)
        per_clip[clip.name] = {name: float(value.mean()) for name, value in values.items()}
        per_clip[clip.name]["frames"] = len(clip)
        if "camera" in plan.run:
            from .camera_error import camera_following_error

            error = camera_following_error(clip.generated, clip.camera, clip.alpha, camera_fov_deg)
            camera_errors[clip.name] = error
            per_clip[clip.name]["camera"] = error.summary()

    results: dict[str, float | None] = {}
    for name, chunks in frame_values.items():
        results[name] = float(torch.cat(chunks).mean())
    if fid is not None:
        results["fid"] = float(fid.compute())
    for name, metric in fvd.items():
        results[name] = float(metric.compute())
    camera_summary = None
    if camera_errors:
        errors = list(camera_errors.values())
        results["rot_err"] = float(np.mean([e.rot_err for e in errors]))
        trans = [e.trans_err for e in errors if np.isfinite(e.trans_err)]
        results["trans_err"] = float(np.mean(trans)) if trans else None
        rot_frames = np.concatenate([e.rotation_deg[1:] for e in errors])
        dir_frames = np.concatenate([e.direction_deg[1:] for e in errors])
        camera_summary = {
            "rot_err_mean_deg": float(rot_frames.mean()) if len(rot_frames) else None,
            "trans_dir_err_mean_deg": float(np.nanmean(dir_frames)) if np.isfinite(dir_frames).any() else None,
            "clips_with_unreliable_frames": sorted(n for n, e in camera_errors.items() if e.unreliable_frames),
        }
    settings = {"weights_dir": weights_dir, "device": str(device), "lpips_net": lpips_net,
                "fvd_frames": fvd_frames, "background_only": masked, "camera_fov_deg": camera_fov_deg}
    return EvaluationReport(results, plan.skipped, per_clip, sum(p["frames"] for p in per_clip.values()),
                            settings, camera_summary)


def evaluate_folders(generated_dir: str | os.PathLike, ground_truth_dir: str | os.PathLike,
                     masks_dir: str | os.PathLike | None = None, cameras_dir: str | os.PathLike | None = None,
                     metrics: Sequence[str] | None = None, **options) -> EvaluationReport:
    """Match and check the folders (:func:`~.clips.match_clip_folders`), then :func:`evaluate_clips`."""
    from .clips import match_clip_folders

    sources = match_clip_folders(generated_dir, ground_truth_dir, masks_dir, cameras_dir)
    report = evaluate_clips(sources, metrics, **options)
    report.settings.update(generated=os.fspath(generated_dir), ground_truth=os.fspath(ground_truth_dir),
                           masks=None if masks_dir is None else os.fspath(masks_dir),
                           cameras=None if cameras_dir is None else os.fspath(cameras_dir))
    return report
