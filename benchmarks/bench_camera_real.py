"""Camera estimation on real footage with ground-truth cameras: accuracy, focal, verdict and speed.

    python benchmarks/bench_camera_real.py --kitti DIR [--width 512] [--method fast|accurate]
                                           [--focal estimated|given] [--json results.json]

Footage: the two 50-frame KITTI odometry excerpts (``KITTI_sequence_1``, ``KITTI_sequence_2``: left
grey camera ``image_l/``, ``poses.txt`` camera-to-world 3×4 rows from the GPS/INS ground truth,
``calib.txt`` projection matrices) shipped in the public repository
``github.com/dawn-mathew/Visual-Odometry-KITTI-Sequence``; ``DIR`` is a checkout of it. KITTI is
© Geiger et al., licensed CC BY-NC-SA 3.0 (non-commercial research use), so the frames are not copied
into this repository; the benchmark reads them from the checkout.

Clips: each sequence is cut into 25-frame clips: frames 0-24 and 25-49 at the recorded rate, and every
second frame of 0-49 (twice the motion per frame) — six clips. Frames are resized to ``--width``.

Metrics (per clip, as in camera-control evaluations): both trajectories are expressed relative to their
first frame, the estimated camera centres are aligned to the ground truth by a similarity transform
(Umeyama; for a nearly straight path, whose roll about the path the centres cannot fix, by scale only,
the first cameras being identical already), then at the **last frame**: rotation error (degrees) and the angle between the estimated and
true translation directions (degrees). Also: focal error (%) when the focal is estimated, the verdict
of the quality report, and estimation frames/s (reading and resizing excluded) in wall-clock time and per
second of process CPU time (the estimator is single-threaded; on a shared machine the CPU-time figure is
what an idle core would give).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from dynascene_core.camera import estimate_trajectory  # noqa: E402
from dynascene_core.camera.trajectory import rotation_angle_deg  # noqa: E402

SEQUENCES = ("KITTI_sequence_1", "KITTI_sequence_2")
CLIP_FRAMES = 25


def read_kitti(folder: str, width: int):
    """(frames (F, H, W, 3) uint8 at ``width``, c2w (F, 4, 4), normalised intrinsics (fx, fy, cx, cy))."""
    poses = np.loadtxt(os.path.join(folder, "poses.txt")).reshape(-1, 3, 4)
    c2w = np.tile(np.eye(4), (len(poses), 1, 1))
    c2w[:, :3] = poses
    names = sorted(os.listdir(os.path.join(folder, "image_l")))[:len(poses)]
    frames = []
    for name in names:
        grey = cv2.imread(os.path.join(folder, "image_l", name), cv2.IMREAD_GRAYSCALE)
        src_h, src_w = grey.shape
        height = int(round(src_h * width / src_w))
        frames.append(cv2.cvtColor(cv2.resize(grey, (width, height), interpolation=cv2.INTER_AREA),
                                   cv2.COLOR_GRAY2RGB))
    projection = np.loadtxt(os.path.join(folder, "calib.txt"))[0].reshape(3, 4)
    intrinsics = np.array([projection[0, 0] / src_w, projection[1, 1] / src_h,
                           projection[0, 2] / src_w, projection[1, 2] / src_h])
    return np.stack(frames), c2w, intrinsics


def clips(root: str, width: int):
    for sequence in SEQUENCES:
        frames, c2w, intrinsics = read_kitti(os.path.join(root, sequence), width)
        short = sequence.replace("KITTI_sequence_", "kitti")
        for name, index in ((f"{short}_0-24", np.arange(0, CLIP_FRAMES)),
                            (f"{short}_25-49", np.arange(CLIP_FRAMES, 2 * CLIP_FRAMES)),
                            (f"{short}_0-48x2", np.arange(0, 2 * CLIP_FRAMES, 2))):
            yield name, frames[index], c2w[index], intrinsics


def umeyama(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Similarity (s, R, t) minimising Σ|dst − (s R src + t)|² for point sets ``(N, 3)``."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    a, b = src - mu_s, dst - mu_d
    u, sigma, vt = np.linalg.svd(b.T @ a / len(src))
    d = np.diag([1, 1, np.sign(np.linalg.det(u @ vt))])
    rot = u @ d @ vt
    var = (a ** 2).sum() / len(src)
    scale = float(np.trace(np.diag(sigma) @ d) / var) if var > 1e-12 else 1.0
    return scale, rot, mu_d - scale * rot @ mu_s


def last_frame_errors(gt_c2w: np.ndarray, est_c2w: np.ndarray) -> tuple[float, float]:
    """(rotation error deg, translation-direction error deg) at the last frame after similarity alignment."""
    gt = np.linalg.inv(gt_c2w[0]) @ gt_c2w
    est = np.linalg.inv(est_c2w[0]) @ est_c2w
    spread = np.linalg.svd(gt[:, :3, 3] - gt[:, :3, 3].mean(0), compute_uv=False)
    if np.linalg.norm(est[:, :3, 3], axis=1).max() < 1e-9:  # no estimated translation: nothing to align
        scale, rot, shift = 1.0, np.eye(3), np.zeros(3)
    elif spread[1] > 0.05 * spread[0]:
        scale, rot, shift = umeyama(est[:, :3, 3], gt[:, :3, 3])
    else:  # straight-line path: the roll about it is not observable from positions; scale only
        scale = float(np.sum(est[:, :3, 3] * gt[:, :3, 3]) / np.sum(est[:, :3, 3] ** 2))
        rot, shift = np.eye(3), np.zeros(3)
    rot_err = float(rotation_angle_deg(gt[-1, :3, :3], rot @ est[-1, :3, :3]))
    t_gt = gt[-1, :3, 3]
    t_est = scale * rot @ est[-1, :3, 3] + shift
    cos = t_gt @ t_est / (np.linalg.norm(t_gt) * np.linalg.norm(t_est) + 1e-12)
    return rot_err, float(np.degrees(np.arccos(np.clip(cos, -1, 1))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kitti", required=True, help="checkout of Visual-Odometry-KITTI-Sequence")
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--method", choices=("fast", "accurate"), default="fast")
    parser.add_argument("--focal", choices=("estimated", "given"), default="estimated")
    parser.add_argument("--json", default=None, help="write per-clip results here")
    args = parser.parse_args()

    rows = []
    print(f"{'clip':18s} {'rot_deg':>8s} {'tdir_deg':>9s} {'focal_err%':>10s} {'motion':>8s} {'verdict':>10s} "
          f"{'reproj_px':>9s} {'fps':>6s} {'cpu_fps':>7s}")
    for name, frames, gt_c2w, intrinsics in clips(args.kitti, args.width):
        given = intrinsics if args.focal == "given" else None
        start, start_cpu = time.perf_counter(), time.process_time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est, stats = estimate_trajectory(frames, None, intrinsics=given, method=args.method)
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - start_cpu
        rot_err, dir_err = last_frame_errors(gt_c2w, est.c2w.numpy())
        q = stats.quality
        true_focal = intrinsics[0] * frames.shape[2]
        focal_err = 100 * (q.focal_px / true_focal - 1)
        rows.append(dict(clip=name, rotation_deg=rot_err, direction_deg=dir_err, focal_error_pct=focal_err,
                         motion=q.motion, verdict=q.verdict, reprojection_px=q.reprojection_px,
                         fps=len(frames) / seconds, cpu_fps=len(frames) / cpu_seconds, quality=q.to_dict()))
        print(f"{name:18s} {rot_err:8.3f} {dir_err:9.3f} {focal_err:10.2f} {q.motion:>8s} {q.verdict:>10s} "
              f"{q.reprojection_px:9.3f} {len(frames) / seconds:6.1f} {len(frames) / cpu_seconds:7.1f}")

    def stat(key):
        values = np.array([r[key] for r in rows])
        return np.median(values), np.percentile(values, 90), values.max()

    frames_total = CLIP_FRAMES * len(rows)
    fps = frames_total / sum(CLIP_FRAMES / r["fps"] for r in rows)
    cpu_fps = frames_total / sum(CLIP_FRAMES / r["cpu_fps"] for r in rows)
    for key, label in (("rotation_deg", "rotation error (deg)"), ("direction_deg", "translation direction (deg)")):
        med, p90, worst = stat(key)
        print(f"{label:28s} median {med:.3f}  p90 {p90:.3f}  worst {worst:.3f}")
    print(f"|focal error| (%) median {np.median([abs(r['focal_error_pct']) for r in rows]):.2f}; "
          f"verdicts {[r['verdict'] for r in rows]}; {fps:.1f} frames/s wall, {cpu_fps:.1f} per CPU-second "
          f"({args.method}, focal {args.focal}, width {args.width}, {os.cpu_count()} CPUs visible)")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(rows, handle, indent=1)


if __name__ == "__main__":
    main()
