"""Training step benchmark: time, peak memory and achieved TFLOP/s per optimizer step.

Full size (the paper's settings, random weights; nothing to download):

    python benchmarks/bench_training.py                      # GPU: stage I 768x432 batch 3, stage II 24 frames batch 1,
                                                             # gradient checkpointing on and off, bf16
CPU smoke test:

    python benchmarks/bench_training.py --device cpu --preset tiny --height 64 --width 64 --frames 4 \\
        --batch1 1 --steps 2 --warmup 1 --precision no

A step is the training loop's real work on a synthetic batch: VAE/CLIP encoding of the conditions
(frozen), ReferenceNet + camera encoder + denoiser forward, backward, gradient clipping, Adam step.
Frozen networks are held in the training precision, as ``training/train.py`` holds them.
FLOPs are counted once per configuration with ``torch.utils.flop_counter`` (matmuls, convolutions,
attention; forward + backward): ``TFLOP/step`` as executed (with checkpointing the recomputed forward
counts) and ``model TFLOP`` without recomputation, the model-FLOP rate (``model TFLOP/s``) compared with
the GPU's dense matmul rate measured in the same run at the same precision (``% matmul``). ``static GiB``
is what stays allocated between steps (weights, optimizer state); ``--profile DIR`` writes the top GPU
kernels of one step per configuration.
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

from benchmarks.bench_matting import sync
from dynascene_core.models.config import SPATIAL_POSITIONS
from dynascene_core.models.params import STAGE_GROUPS, parameter_groups
from training.networks import TrainingNetworks, build_models, hold_groups_in_dtype, prepare_stage
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
    models, _ = build_models({"preset": args.preset, "init_from": [], "motion_module": None, "clip_vision": None,
                              "vae": None, "allow_random": True, "spatial_position": args.spatial_position}, stage)
    trainable = prepare_stage(models, stage, checkpointing)
    models.to(device)
    hold_groups_in_dtype(models, [g for g in parameter_groups(models) if g not in STAGE_GROUPS[stage]], dtype)
    networks = TrainingNetworks(models)
    params = list(trainable.values())
    optimizer = torch.optim.Adam(params, lr=1e-5)
    loss_computer = LossComputer(models.latent_codec(), models.image_encoder, LossSettings(stage, uncond_dropout=0.1))
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

    cuda = device.type == "cuda"
    for i in range(args.warmup):
        step(i)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    sync(device)
    start = time.perf_counter()
    for i in range(args.steps):
        step(args.warmup + i)
    sync(device)
    seconds = (time.perf_counter() - start) / args.steps
    peak = torch.cuda.max_memory_allocated() / 2 ** 30 if cuda else float("nan")
    reserved = torch.cuda.max_memory_reserved() / 2 ** 30 if cuda else float("nan")
    static = torch.cuda.memory_allocated() / 2 ** 30 if cuda else float("nan")
    flops = count_flops(step)
    if checkpointing:  # model FLOPs: the same step without recomputation
        models.disable_gradient_checkpointing()
        model_flops = count_flops(step)
        models.enable_gradient_checkpointing()
    else:
        model_flops = flops
    result = {"stage": stage, "batch": batch_size, "frames": frames, "checkpointing": checkpointing,
              "trainable_M": sum(p.numel() for p in params) / 1e6, "step_s": seconds, "peak_GiB": peak,
              "reserved_GiB": reserved, "static_GiB": static, "TFLOP": flops / 1e12, "TFLOPs": flops / 1e12 / seconds,
              "model_TFLOP": model_flops / 1e12, "model_TFLOPs": model_flops / 1e12 / seconds}
    if args.profile:
        result["profile"] = profile_step(step, device, os.path.join(
            args.profile, f"profile_training_stage{stage}_{'ckpt' if checkpointing else 'nockpt'}.txt"),
            f"training stage {stage}, batch {batch_size}, {frames} frames {args.width}x{args.height}, "
            f"{args.precision}, gradient checkpointing {'on' if checkpointing else 'off'}: one optimizer step")
    del models, networks, optimizer, loss_computer
    gc.collect()
    if cuda:
        torch.cuda.empty_cache()
    return result


def count_flops(step) -> float:
    """FLOPs of one ``step(i)`` call (forward + backward) by ``torch.utils.flop_counter``."""
    counter = FlopCounterMode(display=False)
    with counter:
        step(0)
    return counter.get_total_flops()


def profile_step(step, device: torch.device, path: str, title: str) -> dict:
    """Top kernels of one ``step(i)`` call, written to ``path``; returns the summary by kernel kind."""
    from torch.profiler import ProfilerActivity, profile

    from benchmarks.inference_parts import kernel_summary

    cuda = device.type == "cuda"
    with profile(activities=[ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])) as prof:
        step(1)
        sync(device)
    lines, summary = kernel_summary(prof, cuda, 25, title)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return summary


def matmul_rate(device: torch.device, dtype: torch.dtype, size: int = 8192, repeats: int = 20) -> float:
    """Measured dense matmul rate in TFLOP/s: ``repeats`` products of two ``size``² matrices in ``dtype``."""
    a, b = (torch.randn(size, size, device=device, dtype=dtype) for _ in range(2))
    for _ in range(3):
        a @ b
    sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    sync(device)
    return 2 * size ** 3 * repeats / (time.perf_counter() - start) / 1e12


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
    parser.add_argument("--spatial-position", choices=["none", *(code for code in SPATIAL_POSITIONS if code)],
                        default=None,
                        help="the model's spatial position code (default: the preset's, none)")
    parser.add_argument("--checkpointing", choices=["on", "off", "both"], default="both")
    parser.add_argument("--precision", choices=list(DTYPES), default="bf16")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--profile", metavar="DIR", help="write the top GPU kernels of one step per configuration")
    args = parser.parse_args(argv)
    if args.device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    switches = {"on": [True], "off": [False], "both": [True, False]}[args.checkpointing]
    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else f"CPU ({os.cpu_count()} cores)"
    print(f"# DynaScene training step, preset {args.preset}, {args.width}x{args.height}, {args.precision}, {name}")
    rate = matmul_rate(torch.device(args.device), DTYPES[args.precision], 8192 if args.device != "cpu" else 512)
    print(f"# measured dense matmul rate ({args.precision}): {rate:.1f} TFLOP/s")
    print(f"{'stage':>5} {'batch':>5} {'frames':>6} {'grad ckpt':>9} {'trainable M':>11} {'step s':>8} "
          f"{'static GiB':>10} {'peak GiB':>8} {'reserved':>8} {'TFLOP/step':>10} {'TFLOP/s':>8} {'model TFLOP':>11} "
          f"{'model TFLOP/s':>13} {'% matmul':>8}")
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
                  f"{r['trainable_M']:>11.1f} {r['step_s']:>8.3f} {r['static_GiB']:>10.2f} {r['peak_GiB']:>8.2f} "
                  f"{r['reserved_GiB']:>8.2f} {r['TFLOP']:>10.4g} {r['TFLOPs']:>8.4g} {r['model_TFLOP']:>11.4g} "
                  f"{r['model_TFLOPs']:>13.4g} {r['model_TFLOPs'] / rate:>8.1%}", flush=True)
            if "profile" in r:
                print("  profile:", ", ".join(f"{k} {v:.0%}" for k, v in sorted(r["profile"]["share"].items(),
                                                                              key=lambda kv: -kv[1])), flush=True)


if __name__ == "__main__":
    main()
