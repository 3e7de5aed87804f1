"""Pin checks: read the Workbench pin, resolve the target device, run ``compat`` and place the findings.

Wiring only: *what* is wrong (and the fixes) comes from :mod:`fieldsafe.compat`. This module decides
*where* findings are shown: on the ``particle.firmwareVersion`` value in ``.vscode/settings.json``,
with related information pointing at the ``particle.targetDevice`` value (the other side of a
pin/device conflict). When the device state is the last known one (offline), the message says how
old it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from lsprotocol import types

from fieldsafe import cloud, compat, platforms
from fieldsafe.findings import Finding, Severity, Span
from fieldsafe.lsp.diagnostics import Located
from fieldsafe.lsp.documents import current_text, open_text, range_of_edit, range_of_span, read_disk
from fieldsafe.lsp.projects import DEVICE_KEY, PIN_KEY, PLATFORM_KEY, ProjectState, TargetView
from fieldsafe.project import ProjectSettingsError, WorkbenchSettings, settings_from_text, value_span

if TYPE_CHECKING:
    from fieldsafe.lsp.server import FieldsafeServer

SETTINGS_ERROR = "FS401"
DEVICE_LOOKUP = "FS403"


@dataclass(frozen=True)
class PinRead:
    """The settings text the checks used (buffer or disk) and what it says."""

    text: str | None
    settings: WorkbenchSettings | None
    error: ProjectSettingsError | None


def read_pin(ls: FieldsafeServer, project: ProjectState) -> PinRead:
    """The pin from the open ``settings.json`` buffer when there is one, else from disk."""
    text = open_text(ls.workspace, project.settings_uri)
    if text is None:
        text = read_disk(project.settings_path)
    if text is None:
        return PinRead(None, WorkbenchSettings(None, None, None, project.settings_path), None)
    try:
        return PinRead(text, settings_from_text(text, project.settings_path), None)
    except ProjectSettingsError as exc:
        return PinRead(text, None, exc)


async def check_pin(ls: FieldsafeServer, project: ProjectState) -> tuple[TargetView, list[Finding], PinRead]:
    """Run the target and device checks for ``project``; returns the view for status/hover too."""
    read = read_pin(ls, project)
    view = TargetView()
    findings: list[Finding] = []
    if read.error is not None:
        err = read.error
        view.settings_error = str(err)
        findings.append(
            Finding(
                SETTINGS_ERROR,
                Severity.ERROR,
                str(err),
                span=Span(".vscode/settings.json", err.line or 1, err.column or 1),
            )
        )
        return view, findings, read
    settings = read.settings
    assert settings is not None
    view.pin, view.platform, view.device_name = (
        settings.firmware_version,
        settings.target_platform,
        settings.target_device,
    )
    found = platforms.find(view.platform) if view.platform else None
    view.platform_id = found.id if found else None
    if view.pin:
        findings.extend(compat.check_target(view.pin, view.platform))
    if view.device_name:
        findings.extend(await _device_findings(ls, project, view))
    return view, findings, read


async def _device_findings(ls: FieldsafeServer, project: ProjectState, view: TargetView) -> list[Finding]:
    assert view.device_name is not None
    options = project.options
    lookup = await ls.devices.device(view.device_name, api_url=options.api_url, offline=options.offline)
    if lookup.raw is None:
        view.device_error = str(lookup.error) if lookup.error else "unknown error"
        if lookup.error is not None:
            ls.report_failure(lookup.error, f"looking up device '{view.device_name}'")
        return device_lookup_findings(view.device_name, lookup.error)
    view.device, view.device_age = lookup.raw, lookup.age_seconds
    state = compat.device_state_from_cloud(lookup.raw, lookup.age_seconds, view.device_name)
    if view.platform_id is None and view.platform is None:
        view.platform_id = state.platform_id
    if not view.pin or view.platform_id is None:
        return []
    needs = compat.BuildNeeds(platform_id=view.platform_id, release=view.pin, source="pin")
    return compat.check_build_against_device(needs, state)


def device_lookup_findings(device: str, error: cloud.CloudError | None) -> list[Finding]:
    """FS403 when the cloud says the pinned device does not exist (or is not the user's).

    Why a diagnostic and not only a message: a typo in ``particle.targetDevice`` silently disables
    the device check, so the user must see it where it is fixed. Transient failures (offline, 5xx,
    rate limit) are not the setting's fault: they go to the status and the message log only.
    """
    if not isinstance(error, cloud.NotFound | cloud.Forbidden):
        return []
    return [
        Finding(
            DEVICE_LOOKUP,
            Severity.WARNING,
            f'"particle.targetDevice": {error}. This build is not checked against any device; set the key to '
            "the name or id of one of your devices (fieldsafe.server.listDevices lists them)",
            facts={"device": device, "status": error.status},
        )
    ]


def settings_range(ls: FieldsafeServer, project: ProjectState, key: str, text: str | None) -> types.Range | None:
    """Range of ``key``'s value in the settings text (None when absent or unparseable)."""
    if text is None:
        return None
    try:
        span = value_span(text, key)
    except ProjectSettingsError:
        return None
    return None if span is None else range_of_edit(ls.workspace, text, span)


def anchor_range(ls: FieldsafeServer, project: ProjectState, text: str | None) -> types.Range:
    """Where pin findings go: the pin value, else the platform/device value, else the file start."""
    for key in (PIN_KEY, PLATFORM_KEY, DEVICE_KEY):
        rng = settings_range(ls, project, key, text)
        if rng is not None:
            return rng
    return types.Range(types.Position(0, 0), types.Position(0, 0))


def place_on_pin(ls: FieldsafeServer, project: ProjectState, findings: list[Finding]) -> list[Located]:
    """Put device/pin findings on the pin value (file-bound findings stay where they point)."""
    text = current_text(ls.workspace, project.settings_uri)
    anchor = anchor_range(ls, project, text)
    placed = []
    for finding in findings:
        if finding.span is not None and finding.span.file and finding.span.file != ".vscode/settings.json":
            continue
        if finding.code == DEVICE_LOOKUP:
            rng = settings_range(ls, project, DEVICE_KEY, text) or anchor
            placed.append(Located(finding, project.settings_uri, rng))
            continue
        if finding.code == SETTINGS_ERROR and finding.span is not None:
            placed.append(
                Located(finding, project.settings_uri, range_of_span(ls.workspace, project.settings_uri, finding.span))
            )
            continue
        placed.append(Located(finding, project.settings_uri, anchor))
    return placed


def related_locations(
    ls: FieldsafeServer, project: ProjectState, finding: Finding
) -> list[types.DiagnosticRelatedInformation]:
    """Related information: spans become locations; span-less ones point at the device setting."""
    text = current_text(ls.workspace, project.settings_uri)
    out = []
    for rel in finding.related:
        if rel.span is not None and rel.span.file:
            uri = project.file_uri(rel.span.file)
            out.append(
                types.DiagnosticRelatedInformation(
                    types.Location(uri, range_of_span(ls.workspace, uri, rel.span)), rel.message
                )
            )
            continue
        rng = settings_range(ls, project, DEVICE_KEY, text) or anchor_range(ls, project, text)
        out.append(types.DiagnosticRelatedInformation(types.Location(project.settings_uri, rng), rel.message))
    return out
