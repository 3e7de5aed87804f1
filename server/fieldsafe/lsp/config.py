"""Typed server options for ``fieldsafe lsp`` and how they are layered.

Why a dataclass with defaults: every editor sends configuration differently (VS Code pulls
``workspace/configuration`` per folder, Neovim answers it from ``settings``, some clients only send
``initializationOptions``). One typed object, built the same way for all of them, keeps the rest of
the server free of ``dict.get`` chains. Invalid values never crash the server: they fall back to the
default and are reported once (the caller shows one ``window/showMessage``).

Layering (later wins): defaults <- ``initializationOptions`` <- ``workspace/configuration`` for the
project's folder (section ``fieldsafe``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

SECTION = "fieldsafe"


@dataclass(frozen=True)
class ServerOptions:
    """Options that change how the server schedules work; the pin itself lives in the project."""

    compile_on_save: bool = True
    compile_debounce_ms: int = 0  # a wait before an idle project's compile; saves during one always coalesce
    upload_unsaved_buffers: bool = False
    offline: bool = False
    api_url: str | None = None  # always None: workspace settings never choose the API URL (see API_URL_IGNORED)
    lint_debounce_ms: int = 150


API_URL_IGNORED = (
    "fieldsafe.apiUrl is ignored: your access token and source files only go to the API URL from the "
    "environment (PARTICLE_API_URL) or the particle-cli profile (`particle login`), never to one named in "
    "editor or workspace settings (a cloned repository's .vscode/settings.json could name any host). "
    "Remove the setting; set PARTICLE_API_URL for the editor to use another cloud or the emulator"
)


# camelCase key (what editors send) -> (field name, accepted type, validator description)
_KEYS: dict[str, tuple[str, type, str]] = {
    "compileOnSave": ("compile_on_save", bool, "true or false"),
    "compileDebounceMs": ("compile_debounce_ms", int, "an integer between 0 and 60000"),
    "uploadUnsavedBuffers": ("upload_unsaved_buffers", bool, "true or false"),
    "offline": ("offline", bool, "true or false"),
    "apiUrl": ("api_url", str, "nothing: it is ignored"),
    "lintDebounceMs": ("lint_debounce_ms", int, "an integer between 0 and 60000"),
}


def _valid(key: str, value: Any) -> bool:
    """Whether one raw value is acceptable for ``key`` (bool is not an int here, on purpose)."""
    _, kind, _ = _KEYS[key]
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 60_000
    return isinstance(value, kind)


def section_of(raw: Any) -> Mapping[str, Any] | None:
    """The ``fieldsafe`` section of a raw value: either ``{"fieldsafe": {...}}`` or the section itself."""
    if not isinstance(raw, Mapping):
        return None
    inner = raw.get(SECTION)
    if isinstance(inner, Mapping):
        return inner
    return raw


def apply_layer(base: ServerOptions, raw: Any, origin: str) -> tuple[ServerOptions, list[str]]:
    """Overlay one raw layer on ``base``; returns the result and human-readable problems.

    Unknown keys are ignored (editors add their own, e.g. ``trace``); a key with an invalid value
    keeps the base value and produces one problem naming the key, the value and what is accepted.
    """
    section = section_of(raw)
    if section is None:
        return base, ([] if raw is None else [f"{origin}: expected an object, got {type(raw).__name__}"])
    changes: dict[str, Any] = {}
    problems: list[str] = []
    for key, value in section.items():
        if key not in _KEYS:
            continue
        if value is None:
            continue  # VS Code sends null for unset settings; keep the lower layer
        if key == "apiUrl":
            problems.append(f"{origin}: {API_URL_IGNORED}")
            continue
        if not _valid(key, value):
            problems.append(
                f"{origin}: fieldsafe.{key} = {value!r} is invalid (expected {_KEYS[key][2]}); "
                f"using {getattr(base, _KEYS[key][0])!r}"
            )
            continue
        changes[_KEYS[key][0]] = value
    return replace(base, **changes), problems


def build_options(init_options: Any, folder_config: Any) -> tuple[ServerOptions, list[str]]:
    """Defaults <- initializationOptions <- workspace/configuration; see the module docstring."""
    options, problems = apply_layer(ServerOptions(), init_options, "initializationOptions")
    options, more = apply_layer(options, folder_config, "workspace/configuration")
    return options, problems + more


def option_names() -> list[str]:
    """The camelCase option names, for documentation and tests."""
    by_field = {v[0]: k for k, v in _KEYS.items()}
    return [by_field[f.name] for f in fields(ServerOptions)]
