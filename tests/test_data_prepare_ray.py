"""Data preparation on a local Ray instance started by the test gives the same data set as local workers."""

import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))
import prepare_fakes as fakes  # noqa: E402
from test_data_prepare import SEGMENT, _drops_by_video, rvm_file, settings  # noqa: E402,F401

ray = pytest.importorskip("ray")
TESTS = os.path.dirname(os.path.abspath(__file__))


def test_ray_gives_the_same_data_set(tmp_path, rvm_file, monkeypatch):  # noqa: F811
    from dynascene_core.data import prepare, read_manifest
    from dynascene_core.data.clips import clip_files, load_trajectory, read_clip_frames

    src = tmp_path / "src"
    src.mkdir()
    fakes.write(src / "cut.mp4", np.concatenate([fakes.render(SEGMENT, "truck_left", seed=2),
                                                  fakes.render(SEGMENT, "dolly_in+pan_right", seed=3)]))
    fakes.write(src / "nobody.mp4", fakes.render(SEGMENT, "orbit_left", seed=4, people=0))
    (src / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 truncated")
    config = settings(rvm_file)
    monkeypatch.setattr(prepare, "check_inputs", lambda config: None)
    with monkeypatch.context() as local_fakes:
        fakes.install(local_fakes)
        local_report = prepare.run_prepare(str(src), str(tmp_path / "local"), config, progress=False)
    # The driver now has the real (here unavailable) detector, so clips can only come from Ray workers,
    # where the worker setup hook installs the chroma key.
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"worker_process_setup_hook": "prepare_fakes.install",
                          "env_vars": {"PYTHONPATH": os.pathsep.join([TESTS, os.path.dirname(TESTS)]),
                                       "OMP_NUM_THREADS": "1"}})
    try:
        report = prepare.run_prepare(str(src), str(tmp_path / "ray"), config, ray_address="auto", progress=False)
    finally:
        ray.shutdown()
    local = {r.clip_id: r for r in read_manifest(tmp_path / "local")}
    assert {r.clip_id: r for r in read_manifest(tmp_path / "ray")} == local and len(local) == 2
    assert _drops_by_video(str(tmp_path / "ray")) == _drops_by_video(str(tmp_path / "local")) == {
        "broken.mp4": [("probe", "unreadable")], "nobody.mp4": [("person", "no_person")]}
    assert report["drops"] == local_report["drops"] and report["motion"] == local_report["motion"]
    for record in local.values():
        a, b = clip_files(tmp_path / "local", record), clip_files(tmp_path / "ray", record)
        np.testing.assert_allclose(load_trajectory(record, a).c2w, load_trajectory(record, b).c2w, atol=1e-3)
        frames = list(range(record.num_frames))
        assert np.array_equal(read_clip_frames(record, a, frames).masks, read_clip_frames(record, b, frames).masks)
        assert sorted(a.scene_images) == sorted(b.scene_images)
