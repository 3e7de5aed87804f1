"""Releases reach the simulated field: intelligent = now to online devices, standard = at the next handshake."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from field_helpers import PRODUCT, TOKEN, admin, app_for, device, ledger, settle
from fieldsafe.emulator import EmulatorServer
from fieldsafe.emulator.state import parse_state

BETA_ON = 1
BETA_OFF = 2
BETA_DISABLED = 3
BETA_FORCED = 4
OTHER = 5
DEV = 6


def _id(n: int) -> str:
    return f"e00fce68{n:016x}"


@pytest.fixture
def emu() -> Iterator[EmulatorServer]:
    base = {"product_id": PRODUCT, "firmware_version": 1}
    devices = [
        device(BETA_ON, 13, "4.0.2", groups=["beta"], **base),
        device(BETA_OFF, 13, "4.0.2", groups=["beta"], online=False, **base),
        device(BETA_DISABLED, 13, "4.0.2", groups=["beta"], firmware_updates_enabled=False, **base),
        device(
            BETA_FORCED,
            13,
            "4.0.2",
            groups=["beta"],
            firmware_updates_enabled=False,
            firmware_updates_forced=True,
            **base,
        ),
        device(OTHER, 13, "4.0.2", **base),
        device(DEV, 13, "4.0.2", groups=["beta"], development=True, **base),
    ]
    product = {
        "id": PRODUCT, "slug": "field-test", "platform_id": 13, "groups": ["beta"],
        "firmware": [{"version": 1}], "releases": {"product_default": 1},
    }  # fmt: skip
    state = parse_state(
        {"tokens": [TOKEN], "products": [product], "devices": devices, "field": {"clock": "instant"}}, "<rollout>"
    )
    with EmulatorServer(state) as server:
        yield server


def _call(emu: EmulatorServer, method: str, path: str, **kwargs: Any) -> requests.Response:
    return requests.request(method, emu.url + path, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10, **kwargs)


def _upload(emu: EmulatorServer, version: int, release: str) -> bytes:
    binary = app_for(13, release, product_version=version)
    form = {"version": str(version), "title": f"v{version}"}
    response = _call(emu, "POST", f"/v1/products/{PRODUCT}/firmware", data=form, files={"file": ("a.bin", binary)})
    assert response.status_code == 201, response.text
    return binary


def _release(emu: EmulatorServer, **body: Any) -> None:
    response = _call(emu, "PUT", f"/v1/products/{PRODUCT}/firmware/release", json=body)
    assert response.status_code == 200, response.text
    settle(emu)


def _running(emu: EmulatorServer, n: int) -> int | None:
    return _call(emu, "GET", f"/v1/products/{PRODUCT}/devices/{_id(n)}").json().get("firmware_version")


def _lock_one(emu: EmulatorServer, version: int) -> None:
    """The documented release precondition: lock a device, flash it now, it runs the version."""
    reply = _call(emu, "PUT", f"/v1/products/{PRODUCT}/devices/{_id(BETA_ON)}",
                  json={"desired_firmware_version": version, "flash": True})  # fmt: skip
    assert reply.status_code == 200, reply.text
    settle(emu)
    assert _running(emu, BETA_ON) == version
    _call(emu, "PUT", f"/v1/products/{PRODUCT}/devices/{_id(BETA_ON)}", json={"desired_firmware_version": None})


def test_intelligent_release_goes_to_online_devices_that_take_updates(emu: EmulatorServer) -> None:
    binary = _upload(emu, 2, "4.0.2")
    _lock_one(emu, 2)
    _release(emu, version=2, groups=["beta"], intelligent=True)
    assert _running(emu, BETA_FORCED) == 2  # updates disabled but forced
    assert [_running(emu, n) for n in (BETA_OFF, BETA_DISABLED, OTHER, DEV)] == [1, 1, 1, 1]
    sent = ledger(emu, _id(BETA_FORCED))
    assert sent["bytes_app"] == len(binary) and sent["transfers"][0]["cause"] == "auto-update"
    assert sent["safe_mode_entries"] == 0
    events = [e["name"] for e in admin(emu, "/__emulator/events")["events"] if e.get("coreid") == _id(BETA_FORCED)]
    assert "spark/status" in events and "spark/flash/status" in events


def test_standard_release_waits_for_the_handshake(emu: EmulatorServer) -> None:
    _upload(emu, 2, "4.0.2")
    _lock_one(emu, 2)
    _release(emu, version=2, product_default=True)
    assert _running(emu, OTHER) == 1  # not pushed: a standard release goes out at the next connection
    result = admin(emu, "/__emulator/handshake", {"product": "field-test"})
    settle(emu)
    assert _running(emu, OTHER) == 2 and _running(emu, BETA_FORCED) == 2
    assert result["sent"] == 2 and result["skipped"]["offline (gets it when it connects)"] == 1
    assert result["skipped"]["updates disabled on the device"] == 1
    pending = [e for e in admin(emu, "/__emulator/events")["events"] if e["name"] == "particle/device/updates/pending"]
    mine = [(e["coreid"], e["data"]) for e in pending if e["coreid"] == _id(BETA_DISABLED)]
    assert mine[-1] == (_id(BETA_DISABLED), "true")  # devices that took the update publish "false" after it
    assert result["skipped"]["not targeted (development)"] == 1
    again = admin(emu, "/__emulator/handshake", {"devices": [_id(OTHER)]})
    assert again["sent"] == 0 and again["skipped"] == {"runs its target": 1}


def test_a_release_needing_newer_device_os_sends_devices_through_safe_mode(emu: EmulatorServer) -> None:
    emu.state.products[0].require_running_before_release = False
    _upload(emu, 3, "4.2.0")  # 4.0.2 devices need a new bootloader and system part: the healer path
    _release(emu, version=3, groups=["beta"], intelligent=True)
    healed = ledger(emu, _id(BETA_ON))
    assert healed["safe_mode_entries"] == 1 and healed["reboots"] >= 2 and healed["bytes_modules"] > 0
    device_json = _call(emu, "GET", f"/v1/products/{PRODUCT}/devices/{_id(BETA_ON)}").json()
    assert device_json["system_firmware_version"] == "4.2.0" and device_json["firmware_version"] == 3
    assert device_json["status"] == "normal"


def test_handshake_admin_rejects_bad_bodies(emu: EmulatorServer) -> None:
    assert requests.post(emu.url + "/__emulator/handshake", json=[1], timeout=5).status_code == 400
    assert requests.post(emu.url + "/__emulator/handshake", json={"devices": "x"}, timeout=5).status_code == 400
    assert requests.post(emu.url + "/__emulator/handshake", json={"product": "nope"}, timeout=5).status_code == 404
