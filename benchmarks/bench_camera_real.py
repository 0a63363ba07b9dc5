"""Camera estimation on real footage with ground-truth cameras: accuracy, focal, verdict and speed.

    python benchmarks/bench_camera_real.py [--kitti DIR] [--seven-scenes DIR] [--hololens DIR] [--tum DIR] [--nerf DIR]
                                           [--width 512]
                                           [--aspect 16:9] [--turn 90] [--method fast|accurate|colmap]
                                           [--focal estimated|given] [--json results.json]

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
- ``--nerf``: a NeRF-style capture made from a video (instant-ngp / nerfstudio ``transforms.json`` and its frames),
  e.g. ``data/nerf/fox`` of ``github.com/NVlabs/instant-ngp`` (NVIDIA Source Code License, non-commercial; its initial
  commit 60dbb8e holds all 67 frames, later ones 50): a hand-held phone video, portrait 1080×1920, of a fox head on
  a wallpapered wall, with poses and calibration **fitted by COLMAP to these frames** at the source size, so they
  agree with the images (the other footages' references are off by about the targets themselves). Frames
  undistorted with the capture's calibration (then the given focal); 12-frame clips of consecutive numbered frames.

Frames are resized so that their longer side is ``--width``. ``--aspect 16:9`` (any ``W:H``) then crops them about
their centre to that shape, as phone and camera video is, and moves the normalised intrinsics with the crop (the
poses do not change); footage wider than that shape ends narrower than ``--width`` (KITTI: 276×155). ``--turn 90``
(180, 270) then turns the frames that many degrees clockwise, and the cameras and intrinsics with them: portrait
(or upside-down) video as a phone records it, whose sensor reads the picture's columns (or its rows bottom to top).

Metrics (per clip), both trajectories expressed relative to their first frame, at the **last frame**:

- *relative* (``rot_rel``, ``tdir_rel``): rotation error (degrees) between the estimated and true rotation
  from the first to the last frame, and the angle between the estimated and true translation from the
  first to the last camera (no alignment needed: the first cameras coincide by construction and a
  direction has no scale);
- *aligned* (``rot_al``, ``tdir_al``, as in camera-control evaluations): the estimated camera centres are
  first aligned to the ground truth by a similarity transform (Umeyama; for a nearly straight path, whose
  roll about the path the centres cannot fix, by scale only). The alignment's rotation is fitted to the
  centres alone, so on short arcs it moves the rotation error by the path-shape error (see BENCHMARKS.md).

Also: focal error (%) when the focal is estimated, the verdict of the quality report, and estimation
frames/s (reading and resizing excluded) in wall-clock time and per second of process CPU time (on a shared
machine the CPU-time figure is what an idle machine would give). The summary is printed per footage and
over all clips. The JSON output adds the per-frame rotation error curve (relative) of every clip.

``--method colmap`` runs no estimator of this package but COLMAP's own full pipeline (``pycolmap``: SIFT
features, exhaustive matching, incremental mapping; the calibration fixed with ``--focal given``) on the
same frames: a reference for how closely an established SfM system agrees with this ground truth. Give it
``--width 1226`` for KITTI's source resolution. Clips it cannot reconstruct completely are reported as failed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from dynascene_core.camera import estimate_trajectory  # noqa: E402
from dynascene_core.camera.trajectory import (CameraTrajectory, quaternion_to_matrix, rotation_angle_deg,  # noqa: E402
                                               slerp)
from dynascene_core.evaluation.camera_error import trajectory_error  # noqa: E402

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


def nerf_clips(root: str, width: int):
    """12-frame runs of a NeRF-style capture made from a video: ``transforms.json`` (instant-ngp / nerfstudio: one
    camera's ``fl_x fl_y cx cy w h`` and OpenCV ``k1 k2 p1 p2`` at the source size, ``frames`` with ``file_path`` and
    an OpenGL-convention camera-to-world ``transform_matrix`` from COLMAP at that size). Frames in the order of the
    numbers in their file names (the video's); frames listed but absent are left out, and clips do not cross a
    jump of more than ``NERF_MAX_GAP`` numbers. Frames undistorted with the capture's calibration, which then counts
    as the given focal."""
    with open(os.path.join(root, "transforms.json"), encoding="utf-8") as handle:
        meta = json.load(handle)
    frames = sorted((frame for frame in meta["frames"] if os.path.exists(os.path.join(root, frame["file_path"]))),
                    key=lambda frame: _frame_number(frame["file_path"]))
    numbers = [_frame_number(frame["file_path"]) for frame in frames]
    src_w, src_h = int(meta["w"]), int(meta["h"])
    kmat = np.array([[meta["fl_x"], 0, meta["cx"]], [0, meta["fl_y"], meta["cy"]], [0, 0, 1]])
    distortion = np.array([meta.get(key, 0.0) for key in ("k1", "k2", "p1", "p2")])
    intrinsics = np.array([meta["fl_x"] / src_w, meta["fl_y"] / src_h, meta["cx"] / src_w, meta["cy"] / src_h])
    c2w_all = np.array([frame["transform_matrix"] for frame in frames], np.float64) @ GL_TO_CV
    label = os.path.basename(os.path.normpath(root))
    cuts = [0] + [i for i in range(1, len(frames)) if numbers[i] - numbers[i - 1] > NERF_MAX_GAP] + [len(frames)]
    runs = zip(cuts[:-1], cuts[1:])
    for start in [start for first, end in runs for start in range(first, end - NERF_CLIP + 1, NERF_CLIP)]:
        index = np.arange(start, start + NERF_CLIP)
        raw = [_image(os.path.join(root, frames[i]["file_path"])) for i in index]
        if raw[0].shape[:2] != (src_h, src_w):
            raise ValueError(f"{root}: transforms.json says {src_w}x{src_h}, the frames are "
                             f"{raw[0].shape[1]}x{raw[0].shape[0]}")
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


def umeyama(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Similarity (s, R, t) minimising Σ|dst − (s R src + t)|² for point sets ``(N, 3)``."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    a, b = src - mu_s, dst - mu_d
    u, sigma, vt = np.linalg.svd(b.T @ a / len(src))
    d = np.diag([1, 1, np.sign(np.linalg.det(u @ vt))])
    rot = u @ d @ vt
    var = (a ** 2).sum() / len(src)
    scale = float(np.trace(np.diag(sigma) @ d) / var) if var > 1e-12 else 1.0
    return scale, rot, mu_d - scale * rot @ mu_s


def last_frame_errors(gt_c2w: np.ndarray, est_c2w: np.ndarray) -> tuple[float, float]:
    """(rotation error deg, translation-direction error deg) at the last frame after similarity alignment."""
    gt = np.linalg.inv(gt_c2w[0]) @ gt_c2w
    est = np.linalg.inv(est_c2w[0]) @ est_c2w
    spread = np.linalg.svd(gt[:, :3, 3] - gt[:, :3, 3].mean(0), compute_uv=False)
    if np.linalg.norm(est[:, :3, 3], axis=1).max() < 1e-9:  # no estimated translation: nothing to align
        scale, rot, shift = 1.0, np.eye(3), np.zeros(3)
    elif spread[1] > 0.05 * spread[0]:
        scale, rot, shift = umeyama(est[:, :3, 3], gt[:, :3, 3])
    else:  # straight-line path: the roll about it is not observable from positions; scale only
        scale = float(np.sum(est[:, :3, 3] * gt[:, :3, 3]) / np.sum(est[:, :3, 3] ** 2))
        rot, shift = np.eye(3), np.zeros(3)
    rot_err = float(rotation_angle_deg(gt[-1, :3, :3], rot @ est[-1, :3, :3]))
    t_gt = gt[-1, :3, 3]
    t_est = scale * rot @ est[-1, :3, 3] + shift
    cos = t_gt @ t_est / (np.linalg.norm(t_gt) * np.linalg.norm(t_est) + 1e-12)
    return rot_err, float(np.degrees(np.arccos(np.clip(cos, -1, 1))))


def _poses(c2w: np.ndarray) -> CameraTrajectory:
    """Camera-to-world matrices as a trajectory (the intrinsics play no part in the errors)."""
    return CameraTrajectory(c2w, np.tile([1.0, 1.0, 0.5, 0.5], (len(c2w), 1)))


def colmap_reference(frames: np.ndarray, intrinsics: np.ndarray | None) -> np.ndarray | None:
    """COLMAP's full pipeline on ``frames`` (F, H, W, 3) → c2w ``(F, 4, 4)``, or None unless every frame is
    registered. ``intrinsics`` (normalised) are held fixed; None lets COLMAP refine its own focal."""
    import tempfile

    import pycolmap

    count, height, width = frames.shape[:3]
    with tempfile.TemporaryDirectory() as work:
        images = os.path.join(work, "images")
        os.makedirs(images)
        for index, frame in enumerate(frames):
            cv2.imwrite(os.path.join(images, f"{index:04d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        reader = pycolmap.ImageReaderOptions()
        if intrinsics is not None:
            reader.camera_model = "PINHOLE"
            reader.camera_params = ",".join(str(v) for v in intrinsics * [width, height, width, height])
        database = os.path.join(work, "database.db")
        pycolmap.extract_features(database, images, camera_mode=pycolmap.CameraMode.SINGLE, reader_options=reader,
                                  device=pycolmap.Device.cpu)
        pycolmap.match_exhaustive(database, device=pycolmap.Device.cpu)
        options = pycolmap.IncrementalPipelineOptions()
        options.ba_refine_focal_length = intrinsics is None
        options.ba_refine_principal_point = False
        options.ba_refine_extra_params = False
        options.mapper.init_max_forward_motion = 1.0  # driving footage: forward motion is all there is
        options.mapper.init_min_tri_angle = 4.0
        models = pycolmap.incremental_mapping(database, images, work, options=options)
    if not models:
        return None
    model = max(models.values(), key=lambda m: m.num_reg_images())
    if model.num_reg_images() < count:
        return None
    c2w = np.tile(np.eye(4), (count, 1, 1))
    for image in model.images.values():
        c2w[int(image.name[:4]), :3] = np.linalg.inv(np.vstack([image.cam_from_world().matrix(), [0, 0, 0, 1]]))[:3]
    return c2w


def summarise(rows: list[dict]) -> None:
    """Median / p90 / worst of each error measure, focal error, verdicts and speed of ``rows``."""
    frames_total = sum(r["frames"] for r in rows)
    fps = frames_total / sum(r["frames"] / r["fps"] for r in rows)
    cpu_fps = frames_total / sum(r["frames"] / r["cpu_fps"] for r in rows)
    for key, label in (("rotation_deg", "rotation, relative (deg)"),
                       ("rotation_aligned_deg", "rotation, aligned (deg)"),
                       ("direction_deg", "translation dir., relative"),
                       ("direction_aligned_deg", "translation dir., aligned")):
        values = np.array([r[key] for r in rows])
        print(f"{label:28s} median {np.median(values):.3f}  p90 {np.percentile(values, 90):.3f}  "
              f"worst {values.max():.3f}")
    verdicts = {v: sum(r["verdict"] == v for r in rows) for v in ("reliable", "uncertain", "unreliable")}
    print(f"|focal error| (%) median {np.nanmedian([abs(r['focal_error_pct']) for r in rows]):.2f}; "
          f"verdicts {verdicts}; {fps:.1f} frames/s wall, {cpu_fps:.1f} per CPU-second")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kitti", help="checkout of dawn-mathew/Visual-Odometry-KITTI-Sequence")
    parser.add_argument("--seven-scenes", help="the data/ folder of a checkout of andyzeng/tsdf-fusion-python")
    parser.add_argument("--hololens", help="sample-data/hololens-dataset/000 of a checkout of ardaduz/deep-video-mvs")
    parser.add_argument("--tum", help="a TUM RGB-D sequence folder (rgb.txt, rgb/, groundtruth.txt)")
    parser.add_argument("--nerf", help="a NeRF-style capture made from a video (transforms.json, images), e.g. "
                        "data/nerf/fox of NVlabs/instant-ngp")
    parser.add_argument("--width", type=int, default=512, help="the frames' longer side")
    parser.add_argument("--aspect", default=None, help="crop the frames about their centre to W:H, e.g. 16:9")
    parser.add_argument("--turn", type=int, choices=(0, 90, 180, 270), default=0,
                        help="then turn the frames (and cameras) that many degrees clockwise")
    parser.add_argument("--method", choices=("fast", "accurate", "colmap"), default="fast",
                        help="colmap: COLMAP's full pipeline as a reference (not this package's estimator)")
    parser.add_argument("--focal", choices=("estimated", "given"), default="estimated")
    parser.add_argument("--json", default=None, help="write per-clip results here")
    args = parser.parse_args()
    footage = [(key, getattr(args, key)) for key in FOOTAGE if getattr(args, key)]
    if not footage:
        parser.error("give at least one of --kitti, --seven-scenes, --hololens, --tum, --nerf")
    aspect = None
    if args.aspect:
        parts = args.aspect.split(":")
        if len(parts) != 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
            parser.error(f"--aspect must be W:H with positive integers, got {args.aspect!r}")
        aspect = (int(parts[0]), int(parts[1]))

    rows = []
    print(f"{'clip':22s} {'rot_rel':>7s} {'rot_al':>7s} {'tdir_rel':>8s} {'tdir_al':>7s} {'focal_err%':>10s} "
          f"{'verdict':>10s} {'reproj_px':>9s} {'fps':>6s} {'cpu_fps':>7s}")
    for source, name, frames, gt_c2w, intrinsics in ((key, *clip) for key, root in footage
                                                     for clip in FOOTAGE[key](root, args.width)):
        if aspect:
            frames, intrinsics = centre_crop(frames, intrinsics, aspect)
        frames, gt_c2w, intrinsics = turn_clockwise(frames, gt_c2w, intrinsics, args.turn)
        given = intrinsics if args.focal == "given" else None
        start, start_cpu = time.perf_counter(), time.process_time()
        if args.method == "colmap":
            est_c2w, q = colmap_reference(frames, given), None
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                est, stats = estimate_trajectory(frames, None, intrinsics=given, method=args.method)
            est_c2w, q = est.c2w.numpy(), stats.quality
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - start_cpu
        if est_c2w is None:
            print(f"{name:22s} failed: COLMAP did not register every frame")
            continue
        relative = trajectory_error(_poses(gt_c2w), _poses(est_c2w))  # both relative to their first frame
        curve, dir_rel = relative.rotation_deg, float(relative.direction_deg[-1])
        if np.isnan(dir_rel):  # the estimate has no translation (taken for a pure rotation): 90° off
            dir_rel = 90.0
        rot_al, dir_al = last_frame_errors(gt_c2w, est_c2w)
        focal_err = 100 * (q.focal_px / (intrinsics[0] * frames.shape[2]) - 1) if q else float("nan")
        rows.append(dict(footage=source, clip=name, frames=len(frames), rotation_deg=float(curve[-1]),
                         rotation_aligned_deg=rot_al, direction_deg=dir_rel, direction_aligned_deg=dir_al,
                         focal_error_pct=focal_err,
                         verdict=q.verdict if q else "-", reprojection_px=q.reprojection_px if q else float("nan"),
                         fps=len(frames) / seconds, cpu_fps=len(frames) / cpu_seconds,
                         rotation_curve_deg=curve.round(4).tolist(), quality=q.to_dict() if q else None))
        r = rows[-1]
        print(f"{name:22s} {r['rotation_deg']:7.3f} {rot_al:7.3f} {dir_rel:8.3f} {dir_al:7.3f} {focal_err:10.2f} "
              f"{r['verdict']:>10s} {r['reprojection_px']:9.3f} {r['fps']:6.1f} {r['cpu_fps']:7.1f}")
    if not rows:
        return

    groups = [(key, [r for r in rows if r["footage"] == key]) for key, _ in footage]
    for label, group in [g for g in groups if g[1]] + ([("all", rows)] if len(footage) > 1 else []):
        print(f"-- {label}: {len(group)} clips")
        summarise(group)
    print(f"({args.method}, focal {args.focal}, width {args.width}{f', cropped to {args.aspect}' if aspect else ''}"
          f"{f', turned {args.turn} deg' if args.turn else ''}, "
          f"{os.cpu_count()} CPUs visible)")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(rows, handle, indent=1)


if __name__ == "__main__":
    main()
