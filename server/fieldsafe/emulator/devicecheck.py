"""The device side of an OTA: the modules a device holds, its dependency check, and what it reports.

Why its own module: the check (particle-domain.md §2.1, device-os ``validate_module_dependencies``: a
dependency is met by a module of the same function and index with a version >=, never by the module itself)
and the ``spark/status/safe-mode`` payload it produces (particle-domain.md §9.2) are the device's behaviour;
the simulator (``field.py``) only sequences what happens around them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fieldsafe.emulator.state import Device

FUNCTION_CHAR = {"bootloader": "b", "system_part": "s", "user_part": "u", "radio_stack": "a", "ncp_firmware": "c"}
# Slot sizes a Boron reports in its safe-mode event (firmware-update-events.md); other platforms: the module size.
SLOT_SIZES = {(13, "bootloader", 0): 49152, (13, "system_part", 1): 671744, (13, "radio_stack", 0): 192512}


@dataclass(frozen=True)
class Installed:
    """One Device OS module in a device's flash."""

    name: str
    function: str
    index: int
    version: int
    dependencies: tuple[tuple[str, int, int], ...]
    release: str | None
    size: int


@dataclass(frozen=True)
class AppImage:
    """The user part a device holds (what the real device reports as ``u`` and the cloud as app hash)."""

    sha: str
    size: int
    index: int
    version: int
    dependencies: tuple[tuple[str, int, int], ...]
    product_id: int | None
    product_version: int | None


def unmet(
    installed: dict[tuple[str, int], Installed],
    deps: tuple[tuple[str, int, int], ...],
    replacing: tuple[str, int] | None = None,
) -> list[tuple[str, int, int]]:
    """Dependencies not met: same function and index installed with version >= (device-os validate_module_dependencies).

    ``replacing`` is the slot the checked module itself goes into (a module never satisfies its own dependency).
    """
    out = []
    for function, index, version in deps:
        if function == "none" or (replacing is not None and (function, index) == replacing):
            continue
        have = installed.get((function, index))
        if have is None or have.version < version:
            out.append((function, index, version))
    return out


def describe(device: Device, installed: dict[tuple[str, int], Installed], app: AppImage | None) -> dict[str, Any]:
    """The ``spark/status/safe-mode`` payload: ``{p, [imei, iccid], m: [...]}`` (particle-domain.md §9.2)."""
    body: dict[str, Any] = {"p": device.platform_id}
    if device.cellular:
        body.update({"imei": device.imei or "", "iccid": device.iccid or ""})
    mods: list[dict[str, Any]] = []
    for item in sorted(installed.values(), key=lambda m: (FUNCTION_CHAR.get(m.function, "_"), m.index)):
        ok = not unmet(installed, item.dependencies)
        mods.append(_module_entry(device, item.function, item.index, item.version, item.size, item.dependencies, ok))
    if app is not None:
        ok = not unmet(installed, app.dependencies)
        entry = _module_entry(device, "user_part", app.index, app.version, app.size, app.dependencies, ok)
        entry["u"] = app.sha
        mods.append(entry)
    body["m"] = mods
    return body


def _module_entry(
    device: Device,
    function: str,
    index: int,
    version: int,
    size: int,
    dependencies: tuple[tuple[str, int, int], ...],
    ok: bool,
) -> dict[str, Any]:
    slot = SLOT_SIZES.get((device.platform_id, function, index), size)
    return {
        "s": slot,
        "l": "m",
        "vc": 30,
        "vv": 30 if ok else 26,
        "f": FUNCTION_CHAR.get(function, "_"),
        "n": str(index),
        "v": version,
        "d": [{"f": FUNCTION_CHAR.get(f, "_"), "n": str(i), "v": v} for f, i, v in dependencies],
    }
