"""Stub of ``torchvision.transforms``: importable, every attribute raises ImportError."""

from . import functional  # noqa: F401


def __getattr__(name):
    if name.startswith("__"):  # import machinery probes (__path__, ...) must see a plain module
        raise AttributeError(name)
    raise ImportError(f"torchvision.transforms.{name} is not available: test-only torchvision stub")
