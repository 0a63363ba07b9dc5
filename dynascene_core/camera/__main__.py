"""Camera command line.

``python -m dynascene_core.camera estimate VIDEO [--mask MASK_VIDEO] [--fov DEG | --intrinsics FILE]
[--method fast|accurate] [--readout R] [--readout-direction down|up|right|left] [--longer-side PX] --out poses.txt``
(also writes ``poses.quality.json``, the quality report)
``python -m dynascene_core.camera preset NAME[+NAME...] --frames N [--speed S] [--easing E] --out poses.txt``
``python -m dynascene_core.camera plot POSES --out plot.png``
``python -m dynascene_core.camera demo --out clip.mp4 [--mask-out mask.mp4] [--preset NAME] [--poses-out poses.txt]``

Every command takes ``--verbose`` (full error details); files are written atomically.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings

import numpy as np

from ..cli import CommandParser, progress_callback, run_command
from ..io_utils import atomic_open


def _longer_side(text: str) -> int:
    """``--longer-side``: 0 (the video's own size) or at least ``SMALLEST_SIDE`` pixels (checked before the video is
    read)."""
    from .estimate import SMALLEST_SIDE

    value = int(text)
    if value != 0 and value < SMALLEST_SIDE:
        raise argparse.ArgumentTypeError(f"must be 0 or at least {SMALLEST_SIDE} pixels, got {value}")
    return value


def _readout(text: str) -> float:
    """``--readout``: frame intervals in [0, 2] (checked before the video is read)."""
    value = float(text)
    from .rolling_shutter import MAX_READOUT

    if not 0 <= value <= MAX_READOUT:
        raise argparse.ArgumentTypeError(f"must be 0-{MAX_READOUT:g} frame intervals, got {text}")
    return value


def _direction(text: str) -> str:
    """``--readout-direction``: a key of :data:`.rolling_shutter.DIRECTIONS`."""
    from .rolling_shutter import DIRECTIONS

    if text not in DIRECTIONS:
        raise argparse.ArgumentTypeError(f"must be one of {', '.join(DIRECTIONS)}, got {text}")
    return text


def _read_reduced(path: str, args, mask: bool = False):
    """The frames of a video file or frame folder, each chunk reduced to ``--longer-side`` as it is read (a 4K video
    is never held whole at its size): ``(F, h, w, 3)`` uint8, or for a mask video ``(F, h, w)`` bool (thresholded and
    reduced as the estimator does masks); and the source's ``(width, height)``."""
    from ..video import VideoError, iter_frames, matte_from_frames
    from .tracks import as_masks, reduced_frames, reduced_masks

    side = args.longer_side or None
    parts, size = [], None
    for chunk in iter_frames(path, chunk=8, stride=args.stride, max_frames=args.max_frames):
        size = chunk.shape[2:0:-1]
        if mask:
            human = as_masks(matte_from_frames(chunk), chunk)  # the estimator's rule: over half the channels' mean
            parts.append(human if side is None else reduced_masks(human, side))
        else:
            parts.append(chunk if side is None else reduced_frames(chunk, side))
    if not parts:
        raise VideoError(f"{path}: video has no frames")
    return np.concatenate(parts), size


def _estimate(args) -> None:
    from .estimate import estimate_trajectory

    frames, size = _read_reduced(args.video, args)
    masks = None
    if args.mask:
        masks, mask_size = _read_reduced(args.mask, args, mask=True)
        if mask_size != size:
            raise ValueError(f"{args.mask} is {mask_size[0]}x{mask_size[1]} but {args.video} is {size[0]}x{size[1]}")
        if len(masks) != len(frames):
            raise ValueError(f"{args.mask} has {len(masks)} frames but {args.video} has {len(frames)}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trajectory, stats = estimate_trajectory(frames, masks, args.fov, intrinsics=args.intrinsics,
                                                method=args.method, readout=args.readout,
                                                readout_direction=args.readout_direction,
                                                progress=progress_callback("camera tracking", "frame"))
    for warning in caught:
        print(f"warning: {warning.message}", file=sys.stderr)
    trajectory.save(args.out, format=args.format)
    report_path = quality_path(args.out)
    with atomic_open(report_path) as handle:
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
    from ..video import write_image
    from .plot import plot_trajectory
    from .trajectory import CameraTrajectory

    image = plot_trajectory(CameraTrajectory.load(args.poses), size=(args.width, args.height))
    write_image(args.out, image)
    print(f"{args.out}: {image.shape[1]}x{image.shape[0]}")


def _demo(args) -> None:
    from ..video import write_video
    from .synthetic import demo_clip

    clip = demo_clip(args.frames, args.height, args.width, preset=args.preset, seed=args.seed)
    write_video(args.out, clip.frames, fps=args.fps)
    written = [args.out]
    if args.mask_out:  # white = person, the matte --mask of `estimate` and `generate` reads
        write_video(args.mask_out, np.repeat((clip.masks[..., None] * 255).round().astype(np.uint8), 3, -1),
                    fps=args.fps)
        written.append(args.mask_out)
    if args.poses_out:
        clip.trajectory.save(args.poses_out)
        written.append(args.poses_out)
    print(f"{', '.join(written)}: {len(clip.frames)} frames {args.width}x{args.height} ({args.preset})")


def main(argv: list[str] | None = None) -> int:
    """Exit status 0 on success, 1 with one ``error:`` line for bad input, 2 for a bad command line."""
    return run_command(_main, argv)


def _main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    args.func(args)
    return 0


def build_parser() -> CommandParser:
    from .estimate import DEFAULT_FOV_DEG, ESTIMATION_SIDE
    from .presets import EASINGS, PRESET_NAMES, canonical_easing
    from .quality import LONG_KLT_FRAMES

    parser = CommandParser(prog="python -m dynascene_core.camera", description="DynaScene camera tools")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("estimate", help="estimate the camera of a video (human masked out) -> pose file")
    p.add_argument("video", help="video file or frame folder")
    p.add_argument("--mask", help="mask video/folder, any channel > 127 = human (excluded)")
    p.add_argument("--fov", type=float, default=None,
                   help="field of view across the longer side, degrees (default: estimated from the video)")
    p.add_argument("--intrinsics", default=None,
                   help="intrinsics file: JSON {fx, fy, cx, cy, width, height} in pixels, COLMAP cameras.txt, or a "
                        "RealEstate10K pose file (its first frame's)")
    p.add_argument("--method", choices=("fast", "accurate"), default="fast",
                   help="fast: KLT tracks, or SIFT matches 4 frames apart on clips of more than "
                        f"{LONG_KLT_FRAMES} frames (KLT drifts there); accurate: SIFT matches up to 12 frames apart, "
                        "every track adjusted, three focal starts; slower")
    p.add_argument("--readout", type=_readout, default=None,
                   help="rolling-shutter readout in frame intervals of the (strided) clip; 0 for a global shutter "
                        "(default: found from the video)")
    p.add_argument("--readout-direction", type=_direction, default=None,
                   help="where the readout goes in the picture: down (rows top to bottom), up (a camera held "
                        "upside down), right or left (columns: portrait video from a turned phone); default: found "
                        "from the video")
    p.add_argument("--longer-side", type=_longer_side, default=ESTIMATION_SIDE,
                   help="reduce the frames to this longer side (pixels) for the estimate; 0: the video's own size "
                        f"(default: {ESTIMATION_SIDE}, the size the estimator was tuned and timed at; larger is slower "
                        "and not reliably better)")
    p.add_argument("--max-frames", type=int, default=None)
    p.add_argument("--stride", type=int, default=1, help="keep every n-th frame")
    p.add_argument("--format", choices=("realestate10k", "tum"), default="realestate10k")
    p.add_argument("--out", required=True)
    p.set_defaults(func=_estimate)

    p = sub.add_parser("preset", help="write a designed camera motion as a pose file")
    p.add_argument("name", help=f"one of {', '.join(PRESET_NAMES)}; combine with '+' (dolly_in+pan_right)")
    p.add_argument("--frames", type=int, default=24)
    p.add_argument("--speed", type=float, default=1.0)
    p.add_argument("--easing", type=canonical_easing, choices=EASINGS, default="linear",
                   help="timing of the move (ease-in style spellings are accepted too)")
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
    p.add_argument("--mask-out", default=None, help="also write the actor's matte video (white = person), "
                                                     "for estimate --mask or generate --mask")
    p.add_argument("--out", required=True)
    p.set_defaults(func=_demo)
    return parser


if __name__ == "__main__":
    raise SystemExit(main())
