"""Pin checks: read the Workbench pin, resolve the target device, run ``compat`` and place the findings.

Wiring only: *what* is wrong (and the fixes) comes from :mod:`fieldsafe.compat`. This module decides
*where* findings are shown: on the ``particle.firmwareVersion`` value in ``.vscode/settings.json``,
with related information pointing at the ``particle.targetDevice`` value (the other side of a
pin/device conflict). When the device state is the last known one (offline), the message says how
old it is.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lsprotocol import types

from fieldsafe import checking, cloud
from fieldsafe.findings import Finding, Severity, Span
from fieldsafe.lsp.diagnostics import Located
from fieldsafe.lsp.documents import current_text, open_text, range_of_edit, range_of_span
from fieldsafe.lsp.projects import DEVICE_KEY, PIN_KEY, PLATFORM_KEY, ProjectState, TargetView
from fieldsafe.project import (
    ProjectSettingsError,
    WorkbenchSettings,
    read_settings_text,
    settings_from_text,
    value_span,
)

if TYPE_CHECKING:
    from fieldsafe.lsp.server import FieldsafeServer

SETTINGS_ERROR = "FS401"
DEVICE_LOOKUP = checking.DEVICE_NOT_FOUND
PRODUCT_KEY = "fieldsafe.targetProduct"
# fleet findings about the product (its listing, its devices) go on fieldsafe.targetProduct; the others
# (what the pin does to the fleet) go on the pin
FLEET_ON_PRODUCT = frozenset({"FS503", "FS504", "FS506", "FS507", "FS508", "FS509"})
TARGET_UNCHECKED = checking.TARGET_UNCHECKED


@dataclass(frozen=True)
class PinRead:
    """The settings text the checks used (buffer or disk) and what it says."""

    text: str | None
    settings: WorkbenchSettings | None
    error: ProjectSettingsError | None


def read_pin(ls: FieldsafeServer, project: ProjectState) -> PinRead:
    """The pin from the open ``settings.json`` buffer when there is one, else from disk.

    The file on disk is always checked the way the CLI reads it (``project.read_settings_text``): one
    behaviour for a settings file that is not UTF-8, too large or not a regular file.
    """
    return parse_pin(open_text(ls.workspace, project.settings_uri), project.settings_path)


async def read_pin_async(ls: FieldsafeServer, project: ProjectState) -> PinRead:
    """:func:`read_pin` with the file read and the parse in a worker thread (never on the event loop)."""
    buffer = open_text(ls.workspace, project.settings_uri)
    return await asyncio.to_thread(parse_pin, buffer, project.settings_path)


def parse_pin(buffer: str | None, path: Path) -> PinRead:
    """Read (disk) and parse (buffer, else disk) the Workbench settings; blocking, thread-safe."""
    try:
        disk = read_settings_text(path)
    except ProjectSettingsError as exc:
        return PinRead(buffer, None, exc)
    text = buffer if buffer is not None else disk
    if text is None:
        return PinRead(None, WorkbenchSettings(None, None, None, path), None)
    try:
        return PinRead(text, settings_from_text(text, path), None)
    except ProjectSettingsError as exc:
        return PinRead(text, None, exc)


async def check_pin(ls: FieldsafeServer, project: ProjectState) -> tuple[TargetView, list[Finding], PinRead]:
    """Run the target and device checks for ``project``; returns the view for status/hover too."""
    read = await read_pin_async(ls, project)
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
    refs = checking.project_targets(settings)
    lookups = {ref: await _lookup(ls, project, ref) for ref in refs}
    report = checking.evaluate(view.pin, view.platform, refs, lookups)
    view.platform_id = report.platform_id
    view.fleet = report.fleets[0] if report.fleets else None
    if report.fleets:  # the target window (FS505): the code's own floor against the fleet's floor
        from fieldsafe.fleetcheck import window_findings
        from fieldsafe.lsp import linting

        floor = linting.code_floor(ls, project, report.platform_id)
        if floor is not None:
            report.findings.extend(window_findings(report, floor))
    view.fleet_error = next((u.reason for u in report.unchecked if u.ref.kind == "fleet"), None)
    for ref, lookup in lookups.items():
        if ref.kind == "device" and ref.name == view.device_name:
            view.device, view.device_age = lookup.raw, lookup.age_seconds
            if lookup.raw is None or lookup.error is not None:  # unchecked, or checked against the last known
                view.device_error = str(lookup.error) if lookup.error else "unknown error"
    findings.extend(report.findings)
    return view, findings, read


async def _lookup(ls: FieldsafeServer, project: ProjectState, ref: checking.TargetRef) -> checking.Lookup:
    """The engine's lookup through the server's memoizing resolvers (off the event loop)."""
    options = project.options
    if ref.kind == "fleet":
        from fieldsafe.lsp import fleets

        return await fleets.lookup(ls, project, ref)
    lookup = await ls.devices.device(ref.name, api_url=options.api_url, offline=options.offline)
    if lookup.error is not None:  # unchecked, or the last known state standing in: say why
        ls.report_failure(lookup.error, f"looking up device '{ref.name}'")
    return lookup


def device_lookup_findings(device: str, error: cloud.CloudError | None) -> list[Finding]:
    """FS403/FS404 for a failed lookup of the pinned device (the engine's constructors)."""
    return checking.lookup_failure_findings(checking.TargetRef("device", device), error)


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
        if finding.code in FLEET_ON_PRODUCT or (
            finding.code == TARGET_UNCHECKED and finding.facts.get("kind") == "fleet"
        ):
            rng = settings_range(ls, project, PRODUCT_KEY, text) or anchor
            placed.append(Located(finding, project.settings_uri, rng))
            continue
        if finding.code in (DEVICE_LOOKUP, TARGET_UNCHECKED):
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
        key = PRODUCT_KEY if finding.code.startswith("FS5") else DEVICE_KEY
        rng = settings_range(ls, project, key, text) or anchor_range(ls, project, text)
        out.append(types.DiagnosticRelatedInformation(types.Location(project.settings_uri, rng), rel.message))
    return out
