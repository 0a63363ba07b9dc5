"""Camera estimation accuracy and speed on synthetic clips with known cameras.

    python benchmarks/bench_camera_estimation.py [--frames 24] [--width 512] [--random 6] [--fov known|estimated]
                                                 [--method fast|accurate]

Clips: every preset (static and zoom included) plus random smooth trajectories, rendered by
``dynascene_core.camera.synthetic`` with an actor covering 20-40% of the frame that moves against
the camera. Each clip is estimated WITH and WITHOUT the actor mask. Reported:
rotation error at the last frame (deg), translation-direction error at the last frame (deg, clips
with ground-truth translation only), whether static/zoom clips come out static (rotation < 0.1 deg,
no translation), the estimated FOV's error (with ``--fov estimated``), the quality verdicts, and estimation
frames/s (rendering excluded) in wall-clock time and per second of process CPU time. CPU only.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from dynascene_core.camera import PRESET_NAMES, estimate_trajectory, make_preset, random_smooth_trajectory  # noqa: E402
from dynascene_core.camera.synthetic import render_synthetic_clip  # noqa: E402
from dynascene_core.camera.trajectory import rotation_angle_deg  # noqa: E402


def errors(gt, est) -> tuple[float, float | None, bool]:
    """(rotation error deg, translation-direction error deg or None, estimated static) at the last frame."""
    g, e = gt.relative_to(0).c2w.numpy()[-1], est.c2w.numpy()[-1]
    rot = float(rotation_angle_deg(g[:3, :3], e[:3, :3]))
    tg, te = g[:3, 3], e[:3, 3]
    direction = None
    if np.linalg.norm(tg) > 1e-9:
        if np.linalg.norm(te) < 1e-12:
            direction = 90.0
        else:
            cos = tg @ te / (np.linalg.norm(tg) * np.linalg.norm(te))
            direction = float(np.degrees(np.arccos(np.clip(cos, -1, 1))))
    static = rot < 0.1 and np.linalg.norm(te) < 1e-6
    return rot, direction, static


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--random", type=int, default=6, help="number of random smooth trajectories")
    parser.add_argument("--fov", choices=("known", "estimated"), default="known",
                        help="known: the renderer's true FOV is given; estimated: the estimator finds it")
    parser.add_argument("--method", choices=("fast", "accurate"), default="fast")
    args = parser.parse_args()
    height = int(round(args.width * 9 / 16))
    clips = [(name, make_preset(name, args.frames)) for name in PRESET_NAMES]
    clips += [(f"random_{s}", random_smooth_trajectory(args.frames, seed=s)) for s in range(args.random)]

    rows = []
    time_total, cpu_total, frames_total = 0.0, 0.0, 0
    print(f"{'clip':20s} {'mask':>5s} {'mode':>9s} {'rot_deg':>8s} {'tdir_deg':>9s} {'static':>6s} {'fps':>6s} "
          f"{'actor%':>6s} {'fov_err':>8s} {'verdict':>10s}")
    for index, (name, traj) in enumerate(clips):
        clip = render_synthetic_clip(traj, height, args.width, seed=index)
        true_fov = float(np.degrees(2 * np.arctan(0.5 / traj.intrinsics[0, 0].item())))  # longer side = width
        fov = true_fov if args.fov == "known" else None
        coverage = float(clip.masks.mean()) * 100
        gt_static = np.linalg.norm(traj.relative_to(0).c2w.numpy()[-1] - np.eye(4)[None]) < 1e-12
        for use_mask in (True, False):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                start, start_cpu = time.perf_counter(), time.process_time()
                est, stats = estimate_trajectory(clip.frames, clip.masks if use_mask else None, fov_deg=fov,
                                                 method=args.method)
                elapsed = time.perf_counter() - start
            time_total += elapsed
            cpu_total += time.process_time() - start_cpu
            frames_total += len(clip.frames)
            rot, tdir, static = errors(traj, est)
            fov_err = stats.quality.fov_deg - true_fov
            rows.append(dict(name=name, mask=use_mask, rot=rot, tdir=tdir, static=static, gt_static=gt_static,
                             verdict=stats.quality.verdict))
            print(f"{name:20s} {str(use_mask):>5s} {stats.mode:>9s} {rot:8.3f} "
                  f"{'-' if tdir is None else f'{tdir:.2f}':>9s} {str(static) if gt_static else '-':>6s} {len(clip.frames) / elapsed:6.1f} "
                  f"{coverage:6.1f} {fov_err:8.2f} {stats.quality.verdict:>10s}", flush=True)

    print()
    print(f"{'masks':6s} {'median rot (deg)':>17s} {'median tdir (deg)':>18s} {'static ok':>10s} {'clips':>6s}")
    for use_mask in (True, False):
        sel = [r for r in rows if r["mask"] == use_mask]
        rots = [r["rot"] for r in sel]
        tdirs = [r["tdir"] for r in sel if r["tdir"] is not None]
        statics = [r for r in sel if r["gt_static"]]
        print(f"{'with' if use_mask else 'without':6s} {np.median(rots):17.3f} {np.median(tdirs):18.2f} "
              f"{sum(r['static'] for r in statics):>5d}/{len(statics):<4d} {len(sel):6d}")
        print(f"{'':6s} {'p90 rot':>17s} {np.percentile(rots, 90):.3f}  p90 tdir {np.percentile(tdirs, 90):.2f}")
    verdicts = {v: sum(r["verdict"] == v for r in rows) for v in ("reliable", "uncertain", "unreliable")}
    print(f"\nverdicts: {verdicts}")
    print(f"estimation speed ({args.method}, FOV {args.fov}): {frames_total / time_total:.1f} frames/s wall, "
          f"{frames_total / cpu_total:.1f} per CPU-second at {args.width}x{height} "
          f"({frames_total} frames, {os.cpu_count()} CPU cores visible)")


if __name__ == "__main__":
    main()
