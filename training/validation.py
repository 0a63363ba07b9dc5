"""Validation samples during training: DynaScene inference on held-out clips, written as videos.

Each sample video shows, side by side, the input foreground, the generated background composited
under the person, and the ground truth; a trajectory plot of the cameras (relative to the scene
image's camera) is written next to it.
"""

from __future__ import annotations

import os

import torch

from dynascene_core.camera import camera_condition, plot_trajectory, relative_cameras
from dynascene_core.conditioning import foreground_pixels
from dynascene_core.data import ClipError
from dynascene_core.sampling.pipeline import SamplerSettings, generate
from dynascene_core.video import write_image, write_video

from .data import ClipReader, orientation_size, validation_records
from .tasks import remove_human


def validation_inputs(reader: ClipReader, num_frames: int, removal_dilation: int):
    """``(frames (F,3,H,W), alpha (F,1,H,W), scene (3,H,W), scene frame index)`` of a clip's first
    frames; the scene is its stored scene image, else its last frame with the person removed."""
    count = min(num_frames, reader.record.num_frames)
    indices = list(range(count))
    pixels, alpha = reader.read(indices)
    if reader.scene_frames:
        scene_frame = reader.scene_frames[0]
        scene = reader.scene_image(scene_frame)
    else:
        scene_frame = reader.record.num_frames - 1
        frame, frame_alpha = reader.read([scene_frame])
        scene = remove_human(frame[0], frame_alpha[0], removal_dilation)
    return pixels, alpha, scene, scene_frame


@torch.no_grad()
def write_validation_samples(models, config: dict, step: int, device) -> list[str]:
    """Generate and write samples for ``validation.num_clips`` clips; returns the written paths."""
    val, data = config["validation"], config["data"]
    folder = os.path.join(config["output_dir"], "samples", f"step-{step:08d}")
    os.makedirs(folder, exist_ok=True)
    codec = models.latent_codec()
    written = []
    was_training = models.training
    models.eval()
    try:
        for record in validation_records(data["root"], val["num_clips"]):
            height, width = orientation_size(record, tuple(data["resolution"]))
            try:
                reader = ClipReader(data["root"], record, (height, width))
                pixels, alpha, scene, scene_frame = validation_inputs(reader, val["num_frames"],
                                                                      config["tasks"]["removal_dilation"])
            except ClipError as exc:
                if data["on_bad_clip"] == "error":
                    raise
                print(f"validation: skipping bad clip: {exc}")
                continue
            count = len(pixels)
            settings = SamplerSettings(steps=val["steps"], guidance_scale=val["guidance_scale"], seed=config["seed"],
                                       context_length=min(count, models.denoiser.max_frames),
                                       context_overlap=min(4, count - 1))
            result = generate(models, codec, models.image_encoder, pixels, alpha, scene,
                              camera_condition(reader.trajectory, height, width, scene_frame), count, settings,
                              device=device)
            side_by_side = torch.cat([foreground_pixels(pixels, alpha), result.composite, pixels], dim=-1)
            video_path = os.path.join(folder, f"{record.clip_id}.mp4")
            write_video(video_path, side_by_side, val["fps"])
            plot_path = os.path.join(folder, f"{record.clip_id}-trajectory.png")
            cameras = relative_cameras(reader.trajectory, scene_frame, height, width)[list(range(count))]
            write_image(plot_path, plot_trajectory(cameras))
            written += [video_path, plot_path]
    finally:
        models.train(was_training)
        models.vae.eval()
        models.image_encoder.eval()
    return written
