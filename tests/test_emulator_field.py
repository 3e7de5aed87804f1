"""The field simulator: OTA flashes through the HTTP API and what they do to devices (Safe Mode, healer, ledger).

Every scenario is driven through ``PUT /v1/devices/:id`` (or the product route) and read back from the ledger
(``GET /__emulator/field``), the device JSON and the event stream. Where a policy prediction exists
(``fieldsafe.delivery.plan_flash`` / ``plan_update_os``) the simulated bytes, reboots and downtime must equal it:
the simulator computes them from the device's own dependency checks, the prediction from the plan.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from field_helpers import (
    PRODUCT,
    TOKEN,
    EventReader,
    admin,
    app_for,
    device,
    flash,
    fleet,
    get,
    ledger,
    settle,
)
from fieldsafe import delivery, modules, osmodules
from fieldsafe.emulator import EmulatorServer
from fieldsafe.emulator.simclock import SimClock
from fieldsafe.emulator.state import StateError, parse_state
from fieldsafe.policy import DeviceFacts


@pytest.fixture
def make() -> Iterator:
    servers: list[EmulatorServer] = []

    def start(*devices: dict, clock: object = "instant") -> EmulatorServer:
        server = EmulatorServer(fleet(*devices, clock=clock)).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def _facts(dev: dict, **extra: object) -> DeviceFacts:
    return DeviceFacts(
        platform_id=dev["platform_id"],
        release=dev["system_firmware_version"],
        in_product="product_id" in dev,
        development=dev.get("development", False),
        updates_enabled=dev.get("firmware_updates_enabled", True),
        updates_forced=dev.get("firmware_updates_forced", False),
        cellular=dev.get("cellular"),
        **extra,  # type: ignore[arg-type]
    )


def _assert_matches_plan(entry: dict, plan: delivery.DeliveryPlan) -> None:
    assert entry["bytes_total"] == plan.total_bytes
    assert entry["bytes_app"] == plan.app_bytes
    assert [
        (p["name"], p["bytes"]) for t in entry["transfers"] for p in t["parts"] if p["function"] != "user_part"
    ] == [(s.module.name, s.module.bytes) for s in plan.steps]
    assert entry["reboots"] == plan.reboots
    assert entry["downtime_seconds"] == pytest.approx(plan.downtime_seconds, abs=0.01)


# ---- the request ------------------------------------------------------------------------------------


def test_flash_answers_update_started_and_the_app_runs(make) -> None:
    dev = device(1, 12, "6.1.1")  # Argon, Wi-Fi, developer device
    emu = make(dev)
    app = app_for(12, "6.1.1")
    response = flash(emu, dev["id"], app)
    assert response.status_code == 200
    assert response.json() == {"id": dev["id"], "status": "Update started"}
    entry = ledger(emu, dev["id"])
    assert entry["status"] == "normal" and entry["running_app"] and entry["online"]
    assert entry["app_hash"] == modules.parse_module(app).sha256_stored
    assert entry["safe_mode_entries"] == 0 and entry["device_os"] == "6.1.1"
    _assert_matches_plan(entry, delivery.plan_flash(_facts(dev), "6.1.1", app_bytes=len(app)))
    assert get(emu, f"/v1/devices/{dev['id']}").json()["status"] == "normal"


def test_wrong_platform_is_refused_with_a_400(make) -> None:
    dev = device(2, 12, "6.1.1")
    emu = make(dev)
    response = flash(emu, dev["id"], app_for(13, "6.1.1"))
    assert response.status_code == 400
    body = response.json()
    assert (
        body["ok"] is False and "Boron (13)" in body["error_description"] and "Argon (12)" in body["error_description"]
    )
    assert ledger(emu, dev["id"])["bytes_total"] == 0


def test_offline_device_is_refused(make) -> None:
    dev = device(3, 12, "6.1.1", online=False)
    emu = make(dev)
    response = flash(emu, dev["id"], app_for(12, "6.1.1"))
    assert response.status_code == 400
    assert response.json()["error"] == "Device is offline"
    assert ledger(emu, dev["id"])["transfers"] == []


def test_not_a_module_and_source_files_are_refused(make) -> None:
    dev = device(4, 12, "6.1.1")
    emu = make(dev)
    assert flash(emu, dev["id"], b"\x00" * 200).status_code == 400
    response = requests.put(
        emu.url + f"/v1/devices/{dev['id']}",
        headers={"Authorization": f"Bearer {TOKEN}"},
        files={"file": ("app.ino", b"void setup() {}", "text/plain")},
        timeout=10,
    )
    assert response.status_code == 400 and "compile first" in response.json()["error_description"]


def test_unknown_device_and_missing_token(make) -> None:
    emu = make(device(5, 12, "6.1.1"))
    assert flash(emu, "e00fce68ffffffffffffffff", app_for(12, "6.1.1")).status_code == 404
    response = requests.put(emu.url + "/v1/devices/dev-5", files={"file": ("f.bin", b"x")}, timeout=10)
    assert response.status_code == 401


def test_put_device_json_renames(make) -> None:
    dev = device(6, 12, "6.1.1")
    emu = make(dev)
    response = requests.put(
        emu.url + f"/v1/devices/{dev['id']}", headers={"Authorization": f"Bearer {TOKEN}"}, json={"name": "renamed"}
    )
    assert response.status_code == 200 and response.json()["name"] == "renamed"
    assert get(emu, f"/v1/devices/{dev['id']}").json()["name"] == "renamed"


# ---- Safe Mode and the healer -------------------------------------------------------------------------


def test_product_boron_healed_bootloader_first_as_in_the_captures(make) -> None:
    """firmware-update-events.md: Boron 4.0.2 -> 4.2.0 needs bootloader 1200, sent before the system part."""
    dev = device(10, 13, "4.0.2", product_id=PRODUCT, cellular=True)
    emu = make(dev)
    app = app_for(13, "4.2.0", product_version=4)
    assert flash(emu, dev["id"], app, product=PRODUCT).status_code == 200
    entry = ledger(emu, dev["id"])
    assert entry["status"] == "normal" and entry["running_app"] and entry["device_os"] == "4.2.0"
    assert entry["safe_mode_entries"] == 1
    sent = [p["name"] for t in entry["transfers"] for p in t["parts"]]
    assert sent == ["app", "bootloader", "system-part1"]
    assert entry["decision"]["path"] == "healer" and entry["decision"]["rule"] == "product_healer"
    _assert_matches_plan(entry, delivery.plan_flash(_facts(dev), "4.2.0", app_bytes=len(app)))
    # bytes = sum of the module files the versions API serves for 4.2.0 (+ the app)
    listing = get(emu, "/v1/device-os/versions/4.2.0", platform_id=13).json()["modules"]
    sizes = {m["filename"].split("@")[0].removeprefix("boron-"): m["size"] for m in listing}
    assert entry["bytes_modules"] == sizes["bootloader"] + sizes["system-part1"]
    body = get(emu, f"/v1/products/{PRODUCT}/devices/{dev['id']}").json()
    assert body["system_firmware_version"] == "4.2.0" and body["status"] == "normal"


def test_gen2_electron_in_a_product_gets_every_system_part_in_file_order(make) -> None:
    dev = device(11, 10, "1.5.2", product_id=PRODUCT)
    emu = EmulatorServer(fleet(dev, product_platform=10)).start()
    try:
        app = app_for(10, "2.3.1")
        assert flash(emu, dev["id"], app).status_code == 200
        entry = ledger(emu, dev["id"])
        sent = [p["name"] for t in entry["transfers"] for p in t["parts"] if p["function"] != "user_part"]
        plan = delivery.plan_flash(_facts(dev), "2.3.1", app_bytes=len(app))
        assert sent == [s.module.name for s in plan.steps]
        assert sent.index("system-part1") < sent.index("system-part2") < sent.index("system-part3")
        assert entry["running_app"] and entry["device_os"] == "2.3.1"
        _assert_matches_plan(entry, plan)
    finally:
        emu.stop()


def test_developer_electron_is_left_stuck_in_safe_mode(make) -> None:
    dev = device(12, 10, "0.5.3", cellular=True)
    emu = make(dev, clock="manual")
    app = app_for(10, "2.3.1")
    assert flash(emu, dev["id"], app).status_code == 200
    settle(emu)
    entry = ledger(emu, dev["id"])
    assert entry["status"] == "safe_mode" and not entry["running_app"]
    assert entry["decision"]["rule"] == "developer_electron" and entry["decision"]["path"] == "stuck"
    assert entry["bytes_total"] == len(app) and entry["reboots"] == 1 and entry["safe_mode_entries"] == 1
    before = entry["downtime_seconds"]
    admin(emu, "/__emulator/clock", {"advance": 3600})
    after = ledger(emu, dev["id"])["downtime_seconds"]
    assert after == pytest.approx(before + 3600, abs=0.01)  # stuck: the app keeps not running
    assert get(emu, f"/v1/devices/{dev['id']}").json()["status"] == "safe_mode"
    plan = delivery.plan_flash(_facts(dev), "2.3.1", app_bytes=len(app))
    assert plan.path == "stuck" and plan.total_bytes == entry["bytes_total"] and plan.downtime_seconds is None


def test_updates_disabled_defers_the_flash_until_forced(make) -> None:
    """policy: updates disabled (not forced) = deferred: the device refuses the OTA and keeps its app."""
    dev = device(13, 13, "4.0.2", product_id=PRODUCT, firmware_updates_enabled=False)
    emu = make(dev)
    app = app_for(13, "4.2.0")
    response = flash(emu, dev["id"], app, product=PRODUCT)
    assert response.status_code == 200 and response.json()["status"] == "Update started"
    entry = ledger(emu, dev["id"])
    assert entry["status"] == "normal" and entry["running_app"] and entry["app_hash"] is None
    assert entry["bytes_total"] == 0 and entry["reboots"] == 0 and entry["safe_mode_entries"] == 0
    assert entry["decision"]["path"] == "deferred" and entry["decision"]["then"] == "healer"
    assert entry["deferred_updates"] == 1 and entry["update_pending"] is True
    pending = [e for e in emu.api.events.history() if e.name == "particle/device/updates/pending"]
    assert [e.data for e in pending] == ["true"]
    plan = delivery.plan_flash(_facts(dev), "4.2.0", app_bytes=len(app))
    assert plan.path == "deferred" and plan.steps == () and plan.reboots == 0  # (the plan counts the app's bytes)
    response = requests.put(
        emu.url + f"/v1/products/{PRODUCT}/devices/{dev['id']}",
        headers={"Authorization": f"Bearer {TOKEN}"},
        json={"firmware_updates_forced": True},
        timeout=10,
    )
    assert response.status_code == 200
    entry = ledger(emu, dev["id"])  # forced: the pending update goes out and the healer takes it to 4.2.0
    assert entry["status"] == "normal" and entry["device_os"] == "4.2.0" and entry["update_pending"] is False
    assert entry["app_hash"] == modules.parse_module(app).sha256_stored and entry["safe_mode_entries"] == 1


def test_updates_disabled_defers_a_module_file_too(make) -> None:
    dev = device(19, 13, "4.0.2", product_id=PRODUCT, development=True, firmware_updates_enabled=False)
    emu = make(dev)
    assert flash(emu, dev["id"], _module_file(emu, "4.2.0", 13, "bootloader")).status_code == 200
    entry = ledger(emu, dev["id"])
    assert entry["bytes_total"] == 0 and entry["deferred_updates"] == 1
    assert {m["name"]: m["version"] for m in entry["modules"]}["bootloader"] == 1101


def test_gen2_cap_leaves_a_photon_stuck(make) -> None:
    dev = device(14, 6, "2.3.1")
    emu = make(dev)
    boron_app = app_for(13, "4.1.0")  # a dependency (system part 4100) no Photon release has
    info = modules.parse_module(boron_app)
    photon_app = modules.build_user_module(
        platform_id=6,
        module_index=1,
        dependency=modules.Dependency(4, 2, info.dependencies[0].version),
        start_address=0x080A0000,
        payload=b"\x02" * 4000,
    )
    flash(emu, dev["id"], photon_app)
    entry = ledger(emu, dev["id"])
    assert entry["status"] == "safe_mode" and entry["decision"]["rule"] == "gen2_cap"
    assert entry["device_os"] == "2.3.1" and entry["bytes_modules"] == 0


def test_state_file_override_heals_a_developer_electron(make) -> None:
    dev = device(15, 10, "2.0.1", cellular=True, healer=True)
    emu = make(dev)
    flash(emu, dev["id"], app_for(10, "2.3.1"))
    entry = ledger(emu, dev["id"])
    assert entry["running_app"] and entry["device_os"] == "2.3.1"
    assert entry["decision"]["rule"] != "developer_electron"


def test_state_file_override_can_turn_the_healer_off(make) -> None:
    dev = device(16, 13, "4.0.2", product_id=PRODUCT, healer=False)
    emu = make(dev)
    flash(emu, dev["id"], app_for(13, "4.2.0"))
    entry = ledger(emu, dev["id"])
    assert entry["status"] == "safe_mode" and entry["decision"]["rule"] == "healer_off"


def test_never_downgraded(make) -> None:
    dev = device(17, 13, "6.3.4", product_id=PRODUCT)
    emu = make(dev)
    flash(emu, dev["id"], app_for(13, "4.2.0"))
    entry = ledger(emu, dev["id"])
    assert entry["device_os"] == "6.3.4" and entry["running_app"] and entry["bytes_modules"] == 0


def test_combined_ota_one_transfer_no_safe_mode(make) -> None:
    """[fue]: Boron 4.0.1 -> 4.0.2, same bootloader: app and system part in one transfer, no Safe Mode."""
    dev = device(18, 13, "4.0.1", product_id=PRODUCT, cellular=True)
    emu = make(dev)
    app = app_for(13, "4.0.2", product_version=3)
    flash(emu, dev["id"], app, product=PRODUCT)
    entry = ledger(emu, dev["id"])
    assert entry["decision"]["path"] == "combined_ota"
    assert len(entry["transfers"]) == 1 and entry["transfers"][0]["kind"] == "combined"
    assert [p["name"] for p in entry["transfers"][0]["parts"]] == ["app", "system-part1"]
    assert entry["safe_mode_entries"] == 0 and entry["reboots"] == 1 and entry["device_os"] == "4.0.2"
    _assert_matches_plan(entry, delivery.plan_flash(_facts(dev), "4.0.2", app_bytes=len(app)))


# ---- module by module -----------------------------------------------------------------------------------


def _module_file(emu: EmulatorServer, release: str, platform_id: int, name: str) -> bytes:
    listing = get(emu, f"/v1/device-os/versions/{release}", platform_id=platform_id).json()
    entry = next(m for m in listing["modules"] if m["filename"].split("@")[0].endswith("-" + name))
    return requests.get(listing["base_url"] + "/" + entry["filename"], timeout=10).content


def test_module_by_module_update_matches_plan_update_os(make) -> None:
    dev = device(20, 13, "4.0.2", product_id=PRODUCT, development=True, cellular=True)
    emu = make(dev)
    plan = delivery.plan_update_os(_facts(dev), "4.2.0")
    assert [s.module.name for s in plan.steps] == ["bootloader", "system-part1"]
    for step in plan.steps:
        response = flash(emu, dev["id"], _module_file(emu, step.release, 13, step.module.name))
        assert response.status_code == 200
    entry = ledger(emu, dev["id"])
    assert entry["device_os"] == "4.2.0" and entry["running_app"] and entry["safe_mode_entries"] == 0
    assert entry["bytes_total"] == plan.total_bytes and entry["reboots"] == len(plan.steps)
    assert entry["downtime_seconds"] == pytest.approx(plan.downtime_seconds, abs=0.01)


def test_a_module_whose_dependency_is_missing_is_rejected_but_costs_its_bytes(make) -> None:
    dev = device(21, 13, "4.0.2", development=True, product_id=PRODUCT)
    emu = make(dev)
    system_part = _module_file(emu, "4.2.0", 13, "system-part1")  # needs bootloader 1200; the device has 1101
    assert flash(emu, dev["id"], system_part).status_code == 200
    entry = ledger(emu, dev["id"])
    statuses = [e.data for e in emu.api.events.history() if e.name == "spark/flash/status"]
    assert statuses == ["started ", "failed "]
    assert entry["rejected_modules"] == 1 and entry["device_os"] == "4.0.2" and entry["reboots"] == 0
    assert entry["bytes_modules"] == len(system_part)


def test_planned_update_heals_a_stuck_electron(make) -> None:
    """The damage and the repair: a developer Electron stuck in Safe Mode, then update-os module by module."""
    dev = device(22, 10, "2.0.1", cellular=True)
    emu = make(dev)
    flash(emu, dev["id"], app_for(10, "2.3.1"))
    assert ledger(emu, dev["id"])["status"] == "safe_mode"
    plan = delivery.plan_update_os(_facts(dev), "2.3.1")
    for step in plan.steps:
        flash(emu, dev["id"], _module_file(emu, step.release, 10, step.module.name))
    entry = ledger(emu, dev["id"])
    assert entry["status"] == "normal" and entry["running_app"] and entry["device_os"] == "2.3.1"
    assert entry["rejected_modules"] == 0


# ---- events -----------------------------------------------------------------------------------------------


def test_device_event_stream_follows_a_healed_flash(make) -> None:
    dev = device(30, 13, "4.0.2", product_id=PRODUCT, cellular=True, iccid="8931", imei="3527")
    emu = make(dev, clock="manual")
    reader = EventReader(emu, f"/v1/devices/{dev['id']}/events")
    try:
        assert reader.status_line.endswith("200 OK")
        app = app_for(13, "4.2.0", product_version=4)
        flash(emu, dev["id"], app)
        settle(emu)
        assert reader.wait_for(lambda ev: any(n == "particle/device/updates/pending" for n, _ in ev))
        names = reader.names()
        assert names[:4] == ["spark/flash/status", "spark/flash/status", "spark/status", "spark/status"]
        assert [e["data"] for n, e in reader.events[:2]] == ["started ", "success "]
        assert names.count("spark/status/safe-mode") == 2  # one per healer round ([fue])
        assert names.count("spark/safe-mode-updater/updating") == 2
        safe = next(e for n, e in reader.events if n == "spark/status/safe-mode")
        import json

        payload = json.loads(safe["data"])
        assert payload["p"] == 13 and payload["iccid"] == "8931"
        user = next(m for m in payload["m"] if m["f"] == "u")
        assert user["d"] == [{"f": "s", "n": "1", "v": 4200}] and user["vv"] < user["vc"]
        assert next(m for m in payload["m"] if m["f"] == "s")["v"] == 4006
        final_online = [e for n, e in reader.events if n == "spark/status" and e["data"] == "online"][-1]
        assert final_online["version"] == 4 and final_online["productID"] == PRODUCT
        tail = reader.names()[-6:]
        assert tail == [
            "spark/status",
            "spark/device/last_reset",
            "particle/device/updates/enabled",
            "particle/device/updates/forced",
            "spark/device/app-hash",
            "particle/device/updates/pending",
        ]  # the order of the [fue] capture after an update
        app_hash = [e for n, e in reader.events if n == "spark/device/app-hash"][-1]
        assert app_hash["data"] == modules.parse_module(app).sha256_stored
        envelope = reader.events[0][1]
        assert set(envelope) == {
            "data",
            "ttl",
            "published_at",
            "coreid",
            "userid",
            "version",
            "public",
            "productID",
            "name",
        }
        assert envelope["coreid"] == dev["id"] and envelope["ttl"] == 60 and envelope["published_at"].endswith("Z")
    finally:
        reader.close()


def test_product_and_prefix_streams_filter(make) -> None:
    a = device(31, 13, "6.1.1", product_id=PRODUCT)
    b = device(32, 12, "6.1.1")
    emu = make(a, b)
    product = EventReader(emu, f"/v1/products/{PRODUCT}/events")
    flashes = EventReader(emu, "/v1/devices/events/spark/flash")
    try:
        flash(emu, a["id"], app_for(13, "6.1.1"))
        flash(emu, b["id"], app_for(12, "6.1.1"))
        emu.state.events.publish("particle/firmware/create", '{"version":"1"}', coreid="api", product_id=PRODUCT)
        assert flashes.wait_for(lambda ev: len(ev) == 4)
        assert product.wait_for(lambda ev: any(n == "particle/firmware/create" for n, _ in ev))
        assert {e["coreid"] for _, e in product.events} == {a["id"], "api"}
        assert all(n.startswith("spark/flash") for n in flashes.names())
        assert {e["coreid"] for _, e in flashes.events} == {a["id"], b["id"]}
    finally:
        product.close()
        flashes.close()


def test_streams_end_when_the_server_stops() -> None:
    emu = EmulatorServer(fleet(device(33, 12, "6.1.1"))).start()
    reader = EventReader(emu, "/v1/devices/events")
    emu.stop()
    assert reader.closed.wait(5), "the event stream outlived the server"


def test_streams_need_a_token_and_a_known_product(make) -> None:
    emu = make(device(34, 12, "6.1.1"))
    assert requests.get(emu.url + "/v1/devices/events", timeout=5).status_code == 401
    assert get(emu, "/v1/products/999999/events").status_code == 404


# ---- clock, ledger admin, state file ----------------------------------------------------------------------


def test_manual_clock_advances_step_by_step(make) -> None:
    dev = device(40, 12, "6.1.1")
    emu = make(dev, clock="manual")
    flash(emu, dev["id"], app_for(12, "6.1.1"))
    assert ledger(emu, dev["id"])["updating"] is True
    assert admin(emu, "/__emulator/field")["pending_steps"] >= 1
    admin(emu, "/__emulator/clock", {"advance": delivery.REBOOT_SECONDS + 5})
    entry = ledger(emu, dev["id"])
    assert entry["updating"] is False and entry["running_app"]
    assert admin(emu, "/__emulator/clock")["clock"]["mode"] == "manual"


def test_speed_clock_runs_by_itself(make) -> None:
    dev = device(41, 12, "6.1.1")
    emu = make(dev, clock=10_000)
    flash(emu, dev["id"], app_for(12, "6.1.1"))
    import time

    deadline = time.monotonic() + 5
    while ledger(emu, dev["id"])["updating"] and time.monotonic() < deadline:
        time.sleep(0.01)
    assert ledger(emu, dev["id"])["running_app"]


def test_clock_admin_rejects_nonsense(make) -> None:
    emu = make(device(42, 12, "6.1.1"))
    for body in ({"speed": -1}, {"advance": "soon"}, {"warp": 1}, [1]):
        response = requests.post(emu.url + "/__emulator/clock", json=body, timeout=5)
        assert response.status_code == 400, body
    assert admin(emu, "/__emulator/clock", {"speed": 50})["clock"]["speed"] == 50


def test_reset_forgets_the_ledgers(make) -> None:
    dev = device(43, 12, "6.1.1")
    emu = make(dev)
    flash(emu, dev["id"], app_for(12, "6.1.1"))
    assert ledger(emu, dev["id"])["bytes_total"] > 0
    admin(emu, "/__emulator/field/reset", {})
    entry = ledger(emu, dev["id"])
    assert entry["bytes_total"] == 0 and entry["reboots"] == 0 and entry["app_hash"] is not None


def test_ledger_lists_touched_devices_and_404s_unknown(make) -> None:
    dev = device(44, 12, "6.1.1")
    emu = make(dev, device(45, 12, "6.1.1"))
    flash(emu, dev["id"], app_for(12, "6.1.1"))
    assert set(admin(emu, "/__emulator/field")["devices"]) == {dev["id"]}
    assert requests.get(emu.url + "/__emulator/field/nope", timeout=5).status_code == 404


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"field": {"clock": 0}}, r"field\.clock"),
        ({"field": {"clock": "fast"}}, r"field\.clock"),
        ({"field": {"speed": 1}}, r"field: unknown"),
        ({"devices": [dict(device(1, 12, "6.1.1"), healer="yes")]}, r"devices\[0\]\.healer"),
        ({"devices": [dict(device(1, 12, "6.1.1"), status="broken")]}, r"devices\[0\]\.status"),
    ],
)
def test_state_file_field_settings_are_validated(patch: dict, message: str) -> None:
    data = {"devices": [], **patch}
    with pytest.raises(StateError, match=message):
        parse_state(data, "s.json")


def test_sim_clock_modes() -> None:
    clock = SimClock("manual")
    clock.advance(10)
    assert clock.now() == 10 and clock.real_wait(20) is None
    clock.set_speed(1000)
    assert clock.mode == "speed" and clock.real_wait(clock.now() + 1000) == pytest.approx(1.0, abs=0.05)
    with pytest.raises(ValueError):
        SimClock.parse_speed(True)


def test_installed_modules_match_the_prediction_reading() -> None:
    """The simulator's starting modules are osmodules.installed_modules (one reading of a device's release)."""
    from fieldsafe.emulator.field import _initial_modules
    from fieldsafe.emulator.state import Device

    for platform_id, release in ((13, "4.0.2"), (10, "2.0.1"), (32, "5.8.0"), (6, "1.5.2")):
        dev = Device("e00fce6800000000000000aa", "x", platform_id, release, False, platform_id, True, None)
        installed, known = _initial_modules(dev)
        assert known
        assert {k: m.version for k, m in installed.items()} == osmodules.installed_modules(platform_id, release)


def test_release_delivery_announces_auto_update(make) -> None:
    """Product releases (fleetemu's routes) deliver through FieldSimulator.deliver(cause="auto-update")."""
    dev = device(50, 13, "6.1.1", product_id=PRODUCT)
    emu = make(dev)
    reader = EventReader(emu, f"/v1/products/{PRODUCT}/events/spark")
    try:
        target = emu.state.find_device(dev["id"])
        emu.api.field.deliver(target, app_for(13, "6.1.1", product_version=2), cause="auto-update")
        assert reader.wait_for(lambda ev: any(n == "spark/device/app-hash" for n, _ in ev))
        first = reader.events[0][1]
        assert (first["name"], first["data"], first["userid"]) == ("spark/status", "auto-update", "")
        assert ledger(emu, dev["id"])["transfers"][0]["cause"] == "auto-update"
        assert target.firmware_version == 2
    finally:
        reader.close()


def test_fieldsafe_emulator_clock_option(tmp_path) -> None:
    import os
    import signal
    import subprocess
    import sys

    env = {**os.environ, "HOME": str(tmp_path)}
    bad = subprocess.run(
        [sys.executable, "-m", "fieldsafe", "emulator", "--clock", "fast"], capture_output=True, text=True, env=env
    )
    assert bad.returncode == 2 and "--clock" in bad.stderr
    proc = subprocess.Popen(
        [sys.executable, "-m", "fieldsafe", "emulator", "--clock", "manual"], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert requests.get(url + "/__emulator/clock", timeout=5).json()["clock"]["mode"] == "manual"
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0


def _matrix() -> list[tuple[int, str, str, bool]]:
    from fieldsafe.versions import catalog

    cases = []
    for platform_id in (6, 10, 12, 13, 23, 26, 28, 32, 35):
        rows = [str(r.version) for r in catalog().releases(platform_id, include_prereleases=False)]
        picks = sorted({rows[0], rows[len(rows) // 3], rows[2 * len(rows) // 3], rows[-1]}, key=rows.index)
        for i, a in enumerate(picks):
            for b in picks[i + 1 :]:
                for in_product in (False, True):
                    cases.append((platform_id, a, b, in_product))
            cases.append((platform_id, picks[-1], a, False))  # an older app on a newer device: never downgraded
    return cases


MATRIX = _matrix()


def test_simulated_flashes_cost_what_the_plan_predicts() -> None:
    """Across platforms, releases, product/developer: the ledger equals delivery.plan_flash (bytes, modules,
    reboots, downtime) and the path the simulation took is the policy's."""
    from fieldsafe.platforms import get as platform

    devs = []
    for n, (platform_id, have, _need, in_product) in enumerate(MATRIX):
        extra = {"product_id": PRODUCT} if in_product else {}
        devs.append(device(1000 + n, platform_id, have, cellular=platform(platform_id).cellular, **extra))
    data = {"tokens": [TOKEN], "devices": devs, "field": {"clock": "instant"}}
    data["products"] = [
        {"id": PRODUCT + n, "slug": f"p{n}", "platform_id": pid} for n, pid in enumerate(sorted({c[0] for c in MATRIX}))
    ]
    by_platform = {p["platform_id"]: p["id"] for p in data["products"]}
    for dev, (platform_id, _, _, in_product) in zip(devs, MATRIX, strict=True):
        if in_product:
            dev["product_id"] = by_platform[platform_id]
    with EmulatorServer(parse_state(data, "<matrix>")) as emu:
        mismatches = []
        rules = set()
        for dev, (platform_id, have, need, in_product) in zip(devs, MATRIX, strict=True):
            app = app_for(platform_id, need)
            assert flash(emu, dev["id"], app).status_code == 200
            entry = ledger(emu, dev["id"])
            plan = delivery.plan_flash(_facts(dev), need, app_bytes=len(app))
            got = (entry["bytes_total"], entry["reboots"], entry["safe_mode_entries"] > 0)
            want = (plan.total_bytes, plan.reboots, plan.decision.safe_mode)
            path = (entry["decision"] or {"path": "runs"})["path"]
            rules.add((entry["decision"] or {"rule": "runs_as_is"})["rule"])
            if (
                got != want
                or path != plan.path
                or (plan.downtime_seconds is not None and abs(entry["downtime_seconds"] - plan.downtime_seconds) > 0.01)
            ):
                mismatches.append((platform_id, have, need, in_product, got, want, path, str(plan.path)))
            if plan.path in ("runs", "combined_ota", "healer"):
                assert entry["running_app"], (platform_id, have, need)
        assert not mismatches, mismatches
    assert len(MATRIX) > 100
    assert rules >= {"runs_as_is", "developer_electron", "product_healer", "gen2_healer"}  # + the explicit tests above
    assert rules >= {"developer_healer"}


def test_planned_updates_module_by_module_reach_the_target_as_planned() -> None:
    """plan_update_os step files sent one by one (what ``fieldsafe update-os`` does): every step applies, the
    device ends on the target, and the ledger equals the plan."""
    from fieldsafe.emulator import osfiles
    from fieldsafe.platforms import get as platform

    cases = [c for c in MATRIX if c[1] != c[2] and not c[3]]
    cases = [c for c in cases if delivery.plan_update_os(_facts(device(0, c[0], c[1])), c[2]).path == "planned"]
    devs = [device(2000 + n, pid, have, cellular=platform(pid).cellular) for n, (pid, have, _, _) in enumerate(cases)]
    with EmulatorServer(parse_state({"tokens": [TOKEN], "devices": devs, "field": {"clock": "instant"}})) as emu:
        for dev, (platform_id, _, target, _) in zip(devs, cases, strict=True):
            plan = delivery.plan_update_os(_facts(dev), target)
            for step in plan.steps:
                binary = osfiles.module_file(platform_id, step.release, step.module.name)
                assert flash(emu, dev["id"], binary).status_code == 200
            entry = ledger(emu, dev["id"])
            assert entry["device_os"] == target and entry["rejected_modules"] == 0, (platform_id, dev, target)
            assert (entry["bytes_total"], entry["reboots"]) == (plan.total_bytes, plan.reboots)
            assert entry["downtime_seconds"] == pytest.approx(plan.downtime_seconds, abs=0.01)
    assert len(cases) > 20


def test_dependency_check_is_by_function_index_and_version() -> None:
    from fieldsafe.emulator.devicecheck import Installed, unmet

    boot = Installed("bootloader", "bootloader", 0, 1101, (), "4.0.2", 1)
    part = Installed("system-part1", "system_part", 1, 4006, (("bootloader", 0, 1101),), "4.0.2", 1)
    have = {("bootloader", 0): boot, ("system_part", 1): part}
    assert unmet(have, (("system_part", 1, 4006),)) == []
    assert unmet(have, (("system_part", 1, 4200),)) == [("system_part", 1, 4200)]
    assert unmet(have, (("system_part", 2, 1),)) == [("system_part", 2, 1)]  # another index never counts
    assert unmet(have, (("bootloader", 0, 1200),), replacing=("bootloader", 0)) == []  # not its own dependency


def test_event_bus_is_bounded_and_closes() -> None:
    from fieldsafe.emulator.events import EventBus

    bus = EventBus(max_events=3)
    for n in range(5):
        bus.publish("x", str(n), coreid="api")
    assert [e.data for e in bus.history()] == ["2", "3", "4"]
    assert [e.data for e in bus.wait_after(4, 0.01)] == ["4"]  # seq 5 = the fifth event
    assert bus.wait_after(5, 0.01) == []
    bus.close()
    assert bus.wait_after(0, 5) == []  # closed: returns at once, no event delivered


def test_reset_mid_update_finishes_it_first(make) -> None:
    dev = device(46, 13, "4.0.2", product_id=PRODUCT)
    emu = make(dev, clock="manual")
    flash(emu, dev["id"], app_for(13, "4.2.0"))
    admin(emu, "/__emulator/clock", {"advance": 1})
    admin(emu, "/__emulator/field/reset", {})
    entry = ledger(emu, dev["id"])
    assert entry["online"] and entry["running_app"] and entry["device_os"] == "4.2.0" and entry["bytes_total"] == 0


def test_docs_list_every_policy_row_the_simulator_acts_out() -> None:
    from pathlib import Path

    from fieldsafe.policy import POLICY_TABLE

    text = (Path(__file__).resolve().parent.parent / "docs" / "emulator.md").read_text()
    section = text[text.index("## Field simulator") :]
    assert all(f"| `{row.rule}` |" in section for row in POLICY_TABLE)


def test_a_device_the_state_file_puts_in_safe_mode_runs_again_after_a_fitting_app(make) -> None:
    dev = device(47, 12, "6.1.1", status="safe_mode")
    emu = make(dev, clock="manual")
    admin(emu, "/__emulator/clock", {"advance": 100})
    entry = ledger(emu, dev["id"])
    assert not entry["running_app"] and entry["downtime_seconds"] == pytest.approx(100, abs=0.01)
    flash(emu, dev["id"], app_for(12, "6.1.1"))
    settle(emu)
    entry = ledger(emu, dev["id"])
    assert entry["running_app"] and entry["status"] == "normal" and entry["safe_mode_entries"] == 0


def test_a_zip_bundle_flashes_its_app(make) -> None:
    import io
    import zipfile

    dev = device(48, 12, "6.1.1")
    emu = make(dev)
    app = app_for(12, "6.1.1")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        bundle.writestr("app.bin", app)
        bundle.writestr("assets/sound.wav", b"RIFF....")
    assert flash(emu, dev["id"], buffer.getvalue()).status_code == 200
    assert ledger(emu, dev["id"])["app_hash"] == modules.parse_module(app).sha256_stored
    assert flash(emu, dev["id"], b"PK\x03\x04broken").status_code == 400
