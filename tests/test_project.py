"""Project roots, layouts, project.properties and load_project."""

from __future__ import annotations

from pathlib import Path

import pytest

from fieldsafe.project import (
    ProjectSettingsError,
    detect_layout,
    find_project_root,
    find_projects,
    load_project,
    parse_project_properties,
)


def _touch(root: Path, *rels: str, text: str = "") -> None:
    for rel in rels:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)


def test_root_from_a_source_file_deep_in_a_library_example(tmp_path: Path) -> None:
    _touch(tmp_path, "proj/project.properties", "proj/src/app.ino", "proj/lib/Foo/examples/blink/blink.ino")
    assert find_project_root(tmp_path / "proj/lib/Foo/examples/blink/blink.ino") == tmp_path / "proj"
    assert find_project_root(tmp_path / "proj/src") == tmp_path / "proj"
    assert find_project_root(tmp_path / "proj") == tmp_path / "proj"


def test_root_from_workbench_settings_without_project_properties(tmp_path: Path) -> None:
    _touch(tmp_path, "ws/.vscode/settings.json", text='{ // pin\n "particle.targetPlatform": "boron" }')
    _touch(tmp_path, "ws/src/main.cpp")
    assert find_project_root(tmp_path / "ws/src/main.cpp") == tmp_path / "ws"


def test_settings_without_particle_keys_do_not_make_a_root(tmp_path: Path) -> None:
    _touch(tmp_path, "ws/.vscode/settings.json", text='{"editor.tabSize": 2}')
    _touch(tmp_path, "ws/src/main.cpp")
    assert find_project_root(tmp_path / "ws/src/main.cpp", stop_at=tmp_path) is None


def test_malformed_settings_with_particle_keys_still_mark_the_root(tmp_path: Path) -> None:
    _touch(tmp_path, "ws/.vscode/settings.json", text='{"particle.firmwareVersion": "1.0.0" "x"}')
    assert find_project_root(tmp_path / "ws") == tmp_path / "ws"


def test_legacy_flat_root_and_none(tmp_path: Path) -> None:
    _touch(tmp_path, "flat/app.ino", "flat/helper.cpp", "plain/readme.txt")
    assert find_project_root(tmp_path / "flat/helper.cpp") == tmp_path / "flat"
    assert find_project_root(tmp_path / "plain/readme.txt", stop_at=tmp_path) is None


def test_find_projects_in_a_workspace_folder(tmp_path: Path) -> None:
    _touch(
        tmp_path,
        "a/project.properties",
        "a/src/a.ino",
        "a/lib/Foo/examples/ex/ex.ino",  # a library example is not a project
        "a/lib/Foo/project.properties",  # nor is anything under a project's lib/
        "a/tools/sub/project.properties",  # a nested project is
        "b/project.properties",
        "flat/app.ino",
        "node_modules/x/project.properties",
        ".hidden/project.properties",
        "docs/readme.md",
    )
    assert find_projects(tmp_path) == [tmp_path / "a", tmp_path / "a/tools/sub", tmp_path / "b", tmp_path / "flat"]


def test_layouts(tmp_path: Path) -> None:
    _touch(tmp_path, "ext/project.properties", "ext/src/app.ino", "flat/app.ino", "nosrc/project.properties")
    assert detect_layout(tmp_path / "ext") == "extended"
    assert detect_layout(tmp_path / "flat") == "legacy"
    assert detect_layout(tmp_path / "nosrc") == "legacy"


def test_project_properties_parser() -> None:
    props = parse_project_properties(
        "# comment\nname=field-tracker\n dependencies.Adafruit_GPS = 1.1.3 \ndependencies.JsonParserGeneratorRK=0.1.6\n"
        "assetOtaDir=assets\nthis line is wrong\n",
        "p/project.properties",
    )
    assert props.name == "field-tracker"
    assert props.dependencies == {"Adafruit_GPS": "1.1.3", "JsonParserGeneratorRK": "0.1.6"}
    assert props.asset_ota_dir == "assets"
    (problem,) = props.problems
    assert problem.startswith("p/project.properties:6:") and "key=value" in problem


def test_load_project(tmp_path: Path) -> None:
    _touch(tmp_path, "project.properties", text="name=tracker\n")
    _touch(tmp_path, "src/tracker.ino")
    _touch(
        tmp_path,
        ".vscode/settings.json",
        text='{"particle.firmwareVersion": "2.3.1", "particle.targetPlatform": "electron"}',
    )
    project = load_project(tmp_path)
    assert project.root == tmp_path
    assert project.layout == "extended"
    assert project.name == "tracker"
    assert project.settings.firmware_version == "2.3.1"
    assert project.settings.target_platform == "electron"
    assert project.select_files() == ["project.properties", "src/tracker.ino"]


def test_load_project_reports_bad_settings(tmp_path: Path) -> None:
    _touch(tmp_path, "app.ino")
    _touch(tmp_path, ".vscode/settings.json", text="{,}")
    with pytest.raises(ProjectSettingsError, match=r"settings\.json:1:2"):
        load_project(tmp_path)


def test_example_project_is_a_valid_project() -> None:
    root = Path(__file__).resolve().parents[1] / "examples" / "field-tracker"
    if not root.is_dir():
        pytest.skip("examples/field-tracker not present")
    project = load_project(root)
    assert project.layout == "extended"
    assert project.settings.firmware_version and project.settings.target_platform == "electron"
    files = project.select_files()
    assert "src/field-tracker.ino" in files
    assert not any("/examples/" in f for f in files)


def test_the_walk_up_stops_at_the_boundary(tmp_path: Path) -> None:
    _touch(tmp_path, "stray.ino")  # e.g. a sketch left in the home directory
    _touch(tmp_path, "ws/src/main.cpp")
    assert find_project_root(tmp_path / "ws/src/main.cpp") == tmp_path
    assert find_project_root(tmp_path / "ws/src/main.cpp", stop_at=tmp_path / "ws") is None
