"""``fieldsafe devices``: which Device OS each of your devices runs (from the cloud, or the cache when offline).

Wiring only: the cloud client does the work (config, errors, cache); this module formats rows.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from typing import Any

COLUMNS = ("NAME", "ID", "PLATFORM", "DEVICE OS", "CELLULAR", "ONLINE", "LAST HEARD", "PRODUCT")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "devices",
        help="list your devices and the Device OS each one runs",
        description="List your Particle devices with the Device OS each one runs. Uses particle-cli's login; "
        "when the cloud cannot be reached, shows the last known list and its age.",
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument(
        "--api-url", metavar="URL", help="Particle API base URL (default: PARTICLE_API_URL, particle-cli)"
    )
    parser.add_argument("--product", metavar="ID_OR_SLUG", help="list a product's devices instead of your own")
    parser.add_argument(
        "--group", action="append", default=[], metavar="NAME", help="product device group (repeatable)"
    )
    parser.set_defaults(func=run)


def _age_text(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


def _heard_age(last_heard: Any, now: dt.datetime) -> float | None:
    if not isinstance(last_heard, str) or not last_heard:
        return None
    try:
        when = dt.datetime.fromisoformat(last_heard.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return (now - when).total_seconds()


def device_row(device: dict[str, Any], now: dt.datetime) -> dict[str, Any]:
    """The facts fieldsafe shows per device, from a Cloud API device object."""
    from fieldsafe import platforms
    from fieldsafe.compat import device_state_from_cloud

    state = device_state_from_cloud(device)
    platform = platforms.find(state.platform_id)
    return {
        "name": device.get("name"),
        "id": state.device_id,
        "platform": platform.display_name if platform else f"platform {device.get('platform_id')}",
        "platform_id": device.get("platform_id"),
        "device_os": state.device_os,
        "cellular": bool(state.cellular),
        "online": bool(state.online),
        "last_heard": state.last_heard,
        "last_heard_age_seconds": _heard_age(state.last_heard, now),
        "product_id": state.product,
        "groups": device.get("groups") or [],
    }


def format_table(rows: list[dict[str, Any]]) -> str:
    cells = [
        [
            r["name"] or "<no name>",
            r["id"] or "",
            r["platform"],
            r["device_os"] or "?",
            "yes" if r["cellular"] else "no",
            "online" if r["online"] else "offline",
            _age_text(r["last_heard_age_seconds"]),
            str(r["product_id"]) if r["product_id"] is not None else "-",
        ]
        for r in rows
    ]
    widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, h in enumerate(COLUMNS)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(COLUMNS, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(cell, widths, strict=True)).rstrip() for cell in cells]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from fieldsafe import cloud

    if args.group and not args.product:
        print("fieldsafe devices: --group filters a product's devices; add --product ID_OR_SLUG", file=sys.stderr)
        return 2
    try:
        client = cloud.ParticleCloud(cloud.resolve_config(args.api_url))
        age: float | None = None
        if args.product:
            devices = client.product_devices(args.product, args.group or None)
        else:
            devices, age = client.list_devices_or_cached()
    except cloud.ConfigError as exc:
        print(f"fieldsafe devices: {exc}", file=sys.stderr)
        return 2
    except cloud.Offline as exc:
        print(f"fieldsafe devices: {exc}; no cached device list to show yet", file=sys.stderr)
        return 1
    except cloud.CloudError as exc:
        print(f"fieldsafe devices: {exc}", file=sys.stderr)
        return 1
    now = dt.datetime.now(dt.UTC)
    rows = sorted((device_row(d, now) for d in devices), key=lambda r: (r["name"] or "", r["id"] or ""))
    if args.json:
        out = {
            "api": client.config.host,
            "source": "cache" if age is not None else "cloud",
            "age_seconds": age,
            "devices": rows,
        }
        print(json.dumps(out, indent=2))
        return 0
    if age is not None:
        print(
            f"OFFLINE: cannot reach {client.config.host}; showing the device list cached {_age_text(age)}",
            file=sys.stderr,
        )
    if not rows:
        print("No devices found.")
        return 0
    print(format_table(rows))
    return 0
