"""Language-server features that plug in beside the core handlers (esbonio-style registration).

Why this package: the flash, update and fleet features grew in parallel; wiring each into
``lsp/server.py`` would make that module a merge point and couple every feature to the server class.
Instead a feature is a :class:`LanguageFeature` in its own module here. It sees the server only
through :class:`FeatureHost` (the small interface below, implemented by ``FieldsafeServer``), declares
its ``workspace/executeCommand`` ids in :meth:`LanguageFeature.commands`, and gets lifecycle hooks.

Adding a feature: create ``fieldsafe/lsp/features/<name>.py`` defining ``setup(host) -> LanguageFeature``.
:func:`load_features` finds every such module (no central list to edit); the server registers the
commands (pygls advertises them in ``executeCommandProvider``) and calls the hooks. A feature module
imports this package and the domain modules, never ``fieldsafe.lsp.server``.

Command handlers are ``async def handler(*args) -> JSON``: one object argument (see :func:`object_arg`),
errors a user can act on raised as ``JsonRpcInvalidParams`` / ``JsonRpcInternalError``.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from pygls.exceptions import JsonRpcInvalidParams

from fieldsafe.lsp.features.progress import FeatureProgress

if TYPE_CHECKING:
    import asyncio

    from fieldsafe.cloud import CloudError, ParticleCloud
    from fieldsafe.lsp.devices import DeviceResolver
    from fieldsafe.lsp.projects import ProjectRegistry, ProjectState

log = logging.getLogger(__name__)

CommandHandler = Callable[..., Awaitable[Any]]

__all__ = [
    "CommandHandler",
    "FeatureHost",
    "FeatureProgress",
    "LanguageFeature",
    "load_features",
    "object_arg",
]


class FeatureHost(Protocol):
    """What a feature may use of the server (``FieldsafeServer`` implements it).

    Kept small on purpose: projects and their pins, one cloud client per project, the cached device
    resolver, progress, messages, background tasks. Anything else a feature needs belongs in the domain.
    """

    registry: ProjectRegistry
    devices: DeviceResolver

    def resolve_project(self, arg: Mapping[str, Any], *, required: bool = True) -> ProjectState | None:
        """The project named by ``arg["projectUri"]`` (the only one when omitted); InvalidParams otherwise."""

    def cloud_for(self, project: ProjectState | None) -> ParticleCloud:
        """The cloud client for a project's options (API URL override); raises ``ConfigError``."""

    async def refresh_pin(self, project: ProjectState) -> None:
        """Re-check the project's pin against a freshly read device (after a flash or an update)."""

    def report_failure(self, exc: CloudError, doing: str) -> None:
        """One showMessage per failure kind, every occurrence in the log."""

    def show_message(self, text: str, *, level: str = "info") -> None:
        """``window/showMessage`` (level: error | warning | info)."""

    def log_message(self, text: str, *, level: str = "info") -> None:
        """``window/logMessage``."""

    def notify(self, method: str, payload: Any) -> None:
        """A custom notification (e.g. ``fieldsafe/flash``) to every client that listens."""

    async def ask(self, question: str, choices: list[str]) -> str | None:
        """``window/showMessageRequest``: the chosen title, or None (dismissed, or the client cannot ask)."""

    def progress(self, title: str, *, cancellable: bool = True) -> FeatureProgress:
        """A fresh ``$/progress`` reporter (does nothing when the client cannot show progress)."""

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run in the background; cancelled at ``shutdown`` like the server's own work."""


class LanguageFeature:
    """Base class: override what you need; the default hooks do nothing."""

    name = "feature"

    def __init__(self, host: FeatureHost) -> None:
        self.host = host
        self.log = logging.getLogger(f"fieldsafe.lsp.features.{self.name}")

    def commands(self) -> Mapping[str, CommandHandler]:
        """``workspace/executeCommand`` id -> async handler taking the command's arguments."""
        return {}

    async def initialized(self) -> None:
        """After ``initialized`` (projects found, options pulled)."""

    async def shutdown(self) -> None:
        """At ``shutdown``, before background tasks are cancelled: stop what the feature runs itself."""


def feature_modules() -> list[str]:
    """Every module of this package that defines ``setup`` (sorted: registration order is stable)."""
    names = []
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_") and info.name != "progress":
            names.append(f"{__name__}.{info.name}")
    return sorted(names)


def load_features(host: FeatureHost, modules: list[str] | None = None) -> list[LanguageFeature]:
    """Import each feature module and call its ``setup(host)``; duplicate command ids are a bug."""
    features: list[LanguageFeature] = []
    seen: dict[str, str] = {}
    for name in feature_modules() if modules is None else modules:
        module = importlib.import_module(name)
        setup = getattr(module, "setup", None)
        if setup is None:
            continue
        feature = setup(host)
        if feature is None:
            continue
        for command in feature.commands():
            if command in seen:
                raise RuntimeError(f"command {command} is registered by both {seen[command]} and {name}")
            seen[command] = name
        features.append(feature)
    return features


def object_arg(args: tuple[Any, ...]) -> dict[str, Any]:
    """The single object argument of a command (``{}`` when none was sent)."""
    if not args or args[0] is None:
        return {}
    if not isinstance(args[0], dict):
        raise JsonRpcInvalidParams(f"expected one object argument, got {type(args[0]).__name__}")
    return args[0]
