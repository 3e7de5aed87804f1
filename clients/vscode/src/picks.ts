/**
 * Quick pick items built from server answers. Pure (no `vscode` import): the extension maps
 * `separator: true` rows to QuickPickItemKind.Separator.
 */
import type { DeviceInfo, ReleaseInfo, InspectResult, StatusPayload } from './protocol';
import { formatAge } from './status';

export interface PickItem<T> {
  label: string;
  description?: string;
  detail?: string;
  separator?: boolean;
  picked?: boolean;
  value?: T;
}

/**
 * Compare two Device OS version strings for display order (newest first).
 * Display only: the server owns version semantics; this just sorts numerically with
 * prereleases below their final release, and never throws on odd input.
 */
export function compareVersionsDesc(a: string, b: string): number {
  const parse = (v: string): { nums: number[]; pre: string } => {
    const m = /^v?(\d+)\.(\d+)\.(\d+)(?:-([^+]*))?/.exec(v.trim());
    if (!m) {
      return { nums: [-1, -1, -1], pre: v };
    }
    return { nums: [Number(m[1]), Number(m[2]), Number(m[3])], pre: m[4] ?? '' };
  };
  const pa = parse(a);
  const pb = parse(b);
  for (let i = 0; i < 3; i++) {
    if (pa.nums[i] !== pb.nums[i]) {
      return pb.nums[i] - pa.nums[i];
    }
  }
  if (pa.pre === pb.pre) {
    return 0;
  }
  if (pa.pre === '') {
    return -1;
  }
  if (pb.pre === '') {
    return 1;
  }
  return pb.pre.localeCompare(pa.pre, 'en', { numeric: true });
}

/**
 * Release rows, in the order a developer picks from: what the target device runs; newer releases
 * (they need a Device OS update on the device); older releases that also run; then prereleases.
 * Each group is newest first; LTS, prerelease and "needs a Device OS update" are in the description
 * so typing "LTS" filters to LTS releases.
 */
export function releasePickItems(
  releases: readonly ReleaseInfo[],
  current?: string | null,
  device?: string | null,
): PickItem<string>[] {
  const sorted = [...releases].sort((x, y) => compareVersionsDesc(x.version, y.version));
  const who = device ?? 'the target device';
  const groups: { title: string; rows: ReleaseInfo[] }[] = [
    { title: `What ${who} runs`, rows: sorted.filter((r) => r.deviceRuns) },
    {
      title: `Needs a Device OS update on ${who}`,
      rows: sorted.filter((r) => !r.deviceRuns && r.needsDeviceUpdate && !r.prerelease),
    },
    {
      title: sorted.some((r) => r.deviceRuns || r.needsDeviceUpdate) ? `Older releases (also run on ${who})` : 'Releases',
      rows: sorted.filter((r) => !r.deviceRuns && !r.needsDeviceUpdate && !r.prerelease),
    },
    { title: 'Prereleases', rows: sorted.filter((r) => !r.deviceRuns && r.prerelease) },
  ];
  const row = (r: ReleaseInfo): PickItem<string> => {
    const tags: string[] = [];
    if (r.lts) {
      tags.push('LTS');
    }
    if (r.prerelease) {
      tags.push('prerelease');
    }
    if (r.deviceRuns) {
      tags.push(`${who} runs this`);
    } else if (r.needsDeviceUpdate) {
      tags.push(`needs a Device OS update on ${who}`);
    }
    if (r.version === current) {
      tags.push('current pin');
    }
    return {
      label: (r.version === current ? '$(check) ' : '') + r.version,
      description: tags.join(' · ') || undefined,
      detail: typeof r.moduleVersion === 'number' ? `system module version ${r.moduleVersion}` : undefined,
      picked: r.version === current,
      value: r.version,
    };
  };
  const nonEmpty = groups.filter((g) => g.rows.length > 0);
  const items: PickItem<string>[] = [];
  for (const g of nonEmpty) {
    if (nonEmpty.length > 1) {
      items.push({ label: g.title, separator: true });
    }
    items.push(...g.rows.map(row));
  }
  return items;
}

/** Device rows: name, platform and Device OS up front; id and last-heard in the detail line; current first. */
export function devicePickItems(
  devices: readonly DeviceInfo[],
  current?: string | null,
  now: Date = new Date(),
): PickItem<string>[] {
  const isCurrentDevice = (d: DeviceInfo): boolean =>
    current !== undefined && current !== null && (current === d.name || current === d.id);
  // Current target first, then by name: the usual action is "keep it" or "switch to a sibling".
  const sorted = [...devices].sort(
    (a, b) => Number(isCurrentDevice(b)) - Number(isCurrentDevice(a)) || (a.name || a.id).localeCompare(b.name || b.id),
  );
  return sorted.map((d) => {
    const name = d.name || d.id;
    const isCurrent = isCurrentDevice(d);
    const desc = [d.platform ?? (d.platformId !== undefined && d.platformId !== null ? `platform ${d.platformId}` : undefined),
      d.deviceOs ? `Device OS ${d.deviceOs}` : 'Device OS unknown']
      .filter((x): x is string => Boolean(x))
      .join(' · ');
    const detailParts: string[] = [d.id];
    if (d.online === true) {
      detailParts.push('online');
    } else if (d.online === false) {
      detailParts.push('offline');
    }
    if (d.lastHeard) {
      const t = Date.parse(d.lastHeard);
      const age = Number.isNaN(t) ? undefined : formatAge((now.getTime() - t) / 1000);
      detailParts.push(`last heard ${age ?? d.lastHeard}`);
    }
    if (d.product !== undefined && d.product !== null && d.product !== '') {
      detailParts.push(`product ${d.product}`);
    }
    return {
      label: (isCurrent ? '$(check) ' : '') + name,
      description: desc + (isCurrent ? ' · current target' : ''),
      detail: detailParts.join(' · '),
      picked: isCurrent,
      value: d.name || d.id,
    };
  });
}

export type MenuAction =
  | 'selectDeviceOsVersion'
  | 'selectTargetDevice'
  | 'selectTargetProduct'
  | 'showFleet'
  | 'compileNow'
  | 'flashToTargetDevice'
  | 'updateDeviceOs'
  | 'showLogs';

/** Rows of the menu shown when the status bar item is clicked. */
export function statusMenuItems(status?: StatusPayload): PickItem<MenuAction>[] {
  const pin = status?.pinnedRelease ?? 'not pinned';
  const dev = status?.device ?? 'none';
  return [
    { label: '$(versions) Change Device OS version…', description: `pinned: ${pin}`, value: 'selectDeviceOsVersion' },
    { label: '$(device-mobile) Change target device…', description: `target: ${dev}`, value: 'selectTargetDevice' },
    {
      label: '$(organization) Change target product…',
      description: `fleet: ${status?.fleet ?? 'none'}`,
      value: 'selectTargetProduct',
    },
    { label: '$(graph) Show fleet', value: 'showFleet' },
    { label: '$(play) Compile now', value: 'compileNow' },
    { label: '$(zap) Flash to target device', description: `device: ${dev}`, value: 'flashToTargetDevice' },
    { label: '$(cloud-upload) Update Device OS on target device…', description: `device: ${dev}`, value: 'updateDeviceOs' },
    { label: '$(output) Open logs', value: 'showLogs' },
  ];
}

/**
 * Text of the untitled document that shows an inspected binary: the server's human text, then
 * its JSON form so nothing is lost.
 */
export function inspectDocumentText(path: string, result: InspectResult): string {
  const text = result.text && result.text.trim() !== '' ? result.text.trimEnd() : undefined;
  // The server's report already starts with the path (like `particle binary inspect`): no second header.
  const parts = text?.split('\n', 1)[0].trim() === path ? [] : [`# ${path}`, ''];
  if (text) {
    parts.push(text, '');
  }
  if (result.json !== undefined && result.json !== null) {
    parts.push('# JSON', JSON.stringify(result.json, null, 2), '');
  }
  if (!text && parts.length === 2) {
    parts.push('(the server returned no details)', '');
  }
  return parts.join('\n');
}
