"""Workbench settings.json: JSONC reading and minimal, exact edits."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fieldsafe.project import (
    KEY_FIRMWARE_VERSION,
    KEY_TARGET_PLATFORM,
    ProjectSettingsError,
    edit_setting_text,
    parse_jsonc,
    read_settings,
    value_span,
    write_setting,
)

WORKBENCH = """{
    // Pinned by "Particle: Configure Project for Device" -- don't "fix" this
    "particle.targetPlatform": "electron",
    /* block comment with // inside and a "quote */
    "particle.firmwareVersion": "2.3.1",
    "url": "http://example.invalid//not-a-comment",
    "C_Cpp.default.configurationProvider": "particle.particle-vscode-core",
    "nested": {"a": [1, 2, 3,],},
    "particle.targetDevice": "field-unit-7", // trailing comment
}
"""


def _strip_value(text: str, span_start: int, span_end: int) -> str:
    return text[:span_start] + text[span_end:]


def test_parse_workbench_file_with_comments_and_trailing_commas() -> None:
    doc = parse_jsonc(WORKBENCH)
    assert doc.value["particle.firmwareVersion"] == "2.3.1"
    assert doc.value["url"] == "http://example.invalid//not-a-comment"
    assert doc.value["nested"] == {"a": [1, 2, 3]}


def test_read_settings(tmp_path: Path) -> None:
    (tmp_path / ".vscode").mkdir()
    (tmp_path / ".vscode/settings.json").write_text(WORKBENCH)
    s = read_settings(tmp_path)
    assert (s.firmware_version, s.target_platform, s.target_device) == ("2.3.1", "electron", "field-unit-7")
    assert s.path == tmp_path / ".vscode/settings.json"


def test_missing_settings_file_is_empty_not_an_error(tmp_path: Path) -> None:
    s = read_settings(tmp_path)
    assert (s.firmware_version, s.target_platform, s.target_device) == (None, None, None)
    assert not s.exists


def test_empty_and_comment_only_files_are_empty_settings(tmp_path: Path) -> None:
    (tmp_path / ".vscode").mkdir()
    for text in ("", "  \n", "// nothing yet\n"):
        (tmp_path / ".vscode/settings.json").write_text(text)
        assert read_settings(tmp_path).firmware_version is None


@pytest.mark.parametrize(
    ("text", "line", "col", "words"),
    [
        ('{\n  "a": 1\n  "b": 2\n}', 3, 3, "',' is missing"),
        ('{\n  "a": 1,\n  "b": \n}', 4, 1, "expected a value"),
        ("{\n  'a': 1\n}", 2, 3, "double quotes"),
        ('{\n  "a": "x\n}', 2, 8, "not closed"),
        ("{\n  /* open\n", 2, 3, "never closed"),
        ('{"a": 1}}', 1, 9, "after the end"),
        ('{"a": 1', 1, 8, "end of the file"),
    ],
)
def test_malformed_settings_error_names_file_line_column_and_fix(
    tmp_path: Path, text: str, line: int, col: int, words: str
) -> None:
    (tmp_path / ".vscode").mkdir()
    path = tmp_path / ".vscode/settings.json"
    path.write_text(text)
    with pytest.raises(ProjectSettingsError) as info:
        read_settings(tmp_path)
    message = str(info.value)
    assert message.startswith(f"{path}:{line}:{col}: "), message
    assert words in message
    assert "Fix the JSON" in message
    assert (info.value.line, info.value.column) == (line, col)


def test_non_string_pin_names_the_key(tmp_path: Path) -> None:
    (tmp_path / ".vscode").mkdir()
    (tmp_path / ".vscode/settings.json").write_text('{\n  "particle.firmwareVersion": 6.2\n}\n')
    with pytest.raises(ProjectSettingsError, match=r'settings.json:2:31: "particle.firmwareVersion" must be a string'):
        read_settings(tmp_path)


def test_top_level_array_is_an_error(tmp_path: Path) -> None:
    (tmp_path / ".vscode").mkdir()
    (tmp_path / ".vscode/settings.json").write_text("[]")
    with pytest.raises(ProjectSettingsError, match="one JSON object"):
        read_settings(tmp_path)


# ---- edits ---------------------------------------------------------------------------------------


def _check_edit(text: str, key: str, value: str) -> str:
    """Apply an edit and check the invariants every edit must keep."""
    new_text, span = edit_setting_text(text, key, value)
    assert span.apply(text) == new_text
    assert parse_jsonc(new_text).value[key] == value
    old = parse_jsonc(text).value or {}
    assert {k: v for k, v in parse_jsonc(new_text).value.items() if k != key} == {
        k: v for k, v in old.items() if k != key
    }
    # everything outside the span is byte-identical
    assert new_text[: span.start_offset] == text[: span.start_offset]
    assert new_text[len(new_text) - (len(text) - span.end_offset) :] == text[span.end_offset :]
    return new_text


def test_replace_only_the_value_token() -> None:
    new_text, span = edit_setting_text(WORKBENCH, KEY_FIRMWARE_VERSION, "0.5.3")
    assert new_text == WORKBENCH.replace('"2.3.1"', '"0.5.3"')
    assert (span.start_line, span.start_column, span.end_line, span.end_column) == (5, 33, 5, 40)
    assert span.new_text == '"0.5.3"'
    _check_edit(WORKBENCH, KEY_FIRMWARE_VERSION, "0.5.3")


def test_value_span_points_at_the_token() -> None:
    span = value_span(WORKBENCH, KEY_FIRMWARE_VERSION)
    assert span is not None
    lines = WORKBENCH.split("\n")
    assert lines[span.start_line - 1][span.start_column - 1 : span.end_column - 1] == '"2.3.1"'
    assert value_span(WORKBENCH, "particle.nope") is None


def test_duplicate_keys_edit_the_last_one_like_vscode() -> None:
    text = '{\n  "k": "a",\n  "k": "b"\n}\n'
    assert parse_jsonc(text).value["k"] == "b"
    new_text = _check_edit(text, "k", "c")
    assert new_text == '{\n  "k": "a",\n  "k": "c"\n}\n'


def test_insert_when_absent_after_member_with_trailing_comma() -> None:
    new_text = _check_edit(WORKBENCH, "particle.extra", "x")
    assert new_text.endswith(
        '    "particle.targetDevice": "field-unit-7", // trailing comment\n    "particle.extra": "x"\n}\n'
    )


def test_insert_adds_comma_before_a_trailing_comment() -> None:
    text = '{\n\t"a": "b" // keep me\n}\n'
    new_text = _check_edit(text, KEY_TARGET_PLATFORM, "boron")
    assert new_text == '{\n\t"a": "b", // keep me\n\t"particle.targetPlatform": "boron"\n}\n'


def test_insert_keeps_crlf_and_two_space_indent() -> None:
    text = '{\r\n  "a": 1\r\n}\r\n'
    new_text = _check_edit(text, "k", "v")
    assert new_text == '{\r\n  "a": 1,\r\n  "k": "v"\r\n}\r\n'
    assert "\n" not in new_text.replace("\r\n", "")


def test_insert_into_empty_objects() -> None:
    assert _check_edit("{}", "k", "v") == '{\n    "k": "v"\n}'
    assert _check_edit("{\n}\n", "k", "v") == '{\n    "k": "v"\n}\n'
    assert _check_edit("{\n  // only a comment\n}\n", "k", "v") == '{\n  // only a comment\n    "k": "v"\n}\n'


def test_one_line_object_gets_a_new_line_member() -> None:
    assert _check_edit('{"a": "b"}', "k", "v") == '{"a": "b",\n    "k": "v"\n}'


def test_create_for_empty_or_comment_only_text() -> None:
    assert edit_setting_text("", "k", "v")[0] == '{\n    "k": "v"\n}\n'
    assert edit_setting_text("// hi", "k", "v")[0] == '// hi\n{\n    "k": "v"\n}\n'


def test_unicode_values_and_positions() -> None:
    text = '{\n  "name": "café ☕", "particle.firmwareVersion": "1.0.0"\n}\n'
    new_text, span = edit_setting_text(text, KEY_FIRMWARE_VERSION, "ünï")
    assert parse_jsonc(new_text).value[KEY_FIRMWARE_VERSION] == "ünï"
    assert span.start_column == text.split("\n")[1].index('"1.0.0"') + 1
    assert '"ünï"' in new_text


def test_value_with_quotes_is_escaped() -> None:
    new_text = _check_edit('{"k": "a"}', "k", 'say "hi" \\ //')
    assert json.loads(new_text)["k"] == 'say "hi" \\ //'


def test_edit_refuses_malformed_text() -> None:
    with pytest.raises(ProjectSettingsError):
        edit_setting_text('{"a": 1 "b": 2}', "k", "v")


def test_write_setting_creates_vscode_folder(tmp_path: Path) -> None:
    write_setting(tmp_path, KEY_FIRMWARE_VERSION, "6.2.1")
    assert read_settings(tmp_path).firmware_version == "6.2.1"
    assert json.loads((tmp_path / ".vscode/settings.json").read_text()) == {KEY_FIRMWARE_VERSION: "6.2.1"}


def test_write_setting_keeps_everything_else_byte_identical(tmp_path: Path) -> None:
    (tmp_path / ".vscode").mkdir()
    path = tmp_path / ".vscode/settings.json"
    path.write_bytes(WORKBENCH.replace("\n", "\r\n").encode())
    write_setting(tmp_path, KEY_FIRMWARE_VERSION, "0.5.3")
    assert path.read_bytes() == WORKBENCH.replace("\n", "\r\n").replace("2.3.1", "0.5.3").encode()
    assert [p.name for p in path.parent.iterdir()] == ["settings.json"]  # no temp file left


def test_write_setting_refuses_a_malformed_file_and_leaves_it(tmp_path: Path) -> None:
    (tmp_path / ".vscode").mkdir()
    path = tmp_path / ".vscode/settings.json"
    broken = '{\n  "particle.firmwareVersion": "1.0.0"\n  "x": \n'
    path.write_text(broken)
    with pytest.raises(ProjectSettingsError, match=re.escape(f"{path}:3:3")):
        write_setting(tmp_path, KEY_FIRMWARE_VERSION, "2.0.0")
    assert path.read_text() == broken


_keys = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12)
_vals = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)


@settings(max_examples=150, deadline=None)
@given(
    members=st.dictionaries(_keys, _vals, max_size=4),
    key=_keys,
    value=_vals,
    indent=st.sampled_from(["  ", "    ", "\t"]),
    newline=st.sampled_from(["\n", "\r\n"]),
    trailing_comma=st.booleans(),
    comments=st.booleans(),
)
def test_edit_round_trip_property(
    members: dict[str, str], key: str, value: str, indent: str, newline: str, trailing_comma: bool, comments: bool
) -> None:
    lines = ["{"]
    items = list(members.items())
    for i, (k, v) in enumerate(items):
        comma = "," if i < len(items) - 1 or trailing_comma else ""
        note = " // a 'comment' with \"quotes\" and // slashes" if comments else ""
        lines.append(f"{indent}{json.dumps(k)}: {json.dumps(v)}{comma}{note}")
    lines.append("}")
    text = newline.join(lines) + newline
    new_text = _check_edit(text, key, value)
    if newline == "\r\n":
        assert "\n" not in new_text.replace("\r\n", "")
    if key in members:
        assert new_text.count(newline) == text.count(newline)


def test_non_string_platform_gets_a_platform_example(tmp_path: Path) -> None:
    (tmp_path / ".vscode").mkdir()
    (tmp_path / ".vscode/settings.json").write_text('{"particle.targetPlatform": ["electron"]}')
    with pytest.raises(ProjectSettingsError, match=r'"particle.targetPlatform" must be a string like "boron"'):
        read_settings(tmp_path)


def test_settings_path_that_is_a_folder_is_an_error_not_an_empty_pin(tmp_path: Path) -> None:
    (tmp_path / ".vscode" / "settings.json").mkdir(parents=True)
    with pytest.raises(ProjectSettingsError, match=r"settings\.json: is not a regular file"):
        read_settings(tmp_path)
