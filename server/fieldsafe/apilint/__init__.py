"""Device OS API availability lint ("NewApi" for Particle): source text -> FS2xx findings.

Why: a sketch that calls ``Particle.publishVitals()`` builds fine against the latest Device OS and
fails (or is rejected by the cloud compiler) for a project pinned to 0.7.0, the release a fielded
device still runs. This module finds such uses before anything is compiled, understands the
``#if SYSTEM_VERSION >= ...`` guards people write around them, and offers the guard as a fix.

How (see ``docs/apilint.md``):

1. Comments, strings and character literals are blanked (same length, newlines kept) so offsets
   stay valid and nothing inside them can match.
2. Preprocessor directives are walked in order with a condition stack. Each ``#if``/``#elif`` is
   evaluated *as the target release's preprocessor would*: ``SYSTEM_VERSION`` is the target's value,
   ``SYSTEM_VERSION_vXYZ`` is defined only from the release whose header first defines it (an
   undefined name is 0 in ``#if``), ``SYSTEM_VERSION_DEFAULT(x,y,z)`` only exists from 1.2.0, and
   ``PLATFORM_ID``/``Wiring_*`` follow the platform when known. Results are tri-state: branches whose
   condition depends on unknown macros count as compiled.
3. Use sites are extracted (regex anchors over the blanked text, or optionally tree-sitter) and
   resolved to lint keys: ``Obj.method`` on Device OS globals, ``Class::member``, members called on
   variables declared with a Device OS type, plain types/functions/constants/macros, and system
   event names inside ``System.on(...)`` only. Names the project defines itself are not flagged.
4. Each use in a compiled region is checked against ``fieldsafe.apidata``.

Pure: no editor imports. ``lint_source`` caches results per (content hash, target, platform), and
re-checks after an edit incrementally: the text is cut into chunks at top-level closing braces and
each chunk's resolved uses are memoised (see "Incremental re-check" below and ``docs/apilint.md``),
with results identical to a whole-text pass (``tests/test_apilint_incremental.py``).

Layout (one module per seam): ``preprocess`` (blanking, ``#if`` evaluation, compiled regions),
``extract`` (shadowing names, typed variables, use sites), ``rules`` (findings per use), ``fixes``
(guard conditions, retarget release, the guard text edit), ``engine`` (``lint_source`` with its caches
and incremental re-check, ``lint_project``). This package re-exports what callers use, so
``from fieldsafe import apilint; apilint.lint_source(...)`` keeps working.

"""

from __future__ import annotations

from fieldsafe.apilint.engine import (
    _RESOLVED,
    SOURCE_SUFFIXES,
    clear_caches,
    clear_chunk_memos,
    defined_macros,
    lint_project,
    lint_source,
    project_defined_names,
    source_files,
)
from fieldsafe.apilint.extract import (
    CHRONO_LITERALS,
    CHRONO_USING_RE,
    ApiUse,
    api_tokens,
    extract_uses,
    extract_uses_treesitter,
    shadowing_names,
    typed_variables,
    user_defined_names,
)
from fieldsafe.apilint.fixes import GuardEdit, apply_guard_edit, guard_condition, guard_edit
from fieldsafe.apilint.floor import CodeFloor, FloorUse, code_floor, guard_uses, project_floor
from fieldsafe.apilint.preprocess import (
    GuardNote,
    Preprocessed,
    PreprocessorError,
    Region,
    _Lines,
    blank_literals,
    evaluate_condition,
    preprocess,
)
from fieldsafe.apilint.rules import _preprocessor_findings, findings_for_use

__all__ = [
    "CHRONO_LITERALS",
    "CHRONO_USING_RE",
    "SOURCE_SUFFIXES",
    "_RESOLVED",
    "ApiUse",
    "CodeFloor",
    "FloorUse",
    "GuardEdit",
    "GuardNote",
    "Preprocessed",
    "PreprocessorError",
    "Region",
    "_Lines",
    "_preprocessor_findings",
    "api_tokens",
    "apply_guard_edit",
    "blank_literals",
    "clear_caches",
    "clear_chunk_memos",
    "code_floor",
    "defined_macros",
    "evaluate_condition",
    "extract_uses",
    "extract_uses_treesitter",
    "findings_for_use",
    "guard_condition",
    "guard_edit",
    "guard_uses",
    "lint_project",
    "lint_source",
    "preprocess",
    "project_defined_names",
    "project_floor",
    "shadowing_names",
    "source_files",
    "typed_variables",
    "user_defined_names",
]
