"""Render the symbol index of one (release, platform) as C++ declarations (the body of ``Particle.h``).

Why this shape: the index (:mod:`fieldsafe.symbols`) lists every name the release declares with its
kind and scope but not its type, so each kind becomes the most permissive declaration that still
makes a *missing* name an error:

* namespaces, classes (with their ``bases=``), nested types and members exist exactly as indexed;
* methods and free functions are variadic templates returning :data:`ANY` (``fs_any``), plus a
  non-template overload of ``fs_any`` parameters so braced arguments (``{{"app", LOG_LEVEL_ALL}}``)
  bind; members marked ``template`` also take explicit template arguments (``v.as<int>()``);
* unscoped enumerators of one scope share one enum type, and every unscoped enum of that scope
  names it (``LogLevel l = LOG_LEVEL_WARN``, ``switch``/``case`` work); ``enum class`` values stay
  scoped; typedefs are distinct permissive types unless their real type matters (``stubtext``);
* global objects are ``extern`` instances of their ``type=`` class, macro objects (``Serial``)
  expand to an accessor returning that class, as Device OS does;
* using-directives and using-declarations are reproduced, so ``spark::WiFi`` and ``WiFi`` both work.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field

from fieldsafe.emulator import stubtext
from fieldsafe.symbols import Symbol

ANY = "fs_any"
_IDENT = re.compile(r"[A-Za-z_]\w*\Z")
_CLASS_KINDS = ("class", "struct", "union")
_MAX_BRACE_ARGS = 4
_BINARY_OPS = ("==", "!=", "<", ">", "<=", ">=", "+", "-", "*", "/", "%", "&", "|", "^", "<<", ">>", "&&", "||")
_ASSIGN_OPS = ("=", "+=", "-=", "*=", "/=", "%=", "&=", "|=", "^=", "<<=", ">>=")
_CPP_KEYWORDS = frozenset(
    [
        "alignas",
        "alignof",
        "and",
        "and_eq",
        "asm",
        "auto",
        "bitand",
        "bitor",
        "bool",
        "break",
        "case",
        "catch",
        "char",
        "char16_t",
        "char32_t",
        "class",
        "compl",
        "const",
        "constexpr",
        "const_cast",
        "continue",
        "decltype",
        "default",
        "delete",
        "do",
        "double",
        "dynamic_cast",
        "else",
        "enum",
        "explicit",
        "export",
        "extern",
        "false",
        "float",
        "for",
        "friend",
        "goto",
        "if",
        "inline",
        "int",
        "long",
        "mutable",
        "namespace",
        "new",
        "noexcept",
        "not",
        "not_eq",
        "nullptr",
        "operator",
        "or",
        "or_eq",
        "private",
        "protected",
        "public",
        "register",
        "reinterpret_cast",
        "return",
        "short",
        "signed",
        "sizeof",
        "static",
        "static_assert",
        "static_cast",
        "struct",
        "switch",
        "template",
        "this",
        "thread_local",
        "throw",
        "true",
        "try",
        "typedef",
        "typeid",
        "typename",
        "union",
        "unsigned",
        "using",
        "virtual",
        "void",
        "volatile",
        "wchar_t",
        "while",
        "xor",
        "xor_eq",
    ]
)


# Device OS's own reserved-looking names that user code (or our macros) do use.
_RESERVED_OK = frozenset(
    {"__SPISettings", "__FlashStringHelper", "__ApplicationProductID", "__ApplicationProductVersion"}
)


def valid_name(name: str) -> bool:
    """A plain identifier we may declare: not a keyword, not reserved for the implementation."""
    if name in _RESERVED_OK:
        return True
    return bool(_IDENT.match(name)) and name not in _CPP_KEYWORDS and not name.startswith("__")


@dataclass
class Method:
    arity: tuple[int, int]  # (min, max); max -1 = variadic
    static: bool = False
    template: bool = False


@dataclass
class Scope:
    """A namespace or class of the index, with what it declares at this release."""

    qname: str
    kind: str  # namespace | class | struct | union
    template: bool = False
    incomplete: bool = False
    bases: list[str] = field(default_factory=list)
    classes: dict[str, Scope] = field(default_factory=dict)
    namespaces: dict[str, Scope] = field(default_factory=dict)
    scoped_enums: dict[str, list[str]] = field(default_factory=dict)
    unscoped_enums: set[str] = field(default_factory=set)
    enumerators: list[str] = field(default_factory=list)
    typedefs: set[str] = field(default_factory=set)
    ctors: list[Method] = field(default_factory=list)
    methods: dict[str, Method] = field(default_factory=dict)
    operators: set[str] = field(default_factory=set)
    fields: dict[str, bool] = field(default_factory=dict)  # name -> static
    constants: set[str] = field(default_factory=set)
    variables: dict[str, str] = field(default_factory=dict)  # name -> qualified type ('' unknown)
    functions: dict[str, Method] = field(default_factory=dict)
    usings: list[str] = field(default_factory=list)  # using-declarations (qualified targets)
    using_dirs: list[str] = field(default_factory=list)

    @property
    def short(self) -> str:
        return self.qname.rpartition("::")[2]

    @property
    def is_class(self) -> bool:
        return self.kind in _CLASS_KINDS


def _arity(text: str) -> tuple[int, int]:
    if not text:
        return (0, -1)
    lo, _, hi = text.partition("-")
    return (int(lo or 0), -1 if hi in ("*", "") else int(hi))


class Model:
    """The scope tree of one release/platform, built from its index rows."""

    def __init__(self, rows: list[Symbol]) -> None:
        self.root = Scope("", "namespace")
        self.scopes: dict[str, Scope] = {"": self.root}
        self.macro_objects: dict[str, Symbol] = {}
        self.macro_functions: dict[str, Symbol] = {}
        self.enum_kinds: dict[str, bool] = {}  # qualified enum -> scoped
        self.declared: set[str] = set()  # qualified names of every declared entity
        self.member_names: set[str] = set()
        self.field_names: set[str] = set()
        self._build(rows)

    # -- building ---------------------------------------------------------------------------
    def _build(self, rows: list[Symbol]) -> None:
        containers = [r for r in rows if r.kind in ("namespace", *_CLASS_KINDS)]
        for r in sorted(containers, key=lambda r: r.name.count("::")):
            self._container(r)
        for r in rows:
            if r.kind == "enum":
                self.enum_kinds[r.name] = r.has_note("scoped")
        for r in rows:
            self._row(r)

    def _container(self, r: Symbol) -> None:
        parent = self.scopes.get(r.scope)
        if parent is None or not _usable(r) or "using " in r.note:
            return
        existing = self.scopes.get(r.name)
        if existing is not None:
            existing.incomplete = existing.incomplete and r.has_note("incomplete")
            return
        kind = "namespace" if r.kind == "namespace" else r.kind
        if parent.is_class and kind == "namespace":
            return
        sc = Scope(r.name, kind, template=r.has_note("template"), incomplete=r.has_note("incomplete"))
        bases = r.notes().get("bases", "")
        sc.bases = [b.strip() for b in bases.split(",") if b.strip()]
        self.scopes[r.name] = sc
        (parent.namespaces if kind == "namespace" else parent.classes)[sc.short] = sc
        self.declared.add(r.name)

    def _row(self, r: Symbol) -> None:
        kind = r.kind
        if kind in ("namespace", *_CLASS_KINDS):
            return
        if kind == "macro-object":
            self.macro_objects.setdefault(r.name, r)
            return
        if kind == "macro-function":
            self.macro_functions.setdefault(r.name, r)
            return
        if kind == "using-directive":
            target = r.name
            sc = self.scopes.get(r.scope)
            if sc is not None and target not in sc.using_dirs:
                sc.using_dirs.append(target)
            return
        using = next((n[len("using ") :] for n in r.note.split(";") if n.strip().startswith("using ")), None)
        sc = self.scopes.get(r.scope)
        if sc is None:
            # an enumerator of an enum class takes the enum's name as its scope
            if kind == "enumerator" and self.enum_kinds.get(r.scope):
                owner_scope, _, enum = r.scope.rpartition("::")
                owner = self.scopes.get(owner_scope)
                if owner is not None and valid_name(r.short):
                    owner.scoped_enums.setdefault(enum, [])
                    if r.short not in owner.scoped_enums[enum]:
                        owner.scoped_enums[enum].append(r.short)
            return
        if using:
            if using not in sc.usings:
                sc.usings.append(using.strip())
            return
        name = r.short
        if not _usable(r) and not name.startswith("operator"):
            return
        self.declared.add(r.name)
        if kind == "enum":
            if r.has_note("scoped"):
                sc.scoped_enums.setdefault(name, [])
            else:
                sc.unscoped_enums.add(name)
        elif kind == "enumerator":
            if name not in sc.enumerators:
                sc.enumerators.append(name)
        elif kind == "typedef":
            sc.typedefs.add(name)
        elif kind == "method":
            self._method(sc, r, name)
        elif kind == "field":
            sc.fields[name] = r.has_note("static")
            self.field_names.add(name)
        elif kind == "constant":
            sc.constants.add(name)
        elif kind == "variable":
            types = [v for k, v in (p.strip().partition("=")[::2] for p in r.note.split(";")) if k == "type"]
            sc.variables[name] = types[0] if types else ""
        elif kind == "function" and valid_name(name):
            sc.functions[name] = Method(_arity(r.arity), template=r.has_note("template"))

    def _method(self, sc: Scope, r: Symbol, name: str) -> None:
        if r.has_note("constructor") or name == sc.short:
            sc.ctors.append(Method(_arity(r.arity)))
        elif name.startswith("operator"):
            sc.operators.add(name[len("operator") :].strip())
        elif valid_name(name):
            prev = sc.methods.get(name)
            m = Method(_arity(r.arity), static=r.has_note("static"), template=r.has_note("template"))
            if prev is not None:
                m = Method((min(prev.arity[0], m.arity[0]), _max_arity(prev.arity[1], m.arity[1])),
                           prev.static and m.static, prev.template or m.template)  # fmt: skip
            sc.methods[name] = m
            self.member_names.add(name)

    # -- lookups ----------------------------------------------------------------------------
    def resolve(self, name: str, from_scope: str) -> Scope | None:
        """C++-style lookup of a (possibly qualified) class name from a scope, outwards."""
        name = re.sub(r"<.*>", "", name).strip().lstrip(":")
        scope = from_scope
        while True:
            cand = f"{scope}::{name}" if scope else name
            if cand in self.scopes and self.scopes[cand].is_class:
                return self.scopes[cand]
            if not scope:
                break
            scope = scope.rpartition("::")[0]
        for ns in ("spark", "particle"):  # reached through the global using-directives
            cand = f"{ns}::{name}"
            if cand in self.scopes and self.scopes[cand].is_class:
                return self.scopes[cand]
        return None

    def type_known(self, qname: str) -> bool:
        return qname in self.declared or qname.lstrip(":") in self.declared


def _usable(r: Symbol) -> bool:
    name = r.short
    return valid_name(name) or r.kind in ("namespace",)


def _max_arity(a: int, b: int) -> int:
    return -1 if -1 in (a, b) else max(a, b)


# --------------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------------


@dataclass
class Renderer:
    """Writes a :class:`Model` as C++ (declarations only)."""

    model: Model
    chrono_deleted: set[str] = field(default_factory=set)  # "Class::member": chrono overload not yet there
    extra_methods: dict[str, set[str]] = field(default_factory=dict)  # class -> names added from the doc tables
    _counter: int = 0

    def any_members(self) -> str:
        names = set(self.model.member_names) | {"toString", "c_str", "length"}
        for members in stubtext.HAND_MEMBERS.values():
            names |= members
        for extra in self.extra_methods.values():
            names |= extra
        lines = []
        for n in sorted(names):
            if valid_name(n):
                lines.append(f"    template <class... A> {ANY} {n}(A&&...) const {{ return {ANY}(); }}")
                lines.append(f"    {ANY} {n}({_brace_params(_MAX_BRACE_ARGS, 1)}) const;")
        for n in sorted(self.model.field_names - names):
            if valid_name(n):
                lines.append(f"    static {ANY} {n};")
        return "\n".join(lines)

    # ---- top level ----
    def forward_declarations(self) -> str:
        out: list[str] = []

        def walk(sc: Scope, depth: int) -> None:
            inner: list[str] = []
            for cls in sorted(sc.classes.values(), key=lambda c: c.short):
                if cls.short in stubtext.CORE_CLASSES and not sc.qname:
                    continue
                tmpl = "template <class... FsT> " if cls.template else ""
                inner.append(f"{tmpl}{_key(cls)} {cls.short};")
            for ns in sorted(sc.namespaces.values(), key=lambda n: n.short):
                sub: list[str] = []
                out_len = len(out)
                walk(ns, depth + 1)
                sub = out[out_len:]
                del out[out_len:]
                inner.append(f"namespace {ns.short} {{\n" + "\n".join(sub) + "\n}")
            out.extend(inner)

        walk(self.model.root, 0)
        return "\n".join(out) + "\n"

    def using_directives(self) -> str:
        lines: list[str] = []
        for qname, sc in self.model.scopes.items():
            if sc.is_class:
                continue
            for target in sc.using_dirs:
                if target.startswith("std::") or self.model.scopes.get(target.lstrip(":")) is not None:
                    lines.append(_wrap(qname, f"using namespace {target};"))
        return "\n".join(lines) + "\n"

    def scope_types(self) -> str:
        """Enums, enumerators, typedefs and constants of every namespace (classes carry their own)."""
        out: list[str] = []
        for qname, sc in self.model.scopes.items():
            if sc.is_class:
                continue
            body = self._types_of(sc, indent="")
            if body:
                out.append(_wrap(qname, body))
        return "\n".join(out) + "\n"

    def classes(self) -> str:
        """Top-level class definitions (in namespaces), bases first."""
        order: list[Scope] = []
        seen: set[str] = set()

        def visit(sc: Scope, stack: tuple[str, ...]) -> None:
            if sc.qname in seen or sc.qname in stack:
                return
            for base in self._bases(sc):
                outer = base
                while (
                    outer.qname.rpartition("::")[0] in self.model.scopes
                    and self.model.scopes[outer.qname.rpartition("::")[0]].is_class
                ):
                    outer = self.model.scopes[outer.qname.rpartition("::")[0]]
                if outer is not sc:
                    visit(outer, (*stack, sc.qname))
            seen.add(sc.qname)
            order.append(sc)

        for qname, sc in self.model.scopes.items():
            parent = self.model.scopes.get(qname.rpartition("::")[0]) if "::" in qname else self.model.root
            if sc.is_class and parent is not None and not parent.is_class:
                visit(sc, ())
        out = []
        for sc in order:
            if sc.short in stubtext.CORE_CLASSES and "::" not in sc.qname:
                continue
            if sc.incomplete:
                continue
            out.append(_wrap(sc.qname.rpartition("::")[0], self._class(sc, "")))
        return "\n".join(out) + "\n"

    def values(self) -> str:
        """Usings, global variables and free functions."""
        out: list[str] = []
        for qname, sc in self.model.scopes.items():
            if sc.is_class:
                continue
            lines: list[str] = []
            for name, typ in sorted(sc.variables.items()):
                t = self._type_or_any(typ, qname)
                lines.append(f"extern {t} {name};")
            for name, fn in sorted(sc.functions.items()):
                if not qname and name in stubtext.REAL_FUNCTIONS:
                    lines.append(stubtext.REAL_FUNCTIONS[name])
                    continue
                lines += self._callable(name, fn, member=False, checked=True)
            if lines:
                out.append(_wrap(qname, "\n".join(lines)))
        for qname, sc in self.model.scopes.items():
            usings = [f"using {t};" for t in sc.usings if not sc.is_class and self._using_ok(t)]
            if usings:
                out.append(_wrap(qname, "\n".join(usings)))
        return "\n".join(out) + "\n"

    def _using_ok(self, target: str) -> bool:
        t = target.lstrip(":")
        scope, _, name = t.rpartition("::")
        sc = self.model.scopes.get(scope)
        if sc is None:
            return False
        return (name in sc.classes or name in sc.variables or name in sc.functions or name in sc.typedefs
                or name in sc.unscoped_enums or name in sc.scoped_enums or name in sc.constants)  # fmt: skip

    def _type_or_any(self, typ: str, from_scope: str) -> str:
        if not typ:
            return ANY
        resolved = self.model.resolve(typ, from_scope)
        if resolved is not None and not resolved.template:
            return "::" + resolved.qname
        plain = typ.lstrip(":")
        for scope in (from_scope, "", "spark", "particle"):
            q = f"{scope}::{plain}" if scope else plain
            owner, _, name = q.rpartition("::")
            sc = self.model.scopes.get(owner)
            if sc is not None and (name in sc.typedefs or name in sc.unscoped_enums):
                return "::" + q
        return ANY

    # ---- pieces ----
    def _bases(self, sc: Scope) -> list[Scope]:
        out = []
        for b in sc.bases:
            base = self.model.resolve(b, sc.qname.rpartition("::")[0])
            if base is not None and base is not sc and base not in out:
                out.append(base)
        return out

    def _types_of(self, sc: Scope, indent: str) -> str:
        lines: list[str] = []
        in_class = sc.is_class
        if sc.enumerators:
            self._counter += 1
            pool = f"fs_enum_{self._counter}"
            values = ", ".join(f"{v} = {i}" for i, v in enumerate(sc.enumerators))
            lines.append(f"enum {pool} : int {{ {values} }};")
            for name in sorted(sc.unscoped_enums):
                if name not in sc.classes:
                    lines.append(f"typedef {pool} {name};")
        else:
            for name in sorted(sc.unscoped_enums):
                if name not in sc.classes:
                    lines.append(f"enum {name} : int {{}};")
        for name, values in sorted(sc.scoped_enums.items()):
            lines.append(f"enum class {name} : int {{ {', '.join(values)} }};")
            ops = _enum_ops(name, "friend " if in_class else "")
            lines.append(ops)
        taken = set(sc.classes) | sc.unscoped_enums | set(sc.scoped_enums)
        for name in sorted(sc.typedefs - taken):
            real = stubtext.REAL_TYPEDEFS.get(name) if not sc.qname or sc.qname in ("spark", "particle") else None
            if real is not None:
                lines.append(f"using {name} = {real};")
            else:
                lines.append(f"struct {name} : {ANY} {{ using {ANY}::{ANY}; }};")
        for name in sorted(sc.constants - taken):
            kw = "static constexpr" if in_class else "constexpr"
            lines.append(f"{kw} int {name} = {1000 + len(lines)};")
        return "\n".join(indent + line for line in lines)

    def _class(self, sc: Scope, indent: str) -> str:
        tmpl = "template <class... FsT> " if sc.template else ""
        bases = self._bases(sc)
        base_text = (
            (" : " + ", ".join(f"public ::{b.qname}" + ("<>" if b.template else "") for b in bases)) if bases else ""
        )
        i2 = indent + "    "
        lines = [f"{indent}{tmpl}{_key(sc)} {sc.short}{base_text} {{", f"{indent}public:"]
        types = self._types_of(sc, i2)
        if types:
            lines.append(types)
        for nested in sorted(sc.classes.values(), key=lambda c: c.short):
            if nested.incomplete:
                lines.append(f"{i2}{_key(nested)} {nested.short};")
            else:
                lines.append(self._class(nested, i2))
        if sc.kind != "union":
            lines += self._class_members(sc, i2)
        lines.append(f"{indent}}};")
        return "\n".join(lines)

    def _class_members(self, sc: Scope, indent: str) -> list[str]:
        lines: list[str] = []
        virtuals = stubtext.VIRTUALS.get(sc.qname, ())
        virtual_names = {re.search(r"(\w+)\(", v).group(1) for v in virtuals}  # type: ignore[union-attr]
        has_ctor = bool(sc.ctors) or any(self.model.scopes.get(b.qname, b).ctors for b in self._bases(sc))
        if has_ctor:
            lines.append(f"template <class... A> {sc.short}(A&&...) {{}}")
            lines.append(f"{sc.short}({_brace_params(_MAX_BRACE_ARGS, 1)});")
        lines += [
            "template <class T> operator T&() const { return *(T*)this; }",
            "explicit operator bool() const { return true; }",
            "template <class T> bool operator==(const T&) const { return true; }",
            "template <class T> bool operator!=(const T&) const { return false; }",
        ]
        for op in sorted(sc.operators - {"==", "!=", "bool"}):
            lines += _operator(op)
        lines += list(virtuals)
        for name, m in sorted(sc.methods.items()):
            if name in virtual_names or name in sc.classes or name in sc.typedefs:
                continue
            if f"{sc.qname}::{name}" in self.chrono_deleted:
                lines.append(
                    f"template <class R, class P, class... A> {ANY} {name}(std::chrono::duration<R, P>, A&&...) const"
                    " = delete;"
                )
            lines += self._callable(name, self._inherited_arity(sc, name, m), member=True, checked=True)
        for name in sorted(self.extra_methods.get(sc.qname, set()) - set(sc.methods)):
            lines += self._callable(name, Method((0, -1)), member=True)
        for name, static in sorted(sc.fields.items()):
            if name in sc.methods or name in sc.classes:
                continue
            lines.append(f"{'static ' if static else ''}{ANY} {name};")
        return [indent + line for line in lines]

    def _inherited_arity(self, sc: Scope, name: str, m: Method) -> Method | None:
        """The arity range of ``name`` over ``sc`` and its bases (a base's overloads may be
        brought in by a ``using`` the index does not record); None when a hand-written core base
        (``Print``, ``Stream``...) has the name, whose overloads we do not count."""
        lo, hi = m.arity
        seen: set[str] = set()
        todo = list(sc.bases)
        scope = sc.qname.rpartition("::")[0]
        while todo:
            base_name = todo.pop()
            base = self.model.resolve(base_name, scope)
            if base is None:
                if name in stubtext.HAND_MEMBERS.get(base_name.split("<")[0].split("::")[-1], ()):
                    return None
                continue
            if base.qname in seen:
                continue
            seen.add(base.qname)
            if base.short in stubtext.CORE_CLASSES and name in stubtext.HAND_MEMBERS.get(base.short, ()):
                return None
            other = base.methods.get(name)
            if other is not None:
                lo, hi = min(lo, other.arity[0]), _max_arity(hi, other.arity[1])
            todo += base.bases
        return Method((lo, hi), m.static, m.template)

    def _callable(self, name: str, m: Method | None, member: bool, checked: bool = False) -> list[str]:
        """A variadic template (arity-checked when ``checked`` and the range is known) + a braced-list overload."""
        if m is None:
            m, checked = Method((0, -1)), False
        static = "static " if member and m.static else ""
        const = " const" if member and not m.static else ""
        tparams = "class... FsM, class... A" if m.template else "class... A"
        lo, hi = m.arity
        if checked and (lo > 0 or hi >= 0):
            cond = " && ".join(c for c in (f"(sizeof...(A) >= {lo})" if lo > 0 else "",
                                           f"(sizeof...(A) <= {hi})" if hi >= 0 else "") if c)  # fmt: skip
            tparams += f", typename fs_arity_matches_device_os<{cond}>::type = 0"
        out = [f"template <{tparams}> {static}{ANY} {name}(A&&...){const} {{ return {ANY}(); }}"]
        hi = m.arity[1]
        n = _MAX_BRACE_ARGS if hi < 0 else min(hi, _MAX_BRACE_ARGS)
        if n >= 1:
            out.append(f"{static}{ANY} {name}({_brace_params(n, max(m.arity[0], 1))}){const};")
        return out


def _brace_params(n: int, required: int) -> str:
    """``const fs_any&`` parameters for braced arguments; the first ``required`` have no default."""
    required = min(required, n)
    return ", ".join(f"const {ANY}&" + ("" if i < required else f" = {ANY}()") for i in range(n))


def _operator(op: str) -> list[str]:
    ret = f"{{ return {ANY}(); }}"
    if op in _BINARY_OPS:
        out = [f"template <class T> {ANY} operator{op}(const T&) const {ret}"]
        if op in ("-", "+", "*", "&"):
            out.append(f"{ANY} operator{op}() const;")
        return out
    if op in _ASSIGN_OPS:
        return [f"template <class T> {ANY}& operator{op}(const T&);"]
    if op == "[]":
        return [f"template <class T> {ANY}& operator[](const T&) const;"]
    if op == "()":
        return [f"template <class... A> {ANY} operator()(A&&...) const {ret}"]
    if op in ("!", "~"):
        return [f"{ANY} operator{op}() const;"]
    if op in ("++", "--"):
        return [f"{ANY}& operator{op}();", f"{ANY} operator{op}(int);"]
    if op == "->":
        return [f"{ANY}* operator->() const;"]
    return []


def _enum_ops(name: str, friend: str) -> str:
    ops = []
    for op in ("|", "&", "^"):
        ops.append(f"{friend}inline {name} operator{op}({name} a, {name} b) {{ return {name}(int(a) {op} int(b)); }}")
        ops.append(f"{friend}inline {name}& operator{op}=({name}& a, {name} b) {{ return a = a {op} b; }}")
    ops.append(f"{friend}inline {name} operator~({name} a) {{ return {name}(~int(a)); }}")
    return "\n".join(ops)


def _key(sc: Scope) -> str:
    return "union" if sc.kind == "union" else "struct" if sc.kind == "struct" else "class"


def _wrap(qname: str, body: str) -> str:
    """Put ``body`` inside the namespaces of ``qname`` (``a::b`` -> ``namespace a { namespace b {``)."""
    if not qname:
        return body
    parts = qname.split("::")
    return "".join(f"namespace {p} {{ " for p in parts) + "\n" + body + "\n" + "}" * len(parts)


def macro_value_counter() -> defaultdict[str, int]:
    """Distinct values for object-like macros whose expansion the index does not record."""
    return defaultdict(int)
