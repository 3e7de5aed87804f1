"""The product device listing's query engine: membership, sort orders and filters, cached.

Why: ``GET /v1/products/:p/devices`` must serve a 100-device page of a 100,000-device product in well
under 50 ms. Sorting or filtering 100k devices costs tens of milliseconds, so each (product, sort,
filters) result is computed once, as a list of positions in ``state.devices``, and reused until a
device field it depends on changes. ``Device.__setattr__`` counts assignments per field
(``state.CHANGES``); a cached result records the counters it read and the device list's length and
membership generation, and is recomputed when any of them moved. A page then costs a slice and
100 ``to_api`` calls.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fieldsafe.emulator.state import CHANGES, Device, EmulatorState

SORT_FIELDS = {
    "deviceName": "name",
    "deviceId": "id",
    "firmwareVersion": "firmware_version",
    "lastConnection": "last_heard",
}
DEFAULT_SORT = ("lastConnection", "desc")  # the documented default order: last connection, newest first
CACHE_SIZE = 32
NEVER = dt.datetime.min.replace(tzinfo=dt.UTC)  # a device never heard from sorts as the oldest


@dataclass(frozen=True)
class ListQuery:
    """The filters and order of one listing (the page itself is not part of it: pages share a result)."""

    product_id: int
    sort_attr: str = DEFAULT_SORT[0]
    sort_dir: str = DEFAULT_SORT[1]
    groups: frozenset[str] = frozenset()
    device_id: str = ""
    device_name: str = ""
    serial_number: str = ""
    quarantined: bool | None = None

    def depends_on(self) -> tuple[str, ...]:
        """The device fields this result reads (besides membership: id and product_id)."""
        fields = ["id", "product_id", SORT_FIELDS[self.sort_attr]]
        if self.groups:
            fields.append("groups")
        if self.device_name:
            fields.append("name")
        if self.serial_number:
            fields.append("serial_number")
        if self.quarantined is not None:
            fields.append("quarantined")
        return tuple(fields)


def _sort_key(attr: str) -> Callable[[Device], Any]:
    """Ascending key with the device id as tie-breaker; None (never heard / no firmware) sorts first."""
    if attr == "name":
        return lambda d: (d.name.lower(), d.id)
    if attr == "id":
        return lambda d: d.id
    if attr == "firmware_version":
        return lambda d: (d.firmware_version is not None, d.firmware_version or 0, d.id)
    return lambda d: (d.last_heard or NEVER, d.id)


class ListingIndex:
    """Cached listing results for one :class:`EmulatorState` (thread-safe)."""

    def __init__(self, state: EmulatorState) -> None:
        self.state = state
        self._lock = threading.Lock()
        self._cache: OrderedDict[Any, tuple[tuple[int, ...], list[int]]] = OrderedDict()

    def _stamp(self, fields: tuple[str, ...]) -> tuple[int, ...]:
        return (len(self.state.devices), self.state.membership, *(CHANGES[f] for f in fields))

    def _cached(self, key: Any, fields: tuple[str, ...], compute: Callable[[], list[int]]) -> list[int]:
        stamp = self._stamp(fields)
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None and hit[0] == stamp:
                self._cache.move_to_end(key)
                return hit[1]
        result = compute()
        with self._lock:
            self._cache[key] = (stamp, result)
            self._cache.move_to_end(key)
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return result

    def members(self, product_id: int) -> list[int]:
        """Positions (in ``state.devices``) of the product's devices, in list order."""
        devices = self.state.devices
        return self._cached(
            ("members", product_id),
            ("id", "product_id"),
            lambda: [i for i, d in enumerate(devices) if d.product_id == product_id],
        )

    def ordered(self, product_id: int, sort_attr: str, sort_dir: str) -> list[int]:
        """The product's devices sorted (ascending, then reversed for ``desc``)."""
        attr = SORT_FIELDS[sort_attr]

        def compute() -> list[int]:
            devices = self.state.devices
            key = _sort_key(attr)
            order = sorted(self.members(product_id), key=lambda i: key(devices[i]))
            if sort_dir == "desc":
                order.reverse()
            return order

        return self._cached(("order", product_id, sort_attr, sort_dir), ("id", "product_id", attr), compute)

    def warm(self, product_ids: list[int]) -> None:
        """Compute the default order and the deviceId order (what paging clients use) ahead of the first request."""
        for product_id in product_ids:
            self.ordered(product_id, *DEFAULT_SORT)
            self.ordered(product_id, "deviceId", "asc")

    def select(self, query: ListQuery) -> list[int]:
        """The filtered, ordered positions for ``query``."""
        order = self.ordered(query.product_id, query.sort_attr, query.sort_dir)
        predicate = _predicate(query)
        if predicate is None:
            return order
        devices = self.state.devices
        return self._cached(query, query.depends_on(), lambda: [i for i in order if predicate(devices[i])])

    def count_by(self, product_id: int, field: str) -> dict[Any, int]:
        """How many of the product's devices have each value of ``field`` (e.g. firmware_version)."""
        devices = self.state.devices
        counts: dict[Any, int] = {}
        for i in self.members(product_id):
            value = getattr(devices[i], field)
            counts[value] = counts.get(value, 0) + 1
        return counts


def _predicate(query: ListQuery) -> Callable[[Device], bool] | None:
    """One function testing every filter of ``query`` (None when nothing is filtered)."""
    tests: list[Callable[[Device], bool]] = []
    if query.groups:
        wanted = query.groups
        tests.append(lambda d: not wanted.isdisjoint(d.groups))
    if query.device_id:
        part = query.device_id.lower()
        tests.append(lambda d: part in d.id)
    if query.device_name:
        name = query.device_name.lower()
        tests.append(lambda d: name in d.name.lower())
    if query.serial_number:
        serial = query.serial_number.lower()
        tests.append(lambda d: d.serial_number is not None and serial in d.serial_number.lower())
    if query.quarantined is not None:
        flag = query.quarantined
        tests.append(lambda d: d.quarantined is flag)
    if not tests:
        return None
    if len(tests) == 1:
        return tests[0]
    return lambda d: all(t(d) for t in tests)
