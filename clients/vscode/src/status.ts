/**
 * Status bar presentation of a `fieldsafe/status` payload, and which project is "active".
 *
 * Pure (no `vscode` import): colours are theme-colour ids that the extension wraps in ThemeColor.
 */
import type { StatusPayload } from './protocol';

export type StatusBackground = 'statusBarItem.warningBackground' | 'statusBarItem.errorBackground';

export interface StatusView {
  text: string;
  tooltip: string;
  background?: StatusBackground;
}

const ICONS: Record<StatusPayload['state'], string> = {
  idle: '$(chip)',
  compiling: '$(sync~spin)',
  ok: '$(check)',
  mismatch: '$(warning)',
  failed: '$(error)',
};

const STATE_TEXT: Record<StatusPayload['state'], string> = {
  idle: 'Idle',
  compiling: 'Compiling…',
  ok: 'Build matches the target device',
  mismatch: 'Device OS mismatch',
  failed: 'Compile failed',
};

/** "42 s ago", "5 min ago", "3 h ago", "2 days ago": how stale the device's Device OS report is. */
export function formatAge(seconds: number | null | undefined): string | undefined {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds) || seconds < 0) {
    return undefined;
  }
  if (seconds < 60) {
    return `${Math.round(seconds)} s ago`;
  }
  if (seconds < 3600) {
    return `${Math.round(seconds / 60)} min ago`;
  }
  if (seconds < 86400 * 2) {
    return `${Math.round(seconds / 3600)} h ago`;
  }
  return `${Math.round(seconds / 86400)} days ago`;
}

/** Status bar text: pin, then target device and what it runs, e.g. `$(warning) Device OS 2.3.1 · field-unit-7 runs 0.5.3`. */
export function statusText(p: StatusPayload): string {
  const pin = p.pinnedRelease ? `Device OS ${p.pinnedRelease}` : 'Device OS not pinned';
  let target: string | undefined;
  if (p.device) {
    target = p.deviceRelease ? `${p.device} runs ${p.deviceRelease}` : `${p.device} (Device OS unknown)`;
  } else if (p.platform) {
    target = p.platform;
  }
  const parts = [target ? `${pin} · ${target}` : pin];
  if (p.fleet) {
    parts.push(p.fleet);
  }
  return [ICONS[p.state], parts.join(' · ')].join(' ');
}

/** Multi-line hover text; the server's message comes first because it says what is wrong. */
export function statusTooltip(p: StatusPayload): string {
  const lines: string[] = [];
  lines.push(`Fieldsafe: ${STATE_TEXT[p.state]}`);
  if (p.message) {
    lines.push(p.message);
  }
  lines.push('');
  lines.push(`Pinned Device OS: ${p.pinnedRelease ?? 'not pinned'}`);
  if (p.platform) {
    lines.push(`Platform: ${p.platform}`);
  }
  if (p.device) {
    const age = formatAge(p.deviceAgeSeconds);
    const runs = p.deviceRelease ?? 'unknown';
    lines.push(`Target device: ${p.device} — runs Device OS ${runs}${age ? ` (reported ${age})` : ''}`);
  } else {
    lines.push('Target device: none selected');
  }
  if (p.fleet) {
    lines.push(`Target fleet: ${p.fleet}`);
  } else if (p.fleetError) {
    lines.push(`Target fleet: not checked (${p.fleetError})`);
  }
  lines.push('');
  lines.push('Click for actions: change Device OS version or target device, compile now, open logs.');
  return lines.join('\n');
}

export function statusBackground(p: StatusPayload): StatusBackground | undefined {
  if (p.state === 'mismatch') {
    return 'statusBarItem.warningBackground';
  }
  if (p.state === 'failed') {
    return 'statusBarItem.errorBackground';
  }
  return undefined;
}

export function statusView(p: StatusPayload): StatusView {
  return { text: statusText(p), tooltip: statusTooltip(p), background: statusBackground(p) };
}

/**
 * Normalise a URI string so `file:///a/b/` and `file:///a/b`, or `%20` and a space, compare equal:
 * VS Code and the Python server percent-encode URIs differently.
 */
export function normaliseUri(uri: string): string {
  let out = uri;
  try {
    out = decodeURIComponent(uri);
  } catch {
    // keep the raw form when it is not valid percent-encoding
  }
  out = out.replace(/^file:\/\/\/([A-Za-z]):/, (_m, d: string) => `file:///${d.toLowerCase()}:`);
  return out.endsWith('/') ? out.slice(0, -1) : out;
}

/**
 * Which project's status to show for the active document: the deepest project root containing
 * the document; with no document (or one outside every project), the only project if there is
 * exactly one. Why: multi-root workspaces can hold several Particle projects.
 */
export function pickProject(projectUris: readonly string[], documentUri?: string | null): string | undefined {
  if (documentUri) {
    const doc = normaliseUri(documentUri);
    let best: string | undefined;
    let bestLength = -1;
    for (const uri of projectUris) {
      const root = normaliseUri(uri);
      if ((doc === root || doc.startsWith(root + '/')) && root.length > bestLength) {
        best = uri;
        bestLength = root.length;
      }
    }
    if (best !== undefined) {
      return best;
    }
  }
  return projectUris.length === 1 ? projectUris[0] : undefined;
}
