"""One full DynaScene forward (ReferenceNet + camera encoder + denoiser) with random weights.

Default: ``sd15`` config, 24 frames at 768x432 (latent 96x54), CFG batch 2 (unconditional sample
without reference, conditional with it; camera in both), fp16 on CUDA. Prints the median time of
each part over ``--repeats`` runs after ``--warmup`` runs (CUDA-synchronised) and the peak memory.

    python benchmarks/bench_model_forward.py                         # GPU, paper size
    python benchmarks/bench_model_forward.py --device cpu --frames 2 --height 256 --width 256 \\
        --warmup 0 --repeats 1                                       # CPU smoke test
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dynascene_core.models import CameraEncoder, DynaSceneConfig, DynaSceneDenoiser, ReferenceNet  # noqa: E402


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", default="sd15", choices=["sd15", "tiny"])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--dtype", default=None, choices=["fp16", "bf16", "fp32"],
                   help="default: fp16 on CUDA, fp32 on CPU")
    p.add_argument("--frames", type=int, default=24)
    p.add_argument("--height", type=int, default=432, help="pixels")
    p.add_argument("--width", type=int, default=768, help="pixels")
    p.add_argument("--batch", type=int, default=2, help="denoiser batch (2 = one CFG pair)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=None, help="CPU threads (torch.set_num_threads)")
    return p.parse_args()


def main():
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[
        args.dtype or ("fp16" if device.type == "cuda" else "fp32")]
    cfg = DynaSceneConfig.preset(args.config)
    torch.manual_seed(0)
    t0 = time.perf_counter()
    with torch.device(device):
        reference_net = ReferenceNet(cfg).to(dtype).eval()
        camera_encoder = CameraEncoder(**cfg.camera).to(dtype).eval()
        denoiser = DynaSceneDenoiser(cfg).to(dtype).eval()
    build_s = time.perf_counter() - t0

    h, w, frames, batch = args.height // 8, args.width // 8, args.frames, args.batch
    dim = cfg.unet["cross_attention_dim"]
    scene = torch.randn(1, 4, h, w, device=device, dtype=dtype)
    plucker = torch.randn(1, frames, 6, args.height, args.width, device=device, dtype=dtype)
    sample = torch.randn(batch, 9, frames, h, w, device=device, dtype=dtype)
    emb = torch.randn(batch, 1, dim, device=device, dtype=dtype)
    emb[: batch // 2] = 0  # unconditional half: zero CLIP token and no reference
    mask = tuple(i >= batch // 2 for i in range(batch))  # CFG layout: [uncond | cond]

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    def timed(fn):
        sync()
        start = time.perf_counter()
        out = fn()
        sync()
        return out, time.perf_counter() - start

    times = {"reference_net": [], "camera_encoder": [], "denoiser": [], "total": []}
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    with torch.inference_mode():
        for i in range(args.warmup + args.repeats):
            bank, t_ref = timed(lambda: reference_net(scene, emb[-1:]))
            cam, t_cam = timed(lambda: camera_encoder(plucker))
            out, t_den = timed(lambda: denoiser(sample, 500, emb, reference=bank, reference_mask=mask,
                                                camera_features=cam))
            if i >= args.warmup:
                for key, value in zip(times, (t_ref, t_cam, t_den, t_ref + t_cam + t_den)):
                    times[key].append(value)
    assert out.shape == (batch, 4, frames, h, w) and torch.isfinite(out.float()).all()

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    print(f"DynaScene forward: config {args.config}, {frames} frames, {args.width}x{args.height} px "
          f"(latent {w}x{h}), batch {batch}, {str(dtype).removeprefix('torch.')}, {name}")
    print(f"build {build_s:.1f} s; median of {args.repeats} after {args.warmup} warm-up")
    print(f"{'part':<16}{'median s':>10}{'min s':>10}")
    for key, values in times.items():
        print(f"{key:<16}{statistics.median(values):>10.3f}{min(values):>10.3f}")
    if device.type == "cuda":
        print(f"peak GPU memory allocated: {torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB")
    else:
        print(f"peak process RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB")


if __name__ == "__main__":
    main()
