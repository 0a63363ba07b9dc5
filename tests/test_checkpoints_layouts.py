"""Key layouts of the real published checkpoints, written from the reference code (not from our converters).

Each ``*_layout`` function returns ``{source key: target key}`` (target ``None`` = a positional table that
is regenerated, or a key DynaScene does not use), following:

- LDM U-Net: ``openaimodel.UNetModel`` naming as mapped in ComfyUI ``comfy/utils.py`` (``unet_to_diffusers``),
- LDM VAE: ``ldm/modules/diffusionmodules/model.py`` Encoder/Decoder naming,
- AnimateDiff: guoyww/AnimateDiff ``animatediff/models/motion_module.py`` (VanillaTemporalModule),
- CameraCtrl: hehao13/CameraCtrl ``cameractrl/models/pose_adaptor.py`` + ``attention_processor.py``.

The stored ``tests/fixtures/*.json`` are these layouts at full size with shapes; ``test_fixtures_are_current``
keeps them in sync. Running this file as a script rewrites them.
"""

from __future__ import annotations

import functools
import gzip
import json
import os

import pytest
import torch

from dynascene_core.models import DynaSceneConfig

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")

_RESNET = {"in_layers.0": "norm1", "in_layers.2": "conv1", "emb_layers.1": "time_emb_proj",
           "out_layers.0": "norm2", "out_layers.3": "conv2", "skip_connection": "conv_shortcut"}
_BASIC = {"input_blocks.0.0": "conv_in", "time_embed.0": "time_embedding.linear_1",
          "time_embed.2": "time_embedding.linear_2", "out.0": "conv_norm_out", "out.2": "conv_out"}


def ldm_unet_layout(target_keys, layers_per_block: int = 2, levels: int = 4) -> dict[str, str]:
    """``model.diffusion_model.*`` -> diffusers ``UNet2DConditionModel`` names for the keys in ``target_keys``."""
    block_map = {}  # diffusers module prefix -> ldm module prefix
    for ldm, diff in _BASIC.items():
        block_map[diff] = ldm
    n = 1
    for x in range(levels):
        for i in range(layers_per_block):
            block_map[f"down_blocks.{x}.resnets.{i}"] = f"input_blocks.{n}.0"
            block_map[f"down_blocks.{x}.attentions.{i}"] = f"input_blocks.{n}.1"
            n += 1
        if x < levels - 1:
            block_map[f"down_blocks.{x}.downsamplers.0.conv"] = f"input_blocks.{n}.0.op"
            n += 1
    block_map["mid_block.resnets.0"], block_map["mid_block.attentions.0"] = "middle_block.0", "middle_block.1"
    block_map["mid_block.resnets.1"] = "middle_block.2"
    n = 0
    for x in range(levels):
        for i in range(layers_per_block + 1):
            block_map[f"up_blocks.{x}.resnets.{i}"] = f"output_blocks.{n}.0"
            has_attn = any(k.startswith(f"up_blocks.{x}.attentions.{i}.") for k in target_keys)
            block_map[f"up_blocks.{x}.attentions.{i}"] = f"output_blocks.{n}.1"
            if i == layers_per_block and x < levels - 1:
                block_map[f"up_blocks.{x}.upsamplers.0.conv"] = f"output_blocks.{n}.{2 if has_attn else 1}.conv"
            n += 1
    out = {}
    for key in target_keys:
        prefix = max((p for p in block_map if key.startswith(p + ".")), key=len)
        rest = key[len(prefix) + 1:]
        if ".resnets." in prefix:
            for d_name, l_name in ((v, k) for k, v in _RESNET.items()):
                if rest.startswith(d_name + "."):
                    rest = l_name + rest[len(d_name):]
                    break
        out["model.diffusion_model." + block_map[prefix] + "." + rest] = key
    return out


def ldm_vae_layout(target_keys, prefix: str = "first_stage_model.", levels: int = 4) -> dict[str, str]:
    """LDM ``Encoder``/``Decoder`` names -> diffusers ``AutoencoderKL`` names."""
    attn = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}
    out = {}
    for key in target_keys:
        k = key
        for side in ("encoder", "decoder"):
            for i in range(levels):
                ldm_i = i if side == "encoder" else levels - 1 - i
                blocks = "down" if side == "encoder" else "up"
                k = k.replace(f"{side}.{blocks}_blocks.{i}.resnets.", f"{side}.{blocks}.{ldm_i}.block.")
                k = k.replace(f"{side}.{blocks}_blocks.{i}.{blocks}samplers.0.", f"{side}.{blocks}.{ldm_i}.{blocks}sample.")
            k = k.replace(f"{side}.mid_block.resnets.0.", f"{side}.mid.block_1.")
            k = k.replace(f"{side}.mid_block.resnets.1.", f"{side}.mid.block_2.")
            if k.startswith(f"{side}.mid_block.attentions.0."):
                rest = k[len(f"{side}.mid_block.attentions.0."):]
                name, leaf = rest.rsplit(".", 1)
                k = f"{side}.mid.attn_1.{attn[name]}.{leaf}"
            k = k.replace(f"{side}.conv_norm_out.", f"{side}.norm_out.")
        out[prefix + k.replace("conv_shortcut", "nin_shortcut")] = key
    return out


def animatediff_layout(channels=(320, 640, 1280, 1280), mid: bool = True, layers: int = 2) -> dict[str, str | None]:
    """AnimateDiff motion-module names -> ``UNetMotionModel`` names (``pos_encoder.pe`` -> None)."""
    modules = [(f"down_blocks.{i}.motion_modules.{j}", c) for i, c in enumerate(channels) for j in range(layers)]
    modules += [(f"up_blocks.{i}.motion_modules.{j}", c) for i, c in enumerate(reversed(channels))
                for j in range(layers + 1)]
    if mid:
        modules.append(("mid_block.motion_modules.0", channels[-1]))
    out: dict[str, str | None] = {}
    for name, _ in modules:
        src, dst = f"{name}.temporal_transformer.", f"{name}."
        for leaf in ("norm", "proj_in", "proj_out"):
            for p in ("weight", "bias"):
                out[f"{src}{leaf}.{p}"] = f"{dst}{leaf}.{p}"
        tb, dtb = src + "transformer_blocks.0.", dst + "transformer_blocks.0."
        for a in (0, 1):
            for proj in ("to_q", "to_k", "to_v"):
                out[f"{tb}attention_blocks.{a}.{proj}.weight"] = f"{dtb}attn{a + 1}.{proj}.weight"
            for p in ("weight", "bias"):
                out[f"{tb}attention_blocks.{a}.to_out.0.{p}"] = f"{dtb}attn{a + 1}.to_out.0.{p}"
                out[f"{tb}norms.{a}.{p}"] = f"{dtb}norm{a + 1}.{p}"
            out[f"{tb}attention_blocks.{a}.pos_encoder.pe"] = None
        for p in ("weight", "bias"):
            out[f"{tb}ff.net.0.proj.{p}"] = f"{dtb}ff.net.0.proj.{p}"
            out[f"{tb}ff.net.2.{p}"] = f"{dtb}ff.net.2.{p}"
            out[f"{tb}ff_norm.{p}"] = f"{dtb}norm3.{p}"
    return out


def animatediff_shapes(layout: dict, channels=(320, 640, 1280, 1280), pe_len: int = 32) -> dict[str, list[int]]:
    """Shapes of the AnimateDiff tensors, from the module definitions (Linear(C, C), GEGLU 4C, LayerNorm C)."""
    shapes = {}
    for key in layout:
        c = _module_channels(key, channels)
        if key.endswith("pos_encoder.pe"):
            shapes[key] = [1, pe_len, c]
        elif ".ff.net.0.proj." in key:
            shapes[key] = [8 * c, c] if key.endswith("weight") else [8 * c]
        elif ".ff.net.2." in key:
            shapes[key] = [c, 4 * c] if key.endswith("weight") else [c]
        elif key.endswith("weight") and any(s in key for s in ("to_q", "to_k", "to_v", "to_out", "proj_in", "proj_out")):
            shapes[key] = [c, c]
        else:
            shapes[key] = [c]
    return shapes


def _module_channels(key: str, channels) -> int:
    part, idx = key.split(".")[0], int(key.split(".")[1]) if key.split(".")[1].isdigit() else None
    if part == "down_blocks":
        return channels[idx]
    if part == "up_blocks":
        return list(reversed(channels))[idx]
    return channels[-1]


def cameractrl_layout(channels=(320, 640, 1280, 1280), blocks: int = 2, layers: int = 2) -> dict[str, str | None]:
    """CameraCtrl.ckpt names -> CameraEncoder / UNetMotionModel adaptor names (``pos_encoder.pe`` -> None)."""
    out: dict[str, str | None] = {}
    enc = "pose_encoder_state_dict."
    for p in ("weight", "bias"):
        out[f"{enc}encoder_conv_in.{p}"] = f"conv_in.{p}"
    for i, c in enumerate(channels):
        for j in range(blocks):
            in_c = channels[i - 1] if (j == 0 and i > 0) else c
            convs = ["block1", "block2"] + (["in_conv"] if in_c != c else [])
            for conv in convs:
                for p in ("weight", "bias"):
                    out[f"{enc}encoder_down_conv_blocks.{i}.{j}.{conv}.{p}"] = f"scales.{i}.{j}.resnet.{conv}.{p}"
            src, dst = f"{enc}encoder_down_attention_blocks.{i}.{j}.", f"scales.{i}.{j}.temporal."
            for proj in ("to_q", "to_k", "to_v"):
                out[f"{src}attention_blocks.0.{proj}.weight"] = f"{dst}attn1.{proj}.weight"
            out[f"{src}attention_blocks.0.pos_encoder.pe"] = None
            for p in ("weight", "bias"):
                out[f"{src}attention_blocks.0.to_out.0.{p}"] = f"{dst}attn1.to_out.0.{p}"
                out[f"{src}norms.0.{p}"] = f"{dst}norm1.{p}"
                out[f"{src}ff.net.0.proj.{p}"] = f"{dst}ff.net.0.proj.{p}"
                out[f"{src}ff.net.2.{p}"] = f"{dst}ff.net.2.{p}"
                out[f"{src}ff_norm.{p}"] = f"{dst}norm3.{p}"
    ada = "attention_processor_state_dict."
    names = [f"down_blocks.{i}.motion_modules.{j}" for i in range(len(channels)) for j in range(layers)]
    names += [f"up_blocks.{i}.motion_modules.{j}" for i in range(len(channels)) for j in range(layers + 1)]
    for name in names:
        for p in ("weight", "bias"):
            out[f"{ada}{name}.temporal_transformer.transformer_blocks.0.attention_blocks.0.processor.qkv_merge.{p}"] = (
                f"{name}.transformer_blocks.0.attn1.processor.qkv_merge.{p}")
    return out


def cameractrl_shapes(layout, channels=(320, 640, 1280, 1280), cin: int = 384, pe_len: int = 16):
    shapes = {}
    for key in layout:
        parts = key.split(".")
        if "pose_encoder_state_dict" == parts[0]:
            if parts[1] == "encoder_conv_in":
                shapes[key] = [channels[0], cin, 3, 3] if key.endswith("weight") else [channels[0]]
                continue
            i, j = int(parts[2]), int(parts[3])
            c = channels[i]
            if parts[1] == "encoder_down_conv_blocks":
                in_c = channels[i - 1] if (j == 0 and i > 0) else c
                k = {"block1": 3, "block2": 1, "in_conv": 1}[parts[4]]
                src_c = in_c if parts[4] == "in_conv" else c
                shapes[key] = [c, src_c, k, k] if key.endswith("weight") else [c]
            elif key.endswith("pos_encoder.pe"):
                shapes[key] = [1, pe_len, c]
            else:
                shapes[key] = animatediff_shapes({"down_blocks.0." + ".".join(parts[4:]): None}, (c,))[
                    "down_blocks.0." + ".".join(parts[4:])]
        else:
            c = _module_channels(".".join(parts[1:]), channels)
            shapes[key] = [c, c] if key.endswith("weight") else [c]
    return shapes


def _sd15_unet_shapes():
    from diffusers import UNet2DConditionModel

    with torch.device("meta"):
        unet = UNet2DConditionModel(**DynaSceneConfig.preset("sd15").unet)
    return {k: list(v.shape) for k, v in unet.state_dict().items()}


def _sd15_vae_shapes():
    from diffusers import AutoencoderKL

    with torch.device("meta"):
        vae = AutoencoderKL(**DynaSceneConfig.preset("sd15").vae)
    return {k: list(v.shape) for k, v in vae.state_dict().items()}


TEXT_ENCODER_SIGNATURE = {  # CLIP ViT-L/14 text tower inside SD1.5 files (a subset: accounted, not loaded)
    "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight": [49408, 768],
    "cond_stage_model.transformer.text_model.embeddings.position_embedding.weight": [77, 768],
    "cond_stage_model.transformer.text_model.final_layer_norm.weight": [768],
}


@functools.lru_cache(maxsize=1)
def build_fixtures() -> dict[str, dict]:
    """All fixture contents at full size: ``{file name: {key: shape}}``."""
    unet, vae = _sd15_unet_shapes(), _sd15_vae_shapes()
    ldm = {k: unet[v] for k, v in ldm_unet_layout(unet).items()}
    for k, v in ldm_vae_layout(vae).items():
        ldm[k] = list(vae[v]) + ([1, 1] if ".attn_1." in k and k.endswith("weight") and "norm" not in k else [])
    ldm.update(TEXT_ENCODER_SIGNATURE)
    out = {"sd15_inpainting_ldm.json": ldm}
    for name, mid, pe in (("mm_sd_v15_v2.json", True, 32), ("mm_sd_v15.json", False, 24), ("v3_sd15_mm.json", False, 32)):
        out[name] = animatediff_shapes(animatediff_layout(mid=mid), pe_len=pe)
    from diffusers import MotionAdapter

    with torch.device("meta"):
        adapter = MotionAdapter(block_out_channels=(320, 640, 1280, 1280), **DynaSceneConfig.preset("sd15").motion)
    out["motion_adapter_diffusers.json"] = {k: list(v.shape) for k, v in adapter.state_dict().items()}
    out["cameractrl.json"] = cameractrl_shapes(cameractrl_layout())
    return out


def load_fixture(name: str) -> dict[str, list[int]]:
    with gzip.open(os.path.join(FIXTURES, name + ".gz"), "rt", encoding="utf-8") as fh:
        return json.load(fh)


def meta_tensors(shapes: dict[str, list[int]]) -> dict[str, torch.Tensor]:
    return {k: torch.empty(v, device="meta") for k, v in shapes.items()}


@pytest.mark.parametrize("name", sorted(["sd15_inpainting_ldm.json", "mm_sd_v15_v2.json", "mm_sd_v15.json",
                                         "v3_sd15_mm.json", "motion_adapter_diffusers.json", "cameractrl.json"]))
def test_fixtures_are_current(name):
    assert load_fixture(name) == build_fixtures()[name]


def test_fixture_key_counts_match_the_reference_modules():
    # AnimateDiff: 28 tensors per module (2 attentions x (q,k,v,out w+b,pe) + 2 norms + ff + ff_norm + norm,
    # proj_in, proj_out); v2 has 8 down + 12 up + 1 mid modules, v1/v3 no mid.
    assert len(load_fixture("mm_sd_v15_v2.json")) == 21 * 28
    assert len(load_fixture("v3_sd15_mm.json")) == 20 * 28
    assert load_fixture("mm_sd_v15.json")[
        "down_blocks.0.motion_modules.0.temporal_transformer.transformer_blocks.0.attention_blocks.0.pos_encoder.pe"
    ] == [1, 24, 320]
    # LDM SD1.5 U-Net has 686 tensors, the VAE 248 (with 1x1-conv attention weights).
    ldm = load_fixture("sd15_inpainting_ldm.json")
    assert sum(k.startswith("model.diffusion_model.") for k in ldm) == 686
    assert sum(k.startswith("first_stage_model.") for k in ldm) == 248
    assert ldm["model.diffusion_model.input_blocks.0.0.weight"] == [320, 9, 3, 3]
    assert ldm["first_stage_model.encoder.mid.attn_1.q.weight"] == [512, 512, 1, 1]
    # CameraCtrl: 1x1 in_conv only where channels change (scales 1 and 2, first block).
    cc = load_fixture("cameractrl.json")
    assert sorted(k for k in cc if ".in_conv.weight" in k) == [
        "pose_encoder_state_dict.encoder_down_conv_blocks.1.0.in_conv.weight",
        "pose_encoder_state_dict.encoder_down_conv_blocks.2.0.in_conv.weight"]
    assert cc["pose_encoder_state_dict.encoder_conv_in.weight"] == [320, 384, 3, 3]


if __name__ == "__main__":
    for fname, content in build_fixtures().items():
        with gzip.open(os.path.join(FIXTURES, fname + ".gz"), "wt", encoding="utf-8") as fh:
            json.dump(content, fh, sort_keys=True, separators=(",", ":"))
        print(fname, len(content))
