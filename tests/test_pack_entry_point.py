"""The ComfyUI entry point (the checkout's ``__init__.py``) imports as a package under any folder name and leaves
``sys.path`` alone, so the pack's generic folder names never shadow other packs' or the host's modules."""

from __future__ import annotations

import os
import subprocess
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

IMPORT_AS_COMFYUI_DOES = """
import importlib.util, json, os, sys
folder = os.path.abspath("comfyui-dynascene")
before = list(sys.path)
spec = importlib.util.spec_from_file_location("comfyui-dynascene", os.path.join(folder, "__init__.py"),
                                              submodule_search_locations=[folder])
module = importlib.util.module_from_spec(spec)
sys.modules["comfyui-dynascene"] = module
spec.loader.exec_module(module)
print(json.dumps({"nodes": len(module.NODE_CLASS_MAPPINGS), "path_changed": sys.path != before,
                  "top_level": sorted(n for n in ("nodes", "training", "tests", "benchmarks") if n in sys.modules),
                  "core": os.path.realpath(sys.modules["dynascene_core"].__file__)}))
"""


def test_entry_point_imports_under_a_hyphenated_folder_name_without_touching_sys_path(tmp_path):
    import json

    os.symlink(REPO_ROOT, tmp_path / "comfyui-dynascene")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-c", IMPORT_AS_COMFYUI_DOES], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    from nodes import NODE_CLASS_MAPPINGS

    assert result["nodes"] == len(NODE_CLASS_MAPPINGS)
    assert result["path_changed"] is False
    assert result["top_level"] == []  # the pack's nodes/ is "comfyui-dynascene.nodes", not "nodes"
    assert result["core"] == os.path.realpath(os.path.join(REPO_ROOT, "dynascene_core", "__init__.py"))
