"""The ``.ino`` preprocessor: turn a Particle sketch into the ``.cpp`` the compiler sees.

Why: the cloud (like Arduino) lets a sketch call a function defined further down and omit
``#include "Particle.h"``. It converts ``app.ino`` to ``app.cpp`` by adding the include and
prototypes for the sketch's top-level functions, plus ``#line`` directives so that gcc still cites
``src/app.ino`` and the line numbers the user edits (particle-domain.md section 10). Our emulator
must do the same, or its diagnostics would point at lines the user cannot find.

Where the prototypes go follows Particle's wiring preprocessor (npm ``wiring-preprocessor`` README, the
docs' "Preprocessor" page): at the top of the file below the ``#include`` statements, and never for
functions whose signature uses a class, struct or enum defined in the sketch itself (the prototype would
come before the type).

Prototype extraction is a small scanner, not a C++ parser: comments, strings and character
literals are blanked, brace depth is tracked, and only depth-0 definitions of the form
``<type> name(<params>) {`` are taken. Templates, ``Class::method`` definitions, functions with
default arguments and functions that already have a declaration are skipped (a second prototype
would be harmless or, with defaults, an error).
"""

from __future__ import annotations

import re

__all__ = ["find_prototypes", "preprocess_ino"]

_KEYWORDS = {"if", "while", "for", "switch", "else", "return", "do", "catch", "sizeof", "defined"}
_DEF = re.compile(
    r"(?P<sig>(?P<type>[A-Za-z_][\w:<>,\s\*&]*?[\s\*&])(?P<name>[A-Za-z_]\w*)\s*\((?P<params>[^;{}()]*(?:\([^;{}()]*\)[^;{}()]*)*)\)"
    r"\s*(?:const\s*)?)\{"
)
_INCLUDE_PARTICLE = re.compile(r'^\s*#\s*include\s*[<"](Particle|application|Arduino)\.h[>"]', re.MULTILINE)


def _blank(text: str) -> str:
    """Replace comments, string and char literals by spaces (newlines kept), so offsets stay valid."""
    out = list(text)
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        nxt = text[i + 1] if i + 1 < n else ""
        if c == "/" and nxt == "/":
            j = text.find("\n", i)
            j = n if j < 0 else j
            _fill(out, i, j)
            i = j
        elif c == "/" and nxt == "*":
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            _fill(out, i, j)
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            _fill(out, i + 1, min(j, n))
            i = j + 1
        elif c == "#" and not text[text.rfind("\n", 0, i) + 1 : i].strip():
            j = i
            while True:  # preprocessor lines, with continuations
                k = text.find("\n", j)
                if k < 0:
                    k = n
                    break
                if k > 0 and text[k - 1] == "\\":
                    j = k + 1
                    continue
                break
            _fill(out, i, k)
            i = k
        else:
            i += 1
    return "".join(out)


def _fill(out: list[str], start: int, end: int) -> None:
    for k in range(start, end):
        if out[k] != "\n":
            out[k] = " "


def _depths(text: str) -> list[int]:
    depth, result = 0, []
    for ch in text:
        result.append(depth)
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth = max(0, depth - 1)
    return result


def find_prototypes(source: str) -> tuple[list[str], int | None]:
    """Prototypes for the sketch's top-level functions, and the 0-based line of the first definition."""
    blank = _blank(source)
    depth = _depths(blank)
    declared = {
        m[1] for m in re.finditer(r"[\w\*&>]\s+([A-Za-z_]\w*)\s*\([^;{}]*\)\s*;", blank) if depth[m.start()] == 0
    }
    local_types = _local_types(blank)
    protos: list[str] = []
    first_line: int | None = None
    seen: set[str] = set()
    for m in _DEF.finditer(blank):
        start = m.start("type")
        # the match may begin inside whitespace after a previous statement; skip leading blanks
        while start < len(blank) and blank[start].isspace():
            start += 1
        if depth[start] != 0:
            continue
        rtype, name, params = " ".join(m["type"].split()), m["name"], " ".join(m["params"].split())
        if name in _KEYWORDS or rtype.split()[-1] in _KEYWORDS or "::" in name or "::" in rtype.split()[-1]:
            continue
        if rtype.startswith(("template", "return", "else", "typedef", "class", "struct", "enum", "namespace")):
            continue
        if "=" in params or name in declared:
            first_line = first_line if first_line is not None else blank.count("\n", 0, start)
            continue
        line = blank.count("\n", 0, start)
        first_line = line if first_line is None else first_line
        if local_types & set(re.findall(r"[A-Za-z_]\w*", f"{rtype} {params}")):
            continue
        proto = f"{rtype} {name}({params});"
        if proto not in seen:
            seen.add(proto)
            protos.append(proto)
    return protos, first_line


def _local_types(blank: str) -> set[str]:
    """Names of classes, structs, unions, enums and typedefs the sketch defines itself."""
    tagged = re.findall(r"\b(?:class|struct|union|enum(?:\s+class|\s+struct)?)\s+([A-Za-z_]\w*)", blank)
    aliases = re.findall(r"\btypedef\b[^;]*?\b([A-Za-z_]\w*)\s*;", blank)
    aliases += re.findall(r"\busing\s+([A-Za-z_]\w*)\s*=", blank)
    return set(tagged) | set(aliases)


def _insertion_line(source: str, first_definition: int) -> int:
    """0-based line after the last ``#include``/``#define``/``#endif`` above the first function definition.

    Below the includes, and below macros the sketch defines before its first function, so a
    prototype such as ``ISR_ATTR void onPulse();`` sees ``ISR_ATTR`` (0 when there is none).
    """
    lines = source.splitlines()
    last = -1
    for index, text in enumerate(lines[:first_definition]):
        if re.match(r"\s*#\s*(include|define|undef|endif|pragma)\b", text):
            last = index
    return last + 1


def preprocess_ino(source: str, path: str, include: str = "Particle.h") -> str:
    """The ``.cpp`` text for sketch ``path`` (project-relative): include, prototypes and ``#line`` directives.

    ``include`` is the header the cloud adds (``application.h`` for releases before ``Particle.h`` existed).
    """
    protos, first = find_prototypes(source)
    lines = source.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    quoted = path.replace("\\", "/").replace('"', '\\"')
    head = [] if _INCLUDE_PARTICLE.search(source) else [f'#include "{include}"\n']
    if first is None or not protos:
        return "".join([*head, f'#line 1 "{quoted}"\n', *lines])
    at = _insertion_line(source, first)
    out = [*head, f'#line 1 "{quoted}"\n', *lines[:at]]
    out.append("// function prototypes added by the .ino preprocessor\n")
    out += [p + "\n" for p in protos]
    out.append(f'#line {at + 1} "{quoted}"\n')
    out += lines[at:]
    return "".join(out)
