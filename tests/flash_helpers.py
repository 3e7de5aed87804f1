"""Shared pieces for the guarded-flash and update-os tests: app binaries and device JSON."""

from __future__ import annotations

from typing import Any

from fieldsafe import platforms
from fieldsafe.modules import Dependency, build_user_module
from fieldsafe.versions import catalog


def app_for(platform: str, release: str, *, payload: int = 6000, seed: bytes = b"a") -> bytes:
    """A valid user part for ``platform`` that depends on exactly ``release``'s system module."""
    plat = platforms.get(platform)
    row = catalog().release(release)
    assert row is not None, release
    function, index = plat.user_part_dependency(row.version)
    return build_user_module(
        platform_id=plat.id,
        module_index=plat.user_part_index(row.version),
        dependency=Dependency(function, index, row.module_version),
        start_address=plat.user_part_start_address(row.version, payload + 64),
        payload=(seed * payload)[:payload],
    )


def device(
    platform: str,
    release: str | None,
    *,
    name: str = "unit",
    product: int | None = None,
    development: bool | None = None,
    online: bool = True,
    updates_enabled: bool | None = None,
    cellular: bool | None = None,
) -> dict[str, Any]:
    """The cloud's device JSON (``GET /v1/devices/:id``) with the fields the guard reads."""
    plat = platforms.get(platform)
    return {
        "id": "e00fce68" + f"{abs(hash(name)) % 10**16:016d}",
        "name": name,
        "platform_id": plat.id,
        "product_id": product if product is not None else plat.id,
        "system_firmware_version": release,
        "online": online,
        "connected": online,
        "cellular": plat.cellular if cellular is None else cellular,
        "development": development,
        "firmware_updates_enabled": updates_enabled,
    }
