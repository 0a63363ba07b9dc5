import os
import pickle

import pytest
import torch

from dynascene_core.checkpoints.io import CheckpointError, read_weights, write_safetensors_atomic


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_safetensors_round_trip_keeps_metadata(tmp_path):
    tensors = {"a.weight": torch.randn(3, 4), "b": torch.arange(5)}
    path = tmp_path / "x.safetensors"
    write_safetensors_atomic(tensors, path, {"format": "test", "config": {"k": 1}})
    wf = read_weights(path)
    assert set(wf.tensors) == set(tensors)
    assert torch.equal(wf.tensors["a.weight"], tensors["a.weight"])
    assert wf.metadata["format"] == "test" and wf.metadata["config"] == '{"k": 1}'
    assert not [p for p in os.listdir(tmp_path) if ".tmp-" in p]


def test_pickle_is_flattened(tmp_path):
    path = tmp_path / "x.ckpt"
    torch.save({"state_dict": {"w": torch.ones(2)}, "global_step": 3}, path)
    assert list(read_weights(path).tensors) == ["state_dict.w"]


def test_code_running_pickle_is_refused(tmp_path):
    path = tmp_path / "evil.ckpt"
    with open(path, "wb") as fh:
        pickle.dump({"w": _RunsCode()}, fh)
    with pytest.raises(CheckpointError, match="evil.ckpt.*refused"):
        read_weights(path)


def test_missing_and_unknown_files_name_the_path(tmp_path):
    with pytest.raises(CheckpointError, match="nope.safetensors: file not found"):
        read_weights(tmp_path / "nope.safetensors")
    (tmp_path / "w.onnx").write_bytes(b"x")
    with pytest.raises(CheckpointError, match="unknown file type"):
        read_weights(tmp_path / "w.onnx")
    (tmp_path / "bad.safetensors").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="bad.safetensors: a text file"):
        read_weights(tmp_path / "bad.safetensors")
