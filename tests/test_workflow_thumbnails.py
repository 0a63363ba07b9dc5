"""The template thumbnails' script: it executes the shipped API graphs with the pack's nodes and shows their results."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from conftest import load_benchmark
from nodes_fixtures import standalone_dirs
from dynascene_core.camera import CameraTrajectory, demo_clip, make_preset, plot_trajectory

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def thumbnails():
    return load_benchmark("workflow_thumbnails")


@pytest.fixture(autouse=True)
def host_folders(tmp_path, monkeypatch):
    """Preview and pose-file nodes write into the standalone host folders: keep them in the test's folder."""
    standalone_dirs(tmp_path, monkeypatch)


def _api(name: str) -> dict:
    with open(os.path.join(ROOT, "workflows", "api", f"{name}.json"), encoding="utf-8") as handle:
        return json.load(handle)


def test_camera_design_thumbnail_is_the_workflows_preview(thumbnails):
    prompt = _api("Design a camera move")
    picture = thumbnails.thumbnail(prompt, steps=1)
    assert picture.size == (thumbnails.SIZE, thumbnails.SIZE)
    # the graph written out with the core: two presets (the first with a second move), joined, stretched
    first, second = (prompt[key]["inputs"] for key in ("1", "2"))
    camera = CameraTrajectory.concat([make_preset([first["preset"], first["with_preset"]], first["frames"],
                                                  first["speed"], first["easing"]),
                                      make_preset(second["preset"], second["frames"], second["speed"],
                                                  second["easing"])], chain=True).resample(prompt["4"]["inputs"]["frames"])
    preview = prompt["5"]["inputs"]
    want = thumbnails._cell(plot_trajectory(camera, (preview["width"], preview["height"])), thumbnails.SIZE,
                            thumbnails.SIZE // 2)
    assert np.array_equal(np.asarray(picture)[: thumbnails.SIZE // 2], np.asarray(want))  # the pasted plot


def test_video_thumbnail_rows_show_input_result_and_background(thumbnails, monkeypatch):
    """With the sampler replaced by a known answer, each column shows the right node's frames."""
    calls = {}

    def known_answer(self, dynascene_model, vae, clip_vision, steps, images, mask, camera, **_):
        calls.update(frames=len(images), camera=len(camera), mask=mask.clone())
        return images * 0 + 0.25, images * 0 + 0.75, None

    monkeypatch.setattr(thumbnails.DemoStandIns, "sample", known_answer)
    monkeypatch.setattr(thumbnails.DemoStandIns, "models", lambda self: None)
    picture = np.asarray(thumbnails.thumbnail(_api("Designed camera move behind a video"), steps=1), np.float32) / 255
    clip = demo_clip(thumbnails.DEFAULT_FRAMES, *thumbnails.DEMO_SIZE, seed=thumbnails.DEMO_SCENE_SEED,
                     detail=thumbnails.PROOF_DETAIL)
    assert calls["frames"] == calls["camera"] == len(clip.frames)   # the camera was fitted to the video
    # the mask reached the sampler through Refine Mask (temporal radius 1): a 3-frame average of the clip's matte
    masks = torch.from_numpy(clip.masks)
    assert torch.allclose(calls["mask"][1], masks[:3].mean(0), atol=1e-5)
    band, gap, size = 40, 4, thumbnails.SIZE
    cell_w, cell_h = (size - 4 * gap) // 3, (size - band - thumbnails.ROWS * gap) // thumbnails.ROWS
    first_row = [picture[band:band + cell_h, gap + c * (cell_w + gap):gap + c * (cell_w + gap) + cell_w]
                 for c in range(3)]
    want_input = np.asarray(thumbnails._cell(clip.frames[0], cell_w, cell_h), np.float32) / 255
    assert np.abs(first_row[0] - want_input).mean() < 0.03                 # input frame 0
    assert np.abs(first_row[1] - 0.75).max() < 0.03                        # the saved video: the composite
    assert np.abs(first_row[2] - 0.25).max() < 0.03                        # the background output
