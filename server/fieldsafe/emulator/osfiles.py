"""Device OS module files and the versions API that lists them (``GET /v1/device-os/versions/:v``).

Why real files: a Device OS update costs the bytes of the module files the cloud sends. The emulator serves,
for each release and platform, the modules ``fieldsafe.delivery.release_modules`` lists (function, index,
version, dependencies and size from the bundled tables), written with the package's module writer
(``fieldsafe.modules.build_module``) so that fieldsafe, particle-cli and binary-version-reader all parse them.
The simulator (``field.py``) charges exactly these files' sizes to a device's ledger, so the ledger's bytes are
the prediction's bytes by construction of the data, not by a second formula.

Layout facts (prefix offsets, where a module starts in flash, suffix sizes, flags) come from
shared/docs/particle-domain.md §1.3 and the particle-iot/docs device-restore JSONs (6.3.4 boron.json, p2.json,
2.3.1 electron.json); the start addresses are representative, not per release. File names follow the versions
API samples in particle-cli's tests (``photon-bootloader@2.3.1+lto.bin``, ``photon-system-part1@2.3.1.bin``).
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from fieldsafe import modules, platforms
from fieldsafe.versions import Release, catalog

FUNCTION_CODES = {
    "bootloader": 2,
    "system_part": 4,
    "user_part": 5,
    "ncp_firmware": 7,
    "radio_stack": 8,
}
# The versions API names module functions with these strings (particle-cli's tests and its filter on
# 'user_part'); the radio stack / NCP spellings are not seen in any sample (UNVERIFIED, documented).
API_FUNCTION_NAMES = {
    "bootloader": "bootloader",
    "system_part": "system-part",
    "user_part": "user_part",
    "ncp_firmware": "ncp-firmware",
    "radio_stack": "radio-stack",
}


@dataclass(frozen=True)
class Layout:
    prefix_offset: int
    start_address: int
    flags: int = 0
    suffix_size: int = modules.PRODUCT_SUFFIX_SIZE


def layout(platform: platforms.Platform, function: str, index: int, size: int) -> Layout:
    """Where the prefix sits and where the module starts, per family (particle-domain.md §1.3)."""
    if platform.mcu == "stm32f2xx":
        if function == "bootloader":
            return Layout(0x184, 0x08000000)
        if platform.id == 10:
            starts = {3: 0x08060000, 1: 0x08020000, 2: 0x08040000}
            return Layout(0 if index == 3 else 0x184, starts.get(index, 0x08020000))
        return Layout(0x184, {1: 0x08020000, 2: 0x08060000}.get(index, 0x08020000))
    if platform.mcu == "nrf52840":
        if function == "radio_stack":
            return Layout(0, 0x1000, modules.FLAG_DROP_MODULE_INFO, modules.MIN_SUFFIX_SIZE)
        if function == "ncp_firmware":
            return Layout(0, 0, 0, modules.MIN_SUFFIX_SIZE)
        if function == "bootloader":
            return Layout(0x200, 0xF4000)
        # system part: ends below the user part at 0xB4000 (6.3.4 starts at 0x28000, older releases at 0x30000)
        return Layout(0x200, 0x30000 if size <= 0xB4000 - 0x30000 else 0x28000)
    if platform.mcu == "rtl872x":
        if function == "bootloader" and index == 0:
            return Layout(0x20, 0x08004000)
        if function == "bootloader":
            return Layout(0, 0x08000000)
        return Layout(0, 0x08060000)
    return Layout(0, 0)


def file_name(platform: platforms.Platform, spec: Any, release: str) -> str:
    """``boron-system-part1@6.3.4.bin``; Gen 2 bootloaders carry ``+lto`` as in the real listing."""
    lto = "+lto" if platform.gen2 and spec.function == "bootloader" else ""
    return f"{platform.name}-{spec.name}@{release}{lto}.bin"


def release_specs(platform_id: int, release: str) -> tuple[Any, ...]:
    """``delivery.release_modules`` (empty when the delivery tables do not know the pair)."""
    from fieldsafe import delivery

    try:
        return tuple(delivery.release_modules(platform_id, release))
    except (LookupError, ValueError):
        return ()


@lru_cache(maxsize=48)
def module_file(platform_id: int, release: str, name: str) -> bytes:
    """The bytes of one Device OS module file; ``len()`` is exactly the spec's ``bytes``."""
    platform = platforms.get(platform_id)
    spec = next((s for s in release_specs(platform_id, release) if s.name == name), None)
    if spec is None:
        raise LookupError(f"Device OS {release} has no module {name!r} for {platform.display_name}")
    where = layout(platform, spec.function, spec.index, spec.bytes)
    deps = tuple(
        modules.Dependency(FUNCTION_CODES.get(function, 0), index, version)
        for function, index, version in spec.dependencies
    )
    product = (0, 0) if where.suffix_size == modules.PRODUCT_SUFFIX_SIZE else (None, None)
    return modules.build_module(
        platform_id=platform_id,
        module_function=FUNCTION_CODES[spec.function],
        module_index=spec.index,
        module_version=spec.version,
        start_address=where.start_address,
        dependencies=deps,
        size=spec.bytes,
        prefix_offset=where.prefix_offset,
        flags=where.flags,
        suffix_size=where.suffix_size,
        product_id=product[0],
        product_version=product[1],
        seed=f"{platform_id}/{release}/{name}".encode(),
    )


def module_entry(platform: platforms.Platform, spec: Any, release: str) -> dict[str, Any]:
    """One ``modules[]`` item: file name, size, CRC and prefix/suffix info (binary-version-reader's names)."""
    data = module_file(platform.id, release, spec.name)
    info = modules.parse_module(data)
    deps = [*info.dependencies, modules.Dependency(0, 0, 0), modules.Dependency(0, 0, 0)]
    crc = f"{info.crc_stored:08x}"
    return {
        "filename": file_name(platform, spec, release),
        "size": len(data),
        "size_source": spec.size_source,
        "crc": {"ok": info.crc_ok, "storedCrc": crc, "actualCrc": f"{info.crc_actual:08x}"},
        "prefixInfo": {
            "moduleStartAddy": f"{info.start_address:x}",
            "moduleEndAddy": f"{info.end_address:x}",
            "reserved": 0,
            "moduleFlags": info.flags,
            "moduleVersion": info.module_version,
            "platformID": info.platform_id,
            "moduleFunction": API_FUNCTION_NAMES.get(spec.function, spec.function),
            "moduleIndex": info.module_index,
            "depModuleFunction": deps[0].function,
            "depModuleIndex": deps[0].index,
            "depModuleVersion": deps[0].version,
            "dep2ModuleFunction": deps[1].function,
            "dep2ModuleIndex": deps[1].index,
            "dep2ModuleVersion": deps[1].version,
            "prefixSize": info.prefix_size,
            "prefixOffset": info.prefix_offset,
        },
        "suffixInfo": {
            "productId": info.product_id if info.product_id is not None else -1,
            "productVersion": info.product_version if info.product_version is not None else -1,
            "fwUniqueId": info.sha256_stored,
            "reserved": 0,
            "suffixSize": info.suffix_size,
            "crcBlock": crc,
        },
    }


def find_release(version: str, platform_id: int | None) -> Release | None:
    """``:v`` of the versions API: a semver, an internal (module) version, or ``latest`` (needs the platform)."""
    cat = catalog()
    if version == "latest":
        return cat.latest(platform_id) if platform_id is not None else None
    if version.isdigit():
        hits = [r for r in cat.releases_for_module(int(version), platform_id)]
        if platform_id is not None:
            hits = [r for r in hits if platform_id in r.platform_ids]
        return hits[0] if hits else None
    release = cat.release(version)
    if release is not None and platform_id is not None and platform_id not in release.platform_ids:
        return None
    return release


def listing(platform_id: int | None, release: Release, base_url: str) -> list[dict[str, Any]]:
    """The ``modules`` of a release for one platform (empty without a platform, as no files can be named)."""
    if platform_id is None:
        return []
    platform = platforms.get(platform_id)
    text = str(release.version)
    return [module_entry(platform, spec, text) for spec in release_specs(platform_id, text)]


def files_base_url(api_url: str, release: Release | str) -> str:
    return f"{api_url}/v1/firmware/device-os/v{release}"


def lookup_file(release: str, filename: str) -> bytes | None:
    """The file behind ``base_url/filename`` (None when no platform/module of that release has that name)."""
    filename = urllib.parse.unquote(filename)
    for platform in platforms.all_platforms():
        if not filename.startswith(platform.name + "-"):
            continue
        for spec in release_specs(platform.id, release):
            if file_name(platform, spec, release) == filename:
                return module_file(platform.id, release, spec.name)
    return None
