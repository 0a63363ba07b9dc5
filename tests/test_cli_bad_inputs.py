"""Every command line, fed the bad inputs a newcomer really produces, exits non-zero with one clear line
naming the file, no traceback, and writes nothing.

To add a command, add its lines to ``BAD_INPUTS``: the command as typed (``python -m MODULE`` or
``python SCRIPT.py``) and its arguments. Placeholders: ``{bad.EXT}`` is replaced by each kind of bad file in
turn (empty, text renamed, random bytes, an HTML page, a truncated good file — all named ``*.EXT``);
``{out}`` is an output path that must not appear; ``{video}``, ``{mask}``, ``{scene}``, ``{poses}``,
``{weights}`` (a tiny full DynaScene file) are good inputs. Lines without ``{bad...}`` run once and give the
text the error line must contain (a tuple: every text in it). ``{rvm}`` is a matting weight file,
``{config_...}`` a data-preparation config file with one bad setting (``CONFIGS``).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import runpy
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

BAD_INPUTS = [
    # command as typed                        arguments                                                       error must name
    ("python -m dynascene_core.generate", "--video {bad.mp4} --mask {mask} --scene {scene} --preset pan_left --dynascene {weights} --out {out}", None),
    ("python -m dynascene_core.generate", "--video {video} --mask {bad.mp4} --scene {scene} --preset pan_left --dynascene {weights} --out {out}", None),
    ("python -m dynascene_core.generate", "--video {video} --mask {mask} --scene {bad.png} --preset pan_left --dynascene {weights} --out {out}", None),
    ("python -m dynascene_core.generate", "--video {video} --mask {mask} --scene {scene} --camera {bad.txt} --dynascene {weights} --out {out}", None),
    ("python -m dynascene_core.generate", "--video {video} --mask {mask} --scene {scene} --preset pan_left --dynascene {bad.safetensors} --out {out}", None),
    ("python -m dynascene_core.generate", "--video {video} --mask {mask} --scene {scene} --preset pan_left --sd15 {bad.ckpt} --clip-vision {weights} --out {out}", None),
    ("python -m dynascene_core.generate", "--video {video} --rvm {bad.pth} --scene {scene} --preset pan_left --dynascene {weights} --out {out}", None),
    ("python -m dynascene_core.generate", "--video {video} --mask {mask} --scene {scene} --preset no_such_move --dynascene {weights} --out {out}", "no_such_move"),
    ("python -m dynascene_core.generate", "--video {video} --mask {mask} --scene {scene} --preset pan_left --easing wobbly --dynascene {weights} --out {out}", "wobbly"),
    ("python -m dynascene_core.camera", "estimate {bad.mp4} --out {out}", None),
    ("python -m dynascene_core.camera", "estimate {video} --mask {bad.mp4} --out {out}", None),
    ("python -m dynascene_core.camera", "estimate {video} --readout 3 --out {out}", "--readout"),
    ("python -m dynascene_core.camera", "estimate {video} --readout-direction sideways --out {out}", "sideways"),
    ("python -m dynascene_core.camera", "plot {bad.txt} --out {out}", None),
    ("python -m dynascene_core.camera", "preset no_such_move --out {out}", "no_such_move"),
    ("python -m dynascene_core.checkpoints", "inspect {bad.safetensors}", None),
    ("python -m dynascene_core.checkpoints", "inspect {bad.ckpt}", None),
    ("python -m dynascene_core.checkpoints", "merge {bad.pth} --out {out}", None),
    ("python training/train.py", "model.init_from=[{bad.ckpt}] output_dir={out}", None),
    ("python training/train.py", "model.clip_vision={bad.safetensors} output_dir={out}", None),
    ("python training/train.py", "train.batch_sise=2 output_dir={out}", "train.batch_sise"),
    ("python training/train.py", "data.root={out}/no_data data.generate_if_missing=false output_dir={out}", "no_data"),
    ("python training/train.py", "model.motion_module=missing_mm_sd_v15_v2.ckpt output_dir={out}", "missing_mm_sd_v15_v2.ckpt"),
    ("python -m dynascene_core.evaluate", "{out}/missing_generated {out}/missing_truth --json {out}/report.json", "missing_generated"),
    # data preparation: the config file and the sources are checked before any weight file is asked for
    ("python -m dynascene_core.data.prepare", "{video} {out} --config {bad.yaml}", None),
    ("python -m dynascene_core.data.prepare", "{video} {out} --config {out}/missing.yaml", "missing.yaml"),
    ("python -m dynascene_core.data.prepare", "{video} {out} --config {config_unknown_key}", ("unknown_key.yaml", "motion.max_scor")),
    ("python -m dynascene_core.data.prepare", "{video} {out} --config {config_wrong_type}", ("wrong_type.yaml", "person.sample_fps")),
    ("python -m dynascene_core.data.prepare", "{video} {out} --config {config_out_of_range}", ("out_of_range.yaml", "motion.max_score")),
    ("python -m dynascene_core.data.prepare", "{video} {out} --workers 0 --rvm {rvm}", ("--workers", "run.workers")),
    ("python -m dynascene_core.data.prepare", "{out}/no_videos {out}", "no_videos"),
    ("python -m dynascene_core.data.prepare", "{video} {scene}", "scene.png"),
    ("python -m dynascene_core.data.prepare", "{video} {out}", "--rvm"),
    ("python -m dynascene_core.data.prepare", "{video} {out} --rvm {bad.pth}", None),
    ("python -m dynascene_core.data.prepare", "{video} {out} --rvm {rvm} --person-weights {bad.pth}", None),
    ("python -m training.prepare_proof", "--out {out} --frames 0", "--frames"),
    ("python -m training.prepare_proof", "--out {out} --height 20", "--height"),
    ("python -m training.prepare_proof", "--out {scene}", "scene.png"),
]

CONFIGS = {  # data-preparation config files with one bad setting each
    "config_unknown_key": "motion:\n  max_scor: 0.7\n",
    "config_wrong_type": "person:\n  sample_fps: often\n",
    "config_out_of_range": "motion:\n  max_score: 1.5\n",
}

BAD_KINDS = ("empty", "text", "random", "html", "truncated")
HTML = "<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body>Please log in</body></html>\n"


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    """Good inputs and, per extension, a good file to truncate."""
    from PIL import Image

    from dynascene_core.camera import demo_clip
    from dynascene_core.checkpoints import save_dynascene
    from dynascene_core.models import DynaSceneModels
    from dynascene_core.video import write_video

    root = tmp_path_factory.mktemp("good")
    clip = demo_clip(num_frames=4, height=32, width=48)
    from test_matting_rvm import random_state_dict

    files = {name: str(root / name) for name in ("video.mp4", "mask.mp4", "scene.png", "poses.txt",
                                                 "weights.safetensors", "weights.ckpt", "rvm.pth", "prepare.yaml")}
    write_video(files["video.mp4"], clip.frames, fps=8)
    write_video(files["mask.mp4"], np.repeat((clip.masks[..., None] * 255).astype(np.uint8), 3, -1), fps=8)
    Image.fromarray(clip.scene_image).save(files["scene.png"])
    clip.trajectory.save(files["poses.txt"])
    torch.manual_seed(0)
    save_dynascene(files["weights.safetensors"], DynaSceneModels.build("tiny"))
    torch.save({"state_dict": {"w": torch.zeros(64, 64)}}, files["weights.ckpt"])
    torch.save(random_state_dict("mobilenetv3"), files["rvm.pth"])
    (root / "prepare.yaml").write_text("person:\n  area_range: [0.05, 0.7]\n")
    configs = {}
    for name, text in CONFIGS.items():
        configs[name] = str(root / f"{name[len('config_'):]}.yaml")
        (root / f"{name[len('config_'):]}.yaml").write_text(text)
    return {"video": files["video.mp4"], "mask": files["mask.mp4"], "scene": files["scene.png"],
            "poses": files["poses.txt"], "weights": files["weights.safetensors"], "rvm": files["rvm.pth"], **configs,
            "truncate": {".mp4": files["video.mp4"], ".png": files["scene.png"], ".txt": files["poses.txt"],
                         ".safetensors": files["weights.safetensors"], ".ckpt": files["weights.ckpt"],
                         ".pth": files["weights.ckpt"], ".yaml": files["prepare.yaml"]}}


def write_bad_file(path: str, kind: str, good_files: dict) -> None:
    ext = os.path.splitext(path)[1]
    if kind == "empty":
        content = b""
    elif kind == "text":
        content = b"these are my notes, saved under the wrong name\n"
    elif kind == "random":
        content = np.random.default_rng(0).bytes(4096)
    elif kind == "html":
        content = HTML.encode()
    else:
        with open(good_files["truncate"][ext], "rb") as handle:
            whole = handle.read()
        content = whole[: len(whole) // 2]
    with open(path, "wb") as handle:
        handle.write(content)


def cases():
    for command, arguments, names in BAD_INPUTS:
        kinds = BAD_KINDS if "{bad." in arguments else (None,)
        for kind in kinds:
            words = arguments.split()
            slot = next((w for i, w in enumerate(words) if i + 1 < len(words) and "{bad" in words[i + 1]), "")
            what = (" ".join(w for w in words if "{bad" in w or "=" in w and "{out}" not in w)
                    or (" ".join(names) if isinstance(names, tuple) else names))
            yield pytest.param(command, arguments, names, kind,
                               id=f"{command.split()[-1].split('/')[-1]} {slot} {what} {kind or ''}".replace("  ", " "))


def expand(arguments: str, kind: str | None, good_files: dict, tmp_path) -> tuple[list[str], str | None]:
    """The argument list for one case, and the bad file's name (None when the case has none)."""
    bad_name = None

    def bad(match):
        nonlocal bad_name
        bad_name = f"bad-{kind}{match.group(1)}"
        write_bad_file(str(tmp_path / bad_name), kind, good_files)
        return str(tmp_path / bad_name)

    text = re.sub(r"\{bad(\.\w+)\}", bad, arguments)
    values = {k: v for k, v in good_files.items() if k != "truncate"}
    text = text.format(out=str(tmp_path / "out"), **values)
    return text.split(), bad_name


def run_in_process(command: str, argv: list[str]) -> tuple[int, str, BaseException | None]:
    """Run a command as ``python ...`` would, in this process: (exit status, stderr, escaped exception)."""
    target = command.split()[1:]
    old_argv, stderr = sys.argv, io.StringIO()
    escaped, code = None, 0
    try:
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # runpy: module already imported
            if target[0] == "-m":
                sys.argv = [target[1], *argv]
                runpy.run_module(target[1], run_name="__main__", alter_sys=True)
            else:
                sys.argv = [target[0], *argv]
                runpy.run_path(os.path.join(REPO, target[0]), run_name="__main__")
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException as exc:  # noqa: BLE001 - a traceback a user would see
        escaped, code = exc, 1
    finally:
        sys.argv = old_argv
    return code, stderr.getvalue(), escaped


def check_result(code: int, stderr: str, names: list[str], tmp_path, before: set[str]) -> None:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert code != 0
    assert "Traceback" not in stderr
    assert len(lines) == 1, f"expected one error line, got:\n{stderr}"
    assert "error" in lines[0]
    for name in names:
        for text in name if isinstance(name, tuple) else (name,):
            assert text in lines[0], f"{text!r} not named in: {lines[0]}"
    assert not (tmp_path / "out").exists(), "partial output written"
    assert set(os.listdir(tmp_path)) == before, "files written into the working folder"


@pytest.mark.parametrize("command,arguments,names,kind", list(cases()))
def test_bad_input_gives_one_line_and_no_output(command, arguments, names, kind, good, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv, bad_name = expand(arguments, kind, good, tmp_path)
    before = set(os.listdir(tmp_path))
    code, stderr, escaped = run_in_process(command, argv)
    assert escaped is None, f"{type(escaped).__name__} escaped: {escaped}"
    check_result(code, stderr, [bad_name] if bad_name else [names], tmp_path, before)


@pytest.mark.parametrize("command", sorted({command for command, _, _ in BAD_INPUTS}))
def test_each_command_as_a_real_process(command, good, tmp_path):
    """The first line of each command, random bytes, in a real ``python`` process: exit status and stderr
    exactly as a user sees them."""
    _, arguments, names = next(row for row in BAD_INPUTS if row[0] == command)
    argv, bad_name = expand(arguments, "random", good, tmp_path)
    before = set(os.listdir(tmp_path))
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    target = command.split()[1:]
    if target[0] != "-m":
        target = [os.path.join(REPO, target[0])]
    result = subprocess.run([sys.executable, *target, *argv], cwd=tmp_path, env=env, text=True,
                            capture_output=True, timeout=300)
    check_result(result.returncode, result.stderr, [bad_name or names], tmp_path, before)


def test_verbose_shows_the_details(good, tmp_path):
    """--verbose keeps the traceback and ffmpeg's own output for whoever needs them."""
    bad = tmp_path / "notes.mp4"
    bad.write_text("not a video\n")
    code, stderr, escaped = run_in_process("python -m dynascene_core.camera",
                                           ["estimate", str(bad), "--out", str(tmp_path / "p.txt"), "--verbose"])
    assert escaped is None and code == 1
    assert "Traceback" in stderr and "ffmpeg version" in stderr
    assert stderr.strip().splitlines()[-1].startswith(f"error: {bad}: not a readable video")
