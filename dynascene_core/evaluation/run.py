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
          lpips_net: str, fvd_frames: int, batch_size: int) -> _Plan:
    """Which metrics run. Missing inputs skip a default metric with the reason, but fail a requested one."""
    from .backbones import LPIPS_NETS

    explicit = metrics is not None
    wanted = list(METRICS if metrics is None else metrics)
    unknown = [m for m in wanted if m not in METRICS]
    if unknown:
        raise ValueError(f"unknown metrics {unknown}; choose from {', '.join(METRICS)}")
    if not clips:
        raise EvaluationInputError("no clips to evaluate")
    if lpips_net not in LPIPS_NETS:
        raise ValueError(f"LPIPS backbone must be one of {sorted(LPIPS_NETS)}, got {lpips_net!r}")
    if fvd_frames < 1 or batch_size < 1:
        raise ValueError(f"fvd_frames and batch_size must be >= 1, got {fvd_frames} and {batch_size}")
    weights = {"lpips": LPIPS_NETS[lpips_net], "fid": "inception", "fvd_i3d": "i3d",
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


FRAME_METRICS = ("l1", "psnr", "ssim", "lpips")


def _frame_metrics(gen, filled, gt, alpha, wanted, lpips_model) -> dict[str, torch.Tensor]:
    """Per-frame values ``(n,)`` of the ``wanted`` frame metrics for one batch of frames ``(n, 3, H, W)``:
    L1/PSNR on the generated frames, SSIM/LPIPS on ``filled`` (person = ground truth), background-weighted
    when ``alpha`` is given."""
    from .pixel import l1_per_frame, psnr_per_frame, ssim_per_frame

    weights = 1 - alpha if alpha is not None else None
    functions = {"l1": lambda: l1_per_frame(gen, gt, weights), "psnr": lambda: psnr_per_frame(gen, gt, weights),
                 "ssim": lambda: ssim_per_frame(filled, gt, weights),
                 "lpips": lambda: lpips_model(filled, gt, normalize=True).flatten()}
    with torch.no_grad():
        return {name: functions[name]() for name in wanted}


def _update_fvd(metrics: dict, fake: torch.Tensor, real: torch.Tensor, window: int, batch_size: int,
                device: torch.device) -> None:
    """Feed one clip's consecutive non-overlapping windows of ``window`` frames (remainder dropped) to
    every FVD metric, ``max(1, batch_size // window)`` windows per forward pass."""
    usable = len(fake) // window * window
    fake = fake[:usable].reshape(-1, window, *fake.shape[1:])
    real = real[:usable].reshape(-1, window, *real.shape[1:])
    step = max(1, batch_size // window)
    with torch.no_grad():
        for metric in metrics.values():
            for start in range(0, len(fake), step):
                metric.update(fake[start:start + step].to(device), real=False)
                metric.update(real[start:start + step].to(device), real=True)


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
    from .pixel import fill_foreground

    weights_dir = os.fspath(weights_dir)
    device = torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
    plan = _plan(clips, metrics, weights_dir, lpips_net, fvd_frames, batch_size)
    lpips_model = backbones.load_lpips(weights_dir, lpips_net).to(device) if "lpips" in plan.run else None
    fid = backbones.fid_metric(weights_dir, device) if "fid" in plan.run else None
    fvd = {}
    if "fvd_i3d" in plan.run:
        fvd["fvd_i3d"] = backbones.video_fid_metric(backbones.load_i3d(weights_dir), device)
    if "fvd_3dres" in plan.run:
        fvd["fvd_3dres"] = backbones.video_fid_metric(backbones.load_r3d(weights_dir), device)

    frame_values: dict[str, list[torch.Tensor]] = {m: [] for m in FRAME_METRICS if m in plan.run}
    per_clip: dict[str, dict] = {}
    camera_errors = {}
    masked = False
    for index, item in enumerate(clips):
        clip = load_clip(item) if isinstance(item, ClipSource) else item
        log.info("clip %d/%d: %s (%d frames)", index + 1, len(clips), clip.name, len(clip))
        masked = masked or clip.alpha is not None
        values: dict[str, list[torch.Tensor]] = {name: [] for name in frame_values}
        fake_frames, real_frames = [], []  # uint8 (n, 3, H, W) on the CPU, kept only for FVD windows
        for start in range(0, len(clip), batch_size):
            part = slice(start, start + batch_size)
            gen, gt = to_tensor(clip.generated[part]).to(device), to_tensor(clip.ground_truth[part]).to(device)
            alpha = torch.from_numpy(clip.alpha[part])[:, None].to(device) if clip.alpha is not None else None
            filled = fill_foreground(gen, gt, alpha) if alpha is not None else gen
            for name, value in _frame_metrics(gen, filled, gt, alpha, values, lpips_model).items():
                values[name].append(value.cpu())
            filled_u8, truth_u8 = (x.mul(255).round().to(torch.uint8) for x in (filled, gt))
            if fid is not None:
                fid.update(filled_u8, real=False)
                fid.update(truth_u8, real=True)
            if fvd:
                fake_frames.append(filled_u8.cpu())
                real_frames.append(truth_u8.cpu())
        if fvd:
            _update_fvd(fvd, torch.cat(fake_frames), torch.cat(real_frames), fvd_frames, batch_size, device)
        per_clip[clip.name] = {"frames": len(clip)}
        for name, chunks in values.items():
            frame_values[name] += chunks
            per_clip[clip.name][name] = float(torch.cat(chunks).mean())
        if "camera" in plan.run:
            from .camera_error import camera_following_error

            error = camera_following_error(clip.generated, clip.camera, clip.alpha, camera_fov_deg)
            camera_errors[clip.name] = error
            per_clip[clip.name]["camera"] = error.summary()

    results: dict[str, float | None] = {name: float(torch.cat(chunks).mean()) for name, chunks in frame_values.items()}
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
        turns = [e.turn_ratio for e in errors if np.isfinite(e.turn_ratio)]
        camera_summary = {
            "rot_err_mean_deg": float(rot_frames.mean()) if len(rot_frames) else None,
            "turn_ratio_median": float(np.median(turns)) if turns else None,
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
