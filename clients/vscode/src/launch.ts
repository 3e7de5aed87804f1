/**
 * Choosing the Python interpreter and building the server command line.
 *
 * Pure (no `vscode` import) so the precedence rules are unit-tested:
 * 1. the `fieldsafe.server.python` setting;
 * 2. the Python extension's active interpreter;
 * 3. `python3` from PATH.
 */

export type InterpreterSource = 'setting' | 'python-extension' | 'default';

export interface Interpreter {
  /** Executable to spawn. */
  command: string;
  /** Arguments that must precede ours (e.g. `conda run -n env python` is split into command + args). */
  prefixArgs: string[];
  source: InterpreterSource;
}

export interface InterpreterInputs {
  /** Raw value of `fieldsafe.server.python` (may be empty/undefined). */
  setting?: string | null;
  /** Command from the Python extension (execCommand array, or a single executable path). */
  pythonExtension?: readonly string[] | string | null;
  /** `${workspaceFolder}` substitute for the setting. */
  workspaceFolder?: string | null;
  /** Home directory, to expand a leading `~`. */
  home?: string | null;
}

export const DEFAULT_PYTHON = 'python3';

/** Expand `~` and `${workspaceFolder}` / `${userHome}` so users can write portable settings. */
export function expandPath(value: string, workspaceFolder?: string | null, home?: string | null): string {
  let out = value.trim();
  if (home) {
    if (out === '~') {
      out = home;
    } else if (out.startsWith('~/')) {
      out = home + out.slice(1);
    }
    out = out.split('${userHome}').join(home);
  }
  if (workspaceFolder) {
    out = out.split('${workspaceFolder}').join(workspaceFolder);
  }
  return out;
}

/** Apply the precedence rules; never throws, always yields something to try. */
export function chooseInterpreter(inputs: InterpreterInputs): Interpreter {
  const setting = inputs.setting?.trim();
  if (setting) {
    return {
      command: expandPath(setting, inputs.workspaceFolder, inputs.home),
      prefixArgs: [],
      source: 'setting',
    };
  }
  const ext = inputs.pythonExtension;
  const parts = (typeof ext === 'string' ? [ext] : (ext ?? [])).filter(
    (p) => typeof p === 'string' && p.trim() !== '',
  );
  if (parts.length > 0) {
    return { command: parts[0], prefixArgs: parts.slice(1), source: 'python-extension' };
  }
  return { command: DEFAULT_PYTHON, prefixArgs: [], source: 'default' };
}

export interface Launch {
  command: string;
  args: string[];
}

/**
 * `<python> -m fieldsafe lsp [--log-level L]`: stdio is the default for a command transport.
 * The log level is a flag (not an LSP setting) because logging is configured before the server starts.
 */
export function serverLaunch(interp: Interpreter, logLevel?: string | null): Launch {
  const args = [...interp.prefixArgs, '-m', 'fieldsafe', 'lsp'];
  if (logLevel) {
    args.push('--log-level', logLevel);
  }
  return { command: interp.command, args };
}

/** `<python> -c "import fieldsafe"`: checked first so a missing package gets a clear fix. */
export function importCheck(interp: Interpreter): Launch {
  return { command: interp.command, args: [...interp.prefixArgs, '-c', 'import fieldsafe'] };
}

/** Quote one word for display in a copy-pasteable shell command. */
export function shellQuote(word: string): string {
  if (/^[A-Za-z0-9_./:=@%+,-]+$/.test(word)) {
    return word;
  }
  return "'" + word.replace(/'/g, "'\\''") + "'";
}

/** Printable form of a command line, for logs and notifications. */
export function formatCommand(launch: Launch): string {
  return [launch.command, ...launch.args].map(shellQuote).join(' ');
}

/**
 * What to give `pip install` while fieldsafe is on no package index (`pip install fieldsafe` resolves
 * nowhere): a wheel shipped inside the extension, or the fieldsafe checkout the extension runs from
 * (see `pickInstallSource`); otherwise this placeholder, which the hint explains.
 */
export const UNKNOWN_SOURCE = '<fieldsafe checkout or wheel>';

/** The install source from what exists next to the extension: a bundled wheel first, then a checkout. */
export function pickInstallSource(bundledWheels: readonly string[], checkout: string | undefined): string {
  const wheel = [...bundledWheels].sort().pop();
  return wheel ?? checkout ?? UNKNOWN_SOURCE;
}

/** `<python> -m pip install <source>`, quoted for a shell. */
export function installCommand(interp: Interpreter, source: string = UNKNOWN_SOURCE): string {
  return formatCommand({ command: interp.command, args: [...interp.prefixArgs, '-m', 'pip', 'install', source] });
}

/** The text the user needs when fieldsafe is not importable by the chosen interpreter. */
export function installHint(interp: Interpreter, source: string = UNKNOWN_SOURCE): string {
  const hint = 'Install with: ' + installCommand(interp, source);
  if (source !== UNKNOWN_SOURCE) {
    return hint;
  }
  return `${hint}, naming a clone of the fieldsafe repository or a wheel built from it (fieldsafe is not on a package index yet)`;
}

const SOURCE_TEXT: Record<InterpreterSource, string> = {
  setting: 'from the fieldsafe.server.python setting',
  'python-extension': "the Python extension's selected interpreter",
  default: 'python3 on PATH (no fieldsafe.server.python setting, no Python extension interpreter)',
};

export function describeSource(interp: Interpreter): string {
  return SOURCE_TEXT[interp.source];
}

export interface ImportFailure {
  /** Spawn error code such as ENOENT, or null when the process ran. */
  errorCode?: string | null;
  exitCode?: number | null;
  stderr?: string;
}

/**
 * Turn a failed `import fieldsafe` check into a message that says what to do.
 *
 * Why: "ModuleNotFoundError" and "spawn python3 ENOENT" need different fixes (install the package
 * vs. point the setting at a real interpreter), and users see only this one line.
 */
export function importFailureMessage(
  interp: Interpreter,
  failure: ImportFailure,
  source: string = UNKNOWN_SOURCE,
): string {
  const who = formatCommand({ command: interp.command, args: interp.prefixArgs });
  if (failure.errorCode === 'ENOENT' || failure.errorCode === 'EACCES') {
    return (
      `Fieldsafe: cannot run the Python interpreter "${who}" (${describeSource(interp)}): ${failure.errorCode}. ` +
      'Set "fieldsafe.server.python" to a Python 3.11+ interpreter, or select one with the Python extension.'
    );
  }
  const stderr = (failure.stderr ?? '').trim();
  if (/ModuleNotFoundError|No module named/.test(stderr)) {
    return `Fieldsafe is not installed for ${who} (${describeSource(interp)}). ${installHint(interp, source)}`;
  }
  const lastLine = stderr.split(/\r?\n/).filter((l) => l.trim() !== '').pop() ?? `exit code ${failure.exitCode ?? '?'}`;
  return `Fieldsafe: "${who} -c 'import fieldsafe'" failed: ${lastLine}. ${installHint(interp, source)}`;
}
