"""A module reference that imports on first attribute access.

Why: ``fieldsafe lsp`` must answer ``initialize`` about as fast as a bare pygls server (issue 12 goal:
at most 1.1x), yet its handlers need the release tables, the cloud client and the checks. Wiring code
says ``compiling = lazy_module("fieldsafe.lsp.compiling")`` and calls ``compiling.run_compile(...)`` as
before; the import happens when the first such call runs, not at start-up.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class LazyModule:
    """Stands in for a module until an attribute is used; then it is the module (``sys.modules`` caches it)."""

    __slots__ = ("_module", "_name")

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attr: str) -> Any:
        module = self._module
        if module is None:
            module = self._module = importlib.import_module(self._name)
        return getattr(module, attr)

    def __repr__(self) -> str:
        state = "loaded" if self._module is not None else "not loaded yet"
        return f"<lazy module {self._name} ({state})>"


def lazy_module(name: str) -> Any:
    """``name`` as a :class:`LazyModule` (typed ``Any`` so call sites read like plain module use)."""
    return LazyModule(name)
