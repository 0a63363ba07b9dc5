"""Backbone weight files of the evaluation metrics: one folder, fixed file names, no downloads.

Every file is looked up in one folder (``--weights-dir``, default :data:`DEFAULT_WEIGHTS_DIR`). A missing
file raises :class:`MissingWeightsError` whose one-line message names the file, the folder it goes in and
the address it comes from.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

DEFAULT_WEIGHTS_DIR = os.path.join("models", "evaluation")


@dataclass(frozen=True)
class WeightFile:
    """A backbone file: its name in the weights folder, what uses it, and where it comes from."""

    filename: str
    used_by: str
    source: str


WEIGHT_FILES: dict[str, WeightFile] = {
    "inception": WeightFile(
        "weights-inception-2015-12-05-6726825d.pth", "FID (InceptionV3 pool features, 2048-d)",
        "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth"),
    "lpips_alex": WeightFile(
        "alexnet-owt-7be5be79.pth", "LPIPS backbone (AlexNet, default)",
        "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"),
    "lpips_vgg": WeightFile(
        "vgg16-397923af.pth", "LPIPS backbone (VGG16, --lpips-net vgg)",
        "https://download.pytorch.org/models/vgg16-397923af.pth"),
    "i3d": WeightFile(
        "i3d_torchscript.pt", "FVD-I3D (Kinetics-400 I3D as TorchScript, the file StyleGAN-V's FVD uses)",
        "https://www.dropbox.com/s/ge9e5ujwgetktms/i3d_torchscript.pt"),
    "r3d": WeightFile(
        "r3d_18-b3b3357e.pth", "FVD-3DRes (torchvision R3D-18, Kinetics-400)",
        "https://download.pytorch.org/models/r3d_18-b3b3357e.pth"),
}


class MissingWeightsError(FileNotFoundError):
    """A backbone weight file is not in the weights folder (one-line message)."""


def weight_path(key: str, weights_dir: str | os.PathLike = DEFAULT_WEIGHTS_DIR) -> str:
    """Path of backbone ``key`` (a :data:`WEIGHT_FILES` key) in ``weights_dir``; raises if it is missing."""
    entry = WEIGHT_FILES[key]
    path = os.path.join(os.fspath(weights_dir), entry.filename)
    if not os.path.isfile(path):
        raise MissingWeightsError(
            f"{entry.used_by}: weight file {entry.filename} not found in {os.fspath(weights_dir)}/ "
            f"(download it from {entry.source} and put it there, or pass --weights-dir)")
    return path
