"""Evaluate the proof-of-learning models on the held-out test set (CPU is enough), like the paper's Table 3.

    python benchmarks/eval_proof.py --cam models/demo/dynascene_small.safetensors \\
        --nocam outputs/proof/dynascene_small_nocam.safetensors --out outputs/proof_eval

1. Renders the held-out splits of the proof dataset (``training.prepare_proof``: held-out rooms and
   cameras; identical to the one trained against, it is deterministic) unless ``--data`` already holds
   them. ``--split test`` (default) measures; ``--split val`` is for choosing sampler settings first.
2. Generates every held-out clip with each model through ``python -m dynascene_core.generate`` (in-process
   ``main``: the person video, its matte, the human-free first frame as the scene image, the clip's
   pose file as the requested camera), reading the generated ``background.mp4`` back. With several ``--seed``
   values every clip is generated once per seed (samples ``CLIP_seedS``) and the metrics pool all samples: one
   sample's camera-following error moves with the sampler's rounding (thread count, GPU), so a ratio near the
   acceptance needs several.
3. Evaluates both sets with :func:`dynascene_core.evaluation.evaluate_folders` against the rendered
   ground-truth backgrounds, on the background only (mattes given) and with the camera-following error
   (the requested pose files given); metrics whose backbone weights are missing are listed as skipped.
   ``--only generate`` stops here (e.g. on a GPU machine: ``--generate-args '--device cuda --dtype float32'``);
   ``--only evaluate`` skips generation and evaluates the ``generated_cam`` / ``generated_nocam`` folders an
   earlier ``--only generate`` left in ``--out`` (same ``--data``, ``--split`` and ``--clips``), with the
   generation settings recorded there (``generation.json``, written by every generation: sampler, steps, seeds,
   generate arguments; a folder without it is described by the command line's values).
4. Prints both rows in the paper's layout, each row's turn ratio (the share of the requested turn its
   backgrounds make), RotErr per seed, a bootstrap interval of the RotErr ratio over clips and the count of
   samples with unreliable camera estimates (how far the numbers can stray), two references without a model
   (the ground truth itself: the camera estimator's floor; its first frame held still: a background that
   ignores the camera; ``report_references.json``) and the acceptance check (camera control: rotation error at
   most half the ablation's, higher background PSNR), writes ``table.txt``, ``report_cam.json``,
   ``report_nocam.json`` and the side-by-side pictures ``strip.png`` / ``strip.gif`` (foreground, scene image,
   requested trajectory, generated with and without camera control, ground truth).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
import time
from collections.abc import Sequence

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

ROWS = (("cam", "DynaScene small (camera control)"), ("nocam", "w/o camera control"))


def ensure_held_out_clips(root: str, split: str, count: int) -> list[str]:
    """The first ``count`` clip ids of ``split`` (``val`` or ``test``), rendering the held-out splits into
    ``root`` when it holds no dataset."""
    from dynascene_core.data import read_manifest
    from training.prepare_proof import write_proof_dataset

    manifest = os.path.join(root, "manifest.jsonl")
    if not os.path.isfile(manifest):
        write_proof_dataset(root, train_scenes=0, test_scenes=count, val_scenes=count)
    ids = [r.clip_id for r in read_manifest(root) if r.split == split]
    if not ids:
        raise SystemExit(f"error: {root} has no {split} clips (expected a proof dataset with that split: "
                         f"python -m training.prepare_proof --out DIR)")
    return ids[:count]


def generate_clip(model: str, clip_dir: str, out_dir: str, sampler: str, steps: int, seed: int,
                  extra: Sequence[str] = ()) -> np.ndarray:
    """Run the generate CLI's ``main`` on one test clip (``extra``: further CLI arguments); returns the
    background frames ``(F, H, W, 3)``."""
    from dynascene_core.generate import main as generate_main
    from dynascene_core.video import read_video

    argv = ["--video", os.path.join(clip_dir, "frames"), "--mask", os.path.join(clip_dir, "masks"),
            "--scene", os.path.join(clip_dir, "scene", "000000.png"), "--camera", os.path.join(clip_dir, "poses.txt"),
            "--dynascene", model, "--sampler", sampler, "--steps", str(steps), "--seed", str(seed), "--device", "cpu",
            "--out", out_dir, *extra]
    if generate_main(argv) != 0:
        raise SystemExit(f"error: generate failed on {clip_dir} with {model}")
    return read_video(os.path.join(out_dir, "background.mp4")).frames


def sample_names(ids: Sequence[str], seeds: Sequence[int]) -> dict[str, tuple[str, int]]:
    """Generated sample name -> (held-out clip id, seed): the clip id itself for one seed, ``CLIP_seedS`` for
    several (every clip generated once per seed; the metrics then pool all samples). Ordered seed by seed."""
    if len(seeds) == 1:
        return {clip_id: (clip_id, seeds[0]) for clip_id in ids}
    return {f"{clip_id}_seed{seed}": (clip_id, seed) for seed in seeds for clip_id in ids}


def link_inputs(data: str, split: str, clip_of: dict[str, str], work: str) -> tuple[str, str, str]:
    """Folders the evaluation matches by sample name, for each ``name -> clip id`` of ``clip_of``: the clip's
    ground truth ``NAME/`` frames, mattes ``NAME/``, cameras ``NAME.txt``."""
    folders = [os.path.join(work, name) for name in ("ground_truth", "masks", "cameras")]
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)
        os.makedirs(folder)
    gt, masks, cameras = folders
    for name, clip_id in clip_of.items():
        clip = os.path.join(data, "clips", clip_id)
        shutil.copytree(os.path.join(data, split, clip_id, "background"), os.path.join(gt, name))
        shutil.copytree(os.path.join(clip, "masks"), os.path.join(masks, name))
        shutil.copy(os.path.join(clip, "poses.txt"), os.path.join(cameras, f"{name}.txt"))
    return gt, masks, cameras


def reference_rows(data: str, split: str, ids: list[str], work: str) -> dict[str, dict]:
    """What the measures give without a model, on the same clips (once each, whatever the seeds): the ground truth
    itself (``truth``: the camera estimator's floor on these backgrounds) and its first frame held still for the
    whole clip (``still``: a background that ignores the camera). Metrics: PSNR and the camera-following error."""
    from dynascene_core.evaluation import evaluate_folders
    from dynascene_core.video import read_video, write_frame_folder

    gt, masks, cameras = link_inputs(data, split, {clip_id: clip_id for clip_id in ids}, work)
    still = os.path.join(work, "still_first_frame")
    shutil.rmtree(still, ignore_errors=True)
    for name in sorted(os.listdir(gt)):
        frames = read_video(os.path.join(gt, name)).frames
        write_frame_folder(os.path.join(still, name), np.repeat(frames[:1], len(frames), axis=0))
    return {key: evaluate_folders(folder, gt, masks_dir=masks, cameras_dir=cameras, metrics=("psnr", "camera")).metrics
            for key, folder in (("truth", gt), ("still", still))}


ZOOM = 2
"""Cells are shown at twice the 64×96 training resolution (nearest neighbour), so the pictures stay legible."""


def _zoom(image: np.ndarray) -> np.ndarray:
    return np.repeat(np.repeat(image, ZOOM, axis=0), ZOOM, axis=1)


def _label(image: np.ndarray, text: str) -> np.ndarray:
    import cv2

    bar = np.full((14, image.shape[1], 3), 255, np.uint8)
    cv2.putText(bar, text, (2, 11), cv2.FONT_HERSHEY_SIMPLEX, 0.33, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([bar, image])


def strip_frames(data: str, split: str, clip_id: str, generated: dict[str, np.ndarray]) -> list[np.ndarray]:
    """One picture per frame: foreground | scene image | requested trajectory | camera control | ablation |
    ground truth, each labelled."""
    import cv2
    from PIL import Image

    from dynascene_core.camera import CameraTrajectory, plot_trajectory
    from dynascene_core.video import matte_from_frames, read_video

    clip = os.path.join(data, "clips", clip_id)
    frames = read_video(os.path.join(clip, "frames")).frames
    alpha = matte_from_frames(read_video(os.path.join(clip, "masks")).frames)[..., None]
    foreground = (frames * alpha + 127.5 * (1 - alpha)).astype(np.uint8)
    truth = read_video(os.path.join(data, split, clip_id, "background")).frames
    height, width = frames.shape[1:3]
    scene = np.array(Image.open(os.path.join(clip, "scene", "000000.png")).convert("RGB"))
    plot = plot_trajectory(CameraTrajectory.load(os.path.join(clip, "poses.txt")), (2 * ZOOM * width, ZOOM * height))
    pictures = []
    for t in range(len(frames)):
        cells = [_label(_zoom(foreground[t]), "foreground"), _label(_zoom(scene), "scene image"),
                 _label(plot, "requested camera"), _label(_zoom(generated["cam"][t]), "camera control"),
                 _label(_zoom(generated["nocam"][t]), "w/o camera"), _label(_zoom(truth[t]), "ground truth")]
        gap = np.full((ZOOM * height + 14, 2, 3), 255, np.uint8)
        row = [c for cell in cells for c in (cell, gap)][:-1]
        pictures.append(cv2.copyMakeBorder(np.concatenate(row, 1), 0, 2, 0, 0, cv2.BORDER_CONSTANT, value=(255,) * 3))
    return pictures


def write_pictures(out: str, rows: list[list[np.ndarray]]) -> None:
    """``strip.png``: every row at frames 0, F/2 and F−1 stacked; ``strip.gif``: the rows animated."""
    from PIL import Image

    count = min(len(r) for r in rows)
    still = np.concatenate([np.concatenate([r[i] for r in rows]) for i in (0, count // 2, count - 1)])
    Image.fromarray(still).save(os.path.join(out, "strip.png"))
    animation = [Image.fromarray(np.concatenate([r[i] for r in rows])) for i in range(count)]
    animation[0].save(os.path.join(out, "strip.gif"), save_all=True, append_images=animation[1:], duration=125, loop=0)


def rot_errs_by(per_clip: dict[str, dict], samples: dict[str, tuple[str, int]], key: str) -> dict:
    """The samples' RotErr grouped by ``key`` ("clip" or "seed") -> list (``per_clip``: an evaluation report's,
    sample name -> details); samples without a camera estimate are left out."""
    grouped: dict = {}
    for name, (clip, seed) in samples.items():
        value = (per_clip.get(name, {}).get("camera") or {}).get("rot_err")
        grouped.setdefault(clip if key == "clip" else seed, []).extend([] if value is None else [value])
    return grouped


def per_seed_rot_err(per_clip: dict[str, dict], samples: dict[str, tuple[str, int]]) -> dict[int, float | None]:
    """Seed -> mean RotErr over that seed's samples with a camera estimate (None when none has one): how far one
    seed's number can stray from the pooled one."""
    return {seed: float(np.mean(values)) if values else None
            for seed, values in rot_errs_by(per_clip, samples, "seed").items()}


def ratio_interval(cam: dict[str, dict], nocam: dict[str, dict], samples: dict[str, tuple[str, int]],
                   resamples: int = 2000, seed: int = 0) -> tuple[float, float] | None:
    """95 % bootstrap interval of RotErr camera / ablation over the held-out clips (``cam`` / ``nocam``: the two
    reports' per-clip details): clips are drawn with replacement, each with all its seeds, the ratio of the two
    means taken per draw. Clips without a camera estimate in either row are left out; None when none is left."""
    a, b = ({clip: np.mean(v) for clip, v in rot_errs_by(per_clip, samples, "clip").items() if v}
            for per_clip in (cam, nocam))
    clips = [clip for clip in a if clip in b]
    if not clips:
        return None
    a_values, b_values = np.array([a[c] for c in clips]), np.array([b[c] for c in clips])
    draws = np.random.default_rng(seed).integers(0, len(clips), size=(resamples, len(clips)))
    denominators = b_values[draws].mean(1)
    ratios = a_values[draws].mean(1) / np.where(denominators > 0, denominators, np.nan)
    low, high = np.nanpercentile(ratios, [2.5, 97.5])
    return float(low), float(high)


def seed_spread_line(reports: dict, samples: dict[str, tuple[str, int]]) -> str:
    """One line: RotErr camera / ablation (their ratio) per seed, the ratio's bootstrap interval over clips, and
    the samples whose camera estimate has unreliable frames in each row (estimator failures make numbers jump)."""
    cam, nocam = (per_seed_rot_err(reports[key].per_clip, samples) for key in ("cam", "nocam"))

    def pair(seed: int) -> str:
        a, b = cam[seed], nocam[seed]
        if a is None or b is None:
            return f"seed {seed} n/a"
        return f"seed {seed} {a:.3f} / {b:.3f} ({a / b:.2f})" if b else f"seed {seed} {a:.3f} / {b:.3f}"

    unreliable = ", ".join(f"{label} {len((reports[key].camera or {}).get('clips_with_unreliable_frames') or [])}"
                           for key, label in ROWS)
    interval = ratio_interval(reports["cam"].per_clip, reports["nocam"].per_clip, samples)
    spread = "n/a" if interval is None else f"{interval[0]:.2f}–{interval[1]:.2f}"
    return (f"RotErr camera / ablation per seed: {'; '.join(pair(seed) for seed in cam)}; 95 % bootstrap interval "
            f"over clips {spread}; samples with unreliable camera estimates (of {len(samples)}): {unreliable}")


def _ratio(camera: dict | None) -> str:
    value = (camera or {}).get("turn_ratio_median")
    return "n/a" if value is None else f"{value:.2f}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cam", help="standalone DynaScene file trained with camera control (not with --only evaluate)")
    p.add_argument("--nocam", help="standalone DynaScene file of the camera ablation (not with --only evaluate)")
    p.add_argument("--data", default="outputs/datasets/proof_test",
                   help="proof dataset (held-out splits rendered if missing)")
    p.add_argument("--out", default="outputs/proof_eval")
    p.add_argument("--split", choices=("test", "val"), default="test",
                   help="held-out clips to use: test (the measurement) or val (for choosing settings)")
    p.add_argument("--clips", type=int, default=8, help="held-out clips to use")
    p.add_argument("--sampler", default="ddim", help="solver of python -m dynascene_core.generate (ddim, dpmpp_2m, ...)")
    p.add_argument("--steps", type=int, default=25, help="sampling steps")
    p.add_argument("--seed", type=int, nargs="+", default=[0],
                   help="sampling seed; several (e.g. --seed 0 1 2) generate every clip once per seed and pool the "
                   "samples, which steadies the camera-following error (one sample's error moves with rounding)")
    p.add_argument("--generate-args", default="", help="further arguments of python -m dynascene_core.generate for "
                   "both rows, e.g. '--guidance 2 --context-length 8'")
    p.add_argument("--strip-clips", type=int, default=2, help="test clips shown in strip.png / strip.gif")
    p.add_argument("--weights-dir", default=None, help="evaluation backbone weights (LPIPS/FID/FVD), if present")
    p.add_argument("--only", choices=("generate", "evaluate"), default=None,
                   help="generate: write generated_cam/ and generated_nocam/ into --out and stop; evaluate: "
                   "evaluate those folders from an earlier --only generate (e.g. generated on a GPU machine)")
    args = p.parse_args(argv)
    if args.only != "evaluate":
        if not (args.cam and args.nocam):
            p.error("--cam and --nocam are required (the two models to generate with)")
        for path in (args.cam, args.nocam):
            if not os.path.isfile(path):
                p.error(f"{path} does not exist")
    from dynascene_core.evaluation import evaluate_folders, format_table
    from dynascene_core.video import read_video, write_frame_folder

    started = time.perf_counter()
    ids = ensure_held_out_clips(args.data, args.split, args.clips)
    os.makedirs(args.out, exist_ok=True)
    folders = {key: os.path.join(args.out, f"generated_{key}") for key, _ in ROWS}
    settings_file = os.path.join(args.out, "generation.json")
    settings = {"split": args.split, "clips": ids, "sampler": args.sampler, "steps": args.steps, "seeds": args.seed,
                "generate_args": args.generate_args}
    if len(set(args.seed)) != len(args.seed):
        p.error(f"--seed {' '.join(map(str, args.seed))}: each seed once")
    if "--seed" in shlex.split(args.generate_args):
        p.error("--generate-args must not hold --seed (it would override every --seed value): use --seed")
    if args.only == "evaluate" and os.path.isfile(settings_file):
        with open(settings_file, encoding="utf-8") as handle:
            settings = json.load(handle)
        if settings["split"] != args.split or settings["clips"] != ids:
            p.error(f"--only evaluate: {args.out} was generated for {settings['split']} clips {settings['clips']}, "
                    f"not {args.split} clips {ids} (same --data, --split and --clips as --only generate)")
    samples = sample_names(ids, settings["seeds"])
    if args.only == "evaluate":
        missing = [os.path.join(folders[key], name) for key, _ in ROWS for name in samples
                   if not os.path.isdir(os.path.join(folders[key], name))]
        if missing:
            p.error(f"--only evaluate: {missing[0]} does not exist ({len(missing)} generated clips missing)")
    elif os.path.exists(settings_file):  # written again once every clip is generated
        os.remove(settings_file)
    extra = shlex.split(settings["generate_args"])
    generated: dict[str, dict[str, np.ndarray]] = {}
    for key, _ in ROWS:
        model = args.cam if key == "cam" else args.nocam
        if args.only == "evaluate":
            generated[key] = {name: read_video(os.path.join(folders[key], name)).frames for name in samples}
            continue
        shutil.rmtree(folders[key], ignore_errors=True)
        generated[key] = {}
        for name, (clip_id, seed) in samples.items():
            frames = generate_clip(model, os.path.join(args.data, "clips", clip_id),
                                   os.path.join(args.out, "runs", key, name), args.sampler, args.steps, seed, extra)
            write_frame_folder(os.path.join(folders[key], name), frames)
            generated[key][name] = frames
    if args.only != "evaluate":
        with open(settings_file, "w", encoding="utf-8") as handle:
            json.dump(settings, handle, indent=1)
    if args.only == "generate":
        print(f"wrote {', '.join(folders.values())} ({time.perf_counter() - started:.0f} s)")
        return 0
    gt, masks, cameras = link_inputs(args.data, args.split, {name: clip for name, (clip, _) in samples.items()},
                                     os.path.join(args.out, "inputs"))
    options = {} if args.weights_dir is None else {"weights_dir": args.weights_dir}
    reports = {}
    for key, _ in ROWS:
        reports[key] = evaluate_folders(folders[key], gt, masks_dir=masks, cameras_dir=cameras, **options)
        reports[key].write_json(os.path.join(args.out, f"report_{key}.json"))
    table = format_table({label: reports[key].metrics for key, label in ROWS})
    references = reference_rows(args.data, args.split, ids, os.path.join(args.out, "references"))
    with open(os.path.join(args.out, "report_references.json"), "w", encoding="utf-8") as handle:
        json.dump(references, handle, indent=1)
    cam, nocam = reports["cam"].metrics, reports["nocam"].metrics
    rot_ok = cam["rot_err"] is not None and nocam["rot_err"] is not None and cam["rot_err"] <= 0.5 * nocam["rot_err"]
    psnr_ok = cam["psnr"] is not None and nocam["psnr"] is not None and cam["psnr"] > nocam["psnr"]
    turns = ", ".join(f"{label} {_ratio(reports[key].camera)}" for key, label in ROWS)
    lines = [table, *{f"skipped {k}: {v}" for r in reports.values() for k, v in r.skipped.items()},
             f"turn ratio (share of the requested turn the background makes at the last frame; median over samples): "
             f"{turns}",
             seed_spread_line(reports, samples),
             f"references: the ground truth itself RotErr {references['truth']['rot_err']:.3f} (the camera "
             f"estimator's floor); its first frame held still RotErr {references['still']['rot_err']:.3f}, PSNR "
             f"{references['still']['psnr']:.2f}",
             f"{len(ids)} held-out {args.split} clips (unseen rooms and cameras) x {len(settings['seeds'])} "
             f"seed(s) {settings['seeds']}, {settings['steps']} {settings['sampler']} steps"
             f"{' ' + settings['generate_args'] if extra else ''}, background-only metrics",
             f"acceptance: RotErr with camera control <= half the ablation's: {'PASS' if rot_ok else 'FAIL'}; "
             f"background PSNR higher: {'PASS' if psnr_ok else 'FAIL'}",
             f"({time.perf_counter() - started:.0f} s)"]
    text = "\n".join(lines)
    print(text)
    with open(os.path.join(args.out, "table.txt"), "w", encoding="utf-8") as handle:
        handle.write(text + "\n")
    shown = list(samples)[:min(args.strip_clips, len(ids))]  # the first seed's samples
    rows = [strip_frames(args.data, args.split, samples[name][0], {k: generated[k][name] for k, _ in ROWS})
            for name in shown]
    write_pictures(args.out, rows)
    print(f"wrote {args.out}/table.txt, report_cam.json, report_nocam.json, report_references.json, strip.png, "
          f"strip.gif")
    return 0 if rot_ok and psnr_ok else 1


if __name__ == "__main__":
    sys.exit(main())
