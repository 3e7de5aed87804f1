"""File selection (``fieldsafe.project.select_files``) on tricky trees.

The expected lists are written by hand from particle-cli's rules (docs/project.md); the e2e parity test
(test_file_selection_parity.py) runs the real particle-cli selection on the same trees.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from fieldsafe.project import MAX_FILE_SIZE, brace_expand, select_files, select_files_report


def _write(root: Path, files: dict[str, str | bytes]) -> None:
    for rel, content in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content, encoding="utf-8")


def tree_extended(root: Path) -> None:
    """An extended project with libraries, library examples, hidden files and odd names."""
    _write(
        root,
        {
            "project.properties": "name=tracker\ndependencies.Foo=1.0.0\n",
            "README.md": "# readme\n",
            "src/tracker.ino": "void setup() {}\nvoid loop() {}\n",
            "src/util.cpp": "",
            "src/util.h": "",
            "src/gps.hpp": "",
            "src/legacy.hh": "",
            "src/types.hxx": "",
            "src/raw.c": "",
            "src/build.mk": "",
            "src/UPPER.C": "",  # case-sensitive: not a *.c
            "src/util.cpp.bak": "",
            "src/with space.cpp": "",
            "src/ünïcode.cpp": "",
            "src/dir.c/inner.h": "",  # a folder named like a source file is never sent itself
            "src/.secret.h": "",
            "src/.cache/gen.cpp": "",
            ".git/hooks/x.c": "",
            ".vscode/settings.json": "{}",
            "lib/Foo/library.properties": "name=Foo\n",
            "lib/Foo/src/Foo.cpp": "",
            "lib/Foo/src/Foo.h": "",
            "lib/Foo/examples/basic/basic.ino": "",
            "lib/Foo/examples/basic/helper/helper.h": "",
            "lib/Foo/examples/basic/Makefile": "",
            "lib/Foo/test/unit/test.cpp": "",
            "lib/Bar/src/nested/deep/Bar.c": "",
            "nested/lib/Baz/examples/e.cpp": "",  # only top-level lib/*/examples is excluded
            "node_modules/pkg/binding.c": "",  # particle-cli has no node_modules rule
        },
    )


EXTENDED_EXPECTED = [
    "lib/Bar/src/nested/deep/Bar.c",
    "lib/Foo/src/Foo.cpp",
    "lib/Foo/src/Foo.h",
    "lib/Foo/test/unit/test.cpp",
    "nested/lib/Baz/examples/e.cpp",
    "node_modules/pkg/binding.c",
    "project.properties",
    "src/build.mk",
    "src/dir.c/inner.h",
    "src/gps.hpp",
    "src/legacy.hh",
    "src/raw.c",
    "src/tracker.ino",
    "src/types.hxx",
    "src/util.cpp",
    "src/util.h",
    "src/with space.cpp",
    "src/ünïcode.cpp",
]


def tree_include_ignore(root: Path) -> None:
    """particle.include / particle.ignore at several levels, with comments, blanks, CRLF and braces."""
    _write(
        root,
        {
            "project.properties": "name=inc\n",
            "particle.include": (
                "# assets we need\r\n\r\n  *.txt  \r\nassets/**/*.json\r\ndata/{a,b}.csv\r\n"
                "lib/Foo/examples/basic/basic.ino\r\n.hidden/keep.h\r\nsrc/v?.cfg\r\nsrc/[ab].dat\r\n"
            ),
            "notes.txt": "",
            "other.md": "",
            "assets/x.json": "",
            "assets/deep/y.json": "",
            "assets/.private/z.json": "",
            "data/a.csv": "",
            "data/b.csv": "",
            "data/c.csv": "",
            ".hidden/keep.h": "",
            ".hidden/drop.h": "",
            "src/app.ino": "",
            "src/v1.cfg": "",
            "src/v10.cfg": "",
            "src/a.dat": "",
            "src/c.dat": "",
            "src/particle.include": "../docs/*.md\n# ../ is resolved from src/\n",
            "src/particle.ignore": "gen/*.cpp\n**/*_test.cpp\n",
            "src/gen/auto.cpp": "",
            "src/gen/keep.h": "",
            "src/core_test.cpp": "",
            "src/sub/io_test.cpp": "",
            "src/sub/io.cpp": "",
            "docs/guide.md": "",
            "lib/Foo/src/Foo.cpp": "",
            "lib/Foo/examples/basic/basic.ino": "",
            "lib/Foo/examples/other/other.ino": "",
            "lib/Foo/particle.ignore": "src/Foo.cpp\n",
            ".cfg/particle.ignore": "src/app.ino\n",  # hidden folder: never read by particle-cli
            "empty/particle.include": "",
            "particle.ignore": "data/b.csv\n",
        },
    )


INCLUDE_IGNORE_EXPECTED = [
    ".hidden/keep.h",
    "assets/deep/y.json",
    "assets/x.json",
    "data/a.csv",
    "docs/guide.md",
    "lib/Foo/examples/basic/basic.ino",
    "notes.txt",
    "project.properties",
    "src/a.dat",
    "src/app.ino",
    "src/gen/keep.h",
    "src/sub/io.cpp",
    "src/v1.cfg",
]


def tree_symlinks_inside(root: Path) -> None:
    """Symlinks that stay inside the project: a file link, a folder link with a nested folder."""
    _write(
        root,
        {
            "project.properties": "",
            "src/app.ino": "",
            "shared/impl.cpp": "",
            "shared/impl.h": "",
            "shared/sub/deep.c": "",
        },
    )
    os.symlink("../shared/impl.cpp", root / "src/linked.cpp")
    os.symlink("../shared", root / "src/shared_dir")


SYMLINKS_NOFOLLOW_EXPECTED = [
    "project.properties",
    "shared/impl.cpp",
    "shared/impl.h",
    "shared/sub/deep.c",
    "src/app.ino",
    "src/linked.cpp",  # a symlinked file is sent even without follow (glob stats through it)
    "src/shared_dir/impl.cpp",  # ** reads one level into a symlinked folder...
    "src/shared_dir/impl.h",
]  # ...but not below it (src/shared_dir/sub/deep.c needs follow)

SYMLINKS_FOLLOW_EXPECTED = sorted([*SYMLINKS_NOFOLLOW_EXPECTED, "src/shared_dir/sub/deep.c"])


def tree_legacy(root: Path) -> None:
    """A legacy flat project: sources next to each other, no project.properties."""
    _write(root, {"app.ino": "", "helper.cpp": "", "helper.h": "", "notes.txt": "", "app.bin": b"\0"})


LEGACY_EXPECTED = ["app.ino", "helper.cpp", "helper.h"]


def tree_big_file(root: Path) -> None:
    """A source file just over 10 MiB (sparse) and one exactly at the limit."""
    _write(root, {"project.properties": "", "src/app.ino": ""})
    with open(root / "src/huge_table.c", "wb") as fh:
        fh.truncate(MAX_FILE_SIZE + 1)
    with open(root / "src/at_limit.c", "wb") as fh:
        fh.truncate(MAX_FILE_SIZE)


CYCLE_NOFOLLOW_EXPECTED = ["project.properties", "src/app.ino", "src/loop/top.c", "top.c"]

# (builder, follow_symlinks, expected particle-cli list) — shared with the parity test
PARITY_CASES: dict[str, tuple[Callable[[Path], None], bool, list[str]]] = {
    "extended": (tree_extended, False, EXTENDED_EXPECTED),
    "include_ignore": (tree_include_ignore, False, INCLUDE_IGNORE_EXPECTED),
    "symlinks_nofollow": (tree_symlinks_inside, False, SYMLINKS_NOFOLLOW_EXPECTED),
    "symlinks_follow": (tree_symlinks_inside, True, SYMLINKS_FOLLOW_EXPECTED),
    "legacy": (tree_legacy, False, LEGACY_EXPECTED),
    "cycle_nofollow": (lambda root: tree_cycle(root), False, CYCLE_NOFOLLOW_EXPECTED),
    "big_file": (
        tree_big_file,
        False,
        ["project.properties", "src/app.ino", "src/at_limit.c", "src/huge_table.c"],
    ),
}


@pytest.mark.parametrize("case", [c for c in PARITY_CASES if c != "big_file"])
def test_selection_matches_hand_written_expectation(tmp_path: Path, case: str) -> None:
    build, follow, expected = PARITY_CASES[case]
    build(tmp_path)
    assert select_files(tmp_path, follow_symlinks=follow) == expected


def test_files_over_10_mib_are_skipped_with_a_reason(tmp_path: Path) -> None:
    tree_big_file(tmp_path)
    report = select_files_report(tmp_path)
    assert report.files == ("project.properties", "src/app.ino", "src/at_limit.c")
    (skip,) = report.skipped
    assert skip.path == "src/huge_table.c"
    assert "10 MiB" in skip.reason and "particle.ignore" in skip.reason
    # particle-cli itself applies the limit only to files named on its command line
    assert "src/huge_table.c" in select_files_report(tmp_path, max_file_size=None).files


def test_symlinks_pointing_outside_the_root_are_never_selected(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    _write(outside, {"secret.cpp": "", "lib/x.h": "", "lib/sub/y.c": ""})
    root = tmp_path / "proj"
    _write(root, {"project.properties": "", "src/app.ino": ""})
    os.symlink(outside / "secret.cpp", root / "src/secret.cpp")
    os.symlink(outside / "lib", root / "src/extlib")
    os.symlink(root / "src/missing.cpp", root / "src/dangling.cpp")
    for follow in (False, True):
        report = select_files_report(root, follow_symlinks=follow)
        assert report.files == ("project.properties", "src/app.ino")
        reasons = {s.path: s.reason for s in report.skipped}
        assert "outside the project" in reasons["src/secret.cpp"]
        assert "outside the project" in reasons["src/extlib/"]
        assert "broken symlink" in reasons["src/dangling.cpp"]


def test_include_globs_cannot_escape_the_root(tmp_path: Path) -> None:
    _write(tmp_path, {"sibling/leak.cpp": "", "sibling/x.txt": ""})
    root = tmp_path / "proj"
    _write(
        root,
        {
            "project.properties": "",
            "particle.include": "../sibling/*.cpp\nsrc/../../sibling/*.txt\n/etc/*.conf\n",
            "src/app.ino": "",
        },
    )
    report = select_files_report(root)
    assert report.files == ("project.properties", "src/app.ino")
    escaped = [s for s in report.skipped if "outside the project root" in s.reason]
    assert {s.path for s in escaped} == {
        "particle.include: ../sibling/*.cpp",
        "particle.include: src/../../sibling/*.txt",
    }


def test_absolute_looking_include_line_is_relative_like_path_join(tmp_path: Path) -> None:
    _write(tmp_path, {"project.properties": "", "particle.include": "/etc/*.conf\n", "etc/a.conf": ""})
    assert select_files(tmp_path) == ["etc/a.conf", "project.properties"]


def tree_cycle(root: Path) -> None:
    """A symlink back to the project root (a cycle)."""
    _write(root, {"project.properties": "", "src/app.ino": "", "top.c": ""})
    os.symlink("..", root / "src/loop")


def test_symlink_cycle_with_follow_terminates(tmp_path: Path) -> None:
    tree_cycle(tmp_path)
    report = select_files_report(tmp_path, follow_symlinks=True)
    assert "src/app.ino" in report.files
    assert any("cycle" in s.reason for s in report.skipped)
    assert len(report.files) < 10
    # without follow, glob 7 reads one level into the link and stops
    assert select_files(tmp_path) == CYCLE_NOFOLLOW_EXPECTED


def test_include_and_ignore_files_are_reported(tmp_path: Path) -> None:
    tree_include_ignore(tmp_path)
    report = select_files_report(tmp_path)
    assert report.include_files == ("empty/particle.include", "particle.include", "src/particle.include")
    assert report.ignore_files == ("lib/Foo/particle.ignore", "particle.ignore", "src/particle.ignore")


def test_extglob_lines_are_reported_not_guessed(tmp_path: Path) -> None:
    _write(tmp_path, {"project.properties": "", "particle.include": "@(a|b).txt\n", "a.txt": ""})
    report = select_files_report(tmp_path)
    assert report.files == ("project.properties",)
    assert any("extglob" in s.reason for s in report.skipped)


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("a{b,c}d", ["abd", "acd"]),
        ("{x,y{1,2}}", ["x", "y1", "y2"]),
        ("f{1..3}", ["f1", "f2", "f3"]),
        ("f{a..c}", ["fa", "fb", "fc"]),
        ("f{01..03}", ["f01", "f02", "f03"]),
        ("{single}.c", ["{single}.c"]),
        ("no-braces", ["no-braces"]),
        ("{,x}y", ["y", "xy"]),
    ],
)
def test_brace_expansion(pattern: str, expected: list[str]) -> None:
    assert brace_expand(pattern) == expected


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs os.mkfifo")
def test_a_fifo_named_like_a_source_is_skipped_not_read(tmp_path: Path) -> None:
    """Reading a FIFO blocks forever: compile and check would hang on ``src/pipe.cpp``."""
    (tmp_path / "src").mkdir()
    (tmp_path / "project.properties").write_text("name=x\n")
    (tmp_path / "src" / "app.ino").write_text("void setup(){}\n")
    os.mkfifo(tmp_path / "src" / "pipe.cpp")
    report = select_files_report(tmp_path)
    assert report.files == ("project.properties", "src/app.ino")
    (skip,) = report.skipped
    assert skip.path == "src/pipe.cpp" and "not a regular file" in skip.reason
