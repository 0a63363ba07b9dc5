"""Assembling a complete model from the files users have (SD1.5 inpainting + motion module + DynaScene)."""

import pytest
import torch

from conftest import distinguishable_tiny_models

from dynascene_core.checkpoints import CheckpointError, ModelFiles, assemble_models, save_dynascene
from dynascene_core.models import DynaSceneConfig, DynaSceneModels, parameter_groups
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


def _eager_load(files: ModelFiles, config) -> "DynaSceneModels":
    """The loaders run into normally built (random-init) models: what assembling did before meta loading."""
    from dynascene_core.checkpoints.motion import load_motion_module
    from dynascene_core.checkpoints.sd15 import load_sd15_inpainting
    from dynascene_core.checkpoints.dynascene_format import load_dynascene
    from dynascene_core.models import DynaSceneModels

    models = DynaSceneModels(config)
    load_sd15_inpainting(files.sd15_inpainting, denoiser_unet=models.denoiser.unet,
                         reference_unet=models.reference_net.unet, vae=models.vae)
    load_motion_module(files.motion_module, models.denoiser.unet)
    for path in files.dynascene:
        load_dynascene(path, models)
    return models


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_meta_loading_equals_loading_into_built_models(tmp_path, source, dtype):
    sd15, mm, _, clip = _files(tmp_path, source)
    files = ModelFiles(sd15_inpainting=sd15, motion_module=mm, dynascene=[clip])
    config = DynaSceneConfig.preset("tiny")
    got = assemble_models(files, config=config, dtype=dtype).models
    want = _eager_load(files, config).to(dtype)
    got_state = dict(got.named_parameters()) | dict(got.named_buffers())  # buffers include non-persistent ones
    want_state = dict(want.named_parameters()) | dict(want.named_buffers())
    assert got_state.keys() == want_state.keys()
    random_init = [k for k in want_state if k.startswith("camera_encoder.")]  # no file gives it: random in both
    assert random_init and all(got_state[k].shape == want_state[k].shape for k in random_init)
    for key in want_state.keys() - set(random_init):
        assert got_state[key].dtype == want_state[key].dtype and torch.equal(got_state[key], want_state[key]), key
    # regenerated sinusoidal tables and the zero-initialised camera adaptor are really there
    pe = [k for k in got_state if k.endswith("pos_embed.pe")]
    adaptor = [k for k in got_state if ".processor.qkv_merge." in k]
    assert pe and all(got_state[k].abs().sum() > 0 for k in pe)
    assert adaptor and all(not got_state[k].any() for k in adaptor)
    assert not any(t.is_meta for t in got_state.values())


def test_meta_loading_gives_every_network_its_own_memory(tmp_path, source):
    sd15, mm, _, clip = _files(tmp_path, source)
    got = assemble_models(ModelFiles(sd15_inpainting=sd15, motion_module=mm, dynascene=[clip]),
                          config=DynaSceneConfig.preset("tiny")).models
    # one checkpoint fills both U-Nets: changing the denoiser must not change the ReferenceNet
    stage1 = tmp_path / "stage1.safetensors"
    trained = distinguishable_tiny_models("tiny", seed=9)
    save_dynascene(stage1, trained, groups=["denoiser_spatial", "reference_net"])
    later = assemble_models(ModelFiles(sd15_inpainting=sd15, motion_module=mm, dynascene=[stage1, clip]),
                            config=DynaSceneConfig.preset("tiny")).models
    for group in ("denoiser_spatial", "reference_net"):  # a later file overrides each U-Net with its own values
        for name, p in parameter_groups(trained)[group].items():
            assert torch.equal(parameter_groups(later)[group][name], p), name
    with torch.no_grad():
        got.denoiser.unet.conv_in.weight.add_(1)
    assert not torch.equal(got.denoiser.unet.conv_in.weight, got.reference_net.unet.conv_in.weight)
    pointers = [p.untyped_storage().data_ptr() for p in got.parameters() if p.numel()]
    assert len(pointers) == len(set(pointers))


def test_parts_no_file_fills_get_their_normal_initialisation():
    models = assemble_models(ModelFiles(), config=DynaSceneConfig.preset("tiny"), require=()).models
    state = models.state_dict()
    proj_out = [k for k in state if ".motion_modules." in k and ".proj_out." in k]
    adaptor = [k for k in state if ".processor.qkv_merge." in k]
    assert proj_out and adaptor and all(not state[k].any() for k in proj_out + adaptor)  # AnimateDiff's fresh init
    conv = state["denoiser.unet.conv_in.weight"]
    assert conv.std() > 0 and not conv.is_meta


def test_networks_left_out_are_neither_built_nor_initialised(tmp_path, monkeypatch):
    """The nodes take VAE and CLIP from the host: assembling only the sampler's networks leaves those out
    (no random initialisation of a CLIP ViT or VAE that would be thrown away), and the rest equals the file."""
    from dynascene_core.checkpoints import save_dynascene
    from dynascene_core.models import networks as networks_module

    torch.manual_seed(0)
    source = DynaSceneModels.build("tiny")
    path = tmp_path / "full.safetensors"
    save_dynascene(path, source)
    built = []
    for name in ("vae", "image_encoder"):
        original = networks_module.PARTS[name]
        monkeypatch.setitem(networks_module.PARTS, name,
                            lambda config, original=original, name=name: built.append(name) or original(config))
    assembled = assemble_models(ModelFiles(dynascene=[str(path)]), require=("denoiser_spatial",),
                                networks=("denoiser", "reference_net", "camera_encoder"))
    assert assembled.models.vae is None and assembled.models.image_encoder is None
    assert sorted(built) == ["image_encoder", "vae"]  # each built once on meta (no memory, no init), never materialised
    for name, tensor in source.denoiser.state_dict().items():
        assert torch.equal(assembled.models.denoiser.state_dict()[name], tensor), name
    full = assemble_models(ModelFiles(dynascene=[str(path)]), require=("denoiser_spatial",))
    assert full.models.vae is not None and full.models.image_encoder is not None
