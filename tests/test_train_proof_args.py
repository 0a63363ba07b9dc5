"""benchmarks/train_proof.sh refuses bad settings with one line naming them, before any rendering or training."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_script(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    python_dir = Path(sys.executable).parent  # the script calls `python`
    full_env = {**os.environ, "PATH": f"{python_dir}{os.pathsep}{os.environ['PATH']}", "WORK": str(tmp_path / "work"),
                **env}
    return subprocess.run(["bash", "benchmarks/train_proof.sh"], cwd=ROOT, env=full_env, capture_output=True,
                          text=True, timeout=60)


@pytest.mark.parametrize("settings, message", [
    ({"STAGE1_S": "0"}, "STAGE1_S=0 (no stage I training) needs RESUME="),
    ({"STAGE1_S": "ten"}, "STAGE1_S and STAGE2_S must be whole seconds, got 'ten'"),
    ({"STAGE1_MODEL": "missing.safetensors", "STAGE1_S": "0"}, "missing.safetensors is not a file"),
    ({"STAGE1_MODEL": "MODEL", "STAGE1_S": "60", "RESUME": "RESUME"}, "continues stage I from that model's weights: drop RESUME"),
    ({"STAGE1_MODEL": "MODEL", "STAGE1_S": "0", "STAGE2_S": "0"}, "starts stage II from that model: set STAGE2_S > 0"),
    ({"RESUME": "RESUME", "STAGE1_S": "0"}, "holds no stage1_checkpoint.tar"),
    ({"WARM_START": "RESUME", "STAGE1_S": "0", "RESUME": "RESUME"}, "WARM_START needs STAGE1_MODEL"),
    ({"WARM_START": "RESUME", "STAGE1_MODEL": "MODEL", "STAGE1_S": "0"}, "holds no stage2_cam_checkpoint.tar"),
    ({"GENERATE_SPLITS": "val train"}, "GENERATE_SPLITS must name held-out splits (val, test), got 'train'"),
])
def test_bad_settings_stop_before_any_work(tmp_path, settings, message):
    model = tmp_path / "stage1.safetensors"
    model.write_bytes(b"weights")
    (tmp_path / "resume").mkdir()
    names = {"MODEL": str(model), "RESUME": str(tmp_path / "resume")}
    env = {key: names.get(value, value) for key, value in settings.items()}
    result = run_script(tmp_path, OUT=str(tmp_path / "out"), **env)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists() and not (tmp_path / "work").exists()


def test_resume_folder_with_a_stage1_model_needs_no_stage1_checkpoint(tmp_path):
    """With STAGE1_MODEL, RESUME only brings stage-II checkpoints: the run passes the checks (stopped at OUT=RESUME)."""
    model = tmp_path / "stage1.safetensors"
    model.write_bytes(b"weights")
    (tmp_path / "resume").mkdir()
    result = run_script(tmp_path, STAGE1_MODEL=str(model), STAGE1_S="0", RESUME=str(tmp_path / "resume"),
                        OUT=str(tmp_path / "resume"))
    assert result.returncode == 2
    assert "OUT must not be RESUME's folder" in result.stderr


def test_a_stage1_model_with_a_stage1_budget_passes_the_checks(tmp_path):
    """STAGE1_MODEL with STAGE1_S > 0 (stage I continued from those weights) is a valid setting: the script gets past
    its argument checks and stops only at the GPU check (no GPU made visible), before any work."""
    model = tmp_path / "stage1.safetensors"
    model.write_bytes(b"weights")
    result = run_script(tmp_path, STAGE1_MODEL=str(model), STAGE1_S="60", STAGE2_S="0", OUT=str(tmp_path / "out"),
                        CUDA_VISIBLE_DEVICES="", PROOF_CPU="")
    assert result.returncode == 2
    assert "needs torch with CUDA" in result.stderr
    assert not (tmp_path / "work").exists()
