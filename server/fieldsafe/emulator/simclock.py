"""The field simulator's clock: simulated seconds, faster than real time, by hand, or at once.

Why its own module: the state file loader, the CLI (``--clock``), the admin endpoint and the simulator all
parse and use the same clock setting, and none of them should import the whole simulator for it.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from fieldsafe.emulator.state import iso, utcnow

DEFAULT_SPEED = 10.0


class SimClock:
    """Simulated seconds since the emulator started, mapped onto a simulated wall clock for timestamps.

    ``speed`` > 0: simulated time runs that many times faster than real time. ``"manual"``: time moves only
    when :meth:`advance` is called. ``"instant"``: like manual, but the simulator runs every step as soon as
    it is scheduled (tests read final states right after the request that caused them).
    """

    def __init__(self, speed: float | str = DEFAULT_SPEED, start: dt.datetime | None = None) -> None:
        self.start = start or utcnow()
        self._offset = 0.0
        self._real0 = time.monotonic()
        self.mode = "manual"  # time 0 until set_speed picks the real mode
        self.speed = DEFAULT_SPEED
        self.set_speed(speed)

    @staticmethod
    def parse_speed(value: Any) -> float | str:
        if isinstance(value, str) and value in ("manual", "instant"):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
            return float(value)
        if isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                number = 0.0
            if number > 0:
                return number
        raise ValueError(f"clock speed must be a positive number, 'manual' or 'instant', not {value!r}")

    def set_speed(self, speed: float | str) -> None:
        speed = self.parse_speed(speed)
        self._offset = self.now()
        self._real0 = time.monotonic()
        if isinstance(speed, str):
            self.mode = speed
        else:
            self.mode, self.speed = "speed", speed

    def now(self) -> float:
        if self.mode != "speed":
            return self._offset
        return self._offset + (time.monotonic() - self._real0) * self.speed

    def jump_to(self, t: float) -> None:
        """Move simulated time forward to ``t`` (never backwards)."""
        now = self.now()
        if t > now:
            self._offset += t - now

    def advance(self, seconds: float) -> None:
        self.jump_to(self.now() + max(0.0, seconds))

    def real_wait(self, t: float) -> float | None:
        """Real seconds until simulated time ``t`` (None: only an explicit advance gets there)."""
        if self.mode == "speed":
            return max(0.0, (t - self.now()) / self.speed)
        return 0.0 if self.mode == "instant" else None

    def wall(self, t: float | None = None) -> dt.datetime:
        return self.start + dt.timedelta(seconds=self.now() if t is None else t)

    def to_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "speed": self.speed if self.mode == "speed" else None,
            "now_seconds": round(self.now(), 3),
            "now": iso(self.wall()),
        }
