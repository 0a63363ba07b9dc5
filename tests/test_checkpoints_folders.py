"""diffusers / transformers folders as model sources (what `save_pretrained` writes); tiny768 = the tiny
config with SD1.5's 768-d cross-attention, which the folder loader checks."""

import pytest
import torch

from conftest import distinguishable_tiny_models

from dynascene_core.checkpoints import CheckpointError, load_image_encoder, load_sd15_inpainting, load_vae
from dynascene_core.models import DynaSceneModels


@pytest.fixture(scope="module")
def source():
    models = distinguishable_tiny_models("tiny768", seed=5)
    return models


def test_diffusers_pipeline_folder_loads_unets_and_vae(tmp_path, source):
    source.reference_net.unet.save_pretrained(tmp_path / "pipe" / "unet")
    source.vae.save_pretrained(tmp_path / "pipe" / "vae")
    fresh = DynaSceneModels.build("tiny768")
    reports = load_sd15_inpainting(tmp_path / "pipe", denoiser_unet=fresh.denoiser.unet,
                                   reference_unet=fresh.reference_net.unet, vae=fresh.vae)
    assert len(reports) == 3
    for name, value in source.reference_net.unet.state_dict().items():
        assert torch.equal(fresh.reference_net.unet.state_dict()[name], value), name
        assert torch.equal(fresh.denoiser.unet.state_dict()[name], value), name
    for name, value in source.vae.state_dict().items():
        assert torch.equal(fresh.vae.state_dict()[name], value), name
    other = DynaSceneModels.build("tiny768")  # the VAE alone, from the pipeline folder
    load_vae(tmp_path / "pipe", other.vae)
    assert torch.equal(other.vae.decoder.conv_out.weight, source.vae.decoder.conv_out.weight)


def test_folder_without_unet_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="without a unet/ subfolder"):
        load_sd15_inpainting(tmp_path / "empty", reference_unet=DynaSceneModels.build("tiny768").reference_net.unet)


def test_transformers_clip_folder_loads(tmp_path, source):
    source.image_encoder.model.save_pretrained(tmp_path / "clip")
    fresh = DynaSceneModels.build("tiny768")
    load_image_encoder(tmp_path / "clip", fresh.image_encoder)
    images = torch.rand(1, 3, 40, 56)
    assert torch.equal(fresh.image_encoder(images), source.image_encoder(images))
