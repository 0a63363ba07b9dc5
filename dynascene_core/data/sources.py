"""Source videos: a folder (searched recursively) or a list file, probed for size, rate and length."""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class SourceVideo:
    """A readable video: ``key`` names it in clip ids and state files (stable across runs)."""

    path: str
    key: str
    width: int
    height: int
    fps: float
    num_frames: int

    @property
    def seconds(self) -> float:
        return self.num_frames / self.fps

    def to_dict(self) -> dict:
        return asdict(self)


def list_sources(src: str, extensions: list[str]) -> list[str]:
    """Video paths under folder ``src`` (recursive, sorted), listed in text file ``src``, or ``src`` itself
    when it is one video (by extension).

    A list file holds one path per line (relative paths are relative to the list file; blank lines
    and ``#`` comments are skipped). Missing listed files are kept: probing reports them.
    """
    if os.path.isdir(src):
        suffixes = tuple(e.lower() for e in extensions)
        found = [os.path.join(folder, name) for folder, _, names in os.walk(src) for name in names
                 if name.lower().endswith(suffixes)]
        return sorted(found)
    if not os.path.isfile(src):
        raise FileNotFoundError(f"{src}: no such folder or list file")
    if src.lower().endswith(tuple(e.lower() for e in extensions)):
        return [src]  # one video given directly
    base = os.path.dirname(os.path.abspath(src))
    try:
        with open(src, encoding="utf-8") as handle:
            lines = [line.strip() for line in handle]
    except UnicodeDecodeError:
        raise ValueError(f"{src}: not a folder, a video ({', '.join(extensions)}) or a text list of video "
                         "paths (one per line)") from None
    return [p if os.path.isabs(p) else os.path.join(base, p) for p in lines if p and not p.startswith("#")]


def video_key(path: str, src_root: str) -> str:
    """A clip-id-safe name: the file stem plus 8 hex digits of its path relative to the source root."""
    rel = os.path.relpath(os.path.abspath(path), os.path.abspath(src_root))
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", os.path.splitext(os.path.basename(path))[0]).strip("_-")[:40] or "video"
    return f"{stem}-{hashlib.sha1(rel.encode()).hexdigest()[:8]}"


def probe_video(path: str, key: str) -> SourceVideo:
    """Size, frame rate and the container's frame count estimate (shot detection decodes the video
    and finds its real length); ``ValueError`` naming the file if it cannot be opened."""
    import imageio_ffmpeg

    if not os.path.isfile(path):
        raise ValueError(f"{path}: no such file")
    try:
        reader = imageio_ffmpeg.read_frames(path)
        meta = next(reader)
        reader.close()
    except (OSError, RuntimeError, StopIteration) as exc:
        raise ValueError(f"{path}: not a readable video ({str(exc).strip().splitlines()[0]})") from exc
    fps = float(meta.get("fps") or 0.0)
    count = int(round(float(meta.get("duration") or 0.0) * fps))
    width, height = meta["size"]
    if count < 1 or fps <= 0:
        raise ValueError(f"{path}: no decodable frames (frames {count}, fps {fps:g})")
    return SourceVideo(os.path.abspath(path), key, int(width), int(height), fps, int(count))
