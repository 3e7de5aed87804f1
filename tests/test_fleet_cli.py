"""``fieldsafe fleet`` and ``fieldsafe release --dry-run`` against a real EmulatorServer (in-process CLI)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from fieldsafe.cli import main
from fieldsafe.emulator import EmulatorServer
from fleet_helpers import TOKEN, app_binary, fleet_state

MIX = (("2.3.1", 54), ("4.0.2", 900), ("6.3.4", 46))


@pytest.fixture
def emu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[EmulatorServer]:
    with EmulatorServer(fleet_state(MIX, stale=5, updates_disabled=3, development=2), tokens=[TOKEN]) as server:
        monkeypatch.setenv("PARTICLE_API_URL", server.url)
        monkeypatch.setenv("PARTICLE_ACCESS_TOKEN", TOKEN)
        monkeypatch.setenv("FIELDSAFE_CACHE_DIR", str(tmp_path / "cache"))
        monkeypatch.setenv("HOME", str(tmp_path))
        monkeypatch.chdir(tmp_path)
        yield server


def _project(root: Path, pin: str, extra: str = "") -> Path:
    (root / ".vscode").mkdir(parents=True)
    (root / ".vscode" / "settings.json").write_text(
        '{\n  // the pin\n  "particle.firmwareVersion": "' + pin + '",\n  "particle.targetPlatform": "boron",\n'
        '  "fieldsafe.targetProduct": "trackers"' + extra + "\n}\n"
    )
    return root


def test_fleet_text_shows_bars_floor_and_what_the_pin_means(emu: EmulatorServer, tmp_path: Path, capsys) -> None:
    project = _project(tmp_path / "p", "6.3.4")
    status = main(["fleet", "trackers", "--project", str(project)])
    out = capsys.readouterr().out
    assert status == 1  # 3 devices would be stuck
    assert "trackers (Boron): 1,000 devices" in out
    assert "reaches 998 of them; fleet floor 2.3.1" in out  # 2 development devices are never reached
    assert "█" in out and "<- floor" in out and "<- pin" in out
    assert "[FS501]" in out and "fix: Retarget to 2.3.1 (runs on all 998 devices)" in out
    assert "[FS503]" in out  # 5 devices not heard from for 60 days


def test_fleet_json_and_groups(emu: EmulatorServer, capsys) -> None:
    status = main(["fleet", "trackers", "--groups", "beta", "--target", "4.0.2", "--platform", "boron", "--json"])
    body = json.loads(capsys.readouterr().out)
    assert body["devices"] == 100 and body["floor"] == "2.3.1" and body["pin"] == "4.0.2"
    assert body["listing"]["complete"] and body["listing"]["listed"] == 1000
    rows = {r["release"]: r for r in body["histogram"]}
    assert rows["4.0.2"]["pin"] and rows["2.3.1"]["floor"]
    fs501 = next(f for f in body["findings"] if f["code"] == "FS501")
    assert (
        fs501["facts"]["runs"] + fs501["facts"]["healed"] + fs501["facts"]["combined_ota"] + fs501["facts"]["stuck"]
        == 100
    )
    assert status == (1 if fs501["severity"] == "error" else 0)


def test_fleet_offline_uses_the_saved_listing_and_says_its_age(emu: EmulatorServer, capsys) -> None:
    assert main(["fleet", "trackers", "--json"]) == 0
    capsys.readouterr()
    assert main(["fleet", "trackers", "--offline", "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["listing"]["source"] == "cache"
    assert any(f["code"] == "FS507" for f in body["findings"])


def test_fleet_unknown_product_is_a_clear_error(emu: EmulatorServer, capsys) -> None:
    assert main(["fleet", "nope"]) == 1
    assert "cannot list product nope" in capsys.readouterr().err


def test_release_dry_run_refuses_a_build_above_the_floor(emu: EmulatorServer, tmp_path: Path, capsys) -> None:
    binary = tmp_path / "app.bin"
    binary.write_bytes(app_binary("6.3.4", version=2))
    status = main(["release", "trackers", "--binary", str(binary), "--version", "2", "--product-default", "--dry-run"])
    captured = capsys.readouterr()
    assert status == 1
    assert "reaches 998 device(s)" in captured.out and "refusing to release v2" in captured.err
    assert "would not run it as is" in captured.err and "once they enable updates" in captured.err
    ok = tmp_path / "floor.bin"
    ok.write_bytes(app_binary("2.3.1", version=2))
    status = main(["release", "trackers", "--binary", str(ok), "--version", "2", "--product-default", "--dry-run"])
    assert status == 0, capsys.readouterr()


def test_release_usage_errors(emu: EmulatorServer, tmp_path: Path, capsys) -> None:
    binary = tmp_path / "app.bin"
    binary.write_bytes(app_binary("2.3.1", version=3))
    assert main(["release", "trackers", "--binary", str(binary), "--version", "3"]) == 2
    assert main(["release", "trackers", "--binary", str(binary), "--version", "4", "--product-default"]) == 2
    assert "PRODUCT_VERSION 3" in capsys.readouterr().err
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"nope")
    assert main(["release", "trackers", "--binary", str(junk), "--version", "3", "--product-default"]) == 2


def _sources(root: Path) -> Path:
    (root / "src").mkdir(parents=True, exist_ok=True)
    (root / "src" / "app.cpp").write_text('#include "Particle.h"\nvoid setup() {}\nvoid loop() {}\n')
    (root / "project.properties").write_text("name=app\n")
    return root


def test_check_applies_the_fleet_target_in_ci(emu: EmulatorServer, tmp_path: Path, capsys) -> None:
    project = _sources(_project(tmp_path / "p", "6.3.4"))
    assert main(["check", str(project), "--json"]) == 1  # healed and stuck devices: CI fails
    body = json.loads(capsys.readouterr().out)
    codes = [f["code"] for f in body["findings"]]
    assert "FS501" in codes
    fleet_target = next(t for t in body["target"]["targets"] if t["kind"] == "fleet")
    assert fleet_target["devices"] == 998 and fleet_target["floor"] == "2.3.1"
    # the beta group has no stuck devices: healed updates pass when the project allows them
    assert main(["check", str(project), "--target", "product:trackers", "--groups", "beta"]) == 1
    capsys.readouterr()
    status = main(["check", str(project), "--target", "product:trackers", "--groups", "beta", "--allow-healed-updates"])
    err = capsys.readouterr().err
    assert status == 0 and "target fleet trackers: 100 devices, floor 2.3.1" in err


def test_check_at_the_floor_passes_and_project_policy_is_read(emu: EmulatorServer, tmp_path: Path, capsys) -> None:
    project = _sources(_project(tmp_path / "p", "2.3.1"))
    assert main(["check", str(project), "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert "FS502" in [f["code"] for f in body["findings"]]
    allowed = _sources(
        _project(
            tmp_path / "q", "6.3.4", ',\n  "fieldsafe.targetGroups": ["beta"],\n  "fieldsafe.allowHealedUpdates": true'
        )
    )
    assert main(["check", str(allowed)]) == 0


def test_bad_fleet_settings_are_usage_errors(emu: EmulatorServer, tmp_path: Path, capsys) -> None:
    project = _sources(_project(tmp_path / "p", "2.3.1", ',\n  "fieldsafe.targetGroups": "beta"'))
    assert main(["check", str(project)]) == 2
    assert '"fieldsafe.targetGroups" must be an array' in capsys.readouterr().err
    assert main(["check", str(_sources(tmp_path / "r")), "--target", "2.3.1", "--groups", "beta"]) == 2


def test_unknown_target_product_fails_ci(emu: EmulatorServer, tmp_path: Path, capsys) -> None:
    project = _sources(_project(tmp_path / "p", "2.3.1"))
    assert main(["check", str(project), "--target", "product:nope", "--json"]) == 1
    body = json.loads(capsys.readouterr().out)
    assert "FS509" in [f["code"] for f in body["findings"]]


def test_release_counts_devices_with_updates_disabled_by_what_happens_once_enabled(
    emu: EmulatorServer, tmp_path: Path, capsys
) -> None:
    binary = tmp_path / "app.bin"
    binary.write_bytes(app_binary("6.3.4", version=2))
    base = ["release", "trackers", "--binary", str(binary), "--version", "2", "--dry-run"]
    assert main([*base, "--product-default"]) == 1
    err = capsys.readouterr().err
    assert "3 of them once they enable updates" in err  # the 3 devices with updates disabled are not "fine"
    # Accepted: they keep their app until they enable updates, then the healer updates them (never stuck here;
    # stuck devices are refused even with the flag: tests/test_fleet.py and the release field test)
    assert main([*base, "--product-default", "--allow-device-os-update", "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["impact"]["deferred"] == 3 and body["impact"]["stuck"] == 0
    assert main([*base, "--groups", "beta", "--allow-device-os-update"]) == 0


def test_check_names_the_api_that_empties_the_target_window(emu: EmulatorServer, tmp_path: Path, capsys) -> None:
    project = _sources(_project(tmp_path / "p", "6.3.4", ',\n  "fieldsafe.allowHealedUpdates": true'))
    (project / "src" / "app.cpp").write_text(
        '#include "Particle.h"\nvoid setup() { Ledger l = Particle.ledger("x"); }\nvoid loop() {}\n'
    )
    main(["check", str(project), "--json"])
    body = json.loads(capsys.readouterr().out)
    window = next(f for f in body["findings"] if f["code"] == "FS505")
    assert "`Ledger`" in window["message"] and "fleet floor 2.3.1" in window["message"]
    assert [x["kind"] for x in window["fixes"]] == ["guard", "retarget"]


def test_compile_judges_the_fleet_on_the_binary_it_got(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """The cloud built for 6.3.4 although the pin says 4.0.2: the fleet verdict follows the binary."""
    from test_emulator_fakes import FakeCompiler

    class BuildsNewer(FakeCompiler):
        def __call__(self, files: dict[str, bytes], platform_id: int, release: str):  # type: ignore[no-untyped-def]
            return super().__call__(files, platform_id, "6.3.4")

    state = fleet_state((("4.0.2", 60), ("6.3.4", 40)))
    with EmulatorServer(state, tokens=[TOKEN], compiler=BuildsNewer()) as server:
        monkeypatch.setenv("PARTICLE_API_URL", server.url)
        monkeypatch.setenv("PARTICLE_ACCESS_TOKEN", TOKEN)
        monkeypatch.setenv("FIELDSAFE_CACHE_DIR", str(tmp_path / "cache"))
        monkeypatch.setenv("HOME", str(tmp_path))
        project = _sources(_project(tmp_path / "p", "4.0.2"))
        status = main(["compile", str(project), "--json", "--save-to", str(tmp_path / "out.bin")])
        body = json.loads(capsys.readouterr().out)
    codes = {(f["code"], f["facts"].get("source")) for f in body["findings"] if f["code"].startswith("FS50")}
    assert ("FS502", "pin") in codes  # the pin 4.0.2 runs on all 100
    assert ("FS501", "binary") in codes  # the binary needs 6.3.4: 60 devices would be updated
    assert status == 1
