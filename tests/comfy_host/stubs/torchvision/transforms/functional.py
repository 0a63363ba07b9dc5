"""Stub of ``torchvision.transforms.functional``: importable, every attribute raises ImportError."""


def __getattr__(name):
    if name.startswith("__"):  # import machinery probes (__path__, ...) must see a plain module
        raise AttributeError(name)
    raise ImportError(f"torchvision.transforms.functional.{name} is not available: test-only torchvision stub")
