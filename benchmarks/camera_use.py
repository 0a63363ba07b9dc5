"""What is the camera worth to a stage-II model's loss? A training-time measure of camera control (CPU is enough).

    python benchmarks/camera_use.py --model OUT/dynascene_small.safetensors --data DATA

Builds the stage-II training run of ``--config`` (default ``proof_stage2``) from the standalone ``--model``
(``model.init_from``), draws ``--examples`` training examples of ``--data`` (of its ``--split``: ``val`` or
``test`` asks whether what the camera tells the model holds on rooms and cameras it never saw; ``--frames``
sets the clip length, e.g. the 16 frames a model was trained with) and, with one fixed noise draw, computes
the loss of training (the model's prediction target, MSE over the latent video) at each timestep ``t`` three
times: with the clip's true camera, with a static camera (every frame at the scene image's) and with the inverted
trajectory (each frame's rotation and translation reversed). A model that ignores its camera scores the same in
all three; the gap ``static − true`` is what the camera tells it. Complements the camera-following error of
``benchmarks/eval_proof.py``, which needs full generations; prints the table and writes ``camera_use.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

CAMERAS = ("true", "static", "inverted")


def camera_variants(c2w):
    """``c2w (B, F, 4, 4)`` (relative to the scene image's camera, as training gives them) → ``{name: c2w}``:
    the true cameras, every frame at the scene image's camera (the identity), and each frame's motion reversed
    (``R → Rᵀ``, ``t → −t``)."""
    import torch

    static = torch.eye(4, dtype=c2w.dtype).expand_as(c2w).clone()
    inverted = c2w.clone()
    inverted[..., :3, :3] = c2w[..., :3, :3].transpose(-1, -2)
    inverted[..., :3, 3] = -c2w[..., :3, 3]
    return {"true": c2w, "static": static, "inverted": inverted}


def training_batch(model: str, data: str, config: str, examples: int, seed: int, split: str,
                   frames: int | None, stage: int, overrides=()):
    """``(trainer, batch)``: the training run of ``config`` (a stage-``stage`` config, with the config
    ``overrides``) built on the standalone ``model`` (``model.init_from``), and one batch of ``examples`` training
    examples of ``data``'s ``split`` with ``frames`` frames (None: the config's), drawn by the run's own dataset
    (its tasks, its resolution)."""
    from torch.utils.data import default_collate

    from training.config import load_config
    from training.train import Trainer

    with tempfile.TemporaryDirectory() as out:  # the run's folder: only its config.yaml is written there
        cfg = load_config(config, [f"data.root={data}", f"output_dir={out}", f"model.init_from=[{model}]",
                                   "train.mixed_precision=no", "data.num_workers=0", "checkpoint.resume=none",
                                   "log.tensorboard=false", f"seed={seed}", f"data.split={split}",
                                   *(["train.camera_control=true"] if stage == 2 else []),
                                   *([] if frames is None else [f"data.num_frames={frames}"]), *overrides])
        if cfg["stage"] != stage:
            raise SystemExit(f"error: {config} is a stage-{cfg['stage']} config; this measure needs stage {stage}")
        trainer = Trainer(cfg)
        bucket = sorted(trainer.dataset.buckets)[0]
        return trainer, default_collate([trainer.dataset.example(i, bucket) for i in range(examples)])


def camera_use(model: str, data: str, config: str = "proof_stage2", examples: int = 16,
               timesteps=(100, 300, 500, 700, 900, 990), seed: int = 0, split: str = "train",
               frames: int | None = None) -> dict[int, dict[str, float]]:
    """``{t: {camera: loss}}`` for the cameras of :data:`CAMERAS` (see the module docstring), on examples of the
    dataset's ``split`` with ``frames`` frames (None: the config's)."""
    import torch

    from dynascene_core.conditioning import denoiser_input
    from training.step import batch_plucker

    trainer, batch = training_batch(model, data, config, examples, seed, split, frames, stage=2)
    networks, losses, device = trainer.networks.eval(), trainer.loss_computer, trainer.device
    table = {}
    with torch.no_grad():
        cond = losses.conditions(batch, device)
        latents = cond["latents"]
        height, width = batch["pixels"].shape[-2:]
        plucker = {name: batch_plucker(c2w, batch["intrinsics"], height, width, device)
                   for name, c2w in camera_variants(batch["c2w"].double()).items()}
        noise = torch.randn(latents.shape, generator=torch.Generator().manual_seed(seed)).to(device)
        kept = torch.zeros(latents.shape[0], dtype=torch.bool)  # no unconditional dropout
        for t in timesteps:
            steps = torch.full((latents.shape[0],), int(t), device=device)
            noisy = losses.scheduler.add_noise(latents, noise, steps)
            sample = denoiser_input(noisy, cond["gen_mask"], cond["fg_latent"])
            target = (losses.scheduler.get_velocity(latents, noise, steps)
                      if losses.settings.prediction_type == "v_prediction" else noise)
            table[int(t)] = {}
            for name, rays in plucker.items():
                pred = networks(sample, steps, cond["image_embeds"], kept, cond["scene_latent"], rays)
                table[int(t)][name] = float(((pred.float() - target) ** 2).mean())
    return table


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="standalone DynaScene file trained with camera control")
    p.add_argument("--data", required=True, help="the dataset it was trained on")
    p.add_argument("--split", default="train", choices=("train", "val", "test"),
                   help="the dataset's clips to draw examples from (val / test: held-out rooms and cameras)")
    p.add_argument("--frames", type=int, default=None, help="frames per example (default: the config's)")
    p.add_argument("--config", default="proof_stage2", help="stage-II training config the model was trained with")
    p.add_argument("--examples", type=int, default=16, help="training examples in the batch")
    p.add_argument("--timesteps", type=int, nargs="+", default=[100, 300, 500, 700, 900, 990])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="outputs/camera_use")
    args = p.parse_args(argv)
    if not os.path.isfile(args.model):
        p.error(f"--model {args.model} does not exist")
    if args.frames is not None and args.frames < 2:
        p.error(f"--frames must be at least 2 (the camera moves between frames), got {args.frames}")
    if args.examples < 1 or not all(0 <= t < 1000 for t in args.timesteps):
        p.error(f"--examples must be >= 1 and --timesteps in 0..999, got {args.examples} and {args.timesteps}")
    table = camera_use(args.model, args.data, args.config, args.examples, args.timesteps, args.seed, args.split,
                       args.frames)
    print("t      " + "  ".join(f"{name:>8}" for name in CAMERAS) + "  static-true")
    for t, row in table.items():
        print(f"{t:<6} " + "  ".join(f"{row[name]:8.4f}" for name in CAMERAS) + f"  {row['static'] - row['true']:+.4f}")
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "camera_use.json"), "w", encoding="utf-8") as handle:
        json.dump({"model": args.model, "data": args.data, "split": args.split, "frames": args.frames,
                   "examples": args.examples, "seed": args.seed, "loss": table}, handle, indent=1)
    print(f"{args.examples} examples of the {args.split} split, one noise draw; wrote {args.out}/camera_use.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
