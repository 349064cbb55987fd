"""The model-kind registry: every model the pipeline trains is one module here, registered by name.

    from streamguard.kinds import get_kind, kind_names, register
    get_kind("gnn").build(spec)

Every module of this package that defines `KIND = SomeKind()` is registered on import (transformer,
gnn, fusion), in `ModelKind.order`; a new kind is one such module (see docs/ARCHITECTURE.md).
`register(kind)` adds one from elsewhere (a plugin, a test).
"""
from __future__ import annotations

import importlib
import pkgutil
from typing import Any, Mapping

from .. import config
from ..errors import ConfigError
from .base import ModelKind

_REGISTRY: dict[str, ModelKind] = {}


def register(kind: ModelKind) -> ModelKind:
    """Add a kind (re-registering the same name replaces it, so a test can swap one in)."""
    if not getattr(kind, "name", None) or not getattr(kind, "output_dir", None):
        raise ConfigError(f"{type(kind).__name__}: a model kind needs a name and an output_dir")
    _REGISTRY[kind.name] = kind
    ordered = sorted(_REGISTRY.values(), key=lambda k: (k.order, k.name))
    _REGISTRY.clear()
    _REGISTRY.update((k.name, k) for k in ordered)
    return kind


def unregister(name: str) -> None:
    _REGISTRY.pop(name, None)


def get_kind(name: str) -> ModelKind:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown model kind '{name}'; known kinds: {', '.join(_REGISTRY)}") from None


def kind_names() -> tuple[str, ...]:
    """Registered kinds in training order (every kind after its backbones)."""
    return tuple(_REGISTRY)


def registry() -> dict[str, ModelKind]:
    """name -> kind, in registry order (what `config.load_config(..., kinds=registry())` reads sections for)."""
    return dict(_REGISTRY)


def load_config(path="params.yaml", overrides: dict | None = None):
    """params.yaml with a section per registered kind (config.load_config with this registry)."""
    return config.load_config(path, overrides, kinds=registry())


def build_model(spec: Mapping[str, Any]):
    """The model a spec describes (a spec names its kind; specs are saved in every checkpoint)."""
    if not isinstance(spec, Mapping) or "kind" not in spec:
        raise ConfigError(f"model spec without a 'kind': {spec!r:.80}")
    return get_kind(spec["kind"]).build(spec)


def _register_builtins() -> None:
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        if isinstance(getattr(module, "KIND", None), ModelKind):
            register(module.KIND)


_register_builtins()

__all__ = ["ModelKind", "build_model", "get_kind", "kind_names", "load_config", "register", "registry", "unregister"]
