"""Real footage with ground-truth cameras for ``bench_camera_real.py``: readers, sources and licences.

Footage (give one or more; none of it is copied into this repository, the benchmark reads the checkouts):

- ``--kitti``: the two 50-frame KITTI odometry excerpts (``KITTI_sequence_1``, ``KITTI_sequence_2``: left
  grey camera ``image_l/``, ``poses.txt`` camera-to-world 3×4 rows from the GPS/INS ground truth,
  ``calib.txt`` projection matrices) of ``github.com/dawn-mathew/Visual-Odometry-KITTI-Sequence``. KITTI is
  © Geiger et al., CC BY-NC-SA 3.0. Car-mounted, global shutter, rectified. Each sequence gives three
  25-frame clips: frames 0-24 and 25-49, and every second frame of 0-48.
- ``--seven-scenes``: the 1000-frame 7-Scenes "redkitchen" excerpt in the ``data/`` folder of
  ``github.com/andyzeng/tsdf-fusion-python`` (``frame-XXXXXX.color.jpg``, ``frame-XXXXXX.pose.txt``: 4×4
  camera-to-world of the depth camera from KinectFusion). 7-Scenes is © Microsoft Research (non-commercial
  research licence). Hand-held Kinect: motion blur, raw colour images (not undistorted) that
  are neither calibrated nor registered to the depth camera the poses belong to; the colour focal is not
  published, so ``--focal given`` uses 525 px at 640×480 (the Kinect colour camera's usual default).
  Twenty 25-frame clips: every second frame of frames 50k … 50k+48.
- ``--hololens``: the 373-frame office/corridor sequence ``sample-data/hololens-dataset/000`` of
  ``github.com/ardaduz/deep-video-mvs`` (MIT): HoloLens 2 colour key frames, undistorted, ``K.txt``,
  ``poses.txt`` one camera-to-world 4×4 per line from the headset's own tracking. Walking with large motion
  between key frames (median 4° and 8 cm), blur, posters and plain walls. 12-frame clips of consecutive
  key frames (clips across a gap in the frame numbering are skipped).
- ``--tum``: a TUM RGB-D sequence folder (``rgb.txt``, ``rgb/``, ``groundtruth.txt``; the folder name says the
  setup, ``freiburg1/2/3``), e.g. ``Data/rgbd_dataset_freiburg1_desk`` of ``github.com/FaridRash/slam-track-fusion``
  (MIT; the TUM RGB-D data is © TU Munich, CC BY 4.0). Hand-held Kinect (rolling shutter, motion blur) with
  **motion-capture** poses of the colour camera at 100 Hz, interpolated to the frame times. The frames are
  undistorted with the setup's published calibration, which then counts as the given focal. Clips: every
  second frame of 50 consecutive frames (25 frames), not overlapping.
- ``--nerf``: a NeRF-style capture made from a video (instant-ngp / nerfstudio ``transforms.json``, or the
  ``transforms_train/val/test.json`` of a split, and its frames), with poses and calibration **fitted by COLMAP to
  these frames**, as RealEstate10K's are. Frames undistorted with the capture's calibration (then the given focal,
  scaled to frames stored smaller than the calibration's size); 12-frame clips of consecutive numbered frames.
  Captures measured (none stated a licence for its frames except the fox's; none is redistributed here):
  ``data/nerf/fox`` of ``github.com/NVlabs/instant-ngp`` (NVIDIA Source Code License, non-commercial; its
  initial commit 60dbb8e holds all 67 frames, later ones 50): a phone circling a fox head on a wallpapered wall,
  portrait 1080×1920; ``real_scene_data/coke`` and ``real_scene_data/gum`` of ``github.com/akristoffersen/Scene2Mesh``
  (bb684d5): phone orbits of a soda can on a plain bedsheet (111 frames, 540×960) and of a gum jar on a desk
  (492 frames, 720×1280); ``data/mydata`` of ``github.com/lambkin108/TensoRF_mydata`` (7df228d): a toy on a
  table, every ~8th frame of a phone video (110 frames, 800×800); ``custom_data`` of ``github.com/Caesar-xxx/NERF``
  (03460c0): a figure on a dining table, portrait 4K (69 frames); the root of
  ``github.com/Uddhav786/Enhancing-3D-Scene-Reconstruction-with-NeRF-and-NVIDIA-s-Instant-NGP`` (f0294a5,
  ``transforms.json`` and ``images/``): a drone over a field with a working tractor (74 frames, 1280×720; COLMAP's
  fit has fx 1249 against fy 1497); ``github.com/Vincent7140/dataset_perso`` (3db5ced, its frames moved into the
  ``images/`` folder its ``transforms.json`` names): a walk up stairs onto a roof terrace, 480×270 frames of a
  1920×1080 calibration, 7° median between frames (17° at p90).

Frames are resized so that their longer side is ``--width``. ``--aspect 16:9`` (any ``W:H``) then crops them about
their centre to that shape, as phone and camera video is, and moves the normalised intrinsics with the crop (the
poses do not change); footage wider than that shape ends narrower than ``--width`` (KITTI: 276×155). ``--turn 90``
(180, 270) then turns the frames that many degrees clockwise, and the cameras and intrinsics with them: portrait
(or upside-down) video as a phone records it, whose sensor reads the picture's columns (or its rows bottom to top).
"""

from __future__ import annotations

import json
import os

import cv2
import numpy as np

from dynascene_core.camera.trajectory import quaternion_to_matrix, slerp

SEQUENCES = ("KITTI_sequence_1", "KITTI_sequence_2")
CLIP_FRAMES = 25
HOLOLENS_CLIP = 12
SEVEN_SCENES_FOCAL = 525.0  # Kinect colour camera at 640×480 (not published with 7-Scenes)


def _resized_rgb(image: np.ndarray, width: int) -> np.ndarray:
    """BGR or grey ``image`` → RGB uint8 whose longer side is ``width`` (area filter, aspect kept)."""
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    scale = width / max(image.shape[:2])
    size = (int(round(image.shape[1] * scale)), int(round(image.shape[0] * scale)))
    return cv2.cvtColor(cv2.resize(image, size, interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)


def _image(path: str) -> np.ndarray:
    image = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise FileNotFoundError(f"cannot read the frame {path}")
    return image


def read_kitti(folder: str, width: int):
    """(frames (F, H, W, 3) uint8 at ``width``, c2w (F, 4, 4), normalised intrinsics (fx, fy, cx, cy))."""
    poses = np.loadtxt(os.path.join(folder, "poses.txt")).reshape(-1, 3, 4)
    c2w = np.tile(np.eye(4), (len(poses), 1, 1))
    c2w[:, :3] = poses
    names = sorted(os.listdir(os.path.join(folder, "image_l")))[:len(poses)]
    frames = [_image(os.path.join(folder, "image_l", name)) for name in names]
    src_h, src_w = frames[0].shape[:2]
    projection = np.loadtxt(os.path.join(folder, "calib.txt"))[0].reshape(3, 4)
    intrinsics = np.array([projection[0, 0] / src_w, projection[1, 1] / src_h,
                           projection[0, 2] / src_w, projection[1, 2] / src_h])
    return np.stack([_resized_rgb(f, width) for f in frames]), c2w, intrinsics


def kitti_clips(root: str, width: int):
    for sequence in SEQUENCES:
        frames, c2w, intrinsics = read_kitti(os.path.join(root, sequence), width)
        short = sequence.replace("KITTI_sequence_", "kitti")
        for name, index in ((f"{short}_0-24", np.arange(0, CLIP_FRAMES)),
                            (f"{short}_25-49", np.arange(CLIP_FRAMES, 2 * CLIP_FRAMES)),
                            (f"{short}_0-48x2", np.arange(0, 2 * CLIP_FRAMES, 2))):
            yield name, frames[index], c2w[index], intrinsics


def seven_scenes_clips(root: str, width: int):
    """Every second frame of 50k … 50k+48 (25 frames) while the excerpt lasts; ``root`` holds the frames."""
    count = len([n for n in os.listdir(root) if n.endswith(".pose.txt")])
    for start in range(0, count - 2 * CLIP_FRAMES + 2, 50):
        index = np.arange(start, start + 2 * CLIP_FRAMES - 1, 2)
        images = [_image(os.path.join(root, f"frame-{i:06d}.color.jpg")) for i in index]
        c2w = np.stack([np.loadtxt(os.path.join(root, f"frame-{i:06d}.pose.txt")) for i in index])
        height, src_w = images[0].shape[:2]
        intrinsics = np.array([SEVEN_SCENES_FOCAL / src_w, SEVEN_SCENES_FOCAL / height, 0.5, 0.5])
        yield f"7scenes_{start}-{start + 48}x2", np.stack([_resized_rgb(f, width) for f in images]), c2w, intrinsics


def hololens_clips(root: str, width: int):
    """Runs of ``HOLOLENS_CLIP`` consecutive key frames of ``root`` (``images/``, ``poses.txt``, ``K.txt``)."""
    names = sorted(os.listdir(os.path.join(root, "images")))
    c2w_all = np.loadtxt(os.path.join(root, "poses.txt")).reshape(-1, 4, 4)
    if len(c2w_all) != len(names):
        raise ValueError(f"{root}: {len(names)} images but {len(c2w_all)} poses")
    k = np.loadtxt(os.path.join(root, "K.txt"))
    numbers = [_frame_number(n) for n in names]
    for start in range(0, len(names) - HOLOLENS_CLIP + 1, HOLOLENS_CLIP):
        index = np.arange(start, start + HOLOLENS_CLIP)
        if numbers[index[-1]] - numbers[index[0]] != HOLOLENS_CLIP - 1:
            continue  # a gap in the recording
        images = [_image(os.path.join(root, "images", names[i])) for i in index]
        height, src_w = images[0].shape[:2]
        intrinsics = np.array([k[0, 0] / src_w, k[1, 1] / height, k[0, 2] / src_w, k[1, 2] / height])
        yield (f"hololens_{numbers[index[0]]}-{numbers[index[-1]]}",
               np.stack([_resized_rgb(f, width) for f in images]), c2w_all[index], intrinsics)


TUM_MAX_GAP_S = 0.1  # the motion capture runs at 100 Hz (fr1/desk: gaps of up to 50 ms); longer is a dropout
TUM_CALIBRATION = {  # published colour calibration per setup at 640×480: (fx, fy, cx, cy) px, OpenCV k1 k2 p1 p2 k3
    "freiburg1": ((517.306408, 516.469215, 318.643040, 255.313989),
                  (0.262383, -0.953104, -0.005358, 0.002628, 1.163314)),
    "freiburg2": ((520.908620, 521.007327, 325.141442, 249.701764),
                  (0.231222, -0.784899, -0.003257, -0.000105, 0.917205)),
    "freiburg3": ((535.4, 539.2, 320.1, 247.6), (0.0, 0.0, 0.0, 0.0, 0.0)),  # images already undistorted
}


def _tum_rows(path: str) -> list[list[str]]:
    """The fields of each line of a TUM text file (``#`` comments and blank lines skipped)."""
    with open(path, encoding="utf-8") as handle:
        return [line.split() for line in handle if line.strip() and not line.startswith("#")]


def tum_clips(root: str, width: int):
    """Every second frame of 50 consecutive colour frames (25 frames) of a TUM RGB-D sequence folder (``rgb.txt``,
    ``rgb/``, ``groundtruth.txt``): frames undistorted with the setup's published calibration, motion-capture poses
    interpolated to the frame times (linear centres, slerp rotations). Frames outside the capture are skipped
    (clip names count the frames inside it), and so are clips with a frame between two poses more than
    ``TUM_MAX_GAP_S`` apart (a gap in the capture)."""
    setup = next((key for key in TUM_CALIBRATION if key in os.path.basename(os.path.normpath(root))), None)
    if setup is None:
        raise ValueError(f"{root}: the folder name names no TUM setup ({', '.join(TUM_CALIBRATION)})")
    (fx, fy, cx, cy), distortion = TUM_CALIBRATION[setup]
    kmat = np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]])
    listed = _tum_rows(os.path.join(root, "rgb.txt"))
    times, files = np.array([float(row[0]) for row in listed]), [row[1] for row in listed]
    truth = np.array([[float(v) for v in row[:8]] for row in _tum_rows(os.path.join(root, "groundtruth.txt"))])
    inside = np.flatnonzero((times >= truth[0, 0]) & (times <= truth[-1, 0]))
    after = np.clip(np.searchsorted(truth[:, 0], times[inside]), 1, len(truth) - 1)
    gap = truth[after, 0] - truth[after - 1, 0]
    bridged = (gap > 0) & (gap <= TUM_MAX_GAP_S)
    weight = (times[inside] - truth[after - 1, 0]) / np.where(bridged, gap, 1.0)
    rot = quaternion_to_matrix(truth[:, 4:8])
    c2w = np.tile(np.eye(4), (len(inside), 1, 1))
    c2w[:, :3, :3] = slerp(rot[after - 1], rot[after], weight)
    c2w[:, :3, 3] = (1 - weight[:, None]) * truth[after - 1, 1:4] + weight[:, None] * truth[after, 1:4]
    label = os.path.basename(os.path.normpath(root)).replace("rgbd_dataset_freiburg", "tum")
    for start in range(0, len(inside) - 2 * CLIP_FRAMES + 2, 2 * CLIP_FRAMES):
        index = np.arange(start, start + 2 * CLIP_FRAMES - 1, 2)
        if not bridged[start:index[-1] + 1].all():
            continue
        raw = [_image(os.path.join(root, files[inside[i]])) for i in index]
        if raw[0].shape[:2] != (480, 640):
            raise ValueError(f"{root}: TUM frames are 640x480, got {raw[0].shape[1]}x{raw[0].shape[0]}")
        images = [cv2.undistort(image, kmat, np.array(distortion)) for image in raw]
        intrinsics = np.array([fx / 640, fy / 480, cx / 640, cy / 480])
        yield (f"{label}_{start}-{start + 2 * CLIP_FRAMES - 2}x2", np.stack([_resized_rgb(f, width) for f in images]),
               c2w[index], intrinsics)


NERF_CLIP = 12
NERF_MAX_GAP = 5  # frames numbered further apart than this are not consecutive video frames: clips end there
GL_TO_CV = np.diag([1.0, -1.0, -1.0, 1.0])  # NeRF poses look down −z with y up; OpenCV cameras down +z with y down


def _frame_number(path: str) -> int:
    digits = "".join(filter(str.isdigit, os.path.basename(path)))
    if not digits:
        raise ValueError(f"{path}: the frame's file name carries no frame number")
    return int(digits)


def _nerf_frames(root: str) -> tuple[dict, list[dict]]:
    """The camera of a NeRF-style capture and its frames that exist on disk, in the order of their numbers:
    ``transforms.json``, or the ``transforms_*.json`` of a train/val/test split merged (a frame number listed in
    several, as when each split holds a copy of every frame, counts once). A ``file_path`` without a suffix names a
    ``.png`` (the NeRF synthetic format's habit); a path written on Windows (``images\\0001.jpg``) is read too."""
    names = ["transforms.json"] if os.path.exists(os.path.join(root, "transforms.json")) else sorted(
        name for name in os.listdir(root) if name.startswith("transforms_") and name.endswith(".json"))
    if not names:
        raise FileNotFoundError(f"{root}: no transforms.json or transforms_*.json")
    frames = {}
    for name in names:
        with open(os.path.join(root, name), encoding="utf-8") as handle:
            meta = json.load(handle)
        for frame in meta["frames"]:
            path = os.path.normpath(os.path.join(root, frame["file_path"].replace("\\", "/")))
            path += "" if os.path.splitext(path)[1] else ".png"
            if os.path.exists(path):
                frames.setdefault(_frame_number(path), dict(frame, file_path=path))
    return meta, [frames[number] for number in sorted(frames)]


def nerf_clips(root: str, width: int, clip_frames: int = NERF_CLIP):
    """Runs of ``clip_frames`` frames (12 by default) of a NeRF-style capture made from a video: instant-ngp /
    nerfstudio ``transforms.json`` (see :func:`_nerf_frames`; one camera's ``fl_x fl_y cx cy w h`` and OpenCV
    ``k1 k2 p1 p2``, ``frames`` with ``file_path`` and an OpenGL-convention camera-to-world ``transform_matrix``
    fitted by COLMAP). Frames in the order of the numbers in their file names (the video's); frames listed but
    absent are left out, and clips do not cross a jump of more than ``NERF_MAX_GAP`` numbers. Frames stored smaller
    than ``w × h`` (a downscaled copy, same shape) scale the calibration with them. Frames undistorted with the
    capture's calibration, which then counts as the given focal."""
    meta, frames = _nerf_frames(root)
    numbers = [_frame_number(frame["file_path"]) for frame in frames]
    src_w, src_h = float(meta["w"]), float(meta["h"])
    distortion = np.array([meta.get(key, 0.0) for key in ("k1", "k2", "p1", "p2")])
    intrinsics = np.array([meta["fl_x"] / src_w, meta["fl_y"] / src_h, meta["cx"] / src_w, meta["cy"] / src_h])
    c2w_all = np.array([frame["transform_matrix"] for frame in frames], np.float64) @ GL_TO_CV
    label = os.path.basename(os.path.normpath(root))
    cuts = [0] + [i for i in range(1, len(frames)) if numbers[i] - numbers[i - 1] > NERF_MAX_GAP] + [len(frames)]
    runs = zip(cuts[:-1], cuts[1:])
    for start in [start for first, end in runs for start in range(first, end - clip_frames + 1, clip_frames)]:
        index = np.arange(start, start + clip_frames)
        raw = [_image(frames[i]["file_path"]) for i in index]
        height, width_px = raw[0].shape[:2]
        if abs(width_px / src_w * src_h - height) > 1:
            raise ValueError(f"{root}: transforms.json says {src_w:g}x{src_h:g}, the frames are {width_px}x{height} "
                             "(another shape)")
        kmat = np.array([[intrinsics[0] * width_px, 0, intrinsics[2] * width_px],
                         [0, intrinsics[1] * height, intrinsics[3] * height], [0, 0, 1]])
        images = [cv2.undistort(image, kmat, distortion) for image in raw]
        yield (f"{label}_{numbers[start]}-{numbers[index[-1]]}", np.stack([_resized_rgb(f, width) for f in images]),
               c2w_all[index], intrinsics)


FOOTAGE = {"kitti": kitti_clips, "seven_scenes": seven_scenes_clips, "hololens": hololens_clips, "tum": tum_clips,
           "nerf": nerf_clips}


def centre_crop(frames: np.ndarray, intrinsics: np.ndarray, aspect: tuple[int, int]
                ) -> tuple[np.ndarray, np.ndarray]:
    """``frames (F, H, W, 3)`` cropped about the centre to ``aspect`` (width, height), and their normalised
    intrinsics ``(fx, fy, cx, cy)`` (by width and height) for the cropped frames."""
    height, width = frames.shape[1:3]
    new_width = min(width, int(round(height * aspect[0] / aspect[1])))
    new_height = min(height, int(round(width * aspect[1] / aspect[0])))
    left, top = (width - new_width) // 2, (height - new_height) // 2
    fx, fy, cx, cy = np.asarray(intrinsics, np.float64)
    cropped = np.array([fx * width / new_width, fy * height / new_height,
                        (cx * width - left) / new_width, (cy * height - top) / new_height])
    return frames[:, top:top + new_height, left:left + new_width], cropped


def turn_clockwise(frames: np.ndarray, c2w: np.ndarray, intrinsics: np.ndarray, degrees: int
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``frames (F, H, W, 3)`` turned ``degrees`` (a multiple of 90) clockwise, with the camera-to-world poses
    ``(F, 4, 4)`` and normalised intrinsics ``(fx, fy, cx, cy)`` of the turned camera. Each quarter turn sends pixel
    (x, y) to (H − y, x): camera axes (X, Y, Z) to (−Y, X, Z), intrinsics to (fy, fx, 1 − cy, cx)."""
    quarter = np.array([[0.0, -1, 0, 0], [1, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    fx, fy, cx, cy = intrinsics
    for _ in range(degrees // 90 % 4):
        frames, c2w, (fx, fy, cx, cy) = np.rot90(frames, -1, axes=(1, 2)), c2w @ quarter.T, (fy, fx, 1 - cy, cx)
    return np.ascontiguousarray(frames), c2w, np.array([fx, fy, cx, cy])
