"""Training step benchmark: time, peak memory and achieved TFLOP/s per optimizer step.

Full size (the paper's settings, random weights; nothing to download):

    python benchmarks/bench_training.py                      # GPU: stage I 768x432 batch 3, stage II 24 frames batch 1,
                                                             # gradient checkpointing on and off, bf16
CPU smoke test:

    python benchmarks/bench_training.py --device cpu --preset tiny --height 64 --width 64 --frames 4 \\
        --batch1 1 --steps 2 --warmup 1 --precision no

A step is the training loop's real work on a synthetic batch: VAE/CLIP encoding of the conditions
(frozen), ReferenceNet + camera encoder + denoiser forward, backward, gradient clipping, Adam step.
FLOPs are counted once per configuration with ``torch.utils.flop_counter`` (matmuls, convolutions,
attention; forward + backward) and divided by the measured step time.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch
from torch.utils.flop_counter import FlopCounterMode

from training.networks import TrainingNetworks, build_models, prepare_stage
from training.step import LossComputer, LossSettings

DTYPES = {"no": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def synthetic_batch(batch: int, frames: int, height: int, width: int, seed: int = 0) -> dict:
    """A batch shaped like the loader's: frames, a person-shaped alpha, scene image, gently moving cameras."""
    g = torch.Generator().manual_seed(seed)
    alpha = torch.zeros(batch, frames, 1, height, width)
    alpha[..., height // 4:, width // 3: 2 * width // 3] = 1
    c2w = torch.eye(4).repeat(batch, frames, 1, 1)
    c2w[..., 0, 3] = torch.linspace(0, 0.5, frames)
    return {
        "pixels": torch.rand(batch, frames, 3, height, width, generator=g),
        "alpha": alpha,
        "scene": torch.rand(batch, 3, height, width, generator=g),
        "c2w": c2w,
        "intrinsics": torch.tensor([0.474812461, 0.844111024, 0.5, 0.5]).repeat(batch, frames, 1),
    }


def bench(args, stage: int, checkpointing: bool) -> dict:
    device = torch.device(args.device)
    dtype = DTYPES[args.precision]
    models = build_models({"preset": args.preset, "init_from": [], "motion_module": None, "clip_vision": None,
                           "vae": None, "allow_random": True}, stage)
    trainable = prepare_stage(models, stage, checkpointing)
    models.to(device)
    models.vae.to(dtype=dtype)
    models.image_encoder.to(dtype=dtype)
    networks = TrainingNetworks(models, stage)
    params = list(trainable.values())
    optimizer = torch.optim.Adam(params, lr=1e-5)
    loss_computer = LossComputer(models.vae, models.image_encoder, LossSettings(stage, uncond_dropout=0.1))
    frames = 1 if stage == 1 else args.frames
    batch_size = args.batch1 if stage == 1 else args.batch2
    batch = synthetic_batch(batch_size, frames, args.height, args.width)

    def autocast():
        return torch.autocast(device.type, dtype=dtype, enabled=args.precision != "no")

    def step(i: int) -> None:
        loss = loss_computer.loss(networks, batch, torch.Generator().manual_seed(i), device, autocast)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    for i in range(args.warmup):
        step(i)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    sync()
    start = time.perf_counter()
    for i in range(args.steps):
        step(args.warmup + i)
    sync()
    seconds = (time.perf_counter() - start) / args.steps
    peak = torch.cuda.max_memory_allocated() / 2 ** 30 if device.type == "cuda" else float("nan")
    counter = FlopCounterMode(display=False)
    with counter:
        step(0)
    flops = counter.get_total_flops()
    result = {"stage": stage, "batch": batch_size, "frames": frames, "checkpointing": checkpointing,
              "trainable_M": sum(p.numel() for p in params) / 1e6, "step_s": seconds, "peak_GiB": peak,
              "TFLOP": flops / 1e12, "TFLOPs": flops / 1e12 / seconds}
    del models, networks, optimizer, loss_computer
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return result


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--preset", default="sd15", choices=["sd15", "tiny"])
    parser.add_argument("--height", type=int, default=432)
    parser.add_argument("--width", type=int, default=768)
    parser.add_argument("--frames", type=int, default=24, help="stage II frames per example")
    parser.add_argument("--batch1", type=int, default=3, help="stage I batch size")
    parser.add_argument("--batch2", type=int, default=1, help="stage II batch size")
    parser.add_argument("--stages", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--checkpointing", choices=["on", "off", "both"], default="both")
    parser.add_argument("--precision", choices=list(DTYPES), default="bf16")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args(argv)
    if args.device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    switches = {"on": [True], "off": [False], "both": [True, False]}[args.checkpointing]
    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else f"CPU ({os.cpu_count()} cores)"
    print(f"# DynaScene training step, preset {args.preset}, {args.width}x{args.height}, {args.precision}, {name}")
    print(f"{'stage':>5} {'batch':>5} {'frames':>6} {'grad ckpt':>9} {'trainable M':>11} {'step s':>8} "
          f"{'peak GiB':>8} {'TFLOP/step':>10} {'TFLOP/s':>8}")
    for stage in args.stages:
        for checkpointing in switches:
            try:
                r = bench(args, stage, checkpointing)
            except torch.OutOfMemoryError:
                print(f"{stage:>5} {'':>5} {'':>6} {str(checkpointing):>9}  out of GPU memory")
                gc.collect()
                torch.cuda.empty_cache()
                continue
            print(f"{r['stage']:>5} {r['batch']:>5} {r['frames']:>6} {str(r['checkpointing']):>9} "
                  f"{r['trainable_M']:>11.1f} {r['step_s']:>8.3f} {r['peak_GiB']:>8.2f} {r['TFLOP']:>10.4g} "
                  f"{r['TFLOPs']:>8.4g}", flush=True)


if __name__ == "__main__":
    main()
