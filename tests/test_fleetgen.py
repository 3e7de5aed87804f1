"""The fleet generator: deterministic from a seed, follows the mix, rejects bad SPECs naming the key."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from fieldsafe.emulator.fleetgen import FleetSpecError, generate, load_spec, parse_spec
from fieldsafe.emulator.state import EmulatorState, StateError, parse_state

SPEC = {
    "seed": 42,
    "devices": 4000,
    "platform": "boron",
    "device_os": {"4.0.2": 50, "2.3.0": 30, "5.8.0": 20},
    "firmware": {"5": 8, "none": 2},
    "groups": {"beta": 0.1, "north": 0.5},
    "cellular": 0.9,
    "offline": 0.25,
    "updates_disabled": 0.05,
    "development": 0.02,
    "quarantined": 0.01,
    "locked": {"5": 0.03},
}


def _generate(spec: dict[str, object]) -> EmulatorState:
    state = EmulatorState()
    generate(state, parse_spec(spec))
    return state


def _share(state: EmulatorState, test) -> float:  # type: ignore[no-untyped-def]
    return sum(1 for d in state.devices if test(d)) / len(state.devices)


def test_same_seed_same_fleet_other_seed_other_fleet() -> None:
    def fingerprint(state: EmulatorState) -> list[tuple[object, ...]]:
        return [
            (d.id, d.name, d.system_firmware_version, d.groups, d.online, d.firmware_version, d.quarantined)
            for d in state.devices
        ]

    assert fingerprint(_generate(SPEC)) == fingerprint(_generate(SPEC))
    assert fingerprint(_generate({**SPEC, "seed": 43})) != fingerprint(_generate(SPEC))


def test_the_fleet_follows_the_mix() -> None:
    state = _generate(SPEC)
    (product,) = state.products
    assert product.platform_id == 13 and product.slug == "boron-fleet" and len(state.devices) == 4000
    assert len({d.id for d in state.devices}) == 4000
    assert {d.product_id for d in state.devices} == {product.id} and not any(d.owned for d in state.devices)
    assert _share(state, lambda d: d.system_firmware_version == "4.0.2") == pytest.approx(0.5, abs=0.03)
    assert _share(state, lambda d: d.system_firmware_version == "5.8.0") == pytest.approx(0.2, abs=0.03)
    assert _share(state, lambda d: d.firmware_version is None) == pytest.approx(0.2, abs=0.03)
    assert _share(state, lambda d: "north" in d.groups) == pytest.approx(0.5, abs=0.03)
    assert _share(state, lambda d: "beta" in d.groups) == pytest.approx(0.1, abs=0.02)
    assert _share(state, lambda d: d.cellular) == pytest.approx(0.9, abs=0.02)
    assert _share(state, lambda d: not d.online) == pytest.approx(0.25, abs=0.03)
    assert _share(state, lambda d: not d.firmware_updates_enabled) == pytest.approx(0.05, abs=0.015)
    assert _share(state, lambda d: d.desired_firmware_version == 5) == pytest.approx(0.03, abs=0.015)
    assert 0 < _share(state, lambda d: d.quarantined) < 0.03
    assert set(product.firmware) == {5} and set(product.groups) == {"beta", "north"}
    assert all(d.iccid for d in state.devices if d.cellular) and not any(
        d.iccid for d in state.devices if not d.cellular
    )


def test_spec_fills_an_existing_product() -> None:
    state = parse_state(
        {
            "products": [{"id": 77, "platform_id": 12, "groups": ["lab"]}],
            "fleets": [{"seed": 1, "devices": 10, "product_id": 77, "device_os": {"6.1.1": 1}, "groups": {"lab": 1}}],
        }
    )
    assert len(state.devices) == 10 and all(d.groups == ("lab",) and not d.cellular for d in state.devices)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"devices": 100_001}, r"SPEC: devices: expected a number of devices from 0 to 100,000"),
        ({"device_os": {"9.9.9": 1}}, r"SPEC: device_os\.9\.9\.9: not a Device OS release for platform 13"),
        ({"device_os": {"4.0.2": -1}}, r"device_os\.4\.0\.2: expected a weight >= 0"),
        ({"groups": {"Bad Group": 0.5}}, r"groups\.Bad Group: group names are lower-case"),
        ({"offline": 1.5}, r"offline: expected a share from 0 to 1"),
        ({"firmware": {"v5": 1}}, r"firmware\.v5: 'v5' is not a product firmware version"),
        ({"colour": "red"}, r"unknown key\(s\) \['colour'\]"),
        ({"platform": "toaster"}, r"platform: 'toaster' is not a known Particle platform"),
    ],
)
def test_bad_specs_name_the_key(change: dict[str, object], message: str) -> None:
    with pytest.raises(FleetSpecError, match=message):
        _generate({**SPEC, **change})


def test_state_file_fleet_errors_name_the_file() -> None:
    with pytest.raises(StateError, match=r"big\.json: fleets\[0\]: devices"):
        parse_state({"fleets": [{**SPEC, "devices": -1}]}, "big.json")


def test_load_spec_from_file_or_inline(tmp_path: Path) -> None:
    path = tmp_path / "fleet.json"
    path.write_text(json.dumps(SPEC))
    assert load_spec(str(path)).devices == 4000 == load_spec(json.dumps(SPEC)).devices
    with pytest.raises(FleetSpecError, match=r"nothere\.json: cannot read"):
        load_spec(str(tmp_path / "nothere.json"))
    with pytest.raises(FleetSpecError, match=r"--fleet: not valid JSON"):
        load_spec("{nope")


def test_cli_emulator_serves_a_generated_fleet(tmp_path: Path) -> None:
    spec = json.dumps({**SPEC, "devices": 300})
    command = [sys.executable, "-m", "fieldsafe", "emulator", "--token", "t", "--fleet", spec, "--rate-limit", "500/60"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        body = requests.get(
            url + "/v1/products/boron-fleet/devices", headers={"Authorization": "Bearer t"}, timeout=10
        ).json()
        assert body["meta"]["total"] == 300
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert "300 devices" in (process.stderr.read() if process.stderr else "")


def test_cli_rejects_a_bad_fleet_spec() -> None:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "fieldsafe", "emulator", "--fleet", '{"devices": 5}'],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "--fleet: product: give 'product'" in result.stderr
    assert "Traceback" not in result.stderr and time.monotonic() - started < 60
