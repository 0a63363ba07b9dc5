"""Video and frame-folder input/output (imageio-ffmpeg), and the frame-format conversions.

Frames travel through the library as ``uint8`` numpy arrays ``(F, H, W, 3)`` at the I/O boundary and
as float tensors ``(F, 3, H, W)`` in ``[0, 1]`` inside models (:func:`to_tensor` / :func:`to_uint8`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".gif")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


class VideoError(ValueError):
    """A video or frame folder could not be read or written; the message names the path."""


@dataclass
class Video:
    """Decoded frames ``(F, H, W, 3)`` uint8 and the frame rate."""

    frames: np.ndarray
    fps: float

    def __len__(self) -> int:
        return len(self.frames)


def _check_readable(path: str) -> None:
    if not os.path.exists(path):
        raise VideoError(f"{path}: no such file or folder")


def iter_video(path: str | os.PathLike, chunk: int = 16, stride: int = 1, max_frames: int | None = None
               ) -> Iterator[np.ndarray]:
    """Yield ``(n <= chunk, H, W, 3)`` uint8 chunks of a video file, keeping every ``stride``-th frame.

    Memory stays bounded by ``chunk`` frames whatever the video length.
    """
    import imageio_ffmpeg

    path = os.fspath(path)
    _check_readable(path)
    if chunk < 1 or stride < 1:
        raise VideoError(f"{path}: chunk and stride must be >= 1 (got chunk={chunk}, stride={stride})")
    try:
        reader = imageio_ffmpeg.read_frames(path, pix_fmt="rgb24")
        meta = next(reader)
    except (OSError, RuntimeError, StopIteration) as exc:
        raise VideoError(f"{path}: not a readable video ({exc})") from exc
    width, height = meta["size"]
    buf, kept = [], 0
    try:
        for index, raw in enumerate(reader):
            if index % stride:
                continue
            buf.append(np.frombuffer(raw, np.uint8).reshape(height, width, 3))
            kept += 1
            if len(buf) == chunk:
                yield np.stack(buf)
                buf = []
            if max_frames is not None and kept >= max_frames:
                break
    finally:
        reader.close()
    if buf:
        yield np.stack(buf)


def video_fps(path: str | os.PathLike) -> float:
    """Frame rate reported by the container (frames per second)."""
    import imageio_ffmpeg

    path = os.fspath(path)
    _check_readable(path)
    reader = imageio_ffmpeg.read_frames(path)
    try:
        return float(next(reader).get("fps") or 0.0)
    except (OSError, RuntimeError, StopIteration) as exc:
        raise VideoError(f"{path}: not a readable video ({exc})") from exc
    finally:
        reader.close()


def probe_video(path: str | os.PathLike) -> tuple[int, int, int]:
    """``(frames, height, width)`` of a video file or frame folder without decoding every frame."""
    import imageio_ffmpeg
    from PIL import Image

    path = os.fspath(path)
    _check_readable(path)
    if os.path.isdir(path):
        names = sorted(n for n in os.listdir(path) if n.lower().endswith(IMAGE_SUFFIXES))
        if not names:
            raise VideoError(f"{path}: folder holds no images ({', '.join(IMAGE_SUFFIXES)})")
        with Image.open(os.path.join(path, names[0])) as im:
            return len(names), im.height, im.width
    try:
        reader = imageio_ffmpeg.read_frames(path)
        width, height = next(reader)["size"]
        reader.close()
        frames, _ = imageio_ffmpeg.count_frames_and_secs(path)
    except (OSError, RuntimeError, StopIteration) as exc:
        raise VideoError(f"{path}: not a readable video ({exc})") from exc
    return int(frames), int(height), int(width)


def read_frame_folder(path: str | os.PathLike, max_frames: int | None = None, stride: int = 1) -> np.ndarray:
    """Read the images of a folder in name order as ``(F, H, W, 3)`` uint8; all must share one size."""
    from PIL import Image

    path = os.fspath(path)
    names = sorted(n for n in os.listdir(path) if n.lower().endswith(IMAGE_SUFFIXES))[::stride]
    if max_frames is not None:
        names = names[:max_frames]
    if not names:
        raise VideoError(f"{path}: folder holds no images ({', '.join(IMAGE_SUFFIXES)})")
    frames = []
    for name in names:
        with Image.open(os.path.join(path, name)) as im:
            frames.append(np.asarray(im.convert("RGB")))
        if frames[-1].shape != frames[0].shape:
            raise VideoError(f"{path}/{name}: size {frames[-1].shape[1::-1]} differs from the first "
                             f"frame's {frames[0].shape[1::-1]}")
    return np.stack(frames)


def read_video(path: str | os.PathLike, max_frames: int | None = None, stride: int = 1,
               fps: float = 24.0) -> Video:
    """Read a video file or a frame folder. ``fps`` is used for folders, which carry no rate."""
    path = os.fspath(path)
    _check_readable(path)
    if os.path.isdir(path):
        return Video(read_frame_folder(path, max_frames, stride), fps)
    chunks = list(iter_video(path, chunk=64, stride=stride, max_frames=max_frames))
    if not chunks:
        raise VideoError(f"{path}: video has no frames")
    return Video(np.concatenate(chunks), video_fps(path) / stride)


def write_video(path: str | os.PathLike, frames: np.ndarray | torch.Tensor, fps: float,
                quality: int = 18) -> None:
    """Write frames as an H.264 mp4 (yuv420p, playable everywhere); ``quality`` is the x264 CRF.

    Odd sizes are padded by one pixel by the encoder's scaler. Written to a temporary name and
    renamed, so an interrupted write never leaves a truncated file at ``path``.
    """
    import imageio_ffmpeg

    path = os.fspath(path)
    frames = to_uint8(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
        raise VideoError(f"{path}: expected (F, H, W, 3) frames with F >= 1, got {tuple(frames.shape)}")
    if fps <= 0:
        raise VideoError(f"{path}: fps must be positive, got {fps}")
    height, width = frames.shape[1:3]
    root, ext = os.path.splitext(path)
    tmp = f"{root}.tmp-{os.getpid()}{ext or '.mp4'}"
    writer = imageio_ffmpeg.write_frames(
        tmp, (width, height), fps=fps, codec="libx264", pix_fmt_out="yuv420p", quality=None,
        macro_block_size=2, output_params=["-crf", str(quality)], ffmpeg_log_level="error",
    )
    try:
        writer.send(None)
        for frame in frames:
            writer.send(np.ascontiguousarray(frame))
        writer.close()
        os.replace(tmp, path)
    finally:
        writer.close()
        if os.path.exists(tmp):
            os.remove(tmp)


def write_frame_folder(path: str | os.PathLike, frames: np.ndarray | torch.Tensor, prefix: str = "frame") -> None:
    """Write frames as numbered PNGs (``frame_00000.png`` ...) into ``path`` (created if needed)."""
    from PIL import Image

    path = os.fspath(path)
    os.makedirs(path, exist_ok=True)
    for index, frame in enumerate(to_uint8(frames)):
        Image.fromarray(frame).save(os.path.join(path, f"{prefix}_{index:05d}.png"))


def matte_from_frames(frames: np.ndarray) -> np.ndarray:
    """A matte stored as video/images ``(F, H, W, C)`` uint8 → alpha ``(F, H, W)`` float32 in [0, 1]
    (mean over channels, white = person): grey mattes keep their soft edges."""
    return frames.mean(-1, dtype=np.float32) / 255.0


def to_tensor(frames: np.ndarray) -> torch.Tensor:
    """``(F, H, W, C)`` uint8 → ``(F, C, H, W)`` float32 in ``[0, 1]``."""
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float().div_(255.0)


def to_uint8(frames: np.ndarray | torch.Tensor) -> np.ndarray:
    """``(F, C, H, W)`` float tensor in ``[0, 1]`` (or already ``(F, H, W, C)`` uint8) → uint8 ``(F, H, W, C)``."""
    if isinstance(frames, torch.Tensor):
        frames = frames.detach().float().clamp(0, 1).mul(255).round().to(torch.uint8)
        return frames.permute(0, 2, 3, 1).cpu().numpy()
    if frames.dtype != np.uint8:
        raise VideoError(f"expected uint8 frames, got {frames.dtype}")
    return frames
