"""``workspace/executeCommand`` handlers (ids and shapes are a contract; see docs/lsp.md).

Each command takes one JSON object argument (or none). Results are plain JSON. Errors a user can act
on (unknown project, cloud failures) are raised as JSON-RPC errors with a readable message.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsprotocol import types
from pygls.exceptions import JsonRpcInternalError, JsonRpcInvalidParams

from fieldsafe._lazy import lazy_module
from fieldsafe.lsp.projects import DEVICE_KEY, PIN_KEY, PLATFORM_KEY, ProjectState, path_of

# loaded when a command first runs, not at server start-up (see fieldsafe._lazy)
compat = lazy_module("fieldsafe.compat")
platforms = lazy_module("fieldsafe.platforms")
cloud = lazy_module("fieldsafe.cloud")
actions = lazy_module("fieldsafe.lsp.actions")
projectmod = lazy_module("fieldsafe.project")
versions = lazy_module("fieldsafe.versions")

if TYPE_CHECKING:
    from fieldsafe.lsp.server import FieldsafeServer

COMPILE = "fieldsafe.server.compile"
LIST_DEVICES = "fieldsafe.server.listDevices"
LIST_RELEASES = "fieldsafe.server.listReleases"
SET_TARGET = "fieldsafe.server.setTarget"
INSPECT_BINARY = "fieldsafe.server.inspectBinary"
REFRESH_DEVICES = "fieldsafe.server.refreshDevices"
ALL = (COMPILE, LIST_DEVICES, LIST_RELEASES, SET_TARGET, INSPECT_BINARY, REFRESH_DEVICES)


def _arg(args: tuple[Any, ...]) -> dict[str, Any]:
    """The single object argument (``{}`` when none was sent)."""
    if not args or args[0] is None:
        return {}
    if not isinstance(args[0], dict):
        raise JsonRpcInvalidParams(f"expected one object argument, got {type(args[0]).__name__}")
    return args[0]


_VERSION_TEXT = re.compile(r"[0-9A-Za-z.^~*+\-]{1,40}")  # 2.3.1, 5.0.0-rc.1, latest-lts, ^5.3.0, 4.x
_URI_SCHEME = re.compile(r"[A-Za-z][\w+.\-]+:")  # file:, untitled: ... (not a Windows drive letter)
_DEVICE_TEXT = re.compile(r"[\w.\-]{1,64}")  # device names (letters, digits, _ -) and 24-hex ids


def _text(arg: dict[str, Any], name: str, pattern: re.Pattern[str], what: str) -> str | None:
    """An optional string argument, checked before it reaches settings.json (never str() of an object)."""
    value = arg.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not pattern.fullmatch(value.strip()):
        raise JsonRpcInvalidParams(f"{name}: expected {what}, got {value!r}")
    return value.strip()


def _platform_arg(value: Any) -> Any:
    """A platform name or id from a command argument; unknown ones name the known platforms."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise JsonRpcInvalidParams(f"platform: expected a platform name or id such as 'boron', got {value!r}")
    try:
        return platforms.get(value)
    except KeyError as exc:
        raise JsonRpcInvalidParams(f"platform: {exc.args[0] if exc.args else exc}") from None


def _project(ls: FieldsafeServer, arg: dict[str, Any], required: bool = True) -> ProjectState | None:
    uri = arg.get("projectUri")
    if uri is not None and not isinstance(uri, str):
        raise JsonRpcInvalidParams(f"projectUri: expected a file: URI string, got {uri!r}")
    if not uri:
        if required:
            projects = ls.registry.all()
            if len(projects) == 1:
                return projects[0]
            raise JsonRpcInvalidParams(f"projectUri is required (the workspace has {len(projects)} projects)")
        return None
    project = ls.project_for(str(uri))
    if project is None:
        raise JsonRpcInvalidParams(f"no Particle project at {uri} (expected a folder with project.properties)")
    return project


def project_arg(ls: FieldsafeServer, arg: dict[str, Any], *, required: bool = True) -> ProjectState | None:
    """The project a command argument names (public for the features' host)."""
    return _project(ls, arg, required)


def device_row(raw: dict[str, Any]) -> dict[str, Any]:
    """One ``listDevices`` row (camelCase, editor-friendly)."""
    state = compat.device_state_from_cloud(raw)
    found = platforms.find(state.platform_id)
    return {
        "id": state.device_id,
        "name": raw.get("name"),
        "platform": found.name if found else None,
        "platformId": raw.get("platform_id"),
        "deviceOs": state.device_os,
        "cellular": state.cellular,
        "online": state.online,
        "lastHeard": state.last_heard,
        "product": state.product,
    }


async def compile_now(ls: FieldsafeServer, *args: Any) -> dict[str, Any]:
    """fieldsafe.server.compile {projectUri}: compile now (supersedes anything in flight)."""
    project = _project(ls, _arg(args))
    assert project is not None
    gen = ls.schedule_compile(project, immediate=True)
    return {"projectUri": project.uri, "generation": gen}


async def list_devices(ls: FieldsafeServer, *args: Any) -> list[dict[str, Any]]:
    """fieldsafe.server.listDevices {projectUri?}: the account's devices (cached copy when offline)."""
    project = _project(ls, _arg(args), required=False)
    options = project.options if project else (ls.registry.all()[0].options if ls.registry.all() else None)
    try:
        devices, _age = await ls.devices.devices(
            api_url=options.api_url if options else None, offline=options.offline if options else False
        )
    except cloud.CloudError as exc:
        ls.report_failure(exc, "listing devices")
        raise JsonRpcInternalError(str(exc)) from None
    return [device_row(d) for d in devices if isinstance(d, dict)]


async def list_releases(ls: FieldsafeServer, *args: Any) -> list[dict[str, Any]]:
    """fieldsafe.server.listReleases {projectUri, platform?}: releases annotated against the target device."""
    arg = _arg(args)
    project = _project(ls, arg, required=False)
    platform_id = None
    if arg.get("platform") is not None:
        platform_id = _platform_arg(arg["platform"]).id
    elif project is not None:
        platform_id = project.target.platform_id
    device = project.target.device if project else None
    state = (
        compat.device_state_from_cloud(device, project.target.device_age, project.target.device_name or "device")
        if project and device
        else None
    )
    device_os = versions.DeviceOSVersion.try_parse(state.device_os) if state and state.device_os else None
    rows = []
    for release in reversed(versions.catalog().releases(platform_id)):
        needs_update = None
        if state is not None and state.platform_id == (platform_id or state.platform_id):
            needs = compat.BuildNeeds(platform_id=state.platform_id, release=str(release.version))
            needs_update = any(f.code == compat.SAFE_MODE for f in compat.check_build_against_device(needs, state))
        rows.append(
            {
                "version": str(release.version),
                "lts": release.version.lts,
                "prerelease": release.version.is_prerelease,
                "moduleVersion": release.module_version,
                "deviceRuns": device_os is not None and device_os == release.version,
                "needsDeviceUpdate": needs_update,
            }
        )
    return rows


async def set_target(ls: FieldsafeServer, *args: Any) -> dict[str, Any]:
    """fieldsafe.server.setTarget {projectUri, version?, device?, platform?}: edit the Workbench keys."""
    arg = _arg(args)
    project = _project(ls, arg)
    assert project is not None
    version = _text(arg, "version", _VERSION_TEXT, "a Device OS release such as '2.3.1'")
    if (
        version
        and versions.DeviceOSVersion.try_parse(version) is not None
        and versions.catalog().release(version) is None
    ):
        near = ", ".join(str(r.version) for r in versions.catalog().nearest(version, None))
        raise JsonRpcInvalidParams(f"version: unknown Device OS release {version!r} (nearest: {near})")
    platform = _platform_arg(arg["platform"]).name if arg.get("platform") not in (None, "") else None
    device = _text(arg, "device", _DEVICE_TEXT, "a device name or id")
    changes = [(key, v) for key, v in ((PIN_KEY, version), (PLATFORM_KEY, platform), (DEVICE_KEY, device)) if v]
    if not changes:
        raise JsonRpcInvalidParams("setTarget needs at least one of version, platform, device")
    # The buffer the server sees is edited through the client so it stays in sync (and undoable);
    # a file the editor has not opened (or a client without applyEdit) is written atomically on disk.
    if ls.supports_apply_edit() and project.settings_uri in ls.workspace.text_documents:
        applied = True
        for key, value in changes:  # one request per key: each edit is computed on the text the last one left
            edit = actions.settings_edit(ls, project, key, value)
            if edit is None:
                raise JsonRpcInvalidParams(f"{project.settings_path}: cannot be parsed; fix it first")
            result = await ls.workspace_apply_edit_async(
                types.ApplyWorkspaceEditParams(edit=edit, label=f"fieldsafe: set {key}")
            )
            applied = applied and bool(result.applied)
        via = "workspace/applyEdit"
    else:
        for key, value in changes:
            _write(project, key, value)
        applied, via = True, "file"
    await ls.refresh_pin(project, recompile_if_changed=True)
    return {"applied": applied, "via": via, "changes": {k: v for k, v in changes}}


def _write(project: ProjectState, key: str, value: str) -> None:
    try:
        projectmod.write_setting(project.root, key, value)
    except projectmod.ProjectSettingsError as exc:
        raise JsonRpcInvalidParams(str(exc)) from None


async def inspect_binary(ls: FieldsafeServer, *args: Any) -> dict[str, Any]:
    """fieldsafe.server.inspectBinary {path}: ``fieldsafe inspect`` as {text, json}."""
    from fieldsafe.inspection import format_report, inspect_file

    arg = _arg(args)
    raw = arg.get("path") or arg.get("uri")
    if not raw or not isinstance(raw, str):
        raise JsonRpcInvalidParams(f"inspectBinary needs {{path}}: a file path or file: URI, got {raw!r}")
    path = path_of(raw) if _URI_SCHEME.match(raw) else Path(raw)
    if path is None:
        raise JsonRpcInvalidParams(f"inspectBinary: {raw} is not a file on disk (save it first)")
    if not path.is_file():
        raise JsonRpcInvalidParams(f"inspectBinary: no such file: {path}")
    target = str(path)
    report = await asyncio.to_thread(inspect_file, target)
    return {"text": format_report(report), "json": report}


async def refresh_devices(ls: FieldsafeServer, *args: Any) -> dict[str, Any]:
    """fieldsafe.server.refreshDevices: forget cached device answers and re-check every project."""
    _arg(args)  # no argument is taken, but a non-object one is a caller bug worth saying
    ls.devices.invalidate()
    projects = ls.registry.all()
    await asyncio.gather(*(ls.refresh_pin(p) for p in projects))
    return {"projects": [p.uri for p in projects]}


TABLE = (
    (COMPILE, compile_now),
    (LIST_DEVICES, list_devices),
    (LIST_RELEASES, list_releases),
    (SET_TARGET, set_target),
    (INSPECT_BINARY, inspect_binary),
    (REFRESH_DEVICES, refresh_devices),
)
"""Command id -> handler; ``server.py`` registers them (pygls advertises them in executeCommandProvider)."""
