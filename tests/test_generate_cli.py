"""The headless command: built-in demo and a real-file run with a tiny DynaScene file."""

import json

import numpy as np
import pytest
import torch

from dynascene_core import generate as cli
from dynascene_core.camera import demo_clip
from dynascene_core.checkpoints import save_dynascene
from dynascene_core.models import DynaSceneModels
from dynascene_core.conditioning import resize_cover_crop
from dynascene_core.video import matte_from_frames, read_video, to_tensor, write_frame_folder, write_video


def test_demo_writes_every_output(tmp_path, monkeypatch, capsys):
    models = DynaSceneModels.build("tiny")
    save_dynascene(tmp_path / "demo.safetensors", models)  # stands in for the shipped trained small model
    monkeypatch.setattr(cli, "DEMO_MODEL", str(tmp_path / "demo.safetensors"))
    out = tmp_path / "demo"
    assert cli.main(["--demo", "--steps", "2", "--max-frames", "5", "--width", "64", "--height", "48",
                     "--shadow", "0.3", "--camera-guidance", "1.5", "--guidance-rescale", "0.7",
                     "--out", str(out)]) == 0
    bars = capsys.readouterr().err.replace("\r", "\n")
    assert "sampling: 100%" in bars and "2/2" in bars and "decoding: 100%" in bars and "5/5" in bars
    for name in ("background.mp4", "composite.mp4", "camera.png", "camera.txt", "run.json"):
        assert (out / name).stat().st_size > 0, name
    assert read_video(out / "composite.mp4").frames.shape == (5, 48, 64, 3)
    run = json.loads((out / "run.json").read_text())
    assert run["frames"] == 5 and run["settings"]["steps"] == 2
    # the demo's sampling (DPM-Solver++, camera guidance to t = 500) except what a flag sets
    assert run["settings"]["sampler"] == "dpmpp_2m" and run["settings"]["camera_guidance_end"] == 0.5
    assert run["settings"]["camera_guidance"] == 1.5 and run["settings"]["guidance_rescale"] == 0.7
    assert run["settings"]["compositing"]["shadow"] == 0.3 and run["settings"]["compositing"]["harmonize"] == 0.7


def test_decoding_reports_progress_per_chunk():
    from dynascene_core.conditioning import decode_latents

    class HalfCodec:  # pixels = latents' first 3 channels, so the result is checkable
        def decode(self, latents):
            return latents[:, :3] * 0.5

    calls = []
    latents = torch.rand(7, 4, 2, 2)
    decoded = decode_latents(HalfCodec(), latents, chunk=3, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(0, 7), (3, 7), (6, 7), (7, 7)]
    torch.testing.assert_close(decoded, latents[:, :3] * 0.5)
    assert torch.equal(decode_latents(HalfCodec(), latents, chunk=3), decoded)  # no callback: same result


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    clip = demo_clip(num_frames=6, height=40, width=60)  # not a multiple of 8: cropped to 56x40
    write_video(root / "person.mp4", clip.frames, fps=8)
    write_video(root / "mask.mp4", np.repeat((clip.masks[..., None] * 255).astype(np.uint8), 3, -1), fps=8)
    from PIL import Image
    Image.fromarray(clip.scene_image).save(root / "scene.png")
    torch.manual_seed(0)
    save_dynascene(root / "tiny.safetensors", DynaSceneModels.build("tiny"))
    return root


def test_real_files_with_mask_video_and_preset(files, tmp_path):
    out = tmp_path / "run"
    code = cli.main(["--video", str(files / "person.mp4"), "--mask", str(files / "mask.mp4"),
                     "--scene", str(files / "scene.png"), "--preset", "dolly_in+pan_right",
                     "--dynascene", str(files / "tiny.safetensors"), "--steps", "2", "--window", "4",
                     "--overlap", "1", "--out", str(out)])
    assert code == 0
    run = json.loads((out / "run.json").read_text())
    assert run["size"] == [56, 40] and run["windows"] == [[0, 4], [2, 6]]
    assert run["settings"]["sampler"] == "ddim" and run["settings"]["camera_guidance"] == 0  # the paper's sampler
    assert run["model_files"][0]["counts"]["loaded"] > 0
    assert read_video(out / "background.mp4").frames.shape == (6, 40, 56, 3)


def test_inputs_are_resized_chunk_by_chunk_as_they_are_read(files, tmp_path):
    """The video and the mask are read eight frames at a time, each chunk resized to the output size as it comes (a
    4K video is never held whole): the frames and matte of the whole video resized at once (each chunk here spans the
    video's value range, to which bicubic overshoot is clamped), and the video's frame rate; a frame folder the
    same."""
    clip = demo_clip(num_frames=20, height=80, width=120, preset="pan_left")  # three chunks
    video, mask = tmp_path / "v.mp4", tmp_path / "m.mp4"
    write_video(video, clip.frames, fps=12)
    write_video(mask, np.repeat((clip.masks[..., None] * 255).astype(np.uint8), 3, -1), fps=12)
    write_frame_folder(tmp_path / "folder", read_video(video).frames)
    whole = resize_cover_crop(to_tensor(read_video(video).frames), 40, 56).clamp(0, 1)
    matte = resize_cover_crop(torch.from_numpy(matte_from_frames(read_video(mask).frames))[:, None], 40, 56)
    for source, rate in ((video, 12.0), (tmp_path / "folder", 24.0)):
        args = cli.parse_args(["--video", str(source), "--mask", str(mask), "--scene", str(files / "scene.png"),
                               "--preset", "pan_left", "--width", "56", "--height", "40",
                               "--dynascene", str(files / "tiny.safetensors")])
        frames, alpha, foreground, _, trajectory, fps = cli.load_inputs(args, torch.device("cpu"), torch.float32)
        assert frames.shape == (20, 3, 40, 56) and alpha.shape == (20, 1, 40, 56) and foreground is None
        torch.testing.assert_close(frames, whole, atol=1e-6, rtol=0)
        torch.testing.assert_close(alpha, matte, atol=1e-6, rtol=0)
        assert fps == pytest.approx(rate) and len(trajectory) == 20


@pytest.mark.parametrize("argv,message", [
    (["--video", "v.mp4"], "--scene is required"),
    (["--video", "v.mp4", "--scene", "s.png"], "--mask, or matting weights with --rvm"),
    (["--video", "v.mp4", "--scene", "s.png", "--mask", "m.mp4", "--preset", "pan_left", "--estimate"],
     "exactly one of"),
    (["--video", "v.mp4", "--scene", "s.png", "--mask", "m.mp4", "--estimate", "--dynascene", "x"],
     "v.mp4 does not exist"),
    (["--demo", "--width", "60"], "multiple of 8"),
    (["--demo", "--harmonize", "1.5"], "harmonize must be in [0, 1], got 1.5"),
    (["--demo", "--shadow-angle", "90"], "shadow_angle must be within"),
    (["--demo", "--estimate"], "drop --estimate"),
])
def test_bad_command_lines_are_refused_before_any_work(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_mask_frame_count_mismatch_is_reported(files, tmp_path, capsys):
    short = tmp_path / "short_mask.mp4"
    write_video(short, read_video(files / "mask.mp4").frames[:4], fps=8)
    code = cli.main(["--video", str(files / "person.mp4"), "--mask", str(short), "--scene", str(files / "scene.png"),
                     "--preset", "pan_left", "--dynascene", str(files / "tiny.safetensors"), "--steps", "1",
                     "--out", str(tmp_path / "x")])
    assert code == 1 and "4 mask frames but the video has 6" in capsys.readouterr().err


def test_unreadable_scene_image_is_reported(files, tmp_path, capsys):
    bad = tmp_path / "scene.png"
    bad.write_bytes(b"not an image")
    code = cli.main(["--video", str(files / "person.mp4"), "--mask", str(files / "mask.mp4"), "--scene", str(bad),
                     "--preset", "pan_left", "--dynascene", str(files / "tiny.safetensors"), "--out", str(tmp_path)])
    assert code == 1 and "scene.png: not a readable image" in capsys.readouterr().err


def test_compile_flag_takes_an_optional_mode(tmp_path, monkeypatch):
    from dynascene_core.models import DynaSceneDenoiser

    assert cli.parse_args(["--demo"]).compile is None
    assert cli.parse_args(["--demo", "--compile"]).compile == "default"
    calls = []
    monkeypatch.setattr(DynaSceneDenoiser, "compile_unet", lambda self, **options: calls.append(options))
    save_dynascene(tmp_path / "demo.safetensors", DynaSceneModels.build("tiny"))
    monkeypatch.setattr(cli, "DEMO_MODEL", str(tmp_path / "demo.safetensors"))
    assert cli.main(["--demo", "--steps", "1", "--max-frames", "2", "--width", "32", "--height", "32",
                     "--compile", "reduce-overhead", "--out", str(tmp_path / "out")]) == 0
    assert calls == [{"mode": "reduce-overhead"}]
