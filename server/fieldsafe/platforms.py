"""Particle platforms: ids, names, particle-cli aliases, connectivity, and the user-part rules per family.

Facts come from the bundled ``platforms.tsv`` and ``device-constants.json`` (npm @particle/device-constants
4.2.1) plus the device-os build files cited in ``shared/docs/particle-domain.md`` §2 and §4.
Why the user-part rules live here: which system module a user part depends on, and where it sits in
flash, are properties of the platform family and the release, needed both to check a binary and to
build one (the emulator).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from functools import cache

from fieldsafe._data import read_json, read_tsv
from fieldsafe.versions import DeviceOSVersion, catalog

MODULE_FUNCTION_SYSTEM_PART = 4

# Device types particle-cli accepts beyond the device-constants aliases (particle-cli 3.43.1 --help).
_EXTRA_ALIASES = {"tracker": ("assettracker",), "p2": ("photon2",), "msom": ("muon",), "photon": ("p",)}

_GEN2_IDS = frozenset({6, 8, 10})
_GEN2_CAP = DeviceOSVersion(3, 3, 1)
_GEN3_USER_PART_2_FROM = DeviceOSVersion(3, 1, 0)
_ELECTRON_PART_FILES = {3: 1, 1: 2, 2: 3}  # module index -> file number (particle-domain.md section 2.3)
_RTL872X_USER_PART_END = 0x085FFFFC  # user part "grows left": the end is fixed, the start moves down


@dataclass(frozen=True)
class Platform:
    """One platform id with what fieldsafe needs to know about it."""

    id: int
    name: str
    display_name: str
    aliases: tuple[str, ...]
    generation: int
    mcu: str
    cellular: bool
    wifi: bool
    user_part_max_size: int | None
    public: bool

    @property
    def gen2(self) -> bool:
        """Photon, P1, Electron: no Device OS after 3.3.1."""
        return self.id in _GEN2_IDS

    @property
    def connectivity(self) -> str:
        """``cellular``, ``wifi``, ``cellular+wifi`` or ``mesh`` (no internet radio of its own)."""
        if self.cellular and self.wifi:
            return "cellular+wifi"
        if self.cellular:
            return "cellular"
        return "wifi" if self.wifi else "mesh"

    @property
    def is_device_os_target(self) -> bool:
        """True when the release table lists Device OS releases for this platform."""
        return bool(catalog().releases(self.id))

    @property
    def max_release(self) -> DeviceOSVersion | None:
        """The last release this platform can ever run (Gen 2: 3.3.1; retired platforms: their last), else None."""
        if self.gen2:
            return _GEN2_CAP
        rows = catalog().releases(self.id, include_prereleases=False) or catalog().releases(self.id)
        if not rows:
            return None
        newest_overall = catalog().rows[-1].version.base
        last = rows[-1].version
        return None if last.base >= newest_overall else last

    @property
    def monolithic(self) -> bool:
        """Core (Gen 1) firmware is one monolithic module: there is no user part and no dependency."""
        return self.id == 0

    def user_part_index(self, release: DeviceOSVersion | str) -> int:
        """Module index of the user part: nRF52840 Gen 3 moved from 1 to 2 at 3.1.0 (256 KB apps)."""
        version = DeviceOSVersion.parse(release)
        if self.mcu == "nrf52840" and version.base >= _GEN3_USER_PART_2_FROM:
            return 2
        return 1

    def user_part_dependency(self, release: DeviceOSVersion | str) -> tuple[int, int]:
        """(module function, index) of the system module a user part depends on.

        Photon/P1/Electron: system part index 2 (on Electron that is the file named system-part3);
        nRF52840 and rtl872x: system part index 1.
        """
        if self.monolithic:
            raise ValueError(f"{self.display_name} firmware is monolithic: it has no user part dependency")
        return (MODULE_FUNCTION_SYSTEM_PART, 2 if self.mcu == "stm32f2xx" else 1)

    def user_part_start_address(self, release: DeviceOSVersion | str, module_size: int | None = None) -> int:
        """Flash address of a user part's first byte for this platform and release.

        rtl872x user parts grow left from a fixed end, so their start depends on the module size
        (file length = end - start + 4).
        """
        if self.mcu == "rtl872x":
            if module_size is None:
                raise ValueError("rtl872x user parts grow left: the start address needs the module size")
            return _RTL872X_USER_PART_END + 4 - module_size
        if self.id == 10:
            return 0x08080000
        if self.mcu == "stm32f2xx":
            return 0x080A0000
        if self.mcu == "nrf52840":
            return 0x000B4000 if self.user_part_index(release) == 2 else 0x000D4000
        raise ValueError(f"no user part layout is known for {self.display_name}")

    def system_part_file(self, index: int) -> str:
        """The release file name of a system part, e.g. ``electron-system-part3`` for Electron index 2.

        Why: on the Electron, file names and module indexes differ (part 3 was split out later and the
        files renamed to flash in order), so "system module 2" is the file named system-part3.
        """
        number = _ELECTRON_PART_FILES.get(index, index) if self.id == 10 else index
        return f"{self.name}-system-part{number}"

    def __str__(self) -> str:
        return self.name


def _key(text: str) -> str:
    """Normalise names so "E Som X", "E-SoM-X" and "esomx" compare equal."""
    return re.sub(r"[^a-z0-9]", "", text.lower())


@cache
def _registry() -> tuple[dict[int, Platform], dict[str, Platform]]:
    constants = {p["id"]: p for p in read_json("device-constants.json")["platforms"]}
    by_id: dict[int, Platform] = {}
    by_key: dict[str, Platform] = {}
    for row in read_tsv("platforms.tsv"):
        pid = int(row["platform_id"])
        const = constants.get(pid, {})
        aliases = tuple(dict.fromkeys([*const.get("aliases", []), *_EXTRA_ALIASES.get(row["name"], ())]))
        aliases = tuple(a for a in aliases if a != row["name"])
        platform = Platform(
            id=pid,
            name=row["name"],
            display_name=row["display_name"],
            aliases=aliases,
            generation=int(row["device_constants_generation"] or -1),
            mcu=row["base_mcu"],
            cellular=bool(const.get("cellular", "cellular" in row["connectivity"])),
            wifi=bool(const.get("wifi", "wifi" in row["connectivity"])),
            user_part_max_size=const.get("userPartMaxSize"),
            public=bool(const.get("public", True)),
        )
        by_id[pid] = platform
        for name in (platform.name, platform.display_name, *platform.aliases):
            by_key.setdefault(_key(name), platform)
    return by_id, by_key


def find(name_or_id: str | int | None) -> Platform | None:
    """A platform by id (int or digits), name, display name or particle-cli alias; None when unknown."""
    if name_or_id is None:
        return None
    by_id, by_key = _registry()
    if isinstance(name_or_id, int):
        return by_id.get(name_or_id)
    text = str(name_or_id).strip()
    if text.lstrip("-").isdigit():
        return by_id.get(int(text))
    return by_key.get(_key(text))


def get(name_or_id: str | int) -> Platform:
    """Like :func:`find` but raises KeyError with suggestions (e.g. "did you mean: boron?")."""
    platform = find(name_or_id)
    if platform is not None:
        return platform
    names = sorted({p.name for p in all_platforms()} | {a for p in all_platforms() for a in p.aliases})
    close = difflib.get_close_matches(str(name_or_id).lower(), names, n=3)
    hint = (
        f"did you mean: {', '.join(close)}?"
        if close
        else f"known platforms: {', '.join(sorted(p.name for p in all_platforms()))}"
    )
    raise KeyError(f"unknown platform {name_or_id!r}; {hint}")


def all_platforms(device_os_only: bool = True) -> list[Platform]:
    """Platforms by id; by default only those with Device OS releases in the table."""
    by_id, _ = _registry()
    rows = sorted(by_id.values(), key=lambda p: p.id)
    return [p for p in rows if p.is_device_os_target] if device_os_only else rows
