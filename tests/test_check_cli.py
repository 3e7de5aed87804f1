"""``fieldsafe check``: pin from settings or flags, gcc/JSON output, exit statuses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fieldsafe.cli import main


def make_project(root: Path, code: str, settings: str | None = None) -> Path:
    (root / "src").mkdir(parents=True)
    (root / "project.properties").write_text("name=demo\n")
    (root / "src" / "demo.ino").write_text(code)
    if settings is not None:
        (root / ".vscode").mkdir()
        (root / ".vscode" / "settings.json").write_text(settings)
    return root


CODE = "void setup() {\n    Particle.publishVitals(60);\n}\nvoid loop() {}\n"
PIN = '{\n  // Workbench pin\n  "particle.firmwareVersion": "1.0.0",\n  "particle.targetPlatform": "electron",\n}\n'


def test_findings_from_pin_gcc_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_project(tmp_path / "p", CODE, PIN)
    assert main(["check", str(root)]) == 1
    out = capsys.readouterr().out
    assert (
        "src/demo.ino:2:5: error: `Particle.publishVitals` needs Device OS 1.2.1; this project targets 1.0.0 [FS201]"
        in out
    )


def test_target_flag_overrides_pin_and_clean_is_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_project(tmp_path / "p", CODE, PIN)
    assert main(["check", str(root), "--target", "1.2.1"]) == 0


def test_json_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_project(tmp_path / "p", CODE + "void f() { BLE.on(); }\n")
    assert main(["check", str(root), "--target", "1.0.0", "--platform", "photon", "--json"]) == 1
    rows = json.loads(capsys.readouterr().out)["findings"]
    by_code = {r["code"]: r for r in rows}
    r = by_code["FS201"]
    assert (r["file"], r["line"], r["column"], r["api"], r["since"], r["severity"]) == (
        "src/demo.ino", 2, 5, "Particle.publishVitals", "1.2.1", "error",
    )  # fmt: skip
    assert {f["kind"] for f in r["fixes"]} == {"guard", "retarget"}
    assert by_code["FS203"]["api"] == "BLE.on"
    assert all(set(row) == {"code", "severity", "file", "line", "column", "message", "api", "since", "fixes"}
               for row in rows)  # fmt: skip


@pytest.mark.parametrize(
    ("args", "needle"),
    [([], "no Device OS target known"), (["--target", "1.0.0", "--platform", "toaster"], "unknown platform"),
     (["--target", "banana"], "banana")],
)  # fmt: skip
def test_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], needle: str) -> None:
    root = make_project(tmp_path / "p", CODE)
    assert main(["check", str(root), *args]) == 2
    assert needle in capsys.readouterr().err


def test_bad_project_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(tmp_path / "nope"), "--target", "1.0.0"]) == 2
    assert "not a directory" in capsys.readouterr().err


def test_pin_findings_included(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_project(tmp_path / "p", "void setup() {}\n")
    status = main(["check", str(root), "--target", "4.0.0", "--platform", "photon", "--json"])
    rows = json.loads(capsys.readouterr().out)["findings"]
    assert status == 1 and rows and all(r["code"].startswith("FS1") and r["api"] is None for r in rows)


def test_unknown_platform_message_is_said_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_project(tmp_path / "p", CODE)
    assert main(["check", str(root), "--target", "1.0.0", "--platform", "banana"]) == 2
    err = capsys.readouterr().err
    assert err.count("unknown platform 'banana'") == 1 and "known platforms: " in err


def test_targets_are_resolved_like_compile(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``latest-lts``, ``2.3`` or ``^1.2.0`` mean the same release for check as for compile."""
    root = make_project(tmp_path / "p", CODE)
    assert main(["check", str(root), "--target", "^1.2.0", "--platform", "electron", "--json"]) == 0
    assert "checking against Device OS 1.5.2" in capsys.readouterr().err
    assert main(["check", str(root), "--target", "0.x", "--platform", "electron"]) == 1  # 0.7.0: no publishVitals
    assert "[FS201]" in capsys.readouterr().out
    assert main(["check", str(root), "--target", "latest-lts"]) == 2  # a range needs a platform
    assert "also needs --platform" in capsys.readouterr().err


def test_project_without_sources_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "p"
    root.mkdir()
    (root / "project.properties").write_text("name=x\n")
    assert main(["check", str(root), "--target", "2.3.1"]) == 2
    assert "no source files" in capsys.readouterr().err


def test_unreadable_source_is_a_clear_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from fieldsafe import apilint

    root = make_project(tmp_path / "p", CODE)

    def denied(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", str(root / "src" / "demo.ino"))

    monkeypatch.setattr(apilint, "lint_project", denied)  # as root, chmod 000 would still read
    assert main(["check", str(root), "--target", "2.3.1"]) == 1
    assert "cannot read " + str(root / "src" / "demo.ino") + ": Permission denied" in capsys.readouterr().err


def test_word_pin_is_resolved_with_a_drift_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pin = '{"particle.firmwareVersion": "latest-lts", "particle.targetPlatform": "electron"}'
    root = make_project(tmp_path / "p", CODE, pin)
    assert main(["check", str(root), "--json"]) == 0  # 2.3.1 has publishVitals; the drift is a warning
    captured = capsys.readouterr()
    assert "checking against Device OS 2.3.1" in captured.err
    (drift,) = json.loads(captured.out)["findings"]
    assert drift["code"] == "FS115" and drift["severity"] == "warning"
    assert "`latest-lts` is not an exact release: today it means Device OS 2.3.1" in drift["message"]
    assert drift["fixes"][0]["params"] == {"release": "2.3.1"}
