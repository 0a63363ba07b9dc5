"""Placeholder returned for every torchvision name: importable and usable as a dict key, raises when used."""


class Missing:
    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attribute):
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        return Missing(f"{self._name}.{attribute}")

    def __call__(self, *args, **kwargs):
        raise ImportError(f"{self._name} is not available: this is the test-only torchvision stub")

    def __repr__(self) -> str:
        return f"<torchvision stub: {self._name}>"


def module_getattr(module: str):
    """A module ``__getattr__`` handing out :class:`Missing` placeholders (dunder probes stay AttributeError)."""
    def __getattr__(name):
        if name.startswith("__"):  # import machinery probes (__path__, ...) must see a plain module
            raise AttributeError(name)
        return Missing(f"{module}.{name}")
    return __getattr__
