"""Full-size inference benchmark: DynaScene sampling vs the diffusers AnimateDiff anchor (DESIGN.md §10).

Random weights, ``sd15`` config, one guided (CFG) DDIM run over 24 frames at 768×432 (latent 96×54).
Prints seconds per step, total, and peak GPU memory for both rows. Example (GPU):

    python benchmarks/bench_inference.py --steps 50
    python benchmarks/bench_inference.py --device cpu --config tiny --frames 8 --height 64 --width 64 --steps 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from dynascene_core.camera import camera_condition, make_preset  # noqa: E402
from dynascene_core.conditioning import DiffusersVAECodec  # noqa: E402
from dynascene_core.models import DynaSceneModels  # noqa: E402
from dynascene_core.sampling.pipeline import SamplerSettings, generate  # noqa: E402


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def peak_gib(device):
    return torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else float("nan")


def bench_dynascene(args, device, dtype):
    models = DynaSceneModels.build(args.config, device=device, dtype=dtype).eval()
    n, h, w = args.frames, args.height, args.width
    gen = torch.Generator().manual_seed(0)
    frames = torch.rand(n, 3, h, w, generator=gen)
    alpha = torch.zeros(n, 1, h, w)
    alpha[:, :, h // 4: 3 * h // 4, w // 3: 2 * w // 3] = 1
    scene = torch.rand(3, h, w, generator=gen)
    trajectory = make_preset("orbit_left", n)
    codec = DiffusersVAECodec(models.vae)
    settings = SamplerSettings(steps=args.steps, guidance_scale=3.5, context_length=args.window)
    stamps = []

    def progress(step, total, x0):
        sync(device)
        stamps.append(time.perf_counter())

    def run():
        stamps.clear()
        sync(device)
        start = time.perf_counter()
        generate(models, codec, models.image_encoder, frames, alpha, scene, camera_condition(trajectory, h, w), n,
                 settings, progress=progress, device=device)
        sync(device)
        return start, time.perf_counter()

    run()  # warm-up (kernels, allocator)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    start, end = run()
    steps = [b - a for a, b in zip(stamps, stamps[1:])]
    return {
        "row": "DynaScene generate()",
        "sec_per_step": statistics.median(steps) if steps else float("nan"),
        "total_s": end - start,
        "denoise_s": stamps[-1] - start,
        "peak_gib": peak_gib(device),
    }


def bench_anchor(args, device, dtype):
    """diffusers UNetMotionModel (SD1.5 U-Net + v2 motion adapter, 9-channel input), one guided step."""
    from diffusers import UNetMotionModel

    from dynascene_core.models import DynaSceneConfig
    from dynascene_core.models.denoiser import motion_unet_kwargs

    config = DynaSceneConfig.preset(args.config)
    # the same architecture as DynaScene's denoiser, with diffusers' own attention processors
    unet = UNetMotionModel(**motion_unet_kwargs(config)).to(device, dtype).eval()
    n, h, w = args.frames, args.height // 8, args.width // 8
    x = torch.randn(2, 9, n, h, w, device=device, dtype=dtype)
    # diffusers' UNetMotionModel takes the cross-attention context per frame, as DynaScene's denoiser passes it
    emb = torch.randn(2, 1, config.unet["cross_attention_dim"], device=device, dtype=dtype).repeat_interleave(n, 0)
    t = torch.tensor(500, device=device)
    times = []
    with torch.no_grad():
        for _ in range(3):
            unet(x, t, emb)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        for _ in range(args.repeats):
            sync(device)
            a = time.perf_counter()
            unet(x, t, emb)
            sync(device)
            times.append(time.perf_counter() - a)
    per_step = statistics.median(times)
    return {"row": "anchor: diffusers UNetMotionModel, 1 guided step", "sec_per_step": per_step,
            "total_s": per_step * args.steps, "denoise_s": per_step * args.steps, "peak_gib": peak_gib(device)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default=None, choices=["float16", "bfloat16", "float32"])
    parser.add_argument("--config", default="sd15")
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--height", type=int, default=432)
    parser.add_argument("--width", type=int, default=768)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--window", type=int, default=24, help="context window length (frames)")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--skip-anchor", action="store_true")
    parser.add_argument("--json", default=None, help="also write the rows to this file")
    args = parser.parse_args()
    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype) if args.dtype else (torch.float16 if device.type == "cuda" else torch.float32)
    rows = [bench_dynascene(args, device, dtype)]
    torch.cuda.empty_cache() if device.type == "cuda" else None
    if not args.skip_anchor:
        rows.append(bench_anchor(args, device, dtype))
    name = torch.cuda.get_device_name() if device.type == "cuda" else "CPU"
    print(f"\n{name}, {dtype}, config {args.config}, {args.frames} frames {args.width}x{args.height}, "
          f"window {args.window}, {args.steps} steps, CFG batch 2")
    print(f"{'row':52s} {'s/step':>8s} {'denoise s':>10s} {'total s':>8s} {'peak GiB':>9s}")
    for r in rows:
        print(f"{r['row']:52s} {r['sec_per_step']:8.3f} {r['denoise_s']:10.2f} {r['total_s']:8.2f} {r['peak_gib']:9.2f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"device": name, "dtype": str(dtype), "args": vars(args), "rows": rows}, fh, indent=1)


if __name__ == "__main__":
    main()
