"""Checkpoint loaders: full-size published layouts on the meta device, data paths on the tiny config."""

import json
import math
import os
import pickle
import subprocess
import sys

import pytest
import torch
from diffusers.models.embeddings import SinusoidalPositionalEmbedding
from safetensors.torch import save_file

from conftest import distinguishable_tiny_models

from dynascene_core.checkpoints.cameractrl import load_cameractrl
from dynascene_core.checkpoints.clip_vision import load_image_encoder
from dynascene_core.checkpoints.dynascene_format import load_dynascene, save_dynascene
from dynascene_core.checkpoints.inspect import inspect_file
from dynascene_core.checkpoints.io import CheckpointError
from dynascene_core.checkpoints.motion import load_motion_module
from dynascene_core.checkpoints.sd15 import load_sd15_inpainting, load_vae
from dynascene_core.models import DynaSceneConfig, DynaSceneModels
from test_checkpoints_layouts import (animatediff_layout, cameractrl_layout, ldm_unet_layout, ldm_vae_layout,
                                      load_fixture, meta_tensors)


@pytest.fixture(scope="module")
def tiny():
    models = distinguishable_tiny_models("tiny", seed=1)
    return models


def _meta(motion_mid=True, blocks=1):
    config = DynaSceneConfig.preset("sd15")
    config.motion["use_motion_mid_block"] = motion_mid
    config.camera["blocks_per_scale"] = blocks
    with torch.device("meta"):
        return DynaSceneModels(config)


def _save(tensors, path):
    if str(path).endswith(".safetensors"):
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(path))
    else:
        torch.save(tensors, str(path))
    return path


def _meta_file(tmp_path, name, shapes, wrap=None):
    """Full-size layouts are checked through the converters directly (files would need real memory)."""
    tensors = meta_tensors(shapes)
    return {wrap + "." + k: v for k, v in tensors.items()} if wrap else tensors


def _renamed(state, layout):
    """Write a model's tensors back in a published naming (the inverse of what the loader must do)."""
    out = {}
    for src, dst in layout.items():
        if dst is None:
            continue
        t = state[dst]
        out[src] = t[..., None, None].clone() if src.startswith("first_stage_model.") and ".attn_1." in src \
            and src.endswith("weight") and ".norm." not in src else t
    return out


def _randomize(module):
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn_like(p))


# ---------- full-size published layouts (meta device, no weight memory) ----------

def test_sd15_inpainting_full_layout_loads_into_both_unets_and_vae(monkeypatch):
    from dynascene_core.checkpoints import sd15

    shapes = load_fixture("sd15_inpainting_ldm.json")
    monkeypatch.setattr(sd15, "read_weights", lambda p: type("W", (), {"tensors": meta_tensors(shapes), "metadata": {}, "path": p})())
    m = _meta()
    reports = load_sd15_inpainting("sd-v1-5-inpainting.ckpt", denoiser_unet=m.denoiser.unet,
                                   reference_unet=m.reference_net.unet, vae=m.vae)
    assert [r.counts()["loaded"] for r in reports] == [686, 686, 248]
    assert reports[0].counts()["not_used"] == 3  # the text-encoder signature keys
    assert m.reference_net.unet.conv_in.weight.shape == (320, 9, 3, 3)


@pytest.mark.parametrize("name,mid", [("mm_sd_v15_v2.json", True), ("mm_sd_v15.json", False),
                                      ("v3_sd15_mm.json", False), ("motion_adapter_diffusers.json", True)])
def test_motion_module_full_layouts(monkeypatch, name, mid):
    from dynascene_core.checkpoints import motion

    shapes = load_fixture(name)
    monkeypatch.setattr(motion, "read_weights", lambda p: type("W", (), {"tensors": meta_tensors(shapes), "metadata": {}, "path": p})())
    m = _meta(motion_mid=True)
    report = load_motion_module(name, m.denoiser.unet)
    per_module = 26
    assert report.counts()["loaded"] == (21 if mid else 20) * per_module
    assert report.counts()["regenerated"] == (21 if mid else 20) * (1 if "adapter" in name else 2)
    assert report.counts()["fresh_init"] == 42 + (0 if mid else 2)  # adaptor w+b per module (+ mid proj_out)
    if not mid:
        assert any("identity" in n for n in report.notes)


def test_cameractrl_full_layout(monkeypatch):
    from dynascene_core.checkpoints import cameractrl

    shapes = load_fixture("cameractrl.json")
    shapes["optimizer_state_dict.state.0.exp_avg"] = [4]
    monkeypatch.setattr(cameractrl, "read_weights", lambda p: type("W", (), {"tensors": meta_tensors(shapes), "metadata": {}, "path": p})())
    m = _meta(blocks=2)
    enc, ada = load_cameractrl("CameraCtrl.ckpt", camera_encoder=m.camera_encoder, denoiser_unet=m.denoiser.unet)
    # conv_in 2 + 8 blocks x (block1/block2 4 + temporal 13) + 2 in_convs x 2 = 142
    assert enc.counts() == {"loaded": 142, "regenerated": 8, "fresh_init": 0, "not_used": 1}
    assert ada.counts()["loaded"] == 40 and ada.fresh_init == [
        "mid_block.motion_modules.0.transformer_blocks.0.attn1.processor.qkv_merge.weight",
        "mid_block.motion_modules.0.transformer_blocks.0.attn1.processor.qkv_merge.bias"]
    with pytest.raises(CheckpointError, match="2 blocks per scale.*\n.*\n  expected: camera config blocks_per_scale = 2"):
        load_cameractrl("CameraCtrl.ckpt", camera_encoder=_meta(blocks=1).camera_encoder)


# ---------- data path on the tiny config: values land where they belong ----------

@pytest.mark.parametrize("suffix,wrap", [(".safetensors", False), (".ckpt", True)])
def test_sd15_ldm_values_land_in_both_unets_and_vae(tmp_path, tiny, suffix, wrap):
    ref = tiny.reference_net.unet.state_dict()
    vae = tiny.vae.state_dict()
    tensors = _renamed(ref, ldm_unet_layout(ref)) | _renamed(vae, ldm_vae_layout(vae))
    tensors["cond_stage_model.transformer.text_model.final_layer_norm.weight"] = torch.ones(3)
    tensors = {"state_dict": tensors} if wrap else tensors
    path = _save(tensors, tmp_path / ("inpaint" + suffix))
    fresh = DynaSceneModels.build("tiny")
    reports = load_sd15_inpainting(path, denoiser_unet=fresh.denoiser.unet, reference_unet=fresh.reference_net.unet,
                                   vae=fresh.vae)
    assert [r.counts()["loaded"] for r in reports] == [len(ref), len(ref), len(vae)]
    assert reports[0].counts()["not_used"] == 1
    for k, v in ref.items():
        assert torch.equal(fresh.reference_net.unet.state_dict()[k], v), k
        assert torch.equal(fresh.denoiser.unet.state_dict()[k], v), k
    x = torch.randn(1, 3, 16, 16)
    assert torch.equal(fresh.vae.decode(fresh.vae.encode(x).latent_dist.mean).sample,
                       tiny.vae.decode(tiny.vae.encode(x).latent_dist.mean).sample)


def test_non_inpainting_unet_fails_unless_widened(tmp_path, tiny):
    ref = tiny.reference_net.unet.state_dict()
    ldm = _renamed(ref, ldm_unet_layout(ref))
    ldm["model.diffusion_model.input_blocks.0.0.weight"] = ldm["model.diffusion_model.input_blocks.0.0.weight"][:, :4]
    path = _save(ldm, tmp_path / "sd15.safetensors")
    fresh = DynaSceneModels.build("tiny")
    with pytest.raises(CheckpointError, match=r"sd15.safetensors: the U-Net has a 4-channel conv_in(.|\n)*"
                                              r"non-inpainting(.|\n)*widen_conv_in=True"):
        load_sd15_inpainting(path, reference_unet=fresh.reference_net.unet)
    load_sd15_inpainting(path, reference_unet=fresh.reference_net.unet, widen_conv_in=True)
    w = fresh.reference_net.unet.conv_in.weight
    assert torch.equal(w[:, :4], ref["conv_in.weight"][:, :4]) and not w[:, 4:].any()


@pytest.mark.parametrize("fmt", ["v2", "v3", "adapter"])
def test_motion_values_land_and_outputs_match(tmp_path, tiny, fmt):
    unet = tiny.denoiser.unet
    state = unet.state_dict()
    channels = tiny.config.unet["block_out_channels"]
    if fmt == "adapter":
        tensors = {k: v for k, v in state.items() if "motion_modules." in k and ".processor." not in k}
    else:
        tensors = _renamed(state, animatediff_layout(channels, mid=fmt == "v2"))
        tensors = {"state_dict": tensors}
    path = _save(tensors, tmp_path / f"mm_{fmt}.ckpt")
    fresh = DynaSceneModels.build("tiny")
    report = load_motion_module(path, fresh.denoiser.unet)
    got = fresh.denoiser.unet.state_dict()
    for k in (k for k in state if "motion_modules." in k and ".processor." not in k and "pos_embed" not in k):
        if fmt == "v3" and k.startswith("mid_block.motion_modules."):
            continue
        assert torch.equal(got[k], state[k]), k
    assert all(not got[k].any() for k in got if ".processor." in k)
    if fmt == "v3":
        assert not got["mid_block.motion_modules.0.proj_out.weight"].any()
        mm = fresh.denoiser.unet.mid_block.motion_modules[0]
        h = torch.randn(2 * 3, channels[-1], 2, 2)
        assert torch.equal(mm(h, num_frames=3), h)  # identity
    assert report.counts()["loaded"] == len(tensors.get("state_dict", tensors)) - report.counts()["regenerated"]


def test_cameractrl_values_land(tmp_path, tiny):
    config = DynaSceneConfig.preset("tiny")
    config.camera["blocks_per_scale"] = 2
    src = DynaSceneModels(config)
    _randomize(src)
    enc, unet = src.camera_encoder.state_dict(), src.denoiser.unet.state_dict()
    layout = cameractrl_layout(config.unet["block_out_channels"], blocks=2)
    tensors = {"pose_encoder_state_dict": {}, "attention_processor_state_dict": {}}
    for part, state in (("pose_encoder_state_dict", enc), ("attention_processor_state_dict", unet)):
        sub = {k: v for k, v in layout.items() if k.startswith(part + ".")}
        tensors[part] = {k[len(part) + 1:]: v for k, v in _renamed(state, sub).items()}
    path = _save(tensors, tmp_path / "CameraCtrl.ckpt")
    dst = DynaSceneModels(config)
    load_cameractrl(path, camera_encoder=dst.camera_encoder, denoiser_unet=dst.denoiser.unet)
    plucker = torch.randn(4, 6, 64, 64)
    for a, b in zip(src.camera_encoder(plucker, num_frames=4), dst.camera_encoder(plucker, num_frames=4)):
        assert torch.equal(a, b)
    for k, v in unet.items():
        if ".processor." in k and not k.startswith("mid_block."):
            assert torch.equal(dst.denoiser.unet.state_dict()[k], v)


def test_positional_tables_regenerate_animatediff_formula():
    d, length = 320, 32
    position = torch.arange(length).unsqueeze(1)
    div = torch.exp(torch.arange(0, d, 2) * (-math.log(10000.0) / d))
    pe = torch.zeros(1, length, d)
    pe[0, :, 0::2], pe[0, :, 1::2] = torch.sin(position * div), torch.cos(position * div)
    assert torch.equal(SinusoidalPositionalEmbedding(d, 64).pe[:, :length], pe)


# ---------- DynaScene format ----------

def test_dynascene_round_trip_is_bit_exact_and_strict(tmp_path, tiny):
    path = tmp_path / "stage2.safetensors"
    keys = save_dynascene(path, tiny, ["motion_modules", "camera_adaptor", "camera_encoder"])
    models, report = load_dynascene(path)
    got, want = models.state_dict(), tiny.state_dict()
    assert report.counts()["loaded"] == len(keys) > 0
    assert all(torch.equal(got[k], want[k]) for k in keys)
    full = tmp_path / "full.safetensors"
    save_dynascene(full, tiny)
    models, _ = load_dynascene(full, models)
    assert all(torch.equal(v, models.state_dict()[k]) for k, v in want.items() if "pos_embed" not in k)
    # a file whose keys are not exactly its groups' keys is refused
    from safetensors import safe_open
    with safe_open(str(path), "pt") as f:
        meta, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    tensors.pop(keys[0])
    save_file(tensors, str(tmp_path / "partial.safetensors"), metadata=meta)
    with pytest.raises(CheckpointError, match="partial.safetensors(.|\n)*1 missing keys"):
        load_dynascene(tmp_path / "partial.safetensors", models)


# ---------- CLIP vision, VAE ----------

def test_clip_vision_single_file(tmp_path, tiny):
    sd = tiny.image_encoder.model.state_dict()
    sd = {k: v for k, v in sd.items()} | {"text_model.final_layer_norm.weight": torch.ones(2)}
    path = _save(sd, tmp_path / "clip_vision.safetensors")
    fresh = DynaSceneModels.build("tiny")
    report = load_image_encoder(path, fresh.image_encoder)
    assert report.counts()["not_used"] >= 1
    img = torch.rand(1, 3, 32, 32)
    assert torch.equal(fresh.image_encoder(img), tiny.image_encoder(img))


def test_vae_bare_ldm_file(tmp_path, tiny):
    vae = tiny.vae.state_dict()
    bare = {k[len("first_stage_model."):]: v for k, v in _renamed(vae, ldm_vae_layout(vae)).items()}
    path = _save(bare, tmp_path / "vae.safetensors")
    fresh = DynaSceneModels.build("tiny")
    assert load_vae(path, fresh.vae).counts()["loaded"] == len(vae)
    assert all(torch.equal(fresh.vae.state_dict()[k], v) for k, v in vae.items())


# ---------- wrong families and unsafe files ----------

def _tiny_sig(shapes):
    return {k: torch.zeros(s) for k, s in shapes.items()}


@pytest.mark.parametrize("name,tensors,looks", [
    ("sd2.safetensors", {"model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": [320, 1024],
                         "model.diffusion_model.input_blocks.0.0.weight": [320, 4, 3, 3]}, "Stable Diffusion 2"),
    ("sdxl.safetensors", {"model.diffusion_model.label_emb.0.0.weight": [1280, 2816],
                          "conditioner.embedders.0.x": [1]}, "SDXL"),
    ("random.safetensors", {"foo.weight": [3, 3]}, "unrecognised"),
    ("rvm.safetensors", {"backbone.features.0.0.weight": [16, 3, 3, 3], "project_mat.conv.weight": [4, 16, 1, 1]},
     "Robust Video Matting"),
])
def test_wrong_families_fail_clearly(tmp_path, name, tensors, looks):
    path = _save(_tiny_sig(tensors), tmp_path / name)
    models = DynaSceneModels.build("tiny")
    with pytest.raises(CheckpointError, match=rf"{name}(.|\n)*looks like: .*{looks}(.|\n)*expected"):
        load_sd15_inpainting(path, reference_unet=models.reference_net.unet)
    with pytest.raises(CheckpointError, match=rf"{name}(.|\n)*not an AnimateDiff motion module"):
        load_motion_module(path, models.denoiser.unet)


def test_code_running_pickle_refused_by_loaders(tmp_path):
    class RunsCode:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    path = tmp_path / "mm_sd_v15_v2.ckpt"
    path.write_bytes(pickle.dumps({"w": RunsCode()}))
    with pytest.raises(CheckpointError, match="mm_sd_v15_v2.ckpt: refused"):
        load_motion_module(path, DynaSceneModels.build("tiny").denoiser.unet)


# ---------- inspect CLI ----------

def test_inspect_cli(tmp_path, tiny):
    unet = tiny.denoiser.unet.state_dict()
    good = _save({k: v for k, v in unet.items() if "motion_modules." in k and ".processor." not in k},
                 tmp_path / "adapter_tiny.safetensors")
    # tiny motion weights do not fit the full-size model: not loadable, with counts
    out = subprocess.run([sys.executable, "-m", "dynascene_core.checkpoints", "inspect", str(good), "--json"],
                         capture_output=True, text=True, cwd=os.path.dirname(os.path.dirname(__file__)))
    result = json.loads(out.stdout)
    assert out.returncode == 1 and result["format"] == "motion_adapter_diffusers" and not result["loadable"]
    assert "shape mismatches" in result["error"]
    sd2 = _save(_tiny_sig({"model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": [2, 1024]}),
                tmp_path / "sd2.safetensors")
    assert inspect_file(sd2)["format"] == "sd2_ldm" and not inspect_file(sd2)["loadable"]
    dyn = tmp_path / "dyn.safetensors"
    save_dynascene(dyn, tiny, ["camera_encoder"])
    res = inspect_file(dyn)
    assert res["loadable"] and res["reports"][0]["counts"]["loaded"] == len(list(tiny.camera_encoder.parameters()))
