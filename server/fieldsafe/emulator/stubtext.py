"""Hand-written C++ for the emulator's stub Device OS headers: the parts the symbol index cannot give.

The index (:mod:`fieldsafe.symbols`) records names, kinds, scopes and arities, not signatures or
macro bodies. So a few things are written here by hand, each because real code depends on it:

* ``fs_any``: the permissive value every Device OS call of unknown signature returns; it converts
  to anything, takes any operator, has every member name the release declares, and accepts braced
  lists (``SerialLogHandler h(LOG_LEVEL_WARN, {{"app", LOG_LEVEL_ALL}})``).
* ``String``, ``Print``, ``Printable``, ``Stream`` with their real signatures: user classes derive
  from them and override ``write``/``printTo``; overload resolution on them must match the device.
* the macro bodies Device OS really has (``SYSTEM_MODE`` declares a ``SystemClass``, ``SYSTEM_THREAD``
  is a ``STARTUP`` of ``system_thread_set_state``, ``WITH_LOCK`` is a ``std::unique_lock`` loop whose
  variable name is token-pasted, ``LOG(INFO, ...)`` pastes ``LOG_LEVEL_INFO``, ``CHECK`` returns
  negative results, ``SCOPE_GUARD`` makes a lambda ...). Each is used only when the index says the
  release defines that macro.
* the typedefs whose real type matters to code (``system_event_t`` is switched on, ``pin_t`` is
  stored in ``uint16_t`` arrays, ``os_thread_return_t`` is ``void``).
"""

from __future__ import annotations

FS_CORE = r"""
template <bool B, class T = void> struct fs_enable_if {};
template <class T> struct fs_enable_if<true, T> { typedef T type; };
template <class A, class B> struct fs_same { static const bool value = false; };
template <class A> struct fs_same<A, A> { static const bool value = true; };
// the argument count of a Device OS call must be in the index's arity range for that name
template <bool Ok> struct fs_arity_matches_device_os {};
template <> struct fs_arity_matches_device_os<true> { typedef int type; };
template <class T> struct fs_decay { typedef T type; };
template <class T> struct fs_decay<T&> { typedef T type; };
template <class T> struct fs_decay<T&&> { typedef T type; };
template <class T> struct fs_decay<const T> { typedef T type; };
template <class T> struct fs_decay<const T&> { typedef T type; };
namespace std { namespace chrono { template <typename _Rep, typename _Period> struct duration; } }
// fs_any: the value of a Device OS call whose real signature the symbol index does not record.
// It converts to anything and supports the usual operators, so ordinary code type-checks.
struct fs_any {
    fs_any() {}
    template <class T> fs_any(const T&) {}
    template <class A, class B, class... C> fs_any(const A&, const B&, const C&...) {}
    fs_any(std::initializer_list<fs_any>) {}
    // one conversion, to a reference: it serves values, references and pointers without ambiguity
    template <class T> operator T&() const { return *(T*)this; }
    template <class T> fs_any& operator=(const T&) { return *this; }
    template <class T> fs_any& operator[](const T&) const { return *(fs_any*)this; }
    template <class... A> fs_any operator()(A&&...) const { return fs_any(); }
    fs_any* operator->() const { return (fs_any*)this; }
    fs_any operator!() const { return fs_any(); }
    fs_any operator-() const { return fs_any(); }
    fs_any operator+() const { return fs_any(); }
    fs_any operator~() const { return fs_any(); }
    fs_any& operator*() const { return *(fs_any*)this; }
    fs_any& operator++() { return *this; }
    fs_any& operator--() { return *this; }
    fs_any operator++(int) { return *this; }
    fs_any operator--(int) { return *this; }
#define FS_ANY_COMPOUND(op) template <class T> fs_any& operator op(const T&) { return *this; }
    FS_ANY_COMPOUND(+=) FS_ANY_COMPOUND(-=) FS_ANY_COMPOUND(*=) FS_ANY_COMPOUND(/=) FS_ANY_COMPOUND(%=)
    FS_ANY_COMPOUND(|=) FS_ANY_COMPOUND(&=) FS_ANY_COMPOUND(^=) FS_ANY_COMPOUND(<<=) FS_ANY_COMPOUND(>>=)
#undef FS_ANY_COMPOUND
@MEMBERS@
};
// fs_any and the permissive types derived from it (typedefs whose real type is not recorded)
template <class T> struct fs_is_any { static const bool value = __is_base_of(fs_any, typename fs_decay<T>::type); };
#define FS_ANY_BINOP(op) \
    template <class T> fs_any operator op(const fs_any&, const T&) { return fs_any(); } \
    template <class T, class = typename fs_enable_if<!fs_is_any<T>::value>::type> \
    fs_any operator op(const T&, const fs_any&) { return fs_any(); }
FS_ANY_BINOP(+) FS_ANY_BINOP(-) FS_ANY_BINOP(*) FS_ANY_BINOP(/) FS_ANY_BINOP(%)
FS_ANY_BINOP(==) FS_ANY_BINOP(!=) FS_ANY_BINOP(<) FS_ANY_BINOP(>) FS_ANY_BINOP(<=) FS_ANY_BINOP(>=)
FS_ANY_BINOP(&&) FS_ANY_BINOP(||) FS_ANY_BINOP(&) FS_ANY_BINOP(|) FS_ANY_BINOP(^) FS_ANY_BINOP(<<) FS_ANY_BINOP(>>)
#undef FS_ANY_BINOP
#define FS_CAT2(a, b) a##b
#define FS_CAT(a, b) FS_CAT2(a, b)
"""

# Members hand-written below; the index's other members of these classes are added as templates.
CORE_CLASSES = ("String", "Print", "Printable", "Stream", "__FlashStringHelper")

STRING = r"""
class String;
class __FlashStringHelper;
class Printable;
template <class T> struct fs_is_string { static const bool value = fs_same<typename fs_decay<T>::type, String>::value; };
class String {
public:
    String();
    String(const char* cstr);
    String(const char* cstr, unsigned int length);
    String(const String& str);
    String(String&& str);
    String(const __FlashStringHelper* str);
    String(const Printable& printable);
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
    String& operator=(const fs_any& value);
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
@EXTRA@
};
String operator+(const String& lhs, const String& rhs);
template <class T, class = typename fs_enable_if<!fs_is_string<T>::value && !fs_is_any<T>::value>::type>
String operator+(const String& lhs, const T& rhs);
template <class T, class = typename fs_enable_if<!fs_is_string<T>::value && !fs_is_any<T>::value>::type>
String operator+(const T& lhs, const String& rhs);
#define FS_STRING_CMP(op) \
    bool operator op(const String&, const String&); \
    bool operator op(const String&, const char*); \
    bool operator op(const char*, const String&);
FS_STRING_CMP(==) FS_STRING_CMP(!=) FS_STRING_CMP(<) FS_STRING_CMP(>) FS_STRING_CMP(<=) FS_STRING_CMP(>=)
#undef FS_STRING_CMP
"""

PRINT = r"""
class Print;
class Printable {
public:
    virtual ~Printable() {}
    virtual size_t printTo(Print& p) const;
@EXTRA_PRINTABLE@
};
class Print {
public:
    virtual ~Print() {}
    virtual size_t write(uint8_t c);
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
@EXTRA_PRINT@
};
class Stream : public Print {
public:
    virtual int available();
    virtual int read();
    virtual int peek();
    virtual void flush();
    void setTimeout(system_tick_t timeout);
    template <class... A> bool find(A&&... args);
    template <class... A> bool findUntil(A&&... args);
    long parseInt();
    float parseFloat();
    size_t readBytes(char* buffer, size_t length);
    template <class... A> size_t readBytesUntil(A&&... args);
    String readString();
    String readStringUntil(char terminator);
@EXTRA_STREAM@
};
"""

HAND_MEMBERS = {
    "String": {
        "reserve", "length", "c_str", "concat", "equals", "equalsIgnoreCase", "compareTo", "startsWith", "endsWith",
        "charAt", "setCharAt", "getBytes", "toCharArray", "indexOf", "lastIndexOf", "substring", "replace", "remove",
        "toLowerCase", "toUpperCase", "trim", "toInt", "toFloat", "String",
    },
    "Print": {"write", "print", "println", "getWriteError", "clearWriteError"},
    "Printable": {"printTo"},
    "Stream": {
        "available", "read", "peek", "flush", "setTimeout", "find", "findUntil", "parseInt", "parseFloat",
        "readBytes", "readBytesUntil", "readString", "readStringUntil",
    },
}  # fmt: skip

# Typedefs whose real type matters to ordinary code (switch, arithmetic, arrays, return type void).
REAL_TYPEDEFS: dict[str, str] = {
    "system_tick_t": "uint32_t",
    "pin_t": "uint16_t",
    "system_event_t": "uint64_t",
    "os_mutex_t": "void*",
    "os_mutex_recursive_t": "void*",
    "os_thread_t": "void*",
    "os_queue_t": "void*",
    "os_semaphore_t": "void*",
    "os_timer_t": "void*",
    "os_thread_return_t": "void",
    "os_thread_fn_t": "void (*)(void*)",
    "os_thread_prio_t": "uint8_t",
    "cellular_result_t": "int",
    "byte": "uint8_t",
    "word": "uint16_t",
    "boolean": "bool",
    "wiring_interrupt_handler_t": "void (*)(void)",
    "raw_interrupt_handler_t": "void (*)(void)",
    "hal_pin_t": "uint16_t",
    "user_std_function_int_str_t": "std::function<int(String)>",
}

# Functions with real signatures (the index has their names; these shapes are the documented ones).
REAL_FUNCTIONS: dict[str, str] = {
    "millis": "system_tick_t millis(void);",
    "micros": "unsigned long micros(void);",
    "delay": "void delay(unsigned long ms);",
    "delayMicroseconds": "void delayMicroseconds(unsigned int us);",
    "digitalRead": "int32_t digitalRead(pin_t pin);",
    "analogRead": "int32_t analogRead(pin_t pin);",
    "digitalWrite": "void digitalWrite(pin_t pin, uint8_t value);",
    "pinMode": "void pinMode(pin_t pin, int mode);",
    "pinReadFast": "int32_t pinReadFast(pin_t pin);",
    "pinSetFast": "void pinSetFast(pin_t pin);",
    "pinResetFast": "void pinResetFast(pin_t pin);",
    "digitalWriteFast": "void digitalWriteFast(pin_t pin, uint8_t value);",
    "random": "int32_t random(int32_t max);\nint32_t random(int32_t min, int32_t max);",
    "randomSeed": "void randomSeed(uint32_t seed);",
    "map": "long map(long value, long fromStart, long fromEnd, long toStart, long toEnd);\n"
    "double map(double value, double fromStart, double fromEnd, double toStart, double toEnd);",
    "constrain": "template <class T, class L, class H> T constrain(T amt, L low, H high);",
    "min": "template <class T, class U> auto min(T a, U b) -> decltype((a < b) ? a : b);",
    "max": "template <class T, class U> auto max(T a, U b) -> decltype((a > b) ? a : b);",
}

# Virtual members user code overrides (`void update(system_tick_t) override`): real signatures.
VIRTUALS: dict[str, tuple[str, ...]] = {
    "particle::LEDStatus": ("virtual void update(system_tick_t ticks);",),
    "spark::LogHandler": (
        "virtual void logMessage(const char* msg, LogLevel level, const char* category, const LogAttributes& attr);",
        "virtual void write(const char* data, size_t size);",
    ),
}

# Macro bodies as Device OS defines them (the symbol index says WHEN each exists, not its body).
MACROS: dict[str, str] = {
    "SYSTEM_MODE": "#define SYSTEM_MODE(mode) SystemClass SystemMode(mode);",
    "SYSTEM_THREAD": "#define SYSTEM_THREAD(state) STARTUP(system_thread_set_state(spark::feature::state, NULL));",
    "STARTUP": "#define STARTUP(code) namespace { struct FS_CAT(fs_startup_, __LINE__) { "
    "FS_CAT(fs_startup_, __LINE__)() { code; } } FS_CAT(fs_startup_instance_, __LINE__); }",
    "PRODUCT_ID": "#define PRODUCT_ID(x) __attribute__((unused)) static const uint16_t FS_CAT(fs_product_id_, __LINE__) = (x)",
    "PRODUCT_VERSION": "#define PRODUCT_VERSION(x) __attribute__((unused)) static const uint16_t "
    "FS_CAT(fs_product_version_, __LINE__) = (x)",
    "SINGLE_THREADED_BLOCK": "#define SINGLE_THREADED_BLOCK() for (bool fs_once_ = true; fs_once_; fs_once_ = false)",
    "SINGLE_THREADED_SECTION": "#define SINGLE_THREADED_SECTION() for (bool fs_once_ = true; fs_once_; fs_once_ = false)",
    "ATOMIC_BLOCK": "#define ATOMIC_BLOCK() for (bool fs_once_ = true; fs_once_; fs_once_ = false)",
    "WITH_LOCK": "#define WITH_LOCK(lock) for (std::unique_lock<typeof(lock)> __lock##lock((lock)); "
    "__lock##lock; __lock##lock.unlock())",
    "TRY_LOCK": "#define TRY_LOCK(lock) for (std::unique_lock<typeof(lock)> __lock##lock((lock), std::try_to_lock); "
    "__lock##lock.owns_lock(); __lock##lock.unlock())",
    "waitFor": "#define waitFor(condition, timeout) (static_cast<void>((condition)()), static_cast<void>(timeout), true)",
    "waitUntil": "#define waitUntil(condition) (static_cast<void>((condition)()), true)",
    "waitForNot": "#define waitForNot(condition, timeout) (static_cast<void>((condition)()), "
    "static_cast<void>(timeout), true)",
    "waitUntilNot": "#define waitUntilNot(condition) (static_cast<void>((condition)()), true)",
    "F": "#define F(X) (reinterpret_cast<const __FlashStringHelper*>(X))",
    "PSTR": "#define PSTR(s) (s)",
    "pgm_read_byte": "#define pgm_read_byte(addr) (*(const uint8_t*)(addr))",
    "pgm_read_byte_near": "#define pgm_read_byte_near(addr) (*(const uint8_t*)(addr))",
    "pgm_read_word": "#define pgm_read_word(addr) (*(const uint16_t*)(addr))",
    "pgm_read_word_near": "#define pgm_read_word_near(addr) (*(const uint16_t*)(addr))",
    "arraySize": "#define arraySize(a) (sizeof((a)) / sizeof((a)[0]))",
    "UNUSED": "#define UNUSED(x) (void)(x)",
    "CCASSERT": "#define CCASSERT(predicate) static_assert(predicate, #predicate)",
    "STATIC_ASSERT": "#define STATIC_ASSERT(name, condition) static_assert(condition, #name)",
    "STATIC_ASSERT_EXPR": "#define STATIC_ASSERT_EXPR(name, condition) static_assert(condition, #name)",
    "PARTICLE_STATIC_ASSERT": "#define PARTICLE_STATIC_ASSERT(name, condition) static_assert(condition, #name)",
    "PP_CAT": "#define PP_CAT(a, b) FS_CAT(a, b)",
    "PP_STR": "#define PP_STR(a) FS_STR2(a)\n#define FS_STR2(a) #a",
    "CAT": "#define CAT(a, b) FS_CAT(a, b)",
    "ENABLE_ENUM_CLASS_BITWISE": "#define ENABLE_ENUM_CLASS_BITWISE(T) \\\n"
    "    inline T operator|(T a, T b) { return (T)((int)a | (int)b); } \\\n"
    "    inline T operator&(T a, T b) { return (T)((int)a & (int)b); } \\\n"
    "    inline T operator^(T a, T b) { return (T)((int)a ^ (int)b); } \\\n"
    "    inline T operator~(T a) { return (T)(~(int)a); } \\\n"
    "    inline T& operator|=(T& a, T b) { return a = a | b; } \\\n"
    "    inline T& operator&=(T& a, T b) { return a = a & b; } \\\n"
    "    inline T& operator^=(T& a, T b) { return a = a ^ b; }",
    # logging.h (0.6.0+): LOG(INFO, ...) pastes LOG_LEVEL_INFO; the format is checked like printf
    "LOG": "#define LOG(_level, _fmt, ...) LOG_C(_level, LOG_THIS_CATEGORY(), _fmt, ##__VA_ARGS__)",
    "LOG_C": "#define LOG_C(_level, _category, _fmt, ...) do { fs_log_message(LOG_LEVEL_##_level, _category, "
    "_fmt, ##__VA_ARGS__); } while (false)",
    "LOG_ATTR": "#define LOG_ATTR(_level, _attrs, _fmt, ...) LOG(_level, _fmt, ##__VA_ARGS__)",
    "LOG_ATTR_C": "#define LOG_ATTR_C(_level, _category, _attrs, _fmt, ...) LOG_C(_level, _category, _fmt, "
    "##__VA_ARGS__)",
    "LOG_WRITE": "#define LOG_WRITE(_level, _str, _size) fs_log_write(LOG_LEVEL_##_level, _str, _size)",
    "LOG_WRITE_C": "#define LOG_WRITE_C(_level, _category, _str, _size) fs_log_write(LOG_LEVEL_##_level, _str, _size)",
    "LOG_PRINT": "#define LOG_PRINT(_level, _str) fs_log_write(LOG_LEVEL_##_level, _str, 0)",
    "LOG_PRINT_C": "#define LOG_PRINT_C(_level, _category, _str) fs_log_write(LOG_LEVEL_##_level, _str, 0)",
    "LOG_PRINTF": "#define LOG_PRINTF(_level, _fmt, ...) fs_log_printf(LOG_LEVEL_##_level, _fmt, ##__VA_ARGS__)",
    "LOG_PRINTF_C": "#define LOG_PRINTF_C(_level, _category, _fmt, ...) fs_log_printf(LOG_LEVEL_##_level, _fmt, "
    "##__VA_ARGS__)",
    "LOG_DUMP": "#define LOG_DUMP(_level, _data, _size) fs_log_write(LOG_LEVEL_##_level, _data, _size)",
    "LOG_DUMP_C": "#define LOG_DUMP_C(_level, _category, _data, _size) fs_log_write(LOG_LEVEL_##_level, _data, _size)",
    "LOG_ENABLED": "#define LOG_ENABLED(_level) (LOG_LEVEL_##_level >= 0)",
    "LOG_ENABLED_C": "#define LOG_ENABLED_C(_level, _category) (LOG_LEVEL_##_level >= 0)",
    "LOG_THIS_CATEGORY": "#define LOG_THIS_CATEGORY() ((const char*)0)",
    "LOG_SOURCE_CATEGORY": "#define LOG_SOURCE_CATEGORY(_name) __attribute__((unused)) static const char* const "
    "FS_CAT(fs_log_source_category_, __LINE__) = (_name);",
    "LOG_CATEGORY": "#define LOG_CATEGORY(_name) __attribute__((unused)) static const char* const "
    "FS_CAT(fs_log_category_, __LINE__) = (_name)",
    # debug builds only (DEBUG_BUILD is never set for application builds): the arguments vanish
    **{
        name: f"#define {name}({args}, ...)"
        for name, args in (
            ("LOG_DEBUG", "_level, _fmt"),
            ("LOG_DEBUG_C", "_level, _category, _fmt"),
            ("LOG_DEBUG_ATTR", "_level, _attrs, _fmt"),
            ("LOG_DEBUG_ATTR_C", "_level, _category, _attrs, _fmt"),
            ("LOG_DEBUG_PRINTF", "_level, _fmt"),
            ("LOG_DEBUG_PRINTF_C", "_level, _category, _fmt"),
        )
    },
    "LOG_DEBUG_PRINT": "#define LOG_DEBUG_PRINT(_level, _str)",
    "LOG_DEBUG_PRINT_C": "#define LOG_DEBUG_PRINT_C(_level, _category, _str)",
    "LOG_DEBUG_WRITE": "#define LOG_DEBUG_WRITE(_level, _str, _size)",
    "LOG_DEBUG_WRITE_C": "#define LOG_DEBUG_WRITE_C(_level, _category, _str, _size)",
    "LOG_DEBUG_DUMP": "#define LOG_DEBUG_DUMP(_level, _data, _size)",
    "LOG_DEBUG_DUMP_C": "#define LOG_DEBUG_DUMP_C(_level, _category, _data, _size)",
    # check.h: negative results return from the enclosing function
    "CHECK": "#define CHECK(_expr) ({ const auto _ret = _expr; if (_ret < 0) { return _ret; } _ret; })",
    "CHECK_RETURN": "#define CHECK_RETURN(_expr, _val) ({ const auto _ret = _expr; if (_ret < 0) { return _val; } "
    "_ret; })",
    "CHECK_TRUE": "#define CHECK_TRUE(_expr, _ret) do { const bool _ok = (bool)(_expr); if (!_ok) { return _ret; } "
    "} while (false)",
    "CHECK_FALSE": "#define CHECK_FALSE(_expr, _ret) CHECK_TRUE(!(_expr), _ret)",
    "CHECK_TRUE_RETURN": "#define CHECK_TRUE_RETURN(_expr, _val) do { const bool _ok = (bool)(_expr); "
    "if (!_ok) { return _val; } } while (false)",
    # scope_guard.h
    "SCOPE_GUARD": "#define SCOPE_GUARD(_func) NAMED_SCOPE_GUARD(FS_CAT(_scope_guard_, __COUNTER__), _func)",
    "NAMED_SCOPE_GUARD": "#define NAMED_SCOPE_GUARD(_name, _func) auto _name = ::particle::makeScopeGuard([&]() _func)",
}

# Helpers the macro bodies above call; emitted when LOG/LOG_WRITE... are.
LOG_HELPERS = r"""
void fs_log_message(int level, const char* category, const char* fmt, ...) __attribute__((format(printf, 3, 4)));
void fs_log_printf(int level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
void fs_log_write(int level, const void* data, size_t size);
"""

SCOPE_GUARD_HELPERS = r"""
namespace particle {
template <typename F> class FsScopeGuard {
public:
    FsScopeGuard(F&& f) : f_(static_cast<F&&>(f)) {}
    ~FsScopeGuard() {}
    void dismiss() {}
private:
    F f_;
};
template <typename F> FsScopeGuard<F> makeScopeGuard(F&& f) { return FsScopeGuard<F>(static_cast<F&&>(f)); }
}
"""

# Object-like macros whose expansion is not an integer.
MACRO_OBJECTS: dict[str, str] = {
    "retained": '__attribute__((section(".retained_user")))',
    "retained_system": '__attribute__((section(".retained_system")))',
    "PROGMEM": "",
    "PGM_P": "const char*",
    "memcpy_P": "memcpy",
    "sprintf_P": "sprintf",
    "strcmp_P": "strcmp",
    "strcpy_P": "strcpy",
    "strlcpy_P": "strlcpy",
    "strlen_P": "strlen",
    "vsnprintf_P": "vsnprintf",
    "SerialUSB": "Serial",
    "FALSE": "0",
    "TRUE": "1",
    "LOG_COMPILE_TIME_LEVEL": "LOG_LEVEL_ALL",
}
# Index names that are the compiler's or the C library's own macros: never redefine them.
SKIP_MACROS = frozenset({"true", "false", "isnan", "isinf", "bool", "__cplusplus"})

# Build flags (-D of the application build) and the value they have there.
BUILD_FLAG_VALUES: dict[str, str] = {
    "LOG_MODULE_CATEGORY": '"app"',
    "PLATFORM_THREADING": "1",
    "SPARK": "1",
    "PARTICLE": "1",
    "RELEASE_BUILD": "1",
}

# newlib's <sys/dirent.h> is an #error stub; Device OS supplies its own on file-system platforms.
DIRENT_H = r"""
// Generated by fieldsafe's emulator: Device OS's <sys/dirent.h> (file-system platforms).
#pragma once
#include <sys/types.h>
#ifdef __cplusplus
extern "C" {
#endif
#define DT_UNKNOWN 0
#define DT_REG 1
#define DT_DIR 2
struct dirent { ino_t d_ino; unsigned char d_type; char d_name[256]; };
typedef struct fs_DIR DIR;
DIR* opendir(const char* name);
int closedir(DIR* dir);
struct dirent* readdir(DIR* dir);
int readdir_r(DIR* dir, struct dirent* entry, struct dirent** result);
void rewinddir(DIR* dir);
void seekdir(DIR* dir, long loc);
long telldir(DIR* dir);
#ifdef __cplusplus
}
#endif
"""
