"""ComfyUI entry point for the DynaScene node pack: node registration only.

ComfyUI imports this folder as a package (``custom_nodes/<any folder name>``). Nothing is added to
``sys.path``: the nodes import each other relatively, and the bundled library is made importable by
its own, unique name ``dynascene_core`` (the name the command line, training and tests use) by loading
it from this folder into ``sys.modules``. Generic folder names here (``nodes``, ``training``, ``tests``)
therefore never shadow other packs' or the host's modules.
"""

from __future__ import annotations

import importlib.util
import os
import sys


def _load_bundled_core() -> None:
    """Import ``dynascene_core`` from this folder under its own name (once; refuses another copy)."""
    package_dir = os.path.join(os.path.dirname(os.path.realpath(__file__)), "dynascene_core")
    loaded = sys.modules.get("dynascene_core")
    if loaded is not None:
        if os.path.dirname(os.path.realpath(loaded.__file__)) != package_dir:
            raise ImportError(f"another dynascene_core ({loaded.__file__}) is already imported; this pack needs "
                              f"its own ({package_dir}): uninstall the other one")
        return
    spec = importlib.util.spec_from_file_location("dynascene_core", os.path.join(package_dir, "__init__.py"),
                                                  submodule_search_locations=[package_dir])
    module = importlib.util.module_from_spec(spec)
    sys.modules["dynascene_core"] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules["dynascene_core"]
        raise


_load_bundled_core()

from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS  # noqa: E402

WEB_DIRECTORY = "./web"
__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
