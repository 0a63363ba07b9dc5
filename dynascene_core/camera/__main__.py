"""Camera command line.

``python -m dynascene_core.camera estimate VIDEO [--mask MASK_VIDEO] [--fov DEG | --intrinsics FILE] --out poses.txt``
(also writes ``poses.quality.json``, the quality report)
``python -m dynascene_core.camera preset NAME[+NAME...] --frames N [--speed S] [--easing E] --out poses.txt``
``python -m dynascene_core.camera plot POSES --out plot.png``
``python -m dynascene_core.camera demo --out clip.mp4 [--preset NAME] [--poses-out poses.txt]``
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings


def _estimate(args) -> None:
    from ..video import matte_from_frames, read_video
    from .estimate import estimate_trajectory

    video = read_video(args.video, max_frames=args.max_frames, stride=args.stride)
    masks = None
    if args.mask:
        mask_video = read_video(args.mask, max_frames=args.max_frames, stride=args.stride)
        masks = matte_from_frames(mask_video.frames)
        if len(masks) != len(video.frames):
            raise SystemExit(f"error: {args.mask} has {len(masks)} frames but {args.video} has {len(video.frames)}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trajectory, stats = estimate_trajectory(video.frames, masks, args.fov, intrinsics=args.intrinsics,
                                                focal_search=args.focal_search)
    for warning in caught:
        print(f"warning: {warning.message}", file=sys.stderr)
    trajectory.save(args.out, format=args.format)
    report_path = quality_path(args.out)
    with open(report_path, "w", encoding="utf-8") as handle:
        json.dump(stats.quality.to_dict(), handle, indent=2)
    print(f"{args.out}: {len(trajectory)} poses; quality report {report_path}")
    print(stats.quality.summary())


def quality_path(pose_path: str) -> str:
    """Where the CLI writes a pose file's quality report: ``poses.txt`` → ``poses.quality.json``."""
    return os.path.splitext(pose_path)[0] + ".quality.json"


def _preset(args) -> None:
    from .presets import make_preset

    trajectory = make_preset(args.name, args.frames, speed=args.speed, easing=args.easing)
    trajectory.save(args.out, format=args.format)
    print(f"{args.out}: {len(trajectory)} poses ({args.name})")


def _plot(args) -> None:
    import cv2

    from .plot import plot_trajectory
    from .trajectory import CameraTrajectory

    image = plot_trajectory(CameraTrajectory.load(args.poses), size=(args.width, args.height))
    if not cv2.imwrite(args.out, image[..., ::-1]):
        raise SystemExit(f"error: could not write {args.out}")
    print(f"{args.out}: {image.shape[1]}x{image.shape[0]}")


def _demo(args) -> None:
    from ..video import write_video
    from .synthetic import demo_clip

    clip = demo_clip(args.frames, args.height, args.width, preset=args.preset, seed=args.seed)
    write_video(args.out, clip.frames, fps=args.fps)
    if args.poses_out:
        clip.trajectory.save(args.poses_out)
    print(f"{args.out}: {len(clip.frames)} frames {args.width}x{args.height} ({args.preset})")


def main(argv: list[str] | None = None) -> int:
    from .estimate import DEFAULT_FOV_DEG
    from .presets import EASINGS, PRESET_NAMES

    parser = argparse.ArgumentParser(prog="python -m dynascene_core.camera", description="DynaScene camera tools")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("estimate", help="estimate the camera of a video (human masked out) -> pose file")
    p.add_argument("video", help="video file or frame folder")
    p.add_argument("--mask", help="mask video/folder, any channel > 127 = human (excluded)")
    p.add_argument("--fov", type=float, default=None,
                   help=f"field of view across the longer side, degrees (default {DEFAULT_FOV_DEG:g})")
    p.add_argument("--intrinsics", default=None,
                   help="intrinsics file: JSON {fx, fy, cx, cy, width, height} in pixels, or COLMAP cameras.txt")
    p.add_argument("--focal-search", action="store_true", help="choose the FOV by reprojection error")
    p.add_argument("--max-frames", type=int, default=None)
    p.add_argument("--stride", type=int, default=1, help="keep every n-th frame")
    p.add_argument("--format", choices=("realestate10k", "tum"), default="realestate10k")
    p.add_argument("--out", required=True)
    p.set_defaults(func=_estimate)

    p = sub.add_parser("preset", help="write a designed camera motion as a pose file")
    p.add_argument("name", help=f"one of {', '.join(PRESET_NAMES)}; combine with '+' (dolly_in+pan_right)")
    p.add_argument("--frames", type=int, default=24)
    p.add_argument("--speed", type=float, default=1.0)
    p.add_argument("--easing", choices=EASINGS, default="linear")
    p.add_argument("--format", choices=("realestate10k", "tum"), default="realestate10k")
    p.add_argument("--out", required=True)
    p.set_defaults(func=_preset)

    p = sub.add_parser("plot", help="draw a pose file (top and side view) as a PNG")
    p.add_argument("poses")
    p.add_argument("--width", type=int, default=768)
    p.add_argument("--height", type=int, default=384)
    p.add_argument("--out", required=True)
    p.set_defaults(func=_plot)

    p = sub.add_parser("demo", help="render a synthetic demo clip with a known camera")
    p.add_argument("--preset", default="orbit_left")
    p.add_argument("--frames", type=int, default=24)
    p.add_argument("--width", type=int, default=512)
    p.add_argument("--height", type=int, default=288)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fps", type=float, default=8.0)
    p.add_argument("--poses-out", default=None, help="also write the ground-truth pose file")
    p.add_argument("--out", required=True)
    p.set_defaults(func=_demo)

    args = parser.parse_args(argv)
    try:
        args.func(args)
    except (ValueError, OSError) as exc:  # PoseFileError / VideoError are ValueErrors naming the file
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
