"""Training model set-up: every part a stage needs must come from a file unless training tiny from scratch."""

import pytest
import torch

from dynascene_core.checkpoints import save_dynascene
from dynascene_core.models import DynaSceneModels
from training.networks import build_models


def _model_cfg(**changes):
    cfg = {"preset": "tiny768", "init_from": [], "motion_module": None, "vae": None, "clip_vision": None,
           "allow_random": False, "spatial_position": None}
    return cfg | changes


def test_missing_vae_clip_and_motion_modules_name_the_config_keys():
    with pytest.raises(ValueError) as error:
        build_models(_model_cfg(), stage=2)
    message = str(error.value)
    assert "stage 2 would train with random denoiser_spatial, reference_net, motion_modules, vae, image_encoder" \
        in message
    for key in ("model.init_from", "model.motion_module", "model.vae", "model.clip_vision", "model.allow_random"):
        assert key in message, key


def test_a_stage_one_file_with_vae_and_clip_is_enough_for_stage_one_not_stage_two(tmp_path):
    torch.manual_seed(0)
    source = DynaSceneModels.build("tiny768")
    path = tmp_path / "parts.safetensors"
    save_dynascene(path, source, ["denoiser_spatial", "reference_net", "vae", "image_encoder"])
    models, loaded = build_models(_model_cfg(init_from=[str(path)]), stage=1)
    assert loaded == {"denoiser_spatial", "reference_net", "vae", "image_encoder"}
    assert torch.equal(models.vae.encoder.conv_in.weight, source.vae.encoder.conv_in.weight)
    with pytest.raises(ValueError, match=r"random motion_modules: set model.motion_module \(mm_sd_v15_v2.ckpt\)"):
        build_models(_model_cfg(init_from=[str(path)]), stage=2)


def test_tiny_from_scratch_or_allow_random_builds_random_models():
    assert build_models(_model_cfg(preset="tiny"), stage=2)[0].config.unet["cross_attention_dim"] == 32
    assert build_models(_model_cfg(preset="small"), stage=2)[0].config.codec == {"type": "patch", "patch_size": 2}
    models, loaded = build_models(_model_cfg(allow_random=True), stage=2)
    assert isinstance(models, DynaSceneModels) and loaded == set()


def _reference_mismatches(models):
    """Names of ReferenceNet U-Net parameters that differ from the denoiser's parameter of the same name."""
    denoiser = dict(models.denoiser.unet.named_parameters())
    return [n for n, p in models.reference_net.unet.named_parameters() if not torch.equal(p, denoiser[n])]


def test_a_random_reference_net_starts_from_the_denoisers_weights_a_loaded_one_is_kept(tmp_path):
    torch.manual_seed(0)
    models, loaded = build_models(_model_cfg(preset="small"), stage=1)
    assert "reference_net" not in loaded
    reference = dict(models.reference_net.unet.named_parameters())
    assert set(reference) <= {n for n, _ in models.denoiser.unet.named_parameters()}
    assert _reference_mismatches(models) == []  # every spatial tensor, conv_in to conv_out, as the paper's SD1.5 start
    assert models.reference_net.unet.conv_in.weight.abs().sum() > 0  # a real copy, not two zeroed networks
    # a ReferenceNet that comes from a file is the file's, not the denoiser's
    source = DynaSceneModels.build("tiny768")
    path = tmp_path / "parts.safetensors"
    save_dynascene(path, source, ["denoiser_spatial", "reference_net", "vae", "image_encoder"])
    models, loaded = build_models(_model_cfg(init_from=[str(path)]), stage=1)
    assert "reference_net" in loaded and len(_reference_mismatches(models)) > 100
    assert torch.equal(models.reference_net.unet.conv_in.weight, source.reference_net.unet.conv_in.weight)
