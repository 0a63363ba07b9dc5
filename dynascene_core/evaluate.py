"""Evaluate generated videos against ground truth: ``python -m dynascene_core.evaluate GENERATED GROUND_TRUTH``.

GENERATED and GROUND_TRUTH are folders of videos (``NAME.mp4`` …) or frame folders (``NAME/``), matched by
name. ``--masks DIR`` (matte videos, white = person, same names) restricts the metrics to the background;
``--cameras DIR`` (``NAME.txt`` pose files, RealEstate10K or TUM: the trajectories that conditioned the
generation) adds the camera-following error. Backbone weights (FID, FVD, LPIPS) are files in
``--weights-dir`` (default ``models/evaluation/``); metrics whose file is missing are skipped and the
report says why (asking for one with ``--metrics`` makes a missing file an error).

Prints a table in the layout of the paper's tables and, with ``--json``, writes the full report.
Exit status: 0 done, 2 bad input or missing weight file.
"""

from __future__ import annotations

import argparse
import logging
import sys

from .evaluation import DEFAULT_WEIGHTS_DIR, METRICS


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m dynascene_core.evaluate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("generated", help="folder of generated videos or frame folders")
    p.add_argument("ground_truth", help="folder of ground-truth videos or frame folders (same names)")
    p.add_argument("--masks", help="folder of human matte videos (white = person, same names): background-only metrics")
    p.add_argument("--cameras", help="folder of pose files NAME.txt (the conditioning trajectories): camera error")
    p.add_argument("--weights-dir", default=DEFAULT_WEIGHTS_DIR,
                   help=f"folder with the backbone weight files (default {DEFAULT_WEIGHTS_DIR})")
    p.add_argument("--metrics", nargs="+", choices=METRICS, default=None,
                   help="metrics to compute (default: every one whose inputs exist)")
    p.add_argument("--json", help="write the full report (JSON) here")
    p.add_argument("--label", default="generated", help="row label in the printed table")
    p.add_argument("--lpips-net", choices=("alex", "vgg"), default="alex", help="LPIPS backbone (default alex)")
    p.add_argument("--fvd-frames", type=int, default=16, help="frames per FVD sample window (default 16)")
    p.add_argument("--batch-size", type=int, default=16, help="frames per backbone batch")
    p.add_argument("--camera-fov", type=float, default=None,
                   help="field of view (degrees, long side) for the camera estimate; default: the pose file's")
    p.add_argument("--device", default=None, help="cuda / cpu (default: cuda when available)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    from .evaluation import EvaluationInputError, MissingWeightsError, evaluate_folders
    from .evaluation.backbones import BackboneError
    from .video import VideoError

    args = parse_args(argv)
    if args.fvd_frames < 1 or args.batch_size < 1:
        print("error: --fvd-frames and --batch-size must be >= 1", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        report = evaluate_folders(args.generated, args.ground_truth, args.masks, args.cameras, args.metrics,
                                  weights_dir=args.weights_dir, device=args.device, lpips_net=args.lpips_net,
                                  fvd_frames=args.fvd_frames, batch_size=args.batch_size,
                                  camera_fov_deg=args.camera_fov)
    except (EvaluationInputError, MissingWeightsError, BackboneError, VideoError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(report.table(args.label))
    if args.json:
        report.write_json(args.json)
        print(f"report: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
