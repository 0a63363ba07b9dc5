"""What every command line of the pack shares: one-line errors, ``--verbose`` and progress bars.

A command joins by building its parser with :class:`CommandParser` and running its work through
:func:`run_command`::

    def main(argv=None) -> int:
        return run_command(_main, argv)      # _main(argv) parses with CommandParser and does the work

Bad input (a :class:`ValueError` such as ``CheckpointError``, ``VideoError``, ``PoseFileError``, or an
``OSError`` such as a missing file) then ends the command with exit status 1 and one line
``error: <message naming the file>`` on stderr, no traceback; ``--verbose`` adds the traceback and any
``detail`` the error carries (e.g. ffmpeg's output). Command-line mistakes exit with status 2 and one
``<prog>: error: ...`` line. Ctrl-C exits with status 130.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from typing import Callable, Sequence

USER_ERRORS = (ValueError, OSError)
"""Exceptions that mean bad input rather than a bug: every error type of the pack naming a file or value
(``CheckpointError``, ``VideoError``, ``PoseFileError``, ``ClipError``, ``ConfigError``, ...) is a ValueError."""

VERBOSE_FLAG = "--verbose"


class CommandParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` with ``--verbose`` (also on sub-commands) and one-line usage errors."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # SUPPRESS: a sub-command's parser must not reset a --verbose given before the sub-command
        self.add_argument(VERBOSE_FLAG, action="store_true", default=argparse.SUPPRESS,
                          help="on errors, show the traceback and the full tool output (e.g. ffmpeg's)")

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def run_command(work: Callable[[list[str]], int | None], argv: Sequence[str] | None = None) -> int:
    """Run ``work(argv)``; bad input becomes one ``error:`` line and exit status 1 (see the module doc)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = VERBOSE_FLAG in argv
    try:
        return int(work(argv) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except USER_ERRORS as exc:
        if verbose:
            traceback.print_exc()
            detail = getattr(exc, "detail", None)
            if detail:
                print(detail, file=sys.stderr)
        print(f"error: {error_text(exc)}", file=sys.stderr)
        return 1


def error_text(exc: BaseException) -> str:
    """The message of a user error; an OSError's file name is put first (``path: No such file ...``)."""
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"
    return str(exc) or type(exc).__name__


def progress_callback(description: str, unit: str = "it") -> Callable[..., None]:
    """A ``callback(done, total, *extra)`` (the form the library's ``progress=`` arguments take) that drives
    a tqdm bar with ETA on stderr, for a command's long stages (ComfyUI nodes use the host's bar instead).
    The bar opens on the first call and closes itself when ``done == total``."""
    bar = None

    def update(done: int, total: int, *_):
        nonlocal bar
        if bar is None:
            from tqdm.auto import tqdm

            bar = tqdm(total=total, desc=description, unit=unit, dynamic_ncols=True)
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    return update
