"""Issue 11's done-when, against the field simulator with a mixed 1,000-device product:

* a release of a build pinned above the fleet floor is refused by ``fieldsafe release``, while the same release
  through the plain API sends the predicted number of devices into Safe Mode with the predicted bytes (one
  test, both sides: the prediction is ``fieldsafe release --json``'s, the outcome is the simulator's ledger);
* retargeting to the floor (the FS501 fix) and releasing ends with 0 Safe Mode entries and 0 unplanned bytes.

"Unplanned bytes" are the Device OS module bytes a release pulls in (``bytes_modules`` in the ledger): a
release the developer planned sends only the app.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from fieldsafe.cli import main
from fieldsafe.cloud import CloudConfig, ParticleCloud
from fieldsafe.emulator import EmulatorServer
from fleet_helpers import TOKEN, app_binary, fleet_state

# Borons: 2.3.1 needs the healer for 4.0.2 (bootloader), 4.0.1 takes a combined OTA, 4.0.2 and 6.3.4 run it.
MIX = (("2.3.1", 150), ("4.0.1", 100), ("4.0.2", 650), ("6.3.4", 100))


def _state():  # type: ignore[no-untyped-def]
    state = fleet_state(MIX, every_nth_in_group=10)
    product = next(p for p in state.products if p.slug == "trackers")
    product.require_running_before_release = False  # the cloud's first-release gate is not what is tested here
    return state


def _settle(emu: EmulatorServer) -> dict:
    for body in ({"speed": "instant"}, {"settle": True}):
        reply = requests.post(f"{emu.url}/__emulator/clock", json=body, timeout=60)
        assert reply.ok, reply.text
    return requests.get(f"{emu.url}/__emulator/field", timeout=30).json()["devices"]


def _ledger_totals(devices: dict) -> tuple[int, int, int]:
    """(devices that entered Safe Mode, Device OS module bytes, devices that got an app)."""
    safe = sum(1 for d in devices.values() if d.get("safe_mode_entries", 0) > 0)
    modules = sum(d.get("bytes_modules", 0) for d in devices.values())
    apps = sum(1 for d in devices.values() if d.get("bytes_app", 0) > 0)
    return safe, modules, apps


def _release_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict]:
    status = main(["release", "trackers", *argv, "--json"])
    return status, json.loads(capsys.readouterr().out)


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PARTICLE_ACCESS_TOKEN", TOKEN)
    monkeypatch.setenv("FIELDSAFE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


def test_release_above_the_floor_refused_then_plain_api_matches_the_prediction(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    above = env / "above.bin"
    above.write_bytes(app_binary("4.0.2", version=2))
    with EmulatorServer(_state(), tokens=[TOKEN]) as emu:
        monkeypatch.setenv("PARTICLE_API_URL", emu.url)
        # fieldsafe's side: the impact on exactly the reached devices, and a refusal
        status, predicted = _release_json(
            capsys, "--binary", str(above), "--version", "2", "--product-default", "--intelligent"
        )
        assert status == 1 and predicted["decision"] == "refuse"
        impact = predicted["impact"]
        assert predicted["reached"] == 1000 and predicted["listing"]["complete"]
        assert impact["runs"] == 750 and impact["healed"] == 150 and impact["combined_ota"] == 100
        assert impact["safe_mode"] == 150 and impact["os_bytes"] > 0
        client = ParticleCloud(CloudConfig(emu.url, TOKEN), cache_dir=env / "c2")
        assert 2 not in {f["version"] for f in client.product_firmware("trackers")}  # refused: nothing uploaded
        assert _ledger_totals(_settle(emu)) == (0, 0, 0)

        # the plain API's side: the same binary uploaded and released, no guard
        client.upload_product_firmware(
            "trackers", version=2, binary=above.read_bytes(), filename="above.bin", title="v2"
        )
        client.release_product_firmware("trackers", version=2, product_default=True, groups=[], intelligent=True)
        safe, module_bytes, apps = _ledger_totals(_settle(emu))
        assert safe == impact["safe_mode"]  # the predicted number of devices entered Safe Mode
        assert module_bytes == impact["os_bytes"]  # with the predicted Device OS bytes (healer + combined OTA)
        assert apps == predicted["reached"]
        per_cohort = {(c["release"], c["consequence"]): c for c in impact["cohorts"]}
        ledger = _settle(emu)
        healed_bytes = {d["bytes_modules"] for d in ledger.values() if d.get("safe_mode_entries", 0) > 0}
        assert healed_bytes == {per_cohort[("2.3.1", "healer")]["os_bytes_each"]}

    # retarget to the floor (the FS501 fix of the refusal) and release: no Safe Mode, no unplanned bytes
    fs501 = next(f for f in predicted["findings"] if f["code"] == "FS501")
    floor_fix = next(x for x in fs501["fixes"] if x["params"].get("role") == "floor")
    assert floor_fix["params"]["release"] == "2.3.1"
    at_floor = env / "floor.bin"
    at_floor.write_bytes(app_binary(floor_fix["params"]["release"], version=2))
    with EmulatorServer(_state(), tokens=[TOKEN]) as emu:
        monkeypatch.setenv("PARTICLE_API_URL", emu.url)
        status, outcome = _release_json(
            capsys, "--binary", str(at_floor), "--version", "2", "--product-default", "--intelligent"
        )
        assert status == 0 and outcome["decision"] == "release", outcome["reasons"]
        assert outcome["released"]["ok"] and outcome["released"]["uploaded"]
        assert outcome["impact"]["runs"] == 1000 and outcome["impact"]["safe_mode"] == 0
        safe, module_bytes, apps = _ledger_totals(_settle(emu))
        assert (safe, module_bytes) == (0, 0)
        assert apps == 1000
