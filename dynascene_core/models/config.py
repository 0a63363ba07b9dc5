"""DynaScene model configuration: plain data that travels inside checkpoints.

A :class:`DynaSceneConfig` holds one JSON-serialisable dict per network, in the keyword names of
the library class that builds it, so configs can be read by people and shipped in safetensors
metadata:

- ``unet``: ``diffusers.UNet2DConditionModel`` kwargs (the SD1.5-inpainting U-Net; the ReferenceNet
  uses them as is, the denoiser maps them onto ``UNetMotionModel``),
- ``motion``: AnimateDiff motion-module settings in diffusers ``MotionAdapter`` names,
- ``camera``: :class:`~dynascene_core.models.camera_encoder.CameraEncoder` kwargs,
- ``clip_vision``: ``transformers.CLIPVisionConfig`` kwargs (ViT-L/14 with a 768-d projection),
- ``vae``: ``diffusers.AutoencoderKL`` kwargs (sd-vae-ft-mse),
- ``scaling_factor``: latent scale (0.18215 for SD1.5),
- ``codec``: ``None`` (latents from the ``vae``) or ``{"type": "patch", "patch_size": p}``: the fixed
  invertible :class:`~dynascene_core.models.codec.PatchCodec` (``3·p²`` latent channels at ``1/p``
  resolution) replaces the VAE; ``vae`` is then ``{}``,
- ``prediction_type``: what the denoiser predicts, in diffusers' scheduler names: ``"epsilon"`` (the noise:
  SD1.5 and the paper) or ``"v_prediction"`` (``v = √ᾱ·ε − √(1−ᾱ)·x₀``, the ``small`` model's). Training's
  loss target and every sampler follow it.
- ``spatial_position``: ``None`` (SD1.5 and the paper: the U-Nets know where a token lies only from what their
  convolutions see) or ``"sinusoidal"``: a fixed 2D sine-cosine code of each token's place in its level's grid is
  added to the query and key inputs of every spatial self-attention of both U-Nets, the reference bank's keys
  included (no weights; beyond the paper, for narrow models whose reference attention must find the scene
  image's token at the same place). Files without the key have ``None``.

Presets: ``sd15`` (full size, as the paper), ``tiny`` (same block structure with tiny widths, for
tests: a full forward at 64x64 px and 8 frames takes well under a second on a CPU) and ``tiny768``
(``tiny`` with the real 768-d CLIP embedding as cross-attention context, so a tiny model runs with
a full-size CLIP ViT-L/14 image encoder, e.g. the one a ComfyUI host loads) and ``small`` (the
proof-of-learning model trained from scratch in minutes on one GPU: three narrow U-Net levels with
attention, one layer per block, a 2×2 patch codec instead of a VAE, 12 latent channels at 1/2
resolution; about 6 MB of weights in all, so a training checkpoint with its Adam state stays under
16 MiB).
"""

from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass, fields

from ..conditioning import LATENT_SCALE

SD15_UNET = {
    "sample_size": 64,
    "in_channels": 9,
    "out_channels": 4,
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
    "block_out_channels": [320, 640, 1280, 1280],
    "layers_per_block": 2,
    "attention_head_dim": 8,  # diffusers' legacy name: SD1.5 has 8 heads per attention
    "cross_attention_dim": 768,
    "norm_num_groups": 32,
    "norm_eps": 1e-5,
    "act_fn": "silu",
    "downsample_padding": 1,
    "mid_block_scale_factor": 1,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "use_linear_projection": False,
}

SD15_MOTION = {  # AnimateDiff v2 (mm_sd_v15_v2)
    "motion_layers_per_block": 2,
    "motion_transformer_layers_per_block": 1,
    "motion_num_attention_heads": 8,
    "motion_norm_num_groups": 32,
    "motion_max_seq_length": 32,
    "use_motion_mid_block": True,
}

SD15_CAMERA = {
    "in_channels": 6,
    "downscale_factor": 8,
    "channels": [320, 640, 1280, 1280],
    "blocks_per_scale": 1,  # DynaScene; CameraCtrl uses 2
    "num_attention_heads": 8,
    "max_seq_length": 32,
}

SD15_CLIP_VISION = {  # openai/clip-vit-large-patch14 vision tower
    "hidden_size": 1024,
    "intermediate_size": 4096,
    "num_hidden_layers": 24,
    "num_attention_heads": 16,
    "num_channels": 3,
    "image_size": 224,
    "patch_size": 14,
    "hidden_act": "quick_gelu",
    "layer_norm_eps": 1e-5,
    "projection_dim": 768,
}

SD15_VAE = {  # stabilityai/sd-vae-ft-mse (same architecture as the SD1.5 VAE)
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
    "block_out_channels": [128, 256, 512, 512],
    "layers_per_block": 2,
    "act_fn": "silu",
    "latent_channels": 4,
    "norm_num_groups": 32,
    "sample_size": 256,
}

SCALING_FACTOR_SD15 = LATENT_SCALE

PREDICTION_TYPES = ("epsilon", "v_prediction")

SPATIAL_POSITIONS = (None, "sinusoidal")


def _tiny_presets() -> dict:
    unet = dict(SD15_UNET, block_out_channels=[32, 32, 64, 64], attention_head_dim=2,
                cross_attention_dim=32, norm_num_groups=8, sample_size=8)
    motion = dict(SD15_MOTION, motion_num_attention_heads=2, motion_norm_num_groups=8)
    camera = dict(SD15_CAMERA, channels=[32, 32, 64, 64], num_attention_heads=2)
    clip_vision = dict(SD15_CLIP_VISION, hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                       num_attention_heads=2, image_size=32, patch_size=8, projection_dim=32)
    vae = dict(SD15_VAE, block_out_channels=[16, 16, 16, 16], layers_per_block=1, norm_num_groups=8,
               sample_size=64)
    return {"unet": unet, "motion": motion, "camera": camera, "clip_vision": clip_vision, "vae": vae}


SMALL_PATCH_SIZE = 2
SMALL_SCALING_FACTOR = 2.0
"""Patch-codec latents are pixels in [-1, 1]; × 2 brings the synthetic scenes' latents to about unit
standard deviation, the scale the noise schedule assumes (SD1.5's 0.18215 does the same for its VAE)."""


def _small_presets() -> dict:
    """The proof-of-learning model: 2×2 pixel patches (12 latent channels) into a U-Net of width 32.

    The patch must leave the U-Net wider than a latent: with 4×4 patches (48 channels) a 32-wide network
    cannot even pass the noisy latent through, and after GPU training it still predicted the noise at
    t = 950 with MSE 0.47 (a network that can copy its input reaches ≈ 0.01; this one 0.04). Even 0.04 is
    too much for noise prediction: at t = 950 it becomes a clean-latent error 7× the latents' variance, and
    sampling from pure noise never recovered; so this model predicts ``v`` (its error maps about 1:1 onto
    the clean latent at high noise). Every level has attention, the full-resolution one (32×48 cells at
    64×96 px) too: the scene image reaches the denoiser only through reference attention."""
    latent_channels = 3 * SMALL_PATCH_SIZE ** 2
    widths = [32, 32, 32]
    unet = dict(SD15_UNET, in_channels=2 * latent_channels + 1, out_channels=latent_channels,
                down_block_types=["CrossAttnDownBlock2D"] * 3, up_block_types=["CrossAttnUpBlock2D"] * 3,
                block_out_channels=widths, layers_per_block=1, attention_head_dim=2, cross_attention_dim=32,
                norm_num_groups=8, sample_size=16)
    motion = dict(SD15_MOTION, motion_layers_per_block=1, motion_num_attention_heads=2, motion_norm_num_groups=8)
    camera = dict(SD15_CAMERA, downscale_factor=SMALL_PATCH_SIZE, channels=widths, num_attention_heads=2)
    tiny = _tiny_presets()
    return {"unet": unet, "motion": motion, "camera": camera, "clip_vision": tiny["clip_vision"], "vae": {},
            "scaling_factor": SMALL_SCALING_FACTOR, "codec": {"type": "patch", "patch_size": SMALL_PATCH_SIZE},
            "prediction_type": "v_prediction"}


@dataclass
class DynaSceneConfig:
    """All network configs of a DynaScene model (see module docstring for each dict's meaning)."""

    unet: dict
    motion: dict
    camera: dict
    clip_vision: dict
    vae: dict
    scaling_factor: float = SCALING_FACTOR_SD15
    codec: dict | None = None
    prediction_type: str = "epsilon"
    spatial_position: str | None = None

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` when the networks would not fit together."""
        unet, motion, camera = self.unet, self.motion, self.camera
        problems = []
        if self.spatial_position not in SPATIAL_POSITIONS:
            problems.append(f"spatial_position must be one of {SPATIAL_POSITIONS}, got {self.spatial_position!r}")
        elif self.spatial_position == "sinusoidal" and any(c % 4 for c in unet["block_out_channels"]):
            problems.append(f"spatial_position 'sinusoidal' needs U-Net widths divisible by 4, got "
                            f"{list(unet['block_out_channels'])}")
        if self.prediction_type not in PREDICTION_TYPES:
            problems.append(f"prediction_type must be one of {', '.join(PREDICTION_TYPES)}, "
                            f"got {self.prediction_type!r}")
        if self.codec is not None and (self.codec.get("type") not in ("patch",)
                                       or not isinstance(self.codec.get("patch_size"), int)):
            problems.append(f"codec must be null or {{'type': 'patch', 'patch_size': int}}, got {self.codec!r}")
        elif self.codec is None and not self.vae:
            problems.append("vae must hold AutoencoderKL settings when there is no codec")
        else:
            latent = self.latent_channels
            if unet["in_channels"] != 2 * latent + 1 or unet["out_channels"] != latent:
                problems.append(f"unet.in_channels/out_channels must be {2 * latent + 1}/{latent} "
                                f"([latent|mask|foreground] for {latent} latent channels), got "
                                f"{unet['in_channels']}/{unet['out_channels']}")
            if camera["downscale_factor"] != self.latent_downscale:
                problems.append(f"camera.downscale_factor {camera['downscale_factor']} must equal the latent "
                                f"downscale {self.latent_downscale} (camera features at latent resolution)")
        if list(camera["channels"]) != list(unet["block_out_channels"]):
            problems.append(f"camera.channels {list(camera['channels'])} must equal unet.block_out_channels "
                            f"{list(unet['block_out_channels'])} (one camera scale per U-Net level)")
        if self.clip_vision["projection_dim"] != unet["cross_attention_dim"]:
            problems.append(f"clip_vision.projection_dim {self.clip_vision['projection_dim']} must equal "
                            f"unet.cross_attention_dim {unet['cross_attention_dim']}")
        # diffusers' UNetMotionModel ties these motion settings to the U-Net's own.
        if motion["motion_layers_per_block"] != unet["layers_per_block"]:
            problems.append(f"motion.motion_layers_per_block {motion['motion_layers_per_block']} must equal "
                            f"unet.layers_per_block {unet['layers_per_block']}")
        if motion["motion_norm_num_groups"] != unet["norm_num_groups"]:
            problems.append(f"motion.motion_norm_num_groups {motion['motion_norm_num_groups']} must equal "
                            f"unet.norm_num_groups {unet['norm_num_groups']}")
        if problems:
            raise ValueError("invalid DynaSceneConfig: " + "; ".join(problems))

    @property
    def latent_channels(self) -> int:
        """Channels of a latent: ``3·p²`` for a patch codec, else the VAE's (4 for SD1.5)."""
        if self.codec is not None:
            return 3 * self.codec["patch_size"] ** 2
        return self.vae["latent_channels"]

    @property
    def latent_downscale(self) -> int:
        """Pixels per latent cell along each side: the patch size, else 8 for an SD VAE."""
        if self.codec is not None:
            return self.codec["patch_size"]
        return 2 ** (len(self.vae["block_out_channels"]) - 1)

    @classmethod
    def preset(cls, name: str) -> "DynaSceneConfig":
        """``"sd15"`` (full size, the paper's model), ``"tiny"`` (tests, CPU smoke runs), ``"tiny768"``
        (tiny with 768-d image embeddings, for tests with a full-size CLIP image encoder) or ``"small"``
        (trained from scratch with a patch codec, the proof-of-learning model)."""
        if name == "sd15":
            parts = {"unet": SD15_UNET, "motion": SD15_MOTION, "camera": SD15_CAMERA,
                     "clip_vision": SD15_CLIP_VISION, "vae": SD15_VAE}
        elif name == "tiny":
            parts = _tiny_presets()
        elif name == "tiny768":
            parts = _tiny_presets()
            parts["unet"]["cross_attention_dim"] = SD15_UNET["cross_attention_dim"]
            parts["clip_vision"]["projection_dim"] = SD15_CLIP_VISION["projection_dim"]
        elif name == "small":
            parts = _small_presets()
        else:
            raise ValueError(f"unknown DynaScene config preset {name!r}; expected one of {PRESETS}")
        return cls(**copy.deepcopy(parts))

    def to_dict(self) -> dict:
        return copy.deepcopy(asdict(self))

    def same_weights_as(self, other: "DynaSceneConfig") -> bool:
        """Whether both configs build networks with the same parameters (they may differ in weightless settings:
        ``spatial_position``), so one's weight file loads into the other's models."""
        def weighted(config):
            return {k: v for k, v in config.to_dict().items() if k != "spatial_position"}

        return weighted(self) == weighted(other)

    @classmethod
    def from_dict(cls, data: dict) -> "DynaSceneConfig":
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        missing = sorted(n for n in names - set(data) if n not in ("scaling_factor", "codec", "prediction_type",
                                                                        "spatial_position"))
        if unknown or missing:
            raise ValueError(f"DynaSceneConfig dict: unknown keys {unknown}, missing keys {missing}")
        return cls(**copy.deepcopy(data))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "DynaSceneConfig":
        return cls.from_dict(json.loads(text))


PRESETS = ("sd15", "tiny", "tiny768", "small")
