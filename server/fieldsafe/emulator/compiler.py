"""The emulator's honest compiler: per-release syntax and API-availability checking with host g++.

What it does: writes the uploaded sources to a temporary directory (rejecting absolute and ``..``
paths), preprocesses ``.ino`` files like the cloud (include, prototypes, ``#line``), and runs
``g++ -fsyntax-only -std=gnu++17`` on every ``.cpp``/``.ino``/``.c`` against *stub* Device OS
headers generated for the requested release and platform from the Device OS symbol index
(:mod:`fieldsafe.emulator.headers`). The compiler is the Debian ARM cross compiler
``arm-none-eabi-g++`` with the platform's ``-mcpu``/float ABI, ``-fno-exceptions -fno-rtti
-fshort-enums`` and newlib, i.e. the device's 32-bit ABI (``size_t`` and ``long`` are 32-bit,
``int32_t`` is ``long``, ``char`` is unsigned), when it is installed; otherwise the host ``g++``
(``-m32`` when multilib works), which the log says. When gcc reports a name the release does not
declare, the log adds a ``note:`` saying which release (or platform) has it
(:func:`fieldsafe.symbols.explain_missing`). The
log it returns has the cloud's shape (library lines, ``make -C ../modules/<platform>/user-part
all``, the compiler command lines with ``-DMODULE_DEPENDENCY=4,<index>,<version>``, then gcc's
diagnostics verbatim, paths project-relative), so :func:`fieldsafe.gccout.parse_build_log` reads
it exactly like a real cloud log.

What it does NOT do: it produces no runnable firmware. On success it returns a *valid user-part
module* (prefix, suffix, SHA-256 and CRC correct; platform, user part index, start address and the
dependency on the release's system module version exactly as a cloud build would have them) whose
payload is a deterministic blob derived from the sources, and an ``arm-none-eabi-size``-shaped
``sizeInfo`` with plausible numbers derived from the source size. Those numbers are estimates, not
measurements. Argument types of Device OS calls are not checked (the stubs accept any arguments);
see ``docs/emulator-compiler.md``.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import shlex
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from fieldsafe import platforms, symbols
from fieldsafe.emulator.headers import BUILD_FLAGS_FILE, header_dir, include_name
from fieldsafe.emulator.ino import preprocess_ino
from fieldsafe.modules import Dependency, build_user_module
from fieldsafe.versions import DeviceOSVersion, catalog

__all__ = ["COMPILER", "CompileResult", "UnsafePathError", "compile_sources", "size_info_text"]

ARM_COMPILER = "arm-none-eabi-g++"
COMPILER = os.environ.get("FIELDSAFE_EMULATOR_CXX") or (ARM_COMPILER if shutil.which(ARM_COMPILER) else "g++")
# The application build's CPU flags per MCU family (Device OS build/arm/*.mk)
_ARM_FLAGS = {
    "stm32f2xx": ["-mcpu=cortex-m3", "-mthumb"],
    "nrf52840": ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"],
    "rtl872x": ["-mcpu=cortex-m33", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv5-sp-d16"],
}
_DEVICE_FLAGS = ["-fno-exceptions", "-fno-rtti", "-fshort-enums"]
SOURCE_SUFFIXES = (".cpp", ".cc", ".cxx", ".c", ".ino")
DEFAULT_TIMEOUT = 60.0
_SYSTEM_PART = 4


class UnsafePathError(ValueError):
    """An uploaded file name is absolute or climbs out of the project (``..``); names the file and the fix."""


@dataclass
class CompileResult:
    """Outcome of one emulated compile. ``log`` is the cloud-shaped build log (success or failure)."""

    ok: bool
    log: str
    size_info: str | None = None
    binary: bytes | None = None
    platform_id: int = 0
    release: str = ""
    module_index: int | None = None
    start_address: int | None = None
    dependency: Dependency | None = None
    sources: list[str] = field(default_factory=list)

    @property
    def dependency_text(self) -> str | None:
        """``4,2,21`` style, as in ``-DMODULE_DEPENDENCY``."""
        d = self.dependency
        return f"{d.function},{d.index},{d.version}" if d else None


def _check_path(name: str) -> str:
    """Normalise an uploaded name to a safe relative POSIX path, or raise UnsafePathError."""
    text = name.replace("\\", "/")
    p = PurePosixPath(text)
    if not text or text.startswith("/") or p.is_absolute() or (len(text) > 1 and text[1] == ":"):
        raise UnsafePathError(
            f"file {name!r}: absolute paths are not accepted; send project-relative paths like src/app.ino"
        )
    if any(part == ".." for part in p.parts):
        raise UnsafePathError(f"file {name!r}: '..' is not allowed in file names; send paths inside the project")
    clean = str(PurePosixPath(*[part for part in p.parts if part not in (".", "")]))
    if clean in ("", "."):
        raise UnsafePathError(f"file {name!r}: empty file name")
    return clean


def _include_dirs(paths: list[str]) -> list[str]:
    """``src``, every ``lib/<name>/src`` (and ``lib/<name>`` for flat libraries), then the project root."""
    dirs: list[str] = []
    if any(p.startswith("src/") for p in paths):
        dirs.append("src")
    libs = sorted({p.split("/")[1] for p in paths if p.startswith("lib/") and p.count("/") >= 2})
    for lib in libs:
        if any(p.startswith(f"lib/{lib}/src/") for p in paths):
            dirs.append(f"lib/{lib}/src")
        else:
            dirs.append(f"lib/{lib}")
    dirs.append(".")
    return dirs


def _library_names(paths: list[str]) -> list[str]:
    return sorted({p.split("/")[1] for p in paths if p.startswith("lib/") and p.count("/") >= 2})


def _is_source(path: str) -> bool:
    if path.startswith("lib/") and "/examples/" in path:
        return False
    return path.endswith(SOURCE_SUFFIXES)


def _payload(files: dict[str, bytes], size: int) -> bytes:
    """Deterministic pseudo-firmware of ``size`` bytes seeded by the sources (SHA-256 in counter mode)."""
    seed = hashlib.sha256()
    for name in sorted(files):
        seed.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    key = seed.digest()
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(key + counter.to_bytes(8, "little")).digest()
        counter += 1
    return bytes(out[:size])


def _estimate_sizes(source_bytes: int, max_size: int | None) -> tuple[int, int, int]:
    """(text, data, bss) estimates: a fixed app overhead plus a share of the source size."""
    text = 3800 + (source_bytes * 3) // 2
    if max_size:
        text = min(text, max_size - 1024)
    data = 96 + source_bytes // 200
    bss = 1500 + source_bytes // 10
    return text, data, bss


def size_info_text(text: int, data: int, bss: int, filename: str = "/workspace/target/workspace.elf") -> str:
    """The two lines of ``arm-none-eabi-size`` output the cloud returns as ``sizeInfo``."""
    dec = text + data + bss
    return (
        "   text\t   data\t    bss\t    dec\t    hex\tfilename\n"
        f"{text:>7}\t{data:>7}\t{bss:>7}\t{dec:>7}\t{dec:>7x}\t{filename}\n"
    )


def compile_sources(
    files: dict[str, bytes],
    platform_id: int,
    release: str,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    cache_root: Path | None = None,
) -> CompileResult:
    """Compile-check ``files`` (project-relative name -> bytes) for ``release`` on ``platform_id``.

    Raises UnsafePathError for bad file names, KeyError for an unknown platform and LookupError for
    a release the version table does not know; compile errors are a result (``ok=False``), not an
    exception.
    """
    clean = {_check_path(name): data for name, data in files.items()}
    platform = platforms.get(platform_id)
    version = DeviceOSVersion.parse(release)
    module_version = catalog().module_version(version)
    if module_version is None:
        raise LookupError(f"Device OS {release} is not in the version table; pick a listed release")
    dep_function, dep_index = platform.user_part_dependency(version)
    dependency = Dependency(dep_function, dep_index, module_version)
    user_index = platform.user_part_index(version)
    stubs = header_dir(version, platform.id, cache_root)
    names = sorted(clean)
    result = CompileResult(False, "", platform_id=platform.id, release=str(version), module_index=user_index,
                           dependency=dependency, sources=names)  # fmt: skip

    log: list[str] = []
    for lib in _library_names(names):
        log.append(f"Library {lib} found in lib/{lib} (uploaded with the project)")
    log.append(f"make -C ../modules/{platform.name}/user-part all")
    target_flags, abi_note = _target_flags(platform.mcu)
    log.append(f"fieldsafe emulator: {COMPILER} syntax and Device OS {version} API check ({abi_note}), not a build")
    ok = True
    with tempfile.TemporaryDirectory(prefix="fieldsafe-compile-") as tmp:
        root = Path(tmp)
        for name, data in clean.items():
            target = root / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        includes = _include_dirs(names)
        defines = [
            f"-DPLATFORM_ID={platform.id}",
            f"-DPLATFORM_NAME={platform.name}",
            f"-DMODULE_DEPENDENCY={dependency.function},{dependency.index},{dependency.version}",
            "-DMODULE_DEPENDENCY2=0,0,0",
            f"-DMODULE_FUNCTION=5 -DMODULE_INDEX={user_index}",
            "-DUSER_PART_MODULE=1",
        ]
        flags = ["-fsyntax-only", "-fdiagnostics-color=never", "-fmessage-length=0", "-Wno-pragmas", *target_flags]
        for name in [n for n in names if _is_source(n)]:
            cpp_name = _prepare_source(root, name, clean[name], names, include_name(version))
            lang = ["-x", "c", "-std=gnu11"] if name.endswith(".c") else ["-x", "c++", "-std=gnu++17"]
            cmd = [
                COMPILER,
                *lang,
                *flags,
                *" ".join(defines).split(),
                "-include",
                str(stubs / BUILD_FLAGS_FILE),
                *(f"-I{d}" for d in includes),
                f"-I{stubs}",
                cpp_name,
            ]
            log.append(f"Building {'c' if name.endswith('.c') else 'cpp'} file: {cpp_name}")
            log.append(shlex.join(cmd))
            status, output = _run(cmd, root, timeout)
            if status != 0 and output:
                output = explain_missing_names(output, version, platform.name)
            if output:
                log.append(output.rstrip("\n"))
            if status != 0:
                ok = False
                log.append(
                    f"make[1]: *** [../build/target/user/platform-{platform.id}-m/{_object_name(cpp_name)}] Error 1"
                )
        if not ok:
            log.append(f"make[1]: Leaving directory '../modules/{platform.name}/user-part'")
            log.append(f"make: *** [../modules/{platform.name}/user-part] Error 2")
    if not ok:
        result.log = "\n".join(log) + "\n"
        return result
    return _succeed(result, clean, platform, version, log)


def _object_name(cpp: str) -> str:
    return cpp.rsplit(".", 1)[0] + ".o"


def _target_flags(mcu: str) -> tuple[list[str], str]:
    """CPU/ABI flags for the compiler in use, and how the log describes the ABI."""
    if "arm-none-eabi" in Path(COMPILER).name:
        return [*_ARM_FLAGS.get(mcu, _ARM_FLAGS["nrf52840"]), *_DEVICE_FLAGS], f"ARM {mcu} 32-bit ABI"
    if _host_m32_works(COMPILER):
        return ["-m32", *_DEVICE_FLAGS], "host -m32: 32-bit sizes, not the ARM ABI"
    return list(_DEVICE_FLAGS), "host 64-bit ABI: install gcc-arm-none-eabi for the device ABI"


@functools.cache
def _host_m32_works(compiler: str) -> bool:
    try:
        proc = subprocess.run([compiler, "-m32", "-x", "c++", "-fsyntax-only", "-"], input="#include <cstdio>\n",
                              capture_output=True, text=True, timeout=30, check=False)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0


_MISSING_PATTERNS = (
    re.compile(r"error: '(?P<name>\w+)' was not declared in this scope"),
    re.compile(r"error: '(?P<name>\w+)' does not name a type"),
    re.compile(r"error: '(?P<name>\w+)' has not been declared"),
    re.compile(r"error: '(?P<name>\w+)' is not a member of '(?P<scope>[\w:]+)'"),
    re.compile(r"error: '(?:class|struct|union) (?P<scope>[\w:]+)' has no member named '(?P<name>\w+)'"),
    re.compile(r"error: '(?P<name>\w+)' is not a type"),
)
_DIAG_PREFIX = re.compile(r"^(?P<where>[^:\n]+:\d+:\d+): ")


def explain_missing_names(output: str, version: DeviceOSVersion, platform_name: str) -> str:
    """Add a ``note:`` after each gcc error about a name the release lacks, saying which release has it.

    gcc only knows the stub headers, so it says "was not declared" or "did you mean ..."; the API
    check knows *why* (added in 1.2.1, removed after 3.3.1, not on this platform). The wording comes
    from :func:`fieldsafe.symbols.explain_missing`; the note uses gcc's own format, so
    :func:`fieldsafe.gccout.parse_build_log` attaches it to the error as related information.
    """
    out: list[str] = []
    for line in output.splitlines():
        out.append(line)
        where = _DIAG_PREFIX.match(line)
        if not where or ": error: " not in line:
            continue
        for pattern in _MISSING_PATTERNS:
            m = pattern.search(line)
            if not m:
                continue
            scope = m.groupdict().get("scope")
            text = symbols.explain_missing(m["name"], version, platform_name, scope)
            if text:
                out.append(f"{where['where']}: note: fieldsafe: {text}")
            break
    return "\n".join(out) + ("\n" if output.endswith("\n") else "")


def _prepare_source(root: Path, name: str, data: bytes, names: list[str], include: str = "Particle.h") -> str:
    """Write the file to compile and return its project-relative name (``.ino`` -> generated ``.cpp``)."""
    if not name.endswith(".ino"):
        return name
    cpp = name[: -len(".ino")] + ".cpp"
    if cpp in names:
        cpp = name + ".cpp"
    text = data.decode("utf-8", errors="replace")
    (root / cpp).write_text(preprocess_ino(text, name, include), encoding="utf-8")
    return cpp


def _run(cmd: list[str], cwd: Path, timeout: float) -> tuple[int, str]:
    env = dict(os.environ, LC_ALL="C", LANG="C")
    try:
        # errors="replace": g++ quotes the offending source line, which may hold any bytes the user uploaded
        proc = subprocess.run(
            cmd, cwd=cwd, capture_output=True, text=True, errors="replace", timeout=timeout, env=env, check=False
        )
    except subprocess.TimeoutExpired:
        return 124, f"Compiler timed out after {timeout:.0f} s"
    except FileNotFoundError:
        return 127, (
            f"error: the emulator needs a host C++ compiler ({cmd[0]}) on PATH: install gcc-arm-none-eabi "
            "(the device ABI) or g++, or set FIELDSAFE_EMULATOR_CXX"
        )
    return proc.returncode, proc.stdout + proc.stderr


def _succeed(
    result: CompileResult, files: dict[str, bytes], platform, version: DeviceOSVersion, log: list[str]
) -> CompileResult:
    source_bytes = sum(len(v) for k, v in files.items() if k.endswith((*SOURCE_SUFFIXES, ".h", ".hpp")))
    text, data, bss = _estimate_sizes(source_bytes, platform.user_part_max_size)
    payload = _payload(files, text + data - 64)
    assert result.dependency is not None and result.module_index is not None
    args = dict(
        platform_id=platform.id, module_index=result.module_index, dependency=result.dependency, payload=payload
    )
    if platform.mcu == "rtl872x":
        size = len(build_user_module(start_address=0, **args))
        start = platform.user_part_start_address(version, module_size=size)
    else:
        start = platform.user_part_start_address(version)
    result.binary = build_user_module(start_address=start, **args)
    result.start_address = start
    result.size_info = size_info_text(text, data, bss)
    log.append("Creating target/workspace.elf (emulated: no code is generated)")
    log.append(result.size_info.rstrip("\n"))
    result.ok = True
    result.log = "\n".join(log) + "\n"
    return result
