"""Command line for weight files (run from the repository root).

``python -m dynascene_core.checkpoints inspect FILE [--json]``: what a weight file is and whether it
loads. Prints JSON: detected format, what it can be loaded as, tensor count, and the result of a
dry-run load into the full-size (``sd15``) DynaScene models on the meta device (no memory for
weights): missing / unexpected key counts and the first few. Exit status 0 when loadable, 1 otherwise
(then the reason is also printed as one ``error:`` line on stderr).

``python -m dynascene_core.checkpoints merge [FILE ...] [--sd15 F] [--motion-module F] [--cameractrl F]
[--vae F] [--clip F] [--dynascene F ...] --out full.safetensors [--groups G ...]``: assemble the files
(positional FILEs are routed by detected kind) and write one DynaScene file. Exit status 0 when
written, 1 with the reason (missing parts, wrong file, output is an input) otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys

from ..cli import CommandParser, run_command
from .assemble import ModelFiles
from .dynascene_format import read_dynascene_header
from .inspect import inspect_file


def merge(args: argparse.Namespace) -> int:
    from .merge import merge_files

    files = ModelFiles.from_paths(args.files, widen_conv_in=args.widen_conv_in)
    for kind, path in (("sd15_inpainting", args.sd15), ("motion_module", args.motion_module),
                       ("cameractrl", args.cameractrl), ("vae", args.vae), ("image_encoder", args.clip)):
        if path is not None:
            files.add(path, kind)
    for path in args.dynascene:
        files.add(path, "dynascene")
    assembled, keys = merge_files(files, args.out, args.groups)
    print(assembled.summary())
    written = read_dynascene_header(args.out)[1]
    initial = [g for g in written if g not in assembled.loaded_groups]
    if initial:
        print(f"written with their initial values (no file provided them): {', '.join(initial)}")
    print(f"wrote {args.out}: {len(keys)} tensors, groups {', '.join(written)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_command(_main, argv)


def _main(argv: list[str]) -> int:
    parser = CommandParser(prog="python -m dynascene_core.checkpoints")
    sub = parser.add_subparsers(dest="command", required=True)
    ins = sub.add_parser("inspect", help="detect a weight file's format and dry-run loading it")
    ins.add_argument("file")
    ins.add_argument("--json", action="store_true", help="compact one-line JSON (default: indented)")
    mrg = sub.add_parser("merge", help="assemble model files into one DynaScene file")
    mrg.add_argument("files", nargs="*", help="weight files of any kind, routed by their detected format")
    mrg.add_argument("--sd15", help="SD1.5-inpainting checkpoint or diffusers folder")
    mrg.add_argument("--motion-module", help="AnimateDiff motion module (mm_sd_v15_v2.ckpt)")
    mrg.add_argument("--cameractrl", help="CameraCtrl checkpoint")
    mrg.add_argument("--vae", help="SD VAE (sd-vae-ft-mse)")
    mrg.add_argument("--clip-vision", "--clip", dest="clip", help="CLIP ViT-L/14 image encoder")
    mrg.add_argument("--dynascene", nargs="+", default=[], help="DynaScene files (e.g. stage-I and stage-II output)")
    mrg.add_argument("--out", required=True, help="the DynaScene file to write (not one of the inputs)")
    mrg.add_argument("--groups", nargs="+", help="parameter groups to write (default: all); each must come from a file")
    mrg.add_argument("--widen-conv-in", action="store_true", help="accept a 4-channel SD1.5 U-Net (extra inputs zero)")
    args = parser.parse_args(argv)
    if args.command == "merge":
        return merge(args)
    result = inspect_file(args.file)
    print(json.dumps(result, indent=None if args.json else 2))
    if not result["loadable"]:
        print(f"error: {result['error'].splitlines()[0]}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
