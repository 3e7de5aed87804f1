"""``workspace/executeCommand`` handlers (ids and shapes are a contract; see docs/lsp.md).

Each command takes one JSON object argument (or none). Results are plain JSON. Errors a user can act
on (unknown project, cloud failures) are raised as JSON-RPC errors with a readable message.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from lsprotocol import types
from pygls.exceptions import JsonRpcInternalError, JsonRpcInvalidParams

from fieldsafe import compat, platforms
from fieldsafe.cloud import CloudError
from fieldsafe.lsp.actions import settings_edit
from fieldsafe.lsp.projects import DEVICE_KEY, PIN_KEY, PLATFORM_KEY, ProjectState, path_of
from fieldsafe.project import ProjectSettingsError, write_setting
from fieldsafe.versions import DeviceOSVersion, catalog

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


def _project(ls: FieldsafeServer, arg: dict[str, Any], required: bool = True) -> ProjectState | None:
    uri = arg.get("projectUri")
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


def device_row(raw: dict[str, Any]) -> dict[str, Any]:
    """One ``listDevices`` row (camelCase, editor-friendly)."""
    pid = raw.get("platform_id")
    found = platforms.find(pid) if isinstance(pid, int) else None
    product = raw.get("product_id")
    return {
        "id": raw.get("id"),
        "name": raw.get("name"),
        "platform": found.name if found else None,
        "platformId": pid,
        "deviceOs": raw.get("system_firmware_version"),
        "cellular": raw.get("cellular"),
        "online": raw.get("online", raw.get("connected")),
        "lastHeard": raw.get("last_heard"),
        "product": product if product is not None and product != pid else None,
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
    except CloudError as exc:
        ls.report_failure(exc, "listing devices")
        raise JsonRpcInternalError(str(exc)) from None
    return [device_row(d) for d in devices if isinstance(d, dict)]


async def list_releases(ls: FieldsafeServer, *args: Any) -> list[dict[str, Any]]:
    """fieldsafe.server.listReleases {projectUri, platform?}: releases annotated against the target device."""
    arg = _arg(args)
    project = _project(ls, arg, required=False)
    platform_id = None
    if arg.get("platform") is not None:
        found = platforms.find(arg["platform"])
        if found is None:
            raise JsonRpcInvalidParams(f"unknown platform {arg['platform']!r}")
        platform_id = found.id
    elif project is not None:
        platform_id = project.target.platform_id
    device = project.target.device if project else None
    state = (
        compat.device_state_from_cloud(device, project.target.device_age, project.target.device_name or "device")
        if project and device
        else None
    )
    device_os = DeviceOSVersion.try_parse(state.device_os) if state and state.device_os else None
    rows = []
    for release in reversed(catalog().releases(platform_id)):
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
    changes = [
        (key, str(arg[name]))
        for name, key in (("version", PIN_KEY), ("platform", PLATFORM_KEY), ("device", DEVICE_KEY))
        if arg.get(name)
    ]
    if not changes:
        raise JsonRpcInvalidParams("setTarget needs at least one of version, platform, device")
    # The buffer the server sees is edited through the client so it stays in sync (and undoable);
    # a file the editor has not opened (or a client without applyEdit) is written atomically on disk.
    if ls.supports_apply_edit() and project.settings_uri in ls.workspace.text_documents:
        applied = True
        for key, value in changes:  # one request per key: each edit is computed on the text the last one left
            edit = settings_edit(ls, project, key, value)
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
        write_setting(project.root, key, value)
    except ProjectSettingsError as exc:
        raise JsonRpcInvalidParams(str(exc)) from None


async def inspect_binary(ls: FieldsafeServer, *args: Any) -> dict[str, Any]:
    """fieldsafe.server.inspectBinary {path}: ``fieldsafe inspect`` as {text, json}."""
    from fieldsafe.cli.inspect import format_report, inspect_file

    arg = _arg(args)
    raw = arg.get("path") or arg.get("uri")
    if not raw:
        raise JsonRpcInvalidParams("inspectBinary needs {path}")
    path = path_of(raw) if str(raw).startswith("file:") else None
    target = str(path) if path else str(raw)
    report = await asyncio.to_thread(inspect_file, target)
    return {"text": format_report(report), "json": report}


async def refresh_devices(ls: FieldsafeServer, *args: Any) -> dict[str, Any]:
    """fieldsafe.server.refreshDevices: forget cached device answers and re-check every project."""
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
