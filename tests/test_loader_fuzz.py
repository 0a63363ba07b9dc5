"""Fuzzing every file loader with the files newcomers really give it: empty, text renamed to a weight
suffix, random bytes, an HTML page saved instead of weights, Git LFS pointers, truncated good files.
Each must raise the loader's own error type with one line that names the file and says what is wrong."""

import os

import numpy as np
import pytest
import torch

from dynascene_core.camera import CameraTrajectory, PoseFileError, make_preset
from dynascene_core.checkpoints import CheckpointError, load_dynascene, load_motion_module, save_dynascene
from dynascene_core.checkpoints.detect import detect_file
from dynascene_core.checkpoints.dynascene_format import read_dynascene_header
from dynascene_core.checkpoints.io import read_weights
from dynascene_core.matting import load_rvm
from dynascene_core.models import DynaSceneModels
from dynascene_core.video import VideoError, read_video, write_video

HTML = b"<!DOCTYPE html>\n<html lang='en'><head><title>404</title></head><body>Not found</body></html>\n"
LFS = b"version https://git-lfs.github.com/spec/v1\noid sha256:4c5a\nsize 1234567\n"
TEXT = b"model weights will go here\n"

# what the one-line message must say for each kind of bad weight file (written independently of the code)
WEIGHT_PROBLEMS = {
    "empty": "empty file",
    "text": "a text file",
    "html": "an HTML page",
    "lfs": "Git LFS pointer",
    "random": "unrecognised content",
    "truncated": "truncated",
}


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    root = tmp_path_factory.mktemp("good")
    torch.manual_seed(0)
    files = {"safetensors": root / "tiny.safetensors", "pt": root / "state.pt", "mp4": root / "clip.mp4",
             "txt": root / "poses.txt"}
    save_dynascene(files["safetensors"], DynaSceneModels.build("tiny"))
    torch.save({"state_dict": {f"layer{i}.weight": torch.randn(32, 32) for i in range(8)}}, files["pt"])
    write_video(files["mp4"], np.random.default_rng(0).integers(0, 255, (6, 32, 48, 3), dtype=np.uint8), fps=8)
    make_preset("pan_left", 6).save(files["txt"])
    return files


def bad_file(folder, kind, name, good_file=None, seed=0, fraction=0.5):
    path = os.path.join(folder, name)
    if kind == "truncated":
        whole = good_file.read_bytes()
        content = whole[: int(len(whole) * fraction)]
    else:
        content = {"empty": b"", "text": TEXT, "html": HTML, "lfs": LFS,
                   "random": np.random.default_rng(seed).bytes(2048 + 977 * seed)}[kind]
    with open(path, "wb") as handle:
        handle.write(content)
    return path


def assert_one_line_naming(exc_info, path, phrase):
    message = str(exc_info.value)
    assert "\n" not in message, message
    assert message.startswith(f"{path}:"), message  # "path: ..." or "path:line: ..."
    assert phrase.lower() in message.lower(), message


WEIGHT_LOADERS = {
    "read_weights": read_weights,
    "detect_file": detect_file,
    "read_dynascene_header": read_dynascene_header,
    "load_dynascene": lambda p: load_dynascene(p),
    "load_rvm": load_rvm,
    "load_motion_module": lambda p: load_motion_module(p, None),
}


@pytest.mark.parametrize("loader", sorted(WEIGHT_LOADERS))
@pytest.mark.parametrize("kind", sorted(WEIGHT_PROBLEMS))
@pytest.mark.parametrize("suffix", [".safetensors", ".ckpt", ".pth"])
def test_weight_loaders_name_the_file_and_the_problem(loader, kind, suffix, good, tmp_path):
    source = good["safetensors"] if suffix == ".safetensors" else good["pt"]
    path = bad_file(tmp_path, kind, f"model{suffix}", source)
    with pytest.raises(CheckpointError) as exc_info:
        WEIGHT_LOADERS[loader](path)
    assert_one_line_naming(exc_info, path, WEIGHT_PROBLEMS[kind])


@pytest.mark.parametrize("seed", range(8))
def test_random_bytes_and_any_truncation_are_refused(seed, good, tmp_path):
    """More random files, and truncations at several points of both containers."""
    path = bad_file(tmp_path, "random", "r.pth", seed=seed)
    with pytest.raises(CheckpointError) as exc_info:
        read_weights(path)
    assert_one_line_naming(exc_info, path, "")
    fraction = (seed + 1) / 9
    for source, name in ((good["safetensors"], "t.safetensors"), (good["pt"], "t.ckpt")):
        path = bad_file(tmp_path, "truncated", name, source, fraction=fraction)
        with pytest.raises(CheckpointError) as exc_info:
            read_weights(path)
        assert_one_line_naming(exc_info, path, "truncated")


def test_a_renamed_good_file_still_loads(good, tmp_path):
    """The container is recognised from the content: a safetensors file named .ckpt is read as such."""
    renamed = tmp_path / "renamed.ckpt"
    renamed.write_bytes(good["safetensors"].read_bytes())
    assert set(read_weights(renamed).tensors) == set(read_weights(good["safetensors"]).tensors)
    renamed = tmp_path / "renamed.safetensors"
    renamed.write_bytes(good["pt"].read_bytes())
    assert torch.equal(read_weights(renamed).tensors["state_dict.layer0.weight"],
                       read_weights(good["pt"]).tensors["state_dict.layer0.weight"])


@pytest.mark.parametrize("kind,phrase", [("empty", "empty file"), ("text", "not a readable video"),
                                         ("html", "not a readable video"), ("random", "not a readable video"),
                                         ("truncated", "not a readable video")])
def test_videos(kind, phrase, good, tmp_path):
    path = bad_file(tmp_path, kind, "person.mp4", good["mp4"])
    with pytest.raises(VideoError) as exc_info:
        read_video(path)
    assert_one_line_naming(exc_info, path, phrase)
    assert "ffmpeg version" in (exc_info.value.detail or "") or kind == "empty"


@pytest.mark.parametrize("kind,phrase", [("empty", "empty pose file"), ("text", "no pose lines"),
                                         ("html", "expected 19 fields"), ("random", "binary content"),
                                         ("truncated", "expected")])
def test_pose_files(kind, phrase, good, tmp_path):
    path = bad_file(tmp_path, kind, "poses.txt", good["txt"], fraction=0.6)
    with pytest.raises(PoseFileError) as exc_info:
        CameraTrajectory.load(path)
    assert_one_line_naming(exc_info, path, phrase)
