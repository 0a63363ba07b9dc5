"""Metric backbones loaded from local files (never downloaded) and the set-level Fréchet metrics.

* FID: torchmetrics' ``FrechetInceptionDistance`` with torch-fidelity's InceptionV3 (2048-d pool features)
  read from the local weights file.
* FVD: the same torchmetrics class (running feature sums in float64, Fréchet distance over the whole set)
  with a video feature extractor in place of Inception: the Kinetics-400 I3D TorchScript file used by
  StyleGAN-V's FVD (400-d logits, called with ``rescale=True, resize=True, return_features=True`` on
  ``(B, 3, T, H, W)`` values in [0, 255]), or torchvision's R3D-18 (512-d pooled features, torchvision's
  Kinetics preprocessing: resize to 128×171, centre crop 112, Kinetics mean/std).
* LPIPS: the ``lpips`` package; its linear layers ship inside the package, its AlexNet/VGG16 backbone comes
  from the local torchvision weights file.

Videos given to the FVD extractors are uint8 ``(B, T, 3, H, W)``.
"""

from __future__ import annotations

import os
import warnings

import torch
from torch import nn

from .weights import WEIGHT_FILES, weight_path


class BackboneError(ValueError):
    """A backbone weight file exists but cannot be used (one-line message naming the file)."""


def _read_state_dict(path: str, what: str) -> dict[str, torch.Tensor]:
    """Tensors of a ``.pth`` state dict, read with ``weights_only=True`` (a pickle that would run code is refused)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same one-line error
        raise BackboneError(f"{what}: cannot read {path} as a weights file ({type(exc).__name__}: "
                            f"{str(exc).splitlines()[0] if str(exc) else ''})") from exc
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise BackboneError(f"{what}: {path} is not a state dict of tensors")
    return state


def fid_metric(weights_dir: str | os.PathLike, device: torch.device | str = "cpu"):
    """torchmetrics FID on InceptionV3 pool features; ``update(frames_uint8 (N, 3, H, W), real=...)``."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    path = weight_path("inception", weights_dir)
    _read_state_dict(path, "FID")  # torch-fidelity reads the file itself, without weights_only
    try:
        metric = FrechetInceptionDistance(feature=2048, feature_extractor_weights_path=path)
    except RuntimeError as exc:
        raise BackboneError(f"FID: {path} does not load into InceptionV3 ({str(exc).splitlines()[0]})") from exc
    return metric.to(device)


class I3DFeatures(nn.Module):
    """The FVD I3D TorchScript module as a feature extractor: uint8 ``(B, T, 3, H, W)`` → ``(B, 400)``."""

    num_features = 400

    def __init__(self, detector: nn.Module):
        super().__init__()
        self.detector = detector

    def forward(self, videos: torch.Tensor) -> torch.Tensor:
        clips = videos.permute(0, 2, 1, 3, 4).float()  # (B, 3, T, H, W) in [0, 255]
        return self.detector(clips, rescale=True, resize=True, return_features=True)


class R3DFeatures(nn.Module):
    """torchvision R3D-18 pooled features: uint8 ``(B, T, 3, H, W)`` → ``(B, 512)``."""

    num_features = 512

    def __init__(self, model: nn.Module):
        from torchvision.models.video import R3D_18_Weights

        super().__init__()
        model.fc = nn.Identity()
        self.model = model
        self.preprocess = R3D_18_Weights.KINETICS400_V1.transforms()

    def forward(self, videos: torch.Tensor) -> torch.Tensor:
        return self.model(self.preprocess(videos))


def load_i3d(weights_dir: str | os.PathLike) -> I3DFeatures:
    """The I3D TorchScript file (``torch.jit.load``, CPU) wrapped as :class:`I3DFeatures`."""
    path = weight_path("i3d", weights_dir)
    try:
        detector = torch.jit.load(path, map_location="cpu")
    except Exception as exc:  # noqa: BLE001
        raise BackboneError(f"FVD-I3D: cannot load {path} as TorchScript ({type(exc).__name__}: "
                            f"{str(exc).splitlines()[0] if str(exc) else ''})") from exc
    return I3DFeatures(detector).eval().requires_grad_(False)


def load_r3d(weights_dir: str | os.PathLike) -> R3DFeatures:
    """torchvision ``r3d_18`` with the local Kinetics-400 state dict, wrapped as :class:`R3DFeatures`."""
    from torchvision.models.video import r3d_18

    path = weight_path("r3d", weights_dir)
    model = r3d_18(weights=None)
    _load_exact(model, _read_state_dict(path, "FVD-3DRes"), path, "FVD-3DRes")
    return R3DFeatures(model).eval().requires_grad_(False)


def _load_exact(module: nn.Module, state: dict[str, torch.Tensor], path: str, what: str) -> None:
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        missing = sorted(set(module.state_dict()) - set(state))[:3]
        unexpected = sorted(set(state) - set(module.state_dict()))[:3]
        raise BackboneError(f"{what}: {path} does not fit the architecture (missing {missing}, unexpected "
                            f"{unexpected}; {str(exc).splitlines()[-1].strip()})") from exc


def video_fid_metric(extractor: nn.Module, device: torch.device | str = "cpu"):
    """torchmetrics' Fréchet metric over video features; ``update(videos_uint8 (B, T, 3, H, W), real=...)``."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    return FrechetInceptionDistance(feature=extractor).to(device)


LPIPS_NETS = {"alex": "lpips_alex", "vgg": "lpips_vgg"}


def load_lpips(weights_dir: str | os.PathLike, net: str = "alex") -> nn.Module:
    """``lpips.LPIPS`` (v0.1 linear layers from the package) with its backbone from the local torchvision
    file; call ``model(a, b, normalize=True)`` on ``(N, 3, H, W)`` in [0, 1] → ``(N, 1, 1, 1)``."""
    import lpips

    if net not in LPIPS_NETS:
        raise ValueError(f"LPIPS backbone must be one of {sorted(LPIPS_NETS)}, got {net!r}")
    key = LPIPS_NETS[net]
    path = weight_path(key, weights_dir)
    state = _read_state_dict(path, "LPIPS")
    with warnings.catch_warnings():  # lpips passes torchvision's deprecated `pretrained=` flag
        warnings.simplefilter("ignore", UserWarning)
        model = lpips.LPIPS(net=net, pnet_rand=True, verbose=False)
    # lpips splits torchvision's `features` Sequential into slices keeping the layer indices:
    # `slice2.3.weight` is torchvision's `features.3.weight`.
    backbone = {key_: state.get("features." + key_.split(".", 1)[1]) for key_ in model.net.state_dict()}
    missing = [k for k, v in backbone.items() if v is None]
    if missing:
        raise BackboneError(f"LPIPS: {path} is not a torchvision {net} state dict (no features.* weights for "
                            f"{missing[:3]}; expected {WEIGHT_FILES[key].filename})")
    _load_exact(model.net, backbone, path, "LPIPS")
    return model.eval().requires_grad_(False)
