"""Assembling a complete model from the files users have (SD1.5 inpainting + motion module + DynaScene)."""

import pytest
import torch

from conftest import distinguishable_tiny_models

from dynascene_core.checkpoints import CheckpointError, ModelFiles, assemble_models, save_dynascene
from dynascene_core.models import DynaSceneConfig, parameter_groups
from test_checkpoints import _renamed, _save
from test_checkpoints_layouts import animatediff_layout, ldm_unet_layout, ldm_vae_layout


@pytest.fixture(scope="module")
def source():
    models = distinguishable_tiny_models("tiny", seed=3)
    # SD1.5 initialises both U-Nets from one checkpoint: make the source's 2D weights agree
    models.denoiser.unet.load_state_dict(models.reference_net.unet.state_dict(), strict=False)
    return models


def _files(tmp_path, source):
    ref, vae = source.reference_net.unet.state_dict(), source.vae.state_dict()
    sd15 = _save(_renamed(ref, ldm_unet_layout(ref)) | _renamed(vae, ldm_vae_layout(vae)), tmp_path / "inpaint.safetensors")
    unet = source.denoiser.unet.state_dict()
    mm = _save({"state_dict": _renamed(unet, animatediff_layout(source.config.unet["block_out_channels"], mid=True))},
               tmp_path / "mm_v2.ckpt")
    stage2 = tmp_path / "stage2.safetensors"
    save_dynascene(stage2, source, groups=["motion_modules", "camera_adaptor", "camera_encoder"])
    clip = tmp_path / "clip.safetensors"
    save_dynascene(clip, source, groups=["image_encoder"])
    return sd15, mm, stage2, clip


def test_sd15_motion_and_stage2_file_assemble_into_one_model(tmp_path, source):
    sd15, mm, stage2, clip = _files(tmp_path, source)
    got = assemble_models(ModelFiles(sd15_inpainting=sd15, motion_module=mm, dynascene=[stage2, clip]),
                          config=DynaSceneConfig.preset("tiny"))
    assert got.camera_active
    expected = parameter_groups(source)
    actual = parameter_groups(got.models)
    for group in ("denoiser_spatial", "reference_net", "motion_modules", "camera_adaptor", "camera_encoder", "vae",
                  "image_encoder"):
        for name, p in expected[group].items():
            assert torch.equal(actual[group][name], p), name
    assert not got.models.training


def test_a_full_dynascene_file_is_enough_and_sets_the_config(tmp_path, source):
    path = tmp_path / "full.safetensors"
    save_dynascene(path, source)
    got = assemble_models(ModelFiles(dynascene=[path]))
    assert got.models.config.to_dict() == source.config.to_dict()
    assert torch.equal(got.models.denoiser.unet.conv_in.weight, source.denoiser.unet.conv_in.weight)


def test_missing_parts_are_named_before_use(tmp_path, source):
    sd15, mm, stage2, clip = _files(tmp_path, source)
    with pytest.raises(CheckpointError, match="motion_modules, image_encoder"):
        assemble_models(ModelFiles(sd15_inpainting=sd15), config=DynaSceneConfig.preset("tiny"))
    got = assemble_models(ModelFiles(sd15_inpainting=sd15, motion_module=mm), config=DynaSceneConfig.preset("tiny"),
                          require=("denoiser_spatial", "reference_net", "motion_modules"))
    assert not got.camera_active and "camera control inactive" in got.summary()
    with pytest.raises(CheckpointError, match="no model files given"):
        assemble_models(ModelFiles())
