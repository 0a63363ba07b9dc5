"""Test-only stand-in for ``torchvision`` so a ComfyUI host can start without it.

ComfyUI imports torchvision at start-up (``comfy/sd.py`` -> Cascade code), and no CPU build of
torchvision exists for the torch used here. This package lets those imports succeed; any actual use
raises ImportError, so only the host's Cascade/Cosmos/ACE/WanMove nodes break. The DynaScene pack
never imports torchvision. Put ``tests/comfy_host/stubs`` on PYTHONPATH only when starting a host.
"""

from . import transforms  # noqa: F401  (``import torchvision; torchvision.transforms.X`` must resolve)

__version__ = "0.0.0+stub"


def __getattr__(name):
    if name.startswith("__"):  # import machinery probes (__path__, ...) must see a plain module
        raise AttributeError(name)
    raise ImportError(f"torchvision.{name} is not available: this is the test-only torchvision stub")
