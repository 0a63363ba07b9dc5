"""Data preparation end to end on synthetic videos with one case per drop reason, resume after a
kill, the written data set read by training, and the report/contact sheet.

The person detector and RVM are replaced by a chroma key (``prepare_fakes``): the synthetic people
are painted pure green, so what must be detected and matted is known independently of the pipeline.
"""

import csv
import json
import os
import re
import shutil
import sys

import numpy as np
import pytest
import torch

sys.path.insert(0, os.path.dirname(__file__))
import prepare_fakes as fakes  # noqa: E402

from dynascene_core.data import read_manifest, validate_clip  # noqa: E402
from dynascene_core.data.clips import clip_files, load_trajectory, read_clip_frames  # noqa: E402
from dynascene_core.data.prepare_config import load_prepare_config  # noqa: E402

SEGMENT = 24  # frames per synthetic shot (2 s at 12 fps)


def settings(rvm: str, **sections) -> dict:
    base = {"resolution": {"min_short_side": 100}, "matting": {"rvm": rvm}, "shots": {"min_shot_seconds": 1.5},
            "write": {"short_side": None}, "motion": {"short_side": 120},
            "person": {"detector": "hog"}, "run": {"workers": 1, "contact_sheet_clips": 3}}
    for section, values in sections.items():
        base.setdefault(section, {}).update(values)
    return load_prepare_config(None, base)


def make_sources(folder) -> dict:
    """One video per outcome; returns {name: path}."""
    os.makedirs(folder, exist_ok=True)
    videos = {
        "good": fakes.render(36, "orbit_left", seed=1),
        "cut": np.concatenate([fakes.render(SEGMENT, "truck_left", seed=2),
                               fakes.render(SEGMENT, "dolly_in+pan_right", seed=3)]),
        "nobody": fakes.render(SEGMENT, "orbit_left", seed=4, people=0),
        "two": fakes.render(SEGMENT, "orbit_left", seed=5, people=2),
        "still": fakes.render(SEGMENT, None, seed=6),
        "noise": fakes.render(SEGMENT, "orbit_left", seed=7, noise_background=True),
        "small": fakes.render(SEGMENT, "orbit_left", seed=8)[:, :80, :96],
    }
    paths = {name: fakes.write(os.path.join(folder, f"{name}.mp4"), frames) for name, frames in videos.items()}
    broken = os.path.join(folder, "broken.mp4")
    with open(paths["good"], "rb") as handle:
        data = handle.read()
    with open(broken, "wb") as handle:  # a download cut short: the header only
        handle.write(data[: len(data) // 20])
    paths["broken"] = broken
    return paths


@pytest.fixture(scope="module")
def rvm_file(tmp_path_factory):
    from test_matting_rvm import random_state_dict

    path = tmp_path_factory.mktemp("rvm") / "rvm_mobilenetv3.pth"
    torch.save(random_state_dict("mobilenetv3"), path)
    return str(path)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, rvm_file):
    from dynascene_core.data.prepare import run_prepare

    root = tmp_path_factory.mktemp("prepare")
    paths = make_sources(root / "src")
    with pytest.MonkeyPatch.context() as mp:
        fakes.install(mp)
        mp.setattr("dynascene_core.data.prepare.check_inputs", lambda config: None)
        report = run_prepare(str(root / "src"), str(root / "out"), settings(rvm_file), progress=False)
    return {"root": root, "src": str(root / "src"), "out": str(root / "out"), "paths": paths, "report": report}


def _drops_by_video(out: str) -> dict:
    """{video file name: sorted [(stage, reason), ...]} from the scan and clip state files."""
    found: dict = {}
    state = os.path.join(out, "state")
    for name in os.listdir(state):
        if name.endswith(".scan.json"):
            with open(os.path.join(state, name)) as handle:
                scan = json.load(handle)
            for drop in scan["drops"]:
                found.setdefault(os.path.basename(drop["video"]), []).append((drop["stage"], drop["reason"]))
    for name in os.listdir(os.path.join(state, "clips")):
        with open(os.path.join(state, "clips", name)) as handle:
            outcome = json.load(handle)
        if outcome["drop"]:
            found.setdefault(os.path.basename(outcome["video"]), []).append(
                (outcome["drop"]["stage"], outcome["drop"]["reason"]))
    return {k: sorted(v) for k, v in found.items()}


def test_every_drop_reason_is_recorded(prepared):
    assert _drops_by_video(prepared["out"]) == {
        "broken.mp4": [("probe", "unreadable")],
        "small.mp4": [("resolution", "low_resolution")],
        "nobody.mp4": [("person", "no_person")],
        "two.mp4": [("person", "several_people")],
        "still.mp4": [("motion", "low_motion")],
        "noise.mp4": [("camera", "camera_unreliable")],
    }
    report = prepared["report"]
    assert report["videos_in"] == 8 and report["videos_readable"] == 7
    assert report["drops"]["camera"] == {"camera_unreliable": 1}
    assert report["clips_out"] == 3  # good + the two shots of cut


def test_cut_splits_the_video_where_the_shots_were_joined(prepared):
    records = {r.clip_id: r for r in read_manifest(prepared["out"])}
    cut = sorted(c for c in records if c.startswith("cut-"))
    assert len(cut) == 2 and [records[c].num_frames for c in cut] == [SEGMENT, SEGMENT]
    with open(os.path.join(prepared["out"], "state", "clips", cut[1] + ".json")) as handle:
        assert json.load(handle)["frames"] == [SEGMENT, 2 * SEGMENT]


def test_clips_are_valid_training_clips_with_masks_poses_and_scene(prepared):
    from dynascene_core.video import read_video

    out = prepared["out"]
    for record in read_manifest(out):
        files = validate_clip(out, record)
        assert record.has_person and record.motion_score < 0.8
        assert len(load_trajectory(record, files)) == record.num_frames
        (scene_frame, scene_path), = files.scene_images.items()
        clip = read_clip_frames(record, files, list(range(record.num_frames)))
        truth = fakes.green_mask(clip.frames)  # the stored video's green people
        assert np.mean((clip.masks > 0.5) == truth) > 0.98
        from PIL import Image

        scene = np.asarray(Image.open(scene_path).convert("RGB"))
        person = clip.masks[scene_frame] > 0.5
        assert person.any() and (scene[person] == 0).all()  # the person is blacked out
        assert np.abs(scene[~person].astype(int) - clip.frames[scene_frame][~person]).mean() < 40
    good = next(r for r in read_manifest(out) if r.clip_id.startswith("good-"))
    source = read_video(prepared["paths"]["good"])
    assert good.num_frames == len(source) and good.fps == pytest.approx(fakes.FPS)


def test_review_sheet_lists_the_camera_drop_with_reasons(prepared):
    with open(os.path.join(prepared["out"], "review.csv")) as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 1 and rows[0]["clip_id"].startswith("noise-") and rows[0]["verdict"] == "unreliable"
    # noise keeps no pose chain: no feature is found again (the accurate method's SIFT matches), most frames are
    # unsolved, or most track observations disagree with the motion
    reasons, ratio = rows[0]["reasons"], float(rows[0]["inlier_ratio"])
    assert ("background features in frame" in reasons or "no trustworthy pose for frames" in reasons
            or ("observations agree" in reasons and ratio < 0.3)), reasons


def test_report_and_contact_sheet(prepared):
    out, report = prepared["out"], prepared["report"]
    with open(os.path.join(out, "report.json")) as handle:
        assert json.load(handle) == json.loads(json.dumps(report))
    scores = [r.motion_score for r in read_manifest(out)]
    assert report["motion"]["mean_clips_out"] == pytest.approx(np.mean(scores), abs=1e-4)
    assert sum(report["motion"]["histogram_all_scored"]) == 5  # good, cut x2, still, noise reached eq. 3
    frames = 36 + 2 * SEGMENT
    assert report["hours_out"] == pytest.approx(frames / fakes.FPS / 3600, abs=1e-4)
    from PIL import Image

    sheet = np.asarray(Image.open(os.path.join(out, "contact_sheet.png")))
    assert sheet.shape[0] >= 3 * 100 and sheet.std() > 10  # three rows of pictures


def test_rerun_does_nothing_and_keeps_the_data_set(prepared, monkeypatch):
    from dynascene_core.data import prepare

    before = open(os.path.join(prepared["out"], "manifest.jsonl")).read()

    def forbidden(*args, **kwargs):
        raise AssertionError("a finished video was processed again")

    monkeypatch.setattr(prepare, "check_inputs", lambda config: None)
    monkeypatch.setattr("dynascene_core.data.runner.scan_video", forbidden)
    monkeypatch.setattr("dynascene_core.data.runner.build_video_clips", forbidden)
    report = prepare.run_prepare(prepared["src"], prepared["out"], settings(_rvm(prepared)), progress=False)
    assert open(os.path.join(prepared["out"], "manifest.jsonl")).read() == before
    assert report["clips_out"] == 3


def _rvm(prepared) -> str:
    with open(os.path.join(prepared["out"], "state", "prepare_config.json")) as handle:
        return json.load(handle)["matting"]["rvm"]


def test_other_settings_on_the_same_folder_are_refused(prepared):
    from dynascene_core.data.prepare import run_prepare

    with pytest.raises(ValueError, match=r"motion\.max_score differ"):
        run_prepare(prepared["src"], prepared["out"], settings(_rvm(prepared), motion={"max_score": 0.7}),
                    progress=False)


def test_interrupted_run_keeps_finished_clips_and_resumes(prepared, tmp_path, monkeypatch):
    from dynascene_core.data import build, prepare

    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(prepared["paths"]["cut"], src / "cut.mp4")
    out = str(tmp_path / "out")
    fakes.install(monkeypatch)
    monkeypatch.setattr(prepare, "check_inputs", lambda config: None)
    real_write = build.write_clip
    calls = []

    def write_then_interrupt(root, clip_id, *args, **kwargs):
        calls.append(clip_id)
        if len(calls) == 2:  # Ctrl-C while the second clip is being written
            os.makedirs(os.path.join(root, "clips", f"{clip_id}.tmp-99999"))
            raise KeyboardInterrupt
        return real_write(root, clip_id, *args, **kwargs)

    monkeypatch.setattr(build, "write_clip", write_then_interrupt)
    config = settings(_rvm(prepared))
    with pytest.raises(KeyboardInterrupt):
        prepare.run_prepare(str(src), out, config, progress=False)
    first = read_manifest(out)
    assert [r.clip_id for r in first] == calls[:1]  # the finished clip is in the manifest, the half one is not
    monkeypatch.setattr(build, "write_clip", real_write)
    report = prepare.run_prepare(str(src), out, config, progress=False)
    assert report["clips_out"] == 2
    assert not [n for n in os.listdir(os.path.join(out, "clips")) if ".tmp-" in n]
    expected = {r.clip_id: r for r in read_manifest(prepared["out"]) if r.clip_id.startswith("cut-")}
    assert {r.clip_id: r for r in read_manifest(out)} == expected


def test_training_runs_a_step_on_the_prepared_folder(prepared, tmp_path):
    from training.train import run

    checkpoint = run([f"data.root={prepared['out']}", f"output_dir={tmp_path / 'run'}", "data.resolution=[32, 48]",
                       "data.num_frames=4", "data.num_workers=0", "data.generate_if_missing=false",
                       "train.max_steps=1", "checkpoint.every=1", "validation.every=0", "log.progress_bar=false",
                       "log.tensorboard=false", "tasks.removal_dilation=1"])
    assert checkpoint.endswith("step-00000001")


def test_missing_rvm_is_named_before_any_video_is_read(tmp_path, capsys):
    from dynascene_core.data.prepare import main

    src = tmp_path / "src"
    src.mkdir()
    fakes.write(src / "a.mp4", fakes.render(8, "orbit_left"))
    config = tmp_path / "c.yaml"
    config.write_text("person:\n  detector: hog\n")
    code = main([str(src), str(tmp_path / "out"), "--config", str(config), "--rvm", str(tmp_path / "none.pth"),
                 "--no-progress"])
    assert code == 2
    assert f"--rvm / matting.rvm: {tmp_path / 'none.pth'}: no such file" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "out")  # a refused run leaves nothing behind


def test_unknown_setting_names_the_key(tmp_path):
    from dynascene_core.settings import ConfigError

    path = tmp_path / "c.yaml"
    path.write_text("motion:\n  max_scor: 0.7\n")
    with pytest.raises(ConfigError, match=r"unknown setting 'motion\.max_scor'; did you mean motion\.max_score"):
        load_prepare_config(str(path))
    path.write_text("camera:\n  short_side: 360\n")  # the camera's size before it was the estimator's longer side
    with pytest.raises(ConfigError, match=r"unknown setting 'camera\.short_side'; did you mean camera\.longer_side"):
        load_prepare_config(str(path))
    with pytest.raises(ConfigError, match=r"person\.area_range must be"):
        load_prepare_config(None, {"person": {"area_range": [0.5, 0.1]}})


@pytest.mark.parametrize("text,key", [
    ("camera:\n  method: quick\n", "camera.method"),
    ("camera:\n  fov_deg: 200\n", "camera.fov_deg"),
    ("camera:\n  keep_uncertain: maybe\n", "camera.keep_uncertain"),
    ("camera:\n  readout: 3\n", "camera.readout"),
    ("camera:\n  readout_direction: sideways\n", "camera.readout_direction"),
    ("camera:\n  longer_side: 64\n", "camera.longer_side"),
    ("matting:\n  device: gpu\n", "matting.device"),
    ("scene:\n  seed: -1\n", "scene.seed"),
    ("person:\n  area_range: [low, high]\n", "person.area_range"),
    ("shots:\n  threshold: [27]\n", "shots.threshold"),
    ("write:\n  short_side: 0\n", "write.short_side"),
])
def test_bad_value_names_the_file_and_the_key(tmp_path, text, key):
    from dynascene_core.settings import ConfigError

    path = tmp_path / "mine.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}: {re.escape(key)} must be"):
        load_prepare_config(str(path))


def test_good_values_and_flags_are_applied(tmp_path):
    from dynascene_core.data.prepare_config import override_settings

    path = tmp_path / "mine.yaml"
    path.write_text("camera:\n  method: accurate\n  fov_deg: 60\nmatting:\n  device: cuda:1\nscene:\n  seed: 7\n")
    config = override_settings(load_prepare_config(str(path)), {"run": {"workers": 3}}, "--workers")
    assert (config["camera"]["method"], config["camera"]["fov_deg"], config["matting"]["device"]) == ("accurate", 60,
                                                                                                        "cuda:1")
    assert (config["scene"]["seed"], config["run"]["workers"]) == (7, 3)


def test_missing_packages_are_named_before_any_work(monkeypatch):
    import importlib.util

    from dynascene_core.data import prepare

    prepare.check_packages("auto")  # installed here (requirements-dev.txt)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a))
    prepare.check_packages(None)  # local workers need no Ray
    with pytest.raises(RuntimeError, match="needs ray: pip install -r requirements-data.txt"):
        prepare.check_packages("auto")


def test_an_imageio_ffmpeg_without_ffmpeg_is_named_before_any_work(monkeypatch):
    """A source build of imageio-ffmpeg (no bundled binary) on a machine without ffmpeg: one clear error."""
    import imageio_ffmpeg

    from dynascene_core.data import prepare

    def no_binary():
        raise RuntimeError("No ffmpeg exe could be found. Install ffmpeg on your system, or set the "
                           "IMAGEIO_FFMPEG_EXE environment variable.")

    monkeypatch.setattr(imageio_ffmpeg, "get_ffmpeg_exe", no_binary)
    with pytest.raises(RuntimeError, match="imageio-ffmpeg finds none .*No ffmpeg exe.*put ffmpeg on the PATH"):
        prepare.check_packages(None)


def test_the_camera_is_estimated_at_camera_longer_side():
    """The clip's frames and matte reach the estimator reduced to ``camera.longer_side`` (the report says the size)."""
    from dynascene_core.camera import demo_clip
    from dynascene_core.data.build import estimate_camera

    clip = demo_clip(num_frames=8, height=144, width=256, preset="pan_right")
    config = load_prepare_config(None, {"camera": {"longer_side": 128, "method": "fast", "fov_deg": 60}})
    trajectory, quality = estimate_camera(clip.frames, clip.masks, config)
    assert (quality.width, quality.height) == (128, 72) and len(trajectory) == 8 and quality.motion == "rotation"
