"""Test-only stand-in for ``torchvision`` so a ComfyUI host can start without it.

ComfyUI imports torchvision at start-up (``comfy/sd.py`` -> Cascade code), and transformers/diffusers
import names from it (``transforms``, ``transforms.v2``, ...) at module level once they see it
installed; no CPU build of torchvision exists for the torch used here. Every submodule imports, and
every name in it is a placeholder that raises ImportError when called, so only the host's
Cascade/Cosmos/ACE/WanMove nodes break. The DynaScene pack never uses torchvision. Put
``tests/comfy_host/stubs`` on PYTHONPATH only when starting a host.
"""

import importlib.abc
import importlib.machinery
import sys

from ._missing import module_getattr

__version__ = "0.0.0+stub"
__getattr__ = module_getattr("torchvision")


class _StubSubmodules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Makes ``import torchvision.<anything>`` give an empty package whose names are placeholders."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname.startswith(__name__ + ".") and not fullname.startswith(__name__ + "._"):
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        module.__path__ = []
        module.__getattr__ = module_getattr(module.__name__)


sys.meta_path.append(_StubSubmodules())
from . import transforms  # noqa: E402,F401  (``import torchvision; torchvision.transforms.X`` must resolve)
