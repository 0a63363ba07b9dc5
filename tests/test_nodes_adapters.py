"""Host-type adapters and the host shim, without a host."""

from __future__ import annotations

import os

import pytest
import torch

from nodes import adapters, host


def test_image_and_mask_round_trip():
    image = torch.rand(5, 6, 7, 3)
    frames = adapters.image_to_frames(image)
    assert frames.shape == (5, 3, 6, 7) and torch.equal(frames[2, 1], image[2, :, :, 1])
    assert torch.equal(adapters.frames_to_image(frames), image)
    assert adapters.image_to_frames(torch.rand(2, 4, 4, 4)).shape == (2, 3, 4, 4)  # alpha dropped
    grey = adapters.image_to_frames(torch.rand(2, 4, 4, 1))
    assert torch.equal(grey[:, 0], grey[:, 2])
    with pytest.raises(ValueError, match="clip: expected an IMAGE batch"):
        adapters.image_to_frames(torch.rand(4, 4, 3), "clip")

    mask = torch.rand(5, 6, 7)
    core = adapters.mask_to_core(mask, 5)
    assert core.shape == (5, 1, 6, 7) and torch.equal(adapters.core_to_mask(core), mask)
    assert adapters.mask_to_core(mask[0], 5).shape == (5, 1, 6, 7)  # one mask for every frame
    with pytest.raises(ValueError, match="has 2 frames but the video has 5"):
        adapters.mask_to_core(mask[:2], 5)
    assert torch.equal(adapters.frames_to_image(torch.full((1, 3, 2, 2), 2.0)), torch.ones(1, 2, 2, 3))


def test_missing_model_file_error_names_folder_and_source(tmp_path, monkeypatch):
    monkeypatch.setattr(host, "STANDALONE_DIRS", {**host.STANDALONE_DIRS, "models": str(tmp_path)})
    assert not host.in_comfyui()
    with pytest.raises(FileNotFoundError) as error:
        host.resolve_model_file("rvm", "rvm_mobilenetv3.pth", "the RVM weights from the RVM releases page")
    message = str(error.value)
    assert os.path.join(str(tmp_path), "rvm") in message and "the RVM weights" in message
    assert "'rvm' model folder" in message and host.MODELS_SECTION_URL in message
    os.makedirs(tmp_path / "rvm" / "sub")
    (tmp_path / "rvm" / "sub" / "rvm_mobilenetv3.pth").write_bytes(b"x")
    assert host.model_file_list("rvm") == [os.path.join("sub", "rvm_mobilenetv3.pth")]
    assert host.resolve_model_file("rvm", "sub/rvm_mobilenetv3.pth", "x") == str(
        tmp_path / "rvm" / "sub" / "rvm_mobilenetv3.pth")


def test_progress_reporter_checks_cancel_before_each_update(monkeypatch):
    events = []

    class Bar:
        def update_absolute(self, value, total, preview):
            events.append(("bar", value, total, preview))

    class Previewer:
        def decode_latent_to_preview_image(self, fmt, latent):
            events.append(("preview", tuple(latent.shape), float(latent.mean())))
            return ("JPEG", "picture", 512)

    def cancel_at_step_three():
        events.append(("check",))
        if sum(e[0] == "check" for e in events) == 3:
            raise KeyboardInterrupt("cancelled")

    monkeypatch.setattr(host, "progress_bar", lambda total: Bar())
    monkeypatch.setattr(host, "sd15_latent_previewer", lambda: Previewer())
    monkeypatch.setattr(host, "check_interrupted", cancel_at_step_three)
    report = adapters.ProgressReporter(10)
    latent = torch.arange(5.0).reshape(1, 1, 5, 1, 1).expand(1, 4, 5, 2, 2)
    report(1, 10, latent)
    report(2)
    with pytest.raises(KeyboardInterrupt):
        report(3, 10, latent)
    assert events == [("check",), ("preview", (1, 4, 2, 2), 2.0), ("bar", 1, 10, ("JPEG", "picture", 512)),
                      ("check",), ("bar", 2, 10, None), ("check",)]


def test_progress_reporter_without_host_only_counts():
    report = adapters.ProgressReporter(4)
    report(3, 4, torch.zeros(1, 4, 2, 2, 2))
    assert (report.step, report.total) == (3, 4)
