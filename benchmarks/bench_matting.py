"""Robust Video Matting speed at 1080p: frames per second for both variants at the default ratio.

    python benchmarks/bench_matting.py [--variants mobilenetv3 resnet50] [--frames 24] [--chunk 8]
                                       [--height 1080 --width 1920] [--device cuda|cpu] [--ratio R]

Random weights (speed does not depend on their values). fp16 on CUDA, fp32 on CPU (the library's
defaults). Two numbers per variant:
- ``model fps``: the network alone on frames already on the device (chunks of ``--chunk`` frames,
  recurrent state carried), synchronised after every chunk;
- ``matte_video fps``: the public :func:`dynascene_core.matting.matte_video` from a CPU float tensor,
  including host↔device copies and building alpha, foreground and foreground video on the CPU.
One warm-up chunk is run first and not timed. On CUDA the peak allocated memory is reported.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from dynascene_core.matting import VARIANTS, RobustVideoMatting, auto_downsample_ratio, default_dtype, matte_video  # noqa: E402


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def model_fps(model: RobustVideoMatting, frames: torch.Tensor, chunk: int, ratio: float) -> float:
    """Frames/s of the network alone; ``frames`` ``(F, 3, H, W)`` already on the model's device and dtype."""
    device = frames.device
    with torch.no_grad():
        model(frames[:chunk].unsqueeze(0), downsample_ratio=ratio)  # warm-up
        sync(device)
        rec = [None] * 4
        start = time.perf_counter()
        for i in range(0, len(frames), chunk):
            _, _, *rec = model(frames[i:i + chunk].unsqueeze(0), *rec, downsample_ratio=ratio)
            sync(device)
        return len(frames) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--frames", type=int, default=None, help="frames timed (default 48 on CUDA, 4 on CPU)")
    parser.add_argument("--chunk", type=int, default=None, help="frames per forward (default 8 on CUDA, 2 on CPU)")
    parser.add_argument("--height", type=int, default=1080)
    parser.add_argument("--width", type=int, default=1920)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--ratio", type=float, default=None, help="downsample ratio (default: automatic)")
    parser.add_argument("--skip-matte-video", action="store_true", help="time the network only")
    args = parser.parse_args()

    device = torch.device(args.device)
    dtype = default_dtype(device)
    count = args.frames or (48 if device.type == "cuda" else 4)
    chunk = args.chunk or (8 if device.type == "cuda" else 2)
    ratio = args.ratio or auto_downsample_ratio(args.height, args.width)
    frames_cpu = torch.rand(count, 3, args.height, args.width)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {name}  dtype: {dtype}  input: {count} frames {args.width}x{args.height}  chunk: {chunk}  "
          f"downsample_ratio: {ratio} (internal {round(args.width * ratio)}x{round(args.height * ratio)})  "
          f"torch {torch.__version__}")
    print(f"{'variant':12s} {'params (M)':>10s} {'model fps':>10s} {'matte_video fps':>16s} {'peak GiB':>9s}")
    for variant in args.variants:
        model = RobustVideoMatting(variant).eval().to(device, dtype)
        params = sum(p.numel() for p in model.parameters()) / 1e6
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        fps = model_fps(model, frames_cpu.to(device, dtype), chunk, ratio)
        full = float("nan")
        if not args.skip_matte_video:
            matte_video(model, frames_cpu[:chunk], chunk=chunk, downsample_ratio=ratio)  # warm-up
            sync(device)
            start = time.perf_counter()
            matte_video(model, frames_cpu, chunk=chunk, downsample_ratio=ratio)
            sync(device)
            full = count / (time.perf_counter() - start)
        peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
        print(f"{variant:12s} {params:10.3f} {fps:10.2f} {full:16.2f} {peak:9.2f}")


if __name__ == "__main__":
    main()
