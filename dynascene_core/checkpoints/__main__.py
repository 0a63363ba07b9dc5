"""``python -m dynascene_core.checkpoints inspect FILE [--json]``: what a weight file is and whether it loads.

Prints JSON: detected format, what it can be loaded as, tensor count, and the result of a dry-run load
into the full-size (``sd15``) DynaScene models on the meta device (no memory for weights): missing /
unexpected key counts and the first few. Exit status 0 when loadable, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys

from .inspect import inspect_file


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dynascene_core.checkpoints")
    sub = parser.add_subparsers(dest="command", required=True)
    ins = sub.add_parser("inspect", help="detect a weight file's format and dry-run loading it")
    ins.add_argument("file")
    ins.add_argument("--json", action="store_true", help="compact one-line JSON (default: indented)")
    args = parser.parse_args(argv)
    result = inspect_file(args.file)
    print(json.dumps(result, indent=None if args.json else 2))
    return 0 if result["loadable"] else 1


if __name__ == "__main__":
    sys.exit(main())
