"""Build emulator states with a product fleet of chosen Device OS mix (tests of fleet, release, LSP fleet)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from fieldsafe.emulator import default_state
from fieldsafe.emulator.state import Device, EmulatorState, Product, utcnow

TOKEN = "fleet-token-under-test-5b1e"


def fleet_state(
    mix: Sequence[tuple[str, int]],
    *,
    product_id: int = 9001,
    slug: str = "trackers",
    platform_id: int = 13,
    groups: Sequence[str] = ("beta",),
    every_nth_in_group: int = 10,
    stale: int = 0,
    updates_disabled: int = 0,
    development: int = 0,
    firmware_version: int | None = 1,
) -> EmulatorState:
    """The default state plus product ``slug`` with devices on each (release, count) of ``mix``.

    The first ``stale`` devices were last heard 60 days ago, the next ``updates_disabled`` have updates
    disabled, the next ``development`` are development devices; every ``every_nth_in_group``-th is in ``groups``.
    """
    state = default_state()
    state.products.append(
        Product(id=product_id, slug=slug, name=slug.title(), platform_id=platform_id, groups=list(groups))
    )
    now = utcnow()
    i = 0
    for release, count in mix:
        for _ in range(count):
            special = i
            state.devices.append(
                Device(
                    id=f"f1ee7{product_id:05d}{i:014x}",
                    name=f"{slug}-{i:05d}",
                    platform_id=platform_id,
                    system_firmware_version=release,
                    cellular=i % 3 != 0,
                    product_id=product_id,
                    online=True,
                    last_heard=now - dt.timedelta(days=60) if special < stale else now - dt.timedelta(minutes=5),
                    groups=list(groups) if every_nth_in_group and i % every_nth_in_group == 0 else [],
                    firmware_updates_enabled=not (stale <= special < stale + updates_disabled),
                    development=stale + updates_disabled <= special < stale + updates_disabled + development,
                    firmware_version=firmware_version,
                )
            )
            i += 1
    return state


def app_binary(release: str, *, platform_id: int = 13, product_id: int = 9001, version: int = 2) -> bytes:
    """A product application binary for ``platform_id`` that needs exactly Device OS ``release``."""
    from fieldsafe import platforms
    from fieldsafe.modules import Dependency, build_user_module
    from fieldsafe.versions import catalog

    platform = platforms.get(platform_id)
    row = catalog().release(release)
    assert row is not None, release
    function, index = platform.user_part_dependency(row.version)
    return build_user_module(
        platform_id=platform_id,
        module_index=platform.user_part_index(row.version),
        dependency=Dependency(function, index, row.module_version),
        start_address=platform.user_part_start_address(row.version, 4096),
        payload=b"\x00" * 4000,
        product_id=product_id,
        product_version=version,
    )
