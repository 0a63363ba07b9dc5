"""Imports are cheap: the camera library and the node pack do not load diffusers/transformers/accelerate."""

import subprocess
import sys

import pytest

HEAVY = ("diffusers", "transformers", "accelerate")


def _imported_top_level(statement: str) -> set[str]:
    """Top-level packages a fresh interpreter imports for ``statement`` (``python -X importtime``)."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", statement], capture_output=True, text=True,
                          check=True)
    names = set()
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return names


@pytest.mark.parametrize("statement", ["import dynascene_core.camera", "import nodes",
                                       "from dynascene_core.models import DynaSceneConfig, DynaSceneModels"])
def test_light_imports_do_not_load_model_libraries(statement):
    imported = _imported_top_level(statement)
    assert "torch" in imported  # the parser sees the imports at all
    assert not imported & set(HEAVY), f"{statement} imports {sorted(imported & set(HEAVY))}"

