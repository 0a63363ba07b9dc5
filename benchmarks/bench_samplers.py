"""Do the fast samplers match DDIM-50? Scored on the trained small model with the evaluation metrics (CPU is enough).

    python benchmarks/bench_samplers.py --model models/demo/dynascene_small.safetensors --out outputs/bench_samplers

Generates every held-out clip of the proof dataset (``training.prepare_proof``'s test split, or ``--split val``
to choose a sampler without looking at the test clips; rendered into ``--data`` when missing; the same clips
as ``benchmarks/eval_proof.py``) with one model and each
``sampler:steps`` of ``--runs`` (default: every sampler at its recommended step count, DDIM-50 first, and DDIM-25,
the demo's), through ``python -m dynascene_core.generate`` with the same seed. Each run is scored on the
background only against the ground truth (L1, PSNR, SSIM, camera-following error) and against the first run's
videos (PSNR to the reference run: how closely a solver reproduces DDIM-50's result). Prints one table row per
run with its sampling time and writes ``samplers.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.eval_proof import ensure_held_out_clips, generate_clip, link_inputs  # noqa: E402


def default_runs() -> list[str]:
    from dynascene_core.sampling.schedule import RECOMMENDED_STEPS

    runs = [f"ddim:{RECOMMENDED_STEPS['ddim']}"]
    runs += [f"{name}:{steps}" for name, steps in RECOMMENDED_STEPS.items() if name != "ddim"]
    return runs + ["ddim:25"]


def parse_run(text: str) -> tuple[str, int]:
    from dynascene_core.sampling.schedule import SAMPLERS

    name, _, steps = text.partition(":")
    if name not in SAMPLERS or not steps.isdigit() or int(steps) < 1:
        raise argparse.ArgumentTypeError(f"expected SAMPLER:STEPS with SAMPLER one of {sorted(SAMPLERS)}, got {text!r}")
    return name, int(steps)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="models/demo/dynascene_small.safetensors", help="standalone DynaScene file")
    p.add_argument("--data", default="outputs/datasets/proof_test",
                   help="proof dataset (held-out splits rendered if missing)")
    p.add_argument("--split", choices=("test", "val"), default="test", help="held-out clips to use")
    p.add_argument("--out", default="outputs/bench_samplers")
    p.add_argument("--clips", type=int, default=8, help="held-out clips to use")
    p.add_argument("--runs", nargs="+", type=parse_run, default=None, metavar="SAMPLER:STEPS",
                   help="runs to compare; the first is the reference (default: ddim:50, each other sampler at its "
                        "recommended steps, ddim:25)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if not os.path.isfile(args.model):
        p.error(f"{args.model} does not exist")
    runs = args.runs or [parse_run(r) for r in default_runs()]
    from dynascene_core.evaluation import evaluate_folders, format_table
    from dynascene_core.video import write_frame_folder

    ids = ensure_held_out_clips(args.data, args.split, args.clips)
    os.makedirs(args.out, exist_ok=True)
    gt, masks, cameras = link_inputs(args.data, args.split, {i: i for i in ids}, os.path.join(args.out, "inputs"))
    rows, results, reference = {}, [], None
    for sampler, steps in runs:
        name = f"{sampler}_{steps}"
        folder = os.path.join(args.out, "generated", name)
        shutil.rmtree(folder, ignore_errors=True)
        started = time.perf_counter()
        for clip_id in ids:
            frames = generate_clip(args.model, os.path.join(args.data, "clips", clip_id),
                                   os.path.join(args.out, "runs", name, clip_id), sampler, steps, args.seed)
            write_frame_folder(os.path.join(folder, clip_id), frames)
        seconds = (time.perf_counter() - started) / len(ids)
        metrics = evaluate_folders(folder, gt, masks_dir=masks, cameras_dir=cameras,
                                   metrics=["l1", "psnr", "ssim", "camera"]).metrics
        reference = reference or folder
        to_reference = evaluate_folders(folder, reference, masks_dir=masks, metrics=["psnr"]).metrics["psnr"]
        rows[f"{sampler} {steps} steps"] = metrics
        results.append({"sampler": sampler, "steps": steps, "seconds_per_clip": seconds, "metrics": metrics,
                        "psnr_to_reference": to_reference})
        print(f"{sampler} {steps}: {seconds:.1f} s per clip, PSNR to the reference run {to_reference:.2f} dB",
              flush=True)
    print(format_table(rows))
    first = f"{runs[0][0]} {runs[0][1]}"
    for r in results:
        print(f"{r['sampler']} {r['steps']} steps: PSNR to {first} {r['psnr_to_reference']:.2f} dB, "
              f"{r['seconds_per_clip']:.1f} s per clip (generate CLI on this machine)")
    with open(os.path.join(args.out, "samplers.json"), "w", encoding="utf-8") as handle:
        json.dump({"model": args.model, "split": args.split, "clips": ids, "seed": args.seed, "runs": results}, handle,
                  indent=1)
    print(f"{len(ids)} held-out {args.split} clips, background only; wrote {args.out}/samplers.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
