"""apilint: use extraction, guard evaluation, shadowing, findings, guard quick-fix, corpus scores."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from fieldsafe import apilint
from fieldsafe.apilint import apply_guard_edit, evaluate_condition, guard_edit, lint_source
from fieldsafe.versions import DeviceOSVersion

V = DeviceOSVersion.parse
ROOT = Path(__file__).resolve().parent.parent


def codes(text: str, target: str = "0.7.0", platform: int | None = 6, **kw: object) -> list[tuple[str, int, str]]:
    return [(f.code, f.span.line, f.facts["api"]) for f in lint_source(text, "app.ino", target, platform, **kw)]  # type: ignore[union-attr,arg-type]


def test_fs201_message_span_facts_and_fixes() -> None:
    text = "void setup() {\n    Particle.publishVitals(60);\n}\n"
    [f] = lint_source(text, "app.ino", "0.7.0", 6, target_reason="what field-unit-7 runs")
    assert f.code == "FS201"
    # 1.2.1: the first final release that declares it (there is no final 1.2.0)
    assert f.message.startswith("`Particle.publishVitals` needs Device OS 1.2.1; this project targets 0.7.0")
    assert f.message.endswith("(what field-unit-7 runs)")
    assert (f.span.line, f.span.column, f.span.end_column) == (2, 5, 27)  # type: ignore[union-attr]
    assert f.facts["api"] == "Particle.publishVitals" and f.facts["since"] == "1.2.1" and f.facts["target"] == "0.7.0"
    kinds = {x.kind: x.params for x in f.fixes}
    assert kinds["guard"]["macro"] == "SYSTEM_VERSION_v121" and kinds["guard"]["release"] == "1.2.1"
    assert kinds["retarget"]["release"] == "1.2.1"  # there is no final 1.2.0 to pin


def test_target_that_has_it_is_clean() -> None:
    assert codes("void f() { Particle.publishVitals(60); }", "1.2.1") == []


@pytest.mark.parametrize(
    "guard",
    [
        "#if defined(SYSTEM_VERSION_v121) && SYSTEM_VERSION >= SYSTEM_VERSION_v121",
        "#ifdef SYSTEM_VERSION_v121",
        "#if (defined(SYSTEM_VERSION_v150) && (SYSTEM_VERSION > SYSTEM_VERSION_v150))",
        "#if 0",
        "#if SYSTEM_VERSION < SYSTEM_VERSION_v060",
    ],
)
def test_guards_that_exclude_on_old_target(guard: str) -> None:
    text = f"void f() {{\n{guard}\n  Particle.publishVitals();\n#endif\n}}\n"
    assert codes(text, "0.7.0") == []


def test_plain_macro_guard_is_true_where_macro_is_undefined() -> None:
    text = "void f() {\n#if SYSTEM_VERSION >= SYSTEM_VERSION_v121\n  Particle.publishVitals();\n#endif\n}\n"
    [f] = lint_source(text, "a.ino", "0.7.0", 6)
    assert f.code == "FS201" and "not defined in Device OS 0.7.0" in f.message
    assert f.related and f.related[0].span.line == 2  # type: ignore[union-attr]
    # once the target defines the macro the same guard works
    assert codes(text.replace("v121", "v500"), "4.0.0", 12) == []


def test_default_macro_guard_from_120_and_error_before() -> None:
    text = (
        "void f() {\n#if SYSTEM_VERSION >= SYSTEM_VERSION_DEFAULT(1, 5, 0)\n  SystemSleepConfiguration c;\n#endif\n}\n"
    )
    assert codes(text, "1.4.4", 13) == []
    assert [c[0] for c in codes(text, "1.1.0", 13)] == ["FS205"]


def test_else_and_elif_branches() -> None:
    text = """void f() {
#if defined(SYSTEM_VERSION_v150) && SYSTEM_VERSION >= SYSTEM_VERSION_v150
  SystemSleepConfiguration c;
#elif SYSTEM_VERSION >= SYSTEM_VERSION_v121
  Particle.publishVitals();
#else
  Particle.publishVitals();
#endif
}
"""
    assert codes(text, "1.4.0", 13) == []
    # the #elif is true on 1.1.0 because SYSTEM_VERSION_v121 is undefined there (reads as 0)
    assert codes(text, "1.1.0", 13) == [("FS201", 5, "Particle.publishVitals")]


def test_nested_if_with_unknown_macros() -> None:
    text = """#if MY_FEATURE
#  if SYSTEM_VERSION >= SYSTEM_VERSION_v620 && defined(SYSTEM_VERSION_v620)
void a() { Ledger x; }
#  else
void b() { Particle.publishVitals(); }
#  endif
#endif
"""
    assert codes(text, "1.0.0", 13) == [("FS201", 5, "Particle.publishVitals")]


def test_comments_strings_and_raw_strings() -> None:
    text = '// Particle.publishVitals();\n/* BLE.on(); */\nconst char* s = "Ledger";\nauto r = R"x(BLE.on())x";\n'
    assert codes(text, "0.4.9", 6) == []


def test_shadowing_user_code() -> None:
    text = """class Radio { public: void publishVitals(); };
Radio Particle2;
int open(const char* p) { return 0; }
struct Vector { int x; };
void setup() { Particle2.publishVitals(); open("x"); Vector v; }
"""
    assert codes(text, "1.0.0", 12) == []
    assert codes('void setup() { open("x", 0); }', "1.5.0", 12) == [("FS201", 1, "open")]
    # a name defined in another project file shadows too
    assert codes('void setup() { open("x", 0); }', "1.5.0", 12, project_names=frozenset({"open"})) == []


def test_system_events_only_in_system_on() -> None:
    text = "int reset = 0;\nvoid h() {}\nvoid setup() {\n  reset++;\n  System.on(reset | time_changed, h);\n}\n"
    got = codes(text, "0.4.6", 6)
    assert ("FS201", 5, "time_changed") in got and all(line == 5 for _, line, _ in got)


def test_fs202_two_line_and_removed() -> None:
    [f] = lint_source("Ledger l;\n", "a.cpp", "6.0.0", 13)
    assert f.code == "FS202" and f.facts["since"] == "6.1.0" and "5.x: 5.8.0" in f.message
    assert [x.params["release"] for x in f.fixes if x.kind == "retarget"] == ["6.1.0"]
    assert codes("Ledger l;\n", "5.4.0", 13) == [("FS201", 1, "Ledger")]
    assert codes("void f(){ attachSystemInterrupt(SysInterrupt_SysTick, f); }", "4.0.0", 12)[0][0] == "FS202"


def test_fs203_platform() -> None:
    assert codes("void f(){ BLE.on(); }", "3.3.1", 6) == [("FS203", 1, "BLE.on")]
    assert codes("void f(){ WiFi.on(); }", "3.3.1", 10) == [("FS203", 1, "WiFi.on")]
    assert codes("void f(){ BLE.on(); }", "3.3.1", None) == []
    assert codes("#if Wiring_BLE\nvoid f(){ BLE.on(); }\n#endif\n", "3.3.1", 6) == []


def test_fs204_chrono_overload() -> None:
    assert codes("void f(){ Particle.keepAlive(30s); Particle.keepAlive(30); }", "1.4.4", 13) == [
        ("FS204", 1, "Particle.keepAlive")
    ]


def test_variable_types_and_builder_chain() -> None:
    text = "SystemSleepConfiguration c;\nvoid f() {\n  c.mode(SystemSleepMode::STOP)\n   .duration(5min);\n}\n"
    got = codes(text, "1.4.0", 13)
    assert ("FS201", 4, "SystemSleepConfiguration::duration") in got and ("FS201", 1, "SystemSleepConfiguration") in got


def test_evaluate_condition_tristate() -> None:
    assert evaluate_condition("SYSTEM_VERSION >= SYSTEM_VERSION_v121", V("1.4.0")) is True
    assert evaluate_condition("FOO && 0", V("1.4.0")) is False
    assert evaluate_condition("FOO || 1", V("1.4.0")) is True
    assert evaluate_condition("FOO > 2", V("1.4.0")) is None
    assert evaluate_condition("PLATFORM_ID == PLATFORM_BORON", V("2.0.0"), 13) is True
    with pytest.raises(apilint.PreprocessorError):
        evaluate_condition("SYSTEM_VERSION >= SYSTEM_VERSION_DEFAULT(1,2,1)", V("1.1.0"))


@pytest.mark.parametrize(
    ("text", "target", "platform"),
    [
        ("void setup() {\n    Particle.publishVitals(60);\n}\n", "0.7.0", 6),
        (
            'void setup() {\n    Particle.publish("a",\n        "b");\n    Particle.publishVitals(\n        60);\n}\n',
            "1.0.0",
            6,
        ),
        ("void loop() {\n    if (ready)\n        Particle.publishVitals();\n    delay(10);\n}\n", "1.0.0", 6),
        ("void f() {\n  if (BLE.connected()) {\n    x();\n  } else {\n    y();\n  }\n}\n", "1.2.1", 13),
        ("Ledger sensors;\nvoid setup() {}\n", "6.0.0", 13),
        ("void f() {\n  Particle.keepAlive(30s);\n}\n", "1.4.4", 13),
    ],
)
def test_guard_edit_then_relint_is_clean(text: str, target: str, platform: int) -> None:
    findings = lint_source(text, "a.ino", target, platform)
    assert findings
    for _ in range(5):
        findings = lint_source(text, "a.ino", target, platform)
        if not findings:
            break
        f = findings[0]
        fix = next(x for x in f.fixes if x.kind == "guard")
        edit = guard_edit(text, f.span.line, fix, f.span.column)  # type: ignore[union-attr]
        assert edit.new_text.split("\n")[0].strip().startswith("#if ")
        text = apply_guard_edit(text, edit)
    assert lint_source(text, "a.ino", target, platform) == []


def test_guard_edit_keeps_indentation_and_wraps_header() -> None:
    text = "void loop() {\n    if (ready)\n        Particle.publishVitals();\n}\n"
    edit = guard_edit(text, 3, "X")
    assert (edit.start_line, edit.end_line) == (2, 3)
    assert edit.new_text == "    #if X\n    if (ready)\n        Particle.publishVitals();\n    #endif\n"


def test_cache_and_engines_agree() -> None:
    text = (ROOT / "tests/fixtures/apilint-corpus/06-sleep-new-api.cpp").read_text()
    a = lint_source(text, "x.cpp", "1.4.4", 13)
    assert lint_source(text, "x.cpp", "1.4.4", 13) == a
    assert lint_source(text, "x.cpp", "1.4.4", 13, engine="treesitter") == a


def _corpus_module():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("apilint_corpus", ROOT / "bench" / "apilint_corpus.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses need the module registered
    spec.loader.exec_module(mod)
    return mod


def test_corpus_precision_recall() -> None:
    corpus = _corpus_module()
    files = [p for p in corpus.CORPUS.iterdir() if p.suffix in (".ino", ".cpp")]
    assert len(files) >= 30
    s = corpus.score("scan")
    assert s.false_positives == [], "no false positives on guarded or user-defined code"
    assert s.precision == 1.0 and s.recall >= 0.95, (s.precision, s.recall, s.false_negatives)


def test_lint_project_uses_cross_file_names(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "project.properties").write_text("name=x\n")
    (tmp_path / "src" / "helpers.cpp").write_text("int open(const char* p, int f) { return 0; }\n")
    (tmp_path / "src" / "app.ino").write_text('void setup() { open("x", 0); Particle.publishVitals(); }\n')
    got = apilint.lint_project(tmp_path, "1.0.0", "argon")
    assert [(f.code, f.span.file, f.facts["api"]) for f in got] == [("FS201", "src/app.ino", "Particle.publishVitals")]  # type: ignore[union-attr]
