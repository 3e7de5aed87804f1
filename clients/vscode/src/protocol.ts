/**
 * Wire types shared with the Fieldsafe language server (server/fieldsafe/lsp/).
 *
 * Kept free of `vscode` imports so that unit tests can load it under plain Node.
 * The extension holds no domain logic: these types only describe what the server sends.
 */

/** Name of the custom server -> client notification that feeds the status bar. */
export const STATUS_NOTIFICATION = 'fieldsafe/status';

/** Server-side command ids (workspace/executeCommand). Never listed in package.json. */
export const ServerCommand = {
  compile: 'fieldsafe.server.compile',
  listDevices: 'fieldsafe.server.listDevices',
  listReleases: 'fieldsafe.server.listReleases',
  setTarget: 'fieldsafe.server.setTarget',
  inspectBinary: 'fieldsafe.server.inspectBinary',
  refreshDevices: 'fieldsafe.server.refreshDevices',
  listProducts: 'fieldsafe.server.listProducts',
  listGroups: 'fieldsafe.server.listGroups',
  setFleetTarget: 'fieldsafe.server.setFleetTarget',
  refreshFleet: 'fieldsafe.server.refreshFleet',
  fleetView: 'fieldsafe.server.fleetView',
  flash: 'fieldsafe.server.flash',
  updateOs: 'fieldsafe.server.updateOs',
} as const;

export type ServerCommandId = (typeof ServerCommand)[keyof typeof ServerCommand];

/** UI command ids, registered by the extension and listed in package.json. */
export const UiCommand = {
  selectDeviceOsVersion: 'fieldsafe.selectDeviceOsVersion',
  selectTargetDevice: 'fieldsafe.selectTargetDevice',
  compileNow: 'fieldsafe.compileNow',
  inspectBinary: 'fieldsafe.inspectBinary',
  showLogs: 'fieldsafe.showLogs',
  restartServer: 'fieldsafe.restartServer',
  statusMenu: 'fieldsafe.statusMenu',
  showFleet: 'fieldsafe.showFleet',
  selectTargetProduct: 'fieldsafe.selectTargetProduct',
  selectTargetGroups: 'fieldsafe.selectTargetGroups',
  flashToTargetDevice: 'fieldsafe.flashToTargetDevice',
  updateDeviceOs: 'fieldsafe.updateDeviceOs',
} as const;

export type UiCommandId = (typeof UiCommand)[keyof typeof UiCommand];

export type StatusState = 'idle' | 'compiling' | 'ok' | 'mismatch' | 'failed';

/** Payload of `fieldsafe/status`; every field but projectUri/state may be missing or null. */
export interface StatusPayload {
  projectUri: string;
  state: StatusState;
  pinnedRelease?: string | null;
  platform?: string | null;
  device?: string | null;
  deviceRelease?: string | null;
  deviceAgeSeconds?: number | null;
  /** The fleet target, as the server words it: `trackers: 1,204 devices, floor 2.3.1`. */
  fleet?: string | null;
  /** Why the fleet target could not be checked. */
  fleetError?: string | null;
  message?: string | null;
}

/** One row of `fieldsafe.server.listDevices`. */
export interface DeviceInfo {
  id: string;
  name?: string | null;
  platform?: string | null;
  platformId?: number | null;
  deviceOs?: string | null;
  cellular?: boolean | null;
  online?: boolean | null;
  lastHeard?: string | null;
  product?: string | number | null;
}

/** One row of `fieldsafe.server.listReleases`. */
export interface ReleaseInfo {
  version: string;
  lts?: boolean;
  prerelease?: boolean;
  deviceRuns?: boolean;
  needsDeviceUpdate?: boolean;
  moduleVersion?: number | null;
}

/** Result of `fieldsafe.server.inspectBinary`. */
export interface InspectResult {
  text?: string;
  json?: unknown;
}

const STATES: readonly StatusState[] = ['idle', 'compiling', 'ok', 'mismatch', 'failed'];

/**
 * Validate an untrusted `fieldsafe/status` payload.
 *
 * Why: a malformed notification (older/newer server) must not throw inside the notification
 * handler and silently freeze the status bar; we drop it and log instead.
 */
export function parseStatusPayload(value: unknown): StatusPayload | undefined {
  if (typeof value !== 'object' || value === null) {
    return undefined;
  }
  const v = value as Record<string, unknown>;
  if (typeof v.projectUri !== 'string' || v.projectUri === '') {
    return undefined;
  }
  if (typeof v.state !== 'string' || !STATES.includes(v.state as StatusState)) {
    return undefined;
  }
  const str = (x: unknown): string | null => (typeof x === 'string' && x !== '' ? x : null);
  const num = (x: unknown): number | null => (typeof x === 'number' && Number.isFinite(x) ? x : null);
  return {
    projectUri: v.projectUri,
    state: v.state as StatusState,
    pinnedRelease: str(v.pinnedRelease),
    platform: str(v.platform),
    device: str(v.device),
    deviceRelease: str(v.deviceRelease),
    deviceAgeSeconds: num(v.deviceAgeSeconds),
    fleet: str(v.fleet),
    fleetError: str(v.fleetError),
    message: str(v.message),
  };
}

/** Result of `fieldsafe.server.setTarget`: whether the edit was applied, and how. */
export interface SetTargetResult {
  applied: boolean;
  /** `workspace/applyEdit` (the open buffer was edited, not the file) or `file` (written on disk). */
  via: 'workspace/applyEdit' | 'file' | 'unknown';
}

/**
 * Validate the untrusted `setTarget` answer.
 *
 * Why: when `.vscode/settings.json` is open, the server edits the buffer through
 * `workspace/applyEdit`, which leaves it dirty; the extension must know that to save it, or the
 * picked release would never reach the disk (Workbench and the CLI read the file).
 */
export function parseSetTargetResult(value: unknown): SetTargetResult {
  const v = typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {};
  const via = v.via === 'workspace/applyEdit' || v.via === 'file' ? v.via : 'unknown';
  return { applied: v.applied !== false, via };
}

/** URI of a project's `.vscode/settings.json`, from the project URI the server reports. */
export function settingsJsonUri(projectUri: string): string {
  return `${projectUri.replace(/\/+$/, '')}/.vscode/settings.json`;
}
