"""The emulator's compiler on the real-code corpus: 0 false compile errors at each project's minimum, and a
compile error for the labelled API just below it (tests/fixtures/realcode/, format in its README.md).

Headers are generated once per (release, platform) into one shared cache for the whole module. The
default run compiles each project for its FIRST listed platform; the ``slow`` test compiles the other
platforms, so CI (which runs every test) covers the whole corpus exactly once.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))
from compile_corpus import api_token, first_error, project_files  # noqa: E402
from fieldsafe import platforms  # noqa: E402
from fieldsafe.emulator.compiler import COMPILER, compile_sources  # noqa: E402
from realcode_corpus import projects, releases_around  # noqa: E402

pytestmark = pytest.mark.skipif(shutil.which(COMPILER) is None, reason=f"needs {COMPILER}")

PROJECTS = projects()


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("corpus-headers")


def _check(project, platform: str, cache: Path) -> list[str]:
    """Problems for one (project, platform): a failed build at the minimum, a missed API below it."""
    problems: list[str] = []
    files = project_files(project)
    pid = platforms.get(platform).id
    at, below = releases_around(platform, project.minimum_on.get(platform, project.minimum))
    result = compile_sources(files, pid, at, cache_root=cache)
    if not result.ok:
        problems.append(f"false compile error at {at} on {platform}: {first_error(result.log)}")
    wanted = [b for b in project.below if not b.platforms or platform in b.platforms]
    if below is not None and wanted:
        result = compile_sources(files, pid, below, cache_root=cache)
        explained = "note: fieldsafe:" in result.log
        errors = [ln for ln in result.log.splitlines() if ": error: " in ln]
        for label in wanted:
            if result.ok or not (explained or any(api_token(label) in ln for ln in errors)):
                why = "it compiled" if result.ok else first_error(result.log)
                problems.append(f"{label.api} not rejected at {below} on {platform} ({why})")
    return problems


def test_the_corpus_has_40_labelled_projects() -> None:
    assert len(PROJECTS) >= 40
    assert all(p.platforms for p in PROJECTS)


@pytest.mark.parametrize("project", PROJECTS, ids=[p.name for p in PROJECTS])
def test_first_platform_compiles_at_minimum_and_fails_below(project, cache: Path) -> None:
    assert _check(project, project.platforms[0], cache) == []


@pytest.mark.slow
@pytest.mark.parametrize("project", PROJECTS, ids=[p.name for p in PROJECTS])
def test_other_platforms_compile_at_minimum_and_fail_below(project, cache: Path) -> None:
    problems = [p for platform in project.platforms[1:] for p in _check(project, platform, cache)]
    assert problems == []


def test_a_missing_api_error_carries_the_release_that_adds_it(cache: Path) -> None:
    """The diagnostic says which release adds the API, not only gcc's "did you mean"."""
    src = b'#include "Particle.h"\nvoid setup() {\n  Particle.publishVitals(60);\n}\nvoid loop() {}\n'
    result = compile_sources({"src/app.cpp": src}, 6, "1.1.1", cache_root=cache)
    assert not result.ok
    note = next(ln for ln in result.log.splitlines() if "note: fieldsafe:" in ln)
    assert note.startswith("src/app.cpp:3:") and "1.2.1" in note and "1.1.1" in note
    from fieldsafe.gccout import parse_build_log

    finding = parse_build_log(result.log, ["src/app.cpp"])[0]
    assert any("1.2.1" in r.message for r in finding.related)


def test_device_abi_and_real_macro_bodies(cache: Path) -> None:
    """32-bit size_t, WITH_LOCK's token pasting and SYSTEM_MODE's declaration behave as on the device."""
    if "arm-none-eabi" not in COMPILER:
        pytest.skip("the device ABI needs arm-none-eabi-g++")
    ok = b"""#include "Particle.h"
static_assert(sizeof(size_t) == 4, "32-bit target");
SYSTEM_MODE(SEMI_AUTOMATIC);
SYSTEM_THREAD(ENABLED);
SerialLogHandler logHandler(LOG_LEVEL_WARN, {{"app", LOG_LEVEL_ALL}});
Mutex lock;
void setup() { WITH_LOCK(lock) { Log.info("%d", (int)SYSTEM_ERROR_NONE); } }
void loop() {}
"""
    assert compile_sources({"src/app.cpp": ok}, 13, "2.3.0", cache_root=cache).ok
    twice = ok.replace(b"SYSTEM_THREAD(ENABLED);", b"SYSTEM_MODE(MANUAL);")
    result = compile_sources({"src/app.cpp": twice}, 13, "2.3.0", cache_root=cache)
    assert not result.ok and "SystemMode" in result.log
