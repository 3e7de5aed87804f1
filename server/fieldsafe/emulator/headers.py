"""Stub Device OS headers for one (release, platform), generated from the API availability tables.

Why: the emulator must answer a compile request the way the cloud would *for that Device OS
release*: a sketch that calls ``Particle.publishVitals()`` must fail against 0.7.0 and build
against 1.2.0, with a real gcc diagnostic. We cannot ship 170 Device OS trees, but we do ship
tables saying which release (and release line, and platform) first declares each public API
(``data/device-os-data``, read through :mod:`fieldsafe.apidata`). So the generated ``Particle.h``
declares exactly the APIs available in the requested release:

* global objects (``Particle``, ``System``, ``WiFi``, ``BLE``, ``Serial`` ...) are ``extern``
  instances of their Device OS classes (``CloudClass``, ``SystemClass``, ``BleLocalDevice``,
  ``USBSerial`` ...) whose member functions are declared only when the table says the release has
  them; calling a missing one gives gcc's ``'class CloudClass' has no member named ...``;
* classes, enums and enum values, constants, macros and free functions are declared only when
  available; a missing class gives ``'SystemSleepConfiguration' was not declared in this scope``;
* signatures are unknown, so members are variadic templates returning :data:`ANY` (``fs_any``), a
  value type that converts to anything and supports the usual operators: ``if
  (Particle.connected())``, ``int r = WiFi.RSSI();`` and ``Particle.publish("a", "b", PRIVATE)``
  all type-check. A few hot functions keep real signatures (``millis``, ``delay``, ``digitalRead``).

Honest limits (also in ``docs/emulator-compiler.md``): this checks syntax and API availability,
not argument types of Device OS calls; some vocabulary the tables do not list (pins, pin modes,
``PRIVATE``/``PUBLIC``, enum values such as ``BleCharacteristicProperty::NOTIFY``) is hand-listed
here and assumed present whenever its owner is; the stubs err toward accepting code.

Generated directories are cached per (release, platform, generator version, table contents) under
the user cache dir (or ``FIELDSAFE_CACHE_DIR``), written atomically so parallel compiles can share.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from fieldsafe import apidata
from fieldsafe._data import read_text, read_tsv
from fieldsafe.apidata import Availability
from fieldsafe.versions import DeviceOSVersion

__all__ = ["GENERATOR_VERSION", "OBJECT_CLASSES", "HeaderPlan", "generate_headers", "header_dir", "plan"]

GENERATOR_VERSION = "1"
ANY = "fs_any"

# Global objects and the classes Device OS declares them as (API-DATA.md: "global objects are mapped
# to their classes"). Objects sharing a class share its member list.
OBJECT_CLASSES: dict[str, str] = {
    "Particle": "CloudClass",
    "System": "SystemClass",
    "WiFi": "WiFiClass",
    "Cellular": "CellularClass",
    "BLE": "BleLocalDevice",
    "Network": "NetworkClass",
    "Mesh": "MeshClass",
    "Ethernet": "EthernetClass",
    "Serial": "USBSerial",
    "USBSerial1": "USBSerial",
    "Serial1": "USARTSerial",
    "Serial2": "USARTSerial",
    "Serial3": "USARTSerial",
    "Serial4": "USARTSerial",
    "Serial5": "USARTSerial",
    "Time": "TimeClass",
    "Log": "Logger",
    "RGB": "RGBClass",
    "Wire": "TwoWire",
    "Wire1": "TwoWire",
    "Wire2": "TwoWire",
    "Wire3": "TwoWire",
    "SPI": "SPIClass",
    "SPI1": "SPIClass",
    "EEPROM": "EEPROMClass",
    "Watchdog": "WatchdogClass",
    "Mouse": "USBMouse",
    "Keyboard": "USBKeyboard",
    "NFC": "NfcTagType",
    "Tether": "TetherClass",
}
# Objects whose presence depends on the radio; the tables only carry this for some of them.
_OBJECT_NEEDS: dict[str, str] = {"WiFi": "wifi", "Cellular": "cellular", "BLE": "ble", "Mesh": "mesh"}
_STREAM_CLASSES = {"USBSerial", "USARTSerial", "TwoWire", "TCPClient", "UDP"}
_CONST_OBJECTS = {"Log"}
# Device OS class templates (spark::Vector<T>, Map<K, V>).
_CLASS_TEMPLATES = {"Vector", "Map"}
_TYPEDEFS = {"word": "uint16_t", "PublishFlags": "int", "boolean": "bool", "byte": "uint8_t"}
# Names the host C library declares; redeclaring them as templates would only add ambiguity.
_LIBC = {"abs", "pow", "min", "max", "printf", "sprintf", "snprintf", "vsnprintf", "vsprintf"}
_POSIX_FS = {
    "open", "close", "read", "write", "lseek", "fstat", "stat", "fsync", "ftruncate", "truncate", "mkdir",
    "rmdir", "rename", "unlink", "opendir", "closedir", "readdir", "readdir_r", "rewinddir", "seekdir", "telldir",
}  # fmt: skip
# Functions given real signatures (written in _PRELUDE_FUNCTIONS) instead of variadic templates.
_REAL_FUNCTIONS = {
    "millis", "micros", "delay", "delayMicroseconds", "digitalRead", "analogRead", "digitalWrite", "pinMode",
    "random", "randomSeed", "constrain", "pinReadFast", "pinSetFast", "pinResetFast", "digitalWriteFast",
}  # fmt: skip
_SKIP_KINDS = {"user-callback", "feature", "constructor", "operator"}

_CPP_KEYWORDS = set(
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


@dataclass(frozen=True)
class _Extra:
    """Vocabulary the tables do not list. ``owner`` ties availability to a table API (None: always)."""

    name: str
    owner: str | None = None
    needs: str | None = None  # platform capability: wifi, cellular, ble, gen2, nrf, rtl, mesh, not-gen2


def _extras() -> list[_Extra]:
    out: list[_Extra] = []
    plain = [
        "INPUT",
        "OUTPUT",
        "INPUT_PULLUP",
        "INPUT_PULLDOWN",
        "OUTPUT_OPEN_DRAIN",
        "AN_INPUT",
        "AN_OUTPUT",
        "CHANGE",
        "RISING",
        "FALLING",
        "LSBFIRST",
        "MSBFIRST",
        "SPI_MODE0",
        "SPI_MODE1",
        "SPI_MODE2",
        "SPI_MODE3",
        "SPI_CLOCK_DIV2",
        "SPI_CLOCK_DIV4",
        "SPI_CLOCK_DIV8",
        "SPI_CLOCK_DIV16",
        "SPI_CLOCK_DIV32",
        "SPI_CLOCK_DIV64",
        "SPI_CLOCK_DIV128",
        "SPI_CLOCK_DIV256",
        "PUBLIC",
        "PRIVATE",
        "NO_ACK",
        "MY_DEVICES",
        "ALL_DEVICES",
        "INT",
        "DOUBLE",
        "STRING",
        "BOOLEAN",
        "ENABLED",
        "DISABLED",
        "SLEEP_MODE_DEEP",
        "SLEEP_MODE_WLAN",
        "SLEEP_NETWORK_STANDBY",
        "SERIAL_8N1",
        "SERIAL_8N2",
        "SERIAL_8E1",
        "SERIAL_8O1",
        "CLOCK_SPEED_100KHZ",
        "CLOCK_SPEED_400KHZ",
        "all_events",
        "SAFE_MODE",
        "D0",
        "D1",
        "D2",
        "D3",
        "D4",
        "D5",
        "D6",
        "D7",
        "A0",
        "A1",
        "A2",
        "A3",
        "A4",
        "A5",
        "TX",
        "RX",
        "SS",
        "SCK",
        "MISO",
        "MOSI",
        "SDA",
        "SCL",
        "BTN",
    ]
    out += [_Extra(n) for n in plain]
    out += [_Extra(n, needs="gen2") for n in ["A6", "A7", "WKP", "DAC", "DAC1", "DAC2"]]
    out += [
        _Extra(n, needs="electron") for n in ["B0", "B1", "B2", "B3", "B4", "B5", "C0", "C1", "C2", "C3", "C4", "C5"]
    ]
    out += [_Extra(f"D{i}", needs="not-gen2") for i in range(8, 14)]
    out += [_Extra(f"D{i}", needs="rtl") for i in range(14, 23)] + [_Extra(f"S{i}", needs="rtl") for i in range(7)]
    out += [
        _Extra(n, needs="wifi") for n in ["ANT_INTERNAL", "ANT_EXTERNAL", "ANT_AUTO", "WPA2", "WPA", "WEP", "UNSEC"]
    ]
    reasons = [
        "RESET_REASON_NONE",
        "RESET_REASON_UNKNOWN",
        "RESET_REASON_PIN_RESET",
        "RESET_REASON_POWER_MANAGEMENT",
        "RESET_REASON_POWER_DOWN",
        "RESET_REASON_POWER_BROWNOUT",
        "RESET_REASON_WATCHDOG",
        "RESET_REASON_UPDATE",
        "RESET_REASON_UPDATE_TIMEOUT",
        "RESET_REASON_FACTORY_RESET",
        "RESET_REASON_SAFE_MODE",
        "RESET_REASON_DFU_MODE",
        "RESET_REASON_PANIC",
        "RESET_REASON_USER",
        "FEATURE_RESET_INFO",
    ]
    out += [_Extra(n, owner="System.resetReason") for n in reasons]
    return out


# Enum values the tables do not list, available whenever their enum is (scoped: Enum::VALUE).
_ENUM_VALUES: dict[str, tuple[str, ...]] = {
    "BleCharacteristicProperty": (
        "NONE", "BROADCAST", "READ", "WRITE_WO_RSP", "WRITE", "NOTIFY", "INDICATE", "AUTH_SIGN", "EXTENDED_PROP",
    ),
    "LEDPattern": ("INVALID", "SOLID", "BLINK", "FADE", "CUSTOM"),
    "LEDPriority": ("LOW", "BACKGROUND", "NORMAL", "IMPORTANT", "CRITICAL"),
    "LEDSpeed": ("SLOW", "NORMAL", "FAST"),
    "LEDSignal": ("NETWORK_OFF", "NETWORK_ON", "NETWORK_CONNECTING", "NETWORK_CONNECTED", "CLOUD_CONNECTED"),
    "SystemSleepMode": ("NONE",),
    "BleAddressType": ("PUBLIC", "RANDOM_STATIC", "RANDOM_PRIVATE_RESOLVABLE", "RANDOM_PRIVATE_NON_RESOLVABLE"),
    "BleAdvertisingDataType": ("COMPLETE_LOCAL_NAME", "SHORT_LOCAL_NAME", "SERVICE_UUID_16BIT_COMPLETE",
                               "SERVICE_UUID_128BIT_COMPLETE", "MANUFACTURER_SPECIFIC_DATA"),
    "ContentType": (),
}  # fmt: skip
# Enums the tables do not list at all: (name, owner API that brought them, values).
_EXTRA_ENUMS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (
        "SystemSleepWakeupReason",
        "SystemSleepConfiguration",
        ("UNKNOWN", "BY_GPIO", "BY_ADC", "BY_DAC", "BY_RTC", "BY_LPCOMP", "BY_USART", "BY_CAN", "BY_NFC", "BY_BLE",
         "BY_NETWORK"),
    ),
)  # fmt: skip
# Members the tables do not list for classes that are commonly used (documented in the reference).
_CLASS_MEMBERS: dict[str, tuple[str, ...]] = {
    "Ledger": ("get", "set", "name", "scope", "isValid", "lastUpdated", "lastSynced", "dataSize", "onSync"),
    "SystemSleepConfiguration": ("mode",),
    "SystemSleepResult": ("wakeupReason",),
}
# Mesh: Gen 3 only, from the 0.8.0 mesh prereleases until its removal in 2.0.0 (not in the tables).
_MESH_MEMBERS = ("on", "off", "connect", "disconnect", "connecting", "ready", "listen", "listening", "publish",
                 "subscribe", "localIP", "setCredentials", "clearCredentials", "hasCredentials")  # fmt: skip
_MESH_FROM = DeviceOSVersion(0, 8, 0)
_MESH_UNTIL = DeviceOSVersion(2, 0, 0)


@dataclass(frozen=True)
class _Platform:
    """The capabilities the gates above ask about, for one platform id."""

    id: int
    wifi: bool
    cellular: bool
    ble: bool
    gen2: bool
    mcu: str
    mesh: bool

    def has(self, need: str | None, version: DeviceOSVersion) -> bool:
        if need is None:
            return True
        checks = {
            "wifi": self.wifi,
            "cellular": self.cellular,
            "ble": self.ble,
            "gen2": self.gen2,
            "not-gen2": not self.gen2,
            "electron": self.id == 10,
            "rtl": self.mcu == "rtl872x",
            "nrf": self.mcu == "nrf52840",
            "mesh": self.mesh and _MESH_FROM <= version.base < _MESH_UNTIL,
        }
        return checks[need]


def _platform(platform_id: int) -> _Platform:
    from fieldsafe import platforms

    p = platforms.get(platform_id)
    row = next((r for r in read_tsv("platforms.tsv") if r["platform_id"] == str(platform_id)), {})
    features = set((row.get("device_constants_features") or "").split(","))
    return _Platform(p.id, p.wifi, p.cellular, "ble" in features, p.gen2, p.mcu, "mesh" in features)


@dataclass
class _Class:
    """A class to emit: its member names (variadic templates) and its enum/constant members."""

    name: str
    members: set[str] = field(default_factory=set)
    constants: set[str] = field(default_factory=set)
    nested_enums: dict[str, set[str]] = field(default_factory=dict)


@dataclass
class HeaderPlan:
    """What one (release, platform) declares; built from the tables, then rendered to C++."""

    release: DeviceOSVersion
    platform_id: int
    classes: dict[str, _Class] = field(default_factory=dict)
    enums: dict[str, set[str]] = field(default_factory=dict)
    objects: dict[str, str] = field(default_factory=dict)
    constants: set[str] = field(default_factory=set)
    functions: set[str] = field(default_factory=set)
    macros: set[str] = field(default_factory=set)
    types: set[str] = field(default_factory=set)
    arduino_only: set[str] = field(default_factory=set)
    chrono_deleted: set[str] = field(default_factory=set)
    posix_fs: bool = False
    chrono_literals: bool = False

    def member_names(self) -> set[str]:
        names: set[str] = set()
        for cls in self.classes.values():
            names |= cls.members
        return names


def _available(av: Availability, version: DeviceOSVersion, pf: _Platform) -> bool:
    return av.available_in(version, pf.id) and av.allowed_on(pf.id)


def plan(release: str | DeviceOSVersion, platform_id: int) -> HeaderPlan:
    """Decide, from the tables, every name the stub headers declare for ``release`` on ``platform_id``."""
    version = DeviceOSVersion.parse(release)
    pf = _platform(platform_id)
    hp = HeaderPlan(version, platform_id)
    apis = apidata.all_apis()
    present = {k: av for k, av in apis.items() if _available(av, version, pf)}

    def cls(name: str) -> _Class:
        return hp.classes.setdefault(name, _Class(name))

    for key, av in present.items():
        kind = av.kind
        if kind in _SKIP_KINDS or " " in key:
            continue
        if "::" in key:
            owner, _, member = key.rpartition("::")
            _add_scoped(hp, apis, owner, member, kind, cls)
        elif "." in key:
            obj, _, member = key.partition(".")
            klass = OBJECT_CLASSES.get(obj)
            if klass is None or not _object_ok(obj, apis, version, pf):
                continue
            hp.objects[obj] = klass
            cls(klass).members.add(member)
        elif kind == "object":
            obj_class = OBJECT_CLASSES.get(key)
            if obj_class and _object_ok(key, apis, version, pf):
                hp.objects[key] = obj_class
                cls(obj_class)
        elif kind in ("class",):
            cls(key)
        elif kind == "enum":
            hp.enums.setdefault(key, set())
        elif kind == "type":
            hp.types.add(key)
        elif kind == "constant":
            hp.constants.add(key)
        elif kind == "macro":
            hp.macros.add(key)
        elif kind == "function":
            if key in _POSIX_FS:
                hp.posix_fs = True
            elif key not in _LIBC and key not in _REAL_FUNCTIONS:
                hp.functions.add(key)
        if 'requires #include "Arduino.h"' in av.note:
            hp.arduino_only.add(key)
    _add_extras(hp, apis, version, pf, cls)
    _widen_class_members(hp)
    _add_chrono_overloads(hp, version, pf)
    chrono = apis.get("std::chrono literals")
    hp.chrono_literals = chrono is not None and _available(chrono, version, pf)
    return hp


def _widen_class_members(hp: HeaderPlan) -> None:
    """Give every non-object class every member name the release has anywhere.

    Why: the tables list members of global objects well, but many classes only partly (``Ledger``
    has no member rows, ``SystemSleepConfiguration::mode`` is missing). Rejecting valid code would
    make the emulator lie the other way, so class members are checked only as "does this release
    have a member of that name at all"; class *existence* and object members stay exact.
    """
    object_classes = set(hp.objects.values())
    names = hp.member_names()
    for extra in _CLASS_MEMBERS.values():
        names |= set(extra)
    for name, c in hp.classes.items():
        if name not in object_classes and name not in ("String", "Stream", "Print"):
            c.members |= names


def _add_scoped(hp: HeaderPlan, apis: dict[str, Availability], owner: str, member: str, kind: str, cls) -> None:
    """``Owner::member``: an enum value, a class constant, a nested enum value or a member function."""
    outer, _, inner = owner.partition("::")
    if inner:  # AssetHash::Type::SHA256
        cls(outer).nested_enums.setdefault(inner, set()).add(member)
        return
    owner_av = apis.get(owner)
    if owner_av is not None and owner_av.kind == "enum":
        hp.enums.setdefault(owner, set()).add(member)
    elif kind == "constant":
        cls(owner).constants.add(member)
    elif owner in OBJECT_CLASSES:
        return
    else:
        cls(owner).members.add(member)


def _object_ok(obj: str, apis: dict[str, Availability], version: DeviceOSVersion, pf: _Platform) -> bool:
    need = _OBJECT_NEEDS.get(obj)
    if need and not pf.has(need, version):
        return False
    av = apis.get(obj)
    if av is not None and av.kind == "object":
        return _available(av, version, pf)
    return True


def _add_extras(hp: HeaderPlan, apis: dict[str, Availability], version: DeviceOSVersion, pf: _Platform, cls) -> None:
    def owner_ok(owner: str | None) -> bool:
        if owner is None:
            return True
        av = apis.get(owner)
        return av is not None and _available(av, version, pf)

    for extra in _extras():
        if owner_ok(extra.owner) and pf.has(extra.needs, version):
            hp.constants.add(extra.name)
    for enum, values in _ENUM_VALUES.items():
        if enum in hp.enums:
            hp.enums[enum] |= set(values)
    for enum, owner, values in _EXTRA_ENUMS:
        if owner_ok(owner):
            hp.enums.setdefault(enum, set()).update(values)
    if pf.has("mesh", version):
        hp.objects["Mesh"] = "MeshClass"
        cls("MeshClass").members.update(_MESH_MEMBERS)


def _add_chrono_overloads(hp: HeaderPlan, version: DeviceOSVersion, pf: _Platform) -> None:
    """std::chrono overloads added after the name existed: mark them deleted before their release."""
    for api in ("Particle.publishVitals", "Particle.keepAlive", "Cellular.setListenTimeout"):
        for ov in apidata.overloads(api):
            if "chrono" in ov.note and not ov.available_in(version, pf.id):
                obj, _, member = api.partition(".")
                klass = OBJECT_CLASSES[obj]
                if klass in hp.classes and member in hp.classes[klass].members:
                    hp.chrono_deleted.add(f"{klass}::{member}")
    for fn in ("delay", "delayMicroseconds"):
        if any("chrono" in ov.note and ov.available_in(version, pf.id) for ov in apidata.overloads(fn)):
            hp.chrono_deleted.add(f"+{fn}")  # "+": the chrono overload exists (declared, not deleted)


# --------------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------------

_FS_ANY = r"""
// fs_any: the value of a Device OS call whose real signature the tables do not record.
// It converts to anything and supports the usual operators, so ordinary code type-checks.
struct fs_any {
    fs_any() {}
    template <class T> fs_any(const T&) {}
    template <class T> operator T() const;
    template <class T> fs_any& operator=(const T&);
    template <class T> fs_any operator[](const T&) const;
    template <class... A> fs_any operator()(A&&...) const;
    fs_any* operator->();
    fs_any operator!() const;
    fs_any operator-() const;
    fs_any operator+() const;
    fs_any operator~() const;
    fs_any operator*() const;
    fs_any& operator++();
    fs_any& operator--();
    fs_any operator++(int);
    fs_any operator--(int);
#define FS_ANY_COMPOUND(op) template <class T> fs_any& operator op(const T&);
    FS_ANY_COMPOUND(+=) FS_ANY_COMPOUND(-=) FS_ANY_COMPOUND(*=) FS_ANY_COMPOUND(/=) FS_ANY_COMPOUND(%=)
    FS_ANY_COMPOUND(|=) FS_ANY_COMPOUND(&=) FS_ANY_COMPOUND(^=) FS_ANY_COMPOUND(<<=) FS_ANY_COMPOUND(>>=)
#undef FS_ANY_COMPOUND
@MEMBERS@
};
template <class T> struct fs_is_any : std::is_same<typename std::decay<T>::type, fs_any> {};
#define FS_ANY_BINOP(op) \
    template <class T> fs_any operator op(const fs_any&, const T&); \
    template <class T, class = typename std::enable_if<!fs_is_any<T>::value>::type> \
    fs_any operator op(const T&, const fs_any&);
FS_ANY_BINOP(+) FS_ANY_BINOP(-) FS_ANY_BINOP(*) FS_ANY_BINOP(/) FS_ANY_BINOP(%)
FS_ANY_BINOP(==) FS_ANY_BINOP(!=) FS_ANY_BINOP(<) FS_ANY_BINOP(>) FS_ANY_BINOP(<=) FS_ANY_BINOP(>=)
FS_ANY_BINOP(&&) FS_ANY_BINOP(||) FS_ANY_BINOP(&) FS_ANY_BINOP(|) FS_ANY_BINOP(^) FS_ANY_BINOP(<<) FS_ANY_BINOP(>>)
#undef FS_ANY_BINOP
"""

_STRING = r"""
class String;
class __FlashStringHelper;
template <class T> struct fs_is_string : std::is_same<typename std::decay<T>::type, String> {};
class String {
public:
    String();
    String(const char* cstr);
    String(const String& str);
    String(String&& str);
    String(const __FlashStringHelper* str);
    explicit String(char c);
    explicit String(unsigned char value, unsigned char base = 10);
    explicit String(int value, unsigned char base = 10);
    explicit String(unsigned int value, unsigned char base = 10);
    explicit String(long value, unsigned char base = 10);
    explicit String(unsigned long value, unsigned char base = 10);
    explicit String(long long value, unsigned char base = 10);
    explicit String(unsigned long long value, unsigned char base = 10);
    explicit String(float value, int decimalPlaces = 6);
    explicit String(double value, int decimalPlaces = 6);
    String(const fs_any& value);
    ~String();
    String& operator=(const String& rhs);
    String& operator=(String&& rhs);
    String& operator=(const char* cstr);
    template <class T> String& operator+=(const T& rhs);
    unsigned char reserve(unsigned int size);
    unsigned int length() const;
    const char* c_str() const;
    operator const char*() const;
    template <class T> unsigned char concat(const T& value);
    unsigned char equals(const String& s) const;
    unsigned char equals(const char* cstr) const;
    unsigned char equalsIgnoreCase(const String& s) const;
    int compareTo(const String& s) const;
    unsigned char startsWith(const String& prefix) const;
    unsigned char startsWith(const String& prefix, unsigned int offset) const;
    unsigned char endsWith(const String& suffix) const;
    char charAt(unsigned int index) const;
    void setCharAt(unsigned int index, char c);
    char operator[](unsigned int index) const;
    char& operator[](unsigned int index);
    void getBytes(unsigned char* buf, unsigned int bufsize, unsigned int index = 0) const;
    void toCharArray(char* buf, unsigned int bufsize, unsigned int index = 0) const;
    template <class T> int indexOf(const T& ch) const;
    template <class T> int indexOf(const T& ch, unsigned int fromIndex) const;
    template <class T> int lastIndexOf(const T& ch) const;
    template <class T> int lastIndexOf(const T& ch, unsigned int fromIndex) const;
    String substring(unsigned int beginIndex) const;
    String substring(unsigned int beginIndex, unsigned int endIndex) const;
    template <class A, class B> String& replace(const A& find, const B& replace);
    String& remove(unsigned int index);
    String& remove(unsigned int index, unsigned int count);
    String& toLowerCase();
    String& toUpperCase();
    String& trim();
    long toInt() const;
    float toFloat() const;
@STRING_EXTRA@
};
String operator+(const String& lhs, const String& rhs);
template <class T, class = typename std::enable_if<!fs_is_string<T>::value && !fs_is_any<T>::value>::type>
String operator+(const String& lhs, const T& rhs);
template <class T, class = typename std::enable_if<!fs_is_string<T>::value && !fs_is_any<T>::value>::type>
String operator+(const T& lhs, const String& rhs);
#define FS_STRING_CMP(op) \
    bool operator op(const String&, const String&); \
    bool operator op(const String&, const char*); \
    bool operator op(const char*, const String&);
FS_STRING_CMP(==) FS_STRING_CMP(!=) FS_STRING_CMP(<) FS_STRING_CMP(>) FS_STRING_CMP(<=) FS_STRING_CMP(>=)
#undef FS_STRING_CMP
"""

_PRINT = r"""
class Print;
class Printable {
public:
    virtual ~Printable() {}
    virtual size_t printTo(Print& p) const = 0;
};
class Print {
public:
    virtual ~Print() {}
    virtual size_t write(uint8_t c) = 0;
    virtual size_t write(const uint8_t* buffer, size_t size);
    size_t write(const char* str);
    size_t write(const char* buffer, size_t size);
    template <class T> size_t print(const T& value);
    template <class T> size_t print(const T& value, int baseOrDigits);
    size_t println();
    template <class T> size_t println(const T& value);
    template <class T> size_t println(const T& value, int baseOrDigits);
    int getWriteError();
    void clearWriteError();
@PRINT_EXTRA@
};
class Stream : public Print {
public:
    virtual int available() = 0;
    virtual int read() = 0;
    virtual int peek() = 0;
    virtual void flush() = 0;
    void setTimeout(system_tick_t timeout);
    template <class... A> bool find(A&&... args);
    template <class... A> bool findUntil(A&&... args);
    long parseInt();
    float parseFloat();
    size_t readBytes(char* buffer, size_t length);
    template <class... A> size_t readBytesUntil(A&&... args);
    String readString();
    String readStringUntil(char terminator);
};
"""

_PRELUDE = r"""
#include <stdint.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <time.h>
#include <algorithm>
#include <chrono>
#include <functional>
#include <type_traits>
#include <utility>
using std::min;
using std::max;
typedef uint32_t system_tick_t;
typedef uint16_t pin_t;
typedef bool boolean;
typedef uint8_t byte;
#define retained
#define retained_system
#define PROGMEM
#define PGM_P const char*
#define PSTR(s) (s)
#define pgm_read_byte(addr) (*(const uint8_t*)(addr))
#define pgm_read_word(addr) (*(const uint16_t*)(addr))
#define pgm_read_dword(addr) (*(const uint32_t*)(addr))
#define F(X) (reinterpret_cast<const __FlashStringHelper*>(X))
#define FS_CAT2(a, b) a##b
#define FS_CAT(a, b) FS_CAT2(a, b)
#define PRODUCT_ID(x) static __attribute__((unused)) int FS_CAT(fs_product_id_, __COUNTER__) = (x)
#define PRODUCT_VERSION(x) static __attribute__((unused)) int FS_CAT(fs_product_version_, __COUNTER__) = (x)
#define SYSTEM_MODE(mode) static __attribute__((unused)) int FS_CAT(fs_system_mode_, __COUNTER__) = ((void)(mode), 0)
#define STARTUP(code) static __attribute__((unused)) int FS_CAT(fs_startup_, __COUNTER__) = ([&]() { code; }(), 0)
const int HIGH = 1;
const int LOW = 0;
void setup();
void loop();
"""

_MACRO_DEFS: dict[str, str] = {
    "SYSTEM_THREAD": "#define SYSTEM_THREAD(state) static __attribute__((unused)) int "
    "FS_CAT(fs_system_thread_, __COUNTER__) = ((void)(state), 0)",
    "SINGLE_THREADED_BLOCK": "#define SINGLE_THREADED_BLOCK() for (bool fs_once_ = true; fs_once_; fs_once_ = false)",
    "ATOMIC_BLOCK": "#define ATOMIC_BLOCK() for (bool fs_once_ = true; fs_once_; fs_once_ = false)",
    "WITH_LOCK": "#define WITH_LOCK(lock) for (bool fs_once_ = ((void)(lock), true); fs_once_; fs_once_ = false)",
    "TRY_LOCK": "#define TRY_LOCK(lock) for (bool fs_once_ = ((void)(lock), true); fs_once_; fs_once_ = false)",
    "waitFor": "#define waitFor(condition, timeout) (static_cast<void>((condition)()), static_cast<void>(timeout), true)",
    "waitUntil": "#define waitUntil(condition) (static_cast<void>((condition)()), true)",
    "waitForNot": "#define waitForNot(condition, timeout) (static_cast<void>((condition)()), static_cast<void>(timeout), true)",
    "waitUntilNot": "#define waitUntilNot(condition) (static_cast<void>((condition)()), true)",
}
_PRELUDE_MACROS = {"SYSTEM_MODE", "STARTUP", "PRODUCT_ID", "PRODUCT_VERSION", "retained"}

_REAL_FUNCTION_DECLS = r"""
system_tick_t millis(void);
unsigned long micros(void);
void delay(unsigned long ms);
void delayMicroseconds(unsigned int us);
int32_t digitalRead(pin_t pin);
int32_t analogRead(pin_t pin);
void digitalWrite(pin_t pin, uint8_t value);
void pinMode(pin_t pin, int mode);
int32_t pinReadFast(pin_t pin);
void pinSetFast(pin_t pin);
void pinResetFast(pin_t pin);
void digitalWriteFast(pin_t pin, uint8_t value);
int32_t random(int32_t max);
int32_t random(int32_t min, int32_t max);
void randomSeed(uint32_t seed);
long map(long value, long fromStart, long fromEnd, long toStart, long toEnd);
double map(double value, double fromStart, double fromEnd, double toStart, double toEnd);
template <class T, class L, class H> T constrain(T amt, L low, H high);
"""


def _member_decl(name: str, const: bool = True, static: bool = False) -> str:
    q = " const" if const and not static else ""
    s = "static " if static else ""
    return f"    template <class... A> {s}{ANY} {name}(A&&... args){q};"


def _valid_name(name: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z_]\w*", name)) and name not in _CPP_KEYWORDS


def _render_enum(name: str, values: Iterable[str], indent: str = "") -> str:
    vals = sorted(v for v in values if _valid_name(v))
    body = ", ".join(vals)
    ops = ""
    if not indent:
        ops = (
            f"inline {name} operator|({name} a, {name} b) {{ return {name}(int(a) | int(b)); }}\n"
            f"inline {name} operator&({name} a, {name} b) {{ return {name}(int(a) & int(b)); }}\n"
        )
    return f"{indent}enum class {name} : int {{ {body} }};\n{ops}"


def _render_class(c: _Class, hp: HeaderPlan, is_object_class: bool) -> str:
    lines: list[str] = []
    tmpl = "template <class... FsT> " if c.name in _CLASS_TEMPLATES else ""
    base = " : public Stream" if c.name in _STREAM_CLASSES else ""
    lines.append(f"{tmpl}class {c.name}{base} {{")
    lines.append("public:")
    lines.append(f"    template <class... A> {c.name}(A&&... args);")
    if c.name in _STREAM_CLASSES:
        lines += [
            "    int available() override;",
            "    int read() override;",
            "    int peek() override;",
            "    void flush() override;",
            "    size_t write(uint8_t c) override;",
            "    using Print::write;",
        ]
    if not is_object_class:
        lines += [
            "    explicit operator bool() const;",
            f"    template <class T> {ANY} operator[](const T&) const;",
            "    template <class T> bool operator==(const T&) const;",
            "    template <class T> bool operator!=(const T&) const;",
        ]
    for inner, values in sorted(c.nested_enums.items()):
        lines.append(_render_enum(inner, values, indent="    ").rstrip("\n"))
    for const in sorted(c.constants):
        if _valid_name(const):
            lines.append(f"    static const int {const} = 0;")
    for member in sorted(c.members):
        if not _valid_name(member) or member == c.name:
            continue
        if f"{c.name}::{member}" in hp.chrono_deleted:
            lines.append(
                f"    template <class R, class P, class... A> {ANY} {member}(std::chrono::duration<R, P>, A&&...) const"
                " = delete;"
            )
        lines.append(_member_decl(member, static=not is_object_class and c.name not in _STREAM_CLASSES))
    lines.append("};")
    return "\n".join(lines) + "\n"


def _render_version_macros(version: DeviceOSVersion) -> str:
    lines: list[str] = []
    raw_values = {r["macro"]: r["value"] for r in read_tsv("device-os-data/system-version-macros.tsv")}
    infos = apidata.macros()
    has_fn = version >= apidata.FUNCTION_MACROS_FROM
    if has_fn:
        lines += [
            "#define SYSTEM_VERSION_ALPHA(x, y, z, p) (((x) << 24) | ((y) << 16) | ((z) << 8) | (0x00 + (p)))",
            "#define SYSTEM_VERSION_BETA(x, y, z, p) (((x) << 24) | ((y) << 16) | ((z) << 8) | (0x40 + (p)))",
            "#define SYSTEM_VERSION_RC(x, y, z, p) (((x) << 24) | ((y) << 16) | ((z) << 8) | (0x80 + (p)))",
            "#define SYSTEM_VERSION_DEFAULT(x, y, z) (((x) << 24) | ((y) << 16) | ((z) << 8) | 0xFF)",
        ]
    own: str | None = None
    for name, info in infos.items():
        if info.release_type in ("current-version-macro", "current-version-string", "function-like-macro"):
            continue
        if not info.defined_in(version):
            continue
        value = raw_values.get(name, "")
        if "SYSTEM_VERSION_" in value and not has_fn:
            value = f"0x{info.value:08X}" if info.value is not None else ""
        lines.append(f"#define {name} {value}".rstrip())
        if info.version == version and info.release_type in ("final", "prerelease", "special-build"):
            own = name
    if own is None:
        number = apidata.system_version_value(version)
        if not version.is_prerelease and version.base >= DeviceOSVersion(0, 4, 4):
            own = f"SYSTEM_VERSION_v{version.major}{version.minor}{version.patch}"
            lines.append(f"#define {own} 0x{number:08X}")
        else:
            lines.append(f"#define SYSTEM_VERSION 0x{number:08X}")
    if own is not None:
        lines.append(f"#define SYSTEM_VERSION {own}")
    return "\n".join(lines) + "\n"


def _render_platform_macros(platform_id: int) -> str:
    lines = [f"#define PLATFORM_ID {platform_id}"]
    seen: set[str] = set()
    for row in read_tsv("platforms.tsv"):
        macro = row.get("device_os_platform_macro", "")
        if macro and macro not in seen:
            seen.add(macro)
            lines.append(f"#define {macro} {row['platform_id']}")
    return "\n".join(lines) + "\n"


def _render_particle_h(hp: HeaderPlan) -> str:
    out: list[str] = [
        "// Generated by fieldsafe's emulator: stub Device OS headers (declarations only, no implementation).",
        f"// Device OS {hp.release}, platform {hp.platform_id}. Declares only what this release has.",
        "#pragma once",
        "#ifndef __cplusplus",
        '#error "The fieldsafe emulator\'s Particle.h stubs are C++ only"',
        "#endif",
        _PRELUDE,
        _render_platform_macros(hp.platform_id),
        _render_version_macros(hp.release),
    ]
    if hp.chrono_literals:
        out.append("using namespace std::chrono_literals;\n")
    if hp.posix_fs:
        out.append("#include <fcntl.h>\n#include <unistd.h>\n#include <dirent.h>\n#include <sys/stat.h>\n")
    members = sorted(n for n in hp.member_names() | {"toString"} if _valid_name(n))
    out.append(_FS_ANY.replace("@MEMBERS@", "\n".join(_member_decl(m) for m in members)))
    string_extra = _member_decl("format", static=True) if "String::format" in _present_keys(hp) else ""
    out.append(_STRING.replace("@STRING_EXTRA@", string_extra))
    print_extra = ""
    if {"printf", "printlnf"} & hp.classes.get("USBSerial", _Class("")).members:
        print_extra = _member_decl("printf", const=False) + "\n" + _member_decl("printlnf", const=False)
    out.append(_PRINT.replace("@PRINT_EXTRA@", print_extra))
    out.append(_REAL_FUNCTION_DECLS)
    if "+delay" in hp.chrono_deleted:
        out.append("template <class R, class P> void delay(std::chrono::duration<R, P> d);\n")
    if "+delayMicroseconds" in hp.chrono_deleted:
        out.append("template <class R, class P> void delayMicroseconds(std::chrono::duration<R, P> d);\n")
    for t in sorted(hp.types - {"boolean", "byte"}):
        if t in hp.arduino_only:
            continue
        out.append(
            f"typedef {_TYPEDEFS[t]} {t};\n"
            if t in _TYPEDEFS
            else f"struct {t} {{ template <class... A> {t}(A&&...); }};\n"
        )
    for i, c in enumerate(sorted(hp.constants - hp.arduino_only - {"HIGH", "LOW"})):
        if _valid_name(c):
            out.append(f"const int {c} = {1000 + i};")
    out.append("")
    for name, values in sorted(hp.enums.items()):
        out.append(_render_enum(name, values))
    object_classes = set(hp.objects.values())
    for name in sorted(hp.classes):
        if name in ("String", "Stream", "Print", "Printable", "__FlashStringHelper") or name in hp.arduino_only:
            continue
        out.append(_render_class(hp.classes[name], hp, name in object_classes))
    for obj, klass in sorted(hp.objects.items()):
        const = "const " if obj in _CONST_OBJECTS else ""
        out.append(f"extern {const}{klass} {obj};")
    out.append("")
    for fn in sorted(hp.functions - hp.arduino_only):
        if _valid_name(fn):
            out.append(f"template <class... A> {ANY} {fn}(A&&... args);")
    for macro in sorted(hp.macros):
        if macro in _MACRO_DEFS:
            out.append(_MACRO_DEFS[macro])
        elif macro not in _PRELUDE_MACROS and macro not in hp.arduino_only:
            out.append(f"#define {macro}(...) {ANY}()")
    return "\n".join(out) + "\n"


def _present_keys(hp: HeaderPlan) -> set[str]:
    pf = _platform(hp.platform_id)
    return {k for k, av in apidata.all_apis().items() if _available(av, hp.release, pf)}


def _render_arduino_h(hp: HeaderPlan) -> str:
    lines = [
        "// Generated by fieldsafe's emulator: Arduino compatibility layer.",
        "#pragma once",
        '#include "Particle.h"',
    ]
    for name in sorted(hp.arduino_only):
        if name == "__FlashStringHelper":
            lines.append("class __FlashStringHelper;")
        elif name == "LED_BUILTIN":
            lines.append("const int LED_BUILTIN = D7;")
        elif name in hp.functions:
            lines.append(f"template <class... A> {ANY} {name}(A&&... args);")
        elif name in hp.constants:
            lines.append(f"const int {name} = 0;")
        elif name in hp.classes:
            lines.append(f"class {name} {{ public: template <class... A> {name}(A&&...); }};")
        elif name in hp.types:
            lines.append(f"typedef {_TYPEDEFS.get(name, 'int')} {name};")
        elif name in hp.macros:
            lines.append(f"#define {name}(...) {ANY}()")
    return "\n".join(lines) + "\n"


def generate_headers(release: str | DeviceOSVersion, platform_id: int) -> dict[str, str]:
    """The stub header files (name -> text) for ``release`` on ``platform_id``; pure, no disk access."""
    hp = plan(release, platform_id)
    particle = _render_particle_h(hp)
    alias = '// Generated by fieldsafe\'s emulator.\n#pragma once\n#include "Particle.h"\n'
    return {
        "Particle.h": particle,
        "application.h": alias,
        "spark_wiring.h": alias,
        "Arduino.h": _render_arduino_h(hp),
    }


@cache
def _tables_digest() -> str:
    h = hashlib.sha256(GENERATOR_VERSION.encode())
    for name in ("api-since.tsv", "api-baseline.tsv", "api-overloads.tsv", "system-version-macros.tsv"):
        h.update(read_text(f"device-os-data/{name}").encode())
    h.update(read_text("platforms.tsv").encode())
    h.update(Path(__file__).read_bytes())
    return h.hexdigest()[:16]


def default_cache_root() -> Path:
    """``$FIELDSAFE_CACHE_DIR`` or the per-user cache dir (platformdirs), plus ``emulator-headers``."""
    env = os.environ.get("FIELDSAFE_CACHE_DIR")
    if env:
        return Path(env) / "emulator-headers"
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("fieldsafe")) / "emulator-headers"


def header_dir(release: str | DeviceOSVersion, platform_id: int, cache_root: Path | None = None) -> Path:
    """A directory holding the stub headers for (release, platform), generated once and cached.

    Written to a temporary sibling and renamed into place, so concurrent callers never see a
    half-written directory (the loser of a race just discards its copy).
    """
    version = DeviceOSVersion.parse(release)
    root = cache_root or default_cache_root()
    target = root / f"{version}-p{platform_id}-{_tables_digest()}"
    if (target / "Particle.h").is_file():
        return target
    root.mkdir(parents=True, exist_ok=True)
    files = generate_headers(version, platform_id)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root))
    for name, text in files.items():
        (tmp / name).write_text(text, encoding="utf-8")
    try:
        os.rename(tmp, target)
    except OSError:
        for child in tmp.iterdir():
            child.unlink()
        tmp.rmdir()
    return target
