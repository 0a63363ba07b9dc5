"""Throughput of each data-preparation stage (frames of source video per second) on real footage.

    python benchmarks/bench_data_prepare.py [--size 1920x1080] [--device auto] [--detector fasterrcnn_resnet50_fpn_v2]
                                            [--frames N] [--video-io auto|imageio-ffmpeg|opencv] [--out DIR]

The footage is the two public clips in ``tests/data`` (SAM 2 demo videos, Apache-2.0), joined and
scaled to ``--size`` (the paper keeps 1080p sources) and written as H.264, so decoding costs what a
real 1080p file costs. Without a working imageio-ffmpeg (a GPU machine with no ffmpeg), or with
``--video-io opencv``, video I/O goes through OpenCV's bundled FFmpeg instead: the source is MPEG-4
Part 2 (OpenCV's wheels carry no H.264 encoder), decoding uses ``cv2.VideoCapture`` and clips are
written as PNG frames (``write.video_storage: png``); the report names the I/O used. Ray is not needed.

Each stage runs on its own with the pipeline's default settings: shot cuts (PySceneDetect, decodes
everything; skipped with a note when it is not installed), the person detector on 2 fps samples,
eq. 3 on 8 fps samples, RVM at the stored size (432p), camera estimation at 512 px on the longer side and the clip
write.
Detector and RVM use random weights in the real architectures (the compute is the same as with
trained weights). Prints a table and the projected hours of one machine for the paper's 1,000 hours
of footage (every frame through every stage, the scan's second decode counted at the measured decode
cost: an upper bound, since dropped clips skip the later stages); writes
``data_prepare_throughput.json`` under ``--out`` (default ``$OUT`` or the current folder).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import warnings

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))

from dynascene_core.data.build import estimate_camera, resolve_device  # noqa: E402
from dynascene_core.data.clips import write_clip  # noqa: E402
from dynascene_core.data.motion import motion_intensity, motion_sample_indices  # noqa: E402
from dynascene_core.data.prepare_config import load_prepare_config  # noqa: E402
from dynascene_core.data.scan import resize_short_side  # noqa: E402
from dynascene_core.data.shots import detect_shots  # noqa: E402
from dynascene_core.matting import matte_video, rvm_from_state_dict  # noqa: E402
from dynascene_core.video import iter_video, read_video, write_video  # noqa: E402

CHUNK = 32  # frames per decoded chunk, as the pipeline's stages decode


def timed(name, fn, *args, **kwargs):
    """``(result, seconds)``, printed as it goes (partial results survive a time limit)."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    print(f"  {name}: {seconds:.2f} s", flush=True)
    return result, seconds


def has_imageio_ffmpeg() -> bool:
    """imageio-ffmpeg installed with an ffmpeg it can run (its source build has none)."""
    try:
        import imageio_ffmpeg

        imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError):
        return False
    return True


def opencv_read(path: str, chunk: int = CHUNK):
    """Yield ``(n <= chunk, H, W, 3)`` RGB uint8 chunks decoded by OpenCV (no imageio-ffmpeg)."""
    import cv2

    capture = cv2.VideoCapture(path)
    if not capture.isOpened():
        raise RuntimeError(f"{path}: OpenCV cannot open it")
    buffer = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        buffer.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
        if len(buffer) == chunk:
            yield np.stack(buffer)
            buffer = []
    capture.release()
    if buffer:
        yield np.stack(buffer)


def opencv_write(path: str, frames: np.ndarray, fps: float) -> None:
    """MPEG-4 Part 2 through OpenCV's bundled FFmpeg (its wheels have no H.264 encoder)."""
    import cv2

    height, width = frames.shape[1:3]
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    if not writer.isOpened():
        raise RuntimeError(f"{path}: OpenCV cannot write MPEG-4 video here")
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1920x1080")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--detector", default="fasterrcnn_resnet50_fpn_v2")
    parser.add_argument("--frames", type=int, default=0, help="use only the first N frames (0: all 186)")
    parser.add_argument("--out", default=os.environ.get("OUT", "."))
    parser.add_argument("--video-io", choices=("auto", "imageio-ffmpeg", "opencv"), default="auto",
                        help="auto: imageio-ffmpeg (the pipeline's) when it can run ffmpeg, else OpenCV")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    device = resolve_device(args.device)
    config = load_prepare_config()
    fps = 24.0
    import cv2

    ffmpeg = has_imageio_ffmpeg() if args.video_io == "auto" else args.video_io == "imageio-ffmpeg"
    names = [os.path.join(ROOT, "tests", "data", name)
             for name in ("sam2_juggle_640x360.mp4", "sam2_bedroom_640x360.mp4")]
    clips = [read_video(n).frames if ffmpeg else np.concatenate(list(opencv_read(n))) for n in names]
    joined = [f for c in clips for f in c][:args.frames or None]
    source = np.stack([cv2.resize(f, (width, height), interpolation=cv2.INTER_CUBIC) for f in joined])
    work = tempfile.mkdtemp()
    path = os.path.join(work, "source.mp4")
    (write_video if ffmpeg else opencv_write)(path, source, fps)
    video_io = ("imageio-ffmpeg (H.264 source, mp4 clips)" if ffmpeg
                else "OpenCV (MPEG-4 Part 2 source, PNG clip frames)")
    print(f"video I/O: {video_io}", flush=True)
    count = len(source)
    results = {}

    try:
        _, seconds = timed("cuts", detect_shots, path, config["shots"]["threshold"], 48)
        results["cuts"] = seconds
    except ImportError:
        print("  cuts: skipped, PySceneDetect is not installed (pip install -r requirements-data.txt)")

    def decode():
        chunks = iter_video(path, CHUNK) if ffmpeg else opencv_read(path)
        return np.concatenate([resize_short_side(c, config["write"]["short_side"]) for c in chunks])

    frames, seconds = timed("decode+resize", decode)
    results["decode+resize"] = seconds

    from torchvision.models import detection

    from dynascene_core.data.people import TorchvisionPersonDetector

    torch.manual_seed(0)
    weights = os.path.join(work, "detector.pth")
    torch.save(getattr(detection, args.detector)(weights=None, weights_backbone=None, num_classes=91).state_dict(),
               weights)
    detector = TorchvisionPersonDetector(weights, args.detector, device, config["person"]["detect_short_side"])
    sampled = source[motion_sample_indices(count, fps, config["person"]["sample_fps"])]
    small = resize_short_side(sampled, config["person"]["detect_short_side"])
    detector(small[:1])  # warm-up
    _, seconds = timed("person", detector, small)
    results["person"] = seconds

    motion_frames = resize_short_side(source[motion_sample_indices(count, fps, 8.0)], config["motion"]["short_side"])
    _, seconds = timed("motion", motion_intensity, motion_frames, 8.0)
    results["motion"] = seconds

    from test_matting_rvm import random_state_dict

    model = rvm_from_state_dict(random_state_dict("mobilenetv3"), device=device)
    matte_video(model, frames[:8])  # warm-up
    matte, seconds = timed("matting", matte_video, model, frames, chunk=config["matting"]["chunk"])
    results["matting"] = seconds
    alpha = matte.alpha[:, 0].numpy()
    alpha = (alpha > alpha.mean()).astype(np.float32)  # random weights: a plausible-size mask for the camera stage

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (trajectory, _), seconds = timed("camera", estimate_camera, frames, alpha, config)
    results["camera"] = seconds
    _, seconds = timed("write", write_clip, work, "bench", frames, trajectory, fps, masks=alpha, motion_score=0.5,
                       video_storage="mp4" if ffmpeg else "png")
    results["write"] = seconds

    # the scan decodes the video a second time (samples for the detector and eq. 3): same decode cost
    total = sum(results.values()) + results["decode+resize"]
    report = {
        "machine": f"{torch.cuda.get_device_name() if device.startswith('cuda') else 'CPU'}, "
                   f"{os.cpu_count()} cores, torch threads {torch.get_num_threads()}",
        "device": device, "source": f"{width}x{height} @ {fps:g} fps, {count} frames", "video_io": video_io,
        "frames_per_second": {k: round(count / v, 2) for k, v in results.items()},
        "all_stages_frames_per_second": round(count / total, 2),
        "projected_hours_for_1000_hours_of_30fps_footage": round(1000 * 3600 * 30 / (count / total) / 3600, 1),
    }
    for stage, speed in report["frames_per_second"].items():
        print(f"{stage:<14} {speed:>9.2f} frames/s")
    print(f"all stages     {report['all_stages_frames_per_second']:>9.2f} frames/s -> 1,000 h of 30 fps footage: "
          f"{report['projected_hours_for_1000_hours_of_30fps_footage']} machine-hours ({report['machine']})")
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "data_prepare_throughput.json"), "w") as handle:
        json.dump(report, handle, indent=1)


if __name__ == "__main__":
    main()
