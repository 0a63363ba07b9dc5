"""Robust Video Matting (Lin et al., 2021) in plain PyTorch, without torchvision.

Module names are chosen so that the authors' ``rvm_mobilenetv3.pth`` / ``rvm_resnet50.pth`` state
dicts load key for key: the backbones follow torchvision's MobileNetV3-Large
(``backbone.features.{i}.block.{j}...``, squeeze-excitation ``fc1``/``fc2``) and ResNet-50
(``backbone.conv1``, ``backbone.layer{1-4}.{j}.{conv,bn}{1-3}``, ``downsample.{0,1}``) naming; the
rest (``aspp``, ``decoder``, ``project_mat``, ``project_seg``, ``refiner``) follows RVM's ``model/``.

Shapes: frames are ``(B, T, 3, H, W)`` in ``[0, 1]``; per-frame layers run on ``(B·T, C, h, w)``
and only the ConvGRUs walk along ``T``. The four recurrent states are ``(B, C_i, h_i, w_i)``.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

Variant = Literal["mobilenetv3", "resnet50"]
VARIANTS: tuple[str, ...] = ("mobilenetv3", "resnet50")

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _conv_norm_act(cin: int, cout: int, kernel: int, stride: int = 1, dilation: int = 1, groups: int = 1,
                   activation: type[nn.Module] | None = None, eps: float = 1e-5) -> nn.Sequential:
    """conv (no bias) → BatchNorm → activation, as ``{0: conv, 1: bn, 2: act}`` (torchvision's layout)."""
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2 * dilation, dilation=dilation, groups=groups,
                  bias=False),
        nn.BatchNorm2d(cout, eps=eps),
    ]
    if activation is not None:
        layers.append(activation())
    return nn.Sequential(*layers)


def _make_divisible(value: float, divisor: int = 8) -> int:
    """Round channels to a multiple of ``divisor`` without dropping more than 10% (MobileNet rule)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


# ---------------------------------------------------------------------------------------------
# MobileNetV3-Large backbone
# ---------------------------------------------------------------------------------------------

class SqueezeExcitation(nn.Module):
    """Channel attention: global average → fc1 → ReLU → fc2 → hardsigmoid → scale."""

    def __init__(self, channels: int):
        super().__init__()
        squeeze = _make_divisible(channels // 4)
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        scale = self.fc2(F.relu(self.fc1(F.adaptive_avg_pool2d(x, 1))))
        return x * F.hardsigmoid(scale)


class InvertedResidual(nn.Module):
    """MobileNetV3 bottleneck: [1×1 expand] → depthwise k×k → [SE] → 1×1 project (+ residual)."""

    _BN_EPS = 1e-3  # torchvision's MobileNetV3 BatchNorm eps

    def __init__(self, cin: int, kernel: int, expanded: int, cout: int, use_se: bool, hardswish: bool,
                 stride: int, dilation: int):
        super().__init__()
        act = nn.Hardswish if hardswish else nn.ReLU
        eps = self._BN_EPS
        layers: list[nn.Module] = []
        if expanded != cin:
            layers.append(_conv_norm_act(cin, expanded, 1, activation=act, eps=eps))
        # a dilated stage keeps its resolution: the stride is replaced by the dilation
        layers.append(_conv_norm_act(expanded, expanded, kernel, 1 if dilation > 1 else stride, dilation,
                                     groups=expanded, activation=act, eps=eps))
        if use_se:
            layers.append(SqueezeExcitation(expanded))
        layers.append(_conv_norm_act(expanded, cout, 1, eps=eps))
        self.block = nn.Sequential(*layers)
        self.use_residual = stride == 1 and cin == cout

    def forward(self, x: Tensor) -> Tensor:
        out = self.block(x)
        return out + x if self.use_residual else out


# (in, kernel, expanded, out, SE, hardswish, stride, dilation): torchvision's large config with
# RVM's change of dilation 2 in the last stage (output stride 16 instead of 32).
_MOBILENETV3_LARGE = (
    (16, 3, 16, 16, False, False, 1, 1),
    (16, 3, 64, 24, False, False, 2, 1),
    (24, 3, 72, 24, False, False, 1, 1),
    (24, 5, 72, 40, True, False, 2, 1),
    (40, 5, 120, 40, True, False, 1, 1),
    (40, 5, 120, 40, True, False, 1, 1),
    (40, 3, 240, 80, False, True, 2, 1),
    (80, 3, 200, 80, False, True, 1, 1),
    (80, 3, 184, 80, False, True, 1, 1),
    (80, 3, 184, 80, False, True, 1, 1),
    (80, 3, 480, 112, True, True, 1, 1),
    (112, 3, 672, 112, True, True, 1, 1),
    (112, 5, 672, 160, True, True, 2, 2),
    (160, 5, 960, 160, True, True, 1, 2),
    (160, 5, 960, 160, True, True, 1, 2),
)


class MobileNetV3LargeEncoder(nn.Module):
    """ImageNet-normalised MobileNetV3-Large; returns features at 1/2 (16), 1/4 (24), 1/8 (40), 1/16 (960)."""

    channels = (16, 24, 40, 960)
    _TAPS = (1, 3, 6, 16)  # indices of ``features`` whose outputs are f1..f4

    def __init__(self):
        super().__init__()
        eps = InvertedResidual._BN_EPS
        layers: list[nn.Module] = [_conv_norm_act(3, 16, 3, stride=2, activation=nn.Hardswish, eps=eps)]
        layers += [InvertedResidual(*cfg) for cfg in _MOBILENETV3_LARGE]
        layers.append(_conv_norm_act(160, 960, 1, activation=nn.Hardswish, eps=eps))
        self.features = nn.Sequential(*layers)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: Tensor) -> list[Tensor]:
        x = (x - self.mean) / self.std
        taps = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in self._TAPS:
                taps.append(x)
        return taps


# ---------------------------------------------------------------------------------------------
# ResNet-50 backbone
# ---------------------------------------------------------------------------------------------

class Bottleneck(nn.Module):
    """ResNet v1.5 bottleneck (stride on the 3×3 conv), torchvision names."""

    def __init__(self, cin: int, planes: int, stride: int = 1, dilation: int = 1, downsample: bool = False):
        super().__init__()
        cout = planes * 4
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.downsample = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                           if downsample else None)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + (self.downsample(x) if self.downsample is not None else x))


class ResNet50Encoder(nn.Module):
    """ResNet-50 with a dilated layer4; returns features at 1/2 (64), 1/4 (256), 1/8 (512), 1/16 (2048).

    RVM feeds this backbone the raw ``[0, 1]`` frames (no ImageNet normalisation), unlike MobileNetV3.
    """

    channels = (64, 256, 512, 2048)

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.layer1 = self._layer(64, 64, 3, stride=1, dilation=1)
        self.layer2 = self._layer(256, 128, 4, stride=2, dilation=1)
        self.layer3 = self._layer(512, 256, 6, stride=2, dilation=1)
        # torchvision's replace_stride_with_dilation=[False, False, True]: the first block keeps the
        # previous dilation, the others use 2, and no block strides.
        self.layer4 = self._layer(1024, 512, 3, stride=1, dilation=2)

    @staticmethod
    def _layer(cin: int, planes: int, blocks: int, stride: int, dilation: int) -> nn.Sequential:
        layers = [Bottleneck(cin, planes, stride, 1, downsample=True)]
        layers += [Bottleneck(planes * 4, planes, 1, dilation) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: Tensor) -> list[Tensor]:
        f1 = F.relu(self.bn1(self.conv1(x)))
        f2 = self.layer1(F.max_pool2d(f1, 3, 2, 1))
        f3 = self.layer2(f2)
        f4 = self.layer4(self.layer3(f3))
        return [f1, f2, f3, f4]


# ---------------------------------------------------------------------------------------------
# LR-ASPP, recurrent decoder, projections, deep guided filter
# ---------------------------------------------------------------------------------------------

class LRASPP(nn.Module):
    """Lite R-ASPP: ``relu(bn(conv(x))) * sigmoid(conv(avgpool(x)))``."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.aspp1 = _conv_norm_act(cin, cout, 1, activation=nn.ReLU)
        self.aspp2 = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(cin, cout, 1, bias=False), nn.Sigmoid())

    def forward(self, x: Tensor) -> Tensor:
        return self.aspp1(x) * self.aspp2(x)


class ConvGRU(nn.Module):
    """Convolutional GRU over ``(B, T, C, h, w)``; ``h`` is ``(B, C, h, w)`` (zeros when ``None``)."""

    def __init__(self, channels: int):
        super().__init__()
        self.channels = channels
        self.ih = nn.Sequential(nn.Conv2d(channels * 2, channels * 2, 3, padding=1), nn.Sigmoid())
        self.hh = nn.Sequential(nn.Conv2d(channels * 2, channels, 3, padding=1), nn.Tanh())

    def forward(self, x: Tensor, h: Tensor | None) -> tuple[Tensor, Tensor]:
        if h is None:
            h = x.new_zeros(x.shape[0], *x.shape[2:])
        outputs = []
        for xt in x.unbind(1):
            r, z = self.ih(torch.cat([xt, h], 1)).split(self.channels, 1)
            c = self.hh(torch.cat([xt, r * h], 1))
            h = (1 - z) * h + z * c
            outputs.append(h)
        return torch.stack(outputs, 1), h


def _split_gru(x: Tensor, gru: ConvGRU, r: Tensor | None, batch: int) -> tuple[Tensor, Tensor]:
    """Run the GRU on the second half of the channels of ``(B·T, C, h, w)`` features."""
    a, b = x.split(x.shape[1] // 2, 1)
    b, r = gru(b.unflatten(0, (batch, -1)), r)
    return torch.cat([a, b.flatten(0, 1)], 1), r


class BottleneckBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.gru = ConvGRU(channels // 2)

    def forward(self, x: Tensor, r: Tensor | None, batch: int) -> tuple[Tensor, Tensor]:
        return _split_gru(x, self.gru, r, batch)


def _upsample_to(x: Tensor, like: Tensor) -> Tensor:
    """2× bilinear upsampling cropped to ``like``'s size (odd sizes round up on the way down)."""
    x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
    return x[:, :, : like.shape[2], : like.shape[3]]


class UpsamplingBlock(nn.Module):
    def __init__(self, cin: int, skip: int, src: int, cout: int):
        super().__init__()
        self.conv = _conv_norm_act(cin + skip + src, cout, 3, activation=nn.ReLU)
        self.gru = ConvGRU(cout // 2)

    def forward(self, x: Tensor, f: Tensor, s: Tensor, r: Tensor | None, batch: int) -> tuple[Tensor, Tensor]:
        x = self.conv(torch.cat([_upsample_to(x, s), f, s], 1))
        return _split_gru(x, self.gru, r, batch)


class OutputBlock(nn.Module):
    def __init__(self, cin: int, src: int, cout: int):
        super().__init__()
        self.conv = nn.Sequential(
            *_conv_norm_act(cin + src, cout, 3, activation=nn.ReLU),
            *_conv_norm_act(cout, cout, 3, activation=nn.ReLU),
        )

    def forward(self, x: Tensor, s: Tensor) -> Tensor:
        return self.conv(torch.cat([_upsample_to(x, s), s], 1))


class RecurrentDecoder(nn.Module):
    """Decoder with ConvGRUs at 1/16, 1/8, 1/4 and 1/2; returns hidden features at full (input) size."""

    def __init__(self, feature_channels: tuple[int, ...], decoder_channels: tuple[int, ...]):
        super().__init__()
        f, d = feature_channels, decoder_channels
        self.decode4 = BottleneckBlock(f[3])
        self.decode3 = UpsamplingBlock(f[3], f[2], 3, d[0])
        self.decode2 = UpsamplingBlock(d[0], f[1], 3, d[1])
        self.decode1 = UpsamplingBlock(d[1], f[0], 3, d[2])
        self.decode0 = OutputBlock(d[2], 3, d[3])

    def forward(self, s0: Tensor, f1: Tensor, f2: Tensor, f3: Tensor, f4: Tensor, rec: list[Tensor | None],
                batch: int) -> tuple[Tensor, list[Tensor]]:
        pool = lambda t: F.avg_pool2d(t, 2, 2, ceil_mode=True, count_include_pad=False)  # noqa: E731
        s1 = pool(s0)
        s2 = pool(s1)
        s3 = pool(s2)
        x4, r4 = self.decode4(f4, rec[3], batch)
        x3, r3 = self.decode3(x4, f3, s3, rec[2], batch)
        x2, r2 = self.decode2(x3, f2, s2, rec[1], batch)
        x1, r1 = self.decode1(x2, f1, s1, rec[0], batch)
        return self.decode0(x1, s0), [r1, r2, r3, r4]


class Projection(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


class DeepGuidedFilterRefiner(nn.Module):
    """Upsamples the low-resolution foreground/alpha to full size with a learned guided filter."""

    def __init__(self, hidden: int = 16):
        super().__init__()
        self.box_filter = nn.Conv2d(4, 4, 3, padding=1, bias=False, groups=4)
        nn.init.constant_(self.box_filter.weight, 1 / 9)
        self.conv = nn.Sequential(
            *_conv_norm_act(4 * 2 + hidden, hidden, 1, activation=nn.ReLU),
            *_conv_norm_act(hidden, hidden, 1, activation=nn.ReLU),
            nn.Conv2d(hidden, 4, 1),
        )

    def forward(self, fine_src: Tensor, base_src: Tensor, base_fgr: Tensor, base_pha: Tensor,
                base_hid: Tensor) -> tuple[Tensor, Tensor]:
        fine_x = torch.cat([fine_src, fine_src.mean(1, keepdim=True)], 1)
        base_x = torch.cat([base_src, base_src.mean(1, keepdim=True)], 1)
        base_y = torch.cat([base_fgr, base_pha], 1)
        mean_x, mean_y = self.box_filter(base_x), self.box_filter(base_y)
        cov_xy = self.box_filter(base_x * base_y) - mean_x * mean_y
        var_x = self.box_filter(base_x * base_x) - mean_x * mean_x
        a = self.conv(torch.cat([cov_xy, var_x, base_hid], 1))
        b = mean_y - a * mean_x
        size = fine_src.shape[2:]
        a = F.interpolate(a, size, mode="bilinear", align_corners=False)
        b = F.interpolate(b, size, mode="bilinear", align_corners=False)
        return (a * fine_x + b).split([3, 1], 1)


# ---------------------------------------------------------------------------------------------
# The network
# ---------------------------------------------------------------------------------------------

_HEADS = {  # variant -> (backbone, ASPP out channels, decoder channels)
    "mobilenetv3": (MobileNetV3LargeEncoder, 128, (80, 40, 32, 16)),
    "resnet50": (ResNet50Encoder, 256, (128, 64, 32, 16)),
}


class RobustVideoMatting(nn.Module):
    """RVM ``MattingNetwork`` with the deep-guided-filter refiner (the one the official weights use)."""

    def __init__(self, variant: Variant = "mobilenetv3"):
        super().__init__()
        if variant not in _HEADS:
            raise ValueError(f"unknown RVM variant {variant!r}; expected one of {', '.join(VARIANTS)}")
        backbone_cls, aspp_channels, decoder_channels = _HEADS[variant]
        self.variant = variant
        self.backbone = backbone_cls()
        c = backbone_cls.channels
        self.aspp = LRASPP(c[3], aspp_channels)
        self.decoder = RecurrentDecoder((c[0], c[1], c[2], aspp_channels), decoder_channels)
        self.project_mat = Projection(16, 4)
        self.project_seg = Projection(16, 1)
        self.refiner = DeepGuidedFilterRefiner()

    def forward(self, src: Tensor, r1: Tensor | None = None, r2: Tensor | None = None, r3: Tensor | None = None,
                r4: Tensor | None = None, downsample_ratio: float = 1.0, segmentation_pass: bool = False
                ) -> list[Tensor]:
        """``src`` ``(B, T, 3, H, W)`` (or ``(B, 3, H, W)``) in [0, 1] → ``[fgr, pha, r1, r2, r3, r4]``.

        ``fgr`` ``(B, T, 3, H, W)`` and ``pha`` ``(B, T, 1, H, W)`` are clamped to [0, 1]; the returned
        states are those after the last frame, to be passed back with the next chunk. The network
        runs at ``downsample_ratio`` × the input size and the guided filter brings the result back
        to full size. With ``segmentation_pass`` it returns ``[seg logits (B, T, 1, h, w), *rec]``.
        """
        single_frame = src.ndim == 4
        if single_frame:
            src = src.unsqueeze(1)
        batch = src.shape[0]
        fine = src.flatten(0, 1)
        small = fine
        if downsample_ratio != 1:
            small = F.interpolate(fine, scale_factor=downsample_ratio, mode="bilinear", align_corners=False,
                                  recompute_scale_factor=False)
        f1, f2, f3, f4 = self.backbone(small)
        hid, rec = self.decoder(small, f1, f2, f3, self.aspp(f4), [r1, r2, r3, r4], batch)
        unflat = (lambda t: t.unflatten(0, (batch, -1))[:, 0]) if single_frame else (
            lambda t: t.unflatten(0, (batch, -1)))
        if segmentation_pass:
            return [unflat(self.project_seg(hid)), *rec]
        fgr_residual, pha = self.project_mat(hid).split([3, 1], 1)
        if downsample_ratio != 1:
            fgr_residual, pha = self.refiner(fine, small, fgr_residual, pha, hid)
        fgr = (fgr_residual + fine).clamp(0.0, 1.0)
        return [unflat(fgr), unflat(pha.clamp(0.0, 1.0)), *rec]
