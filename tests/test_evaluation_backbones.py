"""FID / FVD / LPIPS through the real loading code, on the real architectures with random weights.

Random weights are written to files with the documented names in a temporary weights folder and read
back by the evaluation's loaders. The FVD I3D file is TorchScript; no package ships the I3D architecture,
so the stand-in is torchvision's R3D-18 scripted behind the I3D file's calling convention
(``detector(x, rescale=..., resize=..., return_features=...)``).
"""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dynascene_core.evaluation import (WEIGHT_FILES, EvalClip, MissingWeightsError, evaluate_clips)
from dynascene_core.evaluation import backbones


class ScriptedVideoNet(nn.Module):
    """R3D-18 with the I3D TorchScript file's forward signature, 400 outputs."""

    def __init__(self):
        from torchvision.models.video import r3d_18

        super().__init__()
        self.net = r3d_18()

    def forward(self, x, rescale: bool = False, resize: bool = False, return_features: bool = False):
        if rescale:
            x = x / 127.5 - 1
        if resize:
            x = F.interpolate(x, size=(x.shape[2], 48, 48), mode="trilinear", align_corners=False)
        return self.net(x)


def _random_inception_state():
    import torch_fidelity.feature_extractor_inceptionv3 as fe

    with pytest.MonkeyPatch.context() as patch:  # build the architecture without reading any weights
        patch.setattr(fe, "load_state_dict_from_url", lambda *args, **kwargs: {})
        patch.setattr(fe.FeatureExtractorInceptionV3, "load_state_dict", lambda self, state, strict=True: None)
        net = fe.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    for module in net.modules():  # default init gives ~1e-8 features; He init keeps them informative
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    return net.state_dict()


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory):
    from torchvision.models import alexnet
    from torchvision.models.video import r3d_18

    folder = tmp_path_factory.mktemp("evaluation_weights")
    torch.manual_seed(0)
    torch.save(_random_inception_state(), folder / WEIGHT_FILES["inception"].filename)
    features = {f"features.{k}": v for k, v in alexnet().features.state_dict().items()}  # LPIPS reads only these
    torch.save(features, folder / WEIGHT_FILES["lpips_alex"].filename)
    torch.save(r3d_18().state_dict(), folder / WEIGHT_FILES["r3d"].filename)
    torch.jit.script(ScriptedVideoNet()).save(str(folder / WEIGHT_FILES["i3d"].filename))
    return folder


def _clips(count=2, frames=2, seed=0, height=40, width=56):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (count, 1, height, width, 3))
    videos = np.clip(base + rng.integers(-40, 40, (count, frames, height, width, 3)), 0, 255).astype(np.uint8)
    return list(videos)


def test_identical_sets_give_zero_and_set_level_ignores_pairing(weights_dir):
    videos = _clips()
    metrics = ["lpips", "fid", "fvd_i3d", "fvd_3dres"]
    same = evaluate_clips([EvalClip(f"c{i}", v, v) for i, v in enumerate(videos)], metrics,
                          weights_dir=weights_dir, fvd_frames=1)
    different = evaluate_clips([EvalClip(f"c{i}", v, v // 2) for i, v in enumerate(videos)], metrics,
                               weights_dir=weights_dir, fvd_frames=1)
    for metric in ("fid", "fvd_i3d", "fvd_3dres"):
        assert different.metrics[metric] > 0
        assert abs(same.metrics[metric]) <= 1e-4 * different.metrics[metric], metric
    assert same.metrics["lpips"] == pytest.approx(0.0, abs=1e-6) and different.metrics["lpips"] > 1e-3
    # set-level: the generated set is the ground-truth set in another order, so every clip is compared with
    # a different video (a per-clip distance would be large), yet the two sets are the same
    videos = _clips(count=3, frames=1, seed=1)
    rolled = evaluate_clips([EvalClip(f"c{i}", videos[(i + 1) % 3], v) for i, v in enumerate(videos)],
                            ["fvd_3dres"], weights_dir=weights_dir, fvd_frames=1)
    assert abs(rolled.metrics["fvd_3dres"]) <= 1e-4 * different.metrics["fvd_3dres"]


class _Identity(nn.Module):
    def __init__(self, dims):
        super().__init__()
        self.num_features = dims

    def forward(self, x):
        return x.double()


def _samples(mean, cov, count, seed):
    """Samples whose sample mean and (unbiased) sample covariance are exactly ``mean`` and ``cov``."""
    z = torch.randn(count, len(mean), generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    z = z - z.mean(0)
    z = z @ torch.linalg.inv(torch.linalg.cholesky(z.T @ z / (count - 1))).T
    return mean + z @ torch.linalg.cholesky(cov).T


def _frechet(samples_a, samples_b, dims):
    metric = backbones.video_fid_metric(_Identity(dims))
    metric.update(samples_a, real=False)
    metric.update(samples_b, real=True)
    return float(metric.compute())


def test_frechet_distance_of_known_gaussians():
    mu_a, mu_b = torch.tensor([0.0, 1.0, -2.0], dtype=torch.float64), torch.tensor([1.0, 1.0, 0.0], dtype=torch.float64)
    var_a, var_b = torch.tensor([1.0, 4.0, 0.25], dtype=torch.float64), torch.tensor([9.0, 1.0, 0.25], dtype=torch.float64)
    closed_form = float(((mu_a - mu_b) ** 2).sum() + ((var_a.sqrt() - var_b.sqrt()) ** 2).sum())  # 5 + 4 + 1
    got = _frechet(_samples(mu_a, torch.diag(var_a), 200, 1), _samples(mu_b, torch.diag(var_b), 300, 2), 3)
    assert got == pytest.approx(closed_form, rel=1e-6) and closed_form == pytest.approx(10.0)
    # non-commuting covariances: d² = |Δμ|² + tr(A + B − 2 (A^½ B A^½)^½), matrix square roots by eigh
    a = torch.tensor([[2.0, 0.6], [0.6, 1.0]], dtype=torch.float64)
    b = torch.tensor([[1.0, -0.4], [-0.4, 3.0]], dtype=torch.float64)

    def sqrtm(m):
        values, vectors = torch.linalg.eigh(m)
        return vectors @ torch.diag(values.sqrt()) @ vectors.T

    root_a = sqrtm(a)
    expected = float(1.0 + torch.trace(a + b - 2 * sqrtm(root_a @ b @ root_a)))
    got = _frechet(_samples(torch.zeros(2, dtype=torch.float64), a, 100, 3),
                   _samples(torch.tensor([1.0, 0.0], dtype=torch.float64), b, 100, 4), 2)
    assert got == pytest.approx(expected, rel=1e-6)


def test_loaders_read_the_files(weights_dir):
    state = torch.load(weights_dir / WEIGHT_FILES["lpips_alex"].filename, weights_only=True)
    model = backbones.load_lpips(weights_dir)
    assert torch.equal(model.net.slice1[0].weight, state["features.0.weight"])
    assert torch.equal(getattr(model.net.slice5, "10").bias, state["features.10.bias"])
    r3d_state = torch.load(weights_dir / WEIGHT_FILES["r3d"].filename, weights_only=True)
    r3d = backbones.load_r3d(weights_dir)
    assert torch.equal(r3d.model.layer4[1].conv2[0].weight, r3d_state["layer4.1.conv2.0.weight"])
    videos = torch.randint(0, 256, (2, 2, 3, 40, 56), dtype=torch.uint8)
    assert r3d(videos).shape == (2, 512)
    assert backbones.load_i3d(weights_dir)(videos).shape == (2, 400)


def test_wrong_or_unsafe_files_are_refused(tmp_path, weights_dir):
    from torchvision.models.video import r3d_18

    torch.save(r3d_18().state_dict(), tmp_path / WEIGHT_FILES["lpips_alex"].filename)
    with pytest.raises(backbones.BackboneError, match="alexnet-owt-7be5be79.pth is not a torchvision alex state dict"):
        backbones.load_lpips(tmp_path)
    torch.save({"net": nn.Linear(2, 2)}, tmp_path / WEIGHT_FILES["r3d"].filename)  # pickled module: refused
    with pytest.raises(backbones.BackboneError, match="FVD-3DRes: cannot read .*r3d_18-b3b3357e.pth"):
        backbones.load_r3d(tmp_path)
    (tmp_path / WEIGHT_FILES["i3d"].filename).write_bytes(b"not torchscript")
    with pytest.raises(backbones.BackboneError, match="FVD-I3D: cannot load .*i3d_torchscript.pt as TorchScript"):
        backbones.load_i3d(tmp_path)


def test_missing_weight_file_error_and_default_skip(tmp_path):
    videos = _clips(count=2, frames=2)
    clips = [EvalClip(f"c{i}", v, v) for i, v in enumerate(videos)]
    with pytest.raises(MissingWeightsError) as info:
        evaluate_clips(clips, ["psnr", "fid"], weights_dir=tmp_path)
    message = str(info.value)
    assert "\n" not in message
    assert f"weights-inception-2015-12-05-6726825d.pth not found in {tmp_path}/" in message
    assert "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/" in message
    report = evaluate_clips(clips, weights_dir=tmp_path)  # default: run what can run, say why the rest did not
    assert set(report.metrics) == {"l1", "psnr", "ssim"}
    assert set(report.skipped) == {"lpips", "fid", "fvd_i3d", "fvd_3dres", "camera"}
    assert "r3d_18-b3b3357e.pth not found" in report.skipped["fvd_3dres"]
    assert math.isclose(report.metrics["psnr"], 100.0)
