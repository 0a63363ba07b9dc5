"""Write the built-in synthetic training dataset (no downloads): ``python -m training.prepare_synthetic --out DIR``.

Clips come from :func:`dynascene_core.camera.render_synthetic_clip`: textured rooms seen along known
camera trajectories (random hand-held motion and presets), with a moving "actor" and its exact mask.
Half of the person clips store a human-free scene image (frame 0 rendered without the actor); the
rest rely on the tasks' "remove the human with a dilated mask" rule. Scene-only clips (no actor)
feed the scene tasks, one portrait clip exercises the orientation buckets, and one clip is ``val``.
"""

from __future__ import annotations

import argparse
import os
import sys

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from dynascene_core.camera import make_preset, random_smooth_trajectory, render_synthetic_clip
from dynascene_core.data import write_clip, write_manifest

PRESET_CYCLE = ("orbit_left", "dolly_in+pan_right", "truck_left", "pan_left+tilt_up")


def write_synthetic_dataset(root: str, person_clips: int = 6, scene_clips: int = 3, portrait_clips: int = 1,
                            num_frames: int = 24, size: tuple[int, int] = (96, 160), fps: float = 24.0,
                            seed: int = 0) -> list:
    """Render and write the clips and ``manifest.jsonl`` into ``root``; returns the records.

    ``size`` is ``(height, width)`` of landscape clips (portrait clips use it transposed). The last
    landscape person clip is the ``val`` split.
    """
    os.makedirs(root, exist_ok=True)
    height, width = size
    plan = ([("person", False)] * (person_clips - portrait_clips) + [("person", True)] * portrait_clips
            + [("scene", False)] * scene_clips)
    records = []
    val_index = person_clips - portrait_clips - 1
    for index, (kind, portrait) in enumerate(plan):
        clip_seed = seed * 1000 + index
        if index % 2:
            trajectory = random_smooth_trajectory(num_frames, seed=clip_seed)
        else:
            trajectory = make_preset(PRESET_CYCLE[(index // 2) % len(PRESET_CYCLE)], num_frames)
        h, w = (width, height) if portrait else (height, width)
        clip = render_synthetic_clip(trajectory, h, w, seed=clip_seed, actor=kind == "person")
        person = kind == "person"
        records.append(write_clip(
            root, f"synthetic-{kind}-{index:03d}", clip.frames, trajectory, fps,
            masks=clip.masks if person else None,
            scene_images={0: clip.scene_image} if person and index % 2 == 0 else None,
            split="val" if index == val_index else "train",
            video_storage="png" if index % 3 == 2 else "mp4",
        ))
    write_manifest(root, records)
    return records


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="dataset folder to write")
    parser.add_argument("--person-clips", type=int, default=6)
    parser.add_argument("--scene-clips", type=int, default=3)
    parser.add_argument("--portrait-clips", type=int, default=1)
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--height", type=int, default=96)
    parser.add_argument("--width", type=int, default=160)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    records = write_synthetic_dataset(args.out, args.person_clips, args.scene_clips, args.portrait_clips,
                                      args.frames, (args.height, args.width), seed=args.seed)
    print(f"wrote {len(records)} clips to {args.out}")


if __name__ == "__main__":
    main()
