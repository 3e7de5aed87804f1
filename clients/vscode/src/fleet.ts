/**
 * The fleet view and the product/group pickers, as pure functions of what the server answers.
 *
 * No `vscode` import: the numbers (histogram rows, floor, pin, consequences) are computed by the
 * server (`fieldsafe.server.fleetView`, i.e. `fieldsafe.fleet`); this module only paints them, so it
 * is unit-tested under plain Node.
 */
import type { PickItem } from './picks';

/** Consequence of the pin for a device, worst last (the server's `fieldsafe.fleet.CONSEQUENCES`). */
export const CONSEQUENCES = ['runs', 'combined_ota', 'healer', 'deferred', 'unknown', 'stuck', 'other_platform'] as const;
export type Consequence = (typeof CONSEQUENCES)[number];

/** Theme chart colours per consequence (VS Code's `charts.*` colours follow the user's theme). */
export const CONSEQUENCE_COLOURS: Record<Consequence, string> = {
  runs: 'var(--vscode-charts-green, #388a34)',
  combined_ota: 'var(--vscode-charts-blue, #1a85ff)',
  healer: 'var(--vscode-charts-orange, #d18616)',
  deferred: 'var(--vscode-charts-yellow, #cca700)',
  unknown: 'var(--vscode-charts-foreground, #888888)',
  stuck: 'var(--vscode-charts-red, #e51400)',
  other_platform: 'var(--vscode-charts-purple, #652d90)',
};

export interface HistogramRow {
  release: string | null;
  devices: number;
  share: number;
  consequences: Partial<Record<Consequence, number>>;
  worst: Consequence;
  pin: boolean;
  floor: boolean;
}

/** Answer of `fieldsafe.server.fleetView`. */
export interface FleetViewData {
  product: string | null;
  error?: string;
  groups?: string[];
  status?: string;
  devices?: number;
  devicesInProduct?: number;
  floor?: string | null;
  pin?: string | null;
  listing?: { complete: boolean; missing?: string | null; ageSeconds?: number | null; source?: string };
  histogram?: HistogramRow[];
  summary?: string | null;
  blocksCi?: boolean;
  labels?: Partial<Record<Consequence, string>>;
}

export interface ProductInfo {
  id?: number | null;
  slug?: string | null;
  name?: string | null;
  platform?: string | null;
  groups?: string[];
}

export interface GroupInfo {
  name: string;
  devices?: number | null;
}

function escape(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c);
}

function isConsequence(x: string): x is Consequence {
  return (CONSEQUENCES as readonly string[]).includes(x);
}

/** Product picker rows: the current target first-marked, slug as the value. */
export function productPickItems(products: readonly ProductInfo[], current?: string | null): PickItem<string>[] {
  return products
    .filter((p) => p.slug || p.id !== undefined)
    .map((p) => {
      const value = p.slug ?? String(p.id);
      const groups = p.groups && p.groups.length ? ` · groups ${p.groups.join(', ')}` : '';
      return {
        label: p.name ? `${p.name}` : value,
        description: `${value}${p.platform ? ` · ${p.platform}` : ''}`,
        detail: `product ${p.id ?? '?'}${groups}`,
        picked: current !== undefined && current !== null && (current === value || current === String(p.id)),
        value,
      };
    });
}

/** Group picker rows (multi-select): device counts when the server knows them. */
export function groupPickItems(groups: readonly GroupInfo[], current: readonly string[]): PickItem<string>[] {
  return groups.map((g) => ({
    label: g.name,
    description: typeof g.devices === 'number' ? `${g.devices.toLocaleString('en-US')} devices` : undefined,
    picked: current.includes(g.name),
    value: g.name,
  }));
}

/** The product from a status text `trackers: 1,204 devices, floor 2.3.1` (the picker's current value). */
export function productOfStatus(fleet: string | null | undefined): string | undefined {
  const m = /^([^:]+):/.exec(fleet ?? '');
  return m ? m[1] : undefined;
}

export interface HtmlOptions {
  nonce: string;
  cspSource: string;
}

/** One stacked bar per Device OS version, split by consequence; the pin and the floor are marked. */
function rowHtml(row: HistogramRow, top: number, labels: Partial<Record<Consequence, string>>): string {
  const width = top > 0 ? (row.devices / top) * 100 : 0;
  const parts: string[] = [];
  const entries = Object.entries(row.consequences).filter(([k, n]) => isConsequence(k) && typeof n === 'number' && n > 0);
  entries.sort((a, b) => CONSEQUENCES.indexOf(a[0] as Consequence) - CONSEQUENCES.indexOf(b[0] as Consequence));
  if (entries.length === 0) {
    parts.push(`<span class="seg" style="width:100%;background:var(--vscode-charts-foreground,#888)"></span>`);
  }
  for (const [k, n] of entries) {
    const c = k as Consequence;
    const share = row.devices > 0 ? ((n as number) / row.devices) * 100 : 0;
    const title = `${(n as number).toLocaleString('en-US')} ${labels[c] ?? c}`;
    parts.push(
      `<span class="seg" data-consequence="${c}" title="${escape(title)}" style="width:${share.toFixed(2)}%;background:${CONSEQUENCE_COLOURS[c]}"></span>`,
    );
  }
  const marks = [row.pin ? '<span class="mark pin">◀ pin</span>' : '', row.floor ? '<span class="mark floor">floor</span>' : '']
    .filter(Boolean)
    .join(' ');
  const name = escape(row.release ?? 'unknown');
  return (
    `<tr class="row${row.pin ? ' is-pin' : ''}" data-release="${name}" data-worst="${row.worst}" data-pin="${row.pin}" data-floor="${row.floor}">` +
    `<th scope="row">${name}</th>` +
    `<td class="num">${row.devices.toLocaleString('en-US')}</td>` +
    `<td class="num">${(row.share * 100).toFixed(1)}%</td>` +
    `<td class="barcell"><div class="bar" style="width:${width.toFixed(2)}%">${parts.join('')}</div></td>` +
    `<td class="marks">${marks}</td></tr>`
  );
}

/** The whole webview document (strict CSP: no remote content, one nonce'd script). */
export function fleetHtml(data: FleetViewData, opts: HtmlOptions): string {
  const head =
    `<meta charset="utf-8"><meta http-equiv="Content-Security-Policy" content="default-src 'none'; ` +
    `style-src ${opts.cspSource} 'unsafe-inline'; script-src 'nonce-${opts.nonce}';">` +
    `<meta name="viewport" content="width=device-width, initial-scale=1.0"><title>Fieldsafe fleet</title><style>${STYLE}</style>`;
  const script =
    `<script nonce="${opts.nonce}">const vscode = acquireVsCodeApi();` +
    `document.querySelectorAll('[data-action]').forEach((b) => b.addEventListener('click', () => ` +
    `vscode.postMessage({ type: b.getAttribute('data-action'), release: b.getAttribute('data-release') })));</script>`;
  if (!data.product) {
    const why = escape(data.error ?? 'no fieldsafe.targetProduct in this project');
    return (
      `<!DOCTYPE html><html><head>${head}</head><body><h1>Fleet</h1><p class="empty">${why}</p>` +
      `<button data-action="pickProduct">Select Target Product…</button>${script}</body></html>`
    );
  }
  const rows = data.histogram ?? [];
  const top = rows.reduce((m, r) => Math.max(m, r.devices), 0);
  const labels = data.labels ?? {};
  const legend = CONSEQUENCES.map(
    (c) => `<span class="key"><span class="swatch" style="background:${CONSEQUENCE_COLOURS[c]}"></span>${escape(labels[c] ?? c)}</span>`,
  ).join('');
  const listing = data.listing;
  const warn =
    listing && !listing.complete
      ? `<p class="warn" data-incomplete="true">Incomplete listing: ${escape(listing.missing ?? 'devices are missing')}</p>`
      : '';
  const groups = data.groups && data.groups.length ? ` (groups ${escape(data.groups.join(', '))})` : '';
  const summary = data.summary
    ? `<p class="summary${data.blocksCi ? ' blocks' : ''}" data-blocks-ci="${data.blocksCi ? 'true' : 'false'}">` +
      `Pin ${escape(data.pin ?? '')}: ${escape(data.summary)}.${data.blocksCi ? ' CI fails: reached devices would go to Safe Mode.' : ''}</p>`
    : '';
  const retarget =
    data.floor && data.pin && data.floor !== data.pin
      ? `<button data-action="retarget" data-release="${escape(data.floor)}">Retarget to ${escape(data.floor)} (the floor)</button>`
      : '';
  return (
    `<!DOCTYPE html><html><head>${head}</head><body>` +
    `<h1 id="fleet-title">${escape(data.status ?? data.product)}${groups}</h1>` +
    `<p class="sub">${(data.devices ?? 0).toLocaleString('en-US')} of ${(data.devicesInProduct ?? 0).toLocaleString('en-US')} ` +
    `devices would receive a release · floor ${escape(data.floor ?? '-')} · pin ${escape(data.pin ?? 'none')}</p>` +
    warn +
    `<table class="chart" aria-label="Device OS distribution"><thead><tr><th>Device OS</th><th>devices</th><th>share</th><th></th><th></th></tr></thead>` +
    `<tbody>${rows.map((r) => rowHtml(r, top, labels)).join('')}</tbody></table>` +
    `<div class="legend">${legend}</div>${summary}` +
    `<div class="actions"><button data-action="refresh">Refresh listing</button>` +
    `<button data-action="pickGroups">Select Target Groups…</button>${retarget}</div>${script}</body></html>`
  );
}

const STYLE = `
body { font-family: var(--vscode-font-family); color: var(--vscode-foreground); padding: 0 16px; }
h1 { font-size: 1.3em; font-weight: 600; }
.sub, .legend { color: var(--vscode-descriptionForeground); }
table.chart { border-collapse: collapse; width: 100%; margin: 12px 0; }
table.chart th, table.chart td { padding: 3px 8px; text-align: left; white-space: nowrap; }
table.chart td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.barcell { width: 60%; }
.bar { display: flex; height: 16px; min-width: 2px; border-radius: 2px; overflow: hidden; }
.seg { display: block; height: 100%; }
tr.is-pin th { font-weight: 700; }
.mark { font-size: 0.85em; padding: 0 4px; border-radius: 3px; border: 1px solid var(--vscode-foreground); }
.mark.floor { border-style: dashed; }
.legend .key { margin-right: 14px; }
.swatch { display: inline-block; width: 10px; height: 10px; margin-right: 4px; border-radius: 2px; }
.summary { margin: 12px 0; }
.summary.blocks, .warn { color: var(--vscode-errorForeground); }
button { margin-right: 8px; color: var(--vscode-button-foreground); background: var(--vscode-button-background); border: none; padding: 4px 10px; }
`;
