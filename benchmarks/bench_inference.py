"""Inference benchmark: DynaScene vs diffusers' plain AnimateDiff U-Net, in one process, one JSON.

Random weights, ``sd15`` config, guided (CFG) sampling of 24 frames at 768×432 by default. Sections,
each written to the JSON as soon as it is measured (a timeout keeps what was done):

1. baseline: diffusers ``UNetMotionModel`` (same architecture, diffusers' own processors, no
   ReferenceNet/camera), one CFG batch per step: s/step eager (first) and under ``torch.compile``
   (+ compile s; last, with DynaScene's models freed, if ``--budget-s`` is not spent);
2. DynaScene eager: ``generate()`` with DDIM at ``--steps``: s/step, total, peak memory, plus the
   memory of the loaded models, of one U-Net call and of VAE decoding (where the peak comes from);
3. profiles: top GPU kernels of one guided step, eager and compiled, to ``$OUT/profile_*.txt``;
4. DynaScene compiled (``DynaSceneDenoiser.compile_unet``): compile s, DDIM total, the fast sampler
   at its recommended step count;
5. scaling: s per step per frame and peak memory for ``--scaling-frames`` (context windows).

    python benchmarks/bench_inference.py                        # GPU, writes $OUT/bench_inference.json
    python benchmarks/bench_inference.py --device cpu --config tiny --frames 8 --height 64 --width 64 \\
        --steps 3 --scaling-frames 8,16 --scaling-steps 2 --no-compile
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
from dynascene_core.conditioning import DiffusersVAECodec, decode_latents  # noqa: E402
from dynascene_core.models import DynaSceneConfig, DynaSceneModels  # noqa: E402
from dynascene_core.sampling.pipeline import SamplerSettings, generate  # noqa: E402
from dynascene_core.sampling.schedule import RECOMMENDED_STEPS  # noqa: E402

GIB = 2 ** 30


class Bench:
    def __init__(self, args):
        self.args = args
        self.device = torch.device(args.device)
        self.cuda = self.device.type == "cuda"
        self.dtype = getattr(torch, args.dtype) if args.dtype else (torch.float16 if self.cuda else torch.float32)
        self.out = args.out or os.environ.get("OUT")
        self.start = time.perf_counter()
        self.results = {"device": torch.cuda.get_device_name() if self.cuda else "CPU", "torch": torch.__version__,
                        "dtype": str(self.dtype), "args": vars(args), "sections": {}}
        try:
            import diffusers
            self.results["diffusers"] = diffusers.__version__
        except ImportError:
            pass

    def sync(self):
        if self.cuda:
            torch.cuda.synchronize()

    def reset_peak(self):
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()

    def peak_gib(self):
        return round(torch.cuda.max_memory_allocated() / GIB, 3) if self.cuda else None

    def allocated_gib(self):
        return round(torch.cuda.memory_allocated() / GIB, 3) if self.cuda else None

    def elapsed(self):
        return time.perf_counter() - self.start

    def record(self, section, values):
        self.results["sections"][section] = values
        print(f"[{self.elapsed():6.0f}s] {section}: {json.dumps(values)}", flush=True)
        self.save()

    def save(self):
        if self.out:
            os.makedirs(self.out, exist_ok=True)
            with open(os.path.join(self.out, "bench_inference.json"), "w") as fh:
                json.dump(self.results, fh, indent=1)

    def write_text(self, name, text):
        if self.out:
            with open(os.path.join(self.out, name), "w") as fh:
                fh.write(text)


def inputs(n, height, width, seed=0):
    gen = torch.Generator().manual_seed(seed)
    frames = torch.rand(n, 3, height, width, generator=gen)
    alpha = torch.zeros(n, 1, height, width)
    alpha[:, :, height // 4: 3 * height // 4, width // 3: 2 * width // 3] = 1
    scene = torch.rand(3, height, width, generator=gen)
    return frames, alpha, scene, make_preset("orbit_left", n)


def run_generate(bench, models, n, settings):
    """One ``generate()``: (step intervals s, total s, denoise s)."""
    args = bench.args
    frames, alpha, scene, trajectory = inputs(n, args.height, args.width)
    stamps = []

    def progress(step, total, x0):
        bench.sync()
        stamps.append(time.perf_counter())

    bench.sync()
    start = time.perf_counter()
    generate(models, DiffusersVAECodec(models.vae), models.image_encoder, frames, alpha, scene,
             camera_condition(trajectory, args.height, args.width), n, settings, progress=progress,
             device=bench.device)
    bench.sync()
    end = time.perf_counter()
    steps = [b - a for a, b in zip(stamps, stamps[1:])]
    return steps, end - start, stamps[-1] - start


def settings_for(bench, steps, sampler="ddim"):
    return SamplerSettings(steps=steps, sampler=sampler, guidance_scale=3.5, context_length=bench.args.window)


def timed_calls(bench, fn, repeats):
    times = []
    for _ in range(repeats):
        bench.sync()
        a = time.perf_counter()
        fn()
        bench.sync()
        times.append(time.perf_counter() - a)
    return statistics.median(times)


def bench_baseline(bench, compiled: bool):
    """diffusers' UNetMotionModel with the same architecture and a CFG batch of 2, eager or compiled."""
    from diffusers import UNetMotionModel

    from dynascene_core.models.denoiser import motion_unet_kwargs

    args, config = bench.args, DynaSceneConfig.preset(bench.args.config)
    with torch.device(bench.device):
        unet = UNetMotionModel(**motion_unet_kwargs(config))
    unet = unet.to(bench.dtype).eval()
    n, h, w = args.window, args.height // 8, args.width // 8
    x = torch.randn(2, 9, n, h, w, device=bench.device, dtype=bench.dtype)
    context = torch.randn(2, 1, config.unet["cross_attention_dim"], device=bench.device,
                          dtype=bench.dtype).repeat_interleave(n, 0)
    t = torch.tensor(500, device=bench.device)
    result = dict(bench.results["sections"].get("baseline", {}))
    with torch.no_grad():
        call = lambda: unet(x, t, encoder_hidden_states=context)  # noqa: E731
        if compiled:
            unet.compile(fullgraph=True, dynamic=False, backend=args.compile_backend)
            result["compile_s"] = round(timed_calls(bench, call, 1), 1)
        timed_calls(bench, call, 2)
        bench.reset_peak()
        key = "compiled" if compiled else "eager"
        result[f"{key}_s_per_step"] = round(timed_calls(bench, call, args.repeats), 4)
        result[f"{key}_peak_gib"] = bench.peak_gib()
    bench.record("baseline", result)
    del unet, call
    bench.reset_peak()


def guided_call(bench, models):
    """One guided U-Net call of a context window as the pipeline makes it (projected reference bank, one
    window's camera features, CFG batch ``[uncond | cond]``), as a no-argument function."""
    args = bench.args
    n, h, w = args.window, args.height // 8, args.width // 8
    emb = torch.randn(1, 1, models.config.unet["cross_attention_dim"], device=bench.device, dtype=bench.dtype)
    bank = models.denoiser.project_reference(
        models.reference_net(torch.randn(1, 4, h, w, device=bench.device, dtype=bench.dtype), emb))
    plucker = camera_condition(make_preset("orbit_left", n), args.height, args.width)
    camera = models.camera_encoder(plucker(range(n)).to(bench.device, bench.dtype)[None])
    x = torch.randn(2, 9, n, h, w, device=bench.device, dtype=bench.dtype)
    t = torch.tensor(500, device=bench.device)
    return lambda: models.denoiser(x, t, torch.cat([emb * 0, emb]), reference=bank, reference_mask=(False, True),
                                   camera_features=camera)


def memory_breakdown(bench, models):
    """Where memory goes: models, one guided U-Net call (with the projected bank and camera features of
    one window; also with the feed-forward run per video) and VAE decoding of the whole video, each
    above what the models hold."""
    args = bench.args
    n, h, w = args.window, args.height // 8, args.width // 8
    weights = bench.allocated_gib()
    out = {"models_gib": weights}
    with torch.no_grad():
        call = guided_call(bench, models)
        out["bank_and_camera_gib"] = round(bench.allocated_gib() - weights, 3) if bench.cuda else None
        for label, per_video in (("unet_call", False), ("unet_call_ff_per_video", True)):
            models.denoiser.feed_forward_per_video(per_video)
            call()
            bench.reset_peak()
            out[f"{label}_s"] = round(timed_calls(bench, call, 3), 4)
            out[f"{label}_above_models_gib"] = round(bench.peak_gib() - weights, 3) if bench.cuda else None
        models.denoiser.feed_forward_per_video(False)
        del call
        latents = torch.randn(n, 4, h, w, device=bench.device, dtype=bench.dtype)
        codec = DiffusersVAECodec(models.vae)
        for chunk in (8, 2):
            bench.reset_peak()
            seconds = timed_calls(bench, lambda: decode_latents(codec, latents, chunk, device="cpu"), 1)
            out[f"vae_decode_chunk{chunk}_above_models_gib"] = round(bench.peak_gib() - weights, 3) if bench.cuda else None
            out[f"vae_decode_chunk{chunk}_s"] = round(seconds, 3)
    bench.reset_peak()
    return out


def profile_step(bench, models, name):
    """Top kernels of one guided step (the pipeline's U-Net call), to ``$OUT/profile_<name>.txt``."""
    from torch.profiler import ProfilerActivity, profile

    args = bench.args
    with torch.no_grad():
        call = guided_call(bench, models)
        timed_calls(bench, call, 2)
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if bench.cuda else [])
        with profile(activities=activities) as prof:
            call()
            bench.sync()
    device_time = "self_device_time_total" if bench.cuda else "self_cpu_time_total"
    events = [e for e in prof.key_averages() if getattr(e, device_time, 0) > 0 and (
        not bench.cuda or str(e.device_type).endswith("CUDA"))]
    total = sum(getattr(e, device_time) for e in events) or 1
    events.sort(key=lambda e: -getattr(e, device_time))
    categories = {}
    for e in events:
        kind = kernel_kind(e.key)
        categories[kind] = categories.get(kind, 0) + getattr(e, device_time)
    lines = [f"{name}: one guided U-Net call, {args.window} frames {args.width}x{args.height}, total device time "
             f"{total / 1e3:.1f} ms", "", "share by kind:"]
    lines += [f"  {k:12s} {v / total:6.1%}" for k, v in sorted(categories.items(), key=lambda kv: -kv[1])]
    lines += ["", f"top {args.top_kernels} kernels (self time ms, calls, share, name):"]
    for e in events[:args.top_kernels]:
        t = getattr(e, device_time)
        lines.append(f"  {t / 1e3:9.2f} {e.count:6d} {t / total:6.1%}  {e.key[:140]}")
    text = "\n".join(lines) + "\n"
    bench.write_text(f"profile_{name}.txt", text)
    print(text, flush=True)
    return {"device_ms": round(total / 1e3, 2), "share": {k: round(v / total, 3) for k, v in categories.items()}}


def kernel_kind(name: str) -> str:
    lowered = name.lower()
    for kind, marks in (("attention", ("flash", "fmha", "attention", "sdpa")),
                        ("gemm", ("gemm", "cutlass", "sm90_xmma", "cublas", "matmul", "addmm", "mm")),
                        ("conv", ("conv", "implicit", "winograd")),
                        ("norm", ("norm",)),
                        ("triton_fused", ("triton",)),
                        ("copy", ("copy", "cat", "memcpy", "memset")),
                        ("elementwise", ("elementwise", "vectorized", "reduce", "silu", "gelu", "mul", "add"))):
        if any(m in lowered for m in marks):
            return kind
    return "other"


def bench_generate(bench, models, steps, sampler="ddim"):
    run_generate(bench, models, bench.args.frames, settings_for(bench, 2, sampler))  # warm-up: kernels, allocator
    bench.reset_peak()
    step_times, total, denoise = run_generate(bench, models, bench.args.frames, settings_for(bench, steps, sampler))
    return {"sampler": sampler, "steps": steps, "s_per_step": round(statistics.median(step_times), 4) if step_times
            else None, "denoise_s": round(denoise, 2), "total_s": round(total, 2), "peak_gib": bench.peak_gib()}


def bench_compiled(bench, models):
    args = bench.args
    start = time.perf_counter()
    models.denoiser.compile_unet(backend=args.compile_backend)
    run_generate(bench, models, args.frames, settings_for(bench, 1))
    bench.record("compile", {"compile_plus_1_step_generate_s": round(time.perf_counter() - start, 1)})
    bench.record("dynascene_compiled", bench_generate(bench, models, args.steps))
    bench.record("profile_compiled", profile_step(bench, models, "compiled"))
    from torch._dynamo.utils import counters
    stats = dict(counters["stats"])  # unique_graphs > 1 would mean recompiles (e.g. per timestep)
    bench.record("compile", {**bench.results["sections"]["compile"], "dynamo_stats": stats})


def bench_scaling(bench, models):
    args, rows = bench.args, {}
    for n in [args.frames] + [int(v) for v in args.scaling_frames.split(",") if int(v) != args.frames]:
        if bench.elapsed() > args.budget_s:
            rows[n] = "skipped: time budget"
            continue
        bench.reset_peak()
        step_times, total, _ = run_generate(bench, models, n, settings_for(bench, args.scaling_steps))
        per_step = statistics.median(step_times) if step_times else float("nan")
        rows[n] = {"s_per_step": round(per_step, 4), "ms_per_step_per_frame": round(1e3 * per_step / n, 3),
                   "total_s": round(total, 2), "peak_gib": bench.peak_gib()}
        bench.record("scaling", rows)
    base = rows[args.frames]
    for n, row in rows.items():
        if isinstance(row, dict):
            row["per_frame_vs_first"] = round(row["ms_per_step_per_frame"] / base["ms_per_step_per_frame"], 3)
            if bench.cuda:
                row["peak_above_first_gib"] = round(row["peak_gib"] - base["peak_gib"], 3)
    return rows


def targets(bench):
    s = bench.results["sections"]
    out = {}
    if "baseline" in s and "dynascene_eager" in s:
        base = s["baseline"]["eager_s_per_step"]
        for key in ("dynascene_eager", "dynascene_compiled"):
            if key in s and s[key].get("s_per_step"):
                out[f"{key}_vs_eager_baseline (<= 0.6)"] = round(s[key]["s_per_step"] / base, 3)
                if s["baseline"].get("compiled_s_per_step"):
                    out[f"{key}_vs_compiled_baseline"] = round(s[key]["s_per_step"] / s["baseline"]["compiled_s_per_step"], 3)
    best = s.get("dynascene_compiled") or s.get("dynascene_eager")
    if best:
        out["total_50_steps_s (<= 10)"] = best["total_s"]
        out["peak_gib (<= 8)"] = best["peak_gib"]
    if "fast_sampler" in s:
        out["fast_sampler_total_s (<= 4)"] = s["fast_sampler"]["total_s"]
    for n, row in s.get("scaling", {}).items():
        if isinstance(row, dict) and int(n) != bench.args.frames:
            out[f"{n}_frames_per_frame_ratio (<= 1.1)"] = row.get("per_frame_vs_first")
            out[f"{n}_frames_peak_above_first_gib (<= 1)"] = row.get("peak_above_first_gib")
    return out


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
    parser.add_argument("--fast-sampler", default="dpmpp_2m", choices=list(RECOMMENDED_STEPS))
    parser.add_argument("--scaling-frames", default="96,240")
    parser.add_argument("--scaling-steps", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--top-kernels", type=int, default=25)
    parser.add_argument("--no-compile", dest="compile", action="store_false")
    parser.add_argument("--compile-backend", default="inductor", help="torch.compile backend (CPU smoke: eager)")
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--budget-s", type=float, default=360,
                        help="seconds after which scaling rows and the compiled baseline are skipped")
    parser.add_argument("--out", default=None, help="folder for the JSON and profiles (default: $OUT)")
    args = parser.parse_args()
    bench = Bench(args)
    if not args.skip_baseline:
        bench_baseline(bench, compiled=False)

    torch.manual_seed(0)
    models = DynaSceneModels.build(args.config, device=bench.device, dtype=bench.dtype).eval()
    bench.record("memory", memory_breakdown(bench, models))
    bench.record("dynascene_eager", bench_generate(bench, models, args.steps))
    bench.record("profile_eager", profile_step(bench, models, "eager"))
    if args.compile:
        try:
            bench_compiled(bench, models)
        except Exception as exc:  # a failed compile is a result too: record it, carry on eager
            bench.record("compile_error", f"{type(exc).__name__}: {exc}"[:4000])
            models.denoiser.unet._compiled_call_impl = None  # undo nn.Module.compile
    sampler = args.fast_sampler
    bench.record("fast_sampler", bench_generate(bench, models, RECOMMENDED_STEPS[sampler], sampler))
    bench.record("scaling", bench_scaling(bench, models))
    del models
    if args.compile and not args.skip_baseline:
        if bench.elapsed() < args.budget_s:
            try:
                bench_baseline(bench, compiled=True)
            except Exception as exc:  # recorded, the rest of the JSON stands
                bench.record("baseline_compile_error", f"{type(exc).__name__}: {exc}"[:4000])
        else:
            bench.record("baseline_compiled", "skipped: time budget")
    bench.results["targets"] = targets(bench)
    bench.results["wall_s"] = round(bench.elapsed(), 1)
    bench.save()
    print(json.dumps({"targets": bench.results["targets"], "wall_s": bench.results["wall_s"]}, indent=1))


if __name__ == "__main__":
    main()
