"""The clip-folder dataset format: manifest, per-clip layout, validation, reading and writing.

Layout of a dataset folder ``ROOT``::

    ROOT/manifest.jsonl            one JSON object per line (see ClipRecord)
    ROOT/clips/<clip_id>/
        video.mp4  | frames/       the clip: an mp4, or a folder of images in name order
        masks.mp4  | masks/        human alpha, 1 = person (greyscale; required when has_person)
        poses.txt                  RealEstate10K pose file, one line per frame
        scene/<frame>.png          optional human-free scene images; ``<frame>`` (an integer) is the
                                   frame whose camera the image was taken with

Every clip has as many frames, mask frames and pose lines as its manifest ``num_frames``; frames
and masks have the manifest ``width × height``. Scene-only clips (``has_person: false``, e.g.
RealEstate10K) need no masks. Every problem is reported as a :class:`ClipError` naming the clip.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import asdict, dataclass, field

import numpy as np

from ..camera import CameraTrajectory, PoseFileError
from ..io_utils import atomic_open
from ..video import (IMAGE_SUFFIXES, VideoError, iter_video, matte_from_frames, to_uint8, write_frame_folder,
                     write_video)
from .motion import motion_intensity

MANIFEST_NAME = "manifest.jsonl"
CLIPS_DIR = "clips"
SPLITS = ("train", "val", "test")
_CLIP_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class ClipError(ValueError):
    """A clip is missing files or is inconsistent; the message starts with the clip id."""

    def __init__(self, clip_id: str, problem: str):
        super().__init__(f"clip {clip_id!r}: {problem}")
        self.clip_id = clip_id
        self.problem = problem


@dataclass(frozen=True)
class ClipRecord:
    """One manifest line. ``motion_score`` is paper eq. 3 (None if not computed)."""

    clip_id: str
    num_frames: int
    fps: float
    width: int
    height: int
    split: str = "train"
    has_person: bool = True
    motion_score: float | None = None

    def __post_init__(self):
        if not isinstance(self.clip_id, str) or not _CLIP_ID.match(self.clip_id):
            raise ValueError(f"clip id {self.clip_id!r} must be letters, digits, '.', '_' or '-' "
                             "(it names a folder)")
        if int(self.num_frames) < 1 or int(self.width) < 1 or int(self.height) < 1 or float(self.fps) <= 0:
            raise ValueError(f"clip {self.clip_id!r}: num_frames, width, height and fps must be positive, got "
                             f"{self.num_frames}, {self.width}, {self.height}, {self.fps}")
        if self.split not in SPLITS:
            raise ValueError(f"clip {self.clip_id!r}: split must be one of {SPLITS}, got {self.split!r}")

    @property
    def orientation(self) -> str:
        """``"landscape"`` (width >= height) or ``"portrait"``: batches never mix the two."""
        return "landscape" if self.width >= self.height else "portrait"

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def read_manifest(root: str | os.PathLike) -> list[ClipRecord]:
    """All records of ``ROOT/manifest.jsonl``; errors name the file and line."""
    path = os.path.join(os.fspath(root), MANIFEST_NAME)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no dataset manifest (a dataset folder holds {MANIFEST_NAME} and "
                                f"{CLIPS_DIR}/; see the README's dataset format)")
    records, seen = [], set()
    with open(path, encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
                record = ClipRecord(**data)
            except (json.JSONDecodeError, TypeError, ValueError) as exc:
                raise ValueError(f"{path}:{line_no}: bad manifest line ({exc})") from exc
            if record.clip_id in seen:
                raise ValueError(f"{path}:{line_no}: clip id {record.clip_id!r} appears twice")
            seen.add(record.clip_id)
            records.append(record)
    return records


def write_manifest(root: str | os.PathLike, records: list[ClipRecord]) -> None:
    """Write ``ROOT/manifest.jsonl`` atomically (temporary file, then rename)."""
    path = os.path.join(os.fspath(root), MANIFEST_NAME)
    with atomic_open(path) as handle:
        handle.writelines(r.to_json() + "\n" for r in records)


@dataclass
class ClipFiles:
    """Resolved paths of one clip; ``video``/``masks`` are an mp4 file or a frame folder."""

    folder: str
    video: str
    poses: str
    masks: str | None = None
    scene_images: dict[int, str] = field(default_factory=dict)


def _one_of(folder: str, names: tuple[str, str]) -> str | None:
    for name in names:
        path = os.path.join(folder, name)
        if os.path.exists(path):
            return path
    return None


def clip_files(root: str | os.PathLike, record: ClipRecord) -> ClipFiles:
    """Find a clip's files; :class:`ClipError` if a required one is missing."""
    folder = os.path.join(os.fspath(root), CLIPS_DIR, record.clip_id)
    if not os.path.isdir(folder):
        raise ClipError(record.clip_id, f"folder {folder} is missing")
    video = _one_of(folder, ("video.mp4", "frames"))
    if video is None:
        raise ClipError(record.clip_id, f"no video: expected {folder}/video.mp4 or {folder}/frames/")
    poses = os.path.join(folder, "poses.txt")
    if not os.path.isfile(poses):
        raise ClipError(record.clip_id, f"no camera poses: {poses} is missing")
    masks = _one_of(folder, ("masks.mp4", "masks"))
    if masks is None and record.has_person:
        raise ClipError(record.clip_id, f"no masks: expected {folder}/masks.mp4 or {folder}/masks/ "
                                        "(has_person is true)")
    scenes = {}
    scene_dir = os.path.join(folder, "scene")
    if os.path.isdir(scene_dir):
        for name in sorted(os.listdir(scene_dir)):
            stem, ext = os.path.splitext(name)
            if ext.lower() not in IMAGE_SUFFIXES:
                continue
            if not stem.isdigit() or not 0 <= int(stem) < record.num_frames:
                raise ClipError(record.clip_id, f"scene image {scene_dir}/{name}: the name must be the frame "
                                                f"index of its camera, 0..{record.num_frames - 1}")
            scenes[int(stem)] = os.path.join(scene_dir, name)
    return ClipFiles(folder, video, poses, masks, scenes)


def _folder_images(path: str) -> list[str]:
    return sorted(n for n in os.listdir(path) if n.lower().endswith(IMAGE_SUFFIXES))


def _count_and_size(clip_id: str, path: str, what: str) -> tuple[int, tuple[int, int]]:
    """Frame count and ``(width, height)`` of an mp4 (container packets, no decoding) or a folder."""
    if os.path.isdir(path):
        names = _folder_images(path)
        if not names:
            raise ClipError(clip_id, f"{what} folder {path} holds no images")
        from PIL import Image

        try:
            with Image.open(os.path.join(path, names[0])) as im:
                size = im.size
        except OSError as exc:
            raise ClipError(clip_id, f"{what} image {path}/{names[0]} is unreadable ({exc})") from exc
        return len(names), size
    import imageio_ffmpeg

    try:
        reader = imageio_ffmpeg.read_frames(path)
        meta = next(reader)
        reader.close()
        count, _ = imageio_ffmpeg.count_frames_and_secs(path)
    except (OSError, RuntimeError, StopIteration) as exc:
        raise ClipError(clip_id, f"{what} {path} is not a readable video ({exc})") from exc
    return count, tuple(meta["size"])


def load_trajectory(record: ClipRecord, files: ClipFiles) -> CameraTrajectory:
    """The clip's poses; :class:`ClipError` for an unreadable file or a wrong line count."""
    try:
        trajectory = CameraTrajectory.load(files.poses, format="realestate10k")
    except PoseFileError as exc:
        raise ClipError(record.clip_id, str(exc)) from exc
    if len(trajectory) != record.num_frames:
        raise ClipError(record.clip_id, f"pose count mismatch: {files.poses} has {len(trajectory)} poses, "
                                        f"the manifest says {record.num_frames} frames")
    return trajectory


def validate_clip(root: str | os.PathLike, record: ClipRecord, check_videos: bool = True) -> ClipFiles:
    """Check a clip before training on it: files, pose count, frame and mask counts and sizes.

    ``check_videos=False`` skips opening mp4 files (frame folders are always counted); mp4 counts
    come from the container without decoding. Returns the resolved files.
    """
    files = clip_files(root, record)
    load_trajectory(record, files)
    expected_size = (record.width, record.height)
    for what, path in (("video", files.video), ("masks", files.masks)):
        if path is None or (not check_videos and not os.path.isdir(path)):
            continue
        count, size = _count_and_size(record.clip_id, path, what)
        if count != record.num_frames:
            raise ClipError(record.clip_id, f"frame count mismatch: {what} {path} has {count} frames, "
                                            f"the manifest says {record.num_frames}")
        if size != expected_size:
            raise ClipError(record.clip_id, f"{what} {path} is {size[0]}x{size[1]}, the manifest says "
                                            f"{expected_size[0]}x{expected_size[1]}")
    return files


@dataclass
class ClipFrames:
    """Frames read from a clip: ``frames (n, H, W, 3)`` uint8, ``masks (n, H, W)`` float32 in [0, 1]
    (zeros for scene-only clips), at the clip's ``indices``."""

    indices: list[int]
    frames: np.ndarray
    masks: np.ndarray


def _read_indices(clip_id: str, path: str, indices: list[int], what: str) -> np.ndarray:
    """``(len(indices), H, W, 3)`` uint8 from an mp4 (decoded up to the last index) or a folder."""
    if os.path.isdir(path):
        from PIL import Image

        names = _folder_images(path)
        out = []
        for i in indices:
            if i >= len(names):
                raise ClipError(clip_id, f"frame count mismatch: {what} folder {path} has {len(names)} images, "
                                         f"frame {i} was requested")
            try:
                with Image.open(os.path.join(path, names[i])) as im:
                    out.append(np.asarray(im.convert("RGB")))
            except OSError as exc:
                raise ClipError(clip_id, f"{what} image {path}/{names[i]} is unreadable ({exc})") from exc
        shapes = {a.shape for a in out}
        if len(shapes) > 1:
            raise ClipError(clip_id, f"{what} images in {path} differ in size: {sorted(shapes)}")
        return np.stack(out)
    stop = max(indices) + 1
    try:
        decoded = np.concatenate(list(iter_video(path, chunk=32, max_frames=stop)))
    except (VideoError, ValueError) as exc:
        raise ClipError(clip_id, f"{what} {path} is unreadable ({exc})") from exc
    if len(decoded) < stop:
        raise ClipError(clip_id, f"frame count mismatch: {what} {path} decodes to {len(decoded)} frames, "
                                 f"frame {stop - 1} was requested")
    return decoded[indices]


def read_clip_frames(record: ClipRecord, files: ClipFiles, indices: list[int]) -> ClipFrames:
    """Read frames and masks at ``indices``; checks they exist and have the manifest size."""
    bad = [i for i in indices if not 0 <= i < record.num_frames]
    if bad:
        raise ClipError(record.clip_id, f"frames {bad} outside 0..{record.num_frames - 1}")
    frames = _read_indices(record.clip_id, files.video, indices, "video")
    if files.masks is not None:
        masks = matte_from_frames(_read_indices(record.clip_id, files.masks, indices, "masks"))
    else:
        masks = np.zeros(frames.shape[:3], np.float32)
    for what, array in (("video", frames), ("masks", masks)):
        if array.shape[1:3] != (record.height, record.width):
            raise ClipError(record.clip_id, f"{what} frames are {array.shape[2]}x{array.shape[1]}, the manifest "
                                            f"says {record.width}x{record.height}")
    return ClipFrames(list(indices), frames, masks)


def read_scene_image(record: ClipRecord, files: ClipFiles, frame: int) -> np.ndarray:
    """The human-free scene image taken with frame ``frame``'s camera, ``(H, W, 3)`` uint8."""
    from PIL import Image

    path = files.scene_images.get(frame)
    if path is None:
        raise ClipError(record.clip_id, f"no scene image for frame {frame} (have {sorted(files.scene_images)})")
    try:
        with Image.open(path) as im:
            image = np.array(im.convert("RGB"))
    except OSError as exc:
        raise ClipError(record.clip_id, f"scene image {path} is unreadable ({exc})") from exc
    if image.shape[:2] != (record.height, record.width):
        raise ClipError(record.clip_id, f"scene image {path} is {image.shape[1]}x{image.shape[0]}, the manifest "
                                        f"says {record.width}x{record.height}")
    return image


def write_clip(root: str | os.PathLike, clip_id: str, frames: np.ndarray, trajectory: CameraTrajectory,
               fps: float, masks: np.ndarray | None = None, scene_images: dict[int, np.ndarray] | None = None,
               split: str = "train", video_storage: str = "mp4", mask_storage: str = "png",
               motion_score: float | None | str = "auto") -> ClipRecord:
    """Write one clip folder in the format above and return its manifest record.

    ``frames (F, H, W, 3)`` uint8; ``masks (F, H, W)`` float in [0, 1] (1 = person) or None for a
    scene-only clip; ``scene_images {frame index: (H, W, 3) uint8}``. Storage is ``"mp4"`` or
    ``"png"`` (masks in mp4 are lossy; PNG keeps them exact to 1/255). ``motion_score="auto"``
    computes eq. 3 (None when the clip is too short). The folder is written under a temporary name
    and renamed, so a crash leaves no half-written clip. Add the record to the manifest with
    :func:`write_manifest`.
    """
    frames = to_uint8(frames)
    count, height, width = frames.shape[:3]
    if len(trajectory) != count:
        raise ValueError(f"clip {clip_id!r}: {count} frames but {len(trajectory)} poses")
    if masks is not None and masks.shape != (count, height, width):
        raise ValueError(f"clip {clip_id!r}: masks must be {(count, height, width)}, got {masks.shape}")
    if motion_score == "auto":
        try:
            motion_score = motion_intensity(frames, fps)
        except ValueError:
            motion_score = None
    record = ClipRecord(clip_id, count, float(fps), width, height, split, masks is not None, motion_score)
    final = os.path.join(os.fspath(root), CLIPS_DIR, clip_id)
    tmp = f"{final}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    try:
        _write_frames(os.path.join(tmp, "video"), os.path.join(tmp, "frames"), frames, fps, video_storage)
        if masks is not None:
            grey = np.repeat((np.clip(masks, 0, 1) * 255).round().astype(np.uint8)[..., None], 3, -1)
            _write_frames(os.path.join(tmp, "masks"), os.path.join(tmp, "masks"), grey, fps, mask_storage)
        trajectory.save(os.path.join(tmp, "poses.txt"))
        if scene_images:
            from PIL import Image

            os.makedirs(os.path.join(tmp, "scene"))
            for index, image in scene_images.items():
                if not 0 <= index < count:
                    raise ValueError(f"clip {clip_id!r}: scene image frame {index} outside 0..{count - 1}")
                Image.fromarray(to_uint8(image[None])[0]).save(os.path.join(tmp, "scene", f"{index:06d}.png"))
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return record


def _write_frames(video_stem: str, folder: str, frames: np.ndarray, fps: float, storage: str) -> None:
    if storage == "mp4":
        write_video(video_stem + ".mp4", frames, fps)
    elif storage == "png":
        write_frame_folder(folder, frames)
    else:
        raise ValueError(f"storage must be 'mp4' or 'png', got {storage!r}")
