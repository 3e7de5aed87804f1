"""Product firmware delivery: when the emulated cloud sends a device the firmware it is targeted with.

Why: a release only matters through what it does to the field. The ONE precedence
(``fieldsafe.releases.target_for``) says which version a device should run; this module decides when the
cloud sends it, following the documented timing ([ota] "Delivery timing"), and hands the binary to the
field simulator (``emu.field.deliver(..., cause="auto-update")``), whose ledger then shows the bytes, the
Safe Mode entries and the reboots the release caused:

- an **intelligent** release goes out at once to the reached devices that are online;
- a **standard** release goes out when a device next connects (its handshake): the emulator's devices
  "connect" through the admin endpoint ``POST /__emulator/handshake`` (``{"product": p}`` or
  ``{"devices": [ids]}``);
- ``PUT /v1/products/:p/devices/:id`` with ``flash: true`` sends a locked device its version now.

A device is sent nothing while it runs its target, is offline, has updates disabled without
``firmware_updates_forced`` (``System.disableUpdates()`` defers OTA: [ota] pushes intelligent releases to
devices "online and with updates enabled"; such a device keeps its app and gets
``particle/device/updates/pending`` ``true``), is already receiving or healing that app, or when the
version has no binary (a generated fleet's made-up versions).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fieldsafe.emulator.state import Device, Product
from fieldsafe.releases import target_for

if TYPE_CHECKING:
    from fieldsafe.emulator.server import Emulator


UPDATES_DISABLED = "updates disabled on the device"
CHUNK = 200  # devices sent per hold of the emulator lock


@dataclass
class Rollout:
    """What one delivery round did: device ids sent firmware, and why others were skipped (reason -> count)."""

    sent: list[str] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    def to_json(self) -> dict[str, Any]:
        return {"sent": len(self.sent), "device_ids": self.sent[:1000], "skipped": dict(sorted(self.skipped.items()))}


def _busy_with(emu: Emulator, device: Device, version: int) -> bool:
    """True while the field simulator is sending or healing ``version``'s app on ``device``."""
    sim = emu.field.sims.get(device.id)
    if sim is None:
        return False
    app = getattr(sim, "app", None)
    if app is not None and getattr(app, "product_version", None) == version and device.status == "safe_mode":
        return True
    pending = getattr(sim, "pending", ())
    return any(getattr(item, "product_version", None) == version for item in pending) or emu.field._has_steps(sim)


def why_not(emu: Emulator, product: Product, device: Device) -> str | None:
    """Why ``device`` is not sent its target now (None: it should be)."""
    target = target_for(device, product.releases)
    if target.version is None:
        return f"not targeted ({target.reason.value})"
    if device.firmware_version == target.version and device.status != "safe_mode":
        return "runs its target"
    if not device.online:
        return "offline (gets it when it connects)"
    if not device.firmware_updates_enabled and not device.firmware_updates_forced:
        return UPDATES_DISABLED
    firmware = product.firmware.get(target.version)
    if firmware is None or firmware.data is None:
        return "version has no binary"
    if _busy_with(emu, device, target.version):
        return "already receiving it"
    return None


def deliver(emu: Emulator, product: Product, devices: Iterable[Device]) -> Rollout:
    """Send each device its target where :func:`why_not` allows.

    Takes ``emu.lock`` per chunk of devices (each send costs about a millisecond in the field simulator), so
    other requests are served during a release that reaches tens of thousands of devices.
    """
    result = Rollout()
    batch = list(devices)
    for start in range(0, len(batch), CHUNK):
        with emu.lock:
            _deliver_chunk(emu, product, batch[start : start + CHUNK], result)
    return result


def _deliver_chunk(emu: Emulator, product: Product, devices: list[Device], result: Rollout) -> None:
    from fieldsafe.emulator.field import FieldError

    for device in devices:
        reason = why_not(emu, product, device)
        if reason is not None:
            result.skip(reason)
            if reason == UPDATES_DISABLED:  # the cloud tells the app an update waits ([api.md] special events)
                emu.state.events.publish(
                    "particle/device/updates/pending", "true", coreid=device.id, product_id=product.id
                )
            continue
        version = target_for(device, product.releases).version
        firmware = product.firmware[version] if version is not None else None
        if firmware is None or firmware.data is None:  # why_not checked; keeps the type checker honest
            result.skip("version has no binary")
            continue
        try:
            emu.field.deliver(device, firmware.data, cause="auto-update")
        except FieldError as exc:
            result.skip(f"refused: {exc.body['error']}")
            continue
        result.sent.append(device.id)


def product_devices(emu: Emulator, product: Product) -> list[Device]:
    devices = emu.state.devices
    return [devices[i] for i in emu.listing.members(product.id)]


def handshake(emu: Emulator, body: dict[str, Any]) -> Rollout:
    """``POST /__emulator/handshake``: ``{"product": idOrSlug}`` (all its devices) or ``{"devices": [ids]}``
    connect now, so each is sent its target where allowed (how standard releases reach devices)."""
    from fieldsafe.emulator.api import api_error

    with emu.lock:
        if "product" in body:
            product = emu._product(str(body["product"]))
            members = product_devices(emu, product)
        else:
            ids = body.get("devices")
            if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
                raise api_error(
                    400, "invalid_request", 'send {"product": "<id or slug>"} or {"devices": ["<id>", ...]}'
                )
            found = [emu.state.find_device(i) for i in ids]
    if "product" in body:
        return deliver(emu, product, members)
    result = Rollout()
    for device in found:
        product = emu.state.product_by_id(device.product_id) if device is not None else None
        if device is None or product is None:
            result.skip("not a product device")
            continue
        one = deliver(emu, product, [device])
        result.sent += one.sent
        for reason, count in one.skipped.items():
            result.skipped[reason] = result.skipped.get(reason, 0) + count
    return result
