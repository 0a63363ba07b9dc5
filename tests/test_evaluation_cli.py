"""``python -m dynascene_core.evaluate`` end to end on tiny mp4 / frame folders, and its input errors."""

import json
import os

import numpy as np
import pytest
import torch

from dynascene_core.camera import make_preset, render_synthetic_clip
from dynascene_core.evaluate import main
from dynascene_core.evaluation import WEIGHT_FILES
from dynascene_core.video import write_frame_folder, write_video


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """generated/ (mp4 + a frame folder), ground_truth/, masks/, cameras/ for clips 'pan' and 'orbit'."""
    root = tmp_path_factory.mktemp("evaluate_cli")
    for name in ("generated", "ground_truth", "masks", "cameras"):
        (root / name).mkdir()
    for name, preset in (("pan", "pan_right"), ("orbit", "orbit_left")):
        trajectory = make_preset(preset, 8, speed=2.0)
        clip = render_synthetic_clip(trajectory, 96, 160, seed=1)
        generated = clip.frames.copy()
        generated[:, :, :40] = generated[:, :, :40] // 2  # darker left part: the metrics have something to see
        write_video(root / "ground_truth" / f"{name}.mp4", clip.frames, fps=8, quality=10)
        matte = np.repeat((clip.masks[..., None] * 255).astype(np.uint8), 3, axis=-1)
        write_video(root / "masks" / f"{name}.mp4", matte, fps=8, quality=10)
        trajectory.save(root / "cameras" / f"{name}.txt")
        if name == "pan":
            write_video(root / "generated" / f"{name}.mp4", generated, fps=8, quality=10)
        else:
            write_frame_folder(root / "generated" / name, generated)
    from torchvision.models import alexnet

    (root / "weights").mkdir()
    torch.manual_seed(0)
    features = {f"features.{k}": v for k, v in alexnet().features.state_dict().items()}
    torch.save(features, root / "weights" / WEIGHT_FILES["lpips_alex"].filename)
    return root


def _run(folders, *extra):
    return main([str(folders / "generated"), str(folders / "ground_truth"), "--weights-dir",
                 str(folders / "weights"), "--device", "cpu", *extra])


def test_cli_end_to_end(folders, tmp_path, capsys):
    out = tmp_path / "report" / "eval.json"
    assert _run(folders, "--masks", str(folders / "masks"), "--cameras", str(folders / "cameras"),
                "--json", str(out), "--label", "tiny") == 0
    printed = capsys.readouterr().out
    header, row = printed.splitlines()[:2]
    assert header.split() == ["Methods", "L1↓", "PSNR↑", "SSIM↑", "LPIPS↓", "FID↓", "FVD_I3D↓", "FVD_3DRes↓",
                              "RotErr↓", "TransErr↓"]
    assert row.split()[0] == "tiny" and row.split()[5:8] == ["—", "—", "—"]
    assert "skipped fid: FID (InceptionV3 pool features, 2048-d): weight file " \
           "weights-inception-2015-12-05-6726825d.pth not found" in printed
    report = json.loads(out.read_text())
    assert os.listdir(out.parent) == ["eval.json"]  # written through a temporary file, nothing left over
    assert set(report["metrics"]) == {"l1", "psnr", "ssim", "lpips", "rot_err", "trans_err"}
    assert set(report["skipped"]) == {"fid", "fvd_i3d", "fvd_3dres"}
    assert report["num_clips"] == 2 and report["num_frames"] == 16 and report["settings"]["background_only"]
    assert 0.01 < report["metrics"]["l1"] < 0.5 and report["metrics"]["lpips"] > 0
    pan = report["per_clip"]["pan"]["camera"]
    assert len(pan["per_frame"]["rotation_deg"]) == 8 and pan["rot_err_mean_deg"] < 1.0
    assert report["metrics"]["rot_err"] == pytest.approx(
        np.mean([report["per_clip"][n]["camera"]["rot_err"] for n in ("pan", "orbit")]))
    # without masks the darkened left part counts everywhere it is, person included: L1 changes
    assert _run(folders, "--json", str(out), "--metrics", "l1") == 0
    assert json.loads(out.read_text())["metrics"]["l1"] != pytest.approx(report["metrics"]["l1"], rel=1e-3)


def _error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    return err


def test_cli_input_errors(folders, tmp_path, capsys):
    assert _run(folders, "--metrics", "fid") == 2
    assert "weights-inception-2015-12-05-6726825d.pth not found in" in _error(capsys)
    frames = render_synthetic_clip(make_preset("pan_right", 6), 96, 160, seed=1).frames
    short = tmp_path / "short"
    short.mkdir()
    write_video(short / "pan.mp4", frames, fps=8)
    write_video(short / "extra.mp4", frames, fps=8)
    assert main([str(short), str(folders / "ground_truth")]) == 2
    err = _error(capsys)
    assert "do not match by name" in err and f"only in {short}: extra" in err
    assert f"only in {folders / 'ground_truth'}: orbit" in err
    os.remove(short / "extra.mp4")
    os.symlink(folders / "generated" / "orbit", short / "orbit")
    assert main([str(short), str(folders / "ground_truth")]) == 2
    assert "clip 'pan': generated has 6 frames" in _error(capsys)
    small = tmp_path / "small"
    small.mkdir()
    write_video(small / "pan.mp4", np.concatenate([frames, frames])[:8, :64, :96], fps=8)
    os.symlink(folders / "generated" / "orbit", small / "orbit")
    assert main([str(small), str(folders / "ground_truth")]) == 2
    assert "clip 'pan': generated frames are 96x64" in _error(capsys)
    cameras = tmp_path / "cameras"
    cameras.mkdir()
    make_preset("pan_right", 8).save(cameras / "pan.txt")
    assert _run(folders, "--cameras", str(cameras)) == 2
    assert f"clip 'orbit': no pose file {cameras / 'orbit.txt'}" in _error(capsys)
    make_preset("orbit_left", 7).save(cameras / "orbit.txt")
    assert _run(folders, "--cameras", str(cameras)) == 2
    assert "has 7 poses, the clip 8 frames" in _error(capsys)


def test_probe_video_matches_the_decoded_frames(folders):
    from dynascene_core.video import probe_video, read_video

    for path in (folders / "generated" / "pan.mp4", folders / "generated" / "orbit"):
        frames = read_video(path).frames
        assert probe_video(path) == frames.shape[:3]
