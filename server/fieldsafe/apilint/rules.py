"""Rules: one use site + target release/platform -> FS201-FS206 findings (messages, facts, fixes)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from fieldsafe import apidata, symindex
from fieldsafe.apidata import Availability
from fieldsafe.apilint import availability
from fieldsafe.apilint.extract import CHRONO_LITERALS, ApiUse
from fieldsafe.apilint.fixes import _fixes, platform_guard
from fieldsafe.apilint.preprocess import GuardNote, Preprocessed, _Lines
from fieldsafe.findings import Finding, Fix, Related, Severity, Span
from fieldsafe.versions import DeviceOSVersion

# --------------------------------------------------------------------------------------------------
# 5. Findings
# --------------------------------------------------------------------------------------------------

_CHRONO_RE = re.compile(r"\b\d+(?:\.\d+)?\s*(?:ms|s|min|h|us|ns)\b|\bchrono\s*::|\bstd::chrono\b")


def _overload_used(ov: Availability, use: ApiUse) -> bool:
    """Is the call ``use`` the later argument form ``ov`` describes? Only forms we can tell apart."""
    args = use.args
    if args is None:
        return False
    note = ov.note
    if "chrono" in note and _CHRONO_RE.search(args):
        return True
    if "member-function" in note and re.search(r"&\s*\w+\s*::\s*\w+", args):
        return True
    if "std::function" in note and re.search(r"\bstd\s*::\s*bind\b|\[[^\]]*\]\s*\(", args):
        return True
    if "initializer_list or array" in note and "{" in args:
        return True
    for word in re.findall(r"\b([A-Z][a-z]+(?:[A-Z][a-z]*)+)\b", note):
        if word in use.arg_types or re.search(rf"\b{word}\b", args):
            return True
    return False


def _reason_suffix(reason: str | None) -> str:
    if not reason:
        return ""
    reason = reason.strip()
    return f" {reason}" if reason.startswith("(") else f" ({reason})"


def _guard_text(notes: Sequence[GuardNote], target: DeviceOSVersion) -> tuple[str, tuple[Related, ...], str]:
    if not notes:
        return "", (), ""
    n = notes[-1]
    names = ", ".join(dict.fromkeys(n.macros))
    if n.kind == "flag":
        text = (f"; this assumes {names} {'is' if len(n.macros) == 1 else 'are'} not defined (the #if on line "
                f"{n.line}): no Device OS header or project file defines {'it' if len(n.macros) == 1 else 'them'}, "
                f"only a build flag (-D) could, and the check cannot see build flags")  # fmt: skip
        return text, (Related(f"branch taken because {names} is undefined: {n.text}"),), n.text
    text = (f"; the #if on line {n.line} does not exclude it: {names} is not defined in Device OS {target}, "
            f"and an undefined name is 0 in #if")  # fmt: skip
    return text, (Related(f"guard evaluated true on {target}: {n.text}"),), n.text


def findings_for_use(
    use: ApiUse,
    lines: _Lines,
    path: str,
    target: DeviceOSVersion,
    platform_id: int | None,
    notes: Sequence[GuardNote] = (),
    target_reason: str | None = None,
) -> list[Finding]:
    """FS201-FS204 for one use site (empty when the target has it).

    The message, facts and fixes depend only on the API (and, for overloaded APIs, the argument text),
    the target and the guard notes, and dense files repeat the same API hundreds of times: they are
    built once per such key (``_finding_templates``) and only the span is made per use.
    """
    return _findings_at(use, 0, lines, path, target, platform_id, notes, target_reason)


def _findings_at(
    use: ApiUse, base: int, lines: _Lines, path: str, target: DeviceOSVersion, platform_id: int | None,
    notes: Sequence[GuardNote], target_reason: str | None, arduino: bool = False,
) -> list[Finding]:  # fmt: skip
    """``findings_for_use`` for a use whose offsets are relative to ``base``."""
    overloaded = bool(apidata.overloads(use.api)) or use.api == CHRONO_LITERALS  # messages that quote the call
    key = (use.api, use.args if overloaded else None, use.arg_types if overloaded else (), target, platform_id,
           tuple(notes), target_reason, arduino)  # fmt: skip
    templates = _TEMPLATES.get(key)
    if templates is None:
        if len(_TEMPLATES) > 8192:
            _TEMPLATES.clear()
        templates = _TEMPLATES[key] = tuple(_finding_templates(use, target, platform_id, notes, target_reason, arduino))
    if not templates:
        return []
    l1, c1 = lines.pos(base + use.start)
    l2, c2 = lines.pos(base + use.end)
    span = Span(path, l1, c1, l2, c2)
    return [Finding(f.code, f.severity, f.message, span, dict(f.facts), f.fixes, _with_file(f.related, path))
            for f in templates]  # fmt: skip


def _with_file(related: tuple[Related, ...], path: str) -> tuple[Related, ...]:
    """Templates are shared across files: put ``path`` into the guard notes' spans."""
    if not related:
        return related
    return tuple(Related(r.message, Span(path, r.span.line if r.span else 1, 1)) for r in related)


_TEMPLATES: dict[tuple[object, ...], tuple[Finding, ...]] = {}


def _finding_templates(
    use: ApiUse, target: DeviceOSVersion, platform_id: int | None, notes: Sequence[GuardNote],
    target_reason: str | None, arduino: bool = False,
) -> list[Finding]:  # fmt: skip
    """The findings for ``use`` without a span (``findings_for_use`` adds it).

    Whether it compiles comes from ``availability.effective`` (the symbol index where it knows the
    name, the documented tables otherwise); a use that compiles may still get the documentation's
    runtime caveat (FS206).
    """
    a = availability.effective(use.api, platform_id)
    if arduino and a is not None and not a.available_in(target, platform_id):
        # Arduino.h adds compatibility names Particle.h alone lacks (the symbol index reads Particle.h only)
        docs = apidata.availability(use.api)
        if docs is not None and docs.allowed_on(platform_id) and docs.available_in(target, platform_id):
            a = docs
    overloads = apidata.overloads(use.api)
    if a is None and not overloads:
        return []
    span = None
    reason = _reason_suffix(target_reason)
    guard_note, related, _ = _guard_text(notes, target)
    related = tuple(Related(r.message, Span(None, notes[-1].line, 1)) for r in related)
    facts_base = {"api": use.api, "target": str(target), "platform_id": platform_id}
    if a is not None:
        rule = a.platform_problem(platform_id)
        if rule is not None:
            facts = apidata.platform_facts(platform_id)
            pname = facts.display_name if facts else str(platform_id)
            msg = (f"`{use.api}` is for {rule.label} only" if rule.kind == "only" else
                   f"`{use.api}` is not available on {rule.label}")  # fmt: skip
            macro = platform_guard(use.api, target)
            fixes = (Fix("guard", f"Guard with #if {macro}", {"condition": macro, "macro": macro, "api": use.api,
                                                              "release": str(target)}),) if macro else ()  # fmt: skip
            msg += _gen2_never(a, platform_id)
            return [Finding("FS203", Severity.ERROR, f"{msg}; this project targets {pname}{reason}{guard_note}", span,
                            {**facts_base, "since": str(a.since), "platform": pname, "rule": rule.clause},
                            fixes, related)]  # fmt: skip
        if not symindex.covers(target, platform_id) and target.base <= symindex.last_release():
            # no build of this release for this platform (M-SoM at 5.3.0): judge the release itself
            a = availability.effective(use.api, None) or a
        if not a.available_in(target, platform_id):
            return [_version_finding(a, use, span, target, platform_id, reason, guard_note, related, facts_base)]
    for ov in overloads:
        if not ov.available_in(target, platform_id) and _overload_used(ov, use):
            msg = (f"this form of `{use.api}` ({ov.note.split(';')[-1].strip()}) needs Device OS {ov.since}; "
                   f"this project targets {target}{reason}{guard_note}")  # fmt: skip
            return [Finding("FS204", Severity.ERROR, msg, span, {**facts_base, "since": str(ov.since), "overload": ov.note},
                            _fixes(ov, target, platform_id, reason), related)]  # fmt: skip
    note = availability.runtime_note(use.api, target, platform_id)
    if note is not None:
        severity = Severity.WARNING if note.severity == "warning" else Severity.INFO
        facts = {**facts_base, "runtime": True}
        if note.since is not None:
            facts["since"] = str(note.since)
        return [Finding("FS206", severity, f"{note.message}; this project targets {target}{reason}", span, facts)]
    return []


def _version_finding(
    a: Availability, use: ApiUse, span: Span | None, target: DeviceOSVersion, platform_id: int | None, reason: str,
    guard_note: str, related: tuple[Related, ...], facts_base: dict[str, object],
) -> Finding:  # fmt: skip
    base = target.base
    fixes = _fixes(a, target, platform_id, reason)
    if a.removed_from is not None and base >= a.removed_from:
        msg = f"`{a.api}` was removed in Device OS {a.removed_from}; this project targets {target}{reason}{guard_note}"
        return Finding("FS202", Severity.ERROR, msg, span,
                       {**facts_base, "since": str(a.since), "removed_from": str(a.removed_from)},
                       tuple(f for f in fixes if f.kind == "guard"), related)  # fmt: skip
    line_start = a.first_release_for_line(target)
    on_other_line = a.earliest() <= base
    if on_other_line:
        if line_start is not None and line_start > base:
            why = f"it arrived on the {base.major}.x line in {line_start}"
        else:
            why = f"it is absent from {base} although {a.earliest()} has it"
        others = ", ".join(f"{m}.x: {s}" for m, s in a.lines if m != base.major)
        msg = (f"`{a.api}` is not in Device OS {target}: {why}" + (f" ({others})" if others else "")
               + f"; this project targets {target}{reason}{guard_note}")  # fmt: skip
        since = line_start if line_start is not None and line_start > base else a.since
        return Finding("FS202", Severity.ERROR, msg, span, {**facts_base, "since": str(since)}, fixes, related)
    needed = (
        line_start if (line_start is not None and line_start > base and a.lines) else a.since_for_platform(platform_id)
    )
    lines = ""
    later = [(major, start) for major, start in a.lines if start > base]
    if line_start is None and later:  # the target's line never got it: name the first release of each later line
        needed = later[0][1]
        rest = "; ".join(f"{major}.x: {start}" for major, start in later[1:])
        lines = f" (the {later[0][0]}.x line{'; ' + rest if rest else ''})"
    if a.api == CHRONO_LITERALS:
        msg = (f"chrono literals such as `{use.args or 'ms'}` need Device OS {needed}, whose headers make "
               f"std::chrono_literals visible everywhere (or add `using namespace std::chrono_literals;` with "
               f"<chrono>); this project targets {target}{reason}{guard_note}")  # fmt: skip
    else:
        msg = (f"`{a.api}` needs Device OS {needed}{lines}{_gen2_never(a, platform_id)}; this project targets "
               f"{target}{reason}{guard_note}")  # fmt: skip
    return Finding("FS201", Severity.ERROR, msg, span, {**facts_base, "since": str(needed)}, fixes, related)


def _gen2_never(a: Availability, platform_id: int | None) -> str:
    """ ", which no Electron can ever run (Gen 2 stops at Device OS 3.3.1)" when that is why it can never build."""
    from fieldsafe import platforms

    platform = platforms.find(platform_id) if platform_id is not None else None
    cap = platform.max_release if platform is not None and platform.gen2 else None
    if cap is None or a.earliest() <= cap:
        return ""
    return (
        f"; no {platform.display_name} can ever get it (Gen 2 devices stop at Device OS {cap}; it arrived in "
        f"{a.earliest()})"
    )


def _preprocessor_findings(pre: Preprocessed, lines: _Lines, path: str, target: DeviceOSVersion) -> list[Finding]:
    out = []
    for start, end, text, macro in pre.errors:
        l1, c1 = lines.pos(start)
        l2, c2 = lines.pos(end)
        msg = (f"`{macro}` is not defined before Device OS 1.2.0, so `{text}` is a preprocessor error on "
               f"{target}; compare with a SYSTEM_VERSION_vXYZ macro guarded by defined(...)")  # fmt: skip
        out.append(Finding("FS205", Severity.ERROR, msg, Span(path, l1, c1, l2, c2),
                           {"api": macro, "since": "1.2.0", "target": str(target)}))  # fmt: skip
    return out
