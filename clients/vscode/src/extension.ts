/**
 * VS Code wiring for the Fieldsafe language server.
 *
 * Everything domain-related (versions, devices, compiles, diagnostics, quick-fixes, progress)
 * comes from the server; this file only starts it, draws the status bar, and turns palette
 * commands into `workspace/executeCommand` requests. Presentation rules live in the pure
 * modules (launch, settings, status, picks) so they are unit-tested without VS Code.
 */
import * as cp from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as vscode from 'vscode';
import {
  ExecuteCommandRequest,
  LanguageClient,
  type LanguageClientOptions,
  RevealOutputChannelOn,
  type ServerOptions,
  State,
} from 'vscode-languageclient/node';

import {
  chooseInterpreter,
  describeSource,
  formatCommand,
  importCheck,
  type ImportFailure,
  importFailureMessage,
  installCommand,
  type Interpreter,
  pickInstallSource,
  serverLaunch,
} from './launch';
import {
  type DeviceInfo,
  type InspectResult,
  parseSetTargetResult,
  parseStatusPayload,
  type ReleaseInfo,
  ServerCommand,
  type ServerCommandId,
  settingsJsonUri,
  STATUS_NOTIFICATION,
  type StatusPayload,
  UiCommand,
} from './protocol';
import { registerFlash } from './flashPanel';
import { registerFleet } from './fleetPanel';
import { devicePickItems, inspectDocumentText, type MenuAction, type PickItem, releasePickItems, statusMenuItems } from './picks';
import { initializationOptions, readSettings, RESTART_KEYS } from './settings';
import { normaliseUri, pickProject, statusView } from './status';

const CLIENT_ID = 'fieldsafe';
const CLIENT_NAME = 'Fieldsafe';
const IMPORT_CHECK_TIMEOUT_MS = 30_000;
const PYTHON_EXTENSION_ID = 'ms-python.python';
/** Read-only documents holding Inspect Binary reports (not untitled buffers that ask to be saved). */
const INSPECT_SCHEME = 'fieldsafe-inspect';

let log: vscode.LogOutputChannel;
let statusItem: vscode.StatusBarItem;
let client: LanguageClient | undefined;
/** The in-flight or finished start; commands await it instead of racing the server. */
let starting: Promise<LanguageClient | undefined> | undefined;
let currentInterpreter: Interpreter | undefined;
/** Why the server is not running, shown in the status bar; undefined while it runs. */
let serverProblem: string | undefined;
const statuses = new Map<string, StatusPayload>();
/** Inspect report text by report URI; dropped when its document closes. */
const inspectReports = new Map<string, string>();
const inspectChanged = new vscode.EventEmitter<vscode.Uri>();
/** Tells the fleet view a project's status changed (it re-reads the fleet then). */
let onFleetStatus: ((status: StatusPayload) => void) | undefined;

/** Where `pip install` gets fieldsafe from (see `pickInstallSource`): decided once, at activation. */
let installSource: string | undefined;

/** A wheel shipped in `<extension>/server/`, else the checkout the extension runs from (`clients/vscode`). */
function findInstallSource(extensionPath: string): string {
  const serverDir = path.join(extensionPath, 'server');
  let wheels: string[] = [];
  try {
    wheels = fs
      .readdirSync(serverDir)
      .filter((f) => /^fieldsafe-.*\.whl$/.test(f))
      .map((f) => path.join(serverDir, f));
  } catch {
    // no bundled wheel
  }
  const repo = path.resolve(extensionPath, '..', '..');
  let checkout: string | undefined;
  try {
    if (/^name\s*=\s*"fieldsafe"/m.test(fs.readFileSync(path.join(repo, 'pyproject.toml'), 'utf8'))) {
      checkout = repo;
    }
  } catch {
    // not running from a checkout
  }
  return pickInstallSource(wheels, checkout);
}

export function activate(context: vscode.ExtensionContext): void {
  installSource = findInstallSource(context.extensionPath);
  log = vscode.window.createOutputChannel(CLIENT_NAME, { log: true });
  statusItem = vscode.window.createStatusBarItem('fieldsafe.status', vscode.StatusBarAlignment.Left, 50);
  statusItem.name = 'Fieldsafe';
  statusItem.command = UiCommand.statusMenu;
  context.subscriptions.push(log, statusItem);

  // UI commands are registered synchronously so the palette works even before (or without) a server.
  const register = (id: string, fn: (...args: unknown[]) => unknown): void => {
    context.subscriptions.push(vscode.commands.registerCommand(id, (...args: unknown[]) => guard(id, () => fn(...args))));
  };
  register(UiCommand.selectDeviceOsVersion, () => selectDeviceOsVersion());
  register(UiCommand.selectTargetDevice, () => selectTargetDevice());
  register(UiCommand.compileNow, () => compileNow());
  register(UiCommand.inspectBinary, (arg) => inspectBinary(arg instanceof vscode.Uri ? arg : undefined));
  register(UiCommand.showLogs, () => log.show(true));
  register(UiCommand.restartServer, () => restartServer());
  register(UiCommand.statusMenu, () => statusMenu());
  onFleetStatus = registerFleet(
    context,
    {
      exec,
      requireProject,
      status: (uri) => statuses.get(uri),
      setPin: (uri, version) => setTarget(uri, { version }),
      log,
    },
    register,
  );

  registerFlash(
    {
      exec,
      requireProject,
      status: (uri) => statuses.get(uri),
      setPin: (uri, version) => setTarget(uri, { version }),
      log,
    },
    register,
  );

  context.subscriptions.push(
    inspectChanged,
    vscode.workspace.registerTextDocumentContentProvider(INSPECT_SCHEME, {
      onDidChange: inspectChanged.event,
      provideTextDocumentContent: (uri) =>
        inspectReports.get(uri.toString()) ?? 'This report is no longer in memory: run "Fieldsafe: Inspect Binary" again.',
    }),
    vscode.workspace.onDidCloseTextDocument((doc) => {
      if (doc.uri.scheme === INSPECT_SCHEME) {
        inspectReports.delete(doc.uri.toString());
      }
    }),
    vscode.window.onDidChangeActiveTextEditor(() => renderStatus()),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (RESTART_KEYS.some((k) => e.affectsConfiguration(k))) {
        log.info('Server settings changed; restarting the Fieldsafe server.');
        void restartServer();
      }
    }),
    { dispose: () => void client?.stop() },
  );
  void watchPythonExtension(context);

  renderStatus();
  starting = startServer();
}

export async function deactivate(): Promise<void> {
  const c = client;
  client = undefined;
  if (c) {
    await c.stop();
  }
}

/** Run a command body, turning any error into one notification with a way to the logs. */
async function guard(id: string, body: () => unknown): Promise<unknown> {
  try {
    return await body();
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    log.error(`${id}: ${message}`);
    const choice = await vscode.window.showErrorMessage(`Fieldsafe: ${message}`, 'Show Logs');
    if (choice === 'Show Logs') {
      log.show(true);
    }
    return undefined;
  }
}

function settingsFor(scope?: vscode.Uri): ReturnType<typeof readSettings> {
  const cfg = vscode.workspace.getConfiguration('fieldsafe', scope);
  return readSettings((key) => cfg.get(key));
}

function primaryFolder(): vscode.WorkspaceFolder | undefined {
  const doc = vscode.window.activeTextEditor?.document.uri;
  return (doc && vscode.workspace.getWorkspaceFolder(doc)) ?? vscode.workspace.workspaceFolders?.[0];
}

/** Wrap a thenable with a timeout so a hung Python extension cannot block server start. */
async function withTimeout<T>(p: Thenable<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  try {
    return await Promise.race([Promise.resolve(p), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Minimal, defensive view of the Python extension's public API (several generations exist). */
interface PythonApi {
  environments?: {
    getActiveEnvironmentPath?: (resource?: vscode.Uri) => { path?: string } | undefined;
    resolveEnvironment?: (env: unknown) => Thenable<{ executable?: { uri?: vscode.Uri } } | undefined>;
    onDidChangeActiveEnvironmentPath?: vscode.Event<unknown>;
  };
  settings?: {
    getExecutionDetails?: (resource?: vscode.Uri) => { execCommand?: string[] } | undefined;
  };
}

async function pythonApi(): Promise<PythonApi | undefined> {
  const ext = vscode.extensions.getExtension<PythonApi>(PYTHON_EXTENSION_ID);
  if (!ext) {
    return undefined;
  }
  try {
    return ext.isActive ? ext.exports : await withTimeout(ext.activate(), 10_000);
  } catch (err) {
    log.warn(`Python extension API unavailable: ${String(err)}`);
    return undefined;
  }
}

/** The Python extension's interpreter for the folder, or undefined; never throws. */
async function interpreterFromPythonExtension(folder?: vscode.Uri): Promise<string[] | undefined> {
  const api = await pythonApi();
  if (!api) {
    return undefined;
  }
  try {
    const envs = api.environments;
    const active = envs?.getActiveEnvironmentPath?.(folder);
    if (active && envs?.resolveEnvironment) {
      const resolved = await withTimeout(envs.resolveEnvironment(active), 10_000);
      const exe = resolved?.executable?.uri?.fsPath;
      if (exe) {
        return [exe];
      }
    }
    const exec = api.settings?.getExecutionDetails?.(folder)?.execCommand;
    if (Array.isArray(exec) && exec.length > 0 && exec.every((x) => typeof x === 'string')) {
      return exec;
    }
    if (active?.path) {
      return [active.path];
    }
  } catch (err) {
    log.warn(`Could not read the Python extension's interpreter: ${String(err)}`);
  }
  return undefined;
}

async function watchPythonExtension(context: vscode.ExtensionContext): Promise<void> {
  if (!vscode.extensions.getExtension(PYTHON_EXTENSION_ID)) {
    return;
  }
  const api = await pythonApi();
  const event = api?.environments?.onDidChangeActiveEnvironmentPath;
  if (typeof event === 'function') {
    context.subscriptions.push(
      event(() => {
        if (currentInterpreter?.source === 'python-extension' || !settingsFor().server.python) {
          log.info('The Python extension changed the interpreter; restarting the Fieldsafe server.');
          void restartServer();
        }
      }),
    );
  }
}

async function resolveInterpreter(): Promise<Interpreter> {
  const folder = primaryFolder();
  const setting = settingsFor(folder?.uri).server.python;
  const fromExt = setting ? undefined : await interpreterFromPythonExtension(folder?.uri);
  return chooseInterpreter({
    setting,
    pythonExtension: fromExt,
    workspaceFolder: folder?.uri.fsPath,
    home: os.homedir(),
  });
}

/** `<python> -c "import fieldsafe"`: undefined when it works, else what went wrong. */
function runImportCheck(interp: Interpreter, cwd?: string): Promise<ImportFailure | undefined> {
  const check = importCheck(interp);
  return new Promise((resolve) => {
    cp.execFile(check.command, check.args, { cwd, timeout: IMPORT_CHECK_TIMEOUT_MS, env: process.env }, (err, _out, stderr) => {
      if (!err) {
        resolve(undefined);
        return;
      }
      const e = err as NodeJS.ErrnoException & { code?: string | number };
      resolve({
        errorCode: typeof e.code === 'string' ? e.code : null,
        exitCode: typeof e.code === 'number' ? e.code : null,
        stderr: String(stderr ?? '') || e.message,
      });
    });
  });
}

async function reportNotInstalled(interp: Interpreter, message: string): Promise<void> {
  const copy = 'Copy Install Command';
  const choose = 'Set Interpreter';
  const logs = 'Show Logs';
  const choice = await vscode.window.showErrorMessage(message, copy, choose, logs);
  if (choice === copy) {
    await vscode.env.clipboard.writeText(installCommand(interp, installSource));
    void vscode.window.showInformationMessage('Copied. Run it in a terminal, then run "Fieldsafe: Restart Server".');
  } else if (choice === choose) {
    await vscode.commands.executeCommand('workbench.action.openSettings', 'fieldsafe.server.python');
  } else if (choice === logs) {
    log.show(true);
  }
}

async function startServer(): Promise<LanguageClient | undefined> {
  const folder = primaryFolder();
  const interp = await resolveInterpreter();
  currentInterpreter = interp;
  const launch = serverLaunch(interp, settingsFor(folder?.uri).server.logLevel);
  log.info(`Starting the Fieldsafe server: ${formatCommand(launch)} (interpreter: ${describeSource(interp)})`);
  serverProblem = undefined;
  renderStatus('$(sync~spin) Fieldsafe: starting…');

  const failure = await runImportCheck(interp, folder?.uri.fsPath);
  if (failure) {
    const message = importFailureMessage(interp, failure, installSource);
    log.error(message);
    if (failure.stderr) {
      log.error(failure.stderr.trim());
    }
    serverProblem = message;
    renderStatus();
    void reportNotInstalled(interp, message);
    return undefined;
  }

  const serverOptions: ServerOptions = {
    command: launch.command,
    args: launch.args,
    options: { cwd: folder?.uri.fsPath, env: process.env },
  };
  const clientOptions: LanguageClientOptions = {
    documentSelector: [
      { scheme: 'file', language: 'cpp' },
      { scheme: 'file', language: 'c' },
      { scheme: 'file', pattern: '**/*.ino' },
      { scheme: 'file', pattern: '**/.vscode/settings.json' },
      { scheme: 'file', pattern: '**/project.properties' },
    ],
    // The section is pushed on change; the server also pulls it (workspace/configuration) and
    // registers its own file watchers dynamically, so no static fileEvents here (no duplicates).
    synchronize: { configurationSection: 'fieldsafe' },
    initializationOptions: initializationOptions(settingsFor(folder?.uri)),
    outputChannel: log,
    revealOutputChannelOn: RevealOutputChannelOn.Never,
  };
  const c = new LanguageClient(CLIENT_ID, CLIENT_NAME, serverOptions, clientOptions);
  c.onNotification(STATUS_NOTIFICATION, (raw: unknown) => {
    const p = parseStatusPayload(raw);
    if (!p) {
      log.warn(`Ignoring a malformed ${STATUS_NOTIFICATION} notification: ${JSON.stringify(raw)}`);
      return;
    }
    statuses.set(p.projectUri, p);
    renderStatus();
    onFleetStatus?.(p);
  });
  c.onDidChangeState((e) => {
    if (e.newState === State.Stopped && client === c) {
      serverProblem = 'The Fieldsafe server stopped. Run "Fieldsafe: Restart Server" or see the logs.';
      renderStatus();
    } else if (e.newState === State.Running) {
      serverProblem = undefined;
      renderStatus();
    }
  });
  client = c;
  try {
    await c.start();
    log.info('Fieldsafe server started.');
    return c;
  } catch (err) {
    const message = `Fieldsafe server failed to start: ${err instanceof Error ? err.message : String(err)}`;
    log.error(message);
    serverProblem = message;
    renderStatus();
    void vscode.window.showErrorMessage(message, 'Show Logs').then((x) => x && log.show(true));
    return undefined;
  }
}

async function restartServer(): Promise<void> {
  const previous = starting;
  starting = (async () => {
    await previous?.catch(() => undefined);
    const old = client;
    client = undefined;
    if (old) {
      try {
        await old.stop();
      } catch (err) {
        log.warn(`Stopping the old server: ${String(err)}`);
      }
    }
    statuses.clear();
    return startServer();
  })();
  await starting;
}

/** The running client, after any start in progress; a clear error when there is none. */
async function runningClient(): Promise<LanguageClient> {
  const c = await starting;
  if (!c || c.state !== State.Running) {
    throw new Error(serverProblem ?? 'the Fieldsafe server is not running. Run "Fieldsafe: Restart Server".');
  }
  return c;
}

async function exec<T>(command: ServerCommandId, arg: object): Promise<T> {
  const c = await runningClient();
  log.debug(`executeCommand ${command} ${JSON.stringify(arg)}`);
  return (await c.sendRequest(ExecuteCommandRequest.type, { command, arguments: [arg] })) as T;
}

/** The project the user is looking at: from server status first, else the active workspace folder. */
function activeProjectUri(): string | undefined {
  const doc = vscode.window.activeTextEditor?.document.uri;
  const fromStatus = pickProject([...statuses.keys()], doc?.toString());
  return fromStatus ?? primaryFolder()?.uri.toString();
}

function activeStatus(): StatusPayload | undefined {
  const uri = activeProjectUri();
  return uri ? statuses.get(uri) : undefined;
}

function requireProject(): string {
  const uri = activeProjectUri();
  if (!uri) {
    throw new Error('open a Particle project folder first (one with project.properties).');
  }
  return uri;
}

function renderStatus(override?: string): void {
  if (override) {
    statusItem.text = override;
    statusItem.tooltip = 'Fieldsafe';
    statusItem.backgroundColor = undefined;
  } else if (serverProblem) {
    statusItem.text = '$(error) Fieldsafe';
    statusItem.tooltip = `${serverProblem}\n\nClick for actions.`;
    statusItem.backgroundColor = new vscode.ThemeColor('statusBarItem.errorBackground');
  } else {
    const s = activeStatus();
    if (s) {
      const view = statusView(s);
      statusItem.text = view.text;
      statusItem.tooltip = view.tooltip;
      statusItem.backgroundColor = view.background ? new vscode.ThemeColor(view.background) : undefined;
    } else {
      statusItem.text = '$(chip) Fieldsafe';
      statusItem.tooltip = 'Fieldsafe: waiting for the server to report on this project.';
      statusItem.backgroundColor = undefined;
    }
  }
  statusItem.show();
}

type VsItem<T> = vscode.QuickPickItem & { value?: T };

function toVsItems<T>(items: PickItem<T>[]): VsItem<T>[] {
  return items.map((i) =>
    i.separator
      ? { label: i.label, kind: vscode.QuickPickItemKind.Separator }
      : { label: i.label, description: i.description, detail: i.detail, picked: i.picked, value: i.value },
  );
}

async function selectDeviceOsVersion(): Promise<void> {
  const projectUri = requireProject();
  const status = statuses.get(projectUri);
  const items = exec<ReleaseInfo[]>(ServerCommand.listReleases, { projectUri }).then((rows) =>
    toVsItems(releasePickItems(rows ?? [], status?.pinnedRelease, status?.device)),
  );
  const choice = await vscode.window.showQuickPick(items, {
    title: `Device OS version for ${status?.platform ?? 'this project'}`,
    placeHolder: `Pinned: ${status?.pinnedRelease ?? 'none'} — pick the Device OS to build against`,
    matchOnDescription: true,
  });
  if (choice?.value) {
    await setTarget(projectUri, { version: choice.value });
    log.info(`Pinned Device OS ${choice.value} for ${projectUri}`);
  }
}

async function selectTargetDevice(): Promise<void> {
  const projectUri = requireProject();
  const status = statuses.get(projectUri);
  const items = exec<DeviceInfo[]>(ServerCommand.listDevices, { projectUri }).then((rows) =>
    toVsItems(devicePickItems(rows ?? [], status?.device)),
  );
  const choice = await vscode.window.showQuickPick(items, {
    title: 'Target device',
    placeHolder: `Target: ${status?.device ?? 'none'} — pick the device this firmware must run on`,
    matchOnDescription: true,
    matchOnDetail: true,
  });
  if (choice?.value) {
    await setTarget(projectUri, { device: choice.value });
    log.info(`Target device ${choice.value} for ${projectUri}`);
  }
}

function openSettingsDocument(projectUri: string): vscode.TextDocument | undefined {
  const want = normaliseUri(settingsJsonUri(projectUri));
  return vscode.workspace.textDocuments.find((d) => normaliseUri(d.uri.toString()) === want);
}

/**
 * Ask the server to change the pin or target, then make the change reach the disk.
 *
 * Why: with `.vscode/settings.json` open, the server edits the buffer (workspace/applyEdit) so it
 * stays in sync and undoable, but that leaves it unsaved; Workbench, the CLI and the server's
 * recompile read the file. We save it, unless it already held the user's unsaved changes (saving
 * those too would be a surprise), in which case we say so.
 */
async function setTarget(projectUri: string, change: { version?: string; device?: string }): Promise<void> {
  const wasDirty = openSettingsDocument(projectUri)?.isDirty ?? false;
  const result = parseSetTargetResult(await exec<unknown>(ServerCommand.setTarget, { projectUri, ...change }));
  if (!result.applied) {
    throw new Error('the editor refused the edit to .vscode/settings.json; see the logs.');
  }
  const doc = openSettingsDocument(projectUri);
  if (result.via !== 'workspace/applyEdit' || !doc?.isDirty) {
    return;
  }
  if (wasDirty) {
    void vscode.window.showInformationMessage(
      'Fieldsafe: .vscode/settings.json had unsaved changes, so it was edited but not saved. Save it to apply.',
    );
    return;
  }
  if (!(await doc.save())) {
    throw new Error(`could not save ${doc.uri.fsPath}; save it to apply the change.`);
  }
}

async function compileNow(): Promise<void> {
  const projectUri = requireProject();
  await vscode.workspace.saveAll(false);
  await exec(ServerCommand.compile, { projectUri });
}

async function inspectBinary(target?: vscode.Uri): Promise<void> {
  let uri = target;
  if (!uri) {
    const picked = await vscode.window.showOpenDialog({
      canSelectMany: false,
      openLabel: 'Inspect',
      title: 'Inspect a Particle module binary',
      filters: { 'Particle binaries': ['bin'], 'All files': ['*'] },
      defaultUri: primaryFolder()?.uri,
    });
    uri = picked?.[0];
  }
  if (!uri) {
    return;
  }
  const result = await exec<InspectResult>(ServerCommand.inspectBinary, { path: uri.fsPath });
  // A read-only document named after the binary: closing it never asks to save, and inspecting
  // the same file again refreshes the same tab.
  const reportUri = vscode.Uri.from({ scheme: INSPECT_SCHEME, path: `${uri.path}.inspect.txt` });
  inspectReports.set(reportUri.toString(), inspectDocumentText(uri.fsPath, result ?? {}));
  inspectChanged.fire(reportUri);
  const doc = await vscode.workspace.openTextDocument(reportUri);
  await vscode.window.showTextDocument(doc, { preview: false });
}

async function statusMenu(): Promise<void> {
  if (serverProblem) {
    const choice = await vscode.window.showQuickPick(
      [
        { label: '$(refresh) Restart server', value: 'restart' },
        { label: '$(output) Open logs', value: 'logs' },
      ],
      { title: 'Fieldsafe', placeHolder: serverProblem },
    );
    if (choice?.value === 'restart') {
      await restartServer();
    } else if (choice?.value === 'logs') {
      log.show(true);
    }
    return;
  }
  const choice = await vscode.window.showQuickPick(toVsItems<MenuAction>(statusMenuItems(activeStatus())), {
    title: 'Fieldsafe',
  });
  if (choice?.value) {
    await vscode.commands.executeCommand(UiCommand[choice.value]);
  }
}
