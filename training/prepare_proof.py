"""The proof-of-learning dataset: ``python -m training.prepare_proof --out DIR`` (no downloads).

Synthetic camera-motion clips (:func:`dynascene_core.camera.render_synthetic_clip`: a room with
coarse textures, a known moving camera, a moving "actor" with its exact matte) in the clip-folder
format, split so that the test set measures generalisation, not memory:

- **scenes**: training rooms are seeds ``0 .. train_scenes-1``, test rooms seeds from
  :data:`TEST_SCENE_SEED` on, validation rooms from :data:`VAL_SCENE_SEED` on — no held-out room is
  ever seen in training;
- **trajectories**: training cameras are random smooth hand-held motions
  (:func:`~dynascene_core.camera.random_smooth_trajectory`, random axis, up to 16° and 0.8 units);
  test cameras are the designed presets in :data:`TEST_TRAJECTORIES` (pans, tilts, orbits, dollies,
  trucks and combinations at fixed speeds), which never occur in training; validation cameras
  (:data:`VAL_TRAJECTORIES`) are presets of the same kinds at other speeds and in other combinations.

The validation split is for choosing anything tuned after training (sampler settings, checkpoints),
so that the test split stays a measurement. Every person clip stores its human-free frame 0 as the
scene image (a held-out clip's ground-truth background is the same room rendered without the actor:
``<split>/<clip>/background`` frames, split ``val`` or ``test``). Every
fourth training room also gets a scene-only clip for the scene tasks. ``split.json`` lists the seeds
and trajectories of each split. Clips are PNG frame folders (exact, no video codec needed).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
from multiprocessing import get_context

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from dynascene_core.camera import make_preset, random_smooth_trajectory, render_synthetic_clip
from dynascene_core.camera.synthetic import PROOF_DETAIL
from dynascene_core.data import write_clip, write_manifest
from dynascene_core.io_utils import atomic_open, check_output_folder

TEST_SCENE_SEED = 1_000_000
"""Test rooms use seeds from here on; training rooms use ``0 .. train_scenes - 1``."""

SCENE_ONLY_TRAJECTORY_SEED = 500_000
"""Seed offset of the scene-only clips' trajectories (distinct from the person clips')."""

TEST_TRAJECTORIES = (("pan_left", 1.5), ("pan_right", 1.5), ("tilt_up", 1.5), ("tilt_down", 1.5),
                     ("orbit_left", 1.0), ("orbit_right", 1.0), ("dolly_in+pan_right", 1.0),
                     ("truck_left+pan_left", 1.0))
"""Held-out cameras: ``(preset combination, speed)``; test clip ``i`` uses entry ``i mod len``."""

VAL_SCENE_SEED = 2_000_000
"""Validation rooms use seeds from here on."""

VAL_TRAJECTORIES = (("pan_right", 1.0), ("pan_left", 2.0), ("tilt_down", 1.0), ("tilt_up", 2.0),
                    ("orbit_right", 1.5), ("orbit_left", 0.5), ("dolly_out+pan_left", 1.0),
                    ("truck_right+pan_right", 1.0))
"""Validation cameras: the test's kinds of motion at other speeds and combinations (none equals a test camera)."""

MAX_ROTATION_DEG = 16.0
MAX_TRANSLATION = 0.8
FPS = 8.0


def train_trajectory(seed: int, num_frames: int):
    """The training camera of seed ``seed``: a random smooth hand-held motion."""
    return random_smooth_trajectory(num_frames, seed=seed, max_rotation_deg=MAX_ROTATION_DEG,
                                    max_translation=MAX_TRANSLATION)


def split_plan(train_scenes: int, test_scenes: int, val_scenes: int = 0) -> dict:
    """``{"train": [clip spec], "val": [...], "test": [...]}``; a spec names the clip, its room seed, whether
    it has the actor and its camera (``{"random_smooth": seed}`` or ``{"preset": name, "speed": s}``)."""
    train = []
    for seed in range(train_scenes):
        train.append({"clip_id": f"train-{seed:05d}", "scene_seed": seed, "actor": True,
                      "camera": {"random_smooth": seed}})
        if seed % 4 == 0:
            train.append({"clip_id": f"train-scene-{seed:05d}", "scene_seed": seed, "actor": False,
                          "camera": {"random_smooth": SCENE_ONLY_TRAJECTORY_SEED + seed}})

    def held_out(split: str, count: int, first_seed: int, cameras: tuple) -> list[dict]:  # clip i: cameras[i mod len]
        return [{"clip_id": f"{split}-{i:03d}", "scene_seed": first_seed + i, "actor": True,
                 "camera": {"preset": preset, "speed": speed}}
                for i, (preset, speed) in zip(range(count), itertools.cycle(cameras))]

    return {"train": train, "val": held_out("val", val_scenes, VAL_SCENE_SEED, VAL_TRAJECTORIES),
            "test": held_out("test", test_scenes, TEST_SCENE_SEED, TEST_TRAJECTORIES)}


def camera_of(spec: dict, num_frames: int):
    camera = spec["camera"]
    if "random_smooth" in camera:
        return train_trajectory(camera["random_smooth"], num_frames)
    return make_preset(camera["preset"], num_frames, speed=camera["speed"])


def _write_one(job: tuple) -> tuple:
    root, spec, split, num_frames, height, width = job
    trajectory = camera_of(spec, num_frames)
    clip = render_synthetic_clip(trajectory, height, width, seed=spec["scene_seed"], actor=spec["actor"],
                                 detail=PROOF_DETAIL)
    record = write_clip(root, spec["clip_id"], clip.frames, trajectory, FPS,
                        masks=clip.masks if spec["actor"] else None,
                        scene_images={0: clip.scene_image} if spec["actor"] else None,
                        split=split, video_storage="png", motion_score=None)
    if split != "train":  # the ground-truth background: the same room along the same camera, no actor
        empty = render_synthetic_clip(trajectory, height, width, seed=spec["scene_seed"], actor=False,
                                      detail=PROOF_DETAIL)
        from dynascene_core.video import write_frame_folder

        write_frame_folder(os.path.join(root, split, spec["clip_id"], "background"), empty.frames)
    return record


def write_proof_dataset(root: str, train_scenes: int = 240, test_scenes: int = 8, num_frames: int = 16,
                        size: tuple[int, int] = (64, 96), workers: int = 1, val_scenes: int = 8) -> dict:
    """Render and write every clip, ``manifest.jsonl`` and ``split.json`` into ``root``; returns the plan.
    ``size`` is ``(height, width)``; ``workers`` > 1 renders in that many processes."""
    os.makedirs(root, exist_ok=True)
    plan = split_plan(train_scenes, test_scenes, val_scenes)
    jobs = [(root, spec, split, num_frames, *size) for split in ("train", "val", "test") for spec in plan[split]]
    if workers > 1:
        with get_context("spawn").Pool(workers) as pool:
            records = pool.map(_write_one, jobs, chunksize=4)
    else:
        records = [_write_one(job) for job in jobs]
    write_manifest(root, records)
    with atomic_open(os.path.join(root, "split.json")) as handle:
        json.dump({"num_frames": num_frames, "size": list(size), "test_scene_seed": TEST_SCENE_SEED,
                   "val_scene_seed": VAL_SCENE_SEED,
                   "texture_detail": PROOF_DETAIL, "max_rotation_deg": MAX_ROTATION_DEG,
                   "max_translation": MAX_TRANSLATION, **plan}, handle, indent=1)
    return plan


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="dataset folder to write")
    parser.add_argument("--train-scenes", type=int, default=240)
    parser.add_argument("--test-scenes", type=int, default=8)
    parser.add_argument("--val-scenes", type=int, default=8, help="validation clips (for tuning sampler settings)")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--height", type=int, default=64)
    parser.add_argument("--width", type=int, default=96)
    parser.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 2))
    args = parser.parse_args(argv)
    problem = argument_problem(args)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    plan = write_proof_dataset(args.out, args.train_scenes, args.test_scenes, args.frames,
                               (args.height, args.width), args.workers, args.val_scenes)
    print(f"wrote {len(plan['train'])} training, {len(plan['val'])} validation and {len(plan['test'])} test clips "
          f"to {args.out}")
    return 0


def argument_problem(args) -> str | None:
    """The first bad argument as a one-line message (checked before anything is rendered or written)."""
    for flag, value, least in (("--train-scenes", args.train_scenes, 1), ("--test-scenes", args.test_scenes, 0),
                               ("--val-scenes", args.val_scenes, 0),
                               ("--frames", args.frames, 1), ("--workers", args.workers, 1)):
        if value < least:
            return f"{flag} must be at least {least}, got {value}"
    for flag, value in (("--height", args.height), ("--width", args.width)):
        if value < 8 or value % 8:
            return f"{flag} must be a positive multiple of 8 (the VAE's downsampling), got {value}"
    try:
        check_output_folder(args.out, "--out")
    except ValueError as exc:
        return str(exc)
    return None


if __name__ == "__main__":
    sys.exit(main())
