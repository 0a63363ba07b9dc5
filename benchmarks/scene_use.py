"""What is the scene image worth to a model? A training-time measure of stage I's reference attention (CPU is enough).

    python benchmarks/scene_use.py --model STAGE1_OR_FULL.safetensors --data DATA [--split val]

Builds the training run of ``--config`` (default ``proof_stage1``, one frame per example) on the standalone
``--model``, draws ``--examples`` examples of ``--task`` (default ``image_background_generation``: the target frame
with its person as the foreground, the scene image another frame of the clip with the person removed) from the
dataset's ``--split`` and, with one fixed noise draw, runs the denoiser at each timestep ``t`` three times: with the
example's own scene image, with another example's (the batch rolled by one: another room), and with none (the
unconditional branch: reference attention off, image embedding zero). For each it reports the training loss and
the PSNR of the one-step clean estimate ``x̂₀`` against the ground truth on the pixels that are generated (the
background) and that the scene image shows (not blanked by outpainting or the person's removal), and, as a yardstick,
the PSNR of the scene image itself taken as the answer on the same pixels (exact for ``background_outpainting``,
whose scene image is the target frame partly blanked: there the measure reads how well the model copies).

A model that draws the room from its scene image scores clearly better with its own scene image than with another
room's, most at high noise (where nothing else tells it the room); one that ignores the scene scores the same in
all three. Printed as a table and written to ``scene_use.json``. ``benchmarks/camera_use.py`` is the same measure
for the camera.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

SCENES = ("own", "other", "none")


def _psnr(estimate, truth, weight) -> float:
    """PSNR in dB of ``estimate`` against ``truth`` (both ``(N, 3, H, W)`` in [0, 1]) over the pixels where
    ``weight (N, 1, H, W)`` is 1."""
    squared = ((estimate - truth) ** 2 * weight).sum() / (weight.sum() * 3).clamp_min(1)
    return -10 * math.log10(max(float(squared), 1e-10))


def scene_use(model: str, data: str, config: str = "proof_stage1", examples: int = 16,
              timesteps=(100, 300, 500, 700, 900, 990), seed: int = 0, split: str = "val",
              task: str = "image_background_generation") -> tuple[dict[int, dict[str, dict[str, float]]], float]:
    """``({t: {scene: {"loss": .., "psnr": ..}}}, copy_psnr)`` for the scene images of :data:`SCENES` (module
    docstring); ``copy_psnr``: the PSNR of the scene image itself taken as the answer (same pixels; 100 dB when
    exact)."""
    import torch

    from camera_use import training_batch
    from dynascene_core.conditioning import decode_latents, denoiser_input
    from dynascene_core.sampling.schedule import predicted_clean_latent

    if examples < 2:
        raise ValueError(f"scene_use needs at least 2 examples (one's scene image is swapped for another's), "
                         f"got {examples}")
    trainer, batch = training_batch(model, data, config, examples, seed, split, None, stage=1,
                                    overrides=[f"tasks.enabled=[{task}]"])
    networks, losses, device = trainer.networks.eval(), trainer.loss_computer, trainer.device
    kinds = losses.settings.prediction_type
    truth = batch["pixels"].flatten(0, 1).float()                     # (B*F, 3, H, W)
    per_frame = truth.shape[0] // examples
    shown = (batch["scene"].float().amax(1, keepdim=True) > 0).repeat_interleave(per_frame, 0)
    region = (1 - batch["alpha"].flatten(0, 1).float()) * shown         # generated, and shown by the scene image
    table = {}
    with torch.no_grad():
        cond = losses.conditions(batch, device)
        latents = cond["latents"]
        scene = {"own": (cond["scene_latent"], cond["image_embeds"]),
                 "other": (cond["scene_latent"].roll(1, 0), cond["image_embeds"].roll(1, 0))}
        scene["none"] = scene["own"]
        noise = torch.randn(latents.shape, generator=torch.Generator().manual_seed(seed)).to(device)
        for t in timesteps:
            steps = torch.full((latents.shape[0],), int(t), device=device)
            noisy = losses.scheduler.add_noise(latents, noise, steps)
            sample = denoiser_input(noisy, cond["gen_mask"], cond["fg_latent"])
            target = losses.scheduler.get_velocity(latents, noise, steps) if kinds == "v_prediction" else noise
            alpha_bar = float(losses.alphas_cumprod[int(t)])
            table[int(t)] = {}
            for name, (scene_latent, embeds) in scene.items():
                dropped = torch.full((latents.shape[0],), name == "none", dtype=torch.bool)
                pred = networks(sample, steps, embeds, dropped, scene_latent).float()
                clean = predicted_clean_latent(noisy, pred, alpha_bar, kinds)   # (B, C, F, h, w)
                frames = decode_latents(losses.codec, clean.transpose(1, 2).flatten(0, 1)).cpu()
                table[int(t)][name] = {"loss": float(((pred - target) ** 2).mean()),
                                       "psnr": _psnr(frames, truth, region)}
    copy = _psnr(batch["scene"].float().repeat_interleave(per_frame, 0), truth, region)
    return table, copy


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="standalone DynaScene file holding at least the stage-I networks")
    p.add_argument("--data", required=True, help="a proof dataset (python -m training.prepare_proof)")
    p.add_argument("--split", default="val", choices=("train", "val", "test"),
                   help="the dataset's clips to draw examples from (val / test: rooms the model never saw)")
    p.add_argument("--task", default="image_background_generation",
                   help="stage-I task of the examples (background_outpainting and scene_image_variation need the "
                        "training split's scene-only clips)")
    p.add_argument("--config", default="proof_stage1", help="stage-I training config the model was trained with")
    p.add_argument("--examples", type=int, default=16, help="examples in the batch (at least 2)")
    p.add_argument("--timesteps", type=int, nargs="+", default=[100, 300, 500, 700, 900, 990])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="outputs/scene_use")
    args = p.parse_args(argv)
    if not os.path.isfile(args.model):
        p.error(f"--model {args.model} does not exist")
    if args.examples < 2 or not all(0 <= t < 1000 for t in args.timesteps):
        p.error(f"--examples must be >= 2 and --timesteps in 0..999, got {args.examples} and {args.timesteps}")
    table, copy = scene_use(args.model, args.data, args.config, args.examples, args.timesteps, args.seed, args.split,
                      args.task)
    print("t      loss: " + " ".join(f"{name:>7}" for name in SCENES) + "   PSNR of x0 (dB): "
          + " ".join(f"{name:>6}" for name in SCENES))
    for t, row in table.items():
        print(f"{t:<6}       " + " ".join(f"{row[name]['loss']:7.4f}" for name in SCENES) + "                    "
              + " ".join(f"{row[name]['psnr']:6.2f}" for name in SCENES))
    print(f"the scene image itself as the answer: {copy:.2f} dB")
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "scene_use.json"), "w", encoding="utf-8") as handle:
        json.dump({"model": args.model, "data": args.data, "split": args.split, "task": args.task,
                   "examples": args.examples, "seed": args.seed, "scene_use": table,
                   "scene_image_psnr": copy}, handle, indent=1)
    print(f"{args.examples} {args.task} examples of the {args.split} split, one noise draw; "
          f"wrote {args.out}/scene_use.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
