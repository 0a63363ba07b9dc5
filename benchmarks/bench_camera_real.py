"""Camera estimation on real footage with ground-truth cameras: accuracy, focal, verdict and speed.

    python benchmarks/bench_camera_real.py [--kitti DIR] [--seven-scenes DIR] [--hololens DIR] [--tum DIR] [--nerf DIR]
                                           [--width 512] [--clip-frames 12]
                                           [--aspect 16:9] [--turn 90] [--method fast|accurate|colmap]
                                           [--focal estimated|given] [--reference-fit] [--json results.json]

Footage: give one or more of the flags; the readers, the sources and their licences are in
``camera_footage.py`` (none of it is copied into this repository, the benchmark reads the checkouts). Frames
are resized so that their longer side is ``--width``; ``--aspect`` crops and ``--turn`` turns them (same module).
``--clip-frames`` sets the length of the ``--nerf`` captures' clips (12 by default; a longer video is estimated as
one clip, which costs more per frame and drifts further).

Metrics (per clip), both trajectories expressed relative to their first frame, at the **last frame**:

- *relative* (``rot_rel``, ``tdir_rel``): rotation error (degrees) between the estimated and true rotation
  from the first to the last frame, and the angle between the estimated and true translation from the
  first to the last camera (no alignment needed: the first cameras coincide by construction and a
  direction has no scale);
- *aligned* (``rot_al``, ``tdir_al``, as in camera-control evaluations): the estimated camera centres are
  first aligned to the ground truth by a similarity transform (Umeyama; for a nearly straight path, whose
  roll about the path the centres cannot fix, by scale only). The alignment's rotation is fitted to the
  centres alone, so on short arcs it moves the rotation error by the path-shape error (see BENCHMARKS.md).

Also: focal error (%) when the focal is estimated, the verdict of the quality report, and estimation
frames/s (reading and resizing excluded) in wall-clock time and per second of process CPU time (on a shared
machine the CPU-time figure is what an idle machine would give). The summary is printed per footage and
over all clips. The JSON output adds the per-frame rotation error curve (relative) of every clip.

``--reference-fit`` (with ``--focal given``) also judges the reference and the estimate by how well they fit the
images, by COLMAP rather than by this package (:func:`pose_fit`: SIFT, exhaustive matching, COLMAP's triangulation
with the poses held fixed; the median reprojection error of its points): a reference that agrees with its images
fits about as well as the best estimate, or better.

``--method colmap`` runs no estimator of this package but COLMAP's own full pipeline (``pycolmap``: SIFT
features, exhaustive matching, incremental mapping; the calibration fixed with ``--focal given``) on the
same frames: a reference for how closely an established SfM system agrees with this ground truth. Give it
``--width 1226`` for KITTI's source resolution. Clips it cannot reconstruct completely are reported as failed.
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

from benchmarks.camera_footage import FOOTAGE, NERF_CLIP, centre_crop, turn_clockwise  # noqa: E402
from dynascene_core.camera import estimate_trajectory  # noqa: E402
from dynascene_core.camera.trajectory import CameraTrajectory, rotation_angle_deg  # noqa: E402
from dynascene_core.evaluation.camera_error import trajectory_error  # noqa: E402


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


def _poses(c2w: np.ndarray) -> CameraTrajectory:
    """Camera-to-world matrices as a trajectory (the intrinsics play no part in the errors)."""
    return CameraTrajectory(c2w, np.tile([1.0, 1.0, 0.5, 0.5], (len(c2w), 1)))


def _colmap_matches(frames: np.ndarray, intrinsics: np.ndarray | None, work: str) -> tuple[str, str]:
    """Write ``frames`` (F, H, W, 3) as ``work/images/0000.png`` …, extract COLMAP's SIFT features (one camera;
    ``intrinsics`` normalised, held as a PINHOLE camera, or None: COLMAP's own) and match every pair with two-view
    verification. Returns (image folder, database path)."""
    import pycolmap

    height, width = frames.shape[1:3]
    images = os.path.join(work, "images")
    os.makedirs(images)
    for index, frame in enumerate(frames):
        cv2.imwrite(os.path.join(images, f"{index:04d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    reader = pycolmap.ImageReaderOptions()
    if intrinsics is not None:
        reader.camera_model = "PINHOLE"
        reader.camera_params = ",".join(str(v) for v in intrinsics * [width, height, width, height])
    database = os.path.join(work, "database.db")
    pycolmap.extract_features(database, images, camera_mode=pycolmap.CameraMode.SINGLE, reader_options=reader,
                              device=pycolmap.Device.cpu)
    pycolmap.match_exhaustive(database, device=pycolmap.Device.cpu)
    return images, database


def colmap_reference(frames: np.ndarray, intrinsics: np.ndarray | None) -> np.ndarray | None:
    """COLMAP's full pipeline on ``frames`` (F, H, W, 3) → c2w ``(F, 4, 4)``, or None unless every frame is
    registered. ``intrinsics`` (normalised) are held fixed; None lets COLMAP refine its own focal."""
    import tempfile

    import pycolmap

    count = len(frames)
    with tempfile.TemporaryDirectory() as work:
        images, database = _colmap_matches(frames, intrinsics, work)
        options = pycolmap.IncrementalPipelineOptions()
        options.ba_refine_focal_length = intrinsics is None
        options.ba_refine_principal_point = False
        options.ba_refine_extra_params = False
        options.mapper.init_max_forward_motion = 1.0  # driving footage: forward motion is all there is
        options.mapper.init_min_tri_angle = 4.0
        models = pycolmap.incremental_mapping(database, images, work, options=options)
    if not models:
        return None
    model = max(models.values(), key=lambda m: m.num_reg_images())
    if model.num_reg_images() < count:
        return None
    c2w = np.tile(np.eye(4), (count, 1, 1))
    for image in model.images.values():
        c2w[int(image.name[:4]), :3] = np.linalg.inv(np.vstack([image.cam_from_world().matrix(), [0, 0, 0, 1]]))[:3]
    return c2w


def pose_fit(frames: np.ndarray, intrinsics: np.ndarray, poses: dict[str, np.ndarray]) -> dict[str, tuple[float, int]]:
    """How well each set of camera-to-world ``poses`` ``(F, 4, 4)`` fits the images ``frames`` (F, H, W, 3), judged by
    COLMAP and not by this package: SIFT features, exhaustive matching with two-view verification, then COLMAP's point
    triangulator with the poses and the ``intrinsics`` (normalised) held fixed. Returns, per set, the median
    reprojection error (px) of the triangulated points and their observation count: a reference that agrees with
    its images fits about as well as the best estimate does."""
    import tempfile

    import pycolmap

    height, width = frames.shape[1:3]
    pixels = intrinsics * [width, height, width, height]
    fits = {}
    with tempfile.TemporaryDirectory() as work:
        images, database = _colmap_matches(frames, intrinsics, work)
        db = pycolmap.Database.open(database)
        image_ids = {image.name: image.image_id for image in db.read_all_images()}
        camera_id = db.read_all_cameras()[0].camera_id
        db.close()
        for label, c2w in poses.items():
            rec = pycolmap.Reconstruction()
            rec.add_camera_with_trivial_rig(pycolmap.Camera(model="PINHOLE", width=width, height=height,
                                                            camera_id=camera_id, params=list(pixels)))
            for index, w2c in enumerate(np.linalg.inv(c2w)):
                name = f"{index:04d}.png"
                rec.add_image_with_trivial_frame(pycolmap.Image(name=name, camera_id=camera_id,
                                                                image_id=image_ids[name]),
                                                 pycolmap.Rigid3d(pycolmap.Rotation3d(w2c[:3, :3]), w2c[:3, 3]))
            points = pycolmap.triangulate_points(rec, database, images, work).points3D.values()
            errors = [point.error for point in points]
            fits[label] = (float(np.median(errors)) if errors else float("nan"),
                           sum(point.track.length() for point in points))
    return fits


def summarise(rows: list[dict]) -> None:
    """Median / p90 / worst of each error measure, focal error, verdicts and speed of ``rows``."""
    frames_total = sum(r["frames"] for r in rows)
    fps = frames_total / sum(r["frames"] / r["fps"] for r in rows)
    cpu_fps = frames_total / sum(r["frames"] / r["cpu_fps"] for r in rows)
    for key, label in (("rotation_deg", "rotation, relative (deg)"),
                       ("rotation_aligned_deg", "rotation, aligned (deg)"),
                       ("direction_deg", "translation dir., relative"),
                       ("direction_aligned_deg", "translation dir., aligned")):
        values = np.array([r[key] for r in rows])
        print(f"{label:28s} median {np.median(values):.3f}  p90 {np.percentile(values, 90):.3f}  "
              f"worst {values.max():.3f}")
    verdicts = {v: sum(r["verdict"] == v for r in rows) for v in ("reliable", "uncertain", "unreliable")}
    print(f"|focal error| (%) median {np.nanmedian([abs(r['focal_error_pct']) for r in rows]):.2f}; "
          f"verdicts {verdicts}; {fps:.1f} frames/s wall, {cpu_fps:.1f} per CPU-second")
    if "reference_fit_px" in rows[0]:
        reference, estimate = (np.array([r[f"{label}_fit_px"] for r in rows]) for label in ("reference", "estimate"))
        print(f"fit to the images (COLMAP, poses fixed): reference median {np.nanmedian(reference):.3f} px, estimate "
              f"{np.nanmedian(estimate):.3f} px; the reference fits better on {(reference < estimate).sum()} of "
              f"{np.isfinite(estimate).sum()} clips")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kitti", help="checkout of dawn-mathew/Visual-Odometry-KITTI-Sequence")
    parser.add_argument("--seven-scenes", help="the data/ folder of a checkout of andyzeng/tsdf-fusion-python")
    parser.add_argument("--hololens", help="sample-data/hololens-dataset/000 of a checkout of ardaduz/deep-video-mvs")
    parser.add_argument("--tum", help="a TUM RGB-D sequence folder (rgb.txt, rgb/, groundtruth.txt)")
    parser.add_argument("--nerf", help="a NeRF-style capture made from a video (transforms.json, images), e.g. "
                        "data/nerf/fox of NVlabs/instant-ngp")
    parser.add_argument("--width", type=int, default=512, help="the frames' longer side")
    parser.add_argument("--clip-frames", type=int, default=NERF_CLIP, help="frames per clip of the --nerf captures")
    parser.add_argument("--aspect", default=None, help="crop the frames about their centre to W:H, e.g. 16:9")
    parser.add_argument("--turn", type=int, choices=(0, 90, 180, 270), default=0,
                        help="then turn the frames (and cameras) that many degrees clockwise")
    parser.add_argument("--method", choices=("fast", "accurate", "colmap"), default="fast",
                        help="colmap: COLMAP's full pipeline as a reference (not this package's estimator)")
    parser.add_argument("--focal", choices=("estimated", "given"), default="estimated")
    parser.add_argument("--reference-fit", action="store_true",
                        help="also judge how well the reference and the estimate fit the images (COLMAP's "
                             "triangulation with the poses held fixed; needs --focal given)")
    parser.add_argument("--json", default=None, help="write per-clip results here")
    args = parser.parse_args()
    if args.clip_frames < 2:
        parser.error(f"--clip-frames must be at least 2, got {args.clip_frames}")
    if args.reference_fit and args.focal != "given":
        parser.error("--reference-fit judges poses with the given calibration: add --focal given")
    footage = [(key, getattr(args, key)) for key in FOOTAGE if getattr(args, key)]
    if not footage:
        parser.error("give at least one of --kitti, --seven-scenes, --hololens, --tum, --nerf")
    aspect = None
    if args.aspect:
        parts = args.aspect.split(":")
        if len(parts) != 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
            parser.error(f"--aspect must be W:H with positive integers, got {args.aspect!r}")
        aspect = (int(parts[0]), int(parts[1]))

    clip_length = {"nerf": {"clip_frames": args.clip_frames}}  # the other footages' clips are fixed (camera_footage)
    rows = []
    print(f"{'clip':22s} {'rot_rel':>7s} {'rot_al':>7s} {'tdir_rel':>8s} {'tdir_al':>7s} {'focal_err%':>10s} "
          f"{'verdict':>10s} {'reproj_px':>9s} {'fps':>6s} {'cpu_fps':>7s}")
    for source, name, frames, gt_c2w, intrinsics in ((key, *clip) for key, root in footage
                                                     for clip in FOOTAGE[key](root, args.width,
                                                                              **clip_length.get(key, {}))):
        if aspect:
            frames, intrinsics = centre_crop(frames, intrinsics, aspect)
        frames, gt_c2w, intrinsics = turn_clockwise(frames, gt_c2w, intrinsics, args.turn)
        given = intrinsics if args.focal == "given" else None
        start, start_cpu = time.perf_counter(), time.process_time()
        if args.method == "colmap":
            est_c2w, q = colmap_reference(frames, given), None
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                est, stats = estimate_trajectory(frames, None, intrinsics=given, method=args.method)
            est_c2w, q = est.c2w.numpy(), stats.quality
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - start_cpu
        if est_c2w is None:
            print(f"{name:22s} failed: COLMAP did not register every frame")
            continue
        relative = trajectory_error(_poses(gt_c2w), _poses(est_c2w))  # both relative to their first frame
        curve, dir_rel = relative.rotation_deg, float(relative.direction_deg[-1])
        if np.isnan(dir_rel):  # the estimate has no translation (taken for a pure rotation): 90° off
            dir_rel = 90.0
        rot_al, dir_al = last_frame_errors(gt_c2w, est_c2w)
        focal_err = 100 * (q.focal_px / (intrinsics[0] * frames.shape[2]) - 1) if q else float("nan")
        rows.append(dict(footage=source, clip=name, frames=len(frames), rotation_deg=float(curve[-1]),
                         rotation_aligned_deg=rot_al, direction_deg=dir_rel, direction_aligned_deg=dir_al,
                         focal_error_pct=focal_err,
                         verdict=q.verdict if q else "-", reprojection_px=q.reprojection_px if q else float("nan"),
                         fps=len(frames) / seconds, cpu_fps=len(frames) / cpu_seconds,
                         rotation_curve_deg=curve.round(4).tolist(), quality=q.to_dict() if q else None))
        r = rows[-1]
        fit = ""
        if args.reference_fit:
            fits = pose_fit(frames, intrinsics, {"reference": gt_c2w, "estimate": est_c2w})
            for label, (px, observations) in fits.items():
                r[f"{label}_fit_px"], r[f"{label}_fit_observations"] = px, observations
            fit = f" fit: reference {fits['reference'][0]:.3f} px, estimate {fits['estimate'][0]:.3f} px"
        print(f"{name:22s} {r['rotation_deg']:7.3f} {rot_al:7.3f} {dir_rel:8.3f} {dir_al:7.3f} {focal_err:10.2f} "
              f"{r['verdict']:>10s} {r['reprojection_px']:9.3f} {r['fps']:6.1f} {r['cpu_fps']:7.1f}{fit}")
    if not rows:
        return

    groups = [(key, [r for r in rows if r["footage"] == key]) for key, _ in footage]
    for label, group in [g for g in groups if g[1]] + ([("all", rows)] if len(footage) > 1 else []):
        print(f"-- {label}: {len(group)} clips")
        summarise(group)
    print(f"({args.method}, focal {args.focal}, width {args.width}{f', cropped to {args.aspect}' if aspect else ''}"
          f"{f', turned {args.turn} deg' if args.turn else ''}"
          f"{f', {args.clip_frames}-frame clips of --nerf' if args.clip_frames != NERF_CLIP else ''}, "
          f"{os.cpu_count()} CPUs visible)")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(rows, handle, indent=1)


if __name__ == "__main__":
    main()
