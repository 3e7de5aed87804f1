"""Products, product devices (listing, pagination, filters, sorting, edits), groups and the rate limit."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from fieldsafe.emulator import EmulatorServer
from fieldsafe.emulator.ratelimit import RateLimiter
from fieldsafe.emulator.state import Device, EmulatorState, RateLimit, StateError, parse_state, utcnow

TOKEN = "products-token"
SPEC = {
    "seed": 11,
    "devices": 230,
    "product_id": 5000,
    "name_prefix": "unit",
    "device_os": {"4.0.2": 3, "2.3.0": 1},
    "firmware": {"3": 6, "4": 3, "none": 1},
    "groups": {"north": 0.5, "south": 0.3},
    "quarantined": 0.05,
    "offline": 0.3,
}
PRODUCT = {
    "id": 5000,
    "slug": "farm",
    "name": "Farm",
    "platform_id": 13,
    "groups": ["north", {"name": "south", "description": "the south field", "color": "#ff0000"}, "beta"],
    "firmware": [{"version": 3, "title": "three"}, {"version": 4, "title": "four"}, {"version": 5, "title": "five"}],
    "releases": {"product_default": 3, "groups": {"north": 4}},
}


def _state(**extra: Any) -> EmulatorState:
    return parse_state({"tokens": [TOKEN], "products": [PRODUCT], "fleets": [SPEC], **extra}, "test-state")


@pytest.fixture
def emu() -> Iterator[EmulatorServer]:
    with EmulatorServer(_state()) as server:
        yield server


def _call(emu: EmulatorServer, method: str, path: str, **kwargs: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    return requests.request(method, emu.url + path, headers=headers, timeout=10, **kwargs)


def _list(emu: EmulatorServer, **params: Any) -> dict[str, Any]:
    response = _call(emu, "GET", "/v1/products/farm/devices", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def _all(emu: EmulatorServer, **params: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    page = 1
    while True:
        body = _list(emu, page=page, per_page=100, **params)
        out += body["devices"]
        if page >= body["meta"]["total_pages"]:
            return out
        page += 1


# ---- products -------------------------------------------------------------------------------------


def test_products_are_listed_on_all_three_paths(emu: EmulatorServer) -> None:
    for path in ("/v1/user/products", "/v1/products", "/v1/orgs/some-org/products"):
        products = _call(emu, "GET", path).json()["products"]
        assert [p["slug"] for p in products] == ["farm"], path
    farm = _call(emu, "GET", "/v1/products/5000").json()["product"]
    assert farm == _call(emu, "GET", "/v1/products/farm").json()["product"]
    assert farm["platform_id"] == 13 and farm["groups"] == ["north", "south", "beta"]
    assert _call(emu, "GET", "/v1/products/nope").status_code == 404


# ---- pagination -----------------------------------------------------------------------------------


def test_default_page_is_25_and_perpage_alias(emu: EmulatorServer) -> None:
    body = _list(emu)
    assert len(body["devices"]) == 25 and body["customers"] == []
    assert body["meta"] == {"page": 1, "per_page": 25, "total_pages": 10, "total": 230}
    assert _list(emu, perPage=7)["meta"]["per_page"] == 7
    assert len(_list(emu, perPage=7)["devices"]) == 7


def test_per_page_over_the_cap_is_clamped_to_100(emu: EmulatorServer) -> None:
    body = _list(emu, per_page=1000)
    assert body["meta"]["per_page"] == 100 and len(body["devices"]) == 100 and body["meta"]["total_pages"] == 3


def test_last_partial_page_and_page_past_the_end(emu: EmulatorServer) -> None:
    last = _list(emu, page=3, per_page=100)
    assert len(last["devices"]) == 30 and last["meta"]["total_pages"] == 3
    past = _list(emu, page=9, per_page=100)
    assert past["devices"] == [] and past["meta"] == {"page": 9, "per_page": 100, "total_pages": 3, "total": 230}


@pytest.mark.parametrize("bad", [{"page": 0}, {"per_page": 0}, {"page": "x"}, {"sortAttr": "size"}, {"sortDir": "up"}])
def test_bad_listing_arguments_are_400(emu: EmulatorServer, bad: dict[str, Any]) -> None:
    response = _call(emu, "GET", "/v1/products/farm/devices", params=bad)
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"
    assert next(iter(bad)) in response.json()["error_description"]


def test_complete_listing_has_every_device_once(emu: EmulatorServer) -> None:
    devices = _all(emu, sortAttr="deviceId")
    ids = [d["id"] for d in devices]
    assert len(ids) == 230 == len(set(ids)) and ids == sorted(ids)


def test_devices_added_between_pages_shift_the_later_pages(emu: EmulatorServer) -> None:
    first = _list(emu, page=1, per_page=100, sortAttr="deviceId")
    newcomer = Device(
        id="0" * 24, name="newcomer", platform_id=13, system_firmware_version="4.0.2", cellular=True,
        product_id=5000, online=True, last_heard=utcnow(),
    )  # fmt: skip
    emu.state.add_device(newcomer)
    second = _list(emu, page=2, per_page=100, sortAttr="deviceId")
    assert second["meta"]["total"] == 231 and second["meta"]["total_pages"] == 3
    assert second["devices"][0]["id"] == first["devices"][-1]["id"]  # pushed down by the newcomer
    assert _list(emu, page=1, per_page=1, sortAttr="deviceId")["devices"][0]["name"] == "newcomer"


# ---- sorting and filters --------------------------------------------------------------------------


def test_default_order_is_last_connection_newest_first(emu: EmulatorServer) -> None:
    heard = [d["last_heard"] for d in _all(emu)]
    assert heard == sorted(heard, reverse=True)


@pytest.mark.parametrize(
    ("attr", "key"),
    [
        ("deviceName", lambda d: d["name"]),
        ("deviceId", lambda d: d["id"]),
        ("lastConnection", lambda d: d["last_heard"]),
        ("firmwareVersion", lambda d: d.get("firmware_version") or 0),
    ],
)
def test_sort_attributes_both_directions(emu: EmulatorServer, attr: str, key: Any) -> None:
    ascending = [key(d) for d in _all(emu, sortAttr=attr, sortDir="asc", quarantined="false")]
    descending = [key(d) for d in _all(emu, sortAttr=attr, sortDir="desc", quarantined="false")]
    assert len(ascending) == len(descending) > 200
    assert ascending == sorted(ascending) and descending == sorted(descending, reverse=True)


def test_filters_groups_any_of_partial_matches_and_quarantined(emu: EmulatorServer) -> None:
    devices = {d.id: d for d in emu.state.devices}
    north_or_south = _all(emu, groups="north,south")
    assert {d["id"] for d in north_or_south} == {i for i, d in devices.items() if {"north", "south"} & set(d.groups)}
    assert _all(emu, deviceName="UNIT-0001") == _all(emu, deviceName="unit-0001")
    assert {d["name"] for d in _all(emu, deviceName="unit-0001")} == {f"unit-0001{i}" for i in range(10)}
    some_id = next(iter(devices))
    assert [d["id"] for d in _all(emu, deviceId=some_id[3:12])] == [some_id]
    serial = devices[some_id].serial_number
    assert serial and [d["id"] for d in _all(emu, serialNumber=serial[-6:].lower())] == [some_id]
    quarantined = _all(emu, quarantined="true")
    assert quarantined and all(d["quarantined"] for d in quarantined)
    assert len(quarantined) + len(_all(emu, quarantined="false")) == 230


def test_device_objects_leave_keys_out_like_the_real_api(emu: EmulatorServer) -> None:
    devices = _all(emu)
    quarantined = next(d for d in devices if d["quarantined"])
    for key in ("groups", "firmware_version", "desired_firmware_version", "targeted_firmware_release_version"):
        assert key not in quarantined
    never_ran = next(d for d in devices if not d["quarantined"] and "firmware_version" not in d)
    assert never_ran["desired_firmware_version"] is None and "groups" in never_ran
    normal = next(d for d in devices if d.get("firmware_version") == 3)
    assert normal["status"] == "normal" and normal["development"] is False
    assert normal["firmware_updates_enabled"] is True and normal["firmware_updates_forced"] is False


def test_targeted_release_follows_the_precedence(emu: EmulatorServer) -> None:
    for device in _all(emu):
        if device["quarantined"]:
            continue
        expected = 4 if "north" in device["groups"] else 3
        assert device["targeted_firmware_release_version"] == expected, device["name"]


# ---- single device edits --------------------------------------------------------------------------


def _first(emu: EmulatorServer, **params: Any) -> dict[str, Any]:
    return next(d for d in _all(emu, **params) if not d["quarantined"])


def test_get_and_edit_one_product_device(emu: EmulatorServer) -> None:
    device = _first(emu, groups="south")
    path = f"/v1/products/farm/devices/{device['id']}"
    assert _call(emu, "GET", path).json()["functions"] == []
    edit = {"development": True, "desired_firmware_version": 5, "groups": ["beta", "new-group"], "notes": "hi"}
    reply = _call(emu, "PUT", path, json=edit).json()
    assert reply["id"] == device["id"] and reply["groups"] == ["beta", "new-group"] and "updated_at" in reply
    after = _call(emu, "GET", path).json()
    assert after["development"] is True and after["desired_firmware_version"] == 5 and after["notes"] == "hi"
    assert after["targeted_firmware_release_version"] is None  # development devices never get product firmware
    _call(emu, "PUT", path, json={"development": False})
    assert _call(emu, "GET", path).json()["targeted_firmware_release_version"] == 5  # locked
    assert "new-group" in _call(emu, "GET", "/v1/products/farm").json()["product"]["groups"]
    assert [d["id"] for d in _all(emu, groups="new-group")] == [device["id"]]


def test_a_bad_edit_changes_nothing(emu: EmulatorServer) -> None:
    device = _first(emu)
    path = f"/v1/products/farm/devices/{device['id']}"
    for body in ({"development": True, "desired_firmware_version": 99}, {"notes": "x", "groups": ["Bad Name"]}):
        response = _call(emu, "PUT", path, json=body)
        assert response.status_code == 400, body
    after = _call(emu, "GET", path).json()
    assert after["development"] is False and after["notes"] is None


def test_unknown_device_or_other_products_device_is_404(emu: EmulatorServer) -> None:
    assert _call(emu, "GET", "/v1/products/farm/devices/" + "f" * 24).status_code == 404
    assert _call(emu, "PUT", "/v1/products/farm/devices/" + "f" * 24, json={"notes": "x"}).status_code == 404


def test_multipart_put_is_a_flash_not_an_edit(emu: EmulatorServer) -> None:
    device = _first(emu)
    files = {"file": ("app.bin", b"\x00" * 64)}
    response = _call(emu, "PUT", f"/v1/products/farm/devices/{device['id']}", files=files, data={"notes": "x"})
    assert response.status_code == 400, response.text  # the field simulator rejects a non-module
    assert _call(emu, "GET", f"/v1/products/farm/devices/{device['id']}").json()["notes"] is None


def test_batch_group_edit_and_device_removal(emu: EmulatorServer) -> None:
    ids = [d["id"] for d in _all(emu, groups="north")[:3]]
    body = {"action": "groups", "devices": ids, "metadata": {"add": ["beta"], "remove": ["north"]}}
    assert _call(emu, "PUT", "/v1/products/farm/devices", json=body).json() == {"ok": True}
    for device_id in ids:
        groups = _call(emu, "GET", f"/v1/products/farm/devices/{device_id}").json()["groups"]
        assert "beta" in groups and "north" not in groups
    bad = {"action": "groups", "devices": ["f" * 24], "metadata": {"add": ["beta"]}}
    assert _call(emu, "PUT", "/v1/products/farm/devices", json=bad).status_code == 404
    assert _call(emu, "PUT", "/v1/products/farm/devices", json={"action": "delete"}).status_code == 400
    assert _call(emu, "DELETE", f"/v1/products/farm/devices/{ids[0]}").status_code == 204
    assert _list(emu)["meta"]["total"] == 229


# ---- groups ---------------------------------------------------------------------------------------


def test_groups_crud(emu: EmulatorServer) -> None:
    listed = _call(emu, "GET", "/v1/products/farm/groups").json()["groups"]
    assert [g["name"] for g in listed] == ["north", "south", "beta"]
    assert listed[0]["fw_version"] == 4 and "fw_version" not in listed[2]
    assert [
        g["name"] for g in _call(emu, "GET", "/v1/products/farm/groups", params={"name": "ou"}).json()["groups"]
    ] == ["south"]
    south = _call(emu, "GET", "/v1/products/farm/groups/south").json()["group"]
    assert south["description"] == "the south field" and south["device_count"] == len(_all(emu, groups="south"))
    created = _call(emu, "POST", "/v1/products/farm/groups", json={"name": "east", "color": "#00ff00"})
    assert created.status_code == 201 and created.json()["group"]["color"] == "#00ff00"
    assert _call(emu, "POST", "/v1/products/farm/groups", json={"name": "east"}).status_code == 400
    assert _call(emu, "POST", "/v1/products/farm/groups", json={"name": "East Side"}).status_code == 400
    edited = _call(emu, "PUT", "/v1/products/farm/groups/north", json={"name": "upper", "description": "renamed"})
    assert edited.json()["group"]["name"] == "upper" and edited.json()["group"]["fw_version"] == 4
    assert not _all(emu, groups="north") and _all(emu, groups="upper")
    assert _call(emu, "DELETE", "/v1/products/farm/groups/upper").status_code == 204
    assert not _all(emu, groups="upper")
    assert _call(emu, "GET", "/v1/products/farm/groups/upper").status_code == 404


# ---- rate limit -----------------------------------------------------------------------------------


def test_rate_limit_answers_429_with_retry_after() -> None:
    with EmulatorServer(_state(), rate_limit=RateLimit(requests=3, window=60)) as server:
        statuses = [_call(server, "GET", "/v1/products").status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        limited = _call(server, "GET", "/v1/products/farm/devices")
        assert limited.status_code == 429 and 1 <= int(limited.headers["Retry-After"]) <= 60
        assert limited.json()["error"] == "Too many requests"
        assert requests.get(server.url + "/__emulator/health", timeout=5).status_code == 200  # admin not limited


def test_rate_limit_from_the_state_file_and_its_errors() -> None:
    with EmulatorServer(_state(rate_limit={"requests": 1, "window_seconds": 30})) as server:
        assert [_call(server, "GET", "/v1/products").status_code for _ in range(2)] == [200, 429]
    assert _state(rate_limit=True).rate_limit == RateLimit(10_000, 300.0)
    with pytest.raises(StateError, match=r"rate_limit\.requests: must be at least 1"):
        _state(rate_limit={"requests": 0})


def test_rate_limiter_window_slides() -> None:
    now = [1000.0]
    limiter = RateLimiter(RateLimit(requests=2, window=10), clock=lambda: now[0])
    assert limiter.check("a") is None and limiter.check("a") is None
    assert limiter.check("a") == 10 and limiter.check("b") is None  # per client
    now[0] += 4
    assert limiter.check("a") == 6
    now[0] += 6.5
    assert limiter.check("a") is None and limiter.remaining("a") == 1  # both old hits left the window


def test_last_heard_change_reorders_the_default_listing(emu: EmulatorServer) -> None:
    oldest = _all(emu)[-1]
    device = emu.state.find_device(oldest["id"])
    assert device is not None
    device.last_heard = utcnow() + dt.timedelta(seconds=5)
    assert _list(emu, per_page=1)["devices"][0]["id"] == oldest["id"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"releases": {"product_default": 9}}, r"products\[0\]\.releases\.product_default: version 9 is not in"),
        ({"releases": {"groups": {"nope": 3}}}, r"products\[0\]\.releases\.groups\.nope: not one of the product's"),
        ({"releases": {"groups": {"north": 8}}}, r"releases\.groups\.north: 8 is not a version"),
        ({"firmware": [{"version": 3}, {"version": 3}]}, r"products\[0\]\.firmware\[1\]\.version: version 3 is listed"),
        ({"firmware": [{"version": 3, "colour": 1}]}, r"products\[0\]\.firmware\[0\]: unknown field"),
        ({"groups": ["Not OK"]}, r"products\[0\]\.groups\[0\]\.name: 'Not OK'"),
        ({"flavour": "x"}, r"products\[0\]: unknown field"),
    ],
)
def test_invalid_product_state_names_the_field(change: dict[str, Any], message: str) -> None:
    product = {k: v for k, v in PRODUCT.items() if k != "releases"} | change
    with pytest.raises(StateError, match=message):
        parse_state({"products": [product]}, "bad-products.json")


def test_state_file_firmware_binary_and_device_lock() -> None:
    import base64

    product = PRODUCT | {"firmware": [{"version": 3, "base64": base64.b64encode(b"\x01\x02").decode()}, {"version": 4}]}
    device = {
        "id": "e00fce68" + "1" * 16, "name": "locked", "platform_id": 13, "product_id": 5000,
        "desired_firmware_version": 4, "status": "safe_mode", "groups": ["made-up"],
    }  # fmt: skip
    state = parse_state({"products": [product | {"releases": {}}], "devices": [device]}, "ok.json")
    assert state.products[0].firmware[3].data == b"\x01\x02" and state.products[0].firmware[3].size == 2
    assert state.products[0].firmware[4].data is None and "made-up" in state.products[0].groups
    assert state.devices[0].desired_firmware_version == 4 and state.devices[0].status == "safe_mode"
