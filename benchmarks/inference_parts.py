"""Measurements for ``bench_inference.py`` (one process = one run; see that script for the command)."""

from __future__ import annotations

import getpass
import json
import os
import statistics
import tempfile
import time

import torch

from dynascene_core.camera import camera_condition, make_preset
from dynascene_core.conditioning import decode_latents
from dynascene_core.io_utils import atomic_open
from dynascene_core.models import DynaSceneConfig
from dynascene_core.models.clip import zero_image_embeds_like
from dynascene_core.models.denoiser import FEED_FORWARD_PIECES
from dynascene_core.sampling.pipeline import SamplerSettings, generate

GIB = 2 ** 30


class Bench:
    """Device, timing helpers and the run's JSON (``results["sections"]``), saved after every section."""

    def __init__(self, args, file_name: str):
        self.args = args
        self.device = torch.device(args.device)
        self.cuda = self.device.type == "cuda"
        self.dtype = getattr(torch, args.dtype) if args.dtype else (torch.float16 if self.cuda else torch.float32)
        self.out = args.out
        self.path = os.path.join(self.out, file_name)
        self.start = time.perf_counter()
        self.results = {"device": torch.cuda.get_device_name() if self.cuda else "CPU", "torch": torch.__version__,
                        "dtype": str(self.dtype), "sections": {}}
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

    def left_s(self) -> float:
        """Seconds until the run's deadline (infinite without one)."""
        return self.args.deadline - time.time() if self.args.deadline else float("inf")

    def time(self, fn, repeats: int) -> float:
        """Median wall-clock seconds of ``fn()`` over ``repeats`` calls, device-synchronised."""
        times = []
        for _ in range(repeats):
            self.sync()
            a = time.perf_counter()
            fn()
            self.sync()
            times.append(time.perf_counter() - a)
        return statistics.median(times)

    def record(self, section, values):
        self.results["sections"][section] = values
        print(f"[{time.perf_counter() - self.start:6.0f}s] {self.args.run} {section}: {json.dumps(values)}", flush=True)
        os.makedirs(self.out, exist_ok=True)
        with atomic_open(self.path) as fh:  # the runner may kill this process at any moment
            json.dump(self.results, fh, indent=1)

    def write_text(self, name, text):
        with atomic_open(os.path.join(self.out, name)) as fh:
            fh.write(text)


def inputs(n, height, width, seed=0):
    gen = torch.Generator().manual_seed(seed)
    frames = torch.rand(n, 3, height, width, generator=gen)
    alpha = torch.zeros(n, 1, height, width)
    alpha[:, :, height // 4: 3 * height // 4, width // 3: 2 * width // 3] = 1
    scene = torch.rand(3, height, width, generator=gen)
    return frames, alpha, scene, make_preset("orbit_left", n)


def run_generate(bench, models, n, settings):
    """One ``generate()`` with the matting colour given (as the nodes pass RVM's): its timings."""
    args = bench.args
    frames, alpha, scene, trajectory = inputs(n, args.height, args.width)
    steps, decoded = [], []

    def progress(step, total, x0):
        bench.sync()
        steps.append(time.perf_counter())

    def decode_progress(done, total):
        decoded.append(time.perf_counter())

    bench.sync()
    start = time.perf_counter()
    generate(models, models.latent_codec(), models.image_encoder, frames, alpha, scene,
             camera_condition(trajectory, args.height, args.width), n, settings, progress=progress,
             device=bench.device, decode_progress=decode_progress, foreground=frames)
    bench.sync()
    end = time.perf_counter()
    return {"step_s": [b - a for a, b in zip(steps, steps[1:])], "total_s": end - start,
            "until_last_step_s": steps[-1] - start, "decode_s": decoded[-1] - decoded[0],
            "composite_s": end - decoded[-1]}


def settings_for(bench, steps, sampler="ddim"):
    """The pack's defaults except the step count, sampler and the benchmark's window."""
    return SamplerSettings(steps=steps, sampler=sampler, context_length=bench.args.window)


def bench_generate(bench, models, steps, sampler="ddim", frames=None):
    frames = frames or bench.args.frames
    run_generate(bench, models, frames, settings_for(bench, 2, sampler))  # warm-up: kernels, allocator
    bench.reset_peak()
    t = run_generate(bench, models, frames, settings_for(bench, steps, sampler))
    return {"sampler": sampler, "steps": steps, "frames": frames,
            "s_per_step": round(statistics.median(t["step_s"]), 4) if t["step_s"] else None,
            "total_s": round(t["total_s"], 2), "until_last_step_s": round(t["until_last_step_s"], 2),
            "decode_s": round(t["decode_s"], 2), "composite_s": round(t["composite_s"], 2),
            "peak_gib": bench.peak_gib()}


def bench_baseline(bench, mode):
    """diffusers' UNetMotionModel with the same architecture, one CFG batch of 2: eager (``mode`` None)
    or ``torch.compile``d (``mode`` "default" or a torch.compile mode)."""
    from diffusers import UNetMotionModel

    from dynascene_core.models.denoiser import motion_unet_kwargs, skip_upsample_size_log_when_compiling

    args, config = bench.args, DynaSceneConfig.preset(bench.args.config)
    with torch.device(bench.device):
        unet = UNetMotionModel(**motion_unet_kwargs(config))
    unet = unet.to(bench.dtype).eval()
    n, h, w = args.window, args.height // 8, args.width // 8
    x = torch.randn(2, 9, n, h, w, device=bench.device, dtype=bench.dtype)
    context = torch.randn(2, 1, config.unet["cross_attention_dim"], device=bench.device,
                          dtype=bench.dtype).repeat_interleave(n, 0)
    t = torch.tensor(500, device=bench.device)
    result = {}
    with torch.no_grad():
        call = lambda: unet(x, t, encoder_hidden_states=context)  # noqa: E731
        if mode is not None:
            skip_upsample_size_log_when_compiling()  # as compile_unet does: one graph at 768x432 too
            unet.compile(fullgraph=True, dynamic=False, backend=args.compile_backend,
                         **({} if mode == "default" else {"mode": mode}))
            result["first_call_s"] = round(bench.time(call, 1), 1)
        bench.time(call, 2)
        bench.reset_peak()
        result["s_per_step"] = round(bench.time(call, args.repeats), 4)
        result["peak_gib"] = bench.peak_gib()
    return result


def guided_unet_call(models, frames: int, height: int, width: int, device="cpu", dtype=None):
    """One guided U-Net call of a ``frames``-frame window at ``height x width`` px as the pipeline makes it
    (projected reference bank, the window's camera features, CFG batch ``[uncond | cond]`` with the zero
    unconditional token), random inputs in the model's latent shapes → ``(call, tensors the call holds)``."""
    config = models.config
    h, w = height // config.latent_downscale, width // config.latent_downscale
    dtype = dtype or next(models.denoiser.parameters()).dtype
    emb = torch.randn(1, 1, config.unet["cross_attention_dim"], device=device, dtype=dtype)
    bank = models.denoiser.project_reference(
        models.reference_net(torch.randn(1, config.latent_channels, h, w, device=device, dtype=dtype), emb))
    camera = models.camera_encoder(torch.randn(1, frames, 6, height, width, device=device, dtype=dtype))
    x = torch.randn(2, config.unet["in_channels"], frames, h, w, device=device, dtype=dtype)
    embeds = torch.cat([zero_image_embeds_like(emb), emb])

    def call():
        return models.denoiser(x, 500, embeds, reference=bank, reference_mask=(False, True), camera_features=camera)

    return call, (x, embeds, *[t for kv in bank.values() for t in kv], *camera)


def guided_call(bench, models):
    """:func:`guided_unet_call` at the benchmark's window and size, as a no-argument function."""
    args = bench.args
    return guided_unet_call(models, args.window, args.height, args.width, bench.device, bench.dtype)[0]


def memory_breakdown(bench, models):
    """Where memory goes, each figure above what the models hold: one guided U-Net call with the
    feed-forward whole and in the default slices, and VAE decoding of the window's frames in chunks of
    8 and of 2 (the former and the current default)."""
    down = models.config.latent_downscale
    n, h, w = bench.args.window, bench.args.height // down, bench.args.width // down
    weights = bench.allocated_gib()
    out = {"models_gib": weights}
    with torch.no_grad():
        call = guided_call(bench, models)
        out["bank_and_camera_gib"] = round(bench.allocated_gib() - weights, 3) if bench.cuda else None
        for pieces in (1, FEED_FORWARD_PIECES):
            models.denoiser.feed_forward_chunks(pieces)
            call()
            bench.reset_peak()
            out[f"unet_call_ff{pieces}_s"] = round(bench.time(call, 3), 4)
            out[f"unet_call_ff{pieces}_above_models_gib"] = round(bench.peak_gib() - weights, 3) if bench.cuda else None
        del call
        latents = torch.randn(n, models.config.latent_channels, h, w, device=bench.device, dtype=bench.dtype)
        codec = models.latent_codec()
        for chunk in (8, SamplerSettings.vae_chunk):
            bench.reset_peak()
            seconds = bench.time(lambda: decode_latents(codec, latents, chunk, device="cpu"), 1)
            above = round(bench.peak_gib() - weights, 3) if bench.cuda else None
            out[f"vae_decode_chunk{chunk}_above_models_gib"] = above
            out[f"vae_decode_chunk{chunk}_s"] = round(seconds, 3)
    bench.reset_peak()
    return out


def profile_step(bench, models, name):
    """Top kernels of one guided step (the pipeline's U-Net call), to ``$OUT/profile_<name>.txt``."""
    from torch.profiler import ProfilerActivity, profile

    args = bench.args
    with torch.no_grad():
        call = guided_call(bench, models)
        bench.time(call, 3)
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if bench.cuda else [])
        with profile(activities=activities) as prof:
            call()
            bench.sync()
    lines, summary = kernel_summary(prof, bench.cuda, args.top_kernels,
                                    f"{name}: one guided U-Net call, {args.window} frames {args.width}x{args.height}")
    bench.write_text(f"profile_{name}.txt", "\n".join(lines) + "\n")
    return summary


def kernel_summary(prof, cuda: bool, top: int, title: str) -> tuple[list[str], dict]:
    """A finished ``torch.profiler`` run's device time by kernel kind and its ``top`` kernels: ``(report lines
    under ``title``, {"device_ms", "share" by kind, "top5"})``."""
    device_time = "self_device_time_total" if cuda else "self_cpu_time_total"
    events = [e for e in prof.key_averages() if getattr(e, device_time, 0) > 0 and (
        not cuda or str(e.device_type).endswith("CUDA"))]
    total = sum(getattr(e, device_time) for e in events) or 1
    events.sort(key=lambda e: -getattr(e, device_time))
    categories = {}
    for e in events:
        kind = kernel_kind(e.key)
        categories[kind] = categories.get(kind, 0) + getattr(e, device_time)
    lines = [f"{title}, total device time {total / 1e3:.1f} ms", "", "share by kind:"]
    lines += [f"  {k:12s} {v / total:6.1%}" for k, v in sorted(categories.items(), key=lambda kv: -kv[1])]
    lines += ["", f"top {top} kernels (self time ms, calls, share, name):"]
    for e in events[:top]:
        t = getattr(e, device_time)
        lines.append(f"  {t / 1e3:9.2f} {e.count:6d} {t / total:6.1%}  {e.key[:140]}")
    return lines, {"device_ms": round(total / 1e3, 2), "share": {k: round(v / total, 3) for k, v in categories.items()},
                   "top5": [f"{getattr(e, device_time) / 1e3:.2f} ms {e.key[:80]}" for e in events[:5]]}


def sdpa_backends(bench, models):
    """One guided U-Net call with PyTorch's attention restricted to each fused backend (s, or why it
    cannot run): whether forcing one would beat PyTorch's own choice (``default``)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    out = {}
    with torch.no_grad():
        call = guided_call(bench, models)
        out["default"] = round(bench.time(call, 3), 4)
        for backend in ("FLASH_ATTENTION", "EFFICIENT_ATTENTION", "CUDNN_ATTENTION"):
            try:
                with sdpa_kernel([getattr(SDPBackend, backend)]):
                    call()
                    out[backend.lower()] = round(bench.time(call, 3), 4)
            except (RuntimeError, AttributeError) as exc:
                out[backend.lower()] = f"{type(exc).__name__}: {str(exc)[:200]}"
    return out


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


def bench_scaling(bench, models):
    """s per step per frame and peak for the run's frame count and ``--scaling-frames`` (context windows),
    each row recorded as soon as it is measured; a row whose estimated time exceeds the deadline is skipped."""
    args, rows = bench.args, {}
    for n in [args.frames] + [int(v) for v in args.scaling_frames.split(",") if v and int(v) != args.frames]:
        first = rows.get(args.frames)
        measured = [(k, r) for k, r in rows.items() if isinstance(r, dict)]
        estimate = measured[-1][1]["total_s"] * n / measured[-1][0] * 1.3 if measured else 0  # the longest so far
        if estimate > bench.left_s() - 5:
            rows[n] = f"skipped: about {estimate:.0f} s needed, {bench.left_s():.0f} s left"
            bench.record("scaling", rows)
            continue
        bench.reset_peak()
        t = run_generate(bench, models, n, settings_for(bench, args.scaling_steps))
        per_step = statistics.median(t["step_s"]) if t["step_s"] else float("nan")
        row = {"s_per_step": round(per_step, 4), "ms_per_step_per_frame": round(1e3 * per_step / n, 3),
               "total_s": round(t["total_s"], 2), "peak_gib": bench.peak_gib()}
        if isinstance(first, dict):
            row["per_frame_vs_first"] = round(row["ms_per_step_per_frame"] / first["ms_per_step_per_frame"], 3)
            if bench.cuda:
                row["peak_above_first_gib"] = round(row["peak_gib"] - first["peak_gib"], 3)
        rows[n] = row
        bench.record("scaling", rows)


def compile_report(bench, after: bool = False) -> dict:
    """Where torch.compile caches its work and what dynamo did: before compiling, the inductor cache
    directory and whether it already held files (a warm cache skips most of the compile); after, the
    graph and graph-break counts (one graph: no breaks, no recompiles across steps, windows and samplers)."""
    from torch._dynamo.utils import counters

    if after:
        return {"dynamo_unique_graphs": counters["stats"].get("unique_graphs", 0),  # > 1: recompiled
                "dynamo_graph_breaks": sum(counters["graph_break"].values()),
                "cudagraph_skips": counters["inductor"].get("cudagraph_skips", 0)}
    try:
        from torch._inductor.runtime.cache_dir_utils import cache_dir
        directory = cache_dir()
    except ImportError:  # older torch: the documented default
        directory = os.environ.get("TORCHINDUCTOR_CACHE_DIR") or os.path.join(
            tempfile.gettempdir(), f"torchinductor_{getpass.getuser()}")
    return {"inductor_cache_dir": directory, "cache_warm": os.path.isdir(directory) and bool(os.listdir(directory))}
