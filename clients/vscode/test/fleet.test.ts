import { test } from 'node:test';
import assert from 'node:assert/strict';

import { fleetHtml, type FleetViewData, groupPickItems, productOfStatus, productPickItems } from '../src/fleet';

const data: FleetViewData = {
  product: 'trackers',
  groups: [],
  status: 'trackers: 998 devices, floor 2.3.1',
  devices: 998,
  devicesInProduct: 1000,
  floor: '2.3.1',
  pin: '6.3.4',
  listing: { complete: true, missing: null, ageSeconds: 3, source: 'cache' },
  histogram: [
    { release: '2.3.1', devices: 52, share: 0.052, consequences: { healer: 49, stuck: 3 }, worst: 'stuck', pin: false, floor: true },
    { release: '4.0.2', devices: 900, share: 0.902, consequences: { healer: 900 }, worst: 'healer', pin: false, floor: false },
    { release: '6.3.4', devices: 46, share: 0.046, consequences: { runs: 46 }, worst: 'runs', pin: true, floor: false },
  ],
  summary: '46 run it as is; 949 boot in Safe Mode and are healed',
  blocksCi: true,
  labels: { runs: 'runs as is', healer: 'Safe Mode, healed', stuck: 'stuck in Safe Mode' },
};

test('fleet view draws one bar per Device OS, coloured by consequence, pin and floor marked', () => {
  const html = fleetHtml(data, { nonce: 'abc', cspSource: 'vscode-resource:' });
  assert.match(html, /<h1 id="fleet-title">trackers: 998 devices, floor 2\.3\.1<\/h1>/);
  assert.equal((html.match(/<tr class="row/g) ?? []).length, 3);
  assert.match(html, /data-release="6\.3\.4" data-worst="runs" data-pin="true"/);
  assert.match(html, /data-release="2\.3\.1" data-worst="stuck" data-pin="false" data-floor="true"/);
  assert.match(html, /data-consequence="stuck"[^>]*background:var\(--vscode-charts-red/);
  assert.match(html, /data-consequence="runs"[^>]*background:var\(--vscode-charts-green/);
  assert.match(html, /◀ pin/);
  assert.match(html, /data-blocks-ci="true"/);
  assert.match(html, /Retarget to 2\.3\.1 \(the floor\)/);
  assert.match(html, /script-src 'nonce-abc'/);
  assert.doesNotMatch(html, /https?:\/\//); // no remote content
});

test('fleet view escapes server text and says why there is no fleet', () => {
  const html = fleetHtml({ product: null, error: '<b>no</b> product' }, { nonce: 'n', cspSource: 'x' });
  assert.match(html, /&lt;b&gt;no&lt;\/b&gt; product/);
  assert.match(html, /Select Target Product/);
  const incomplete = fleetHtml({ ...data, listing: { complete: false, missing: 'pages 7, 9 (rate limited)' } }, { nonce: 'n', cspSource: 'x' });
  assert.match(incomplete, /Incomplete listing: pages 7, 9 \(rate limited\)/);
});

test('product and group pickers', () => {
  const items = productPickItems(
    [
      { id: 9001, slug: 'trackers', name: 'Trackers', platform: 'Boron', groups: ['beta'] },
      { id: 9002, slug: null, name: null },
    ],
    'trackers',
  );
  assert.equal(items[0].value, 'trackers');
  assert.ok(items[0].picked);
  assert.equal(items[0].description, 'trackers · Boron');
  assert.equal(items[0].detail, 'product 9001 · groups beta');
  assert.equal(items[1].value, '9002');
  const groups = groupPickItems([{ name: 'beta', devices: 1204 }, { name: 'north' }], ['north']);
  assert.equal(groups[0].description, '1,204 devices');
  assert.ok(groups[1].picked && !groups[0].picked);
  assert.equal(productOfStatus('trackers: 1,204 devices, floor 2.3.1'), 'trackers');
  assert.equal(productOfStatus(null), undefined);
});
