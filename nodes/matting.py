"""Matting nodes: Robust Video Matting loader, video matting (IMAGE -> foreground IMAGE + MASK), mask refinement.

Thin wrappers over :mod:`dynascene_core.matting`; the network and every mask operation live there.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dynascene_core.matting import RobustVideoMatting, default_dtype, iter_matting, load_rvm
from dynascene_core.matting import masks as mask_tools

from . import host
from .adapters import ProgressReporter, core_to_mask, frames_to_image, image_to_frames, mask_to_core
from .types import CATEGORY, MATTING_MODEL

MATTING_CATEGORY = f"{CATEGORY}/Matting"
MATTING_BYTES_PER_PIXEL = 86
"""GPU working memory per input pixel of a chunk: 48 frames of 1920x1080 in chunks of 8 (fp16) peaked at 1.33 GiB on
an H200 (BENCHMARKS.md, matting; the MobileNetV3 weights are 7 MB of that)."""
RVM_FILE = ("the Robust Video Matting weights rvm_mobilenetv3.pth (or rvm_resnet50.pth) from "
            "github.com/PeterL1n/RobustVideoMatting/releases")


@dataclass
class MattingModel:
    """A ``DYNASCENE_RVM``: the network (on the offload device) and its host ModelPatcher (None without a host)."""

    network: RobustVideoMatting
    patcher: object | None

    def load_for_inference(self, memory_required: int = 0) -> RobustVideoMatting:
        """Have the host put the network on the GPU with ``memory_required`` bytes to spare (no-op while loaded)."""
        if not host.is_loaded(self.patcher):
            host.load_models_gpu([self.patcher], memory_required, what="the matting network")
        return self.network


class LoadMattingModel:
    DESCRIPTION = ("Load Robust Video Matting (RVM) weights from models/rvm; the MobileNetV3 or ResNet-50 variant "
                   "is detected from the file. fp16 on a GPU, fp32 on a CPU.")
    CATEGORY = MATTING_CATEGORY
    FUNCTION = "load"
    RETURN_TYPES = (MATTING_MODEL,)
    RETURN_NAMES = ("matting_model",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model_name": (host.model_file_list("rvm"), {
            "tooltip": "rvm_mobilenetv3.pth (fast) or rvm_resnet50.pth from models/rvm."})}}

    def load(self, model_name):
        path = host.resolve_model_file("rvm", model_name, RVM_FILE)
        network = load_rvm(path, device=host.unet_offload_device(), dtype=default_dtype(host.get_torch_device()))
        return (MattingModel(network, host.model_patcher(network)),)


class MatteVideo:
    DESCRIPTION = ("Separate the human from the background in every frame with Robust Video Matting. Frames are "
                   "processed in chunks (memory does not grow with the video length), carrying RVM's temporal "
                   "state across chunks.")
    CATEGORY = MATTING_CATEGORY
    FUNCTION = "matte"
    RETURN_TYPES = ("IMAGE", "MASK")
    RETURN_NAMES = ("foreground", "mask")
    OUTPUT_TOOLTIPS = ("RVM's predicted foreground colour (meaningful where the mask is above 0): connect it to the "
                       "Sampler's or Composite node's 'foreground' so hair and motion blur keep no colour of the "
                       "old background.",
                       "Alpha matte, 1 on the human.")

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "matting_model": (MATTING_MODEL, {}),
                "images": ("IMAGE", {"tooltip": "The video frames."}),
                "chunk": ("INT", {"default": 8, "min": 1, "max": 256,
                                  "tooltip": "Frames per forward pass (lower it if you run out of memory)."}),
                "downsample_ratio": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 1.0, "step": 0.05,
                                               "tooltip": "Internal resolution factor; 0 = automatic (about 512 px "
                                                          "on the long side)."}),
            },
        }

    def matte(self, matting_model, images, chunk, downsample_ratio):
        frames = image_to_frames(images, "images")
        if len(frames) == 0:
            raise ValueError("images: the video has no frames")
        height, width = frames.shape[-2:]
        network = matting_model.load_for_inference(MATTING_BYTES_PER_PIXEL * min(chunk, len(frames)) * height * width)
        progress = ProgressReporter(len(frames), preview=False)
        progress(0, len(frames))
        parts = list(iter_matting(network, frames, chunk, downsample_ratio or None,
                                  progress=lambda done, total: progress(done, total)))
        alpha = core_to_mask(torch.cat([p.alpha for p in parts]))
        foreground = frames_to_image(torch.cat([p.foreground for p in parts]))
        return (foreground, alpha)


class RefineMask:
    DESCRIPTION = ("Clean up a human mask (from matting or any segmentation node), in this order: threshold, fill "
                   "holes, remove small islands, grow/shrink, temporal smoothing, feather. Every step is off at 0.")
    CATEGORY = MATTING_CATEGORY
    FUNCTION = "refine"
    RETURN_TYPES = ("MASK",)
    RETURN_NAMES = ("mask",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "mask": ("MASK", {"tooltip": "1 on the human; one mask per frame."}),
                "threshold": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 1.0, "step": 0.01,
                                        "tooltip": "Make the mask binary at this level (0 = keep soft values)."}),
                "fill_holes": ("BOOLEAN", {"default": False, "tooltip": "Fill background regions enclosed by the "
                                                                        "mask."}),
                "remove_islands_below": ("INT", {"default": 0, "min": 0, "max": 1 << 20,
                                                 "tooltip": "Remove mask regions smaller than this many pixels."}),
                "grow": ("INT", {"default": 0, "min": -256, "max": 256,
                                 "tooltip": "Pixels to grow (positive) or shrink (negative) the mask by."}),
                "temporal_radius": ("INT", {"default": 0, "min": 0, "max": 16,
                                            "tooltip": "Average each frame with this many frames on each side "
                                                       "(calms flicker)."}),
                "feather": ("INT", {"default": 0, "min": 0, "max": 256,
                                    "tooltip": "Soften the edge with a Gaussian blur of this radius in pixels."}),
            },
        }

    def refine(self, mask, threshold, fill_holes, remove_islands_below, grow, temporal_radius, feather):
        m = mask_to_core(mask)
        steps = [
            (threshold > 0, lambda x: mask_tools.threshold(x, threshold)),
            (fill_holes, mask_tools.fill_holes),
            (remove_islands_below > 0, lambda x: mask_tools.remove_small_islands(x, remove_islands_below)),
            (grow > 0, lambda x: mask_tools.dilate(x, grow)),
            (grow < 0, lambda x: mask_tools.erode(x, -grow)),
            (temporal_radius > 0, lambda x: mask_tools.temporal_average(x, temporal_radius)),
            (feather > 0, lambda x: mask_tools.feather(x, feather)),
        ]
        for enabled, step in steps:
            if enabled:
                host.check_interrupted()
                m = step(m)
        return (core_to_mask(m),)


NODE_CLASS_MAPPINGS = {
    "DynaSceneLoadMattingModel": LoadMattingModel,
    "DynaSceneMatteVideo": MatteVideo,
    "DynaSceneRefineMask": RefineMask,
}

NODE_DISPLAY_NAME_MAPPINGS = {
    "DynaSceneLoadMattingModel": "Load RVM Matting Model (DynaScene)",
    "DynaSceneMatteVideo": "Matte Video with RVM (DynaScene)",
    "DynaSceneRefineMask": "Refine Mask (DynaScene)",
}
