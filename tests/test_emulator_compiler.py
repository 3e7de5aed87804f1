"""The emulator's compiler with the real host g++: per-release API availability, .ino mapping, binaries."""

from __future__ import annotations

import shutil

import pytest

from fieldsafe.emulator.compiler import UnsafePathError, compile_sources, size_info_text
from fieldsafe.emulator.headers import generate_headers, header_dir
from fieldsafe.emulator.ino import find_prototypes, preprocess_ino
from fieldsafe.gccout import parse_build_log
from fieldsafe.modules import parse_module

pytestmark = pytest.mark.skipif(shutil.which("g++") is None, reason="needs a host g++")

BLINK = b"""// blink and report
SYSTEM_MODE(SEMI_AUTOMATIC);
int led = D7;
unsigned long last = 0;
int counter = 0;

int setLed(String cmd) {
  digitalWrite(led, cmd == "on" ? HIGH : LOW);
  return cmd.toInt();
}

void setup() {
  pinMode(led, OUTPUT);
  Serial.begin(9600);
  Particle.function("led", setLed);
  Particle.variable("counter", counter);
  Particle.connect();
}

void loop() {
  if (millis() - last > 1000) {
    last = millis();
    report(counter++);
  }
}

void report(int n) {
  String s = String(n) + " ticks";
  Serial.println(s);
  if (Particle.connected()) {
    Particle.publish("ticks", s, PRIVATE);
  }
  delay(10);
}
"""

VITALS = b"""void setup() {
  Particle.publishVitals(60);
}

void loop() {
}
"""

LEDGER = b"""#include "Particle.h"
Ledger sensors;

void setup() {
  sensors = Particle.ledger("sensors");
}

void loop() {
  Variant data;
  data.set("temp", 21.5);
  sensors.set(data);
  delay(1000);
}
"""


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory):
    return tmp_path_factory.mktemp("headers")


def _compile(files: dict[str, bytes], platform: int, release: str, cache):
    return compile_sources(files, platform, release, cache_root=cache)


def test_valid_sketch_compiles_for_053_with_electron_dependency(cache) -> None:
    res = _compile({"src/app.ino": BLINK, "project.properties": b"name=app\n"}, 10, "0.5.3", cache)
    assert res.ok, res.log
    assert "make -C ../modules/electron/user-part all" in res.log
    assert "-DMODULE_DEPENDENCY=4,2,21" in res.log
    assert "Building cpp file: src/app.cpp" in res.log
    info = parse_module(res.binary)
    assert (info.platform_id, info.module_function, info.module_index) == (10, 5, 1)
    assert [(d.function, d.index, d.version) for d in info.dependencies] == [(4, 2, 21)]
    assert info.start_address == 0x08080000 and info.crc_ok and info.sha256_ok
    assert res.size_info and res.size_info.startswith("   text\t   data\t    bss\t    dec\t    hex\tfilename")
    assert parse_build_log(res.log, ["src/app.ino"]) == []


def test_boron_402_binary_uses_user_part_index_2(cache) -> None:
    res = _compile({"src/app.ino": BLINK}, 13, "4.0.2", cache)
    assert res.ok, res.log
    info = parse_module(res.binary)
    assert info.module_index == 2 and info.start_address == 0x000B4000
    assert [(d.function, d.index, d.version) for d in info.dependencies] == [(4, 1, 4006)]
    # deterministic: same sources, same bytes
    assert _compile({"src/app.ino": BLINK}, 13, "4.0.2", cache).binary == res.binary


def test_publish_vitals_fails_on_070_and_maps_to_the_ino_line(cache) -> None:
    res = _compile({"src/app.ino": VITALS}, 6, "0.7.0", cache)
    assert not res.ok
    assert "'class CloudClass' has no member named 'publishVitals'" in res.log
    findings = parse_build_log(res.log, ["src/app.ino"])
    assert [(f.code, f.span.file, f.span.line) for f in findings] == [("FS301", "src/app.ino", 2)]
    assert _compile({"src/app.ino": VITALS}, 6, "1.2.0-rc.1", cache).ok  # 1.2.0 had prereleases only
    assert _compile({"src/app.ino": VITALS}, 6, "1.2.1", cache).ok


@pytest.mark.parametrize(("release", "ok"), [("6.0.0", False), ("6.1.0", True), ("5.8.0", True), ("5.7.0", False)])
def test_ledger_follows_both_release_lines(cache, release: str, ok: bool) -> None:
    res = _compile({"src/app.cpp": LEDGER}, 13, release, cache)
    assert res.ok is ok, res.log
    if not ok:
        assert "'Ledger' does not name a type" in res.log


def test_library_under_lib_src_compiles_and_its_errors_point_at_it(cache) -> None:
    lib_h = b'#pragma once\n#include "Particle.h"\nclass Blinker {\npublic:\n  void begin(int pin);\n};\n'
    lib_cpp = b'#include "Blinker.h"\nvoid Blinker::begin(int pin) {\n  pinMode(pin, OUTPUT);\n}\n'
    app = b'#include "Blinker.h"\nBlinker b;\nvoid setup() { b.begin(D7); }\nvoid loop() {}\n'
    files = {"src/app.cpp": app, "lib/Blinker/src/Blinker.h": lib_h, "lib/Blinker/src/Blinker.cpp": lib_cpp}
    res = _compile(files, 12, "2.3.0", cache)
    assert res.ok, res.log
    assert "Library Blinker" in res.log
    broken = dict(files)
    broken["lib/Blinker/src/Blinker.cpp"] = lib_cpp.replace(b"OUTPUT);", b"OUTPUT)")
    res = _compile(broken, 12, "2.3.0", cache)
    findings = parse_build_log(res.log, broken)
    assert findings and findings[0].span.file == "lib/Blinker/src/Blinker.cpp" and findings[0].span.line == 3


def test_platform_gating_wifi_on_boron(cache) -> None:
    res = _compile({"src/app.cpp": b'#include "Particle.h"\nvoid setup() { int r = WiFi.RSSI(); (void)r; }\nvoid loop() {}\n'},
                   13, "4.0.2", cache)  # fmt: skip
    assert not res.ok and "'WiFi' was not declared in this scope" in res.log


def test_unsafe_paths_are_rejected() -> None:
    for bad in ("/etc/passwd", "../x.cpp", "src/../../x.cpp"):
        with pytest.raises(UnsafePathError):
            compile_sources({bad: b""}, 6, "1.2.1")


def test_non_utf8_bytes_in_a_source_are_a_compile_error_not_a_crash(cache) -> None:
    """g++ quotes a Latin-1 line back verbatim; decoding its output strictly raised UnicodeDecodeError."""
    latin1 = b"#error caf\xe9 \xff\nvoid setup() {}\nvoid loop() {}\n"
    result = _compile({"src/app.cpp": latin1}, 10, "2.3.1", cache)
    assert not result.ok and "src/app.cpp:1:" in result.log and "caf\ufffd" in result.log
    assert {f.code for f in parse_build_log(result.log, ["src/app.cpp"])} == {"FS301"}


def test_headers_define_version_and_platform_macros(cache) -> None:
    text = generate_headers("1.2.1", 6)["fs_particle.h"]
    assert "#define SYSTEM_VERSION SYSTEM_VERSION_v121" in text
    assert "#define SYSTEM_VERSION_v121 SYSTEM_VERSION_DEFAULT(1, 2, 1)" in text
    assert "#define PLATFORM_ID 6" in text and "#define PLATFORM_BORON 13" in text
    old = generate_headers("0.5.3", 10)["fs_particle.h"]
    assert "#define SYSTEM_VERSION SYSTEM_VERSION_v053" in old and "SYSTEM_VERSION_DEFAULT" not in old
    assert "SYSTEM_VERSION_v121" not in old
    d = header_dir("1.2.1", 6, cache)
    assert header_dir("1.2.1", 6, cache) == d and (d / "Arduino.h").is_file()


def test_size_info_shape() -> None:
    lines = size_info_text(100, 20, 30).splitlines()
    assert lines[1].split("\t")[:5] == ["    100", "     20", "     30", "    150", "     96"]


def test_ino_prototypes_and_line_directives() -> None:
    protos, first = find_prototypes("int x;\nvoid setup() {\n  later(1);\n}\nstatic int later(int a) { return a; }\n")
    assert protos == ["void setup();", "static int later(int a);"] and first == 1
    out = preprocess_ino("int x;\nvoid setup() {}\n", "src/a.ino")
    # prototypes go at the top, below the includes (Particle's wiring preprocessor), so a Timer declared
    # above its callback compiles
    assert out.startswith('#include "Particle.h"\n#line 1 "src/a.ino"\n// function prototypes')
    assert 'void setup();\n#line 1 "src/a.ino"\nint x;\nvoid setup() {}' in out
    out = preprocess_ino('#include "a.h"\nenum Mode { A };\nvoid go(Mode m) {}\nvoid tick() {}\n', "src/b.ino")
    assert '#include "a.h"\n// function prototypes added by the .ino preprocessor\nvoid tick();\n#line 2' in out
    assert "void go(Mode m);" not in out  # its type is defined in the sketch: no prototype


def test_a_missing_host_compiler_is_a_failed_build_that_names_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    from fieldsafe.emulator import compiler

    monkeypatch.setattr(compiler, "COMPILER", "/nonexistent/g++")
    result = compiler.compile_sources({"src/app.ino": b"void setup() {}\nvoid loop() {}\n"}, 10, "0.5.3")
    assert not result.ok and result.binary is None
    assert "needs a host C++ compiler (/nonexistent/g++) on PATH" in result.log
