"""Inference benchmark: DynaScene vs diffusers' plain AnimateDiff U-Net, eager and compiled, one JSON.

Random weights, ``sd15`` config, guided (CFG) sampling of 24 frames at 768×432, fp16 by default. The
command runs *runs* one after another, each in its own process (a clean CUDA context, memory peak and
torch.compile state) with a timeout taken from one overall ``--budget-s``; a run that fails or runs out
of time is recorded as such and the others stand. Every measured section is written at once to
``$OUT/bench_inference.json`` (merged) and ``$OUT/run_<name>.json``, so a command cut off from the
outside still leaves everything measured so far. Runs (``--runs``, in this order by default):

- ``eager``: diffusers ``UNetMotionModel`` (same architecture, diffusers' processors, no
  ReferenceNet/camera) one CFG step; DynaScene memory breakdown (models, one U-Net call with the
  feed-forward whole or in slices, VAE decode in chunks of 8 and 2); ``generate()`` with the pack's
  defaults (DDIM 50 and the fast sampler at its suggested steps); top GPU kernels of one guided step;
  one guided step with each fused attention backend forced;
- ``compiled:<mode>``: ``DynaSceneDenoiser.compile_unet(mode=...)`` (``default``, ``reduce-overhead`` =
  CUDA graphs, ``max-autotune-no-cudagraphs``): compile s, DDIM 50 and fast-sampler ``generate()``,
  profile, a two-window video, dynamo graph/break counters; the inductor cache directory and whether
  it was warm;
- ``scaling``: eager ``generate()`` s/step/frame and peak for ``--frames`` and ``--scaling-frames``
  (context windows; a row that would not finish before the budget is skipped);
- ``baseline_compiled``: the diffusers baseline under ``torch.compile``.

    python benchmarks/bench_inference.py                        # GPU, writes $OUT/bench_inference.json
    python benchmarks/bench_inference.py --device cpu --config tiny --frames 8 --height 64 --width 64 \\
        --window 8 --steps 3 --scaling-frames 16 --scaling-steps 2 --runs eager --out /tmp/bench
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.inference_parts import (Bench, bench_baseline, bench_generate, bench_scaling,  # noqa: E402
                                        compile_report, guided_call, memory_breakdown, profile_step,
                                        sdpa_backends)
from dynascene_core.io_utils import atomic_open  # noqa: E402
from dynascene_core.sampling.schedule import RECOMMENDED_STEPS  # noqa: E402

RESERVE_S = {"eager": 90, "scaling": 60}
"""Seconds of the budget kept for these runs while an earlier run is going."""
DEFAULT_RUNS = \
    "eager,compiled:default,scaling,compiled:reduce-overhead,baseline_compiled,compiled:max-autotune-no-cudagraphs"


def build_models(bench):
    """The ``--config`` networks with random weights on the device, in the run's dtype."""
    from dynascene_core.models import DynaSceneModels

    torch.manual_seed(0)
    return DynaSceneModels.build(bench.args.config, device=bench.device, dtype=bench.dtype).eval()


def run_eager(bench):
    args = bench.args
    if not args.skip_baseline:
        bench.record("baseline_eager", bench_baseline(bench, mode=None))
    models = build_models(bench)
    bench.record("memory", memory_breakdown(bench, models))
    bench.record("ddim", bench_generate(bench, models, args.steps))
    bench.record("profile", profile_step(bench, models, "eager"))
    sampler = args.fast_sampler
    bench.record("fast_sampler", bench_generate(bench, models, RECOMMENDED_STEPS[sampler], sampler))
    bench.record("sdpa_backends", sdpa_backends(bench, models))


def run_scaling(bench):
    bench_scaling(bench, build_models(bench))


def run_compiled(bench, mode: str):
    args = bench.args
    models = build_models(bench)
    report = compile_report(bench)
    options = {"backend": args.compile_backend, **({} if mode == "default" else {"mode": mode})}
    with torch.no_grad():
        call = guided_call(bench, models)
        eager_s = bench.time(call, 2)
        models.denoiser.compile_unet(**options)
        report["first_call_s"] = round(bench.time(call, 1), 2)
        report["second_call_s"] = round(bench.time(call, 1), 3)  # CUDA graphs record on a later call
        report["compile_s"] = round(report["first_call_s"] - eager_s, 1)
        del call
    bench.record("compile", {**report, **compile_report(bench, after=True)})
    bench.record("ddim", bench_generate(bench, models, args.steps))
    sampler = args.fast_sampler
    bench.record("fast_sampler", bench_generate(bench, models, RECOMMENDED_STEPS[sampler], sampler))
    bench.record("profile", profile_step(bench, models, f"compiled_{mode}"))
    frames = args.window + args.window // 2  # two context windows: the graph must be reused, not recompiled
    bench.record("two_windows", bench_generate(bench, models, 2, frames=frames))
    bench.record("compile", {**bench.results["sections"]["compile"], **compile_report(bench, after=True)})


def run_baseline_compiled(bench):
    report = compile_report(bench)
    bench.record("baseline_compiled", {**report, **bench_baseline(bench, mode="default"),
                                       **compile_report(bench, after=True)})


def run_one(args) -> None:
    bench = Bench(args, f"run_{args.run.replace(':', '_')}.json")
    if args.run == "eager":
        run_eager(bench)
    elif args.run.startswith("compiled:"):
        run_compiled(bench, args.run.split(":", 1)[1])
    elif args.run == "scaling":
        run_scaling(bench)
    elif args.run == "baseline_compiled":
        run_baseline_compiled(bench)
    else:
        raise SystemExit(f"unknown run {args.run!r}; expected eager, compiled:<mode>, scaling or baseline_compiled")


def orchestrate(args, argv) -> dict:
    """Each run in a child process with what is left of the budget; merged JSON after every run."""
    unknown = [r for r in args.runs.split(",") if r not in ("eager", "scaling", "baseline_compiled")
               and not r.startswith("compiled:")]
    if unknown:
        raise SystemExit(f"--runs: unknown {', '.join(unknown)}; expected eager, compiled:<mode>, scaling or "
                         f"baseline_compiled")
    out = args.out or os.environ.get("OUT") or "bench_out"
    os.makedirs(out, exist_ok=True)
    start = time.perf_counter()
    merged = {"command": " ".join([os.path.basename(sys.argv[0])] + argv), "runs": {}}
    path = os.path.join(out, "bench_inference.json")

    def save():
        merged["targets"] = targets(merged["runs"], args)
        merged["wall_s"] = round(time.perf_counter() - start, 1)
        with atomic_open(path) as fh:
            json.dump(merged, fh, indent=1)

    runs = args.runs.split(",")
    for i, run in enumerate(runs):
        # time kept back for the later runs that give the targets (a slow compile must not eat them)
        reserve = sum(RESERVE_S.get(later, 0) for later in runs[i + 1:])
        left = args.budget_s - (time.perf_counter() - start) - reserve
        if left < 20:
            merged["runs"][run] = {"status": "skipped: time budget"}
            save()
            continue
        child = os.path.join(out, f"run_{run.replace(':', '_')}.json")
        if os.path.exists(child):  # an earlier command's result must not pass for this run's
            os.remove(child)
        command = [sys.executable, os.path.abspath(__file__), *argv, "--run", run, "--out", out,
                   "--deadline", str(time.time() + left)]
        log = os.path.join(out, f"run_{run.replace(':', '_')}.log")
        a = time.perf_counter()
        with open(log, "w") as err:  # the child's progress lines go straight to our stdout
            proc = subprocess.Popen(command, stderr=err, start_new_session=True)
            try:
                code = proc.wait(timeout=left)
                status = "ok" if code == 0 else f"failed (exit {code}): {_tail(log)}"
            except subprocess.TimeoutExpired:  # the child and its compile workers, so the GPU is free again
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                status = f"stopped at the time budget after {left:.0f} s"
        result = json.load(open(child)) if os.path.exists(child) else {}
        merged["runs"][run] = {"status": status, "wall_s": round(time.perf_counter() - a, 1), **result}
        print(f"== {run}: {status[:300]} ({merged['runs'][run]['wall_s']} s)", flush=True)
        save()
    print_table(merged)
    return merged


def _tail(path, chars=1500):
    with open(path) as fh:
        return fh.read()[-chars:]


def _get(runs, run, *keys):
    value = runs.get(run, {}).get("sections", {})
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def targets(runs, args) -> dict:
    """The issue's targets next to the measured figures (None = not measured)."""
    base = _get(runs, "eager", "baseline_eager", "s_per_step")
    out = {"baseline_eager_s_per_step": base,
           "baseline_compiled_s_per_step": _get(runs, "baseline_compiled", "baseline_compiled", "s_per_step")}
    for run in runs:
        if run == "eager" or run.startswith("compiled:"):
            step = _get(runs, run, "ddim", "s_per_step")
            ratio = round(step / base, 3) if step and base else None
            out[run] = {"s_per_step": step, "vs_eager_baseline (<= 0.6)": ratio,
                        "ddim_total_s (<= 10)": _get(runs, run, "ddim", "total_s"),
                        "fast_sampler_total_s (<= 4)": _get(runs, run, "fast_sampler", "total_s"),
                        "peak_gib (<= 8)": _get(runs, run, "ddim", "peak_gib")}
    for n, row in (_get(runs, "scaling", "scaling") or {}).items():
        if isinstance(row, dict) and "per_frame_vs_first" in row and int(n) != args.frames:
            out[f"{n}_frames"] = {f"per_frame_vs_{args.frames} (<= 1.1)": row["per_frame_vs_first"],
                                  f"peak_above_{args.frames}_gib (<= 1)": row.get("peak_above_first_gib")}
    return out


def print_table(merged) -> None:
    runs = merged["runs"]
    print("\nrun                                   s/step  DDIM total  fast total  peak GiB  compile s  status")
    rows = [("baseline eager", "eager", _get(runs, "eager", "baseline_eager"), {}, None),
            ("baseline compiled", "baseline_compiled", _get(runs, "baseline_compiled", "baseline_compiled"), {}, None)]
    rows += [(f"DynaScene {run}", run, _get(runs, run, "ddim"), _get(runs, run, "fast_sampler"),
              _get(runs, run, "compile", "compile_s")) for run in runs if run == "eager" or run.startswith("compiled:")]
    for label, run, ddim, fast, compile_s in rows:
        ddim, fast = ddim or {}, fast or {}
        cells = [ddim.get("s_per_step"), ddim.get("total_s"), fast.get("total_s"), ddim.get("peak_gib"), compile_s]
        widths = (7, 11, 11, 9, 10)
        print(f"{label:36s} " + " ".join(f"{'-' if c is None else c!s:>{w}}" for c, w in zip(cells, widths))
              + f"  {runs.get(run, {}).get('status', '-')[:60]}")
    for n, row in (_get(runs, "scaling", "scaling") or {}).items():
        print(f"scaling {n} frames: {json.dumps(row)}")
    print(json.dumps({"targets": merged["targets"], "wall_s": merged["wall_s"]}, indent=1), flush=True)


def parse_args(argv):
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
    parser.add_argument("--scaling-steps", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--top-kernels", type=int, default=25)
    parser.add_argument("--runs", default=DEFAULT_RUNS, help="comma-separated, in order (see above)")
    parser.add_argument("--compile-backend", default="inductor", help="torch.compile backend (CPU smoke: eager)")
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--budget-s", type=float, default=330, help="wall-clock seconds for all runs together")
    parser.add_argument("--out", default=None, help="folder for the JSON and profiles (default: $OUT)")
    parser.add_argument("--run", default=None, help=argparse.SUPPRESS)       # set for a child process
    parser.add_argument("--deadline", type=float, default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if args.run:
        run_one(args)
    else:
        orchestrate(args, argv)


if __name__ == "__main__":
    main()
