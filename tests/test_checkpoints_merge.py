"""``python -m dynascene_core.checkpoints merge``: training's stage files + published files -> one full file."""

import os

import pytest
import torch

from dynascene_core.checkpoints import (CheckpointError, ModelFiles, assemble_models, read_dynascene,
                                        read_dynascene_header, save_dynascene)
from dynascene_core.checkpoints.__main__ import main
from dynascene_core.models import parameter_groups
from test_checkpoints_assemble import _files, source  # noqa: F401  (module fixture)


@pytest.fixture
def stage_files(tmp_path, source):  # noqa: F811
    """Published SD1.5 + AnimateDiff files, a CLIP file, and training's stage-I and stage-II outputs."""
    sd15, mm, stage2, clip = _files(tmp_path, source)
    stage1 = tmp_path / "stage1.safetensors"
    save_dynascene(stage1, source, ["denoiser_spatial", "reference_net"])
    return {"sd15": str(sd15), "mm": str(mm), "stage1": str(stage1), "stage2": str(stage2), "clip": str(clip)}


def test_merge_stage_files_into_a_full_file_that_loads_alone(tmp_path, source, stage_files, capsys):  # noqa: F811
    out = tmp_path / "out" / "full.safetensors"
    f = stage_files
    assert main(["merge", "--sd15", f["sd15"], "--dynascene", f["stage1"], f["stage2"], f["clip"],
                 "--out", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    assert set(read_dynascene_header(out)[1]) == set(parameter_groups(source))
    got = assemble_models(ModelFiles(dynascene=[out]))  # the full file alone passes the generation check
    expected, actual = parameter_groups(source), parameter_groups(got.models)
    for group in ("denoiser_spatial", "reference_net", "motion_modules", "camera_adaptor", "camera_encoder",
                  "vae", "image_encoder"):
        for name, p in expected[group].items():
            assert torch.equal(actual[group][name], p), name
    assert got.camera_active


def test_positional_files_are_routed_by_kind(tmp_path, stage_files):
    f = stage_files
    files = ModelFiles.from_paths([f["mm"], f["sd15"], f["stage2"], f["clip"]])
    assert (files.sd15_inpainting, files.motion_module, files.dynascene) == (f["sd15"], f["mm"], [f["stage2"], f["clip"]])
    with pytest.raises(CheckpointError, match="is a second motion_module file"):
        ModelFiles.from_paths([f["mm"], f["mm"]])
    out, by_flag = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    assert main(["merge", f["sd15"], f["mm"], f["stage2"], f["clip"], "--out", str(out)]) == 0
    assert main(["merge", "--sd15", f["sd15"], "--motion-module", f["mm"], "--dynascene", f["stage2"], f["clip"],
                 "--out", str(by_flag)]) == 0
    (config_a, groups_a, a), (config_b, groups_b, b) = read_dynascene(out), read_dynascene(by_flag)
    assert (config_a.to_dict(), groups_a, set(a)) == (config_b.to_dict(), groups_b, set(b))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_missing_parts_fail_with_the_names_and_write_nothing(tmp_path, stage_files, capsys):
    out = tmp_path / "full.safetensors"
    assert main(["merge", "--dynascene", stage_files["stage1"], "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "came from no file: motion_modules, vae, image_encoder" in err
    assert not out.exists()
    assert main(["merge", "--dynascene", stage_files["stage1"], "--groups", "camera_encoder", "--out", str(out)]) == 1
    assert "came from no file: camera_encoder" in capsys.readouterr().err
    assert main(["merge", "--dynascene", stage_files["stage2"], "--groups", "motion_module", "--out", str(out)]) == 1
    assert "unknown parameter groups ['motion_module']" in capsys.readouterr().err
    assert not out.exists()


def test_a_group_subset_and_never_overwriting_an_input(tmp_path, stage_files, capsys):
    stage2 = stage_files["stage2"]
    before = os.stat(stage2).st_mtime_ns, open(stage2, "rb").read()
    assert main(["merge", "--dynascene", stage2, "--groups", "motion_modules", "camera_adaptor", "camera_encoder",
                 "--out", stage2]) == 1
    assert "is one of the input files; refusing to overwrite it" in capsys.readouterr().err
    assert (os.stat(stage2).st_mtime_ns, open(stage2, "rb").read()) == before
    out = tmp_path / "camera.safetensors"
    assert main(["merge", "--dynascene", stage2, "--groups", "camera_adaptor", "camera_encoder", "--out", str(out)]) == 0
    assert read_dynascene_header(out)[1] == ["camera_adaptor", "camera_encoder"]
