"""Cloud build log parsing (FS301-FS306) on logs modelled on particle-domain.md section 10."""

from __future__ import annotations

from fieldsafe.findings import Severity
from fieldsafe.gccout import PathMapper, parse_build_log

HEAD = (
    "Library Foo installed\n"
    "make -C ../modules/photon/user-part all\n"
    "Building cpp file: src/app.cpp\n"
    "arm-none-eabi-g++ -DPLATFORM_ID=6 -DMODULE_DEPENDENCY=4,2,207 -c src/app.cpp\n"
)

GCC5 = (
    HEAD
    + """In file included from src/app.ino:3:0:
lib/Foo/src/Foo.h:7:5: error: 'asdfjasfjdkl' does not name a type
     asdfjasfjdkl;
     ^
src/app.ino: In function 'void loop()':
src/app.ino:12:5: warning: unused variable 'x' [-Wunused-variable]
     int x = 1;
     ^
src/app.ino:14:20: error: no matching function for call to 'foo(int)'
     foo(1);
          ^
src/app.ino:5:6: note: candidate: void foo()
 void foo() {}
      ^
make[1]: *** [../build/target/user/platform-6-m/src/app.o] Error 1
make: *** [user] Error 2
"""
)

GCC9 = (
    HEAD
    + """/workspace/src/app.ino: In function 'void setup()':
/workspace/src/app.ino:2:12: error: 'class CloudClass' has no member named 'publishVitals'
    2 |   Particle.publishVitals();
      |            ^~~~~~~~~~~~~
src/helper.cpp:9:1: fatal error: missing.h: No such file or directory
    9 | #include "missing.h"
      | ^~~~~~~~~~~~~~~~~~~~
compilation terminated.
../wiring/inc/spark_wiring_cloud.h:120:10: note: declared here
make[1]: *** [../build/target/user/platform-12-m/src/app.o] Error 1
"""
)

LINKER = (
    HEAD
    + """../../../build/target/user/platform-6-m/app/src/app.o: In function `loop':
/workspace/src/app.cpp:20: undefined reference to `sensorRead()'
../../../build/target/user/platform-6-m/app/src/b.o:/workspace/src/b.cpp:3: multiple definition of `counter'
../../../build/target/user/platform-6-m/app/src/a.o:/workspace/src/a.cpp:3: first defined here
/usr/bin/ld: app.o: in function `setup': app.cpp:(.text.setup+0x4): undefined reference to `vtable for Logger'
/usr/bin/ld: c.o:c.cpp:(.bss.total+0x0): multiple definition of `total'; a.o:src/a.cpp:(.bss.total+0x0): first defined here
collect2: error: ld returned 1 exit status
"""
)

UPLOADED = [
    "src/app.ino",
    "src/helper.cpp",
    "src/a.cpp",
    "src/b.cpp",
    "src/c.cpp",
    "lib/Foo/src/Foo.h",
    "project.properties",
]


def test_gcc5_format_errors_warnings_notes_and_include_chain() -> None:
    f = parse_build_log(GCC5, UPLOADED)
    assert [(x.code, x.span.file, x.span.line, x.span.column) for x in f] == [
        ("FS301", "lib/Foo/src/Foo.h", 7, 5),
        ("FS302", "src/app.ino", 12, 5),
        ("FS301", "src/app.ino", 14, 20),
    ]
    assert f[0].related[0].span.file == "src/app.ino" and f[0].related[0].span.line == 3
    assert f[1].severity == Severity.WARNING and f[1].facts["function"] == "void loop()"
    note = f[2].related[0]
    assert note.message == "candidate: void foo()" and note.span.line == 5


def test_gcc9_format_workspace_paths_fatal_error_and_unknown_paths() -> None:
    f = parse_build_log(GCC9, UPLOADED)
    assert [(x.code, x.span.file, x.span.line) for x in f] == [
        ("FS301", "src/app.ino", 2),
        ("FS301", "src/helper.cpp", 9),
    ]
    assert f[0].span.end_column == 12 + 1 + 12  # ^ plus 12 tildes
    assert f[1].facts["gcc_severity"] == "fatal error" and f[1].message == "missing.h: No such file or directory"
    # a note in a Device OS header follows the fatal error: attached, path kept in the text
    assert f[1].related[-1].span is None and "spark_wiring_cloud.h:120" in f[1].related[-1].message


def test_linker_errors_old_and_new_binutils() -> None:
    f = parse_build_log(LINKER, UPLOADED)
    codes = [(x.code, x.span.file if x.span else None, x.span.line if x.span else None) for x in f]
    assert codes == [
        ("FS304", "src/app.ino", 20),  # src/app.cpp was generated from the uploaded src/app.ino
        ("FS305", "src/b.cpp", 3),
        ("FS304", "src/app.ino", 1),  # app.cpp:(.text.setup+0x4): file known, line not
        ("FS305", "src/c.cpp", 1),
    ]
    assert f[0].facts["symbol"] == "sensorRead()" and f[0].facts["function"] == "loop"
    assert f[1].related[0].message == "first defined here" and f[1].related[0].span.file == "src/a.cpp"
    assert f[1].related[0].span.line == 3
    assert f[3].related[0].span.file == "src/a.cpp" and f[3].facts["line_known"] is False
    assert all(x.severity == Severity.ERROR for x in f)


def test_generated_cpp_maps_back_to_ino() -> None:
    f = parse_build_log("src/app.cpp:4:1: error: expected ';' before '}' token\n", ["src/app.ino"])
    assert f[0].span.file == "src/app.ino"


def test_stand_alone_note_is_fs303() -> None:
    f = parse_build_log("src/a.cpp:1:1: note: #pragma message: hello\n", ["src/a.cpp"])
    assert [(x.code, x.severity) for x in f] == [("FS303", Severity.INFO)]


def test_failed_build_without_diagnostics_is_fs306_with_log_tail() -> None:
    log = HEAD + "make: *** [user] Error 2\n"
    f = parse_build_log(log, UPLOADED)
    assert [x.code for x in f] == ["FS306"] and "Error 2" in f[0].facts["log_tail"]
    assert parse_build_log(HEAD, UPLOADED) == []
    assert [x.code for x in parse_build_log("Compiler timed out", [], failed=True)] == ["FS306"]


def test_path_mapper_suffix_rules() -> None:
    m = PathMapper(["src/app.ino", "lib/A/src/util.h", "lib/B/src/util.h"])
    assert m.map("/workspace/src/app.ino") == "src/app.ino"
    assert m.map("/src/app.ino") == "src/app.ino"
    assert m.map("app.ino") == "src/app.ino"  # unique suffix
    assert m.map("util.h") is None  # ambiguous suffix
    assert m.map("/build/x/lib/A/src/util.h") == "lib/A/src/util.h"
    assert m.map("../wiring/inc/spark_wiring.h") is None
