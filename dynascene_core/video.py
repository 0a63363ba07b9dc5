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

from .io_utils import atomic_output

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".gif")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


class VideoError(ValueError):
    """A video or frame folder could not be read or written; the one-line message names the path.

    ``detail`` holds the decoder's full output (ffmpeg's stderr), which command lines show with ``--verbose``."""

    def __init__(self, message: str, detail: str | None = None):
        super().__init__(message)
        self.detail = detail


def _unreadable(path: str, exc: BaseException) -> VideoError:
    """A one-line :class:`VideoError` for a file ffmpeg cannot decode; ffmpeg's full stderr as ``detail``."""
    if os.path.isfile(path) and os.path.getsize(path) == 0:
        return VideoError(f"{path}: empty file (0 bytes), not a video", str(exc))
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    reason = lines[-1].rstrip(")").split(": ", 1)[-1] if lines else type(exc).__name__
    return VideoError(f"{path}: not a readable video (ffmpeg: {reason})", str(exc))


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
        raise _unreadable(path, exc) from exc
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
    except (OSError, RuntimeError) as exc:  # a file that breaks off mid-stream
        raise _unreadable(path, exc) from exc
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
        raise _unreadable(path, exc) from exc
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


def _iter_frame_folder(path: str, chunk: int, stride: int, max_frames: int | None) -> Iterator[np.ndarray]:
    """Yield ``(n <= chunk, H, W, 3)`` uint8 chunks of a folder's images in name order; all must share one size."""
    from PIL import Image

    names = sorted(n for n in os.listdir(path) if n.lower().endswith(IMAGE_SUFFIXES))[::stride]
    if max_frames is not None:
        names = names[:max_frames]
    if not names:
        raise VideoError(f"{path}: folder holds no images ({', '.join(IMAGE_SUFFIXES)})")
    first_shape, buf = None, []
    for name in names:
        try:
            with Image.open(os.path.join(path, name)) as im:
                buf.append(np.asarray(im.convert("RGB")))
        except OSError as exc:  # PIL's UnidentifiedImageError and truncated-file errors
            raise VideoError(f"{path}/{name}: not a readable image ({exc.__class__.__name__})") from exc
        first_shape = first_shape or buf[-1].shape
        if buf[-1].shape != first_shape:
            raise VideoError(f"{path}/{name}: size {buf[-1].shape[1::-1]} differs from the first "
                             f"frame's {first_shape[1::-1]}")
        if len(buf) == chunk:
            yield np.stack(buf)
            buf = []
    if buf:
        yield np.stack(buf)


def iter_frames(path: str | os.PathLike, chunk: int = 16, stride: int = 1, max_frames: int | None = None
                ) -> Iterator[np.ndarray]:
    """Yield ``(n <= chunk, H, W, 3)`` uint8 chunks of a video file (:func:`iter_video`) or a frame folder (its images
    in name order, all one size), keeping every ``stride``-th frame: memory stays bounded by ``chunk`` frames."""
    path = os.fspath(path)
    _check_readable(path)
    if chunk < 1 or stride < 1:
        raise VideoError(f"{path}: chunk and stride must be >= 1 (got chunk={chunk}, stride={stride})")
    if os.path.isdir(path):
        yield from _iter_frame_folder(path, chunk, stride, max_frames)
    else:
        yield from iter_video(path, chunk, stride, max_frames)


def frame_rate(path: str | os.PathLike, stride: int = 1, fps: float = 24.0) -> float:
    """Frames per second of a video file read keeping every ``stride``-th frame, or ``fps`` for a frame folder (which
    carries no rate)."""
    path = os.fspath(path)
    return fps if os.path.isdir(path) else video_fps(path) / stride


def read_video(path: str | os.PathLike, max_frames: int | None = None, stride: int = 1,
               fps: float = 24.0) -> Video:
    """Read a video file or a frame folder. ``fps`` is used for folders, which carry no rate."""
    chunks = list(iter_frames(path, chunk=64, stride=stride, max_frames=max_frames))
    if not chunks:
        raise VideoError(f"{path}: video has no frames")
    return Video(np.concatenate(chunks), frame_rate(path, stride, fps))


def write_video(path: str | os.PathLike, frames: np.ndarray | torch.Tensor, fps: float,
                quality: int = 18) -> None:
    """Write frames as an H.264 mp4 (yuv420p, playable everywhere); ``quality`` is the x264 CRF.

    Odd sizes are padded by one pixel by the encoder's scaler. Written atomically
    (:func:`~dynascene_core.io_utils.atomic_output`): an interrupted write never leaves a truncated file.
    """
    import imageio_ffmpeg

    path = os.fspath(path)
    frames = to_uint8(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
        raise VideoError(f"{path}: expected (F, H, W, 3) frames with F >= 1, got {tuple(frames.shape)}")
    if fps <= 0:
        raise VideoError(f"{path}: fps must be positive, got {fps}")
    height, width = frames.shape[1:3]
    with atomic_output(path) as tmp:
        writer = imageio_ffmpeg.write_frames(
            tmp, (width, height), fps=fps, codec="libx264", pix_fmt_out="yuv420p", quality=None,
            macro_block_size=2, output_params=["-crf", str(quality), "-f", "mp4"], ffmpeg_log_level="error",
        )
        try:
            writer.send(None)
            for frame in frames:
                writer.send(np.ascontiguousarray(frame))
        finally:
            writer.close()


def write_image(path: str | os.PathLike, image: np.ndarray) -> None:
    """Write one ``(H, W, 3)`` uint8 RGB image (format from the extension, e.g. PNG), atomically."""
    from PIL import Image

    with atomic_output(path) as tmp:
        Image.fromarray(image).save(tmp)


def write_frame_folder(path: str | os.PathLike, frames: np.ndarray | torch.Tensor, prefix: str = "frame") -> None:
    """Write frames as numbered PNGs (``frame_00000.png`` ...) into ``path`` (created if needed)."""
    path = os.fspath(path)
    os.makedirs(path, exist_ok=True)
    for index, frame in enumerate(to_uint8(frames)):
        write_image(os.path.join(path, f"{prefix}_{index:05d}.png"), frame)


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
