"""Merge the files a model is made of (SD1.5, motion module, CameraCtrl, VAE, CLIP, DynaScene stage files)
into one DynaScene file, e.g. a stage-I + stage-II training output into the full file "Load Model" takes.

Loading is :func:`~.assemble.assemble_models` (same order, same completeness check); writing is
:func:`~.dynascene_format.save_dynascene` (atomic).
"""

from __future__ import annotations

import os

import torch

from .assemble import NEEDED_FOR_GENERATION, AssembledModels, ModelFiles, assemble_models
from .dynascene_format import save_dynascene
from .io import CheckpointError

NOT_REQUIRED = ("reference_net_tail",)
"""Groups written but never demanded: the ReferenceNet tail cannot influence the result (stage-I files omit it)."""


def known_groups() -> list[str]:
    """Parameter-group names of a ``DynaSceneModels`` (built on the meta device: no weight memory)."""
    from dynascene_core.models import DynaSceneConfig, DynaSceneModels, parameter_groups

    with torch.device("meta"):
        return list(parameter_groups(DynaSceneModels(DynaSceneConfig.preset("tiny"))))


def merge_files(files: ModelFiles, out: str | os.PathLike, groups: list[str] | None = None
                ) -> tuple[AssembledModels, list[str]]:
    """Assemble ``files`` and write ``groups`` (default: all) to ``out``; returns (assembled, written keys).

    Every written group except the ReferenceNet tail must come from a file (default: the parts
    generation needs, :data:`NEEDED_FOR_GENERATION`; camera parts are optional). ``out`` must not be
    one of the inputs. Errors are :class:`CheckpointError` raised before anything is written.
    """
    out = os.fspath(out)
    for path in files.paths():
        if os.path.exists(out) and os.path.exists(path) and os.path.samefile(out, path):
            raise CheckpointError(out, "is one of the input files; refusing to overwrite it", hint="choose another --out")
    known = known_groups()
    unknown = [g for g in groups or () if g not in known]
    if unknown:
        raise CheckpointError(None, f"unknown parameter groups {unknown}", expected=f"some of {known}")
    require = NEEDED_FOR_GENERATION if groups is None else tuple(g for g in groups if g not in NOT_REQUIRED)
    assembled = assemble_models(files, require=require)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    keys = save_dynascene(out, assembled.models, groups)
    return assembled, keys
