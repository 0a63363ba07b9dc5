"""Assemble a complete DynaScene model from the files a user has — one place for the load order and
for the check that every needed part came from a file (used by the ComfyUI loader nodes and the CLI).

Load order (later files override earlier ones): SD1.5-inpainting checkpoint (denoiser 2D weights,
ReferenceNet, VAE) → AnimateDiff motion module → CameraCtrl → DynaScene files (in the order given)
→ separate VAE → CLIP image encoder. :func:`file_kind` / :meth:`ModelFiles.from_paths` route files to
those slots by their detected format (the one place that maps a file to the part it provides).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

import torch

from .cameractrl import load_cameractrl, read_cameractrl
from .clip_vision import load_image_encoder
from .detect import detect_file
from .dynascene_format import load_dynascene, read_dynascene_header
from .io import CheckpointError, check_weight_file, read_json_config
from .motion import MOTION_FORMATS, load_motion_module
from .report import LoadReport
from .sd15 import load_sd15_inpainting, load_vae

log = logging.getLogger(__name__)

PathLike = str | os.PathLike

NEEDED_FOR_GENERATION = ("denoiser_spatial", "reference_net", "motion_modules", "vae", "image_encoder")
"""Parameter groups that must come from a file for a meaningful result (camera parts are optional:
without them the adaptor stays zero and the camera has no effect)."""


KIND_OF_FORMAT = {
    "dynascene": "dynascene", "cameractrl": "cameractrl",
    "sd15_inpainting_ldm": "sd15_inpainting", "diffusers_unet": "sd15_inpainting",
    "sd15_ldm": "sd15_inpainting",  # 4-channel: its loader refuses it unless widen_conv_in
    "vae_ldm": "vae", "vae_diffusers": "vae", "clip_vision": "image_encoder",
    **{fmt: "motion_module" for fmt in MOTION_FORMATS},
}
"""Detected format id -> the :class:`ModelFiles` field a file of that format fills."""

PARTS = ("an SD1.5-inpainting checkpoint or diffusers folder, an AnimateDiff motion module, a CameraCtrl checkpoint, "
         "a DynaScene file, an SD VAE or a CLIP ViT-L/14 image encoder")


def file_kind(path: PathLike) -> str:
    """The :class:`ModelFiles` field a weight file or diffusers/transformers folder belongs in
    (``"sd15_inpainting"``, ``"motion_module"``, ``"cameractrl"``, ``"dynascene"``, ``"vae"``,
    ``"image_encoder"``); :class:`CheckpointError` naming what it looks like otherwise."""
    path = os.fspath(path)
    if os.path.isdir(path):
        config_file = os.path.join(path, "config.json")
        config = {}
        if os.path.isfile(config_file):
            config = read_json_config(config_file)
        if os.path.isdir(os.path.join(path, "unet")):
            return "sd15_inpainting"
        if config.get("_class_name") == "AutoencoderKL" or os.path.isdir(os.path.join(path, "vae")):
            return "vae"
        if "CLIP" in " ".join(config.get("architectures") or [config.get("model_type", "")]).upper():
            return "image_encoder"
        raise CheckpointError(path, "is a folder DynaScene does not recognise",
                              expected="a diffusers SD1.5-inpainting folder (unet/), a diffusers VAE folder or a "
                                       "transformers CLIP vision folder (config.json)")
    detection = detect_file(path)
    if detection.format not in KIND_OF_FORMAT:
        raise CheckpointError(path, "is no part of a DynaScene model", looks_like=detection.description,
                              expected=PARTS)
    return KIND_OF_FORMAT[detection.format]


@dataclass
class ModelFiles:
    """Paths of the weight files to assemble; any may be ``None``."""

    dynascene: list[PathLike] = field(default_factory=list)
    sd15_inpainting: PathLike | None = None
    motion_module: PathLike | None = None
    cameractrl: PathLike | None = None
    vae: PathLike | None = None
    image_encoder: PathLike | None = None
    widen_conv_in: bool = False
    """Accept a plain 4-channel SD1.5 U-Net by zero-initialising the 5 extra input channels."""

    @classmethod
    def from_paths(cls, paths, *, widen_conv_in: bool = False) -> "ModelFiles":
        """Route each path to its slot by detected kind (:func:`file_kind`); DynaScene files keep their order."""
        files = cls(widen_conv_in=widen_conv_in)
        for path in paths:
            files.add(path)
        return files

    def add(self, path: PathLike, kind: str | None = None) -> "ModelFiles":
        """Put ``path`` in the slot of ``kind`` (detected when ``None``); a second file for a one-file slot
        is an error naming both."""
        kind = kind or file_kind(path)
        if kind == "dynascene":
            self.dynascene.append(path)
        elif getattr(self, kind) is not None:
            raise CheckpointError(path, f"is a second {kind} file", expected=f"one; already given: {getattr(self, kind)}")
        else:
            setattr(self, kind, path)
        return self

    def paths(self) -> list[PathLike]:
        """Every given path, in load order."""
        before, after = (self.sd15_inpainting, self.motion_module, self.cameractrl), (self.vae, self.image_encoder)
        return [p for p in before if p is not None] + list(self.dynascene) + [p for p in after if p is not None]


@dataclass
class AssembledModels:
    models: "DynaSceneModels"  # noqa: F821
    reports: list[LoadReport]
    loaded_groups: set[str]

    @property
    def camera_active(self) -> bool:
        return {"camera_encoder", "camera_adaptor"} <= self.loaded_groups

    def summary(self) -> str:
        lines = [r.summary() for r in self.reports]
        if not self.camera_active:
            lines.append("camera control inactive: no CameraCtrl or DynaScene camera weights were loaded")
        return "\n".join(lines)


def _config_for(files: ModelFiles):
    """The config the files imply: a DynaScene file's own, else ``sd15`` (with CameraCtrl's 2 blocks
    per scale when a CameraCtrl file is given)."""
    from dynascene_core.models import DynaSceneConfig

    if files.dynascene:
        return read_dynascene_header(files.dynascene[0])[0]
    config = DynaSceneConfig.preset("sd15")
    if files.cameractrl is not None:
        config.camera["blocks_per_scale"] = read_cameractrl(files.cameractrl)[4]
    return config


def _own_storage(models: torch.nn.Module) -> torch.nn.Module:
    """Copy parameters that share memory with an earlier one (files are assigned without copying, and
    one SD1.5 checkpoint fills both U-Nets), so training one network never changes another."""
    seen = set()
    for module in models.modules():
        for name, param in list(module.named_parameters(recurse=False)):
            pointer = param.untyped_storage().data_ptr()
            if pointer in seen:
                setattr(module, name, torch.nn.Parameter(param.detach().clone(), param.requires_grad))
            elif param.numel():
                seen.add(pointer)
    return models


def assemble_models(files: ModelFiles, *, config=None, require: tuple[str, ...] = NEEDED_FOR_GENERATION,
                    device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32,
                    networks: tuple[str, ...] | None = None) -> AssembledModels:
    """Build :class:`DynaSceneModels` for the files' config and load every file into it.

    The networks are built with parameters on ``meta`` and the files' tensors assigned (no random
    init, no copy), then converted to ``device``/``dtype`` once.

    Raises :class:`CheckpointError` when a group in ``require`` was filled by no file (naming the
    missing parts and the files that could provide them), before moving anything to ``device``.
    With ``require=()`` unnamed parts keep their random initialisation (training from scratch).
    ``networks``: the parts of :data:`~dynascene_core.models.PARTS` to return (default all); the others are
    left out as ``None``, never initialised (the ComfyUI nodes take the VAE and CLIP from the host's loaders).
    """
    from dynascene_core.models import PARTS, DynaSceneModels

    if not files.paths() and require:
        raise CheckpointError(None, "no model files given",
                              expected="a DynaScene file, or an SD1.5-inpainting checkpoint + a motion module")
    for path in files.paths():  # a bad file is reported before the (large) models are built
        check_weight_file(path)
    models = DynaSceneModels.empty(config or _config_for(files))  # weights come from the files, not random init
    for name in PARTS:
        if networks is not None and name not in networks:
            setattr(models, name, None)
    reports: list[LoadReport] = []
    loaded: set[str] = set()
    if files.sd15_inpainting is not None:
        sd_reports = load_sd15_inpainting(files.sd15_inpainting, denoiser_unet=models.denoiser.unet,
                                          reference_unet=models.reference_net.unet,
                                          vae=models.vae if files.vae is None else None,  # the checkpoint's own
                                          widen_conv_in=files.widen_conv_in)
        reports += sd_reports
        loaded |= {"denoiser_spatial", "reference_net", "reference_net_tail"}
        if any(r.target == "VAE" for r in sd_reports):
            loaded.add("vae")
    if files.motion_module is not None:
        reports.append(load_motion_module(files.motion_module, models.denoiser.unet))
        loaded.add("motion_modules")
    if files.cameractrl is not None:
        reports += load_cameractrl(files.cameractrl, camera_encoder=models.camera_encoder,
                                   denoiser_unet=models.denoiser.unet)
        loaded |= {"camera_encoder", "camera_adaptor"}
    for path in files.dynascene:
        _, groups = read_dynascene_header(path)
        models, report = load_dynascene(path, models)
        reports.append(report)
        loaded |= set(groups)
    if files.vae is not None:
        reports.append(load_vae(files.vae, models.vae))
        loaded.add("vae")
    if files.image_encoder is not None:
        reports.append(load_image_encoder(files.image_encoder, models.image_encoder))
        loaded.add("image_encoder")
    from dynascene_core.models import parameter_groups

    # a group without parameters (the weightless patch codec as ``vae``) has nothing to come from a file
    loaded |= {g for g, params in parameter_groups(models).items() if not params}
    missing = [g for g in require if g not in loaded]
    if missing:
        raise CheckpointError(
            None, f"these model parts came from no file: {', '.join(missing)}",
            expected="denoiser_spatial/reference_net: an SD1.5-inpainting checkpoint or a DynaScene file; "
                     "motion_modules: an AnimateDiff motion module (mm_sd_v15_v2.ckpt) or a DynaScene file; "
                     "vae: an SD VAE or the SD1.5 checkpoint; image_encoder: a CLIP ViT-L/14 image encoder",
            hint="see README 'Model files'")
    models.materialize()  # parts no file filled (require=()) get their normal initialisation
    models = _own_storage(models.to(device=device, dtype=dtype))
    assembled = AssembledModels(models.eval(), reports, loaded)
    log.info("%s", assembled.summary())
    return assembled
