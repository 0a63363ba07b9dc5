"""Model nodes without a host: loading a DynaScene file, assembling from SD1.5/AnimateDiff/stage-II files."""

from __future__ import annotations

import os

import pytest
import torch
from safetensors.torch import save_file

from conftest import distinguishable_tiny_models

from dynascene_core.checkpoints import CheckpointError, save_dynascene
from dynascene_core.models import DynaSceneConfig, DynaSceneModels
from nodes import models as model_nodes
from nodes_fixtures import model_folder, standalone_dirs
from test_checkpoints_layouts import animatediff_layout, ldm_unet_layout


@pytest.fixture(scope="module")
def tiny():
    models = distinguishable_tiny_models("tiny", seed=3)
    return models


@pytest.fixture
def dirs(tmp_path, monkeypatch):
    return standalone_dirs(tmp_path, monkeypatch)


def _same(module, reference):
    got, want = module.state_dict(), reference.state_dict()
    return set(got) == set(want) and all(torch.equal(got[k], want[k]) for k in want)


def test_load_model_from_the_dynascene_folder(dirs, tiny):
    save_dynascene(os.path.join(model_folder(dirs, "dynascene"), "tiny.safetensors"), tiny)
    assert model_nodes.LoadDynaSceneModel.INPUT_TYPES()["required"]["model_name"][0] == ["tiny.safetensors"]
    (model,) = model_nodes.LoadDynaSceneModel().load("tiny.safetensors")
    assert model.patcher is None  # no host: plain CPU module
    assert model.cross_attention_dim == 32
    for name in model_nodes.NETWORK_NAMES:
        assert _same(getattr(model.networks, name), getattr(tiny, name)), name
    assert not hasattr(model.networks, "vae") and not hasattr(model.networks, "image_encoder")
    assert next(model.networks.parameters()).dtype == torch.float32
    assert model.load_for_inference() is model.networks
    assert "tiny.safetensors" in model.sources[0]


def test_a_partial_file_is_not_a_complete_model(dirs, tiny):
    save_dynascene(os.path.join(model_folder(dirs, "dynascene"), "stage2.safetensors"), tiny,
                   ["motion_modules", "camera_adaptor", "camera_encoder"])
    with pytest.raises(CheckpointError, match="came from no file: denoiser_spatial, reference_net"):
        model_nodes.LoadDynaSceneModel().load("stage2.safetensors")


def test_missing_model_file_names_the_folder_and_where_to_get_it(dirs):
    with pytest.raises(FileNotFoundError) as error:
        model_nodes.LoadDynaSceneModel().load("gone.safetensors")
    message = str(error.value)
    assert "'gone.safetensors' not found in the 'dynascene' model folder" in message
    assert os.path.join(dirs["models"], "dynascene") in message and "#model-files" in message
    with pytest.raises(FileNotFoundError, match="'animatediff_models' model folder.*AnimateDiff SD1.5 motion"):
        open(os.path.join(model_folder(dirs, "checkpoints"), "inpaint.safetensors"), "wb").close()
        model_nodes.AssembleDynaSceneModel().assemble("inpaint.safetensors", "mm.ckpt")


@pytest.fixture
def tiny_base_config(monkeypatch):
    """Published files are full size; here the SD1.5 base config assembled models start from is tiny."""
    preset = DynaSceneConfig.preset.__func__
    monkeypatch.setattr(DynaSceneConfig, "preset",
                        classmethod(lambda cls, name: preset(cls, "tiny" if name == "sd15" else name)))


def _published_files(dirs, tiny):
    """The tiny model's weights written as an LDM SD1.5-inpainting file and an AnimateDiff v2 file."""
    ref = tiny.reference_net.unet.state_dict()
    ldm = {src: ref[dst] for src, dst in ldm_unet_layout(ref).items() if dst is not None}
    save_file({k: v.contiguous() for k, v in ldm.items()},
              os.path.join(model_folder(dirs, "checkpoints"), "inpaint.safetensors"))
    unet = tiny.denoiser.unet.state_dict()
    layout = animatediff_layout(tiny.config.unet["block_out_channels"], mid=True)
    motion = {src: unet[dst] for src, dst in layout.items() if dst is not None}
    torch.save({"state_dict": motion}, os.path.join(model_folder(dirs, "animatediff_models"), "mm.ckpt"))


def test_assemble_from_published_files_and_stage_two_file(dirs, tiny, tiny_base_config):
    _published_files(dirs, tiny)
    stage2 = os.path.join(model_folder(dirs, "dynascene"), "stage2.safetensors")
    save_dynascene(stage2, tiny, ["motion_modules", "camera_adaptor", "camera_encoder"])
    choices = model_nodes.AssembleDynaSceneModel.INPUT_TYPES()
    assert choices["optional"]["camera_weights"][0] == ["none", "stage2.safetensors"]

    (plain,) = model_nodes.AssembleDynaSceneModel().assemble("inpaint.safetensors", "mm.ckpt")
    assert _same(plain.networks.reference_net.unet, tiny.reference_net.unet)
    got = plain.networks.denoiser.unet.state_dict()
    spatial = tiny.reference_net.unet.state_dict()  # the SD1.5 file fills both U-Nets' 2D weights
    for key, value in tiny.denoiser.unet.state_dict().items():
        if ".processor." in key:
            assert not got[key].any(), key  # no camera file: adaptor starts at zero
        elif "motion_modules." in key:
            assert "pos_embed" in key or torch.equal(got[key], value), key
        else:
            assert torch.equal(got[key], spatial[key]), key
    assert "camera control inactive" in plain.sources[-1]

    (full,) = model_nodes.AssembleDynaSceneModel().assemble("inpaint.safetensors", "mm.ckpt", "stage2.safetensors")
    assert _same(full.networks.camera_encoder, tiny.camera_encoder)
    got = full.networks.denoiser.unet.state_dict()
    for key, value in tiny.denoiser.unet.state_dict().items():  # stage II file: motion modules and adaptor
        want = value if "motion_modules." in key else spatial[key]
        assert torch.equal(got[key], want), key


def test_assemble_refuses_a_file_that_is_no_camera_weights(dirs, tiny, tiny_base_config):
    _published_files(dirs, tiny)
    save_file({"backbone.features.0.0.weight": torch.zeros(16, 3, 3, 3)},
              os.path.join(model_folder(dirs, "dynascene"), "rvm.safetensors"))
    with pytest.raises(CheckpointError, match="rvm.safetensors: is no part of a DynaScene model(.|\n)*backbone.features"):
        model_nodes.AssembleDynaSceneModel().assemble("inpaint.safetensors", "mm.ckpt", "rvm.safetensors")
    save_file({"encoder.down.0.block.0.conv1.weight": torch.zeros(4, 3, 3, 3), "decoder.up.0.block.0.conv1.weight":
               torch.zeros(4, 4, 3, 3)}, os.path.join(model_folder(dirs, "dynascene"), "vae.safetensors"))
    with pytest.raises(ValueError, match="camera_weights 'vae.safetensors' is a vae file; expected a CameraCtrl"):
        model_nodes.AssembleDynaSceneModel().assemble("inpaint.safetensors", "mm.ckpt", "vae.safetensors")
    with pytest.raises(ValueError, match="dynascene_weights 'vae.safetensors' is a vae file; expected a DynaScene"):
        model_nodes.AssembleDynaSceneModel().assemble("inpaint.safetensors", "mm.ckpt", "none", "vae.safetensors")
    with pytest.raises(CheckpointError, match="mm.ckpt"):  # motion module given as the SD checkpoint
        os.replace(os.path.join(dirs["models"], "animatediff_models", "mm.ckpt"),
                   os.path.join(dirs["models"], "checkpoints", "mm.ckpt"))
        open(os.path.join(dirs["models"], "animatediff_models", "mm.ckpt"), "wb").close()
        model_nodes.AssembleDynaSceneModel().assemble("mm.ckpt", "mm.ckpt")


def test_assemble_takes_the_stage_one_and_stage_two_training_outputs(dirs, tiny, tiny_base_config):
    """The two files training writes, on top of the published files, give the trained model exactly."""
    _published_files(dirs, tiny)
    torch.manual_seed(5)
    trained = DynaSceneModels.build("tiny")  # different weights from the published files
    folder = model_folder(dirs, "dynascene")
    save_dynascene(os.path.join(folder, "stage1.safetensors"), trained, ["denoiser_spatial", "reference_net"])
    save_dynascene(os.path.join(folder, "stage2.safetensors"), trained,
                   ["motion_modules", "camera_adaptor", "camera_encoder"])
    assert model_nodes.AssembleDynaSceneModel.INPUT_TYPES()["optional"]["dynascene_weights"][0] == [
        "none", "stage1.safetensors", "stage2.safetensors"]
    (model,) = model_nodes.AssembleDynaSceneModel().assemble("inpaint.safetensors", "mm.ckpt", "stage2.safetensors",
                                                             "stage1.safetensors")
    assert _same(model.networks.denoiser, trained.denoiser) and _same(model.networks.camera_encoder,
                                                                      trained.camera_encoder)
    got, want = model.networks.reference_net.state_dict(), trained.reference_net.state_dict()
    tail = set(trained.reference_net.non_influencing_parameter_names())  # not in stage files: from the SD1.5 file
    assert all(torch.equal(got[k], want[k]) for k in want if k not in tail)
    assert "camera control inactive" not in "\n".join(model.sources)
