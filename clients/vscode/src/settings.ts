/**
 * The `fieldsafe.*` settings as the server sees them.
 *
 * Pure (no `vscode` import). The same object is sent as `initializationOptions` and is what
 * `workspace/configuration` returns for the `fieldsafe` section, so the server has one shape to read.
 */

export type LogLevel = 'error' | 'warning' | 'info' | 'debug';
export type TraceLevel = 'off' | 'messages' | 'verbose';

export interface FieldsafeSettings {
  compileOnSave: boolean;
  compileDebounceMs: number;
  uploadUnsavedBuffers: boolean;
  offline: boolean;
  server: { python: string; logLevel: LogLevel };
  trace: { server: TraceLevel };
}

export const DEFAULTS: FieldsafeSettings = {
  compileOnSave: true,
  compileDebounceMs: 0,
  uploadUnsavedBuffers: false,
  offline: false,
  server: { python: '', logLevel: 'info' },
  trace: { server: 'off' },
};

const LOG_LEVELS: readonly LogLevel[] = ['error', 'warning', 'info', 'debug'];
const TRACE_LEVELS: readonly TraceLevel[] = ['off', 'messages', 'verbose'];

/** Reads one dotted key below `fieldsafe.` (e.g. `server.python`); undefined when unset. */
export type SettingGetter = (key: string) => unknown;

function bool(v: unknown, dflt: boolean): boolean {
  return typeof v === 'boolean' ? v : dflt;
}

function oneOf<T extends string>(v: unknown, allowed: readonly T[], dflt: T): T {
  return typeof v === 'string' && (allowed as readonly string[]).includes(v) ? (v as T) : dflt;
}

/**
 * Normalise raw settings: wrong types fall back to defaults, the debounce is clamped to
 * [0, 60000] ms and rounded, so a typo in settings.json cannot wedge compile-on-save.
 */
export function readSettings(get: SettingGetter): FieldsafeSettings {
  const rawDebounce = get('compileDebounceMs');
  const debounce =
    typeof rawDebounce === 'number' && Number.isFinite(rawDebounce)
      ? Math.min(60000, Math.max(0, Math.round(rawDebounce)))
      : DEFAULTS.compileDebounceMs;
  const python = get('server.python');
  return {
    compileOnSave: bool(get('compileOnSave'), DEFAULTS.compileOnSave),
    compileDebounceMs: debounce,
    uploadUnsavedBuffers: bool(get('uploadUnsavedBuffers'), DEFAULTS.uploadUnsavedBuffers),
    offline: bool(get('offline'), DEFAULTS.offline),
    server: {
      python: typeof python === 'string' ? python.trim() : '',
      logLevel: oneOf(get('server.logLevel'), LOG_LEVELS, DEFAULTS.server.logLevel),
    },
    trace: { server: oneOf(get('trace.server'), TRACE_LEVELS, DEFAULTS.trace.server) },
  };
}

/** `initializationOptions` for the server: the settings object itself (a fresh deep copy). */
export function initializationOptions(settings: FieldsafeSettings): FieldsafeSettings {
  return JSON.parse(JSON.stringify(settings)) as FieldsafeSettings;
}

/** Settings whose change needs a server restart (the rest are pulled live by the server). */
export const RESTART_KEYS: readonly string[] = ['fieldsafe.server.python', 'fieldsafe.server.logLevel'];
