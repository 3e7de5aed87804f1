"""Product firmware: upload validation, list/get/edit/delete/download, release (gate, precedence), impact, events."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from fieldsafe import platforms
from fieldsafe.emulator import EmulatorServer
from fieldsafe.emulator.state import parse_state
from fieldsafe.modules import Dependency, build_user_module
from fieldsafe.releases import DeviceTargeting, ProductReleases, reach

TOKEN = "firmware-token"
PRODUCT = {
    "id": 6000, "slug": "pumps", "name": "Pumps", "platform_id": 13, "groups": ["beta", "field"],
    "firmware": [{"version": 1, "title": "one"}], "releases": {"product_default": 1},
}  # fmt: skip
SPEC = {
    "seed": 3, "devices": 120, "product_id": 6000, "device_os": {"4.0.2": 1},
    "firmware": {"1": 9, "none": 1}, "groups": {"beta": 0.2, "field": 0.6}, "development": 0.05,
}  # fmt: skip


def _last_event(emu: EmulatorServer) -> tuple[str, dict[str, Any], str, int | None]:
    """The newest ``particle/firmware/*`` event on the emulator's bus: (name, data, coreid, product_id).
    (Device events follow an intelligent release: the field simulator flashes the devices it reaches.)"""
    event = [e for e in emu.api.events.history() if e.name.startswith("particle/firmware/")][-1]
    return event.name, json.loads(event.data), event.coreid, event.product_id


@pytest.fixture
def emu() -> Iterator[EmulatorServer]:
    state = parse_state({"tokens": [TOKEN], "products": [PRODUCT], "fleets": [SPEC]}, "firmware-state")
    with EmulatorServer(state) as server:
        yield server


def _call(emu: EmulatorServer, method: str, path: str, **kwargs: Any) -> requests.Response:
    return requests.request(method, emu.url + path, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10, **kwargs)


def _binary(product_version: int | None, platform_id: int = 13) -> bytes:
    platform = platforms.get(platform_id)
    return build_user_module(
        platform_id=platform_id,
        module_index=1,
        dependency=Dependency(4, 1, 4006),
        start_address=platform.user_part_start_address(platform.max_release or _latest(platform_id)),
        payload=b"\x42" * 512,
        product_id=6000,
        product_version=product_version,
    )


def _latest(platform_id: int) -> Any:
    from fieldsafe.versions import catalog

    return catalog().latest(platform_id).version


def _upload(
    emu: EmulatorServer, version: int, data: bytes, *, field: str = "file", title: str = "t"
) -> requests.Response:
    form = {"version": str(version), "title": title, "description": "desc"}
    return _call(emu, "POST", "/v1/products/pumps/firmware", data=form, files={field: ("app.bin", data)})


def test_upload_list_get_download(emu: EmulatorServer) -> None:
    binary = _binary(2)
    created = _upload(emu, 2, binary, title="two")
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["version"] == 2 and body["size"] == len(binary) and body["product_default"] is False
    assert body["uploaded_by"]["username"] and body["uploaded_on"].endswith("Z")
    listed = _call(emu, "GET", "/v1/products/pumps/firmware").json()
    assert [f["version"] for f in listed] == [2, 1]
    assert listed[1]["product_default"] is True and listed[1]["device_count"] > 90
    assert _call(emu, "GET", "/v1/products/pumps/firmware/2").json()["title"] == "two"
    assert _call(emu, "GET", "/v1/products/pumps/firmware/2/binary").content == binary
    assert _call(emu, "GET", "/v1/products/pumps/firmware/1/binary").status_code == 404  # generated, no binary
    assert _call(emu, "GET", "/v1/products/pumps/firmware/9").status_code == 404
    assert _last_event(emu) == ("particle/firmware/create", {"version": "2"}, "api", 6000)


def test_upload_accepts_the_binary_field_and_a_zip_bundle(emu: EmulatorServer) -> None:
    assert _upload(emu, 2, _binary(2), field="binary").status_code == 201
    bundle = io.BytesIO()
    with zipfile.ZipFile(bundle, "w") as archive:
        archive.writestr("assets/readme.txt", "hello")
        archive.writestr("app.bin", _binary(3))
    assert _upload(emu, 3, bundle.getvalue()).status_code == 201


@pytest.mark.parametrize(
    ("version", "data", "message"),
    [
        (3, _binary(2), "does not match the binary's PRODUCT_VERSION (2)"),
        (2, _binary(None), "has no PRODUCT_VERSION"),
        (2, _binary(2, platform_id=12), "built for platform 12"),
        (2, b"not firmware at all" * 10, "is not a Particle firmware binary"),
        (0, _binary(2), "version must be from 1 to 65534"),
    ],
)
def test_upload_rejections(emu: EmulatorServer, version: int, data: bytes, message: str) -> None:
    response = _upload(emu, version, data)
    assert response.status_code == 400 and message in response.json()["error_description"]
    assert [f["version"] for f in _call(emu, "GET", "/v1/products/pumps/firmware").json()] == [1]


def test_duplicate_version_is_400_invalid_request(emu: EmulatorServer) -> None:
    assert _upload(emu, 2, _binary(2)).status_code == 201
    duplicate = _upload(emu, 2, _binary(2))
    assert duplicate.status_code == 400
    assert duplicate.json()["error"] == "invalid_request"
    assert duplicate.json()["error_description"] == "Firmware version already exists"


def test_upload_needs_file_version_and_title(emu: EmulatorServer) -> None:
    url = "/v1/products/pumps/firmware"
    assert _call(emu, "POST", url, data={"version": "2", "title": "x"}, files={"other": ("a", b"x")}).status_code == 400
    assert _call(emu, "POST", url, files={"file": ("a.bin", _binary(2))}, data={"title": "x"}).status_code == 400
    assert _call(emu, "POST", url, files={"file": ("a.bin", _binary(2))}, data={"version": "2"}).status_code == 400
    assert _call(emu, "POST", url, json={"version": 2}).status_code == 400


def _targets(emu: EmulatorServer) -> dict[str, Any]:
    out = {}
    page = 1
    while True:
        body = _call(emu, "GET", "/v1/products/pumps/devices", params={"page": page, "per_page": 100}).json()
        out.update({d["id"]: d for d in body["devices"]})
        if page >= body["meta"]["total_pages"]:
            return out
        page += 1


def test_release_gate_then_group_release_follows_precedence(emu: EmulatorServer) -> None:
    assert _upload(emu, 2, _binary(2)).status_code == 201
    gated = _call(emu, "PUT", "/v1/products/pumps/firmware/release", json={"version": 2, "groups": ["beta"]})
    assert gated.status_code == 400 and "running on at least one device" in gated.json()["error"]
    # lock one device to 2 and let it "run" it: the precondition is met
    one = next(d for d in emu.state.devices if not d.development)
    _call(emu, "PUT", f"/v1/products/pumps/devices/{one.id}", json={"desired_firmware_version": 2})
    one.firmware_version = 2
    released = _call(
        emu, "PUT", "/v1/products/pumps/firmware/release", json={"version": 2, "groups": ["beta"], "intelligent": True}
    )
    assert released.status_code == 200, released.text
    assert released.json()["groups"] == ["beta"] and released.json()["intelligent"] is True
    assert _last_event(emu) == ("particle/firmware/release", {"immediate": True, "version": 2}, "api", 6000)
    for device_id, device in _targets(emu).items():
        if device["development"]:
            expected = None
        elif device_id == one.id:
            expected = 2
        else:
            expected = 2 if "beta" in device["groups"] else 1
        assert device["targeted_firmware_release_version"] == expected
    firmware = {f["version"]: f for f in _call(emu, "GET", "/v1/products/pumps/firmware").json()}
    assert firmware[2]["groups"] == ["beta"] and firmware[1]["product_default"] is True
    assert _call(emu, "DELETE", "/v1/products/pumps/firmware/2").status_code == 400  # released
    assert _call(emu, "GET", "/v1/products/pumps/groups/beta").json()["group"]["fw_version"] == 2


def test_release_rejects_unknown_version_and_group(emu: EmulatorServer) -> None:
    url = "/v1/products/pumps/firmware/release"
    assert _call(emu, "PUT", url, json={"version": 9, "product_default": True}).status_code == 404
    assert _call(emu, "PUT", url, json={"version": 1, "groups": ["nope"]}).status_code == 400
    assert _call(emu, "PUT", url, json={"product_default": True}).status_code == 400


def test_impact_is_the_shared_reach_function(emu: EmulatorServer) -> None:
    emu.state.products[0].require_running_before_release = False
    assert _upload(emu, 2, _binary(2)).status_code == 201
    params = {"action": "edit_groups_for_firmware", "firmware_version": 2, "groups": "beta", "product_default": "false"}
    impact = _call(emu, "GET", "/v1/products/pumps/impact", params=params).json()["devices"]["firmware_update"]
    devices = [DeviceTargeting.from_api(d) for d in _targets(emu).values()]
    expected = reach(devices, ProductReleases(1, {}), 2, product_default=False, groups=["beta"])
    assert impact["total"] == expected.total > 0
    assert impact["by_version"] == [{"version": v, "total": n} for v, n in expected.by_version]
    everyone = _call(emu, "GET", "/v1/products/pumps/impact", params={**params, "product_default": "true"}).json()
    assert everyone["devices"]["firmware_update"]["total"] > impact["total"]
    assert _call(emu, "GET", "/v1/products/pumps/impact", params={"action": "x"}).status_code == 400
    # an impact preview changes nothing; the release then reaches exactly those devices
    release = {"version": 2, "groups": ["beta"]}
    assert _call(emu, "PUT", "/v1/products/pumps/firmware/release", json=release).status_code == 200
    targeted = [d for d in _targets(emu).values() if d.get("targeted_firmware_release_version") == 2]
    assert len(targeted) == impact["total"]


def test_edit_and_delete_unreleased_firmware(emu: EmulatorServer) -> None:
    assert _upload(emu, 2, _binary(2)).status_code == 201
    edited = _call(emu, "PUT", "/v1/products/pumps/firmware/2", json={"title": "renamed", "mandatory": True}).json()
    assert edited["title"] == "renamed" and edited["mandatory"] is True
    assert _call(emu, "DELETE", "/v1/products/pumps/firmware/2").status_code == 204
    assert _call(emu, "GET", "/v1/products/pumps/firmware/2").status_code == 404
