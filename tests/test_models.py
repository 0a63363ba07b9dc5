"""DynaScene networks on the tiny config: shapes, conditioning semantics, training plumbing."""

import copy
import json

import pytest
import torch
from diffusers import UNet2DConditionModel
from diffusers.models.attention_processor import Attention, AttnProcessor2_0

from dynascene_core.models import (CameraEncoder, DynaSceneConfig, DynaSceneDenoiser, DynaSceneModels,
                                   clip_preprocess, level_sizes, parameter_groups, reference_input,
                                   set_trainable, trainable_parameters, zero_image_embeds_like)
from dynascene_core.models import attention as attention_module
from dynascene_core.models.attention import ControlState, ReferenceReadProcessor

F_, H, W = 4, 64, 64  # frames and pixel size of the standard tiny inputs
h, w = H // 8, W // 8


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    return DynaSceneModels.build("tiny").eval()


def randomize_adaptors(denoiser, std=0.5, motion=True):
    """Make camera adaptors (and, with ``motion``, the motion modules' zero-initialised ``proj_out``)
    act like trained ones."""
    for name, p in denoiser.named_parameters():
        if ".qkv_merge." in name or (motion and ".motion_modules." in name and ".proj_out." in name):
            torch.nn.init.normal_(p, std=std)


def test_fresh_motion_modules_are_identity(models):
    sample, emb = inputs(models)
    with torch.no_grad():
        video = models.denoiser(sample, 300, emb)
        per_frame = torch.cat([models.denoiser(sample[:, :, i:i + 1], 300, emb) for i in range(F_)], dim=2)
    torch.testing.assert_close(video, per_frame, rtol=1e-5, atol=1e-5)


def inputs(models, batch=1, frames=F_, height=h, width=w):
    emb = torch.randn(batch, 1, models.config.unet["cross_attention_dim"])
    sample = torch.randn(batch, 9, frames, height, width)
    return sample, emb


# --- config -------------------------------------------------------------------------------------

def test_config_json_round_trip_and_presets():
    for name in ("sd15", "tiny"):
        cfg = DynaSceneConfig.preset(name)
        again = DynaSceneConfig.from_json(cfg.to_json())
        assert again == cfg
        assert json.loads(cfg.to_json())["scaling_factor"] == 0.18215
    sd15 = DynaSceneConfig.preset("sd15")
    assert sd15.unet["in_channels"] == 9 and sd15.unet["cross_attention_dim"] == 768
    assert sd15.camera["channels"] == [320, 640, 1280, 1280] and sd15.camera["blocks_per_scale"] == 1
    assert sd15.clip_vision["projection_dim"] == 768 and sd15.motion["motion_max_seq_length"] == 32
    with pytest.raises(ValueError, match="unknown DynaScene config preset"):
        DynaSceneConfig.preset("sdxl")
    bad = sd15.to_dict()
    bad["camera"]["channels"] = [320, 640, 1280]
    with pytest.raises(ValueError, match="camera.channels"):
        DynaSceneConfig.from_dict(bad)
    with pytest.raises(ValueError, match="unknown keys"):
        DynaSceneConfig.from_dict({**sd15.to_dict(), "lora": {}})


# --- shapes -------------------------------------------------------------------------------------

def test_forward_shapes_of_every_network(models):
    images = torch.rand(2, 3, H, W)
    with torch.no_grad():
        emb = models.image_encoder(images)
        assert emb.shape == (2, 1, 32)
        latent = models.vae.encode(images * 2 - 1).latent_dist.mean * models.config.scaling_factor
        assert latent.shape == (2, 4, h, w)
        assert models.vae.decode(latent / models.config.scaling_factor).sample.shape == (2, 3, H, W)
        bank = models.reference_net(latent, emb)
        assert list(bank) == models.reference_net.writer_block_names()
        assert set(bank) == set(models.denoiser.reference_block_names())
        assert bank["down_blocks.0.attentions.0.transformer_blocks.0"].shape == (2, h * w, 32)
        assert bank["mid_block.attentions.0.transformer_blocks.0"].shape == (2, 1, 64)
        cam = models.camera_encoder(torch.randn(2, F_, 6, H, W))
        assert [tuple(c.shape) for c in cam] == [(2, 32, F_, 8, 8), (2, 32, F_, 4, 4), (2, 64, F_, 2, 2),
                                                 (2, 64, F_, 1, 1)]
        sample, _ = inputs(models, batch=2)
        out = models.denoiser(sample, 500, emb, reference=bank, camera_features=cam)
    assert out.shape == (2, 4, F_, h, w) and torch.isfinite(out).all()
    assert models.denoiser.control.bank is None and models.denoiser.control.camera_tokens is None


def test_spatial_weights_have_the_2d_unet_names(models):
    """The checkpoint loaders fill the denoiser's spatial part with 2D U-Net weights: same keys, same shapes."""
    unet2d = models.reference_net.unet.state_dict()
    spatial = {k: v for k, v in models.denoiser.unet.state_dict().items() if ".motion_modules." not in k}
    assert {k: v.shape for k, v in spatial.items()} == {k: v.shape for k, v in unet2d.items()}
    assert isinstance(models.reference_net.unet, UNet2DConditionModel)
    adaptor = [k for k in models.denoiser.state_dict() if ".qkv_merge." in k]
    assert "unet.down_blocks.0.motion_modules.0.transformer_blocks.0.attn1.processor.qkv_merge.weight" in adaptor
    assert "unet.mid_block.motion_modules.0.transformer_blocks.0.attn1.processor.qkv_merge.bias" in adaptor
    assert len(adaptor) == 2 * (4 * 2 + 1 + 4 * 3)  # weight+bias per motion module (v2 layout, mid included)


# --- camera adaptor -----------------------------------------------------------------------------

def test_zero_initialised_adaptor_is_bit_identical(models):
    sample, emb = inputs(models)
    with torch.no_grad():
        cam = models.camera_encoder(torch.randn(1, F_, 6, H, W))
        plain = models.denoiser(sample, 300, emb)
        assert torch.equal(plain, models.denoiser(sample, 300, emb, camera_features=cam))
        trained = copy.deepcopy(models.denoiser)  # motion modules as if trained, adaptors still fresh
        for name, p in trained.named_parameters():
            if ".motion_modules." in name and ".proj_out." in name:
                torch.nn.init.normal_(p, std=0.5)
        base = trained(sample, 300, emb)
        assert not torch.allclose(base, plain, atol=1e-4)
        assert torch.equal(trained(sample, 300, emb, camera_features=cam), base)
        randomize_adaptors(trained, motion=False)
        assert not torch.allclose(trained(sample, 300, emb, camera_features=cam), base, atol=1e-4)
        assert torch.equal(trained(sample, 300, emb), base)  # adaptor inactive without camera features


def test_camera_features_repeat_over_cfg_batch(models):
    denoiser = copy.deepcopy(models.denoiser)
    randomize_adaptors(denoiser)
    sample, emb = inputs(models)
    with torch.no_grad():
        cam = models.camera_encoder(torch.randn(1, F_, 6, H, W))
        single = denoiser(sample, 300, emb, camera_features=cam)
        doubled = denoiser(sample.repeat(2, 1, 1, 1, 1), 300, emb.repeat(2, 1, 1), camera_features=cam)
    torch.testing.assert_close(doubled[:1], single, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(doubled[1:], single, atol=1e-5, rtol=1e-5)


# --- camera encoder -----------------------------------------------------------------------------

@pytest.mark.parametrize("pixels,latent_levels", [
    ((432, 768), [(54, 96), (27, 48), (14, 24), (7, 12)]),
    ((256, 256), [(32, 32), (16, 16), (8, 8), (4, 4)]),
])
def test_camera_encoder_levels_match_unet(models, pixels, latent_levels):
    enc = CameraEncoder(channels=(8, 8, 16, 16), num_attention_heads=2, blocks_per_scale=2)
    with torch.no_grad():
        feats = enc(torch.randn(1 * 2, 6, *pixels), num_frames=2)
    assert [tuple(f.shape[-2:]) for f in feats] == latent_levels
    assert [f.shape[:3] for f in feats] == [(1, 8, 2), (1, 8, 2), (1, 16, 2), (1, 16, 2)]
    assert level_sizes(*latent_levels[0]) == latent_levels
    # the U-Net's own stride-2 downsamplers produce the same sizes
    unet, x, sizes = models.denoiser.unet, torch.zeros(1, 32, *latent_levels[0]), [latent_levels[0]]
    with torch.no_grad():
        for block in unet.down_blocks[:-1]:
            conv = block.downsamplers[0]
            x = conv(torch.zeros(1, conv.channels, *x.shape[-2:]))
            sizes.append(tuple(x.shape[-2:]))
    assert sizes == latent_levels


def test_denoiser_runs_with_camera_features_at_odd_latent_size(models):
    denoiser = copy.deepcopy(models.denoiser)
    randomize_adaptors(denoiser)
    sample, emb = inputs(models, frames=2, height=6, width=10)  # 48x80 px: 6 -> 3 -> 2 -> 1
    with torch.no_grad():
        cam = models.camera_encoder(torch.randn(1, 2, 6, 48, 80))
        out = denoiser(sample, 100, emb, camera_features=cam)
        assert out.shape == (1, 4, 2, 6, 10)
        with pytest.raises(ValueError, match=r"camera_features\[1\]"):
            denoiser(sample, 100, emb, camera_features=[cam[0], cam[1][..., :2, :], cam[2], cam[3]])


def test_camera_encoder_state_dict_names():
    enc = CameraEncoder(channels=(8, 8, 16, 16), num_attention_heads=2, blocks_per_scale=2)
    keys = set(enc.state_dict())
    for key in ("conv_in.weight", "scales.2.0.resnet.in_conv.weight", "scales.2.1.resnet.block1.weight",
                "scales.0.0.resnet.block2.bias", "scales.3.1.temporal.norm1.weight",
                "scales.0.0.temporal.attn1.to_q.weight", "scales.0.0.temporal.attn1.to_out.0.bias",
                "scales.0.0.temporal.norm3.weight", "scales.0.0.temporal.ff.net.0.proj.weight",
                "scales.0.0.temporal.ff.net.2.weight"):
        assert key in keys, key
    assert "scales.0.0.temporal.attn1.to_q.bias" not in keys
    assert "scales.0.0.resnet.in_conv.weight" not in keys  # 8 -> 8: no channel change
    assert not any(".attn2." in k or ".norm2." in k for k in keys)
    assert enc.conv_in.in_channels == 6 * 64
    assert enc.scales[1][0].resnet.block2.kernel_size == (1, 1)


# --- positional encoding ------------------------------------------------------------------------

def test_positional_encoding_up_to_max_and_clear_error_above(models):
    limit = models.config.motion["motion_max_seq_length"]
    sample, emb = inputs(models, frames=limit, height=2, width=2)
    with torch.no_grad():
        assert models.denoiser(sample, 1, emb).shape == (1, 4, limit, 2, 2)
        too_long, _ = inputs(models, frames=limit + 1, height=2, width=2)
        with pytest.raises(ValueError, match="motion_max_seq_length"):
            models.denoiser(too_long, 1, emb)
        with pytest.raises(ValueError, match="max_seq_length"):
            models.camera_encoder(torch.randn(1, limit + 1, 6, 16, 16))
    cfg = DynaSceneConfig.preset("tiny").to_dict()
    cfg["motion"]["motion_max_seq_length"] = 48
    longer = DynaSceneDenoiser(DynaSceneConfig.from_dict(cfg))
    pe48 = longer.unet.down_blocks[0].motion_modules[0].transformer_blocks[0].pos_embed.pe
    pe32 = models.denoiser.unet.down_blocks[0].motion_modules[0].transformer_blocks[0].pos_embed.pe
    assert pe48.shape == (1, 48, 32) and torch.equal(pe48[:, :32], pe32)


# --- reference attention ------------------------------------------------------------------------

def _attention_module(dim=16, heads=2):
    return Attention(query_dim=dim, heads=heads, dim_head=dim // heads, bias=False)


def test_reference_read_without_bank_is_plain_attention():
    attn, x = _attention_module(), torch.randn(6, 10, 16)
    expected = AttnProcessor2_0()(attn, x)
    state = ControlState(num_frames=3)
    torch.testing.assert_close(ReferenceReadProcessor("blk", state)(attn, x), expected)
    state.bank = {"other": torch.randn(1, 5, 16)}
    torch.testing.assert_close(ReferenceReadProcessor("blk", state)(attn, x), expected)


def test_reference_bank_is_shared_by_every_frame():
    attn, frames = _attention_module(), 3
    x, bank = torch.randn(2 * frames, 10, 16), torch.randn(2, 5, 16)
    state = ControlState(bank={"blk": bank}, num_frames=frames)
    out = ReferenceReadProcessor("blk", state)(attn, x)
    for video in range(2):
        for f in range(frames):
            row = video * frames + f
            tokens = torch.cat([x[row], bank[video]])[None]
            q, k, v = attn.to_q(x[row][None]), attn.to_k(tokens), attn.to_v(tokens)
            split = lambda t: t.view(1, -1, 2, 8).transpose(1, 2)  # noqa: E731
            ref = torch.nn.functional.scaled_dot_product_attention(split(q), split(k), split(v))
            ref = attn.to_out[0](ref.transpose(1, 2).reshape(1, 10, 16))
            torch.testing.assert_close(out[row][None], ref, atol=1e-5, rtol=1e-5)
    # frame order does not matter: permuting frames permutes the output
    perm = torch.tensor([2, 0, 1, 5, 3, 4])
    torch.testing.assert_close(ReferenceReadProcessor("blk", state)(attn, x[perm]), out[perm])


def test_reference_bank_changes_output_and_cfg_mask_matches_separate_calls(models):
    sample, emb = inputs(models, batch=2)
    with torch.no_grad():
        bank = models.reference_net(torch.randn(1, 4, h, w), torch.randn(1, 1, 32))
        uncond_emb = zero_image_embeds_like(emb[:1])
        no_ref = models.denoiser(sample[1:], 200, emb[1:])
        with_ref = models.denoiser(sample[1:], 200, emb[1:], reference=bank)
        assert (with_ref - no_ref).abs().max() > 1e-3
        uncond = models.denoiser(sample[:1], 200, uncond_emb)
        batched = models.denoiser(sample, 200, torch.cat([uncond_emb, emb[1:]]), reference=bank,
                                  reference_mask=(False, True))
    torch.testing.assert_close(batched[:1], uncond, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(batched[1:], with_ref, atol=1e-5, rtol=1e-5)


def test_reference_input_rule():
    latent = torch.randn(2, 4, 3, 5)
    x = reference_input(latent)
    assert x.shape == (2, 9, 3, 5)
    assert torch.equal(x[:, :4], latent) and torch.equal(x[:, 5:], latent) and not x[:, 4].any()
    assert reference_input(torch.randn(1, 48, 2, 2)).shape == (1, 97, 2, 2)  # patch-codec latents: 2C + 1
    with pytest.raises(ValueError, match="scene latent"):
        reference_input(torch.randn(2, 4, 3))


def test_state_is_cleared_even_when_forward_fails(models):
    denoiser = copy.deepcopy(models.denoiser)
    sample, emb = inputs(models)
    bank = {n: torch.randn(1, 4, 4) for n in denoiser.reference_block_names()}

    def broken(*args, **kwargs):
        assert denoiser.control.bank is bank
        raise RuntimeError("boom")

    denoiser.unet.forward = broken
    with pytest.raises(RuntimeError, match="boom"):
        denoiser(sample, 1, emb, reference=bank)
    assert denoiser.control.bank is None and denoiser.control.reference_mask is None


# --- gradients ----------------------------------------------------------------------------------

def _loss(models, seed=1):
    g = torch.Generator().manual_seed(seed)
    latent, scene = torch.randn(1, 9, 2, h, w, generator=g), torch.randn(1, 4, h, w, generator=g)
    emb = torch.randn(1, 1, 32, generator=g)
    bank = models.reference_net(scene, emb)
    cam = models.camera_encoder(torch.randn(1, 2, 6, H, W, generator=g))
    return models.denoiser(latent, 400, emb, reference=bank, camera_features=cam).square().mean()


def test_gradient_reaches_reference_net_only_through_reference_attention(models):
    m = copy.deepcopy(models).train()
    randomize_adaptors(m.denoiser)
    _loss(m).backward()
    conv_in = m.reference_net.unet.conv_in.weight.grad
    assert conv_in is not None and conv_in.abs().sum() > 0
    assert m.camera_encoder.conv_in.weight.grad.abs().sum() > 0
    m.zero_grad(set_to_none=True)
    sample, emb = inputs(m)
    bank = m.reference_net(torch.randn(1, 4, h, w), emb)
    m.denoiser(sample, 1, emb, reference=bank, reference_mask=(False,)).sum().backward()
    assert m.reference_net.unet.conv_in.weight.grad is None


def assert_checkpointing_keeps_grads(models) -> int:
    """Gradients of :func:`_loss` with gradient checkpointing equal those without (on copies of ``models`` with
    trained-like adaptors); returns how many parameters had one."""
    plain, ckpt = copy.deepcopy(models).train(), copy.deepcopy(models).train()
    randomize_adaptors(plain.denoiser)
    ckpt.load_state_dict(plain.state_dict())
    ckpt.enable_gradient_checkpointing()
    _loss(plain).backward()
    _loss(ckpt).backward()
    grads = dict(ckpt.named_parameters())
    checked = 0
    for name, p in plain.named_parameters():
        if p.grad is None:
            assert grads[name].grad is None, name
            continue
        torch.testing.assert_close(grads[name].grad, p.grad, atol=1e-5, rtol=1e-4, msg=name)
        checked += 1
    return checked


def test_gradient_checkpointing_gives_same_grads(models):
    assert assert_checkpointing_keeps_grads(models) > 1000


def test_gradient_checkpointing_recomputes_every_motion_module(models):
    """Each motion module (down, mid and up blocks) runs once in the forward pass and once more in backward."""
    from diffusers.models.unets.unet_motion_model import AnimateDiffTransformer3D

    m = copy.deepcopy(models).train()
    randomize_adaptors(m.denoiser)
    m.enable_gradient_checkpointing()
    calls = {}
    for name, module in m.denoiser.unet.named_modules():
        if isinstance(module, AnimateDiffTransformer3D):
            calls[name] = 0
            module.proj_in.register_forward_hook(lambda *_, name=name: calls.__setitem__(name, calls[name] + 1))
    assert any(n.startswith("down_blocks.") for n in calls) and any(n.startswith("up_blocks.") for n in calls)
    loss = _loss(m)
    assert set(calls.values()) == {1}
    loss.backward()
    assert calls == dict.fromkeys(calls, 2)
    m.disable_gradient_checkpointing()
    _loss(m).backward()
    assert calls == dict.fromkeys(calls, 3)


def test_reference_tail_is_exactly_what_autograd_cannot_reach(models):
    ref = copy.deepcopy(models.reference_net).train()
    bank = ref(torch.randn(1, 4, h, w), torch.randn(1, 1, 32))
    sum(t.sum() for t in bank.values()).backward()
    unreached = {n for n, p in ref.named_parameters() if p.grad is None}
    assert unreached == ref.non_influencing_parameter_names()
    assert "unet.conv_out.weight" in unreached and len(unreached) > 4


# --- parameter groups ---------------------------------------------------------------------------

def test_parameter_groups_disjoint_and_complete(models):
    groups = parameter_groups(models)
    names = [n for g in groups.values() for n in g]
    assert len(names) == len(set(names))
    assert set(names) == {n for n, _ in models.named_parameters()}
    stage1, stage2 = trainable_parameters(models, 1), trainable_parameters(models, 2)
    assert not set(stage1) & set(stage2)
    assert all(n.startswith(("denoiser.", "reference_net.")) and ".motion_modules." not in n for n in stage1)
    assert not any(n in stage1 for n in groups["reference_net_tail"])
    assert "denoiser.unet.conv_in.weight" in stage1 and "reference_net.unet.conv_in.weight" in stage1
    assert all(".motion_modules." in n or n.startswith("camera_encoder.") for n in stage2)
    assert set(groups["camera_adaptor"]) <= set(stage2) and len(groups["camera_adaptor"]) == 42
    m = copy.deepcopy(models)
    set_trainable(m, 2)
    assert {n for n, p in m.named_parameters() if p.requires_grad} == set(stage2)
    with pytest.raises(ValueError, match="training stage"):
        trainable_parameters(models, 3)


# --- chunked attention --------------------------------------------------------------------------

def test_chunked_attention_equals_unchunked(models, monkeypatch):
    q, k, v = torch.randn(7, 5, 16), torch.randn(7, 9, 16), torch.randn(7, 9, 16)
    full = attention_module.attention(q, k, v, heads=4)
    calls = []
    sdpa = torch.nn.functional.scaled_dot_product_attention
    monkeypatch.setattr(attention_module.F, "scaled_dot_product_attention",
                        lambda *a, **kw: calls.append(a[0].shape[0] * a[0].shape[1]) or sdpa(*a, **kw))
    monkeypatch.setattr(attention_module, "MAX_BATCH_HEADS", 8)
    chunked = attention_module.attention(q, k, v, heads=4)
    assert calls == [8, 8, 8, 4] and max(calls) <= 8
    torch.testing.assert_close(chunked, full)
    denoiser = copy.deepcopy(models.denoiser)
    randomize_adaptors(denoiser)
    sample, emb = inputs(models)
    with torch.no_grad():
        cam = models.camera_encoder(torch.randn(1, F_, 6, H, W))
        small_limit = denoiser(sample, 5, emb, camera_features=cam)
        monkeypatch.setattr(attention_module, "MAX_BATCH_HEADS", 65535)
        default_limit = denoiser(sample, 5, emb, camera_features=cam)
    torch.testing.assert_close(small_limit, default_limit, atol=1e-5, rtol=1e-5)


# --- CLIP ---------------------------------------------------------------------------------------

def test_clip_preprocess():
    images = torch.full((2, 3, 40, 80), 0.5)
    out = clip_preprocess(images)
    assert out.shape == (2, 3, 224, 224)
    expected = (0.5 - torch.tensor([0.48145466, 0.4578275, 0.40821073])) / torch.tensor(
        [0.26862954, 0.26130258, 0.27577711])
    torch.testing.assert_close(out[:, :, 100, 100], expected.expand(2, 3), atol=1e-5, rtol=0)
    # centre crop: a wide image keeps its middle; the outer quarters on each side are cut away
    wide = torch.zeros(1, 3, 40, 160)
    wide[..., 40:120] = 1.0
    cropped = clip_preprocess(wide)
    assert cropped[0, 0, 112, 112] > 1.5 and cropped[0, 0, 112, 0] > 1.0
    with pytest.raises(ValueError, match="clip_preprocess"):
        clip_preprocess(torch.rand(3, 40, 40))


# --- motion modules normalise per frame (AnimateDiff / CameraCtrl / Moore-AnimateAnyone) --------------

def _motion_module(models):
    return dict(models.denoiser.unet.named_modules())["down_blocks.0.motion_modules.0"]


def test_motion_module_group_norm_is_per_frame_by_the_formula():
    torch.manual_seed(0)
    models = DynaSceneModels.build("tiny").eval()
    module = _motion_module(models)
    frames, c = 4, module.in_channels
    groups = module.norm.num_groups
    with torch.no_grad():
        module.norm.weight.normal_(), module.norm.bias.normal_()
    gain = torch.tensor([0.2, 1.0, 3.0, 7.0]).view(frames, 1, 1, 1)
    offset = torch.tensor([-2.0, 0.0, 0.5, 4.0]).view(frames, 1, 1, 1)
    x = torch.randn(frames, c, 5, 6) * gain + offset  # (b f) c h w, one video
    seen = []
    handle = module.norm.register_forward_hook(lambda m, a, out: seen.append(out))
    with torch.no_grad():
        module(x, num_frames=frames)
    handle.remove()
    # written out: each frame, each group of channels, its own mean and (biased) variance, eps 1e-6
    g = x.view(frames, groups, -1)
    normed = ((g - g.mean(-1, keepdim=True)) / (g.var(-1, unbiased=False, keepdim=True) + 1e-6).sqrt()).view_as(x)
    expected = normed * module.norm.weight.view(1, c, 1, 1) + module.norm.bias.view(1, c, 1, 1)
    got = seen[0].permute(0, 2, 1, 3, 4).reshape(frames, c, 5, 6)  # the module's (b, c, f, h, w) layout
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


def test_motion_branch_ignores_per_frame_gain_and_offset():
    """Frames that differ only by a gain and offset normalise to the same thing frame by frame, so the
    motion branch (output minus input) is the one of the unscaled clip; with statistics over all frames
    (diffusers' default) it would differ by ~100%."""
    torch.manual_seed(0)
    models = DynaSceneModels.build("tiny").eval()
    randomize_adaptors(models.denoiser)
    module = _motion_module(models)
    base = torch.randn(1, module.in_channels, 5, 6).repeat(4, 1, 1, 1)
    scaled = base * torch.tensor([0.2, 1.0, 3.0, 7.0]).view(4, 1, 1, 1) + torch.tensor([-2.0, 0, 0.5, 4]).view(4, 1, 1, 1)
    with torch.no_grad():
        branch_base = module(base, num_frames=4) - base
        branch_scaled = module(scaled, num_frames=4) - scaled
    assert branch_base.abs().max() > 1e-2
    torch.testing.assert_close(branch_scaled, branch_base, rtol=1e-3, atol=1e-4)
