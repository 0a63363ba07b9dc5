"""All weight-file formats of the pack: safe reading, detection, converters, DynaScene's own format.

Loaders take the target module(s) and return :class:`LoadReport` objects; see README "Model files".
"""

from .assemble import NEEDED_FOR_GENERATION, AssembledModels, ModelFiles, assemble_models
from .cameractrl import load_cameractrl
from .clip_vision import load_image_encoder
from .detect import Detection, detect
from .dynascene_format import load_dynascene, read_dynascene, read_dynascene_header, save_dynascene
from .io import CheckpointError, read_weights, write_safetensors_atomic
from .motion import load_motion_module
from .report import LoadReport
from .sd15 import load_sd15_inpainting, load_vae

__all__ = [
    "AssembledModels", "ModelFiles", "NEEDED_FOR_GENERATION", "assemble_models", "read_dynascene_header",
    "CheckpointError", "Detection", "LoadReport", "detect", "load_cameractrl", "load_dynascene",
    "load_image_encoder", "load_motion_module", "load_sd15_inpainting", "load_vae", "read_dynascene",
    "read_weights", "save_dynascene", "write_safetensors_atomic",
]
