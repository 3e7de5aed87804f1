"""What a module binary is and which Device OS it needs: the report behind ``fieldsafe inspect``.

Why in the engine and not in ``cli/inspect.py``: the CLI prints it and the language server's
``fieldsafe.server.inspectBinary`` command returns it (text and JSON); a face never imports another face,
so both format what this module computes (the JSON shape is documented in docs/inspect.md).

Import cost matters (``fieldsafe inspect`` is benchmarked against particle-cli): only the parser is
imported at module load; the release catalog and platform table load when the first file needs them.
"""

from __future__ import annotations

from typing import Any

from fieldsafe.modules import (
    FUNCTION_SYSTEM_PART,
    ModuleInfo,
    ModuleParseError,
    parse_file,
)

# How a module function reads in a sentence ("depends on <noun> <index> at version <v>").
_FUNCTION_NOUNS = {
    0: "unknown module",
    1: "reserved module",
    2: "bootloader",
    3: "monolithic firmware",
    4: "system module",
    5: "application module",
    6: "settings module",
    7: "network coprocessor (NCP) module",
    8: "radio stack module",
    9: "asset module",
}


# ------------------------------------------------------------------------------- report (JSON shape)


def inspect_file(path: str) -> dict[str, Any]:
    """The JSON object for one file (documented in docs/inspect.md); never raises for bad files.

    Also used by the language server's ``fieldsafe.server.inspectBinary`` command, so the shape is a
    contract: keys are always present, with null/empty values when the file could not be parsed.
    """
    try:
        info = parse_file(path)
    except ModuleParseError as exc:
        return _error_report(path, exc.reason)
    return _module_report(path, info)


def _error_report(path: str, reason: str) -> dict[str, Any]:
    return {
        "file": path,
        "ok": False,
        "error": reason,
        "crc": None,
        "sha256_ok": None,
        "uuid": None,
        "sha256_actual": None,
        "file_size": None,
        "prefix_offset": None,
        "prefix_size": None,
        "start_address": None,
        "end_address": None,
        "flags": None,
        "flag_names": [],
        "platform_id": None,
        "platform": None,
        "module_function": None,
        "function_name": None,
        "module_index": None,
        "module_version": None,
        "device_os": None,
        "dependencies": [],
        "product_id": None,
        "product_version": None,
        "suffix_size": None,
        "extensions": [],
        "notes": [],
    }


def _module_report(path: str, info: ModuleInfo) -> dict[str, Any]:
    from fieldsafe.platforms import find

    platform = find(info.platform_id)
    error = None
    if not info.crc_ok:
        error = f"CRC-32 mismatch: stored {info.crc_stored:08x}, computed {info.crc_actual:08x}"
    module_os = None
    if info.module_function == FUNCTION_SYSTEM_PART:
        module_os = _releases(info.module_version, info.platform_id)
    return {
        "file": path,
        "ok": info.crc_ok,
        "error": error,
        "crc": {"ok": info.crc_ok, "stored": f"{info.crc_stored:08x}", "actual": f"{info.crc_actual:08x}"},
        "sha256_ok": info.sha256_ok,
        "uuid": info.uuid,
        "sha256_actual": info.sha256_actual,
        "file_size": info.file_size,
        "prefix_offset": info.prefix_offset,
        "prefix_size": info.prefix_size,
        "start_address": info.start_address,
        "end_address": info.end_address,
        "flags": info.flags,
        "flag_names": list(info.flag_names),
        "platform_id": info.platform_id,
        "platform": platform.name if platform else None,
        "module_function": info.module_function,
        "function_name": info.function_name,
        "module_index": info.module_index,
        "module_version": info.module_version,
        "device_os": module_os,
        "dependencies": [
            {
                "function": d.function,
                "function_name": d.function_name,
                "index": d.index,
                "version": d.version,
                "device_os": _releases(d.version, info.platform_id) if d.function == FUNCTION_SYSTEM_PART else None,
            }
            for d in info.dependencies
        ],
        "product_id": info.product_id,
        "product_version": info.product_version,
        "suffix_size": info.suffix_size,
        "extensions": [
            {"where": e.where, "type": e.type, "name": e.name, "length": e.length, "fields": e.fields()}
            for e in info.extensions
        ],
        "notes": list(info.notes),
    }


def _releases(module_version: int, platform_id: int) -> list[str]:
    """Every release whose system module version is this one on the platform: GA first, then prereleases."""
    from fieldsafe.versions import catalog

    return [str(r.version) for r in catalog().releases_for_module(module_version, platform_id)]


# ------------------------------------------------------------------------------- human text


def format_report(report: dict[str, Any]) -> str:
    """``particle binary inspect``'s facts, one indented line each, with versions said as Device OS."""
    from fieldsafe.platforms import find

    lines = [report["file"]]
    if report["crc"] is None:
        lines.append(f" Could not parse: {report['error']}")
        return "\n".join(lines)
    crc = report["crc"]
    if crc["ok"]:
        lines.append(f" CRC is ok ({crc['actual']})")
    else:
        lines.append(f" CRC failed (should be {crc['stored']} but is {crc['actual']})")
    lines.append(_platform_line(report))
    lines.append(_module_line(report))
    lines.append(f" It has a UUID of {report['uuid']}")
    if not report["sha256_ok"]:
        lines.append(f" The UUID (SHA-256) does not match the contents, which hash to {report['sha256_actual']}")
    lines.append(_product_line(report))
    for n, dep in enumerate(report["dependencies"]):
        lead = "It depends on" if n == 0 else "It also depends on"
        ref = _module_ref(dep["function"], dep["index"])
        if report["platform_id"] == 10 and dep["function"] == 4:  # Electron: indexes and file names differ
            ref += f" (the file {find(10).system_part_file(dep['index'])})"
        lines.append(f" {lead} {ref} at version {dep['version']}{_os_phrase(dep['device_os'])}")
    for ext in report["extensions"]:
        if ext["name"] == "asset_dependency":
            f = ext["fields"]
            lines.append(f" It depends on asset {f.get('name')} (hash {f.get('hash')})")
    lines.append(_layout_line(report))
    if report["flags"]:
        lines.append(f" Flags: 0x{report['flags']:02x} ({', '.join(report['flag_names'])})")
    exts = [e for e in report["extensions"] if e["name"] != "end"]
    if exts:
        listed = ", ".join(f"{e['where']} {e['name']} ({e['length']} bytes)" for e in exts)
        lines.append(f" Extensions: {listed}")
    lines.extend(f" Note: {note}" for note in report["notes"])
    return "\n".join(lines)


def _module_ref(function: int, index: int) -> str:
    """``system module 2``, ``bootloader 0``; unknown function codes are named by number."""
    noun = _FUNCTION_NOUNS.get(function)
    return f"{noun} {index}" if noun else f"a module of unknown type {function}, number {index},"


def _platform_line(report: dict[str, Any]) -> str:
    if report["platform"] is None:
        return f" Compiled for unknown platform (ID: {report['platform_id']})"
    from fieldsafe.platforms import find

    platform = find(report["platform_id"])
    display = platform.display_name if platform else report["platform"]
    return f" Compiled for {report['platform']} ({display}, platform id {report['platform_id']})"


def _module_line(report: dict[str, Any]) -> str:
    ref = _module_ref(report["module_function"], report["module_index"])
    return f" This is {ref} at version {report['module_version']}{_os_phrase(report['device_os'])}"


def _product_line(report: dict[str, Any]) -> str:
    pid, pver = report["product_id"], report["product_version"]
    if pid is None:
        return f" It has no product id or version (its {report['suffix_size']}-byte suffix predates them)"
    if pid == 0xFFFF and pver == 0xFFFF:
        return " It is not product firmware (product id and version are 0xFFFF)"
    return f" It is firmware for product id {pid} at version {pver}"


def _layout_line(report: dict[str, Any]) -> str:
    off = report["prefix_offset"]
    return (
        f" Prefix at file offset {off} (0x{off:x}), {report['prefix_size']} bytes; module spans "
        f"0x{report['start_address']:08x}-0x{report['end_address']:08x}; suffix {report['suffix_size']} bytes"
    )


def _os_phrase(releases: list[str] | None) -> str:
    """`` (Device OS 0.5.3)``; GA releases are named first, prereleases sharing the number after them."""
    if releases is None:
        return ""
    if not releases:
        return " (no Device OS release in fieldsafe's table has this module version on this platform)"
    ga = [r for r in releases if "-" not in r]
    pre = [r for r in releases if "-" in r]
    if ga:
        text = "Device OS " + " or ".join(ga)
        if pre:
            text += f"; also prerelease {_short_list(pre)}"
    else:
        text = "Device OS " + _short_list(pre)
    return f" ({text})"


def _short_list(items: list[str], limit: int = 3) -> str:
    if len(items) <= limit:
        return " or ".join(items)
    return f"{' or '.join(items[:limit])} or {len(items) - limit} more"
