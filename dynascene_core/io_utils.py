"""Atomic file output: the one way the pack writes files (videos, pose files, weights, JSON, PNGs).

A file is written under a temporary name in the target's folder, flushed to disk and renamed over the
target with :func:`os.replace` (atomic for same-folder renames on POSIX and Windows). A crash or kill
mid-write therefore leaves the previous file, or no file, never a truncated one; the temporary file
is removed when the write fails.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import IO, Iterator


def temporary_path(path: str | os.PathLike) -> str:
    """A temporary name beside ``path`` that keeps its extension (writers such as ffmpeg, PIL and
    OpenCV pick the format from it): ``out/video.mp4`` → ``out/video.tmp-<pid>.mp4``."""
    root, ext = os.path.splitext(os.fspath(path))
    return f"{root}.tmp-{os.getpid()}{ext}"


@contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[str]:
    """Yield a temporary path to write ``path``'s content to; on success it replaces ``path``.

    For writers that need a file name (ffmpeg, ``safetensors.save_file``, ``PIL.Image.save``)::

        with atomic_output("out/camera.png") as tmp:
            image.save(tmp)
    """
    path = os.fspath(path)
    tmp = temporary_path(path)
    try:
        yield tmp
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


@contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8",
                newline: str | None = None) -> Iterator[IO]:
    """``open(path, mode)`` whose content appears at ``path`` only when the block ends without error.

    ``mode`` is ``"w"`` (text, ``encoding``, ``newline`` as for :func:`open`) or ``"wb"``."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open writes whole files: mode must be 'w' or 'wb', got {mode!r}")
    binary = "b" in mode
    with atomic_output(path) as tmp:
        with open(tmp, mode, encoding=None if binary else encoding, newline=None if binary else newline) as handle:
            yield handle


def check_output_folder(path: str | os.PathLike, name: str = "output folder") -> None:
    """``ValueError`` naming ``path`` unless it is a writable folder or can be made as one (its nearest
    existing parent is a writable folder); creates nothing, so a refused command leaves no trace."""
    path = os.fspath(path)
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"{name} {path}: exists and is not a folder")
    existing = os.path.abspath(path)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing) or not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"{name} {path}: cannot write there ({existing} is not a writable folder)")
