"""Named parameter groups of a :class:`~dynascene_core.models.DynaSceneModels` for the training stages.

Groups (disjoint, together every parameter):

- ``denoiser_spatial``: the denoiser U-Net without its motion modules (the SD1.5 2D weights),
- ``motion_modules``: AnimateDiff temporal transformers, without the camera adaptors,
- ``camera_adaptor``: the ``qkv_merge`` layers on the motion modules' first temporal attention,
- ``camera_encoder``, ``reference_net`` (minus its tail), ``reference_net_tail`` (cannot influence
  the bank), ``image_encoder``, ``vae``.

Stage I (image level) trains ``denoiser_spatial`` + ``reference_net``; Stage II (video level) trains
``motion_modules`` + ``camera_adaptor`` + ``camera_encoder``; everything else is frozen.
"""

from __future__ import annotations

from torch import nn

STAGE_GROUPS = {
    1: ("denoiser_spatial", "reference_net"),
    2: ("motion_modules", "camera_adaptor", "camera_encoder"),
}


def is_camera_adaptor_key(key: str) -> bool:
    """Camera-adaptor parameters: the ``qkv_merge`` processors on the motion modules' first temporal
    attention (denoiser-relative or ``UNetMotionModel``-relative names alike)."""
    return "motion_modules." in key and ".processor.qkv_merge." in key


def is_motion_module_key(key: str) -> bool:
    """AnimateDiff temporal-transformer parameters, camera adaptor excluded."""
    return "motion_modules." in key and not is_camera_adaptor_key(key)


def parameter_groups(models) -> dict[str, dict[str, nn.Parameter]]:
    """``{group: {full parameter name: parameter}}`` for a ``DynaSceneModels``."""
    tail = {"reference_net." + n for n in models.reference_net.non_influencing_parameter_names()}
    groups: dict[str, dict[str, nn.Parameter]] = {
        "denoiser_spatial": {}, "motion_modules": {}, "camera_adaptor": {}, "camera_encoder": {},
        "reference_net": {}, "reference_net_tail": {}, "image_encoder": {}, "vae": {},
    }
    for name, param in models.named_parameters():
        top = name.split(".", 1)[0]
        if top == "denoiser":
            if is_camera_adaptor_key(name):
                group = "camera_adaptor"
            elif is_motion_module_key(name):
                group = "motion_modules"
            else:
                group = "denoiser_spatial"
        elif top == "reference_net":
            group = "reference_net_tail" if name in tail else "reference_net"
        else:
            group = top
        groups[group][name] = param
    return groups


def trainable_parameters(models, stage: int, extra_groups=()) -> dict[str, nn.Parameter]:
    """``{name: parameter}`` trained in ``stage`` (1 or 2), plus the groups in ``extra_groups`` (fine-tuned
    beyond the stage's own)."""
    if stage not in STAGE_GROUPS:
        raise ValueError(f"training stage must be one of {sorted(STAGE_GROUPS)}, got {stage!r}")
    groups = parameter_groups(models)
    return {n: p for g in (*STAGE_GROUPS[stage], *extra_groups) for n, p in groups[g].items()}


def set_trainable(models, stage: int, extra_groups=()) -> dict[str, nn.Parameter]:
    """Set ``requires_grad`` for ``stage`` (its groups and ``extra_groups`` on, the rest off); returns the
    trainable dict."""
    trainable = trainable_parameters(models, stage, extra_groups)
    for name, param in models.named_parameters():
        param.requires_grad_(name in trainable)
    return trainable
