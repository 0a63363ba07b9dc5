"""CLIP ViT-L/14 image encoder: a transformers folder, or one safetensors file in transformers key layout
(``vision_model.*`` + ``visual_projection.weight``, as in ComfyUI's ``models/clip_vision``)."""

from __future__ import annotations

import os

import torch

from .detect import detect, unwrap
from .io import CheckpointError, read_weights
from .report import LoadReport, load_into

_FOLDER_FILES = ("model.safetensors", "pytorch_model.bin")


def load_image_encoder(path: str | os.PathLike, image_encoder: torch.nn.Module) -> LoadReport:
    """Load into ``ImageEncoder.model`` (``CLIPVisionModelWithProjection``); the text tower of a full CLIP
    file and ``position_ids`` buffers are reported as not used."""
    path = os.fspath(path)
    if os.path.isdir(path):
        found = [os.path.join(path, f) for f in _FOLDER_FILES if os.path.isfile(os.path.join(path, f))]
        if not found:
            raise CheckpointError(path, "folder has no model.safetensors / pytorch_model.bin")
        path = found[0]
    wf = read_weights(path)
    tensors = unwrap(wf.tensors)
    det = detect(tensors, wf.metadata)
    if det.format != "clip_vision" or not det.loadable_as:
        raise CheckpointError(path, "not a CLIP vision encoder with projection", looks_like=det.description,
                              expected="CLIP ViT-L/14 vision tower: vision_model.* + visual_projection.weight")
    report = LoadReport(path, det.format, "image encoder")
    rest = [k for k in tensors if k.startswith(("text_model.", "text_projection.", "logit_scale"))
            or k.endswith("position_ids")]
    used = {k: v for k, v in tensors.items() if k not in rest}
    if rest:
        report.not_used["text tower / position_ids (DynaScene uses the image tower only)"] = rest
    target = image_encoder.model
    return load_into(target, used, report, scope=lambda k: not k.endswith("position_ids"))
