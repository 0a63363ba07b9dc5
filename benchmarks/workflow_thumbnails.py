"""Template-browser thumbnails made from each shipped workflow's own result, on the CPU, in a few minutes.

    python benchmarks/workflow_thumbnails.py            # writes workflows/<name>.jpg for every workflow
    python benchmarks/workflow_thumbnails.py --only "Video to a new scene" --steps 5   # a quick look

Each graph of ``workflows/api/`` is executed node by node with this pack's own node classes (camera presets,
joining, resampling, camera estimation, mask refinement, composite, previews) and the sampler settings saved
in it. What a template run would load from files is replaced by what ships with the repository: the
trained small demo model ``models/demo/dynascene_small.safetensors`` (the sampler then runs the core pipeline
with that model's own latent codec and image encoder: it does not use an SD VAE or CLIP), the built-in
synthetic demo clip (64x96, a room filmed with an orbiting camera and a moving actor; 16 frames, 48 for the
long-video workflow) for Load Video, its empty room for Load Image, and the clip's own matte for Matte Video
(no matting weights ship). Sampling uses ``--steps`` (default 25) instead of the saved 50, with the saved sampler
and guidance.

A video workflow's thumbnail shows four moments of the video (rows): the input frame, the saved composite and
the generated background; the camera-design workflow's shows its preview plot and the empty room filmed
along the designed move. Thumbnails are square: the template browser crops its cards to squares.
Deterministic: the same model file and code give the same pictures.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import tempfile
import time

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from dynascene_core.camera import camera_condition, demo_clip, render_synthetic_clip  # noqa: E402
from dynascene_core.camera.synthetic import PROOF_DETAIL  # noqa: E402
from dynascene_core.checkpoints import ModelFiles, assemble_models  # noqa: E402
from dynascene_core.generate import DEMO_MODEL, DEMO_SCENE_SEED, DEMO_SIZE  # noqa: E402
from dynascene_core.io_utils import atomic_output  # noqa: E402
from dynascene_core.sampling.pipeline import generate  # noqa: E402

STEPS = 25
"""Sampling steps of a thumbnail (with the workflow's saved sampler), in place of the saved 50."""
DEMO_FRAMES = {"dynascene_long_example.mp4": 48}
"""Frames of the demo clip standing in for each Load Video file (others: 16, the demo's)."""
DEFAULT_FRAMES = 16
SIZE = 576
"""Thumbnail side in pixels."""
ROWS = 4
"""Moments of the video shown in a video workflow's thumbnail."""


def is_link(value) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[0], str) and isinstance(value[1], int)


class DemoStandIns:
    """The nodes that would read files, answered from the repository's demo model and demo clip."""

    def __init__(self, steps: int):
        self.steps = steps
        self.video = None
        self.saved = []
        self._models = None

    def load_video(self, file: str):
        self.video = demo_clip(DEMO_FRAMES.get(file, DEFAULT_FRAMES), *DEMO_SIZE, seed=DEMO_SCENE_SEED,
                               detail=PROOF_DETAIL)
        return (self.video,)

    def load_image(self, image: str):
        """The demo room without the actor, seen from the reference camera (``scene_image`` of any demo clip)."""
        scene = demo_clip(2, *DEMO_SIZE, seed=DEMO_SCENE_SEED, actor=False, detail=PROOF_DETAIL).scene_image
        return torch.from_numpy(scene).float()[None] / 255, None

    def models(self):
        if self._models is None:
            self._models = assemble_models(ModelFiles(dynascene=[DEMO_MODEL]), device="cpu",
                                           dtype=torch.float32).models.eval()
        return self._models

    def node(self, class_type: str):
        """The stand-in for ``class_type`` (a function of the node's inputs returning its outputs), or None."""
        demo = {
            "LoadVideo": self.load_video,
            "GetVideoComponents": lambda video: (torch.from_numpy(video.frames).float() / 255, None, 8.0),
            "LoadImage": self.load_image,
            "DynaSceneLoadMattingModel": lambda model_name: (None,),
            "DynaSceneMatteVideo": self.matte,
            "DynaSceneLoadModel": lambda model_name: (self.models(),),
            "VAELoader": lambda vae_name: (None,),
            "CLIPVisionLoader": lambda clip_name: (None,),
            "DynaSceneSampler": self.sample,
            "CreateVideo": lambda images, fps: (images,),
            "SaveVideo": lambda video, **_: self.saved.append(video),
            "SaveImage": lambda images, **_: None,
        }
        return demo.get(class_type)

    def matte(self, matting_model, images, **_):
        """The loaded clip's own matte; its frames stand in for RVM's foreground colour."""
        if len(images) != len(self.video.frames):
            raise ValueError(f"matting {len(images)} frames, but the loaded demo clip has {len(self.video.frames)}")
        return images, torch.from_numpy(self.video.masks).float()

    def sample(self, dynascene_model, vae, clip_vision, steps, **inputs):
        """The sampler node's own checks and settings, then the core pipeline with the demo model's codec."""
        from nodes.adapters import frames_to_image
        from nodes.sampler import DynaSceneSampler

        frames, alpha, colour, scene, camera, settings = DynaSceneSampler().checked_inputs(
            dynascene_model=dynascene_model, steps=self.steps, **inputs)
        height, width = frames.shape[-2:]
        result = generate(dynascene_model, dynascene_model.latent_codec(), dynascene_model.image_encoder, frames,
                          alpha, scene, camera_condition(camera, height, width), len(camera), settings,
                          foreground=colour)
        return frames_to_image(result.background), frames_to_image(result.composite), None


def run_graph(prompt: dict, stand_ins: DemoStandIns) -> dict:
    """Execute an API-format graph with the pack's node classes and the stand-ins; returns every node's outputs."""
    import nodes

    outputs = {}

    def evaluate(node_id: str):
        if node_id not in outputs:
            node = prompt[node_id]
            inputs = {name: evaluate(value[0])[value[1]] if is_link(value) else value
                      for name, value in node["inputs"].items()}
            run = stand_ins.node(node["class_type"])
            if run is None:
                node_class = nodes.NODE_CLASS_MAPPINGS[node["class_type"]]
                run = getattr(node_class(), node_class.FUNCTION)
            result = run(**inputs)
            outputs[node_id] = result["result"] if isinstance(result, dict) else result
        return outputs[node_id]

    for node_id in prompt:
        evaluate(node_id)
    return outputs


def _cell(image: torch.Tensor | np.ndarray, width: int, height: int) -> Image.Image:
    array = image.numpy() if isinstance(image, torch.Tensor) else image
    if array.dtype != np.uint8:
        array = (np.clip(array, 0, 1) * 255).round().astype(np.uint8)
    return Image.fromarray(array).resize((width, height), Image.Resampling.LANCZOS)


def _labelled_canvas(labels: list[str], columns: int) -> tuple[Image.Image, int]:
    """A square dark canvas with one label per column in a band at the top; returns it and the band height."""
    canvas = Image.new("RGB", (SIZE, SIZE), (24, 24, 28))
    band = 40
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=22)
    for i, label in enumerate(labels):
        centre = (i + 0.5) * SIZE / columns
        draw.text((centre, band / 2), label, fill=(235, 235, 235), font=font, anchor="mm")
    return canvas, band


def video_thumbnail(source: torch.Tensor, composite: torch.Tensor, background: torch.Tensor) -> Image.Image:
    """Rows: ROWS evenly spaced frames; columns: input, composite, background. IMAGE tensors ``(F, H, W, 3)``."""
    canvas, band = _labelled_canvas(["video", "result", "background"], 3)
    gap = 4
    cell_w = (SIZE - 4 * gap) // 3
    cell_h = (SIZE - band - ROWS * gap) // ROWS
    picks = np.linspace(0, len(source) - 1, ROWS).round().astype(int)
    for row, index in enumerate(picks):
        for column, frames in enumerate((source, composite, background)):
            canvas.paste(_cell(frames[index], cell_w, cell_h),
                         (gap + column * (cell_w + gap), band + row * (cell_h + gap)))
    return canvas


def camera_thumbnail(preview: torch.Tensor, camera) -> Image.Image:
    """The preview plot on top, the demo room filmed along ``camera`` below (6 frames, 2 rows)."""
    canvas = Image.new("RGB", (SIZE, SIZE), (24, 24, 28))
    plot_h = SIZE // 2
    canvas.paste(_cell(preview[0], SIZE, plot_h), (0, 0))
    room = render_synthetic_clip(camera, *DEMO_SIZE, seed=DEMO_SCENE_SEED, actor=False, detail=PROOF_DETAIL).frames
    gap = 4
    cell_w, cell_h = (SIZE - 4 * gap) // 3, (SIZE - plot_h - 3 * gap) // 2
    picks = np.linspace(0, len(room) - 1, 6).round().astype(int)
    for i, index in enumerate(picks):
        canvas.paste(_cell(room[index], cell_w, cell_h),
                     (gap + (i % 3) * (cell_w + gap), plot_h + gap + (i // 3) * (cell_h + gap)))
    return canvas


def thumbnail(prompt: dict, steps: int) -> Image.Image:
    stand_ins = DemoStandIns(steps)
    outputs = run_graph(prompt, stand_ins)
    by_class = {node["class_type"]: key for key, node in prompt.items()}
    if stand_ins.saved:  # a video workflow: the saved video is the result
        sampler = by_class["DynaSceneSampler"]
        source = outputs[prompt[sampler]["inputs"]["images"][0]][0]
        return video_thumbnail(source, stand_ins.saved[-1], outputs[sampler][0])
    preview = by_class["DynaScenePreviewCamera"]
    camera_link = prompt[preview]["inputs"]["camera"]
    return camera_thumbnail(outputs[preview][0], outputs[camera_link[0]][camera_link[1]])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", help="workflow name (repeatable; default: all)")
    parser.add_argument("--steps", type=int, default=STEPS, help=f"sampling steps (default {STEPS})")
    parser.add_argument("--out", default=os.path.join(ROOT, "workflows"), help="folder for the .jpg files")
    args = parser.parse_args(argv)
    torch.set_num_threads(min(2, torch.get_num_threads()))
    from nodes import host

    paths = sorted(glob.glob(os.path.join(ROOT, "workflows", "api", "*.json")))
    os.makedirs(args.out, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        host.STANDALONE_DIRS.update({name: os.path.join(work, name) for name in ("input", "output", "temp")})
        for path in paths:
            name = os.path.splitext(os.path.basename(path))[0]
            if args.only and name not in args.only:
                continue
            start = time.perf_counter()
            with open(path, encoding="utf-8") as handle:
                picture = thumbnail(json.load(handle), args.steps)
            target = os.path.join(args.out, f"{name}.jpg")
            with atomic_output(target) as tmp:
                picture.save(tmp, format="JPEG", quality=90, optimize=True)
            print(f"wrote {target} ({time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
