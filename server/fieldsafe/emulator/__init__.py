"""A local Particle Cloud for tests, demos and offline work (``fieldsafe emulator``).

``EmulatorServer`` serves the Cloud API paths fieldsafe and particle-cli use, from a JSON state file
(``state.py``, default fleet in ``default-state.json``), with switchable faults (``faults.py``).
Compiles go to ``fieldsafe.emulator.compiler.compile_sources``. See ``docs/emulator.md``.
"""

from fieldsafe.emulator.faults import FaultRule, Faults
from fieldsafe.emulator.server import EmulatorServer
from fieldsafe.emulator.state import DEFAULT_TOKEN, EmulatorState, StateError, default_state, load_state

__all__ = [
    "DEFAULT_TOKEN",
    "EmulatorServer",
    "EmulatorState",
    "FaultRule",
    "Faults",
    "StateError",
    "default_state",
    "load_state",
]
