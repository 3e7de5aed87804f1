"""apilint's speed machinery must not change a single finding.

The linter caches per content (whole text, chunk groups, typed variables, resolved uses, finding
templates) and checks shadowing only where Device OS names occur. These tests compare it with a
reference built from the whole-text steps (``user_defined_names`` over the whole file, one
``extract_uses`` over the whole text, no chunks), after random edits, with warm and cold caches.
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fieldsafe import apilint
from fieldsafe.findings import Finding
from fieldsafe.versions import DeviceOSVersion

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "fixtures" / "apilint-corpus"

# Lines that exercise shadowing, typed variables, builder chains, guards, chunk boundaries (a line that
# is just "}" or "};") and unbalanced brackets, comments and strings that hide or unhide code.
SNIPPETS = [
    "void setup() {", "void loop() {", "}", "};", "{", "(", ");", "]", "  }",
    "class Particle {};", "void BLE(int x) { }", "typedef int Timer;", "#define Ledger 1", "using Timer = int;",
    "int millis();", "struct WiFi;", "void publishVitals() const { }", "enum class SystemSleepMode { A };",
    "static Vector<int> **Timer(int (*cb)(int)) {", "namespace BLE {", "Timer * delay(int a) {",
    "#if SYSTEM_VERSION >= SYSTEM_VERSION_v121", "#if defined(SYSTEM_VERSION_v150) && SYSTEM_VERSION >= SYSTEM_VERSION_v150",
    "#else", "#endif", "#if 0", "/*", "*/", "// }", '"str', 'const char* s = "BLE.on();";',
    "System.on(reset | time_changed, h);", "SystemSleepConfiguration cfg;", "SystemSleepConfiguration other;",
    "cfg.mode(SystemSleepMode::STOP).duration(5s);", "  .duration(5min);", "Particle.keepAlive(30s);",
    "int x = cond ? millis() : 0;", "Particle.publishVitals(", "  60);", "BLE.on();", "Ledger l;",
    "Timer t(1, &A::b, *this);", "WiFi.on(); Cellular.RSSI();", "std::vector<Timer> v;", "Timer<",
    "void g() {\n  Particle.publishVitals();\n}", "other.mode(SystemSleepMode::STOP).duration(5s);",
    "  Particle.keepAlive((", "  30s));",
]  # fmt: skip
TARGETS = [("0.7.0", 6), ("1.0.0", 13), ("1.4.4", 13), ("5.4.0", None), ("6.0.0", 32)]


def reference_lint(text: str, path: str, target: str, platform_id: int | None,
                   project_names: frozenset[str] | None = None) -> list[Finding]:  # fmt: skip
    """The lint as one pass over the whole text, no chunking, no restricted shadowing."""
    version = DeviceOSVersion.parse(target)
    masked = apilint.blank_literals(text)
    lines = apilint._Lines(masked)
    macros = None if project_names is None else frozenset(project_names) | apilint.defined_macros(masked)
    pre = apilint.preprocess(masked, version, platform_id, lines, macros)
    names = apilint.user_defined_names(masked) | pre.defined_names | set(project_names or ())
    var_types = apilint.typed_variables(masked, names)
    uses = apilint.extract_uses(masked, names, var_types)
    if apilint.CHRONO_USING_RE.search(masked):
        uses = [u for u in uses if u.api != apilint.CHRONO_LITERALS]
    findings = apilint._preprocessor_findings(pre, lines, path, version)
    seen: set[tuple[str, int]] = set()
    for use in uses:
        region = pre.state_at(use.start)
        if region.state is False or (use.api, use.start) in seen or pre.in_condition(use.start):
            continue
        seen.add((use.api, use.start))
        findings.extend(apilint.findings_for_use(use, lines, path, version, platform_id, region.notes))
    return findings


def _base_text() -> str:
    """A few corpus sketches back to back: many top-level chunks, guards, typed variables."""
    names = ["01-vitals.ino", "06-sleep-new-api.cpp", "07-sleep-guarded.cpp", "03-ble-beacon.cpp", "08-ledger-5x.cpp"]
    return "".join((CORPUS / n).read_text() for n in names)


BASE_LINES = _base_text().split("\n")

edits = st.lists(
    st.tuples(
        st.sampled_from(["insert", "delete", "replace", "truncate"]),
        st.integers(min_value=0, max_value=len(BASE_LINES)),
        st.sampled_from(SNIPPETS),
        st.integers(min_value=0, max_value=40),
    ),
    min_size=1,
    max_size=4,
)


def _apply(lines: list[str], edit: tuple[str, int, str, int]) -> None:
    kind, at, snippet, cut = edit
    at = min(at, len(lines) - 1)
    if kind == "insert":
        lines.insert(at, snippet)
    elif kind == "delete" and len(lines) > 1:
        lines.pop(at)
    elif kind == "replace":
        lines[at] = snippet
    else:
        lines[at] = lines[at][:cut]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(edits, min_size=1, max_size=3), which=st.integers(min_value=0, max_value=len(TARGETS) - 1))
def test_incremental_relint_equals_whole_text_lint(steps: list[list[tuple[str, int, str, int]]], which: int) -> None:
    target, platform_id = TARGETS[which]
    lines = list(BASE_LINES)
    apilint.lint_source("\n".join(lines), "app.cpp", target, platform_id)  # warm every cache
    for batch in steps:
        for edit in batch:
            _apply(lines, edit)
        text = "\n".join(lines)
        warm = apilint.lint_source(text, "app.cpp", target, platform_id)
        assert warm == reference_lint(text, "app.cpp", target, platform_id)
    apilint.clear_caches()
    assert apilint.lint_source(text, "app.cpp", target, platform_id) == warm


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(SNIPPETS), min_size=1, max_size=25))
def test_shadowing_names_equal_user_defined_names_where_api_names_occur(picked: list[str]) -> None:
    masked = apilint.blank_literals("\n".join(picked))
    tokens = apilint.api_tokens(masked)
    assert apilint.shadowing_names(masked, tokens) == apilint.user_defined_names(masked) & {n for _, n in tokens}


def test_corpus_and_long_file_match_reference() -> None:
    """Every corpus file on every target, and the corpus concatenated (the benchmark's shape)."""
    texts = [p.read_text() for p in sorted(CORPUS.iterdir()) if p.suffix in (".ino", ".cpp")]
    for text in [*texts, "".join(texts)]:
        for target, platform_id in TARGETS:
            assert apilint.lint_source(text, "a.cpp", target, platform_id) == reference_lint(
                text, "a.cpp", target, platform_id
            )


def test_unbalanced_chunk_is_read_with_what_follows() -> None:
    """A call left open across a top-level ``}`` line: its arguments run on into the next chunk."""
    text = "void f() {\n  Particle.keepAlive((\n}\n  30s));\n}\n"
    got = apilint.lint_source(text, "a.cpp", "1.4.4", 13)
    assert got == reference_lint(text, "a.cpp", "1.4.4", 13)
    assert [f.code for f in got] == ["FS204"]


def test_declaring_a_typed_variable_re_resolves_the_chunks_that_use_it() -> None:
    body = (
        "void f() {\n  c.mode(SystemSleepMode::STOP).duration(5min);\n}\nvoid g() {\n  Particle.publishVitals();\n}\n"
    )
    before = apilint.lint_source(body, "a.cpp", "1.4.0", 13)
    assert [f.facts["api"] for f in before] == ["SystemSleepMode::STOP", "std::chrono literals"]
    # declared in a later chunk (variable types are file-scoped): f's chunk text is unchanged
    after = apilint.lint_source(body + "SystemSleepConfiguration c;\n", "a.cpp", "1.4.0", 13)
    assert after == reference_lint(body + "SystemSleepConfiguration c;\n", "a.cpp", "1.4.0", 13)
    assert "SystemSleepConfiguration::duration" in [f.facts["api"] for f in after]


def test_one_line_edit_reuses_other_chunks() -> None:
    """The point of the chunk cache: an edit inside one function re-resolves only that function."""
    apilint.clear_caches()
    text = _base_text()
    apilint.lint_source(text, "app.cpp", "1.0.0", 13)
    resolved = len(apilint._RESOLVED)
    assert resolved > 3
    edited = text.replace("void setup() {", "void setup() { int edited = 1;", 1)
    assert edited != text
    assert apilint.lint_source(edited, "app.cpp", "1.0.0", 13) == reference_lint(edited, "app.cpp", "1.0.0", 13)
    assert len(apilint._RESOLVED) == resolved + 1


def test_project_names_restricted_to_api_names_still_shadow() -> None:
    defs = "class BLE {};\nint millis() { return 0; }\ntypedef int Ledger;\n"
    use = "void f() { BLE.on(); Ledger l; millis(); Particle.publishVitals(); }\n"
    names = apilint.project_defined_names([defs, use])
    assert {"BLE", "Ledger", "millis"} <= names
    got = apilint.lint_source(use, "b.cpp", "0.7.0", 6, project_names=names)
    assert got == reference_lint(use, "b.cpp", "0.7.0", 6, apilint.user_defined_names(apilint.blank_literals(defs)))
    assert [f.facts["api"] for f in got] == ["Particle.publishVitals"]
