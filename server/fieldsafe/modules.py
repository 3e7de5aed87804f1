"""Particle module binary parser (and the module writers the emulator uses).

Why our own parser: fieldsafe reads the dependency of every binary the cloud compiles (to compare it
with what devices in the field run) and ``fieldsafe inspect`` must start and finish in a fraction of
the time ``particle binary inspect`` takes. The parser mirrors Particle's ``binary-version-reader``
(``lib/HalModuleParser.js``) so both agree on every real binary, and differs only where that parser
would crash or report garbage: here every bad input is a :class:`ModuleParseError` with a reason a
person can act on, and nothing else escapes for any byte string.

Layout (see docs/inspect.md): optional vector table, 24-byte prefix, optional prefix extensions,
code, suffix (read backwards from the end of the file), CRC-32 stored big-endian in the last 4 bytes.
All other integers are little-endian. The prefix is found the way binary-version-reader finds it:
preferred offsets first, then every 4-byte boundary up to 8 KiB, scoring each candidate.
"""

from __future__ import annotations

import hashlib
import os
import struct
import zlib
from dataclasses import dataclass, replace
from functools import cache
from os import PathLike

PREFIX_SIZE = 24
MIN_SUFFIX_SIZE = 36  # module_info_suffix_t: reserved u16, sha256[32], size u16
PRODUCT_SUFFIX_SIZE = 40  # + product id u16 + product version u16
CRC_SIZE = 4
MIN_MODULE_SIZE = PREFIX_SIZE + MIN_SUFFIX_SIZE + CRC_SIZE
MAX_PREFIX_SEARCH = 8 * 1024
# binary-version-reader's preferred offsets, in its order: 0, Gen 3 nRF52840 vector table, Gen 2
# STM32F2 vector table, Bluz, Core. rtl872x bootloaders (0x20) are found by the 4-byte scan.
PREFERRED_PREFIX_OFFSETS = (0, 0x200, 0x184, 0xC0, 0x10C)
MAX_SCORE = 7
# Real binaries carry a handful of prefix extensions; the cap keeps a crafted many-MB file from
# costing millions of loop iterations.
MAX_PREFIX_EXTENSIONS = 1024

FLAG_DROP_MODULE_INFO = 0x01
FLAG_COMPRESSED = 0x02
FLAG_COMBINED = 0x04
FLAG_ENCRYPTED = 0x08
FLAG_PREFIX_EXTENSIONS = 0x10
KNOWN_FLAGS = 0x1F
FLAG_NAMES = {
    FLAG_DROP_MODULE_INFO: "drop_module_info",
    FLAG_COMPRESSED: "compressed",
    FLAG_COMBINED: "combined",
    FLAG_ENCRYPTED: "encrypted",
    FLAG_PREFIX_EXTENSIONS: "prefix_extensions",
}

FUNCTION_USER_PART = 5
FUNCTION_SYSTEM_PART = 4
FUNCTION_NAMES = {
    0: "none",
    1: "resource",
    2: "bootloader",
    3: "monolithic",
    4: "system_part",
    5: "user_part",
    6: "settings",
    7: "ncp_firmware",
    8: "radio_stack",
    9: "asset",
}

EXT_END = 0x0000
EXT_PRODUCT_DATA = 0x0001
EXT_DYNAMIC_LOCATION = 0x0002
EXT_DEPENDENCY = 0x0003
EXT_HASH = 0x0010
EXT_NAME = 0x0011
EXT_ASSET_DEPENDENCY = 0x0012
EXT_SECURITY_MODE = 0x0013
EXT_ASSET_TYPE = 0x0014
EXT_INVALID = 0xFFFF
EXTENSION_NAMES = {
    EXT_END: "end",
    EXT_PRODUCT_DATA: "product_data",
    EXT_DYNAMIC_LOCATION: "dynamic_location",
    EXT_DEPENDENCY: "dependency",
    EXT_HASH: "hash",
    EXT_NAME: "name",
    EXT_ASSET_DEPENDENCY: "asset_dependency",
    EXT_SECURITY_MODE: "security_mode",
    EXT_ASSET_TYPE: "asset_type",
}

_PREFIX = struct.Struct("<IIBBHHBBBBHBBH")
_ADDRS = struct.Struct("<II")
_U16 = struct.Struct("<H")
_EXT_HEADER = struct.Struct("<HH")


class ModuleParseError(ValueError):
    """The bytes are not a module we can read; ``reason`` says why in words a person can act on.

    Why one type: callers (CLI, LSP, compile job) report bad binaries per file and carry on, so they
    need exactly one exception to catch, never a ``struct.error`` from deep inside the parser.
    """

    def __init__(self, reason: str, path: str | None = None) -> None:
        self.reason = reason
        self.path = path
        super().__init__(f"{path}: {reason}" if path else reason)


@dataclass(frozen=True)
class Dependency:
    """A module this one needs: same function and index, with ``module_version >= version``."""

    function: int
    index: int
    version: int

    @property
    def function_name(self) -> str:
        return function_name(self.function)


@dataclass(frozen=True)
class Extension:
    """One TLV extension; ``length`` includes the 4-byte header, ``payload`` excludes it."""

    where: str  # "prefix" | "suffix"
    type: int
    length: int
    name: str
    payload: bytes

    def fields(self) -> dict[str, object]:
        """The payload decoded the way binary-version-reader decodes it (empty for unknown types).

        Why tolerant: a short payload yields the fields that fit rather than an error, because the
        extension was already accepted by the framing rules and the caller only wants to show it.
        """
        return _decode_extension(self.type, self.payload)


@dataclass(frozen=True)
class ModuleInfo:
    """Everything the prefix, extensions and suffix of one module file say, plus integrity checks."""

    prefix_offset: int
    start_address: int
    end_address: int
    reserved: int
    flags: int
    module_version: int
    platform_id: int
    module_function: int
    module_index: int
    dependencies: tuple[Dependency, ...]
    prefix_size: int
    suffix_size: int
    product_id: int | None
    product_version: int | None
    sha256_stored: str
    sha256_actual: str
    sha256_ok: bool
    crc_stored: int
    crc_actual: int
    crc_ok: bool
    extensions: tuple[Extension, ...]
    function_name: str
    file_size: int = 0
    notes: tuple[str, ...] = ()

    @property
    def uuid(self) -> str:
        """The stored SHA-256: what the device reports as ``u`` and the cloud as the app hash."""
        return self.sha256_stored

    @property
    def drop_module_info(self) -> bool:
        return bool(self.flags & FLAG_DROP_MODULE_INFO)

    @property
    def compressed(self) -> bool:
        return bool(self.flags & FLAG_COMPRESSED)

    @property
    def combined(self) -> bool:
        return bool(self.flags & FLAG_COMBINED)

    @property
    def encrypted(self) -> bool:
        return bool(self.flags & FLAG_ENCRYPTED)

    @property
    def has_prefix_extensions(self) -> bool:
        return bool(self.flags & FLAG_PREFIX_EXTENSIONS)

    @property
    def flag_names(self) -> tuple[str, ...]:
        """Names of the set flag bits; unknown bits appear as ``unknown(0x80)``."""
        return flag_names(self.flags)

    @property
    def module_size(self) -> int:
        """Bytes the prefix says the module occupies in a file: end - start + 4 (the CRC)."""
        return self.end_address - self.start_address + CRC_SIZE

    @property
    def is_product_firmware(self) -> bool:
        """True when the suffix carries product fields that are not the 0xFFFF "no product" marker."""
        return self.product_id is not None and self.product_id != 0xFFFF


def function_name(function: int) -> str:
    """``user_part``, ``system_part``, ... or ``unknown`` for codes Device OS does not define."""
    return FUNCTION_NAMES.get(function, "unknown")


def flag_names(flags: int) -> tuple[str, ...]:
    """Names of the set flag bits, lowest first; unknown bits as ``unknown(0xNN)``."""
    names = [name for bit, name in FLAG_NAMES.items() if flags & bit]
    if flags & ~KNOWN_FLAGS:
        names.append(f"unknown(0x{flags & ~KNOWN_FLAGS:02x})")
    return tuple(names)


def extension_name(ext_type: int) -> str:
    return EXTENSION_NAMES.get(ext_type, "unknown")


# --------------------------------------------------------------------------------------------- parse


def parse_file(path: str | PathLike[str]) -> ModuleInfo:
    """Read and parse one module file; any problem (unreadable, empty, malformed) is a ModuleParseError."""
    name = str(path)
    from fieldsafe.safeio import NotRegularFile, read_regular

    try:
        data = read_regular(path, 64 * 1024 * 1024)  # never a FIFO (it would block), never unbounded
    except FileNotFoundError:
        raise ModuleParseError("no such file", name) from None
    except (IsADirectoryError, NotRegularFile):
        if os.path.isdir(name):
            raise ModuleParseError("is a directory, not a module file", name) from None
        raise ModuleParseError("is a pipe, socket or device, not a module file", name) from None
    except OSError as exc:
        raise ModuleParseError(f"cannot read the file ({exc.strerror or exc})", name) from None
    try:
        return parse_module(data)
    except ModuleParseError as exc:
        raise ModuleParseError(exc.reason, name) from None


def parse_module(data: bytes) -> ModuleInfo:
    """Parse a module image held in memory; raises only ModuleParseError."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ModuleParseError(f"expected the bytes of a module file, got {type(data).__name__}")
    data = bytes(data)
    size = len(data)
    if size == 0:
        raise ModuleParseError("the file is empty (0 bytes); a Particle module file is never empty")
    if size < MIN_MODULE_SIZE:
        raise ModuleParseError(
            f"truncated: {size} bytes is shorter than the smallest possible module "
            f"({PREFIX_SIZE}-byte prefix + {MIN_SUFFIX_SIZE}-byte suffix + 4-byte CRC = {MIN_MODULE_SIZE})"
        )
    offset = _find_prefix_offset(data)
    if offset is None or _score_prefix(data, offset, _known_platform_ids()) < MAX_SCORE:
        truncated = _truncated_reason(data)
        if truncated is not None:  # a real prefix at a usual offset describes more than the file holds
            raise ModuleParseError(truncated)
    if offset is None:
        raise ModuleParseError(_no_prefix_reason(data))
    fields = _PREFIX.unpack_from(data, offset)
    (start, end, reserved, flags, version, platform, function, index, d1f, d1i, d1v, d2f, d2i, d2v) = fields
    prefix_exts, prefix_size = _read_prefix_extensions(data, offset, flags)
    try:
        suffix = _read_suffix(data)
    except ModuleParseError as exc:
        raise ModuleParseError(exc.reason + _padding_hint(size, offset, start, end)) from None
    crc_stored = int.from_bytes(data[-CRC_SIZE:], "big")
    crc_actual = zlib.crc32(memoryview(data)[:-CRC_SIZE])
    sha_stored = data[size - 38 : size - 6].hex()
    sha_actual = hashlib.sha256(memoryview(data)[: size - 38]).hexdigest()
    deps = tuple(Dependency(f, i, v) for f, i, v in ((d1f, d1i, d1v), (d2f, d2i, d2v)) if f != 0)
    info = ModuleInfo(
        prefix_offset=offset,
        start_address=start,
        end_address=end,
        reserved=reserved,
        flags=flags,
        module_version=version,
        platform_id=platform,
        module_function=function,
        module_index=index,
        dependencies=deps,
        prefix_size=prefix_size,
        suffix_size=suffix.size,
        product_id=suffix.product_id,
        product_version=suffix.product_version,
        sha256_stored=sha_stored,
        sha256_actual=sha_actual,
        sha256_ok=sha_stored == sha_actual,
        crc_stored=crc_stored,
        crc_actual=crc_actual,
        crc_ok=crc_stored == crc_actual,
        extensions=prefix_exts + suffix.extensions,
        function_name=function_name(function),
        file_size=size,
    )
    return _with_notes(info, data)


def _padding_hint(size: int, offset: int, start: int, end: int) -> str:
    """Why a suffix read from the file end can be garbage: the file is longer than its module."""
    module_size = end - start + CRC_SIZE
    if size <= module_size:
        return ""
    return (
        f". The file is {size - module_size} bytes longer than the module its prefix (at file offset "
        f"{offset}) describes, so the end of the file is not a module suffix: this looks like an old "
        "or padded image that Particle's tools cannot read either"
    )


@cache
def _known_platform_ids() -> frozenset[int]:
    """Platform ids binary-version-reader scores as known: device-constants entries with generation > 0.

    Read from the bundled ``platforms.tsv`` (device-constants 4.2.1) so the table stays the single
    source of platform facts.
    """
    from fieldsafe._data import read_tsv

    ids = set()
    for row in read_tsv("platforms.tsv"):
        try:
            if int(row["device_constants_generation"]) > 0:
                ids.add(int(row["platform_id"]))
        except (KeyError, ValueError):
            continue
    return frozenset(ids)


def _score_prefix(data: bytes, offset: int, known_platforms: frozenset[int], *, whole: bool = True) -> int:
    """binary-version-reader's ``_validateModulePrefix`` score: 0 = not a prefix, 7 = certain.

    ``whole`` False scores a prefix as if the file held the whole module (to recognise a truncated one).
    """
    size = len(data)
    if offset + PREFIX_SIZE > size:
        return 0
    start, end = _ADDRS.unpack_from(data, offset)
    if end <= start or (whole and size < end - start + CRC_SIZE):
        return 0
    (_, _, _, flags, _, platform, function, _, d1f, d1i, d1v, d2f, d2i, d2v) = _PREFIX.unpack_from(data, offset)
    if function == 0:
        return 0
    if (d1f == 0 and (d1i or d1v)) or (d2f == 0 and (d2i or d2v)):
        return 0
    score = 1
    score += platform in known_platforms
    score += function in FUNCTION_NAMES
    score += d1f in FUNCTION_NAMES
    score += d2f in FUNCTION_NAMES
    score += size == end - start + CRC_SIZE
    score += (flags & ~KNOWN_FLAGS) == 0
    return score


def _find_prefix_offset(data: bytes) -> int | None:
    """Where the prefix is: the first candidate scoring 7, else the (first) best; None when all score 0."""
    known = _known_platform_ids()
    best_offset, best_score = None, 0
    for offset in _candidate_offsets(len(data)):
        score = _score_prefix(data, offset, known)
        if score >= MAX_SCORE:
            return offset
        if score > best_score:
            best_offset, best_score = offset, score
    return best_offset


def _truncated_reason(data: bytes) -> str | None:
    """ "truncated: ..." when a usual prefix offset holds a convincing prefix of a longer module, else None.

    Why: one byte short, the real prefix fails the size test and the scan could settle on garbage further
    in; "not a Particle module binary" would send the user looking for the wrong problem.
    """
    known = _known_platform_ids()
    size = len(data)
    for offset in PREFERRED_PREFIX_OFFSETS:
        # every point but the exact-size one: known platform, known function and dependencies, known flags
        if _score_prefix(data, offset, known, whole=False) >= MAX_SCORE - 1:
            start, end = _ADDRS.unpack_from(data, offset)
            need = end - start + CRC_SIZE
            if size < need:
                return (
                    f"truncated: the file is {size} bytes, but the module its prefix (at file offset {offset}) "
                    f"describes is {need} bytes ({need - size} missing); download or copy the file again"
                )
    return None


def _candidate_offsets(size: int) -> list[int]:
    """Preferred offsets, then 4-byte steps up to 8 KiB (and not past where a whole module could fit)."""
    last = min(MAX_PREFIX_SEARCH, size - MIN_SUFFIX_SIZE - PREFIX_SIZE - CRC_SIZE)
    scan = [o for o in range(4, last + 1, 4) if o not in PREFERRED_PREFIX_OFFSETS]
    return [*PREFERRED_PREFIX_OFFSETS, *scan]


def _no_prefix_reason(data: bytes) -> str:
    """Explain a missing prefix, naming erased flash (all 0xFF) and zero fill explicitly."""
    if data.count(0xFF) == len(data):
        return "padded/erased flash: every byte is 0xFF, so there is no module in this file"
    if data.count(0) == len(data):
        return "the file is all zero bytes, so there is no module in this file"
    return (
        "no module prefix found (tried offsets 0, 0x200, 0x184, 0xC0, 0x10C and every 4-byte boundary "
        "up to 8 KiB): this is not a Particle module binary (.bin built for a Particle device)"
    )


def _read_prefix_extensions(data: bytes, offset: int, flags: int) -> tuple[tuple[Extension, ...], int]:
    """Prefix TLV extensions (flag 0x10) and the resulting prefix size; they must end with END."""
    if not flags & FLAG_PREFIX_EXTENSIONS:
        return (), PREFIX_SIZE
    exts: list[Extension] = []
    pos = offset + PREFIX_SIZE
    limit = len(data) - MIN_SUFFIX_SIZE - CRC_SIZE
    while pos < limit:
        ext = _read_extension(data, pos, "prefix")
        if ext is None:
            break
        exts.append(ext)
        pos += ext.length
        if ext.type == EXT_END:
            break
        if len(exts) >= MAX_PREFIX_EXTENSIONS:
            raise ModuleParseError(
                f"more than {MAX_PREFIX_EXTENSIONS} prefix extensions without an END extension: "
                "the prefix extension area is corrupt"
            )
    if not exts or exts[-1].type != EXT_END:
        raise ModuleParseError(
            "Prefix extensions should end with END extension: the flags say prefix extensions "
            f"follow the prefix at file offset {offset}, but no END extension (type 0) closes them"
        )
    return tuple(exts), pos - offset


def _read_extension(data: bytes, pos: int, where: str) -> Extension | None:
    """One TLV at ``pos``; None where binary-version-reader stops (type 0xFFFF or runs past the file)."""
    if pos + 4 > len(data):
        return None
    ext_type, length = _EXT_HEADER.unpack_from(data, pos)
    if ext_type == EXT_INVALID or pos + length > len(data):
        return None
    if length < 4:
        raise ModuleParseError(
            f"Invalid extension length: the {where} extension at file offset {pos} (type 0x{ext_type:04x}) "
            f"has length {length}, but every extension is at least its 4-byte header"
        )
    return Extension(where, ext_type, length, extension_name(ext_type), data[pos + 4 : pos + length])


@dataclass(frozen=True)
class _Suffix:
    size: int
    product_id: int | None
    product_version: int | None
    extensions: tuple[Extension, ...]


def _read_suffix(data: bytes) -> _Suffix:
    """The suffix, read backwards from the end of the file as binary-version-reader does."""
    size = len(data)
    suffix_size = _U16.unpack_from(data, size - 6)[0]
    product_id: int | None = None
    product_version: int | None = None
    if suffix_size >= PRODUCT_SUFFIX_SIZE:
        product_id = _U16.unpack_from(data, size - 44)[0]
        product_version = _U16.unpack_from(data, size - 42)[0]
    exts: list[Extension] = []
    if suffix_size > PRODUCT_SUFFIX_SIZE:
        pos = size - CRC_SIZE - suffix_size
        limit = size - CRC_SIZE - MIN_SUFFIX_SIZE
        while 0 < pos < limit:
            ext = _read_extension(data, pos, "suffix")
            if ext is None:
                break
            exts.append(ext)
            pos += ext.length
            if ext.type == EXT_END:
                break
    return _Suffix(suffix_size, product_id, product_version, tuple(exts))


def _with_notes(info: ModuleInfo, data: bytes) -> ModuleInfo:
    """Attach plain-language notes about oddities that are not parse errors (padding, unknown values)."""
    notes: list[str] = []
    size = len(data)
    if size > info.module_size:
        extra = size - info.module_size
        tail = data[info.module_size :]
        filler = " (all 0xFF: erased-flash padding)" if tail.count(0xFF) == len(tail) else ""
        notes.append(
            f"the file is {extra} bytes longer than the module its prefix describes ({info.module_size} bytes)"
            f"{filler}; the suffix and CRC are read from the end of the file, as Particle's tools do"
        )
    if info.suffix_size == 0xFFFF:
        notes.append("the suffix size reads 0xFFFF: the suffix is erased flash (0xFF), not real suffix data")
    elif info.suffix_size < MIN_SUFFIX_SIZE:
        notes.append(f"the suffix size {info.suffix_size} is below the minimum of {MIN_SUFFIX_SIZE}")
    elif info.suffix_size > size - CRC_SIZE:
        notes.append(f"the suffix size {info.suffix_size} is larger than the file")
    if info.function_name == "unknown":
        notes.append(f"module function {info.module_function} is not one Device OS defines")
    if info.flags & ~KNOWN_FLAGS:
        notes.append(f"unknown flag bits 0x{info.flags & ~KNOWN_FLAGS:02x} are set")
    if info.combined:
        notes.append("combined module: several modules are concatenated; this describes the first one")
    if not notes:
        return info
    return replace(info, notes=tuple(notes))


def _decode_extension(ext_type: int, payload: bytes) -> dict[str, object]:
    """Decode the payload of the extension types binary-version-reader understands."""
    p = payload
    out: dict[str, object] = {}
    if ext_type == EXT_PRODUCT_DATA and len(p) >= 6:
        # u32 id whose upper two bytes are 0xFFFF on disk; only the low 16 bits are the product id.
        out["product_id"] = _U16.unpack_from(p, 2)[0]
        out["product_version"] = _U16.unpack_from(p, 4)[0]
    elif ext_type == EXT_DYNAMIC_LOCATION and len(p) >= 12:
        start, load, dstart = struct.unpack_from("<III", p)
        out.update(module_start_address=start, dynalib_load_address=load, dynalib_start_address=dstart)
    elif ext_type == EXT_DEPENDENCY and len(p) >= 8:
        func, idx, ver, target = struct.unpack_from("<BBHI", p)
        out.update(module_function=func, module_index=idx, module_version=ver, target_id=target)
    elif ext_type == EXT_HASH and len(p) >= 2:
        out.update(hash_type=p[0], hash_length=p[1], hash=p[2:].hex())
    elif ext_type == EXT_NAME:
        out["name"] = p.decode("utf-8", "replace")
    elif ext_type == EXT_ASSET_DEPENDENCY and len(p) >= 2:
        hlen = p[1]
        out.update(hash_type=p[0], hash_length=hlen, hash=p[2 : 2 + hlen].hex())
        out["name"] = p[2 + hlen :].decode("utf-8", "replace")
    elif ext_type == EXT_SECURITY_MODE and len(p) >= 1:
        out["security_mode"] = p[0]
        out["has_certificate"] = len(p) > 1
    elif ext_type == EXT_ASSET_TYPE and len(p) >= 1:
        out["asset_type"] = p[0]
    return out


# --------------------------------------------------------------------------------------------- write


def build_user_module(
    *,
    platform_id: int,
    module_index: int,
    dependency: Dependency,
    start_address: int,
    payload: bytes,
    module_version: int = 6,
    product_id: int | None = None,
    product_version: int | None = None,
) -> bytes:
    """A valid user part: prefix at 0, ``payload``, 40-byte suffix, SHA-256 and big-endian CRC filled in.

    Why: the emulator's compiler must hand back binaries that fieldsafe (and Particle's tools) read
    exactly like cloud-built ones. Product fields left as None are written as 0xFFFF, Device OS's
    "not product firmware" marker, so they parse back as 65535.
    """
    _check_range("platform_id", platform_id, 0xFFFF)
    _check_range("module_index", module_index, 0xFF)
    _check_range("module_version", module_version, 0xFFFF)
    _check_range("dependency.function", dependency.function, 0xFF)
    _check_range("dependency.index", dependency.index, 0xFF)
    _check_range("dependency.version", dependency.version, 0xFFFF)
    if dependency.function == 0 and (dependency.index or dependency.version):
        raise ValueError("dependency: function 0 means no dependency, so index and version must be 0 too")
    _check_range("start_address", start_address, 0xFFFFFFFF)
    pid = 0xFFFF if product_id is None else product_id
    pver = 0xFFFF if product_version is None else product_version
    _check_range("product_id", pid, 0xFFFF)
    _check_range("product_version", pver, 0xFFFF)
    if not isinstance(payload, bytes | bytearray | memoryview):
        raise ValueError(f"payload must be bytes, got {type(payload).__name__}")
    body = bytes(payload)
    total = PREFIX_SIZE + len(body) + PRODUCT_SUFFIX_SIZE + CRC_SIZE
    end_address = start_address + total - CRC_SIZE
    if end_address > 0xFFFFFFFF:
        raise ValueError(f"payload of {len(body)} bytes does not fit above start address 0x{start_address:08x}")
    prefix = _PREFIX.pack(
        start_address,
        end_address,
        0,
        0,
        module_version,
        platform_id,
        FUNCTION_USER_PART,
        module_index,
        dependency.function,
        dependency.index,
        dependency.version,
        0,
        0,
        0,
    )
    head = prefix + body + struct.pack("<HHH", pid, pver, 0)
    sha = hashlib.sha256(head).digest()
    image = head + sha + _U16.pack(PRODUCT_SUFFIX_SIZE)
    return image + zlib.crc32(image).to_bytes(CRC_SIZE, "big")


def build_module(
    *,
    platform_id: int,
    module_function: int,
    module_index: int,
    module_version: int,
    start_address: int,
    dependencies: tuple[Dependency, ...] = (),
    size: int | None = None,
    payload: bytes | None = None,
    prefix_offset: int = 0,
    flags: int = 0,
    suffix_size: int = PRODUCT_SUFFIX_SIZE,
    product_id: int | None = None,
    product_version: int | None = None,
    seed: bytes = b"",
) -> bytes:
    """Any module (system part, bootloader, radio stack, ...) laid out as Device OS builds it.

    Why: the emulator serves Device OS module files that Particle's tools (particle-cli, binary-version-reader)
    and fieldsafe parse like the real ones, at the real files' sizes, so the bytes an OTA costs are the bytes of
    a file anyone can download and inspect. Layout: ``prefix_offset`` zero bytes (the vector table the prefix
    follows on Gen 2/Gen 3), the 24-byte prefix, the payload, a 36-byte suffix (no product fields) or a 40-byte
    one (product id/version, 0xFFFF when None), SHA-256 and big-endian CRC-32. Give either ``payload`` or the
    exact total file ``size`` (the payload is then a deterministic filler derived from ``seed``).
    """
    for name, value, maximum in (
        ("platform_id", platform_id, 0xFFFF),
        ("module_function", module_function, 0xFF),
        ("module_index", module_index, 0xFF),
        ("module_version", module_version, 0xFFFF),
        ("flags", flags, 0xFF),
        ("start_address", start_address, 0xFFFFFFFF),
        ("prefix_offset", prefix_offset, MAX_PREFIX_SEARCH),
    ):
        _check_range(name, value, maximum)
    if len(dependencies) > 2:
        raise ValueError(f"a module prefix holds at most 2 dependencies, got {len(dependencies)}")
    deps = [*dependencies, Dependency(0, 0, 0), Dependency(0, 0, 0)][:2]
    for i, dep in enumerate(deps, 1):
        _check_range(f"dependency{i}.function", dep.function, 0xFF)
        _check_range(f"dependency{i}.index", dep.index, 0xFF)
        _check_range(f"dependency{i}.version", dep.version, 0xFFFF)
        if dep.function == 0 and (dep.index or dep.version):
            raise ValueError(f"dependency{i}: function 0 means no dependency, so index and version must be 0 too")
    if suffix_size not in (MIN_SUFFIX_SIZE, PRODUCT_SUFFIX_SIZE):
        raise ValueError(f"suffix_size must be {MIN_SUFFIX_SIZE} or {PRODUCT_SUFFIX_SIZE}, got {suffix_size!r}")
    overhead = prefix_offset + PREFIX_SIZE + suffix_size + CRC_SIZE
    if (payload is None) == (size is None):
        raise ValueError("give exactly one of payload or size")
    if payload is None:
        assert size is not None
        if not isinstance(size, int) or size < overhead:
            raise ValueError(f"size must be an integer of at least {overhead} bytes for this layout, got {size!r}")
        body = _filler(size - overhead, seed)
    else:
        if not isinstance(payload, bytes | bytearray | memoryview):
            raise ValueError(f"payload must be bytes, got {type(payload).__name__}")
        body = bytes(payload)
    total = overhead + len(body)
    end_address = start_address + total - CRC_SIZE
    if end_address > 0xFFFFFFFF:
        raise ValueError(f"{total} bytes do not fit above start address 0x{start_address:08x}")
    prefix = _PREFIX.pack(
        start_address,
        end_address,
        0,
        flags,
        module_version,
        platform_id,
        module_function,
        module_index,
        *(v for dep in deps for v in (dep.function, dep.index, dep.version)),
    )
    head = bytes(prefix_offset) + prefix + body
    if suffix_size == PRODUCT_SUFFIX_SIZE:
        pid = 0xFFFF if product_id is None else product_id
        pver = 0xFFFF if product_version is None else product_version
        _check_range("product_id", pid, 0xFFFF)
        _check_range("product_version", pver, 0xFFFF)
        head += struct.pack("<HHH", pid, pver, 0)
    else:
        head += _U16.pack(0)
    image = head + hashlib.sha256(head).digest() + _U16.pack(suffix_size)
    return image + zlib.crc32(image).to_bytes(CRC_SIZE, "big")


def _filler(length: int, seed: bytes) -> bytes:
    """Deterministic, incompressible-looking bytes (a SHA-256 counter stream) so two releases' files differ."""
    if length <= 0:
        return b""
    block = hashlib.sha256(b"fieldsafe-module-filler\0" + seed).digest()
    return (block * (length // len(block) + 1))[:length]


def _check_range(name: str, value: object, maximum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= maximum:
        raise ValueError(f"{name} must be an integer from 0 to {maximum} (0x{maximum:x}), got {value!r}")
