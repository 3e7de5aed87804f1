"""A stand-in for ``fieldsafe.emulator.compiler.compile_sources`` used by the emulator and cloud tests.

Why a fake here: the emulator's HTTP behaviour (multipart parsing, build-target validation, binary
storage, error bodies) must be testable without g++ and independently of the compiler module. The
fake returns a *valid* user module (built with ``fieldsafe.modules.build_user_module``) whose
dependency is the requested release's system module version, so downstream parsers see real data.
A source containing ``#error`` fails with a gcc-style log.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from fieldsafe import platforms
from fieldsafe.modules import Dependency, build_user_module, parse_module
from fieldsafe.versions import DeviceOSVersion, catalog

SIZE_INFO = (
    "   text\t   data\t    bss\t    dec\t    hex\tfilename\n"
    "   1234\t    100\t    200\t   1534\t    5fe\t/workspace/target/workspace.elf\n"
)


@dataclass
class FakeResult:
    ok: bool
    log: str
    size_info: str
    binary: bytes | None


@dataclass
class FakeCompiler:
    """Callable like ``compile_sources``; remembers every call for assertions."""

    calls: list[tuple[dict[str, bytes], int, str]] = field(default_factory=list)

    def __call__(self, files: dict[str, bytes], platform_id: int, release: str) -> FakeResult:
        self.calls.append((dict(files), platform_id, release))
        for name, content in sorted(files.items()):
            if b"#error" in content:
                line = content[: content.index(b"#error")].count(b"\n") + 1
                log = f'make -C ../modules/electron/user-part all\n{name}:{line}:2: error: #error "fake failure"\n'
                return FakeResult(False, log, "", None)
        platform = platforms.get(platform_id)
        version = DeviceOSVersion.parse(release)
        function, index = platform.user_part_dependency(version)
        module_version = catalog().module_version(release)
        assert module_version is not None
        payload = hashlib.sha256(b"".join(files[k] for k in sorted(files))).digest() * 4
        binary = build_user_module(
            platform_id=platform_id,
            module_index=platform.user_part_index(version),
            dependency=Dependency(function, index, module_version),
            start_address=platform.user_part_start_address(version),
            payload=payload,
        )
        return FakeResult(True, "", SIZE_INFO, binary)


def test_fake_compiler_builds_a_module_depending_on_the_release() -> None:
    fake = FakeCompiler()
    result = fake({"src/app.ino": b"void setup(){}\nvoid loop(){}\n"}, 10, "0.5.3")
    assert result.ok and result.binary
    info = parse_module(result.binary)
    assert info.platform_id == 10
    assert info.dependencies[0].version == catalog().module_version("0.5.3")
    failed = fake({"src/app.ino": b"\n#error nope\n"}, 10, "0.5.3")
    assert not failed.ok and "src/app.ino:2:2: error" in failed.log
