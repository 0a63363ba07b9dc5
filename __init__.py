"""ComfyUI entry point for the DynaScene node pack: node registration only.

ComfyUI imports this folder as a package without putting it on ``sys.path``; the folder is appended
(not prepended: its ``nodes`` package must never shadow ComfyUI's ``nodes`` module) so that the
nodes can import the bundled ``dynascene_core`` library by its own name.
"""

import os
import sys

_PACK_DIR = os.path.dirname(os.path.abspath(__file__))
if _PACK_DIR not in sys.path:
    sys.path.append(_PACK_DIR)

from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS  # noqa: E402

WEB_DIRECTORY = None
__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
