import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

import { compareVersionsDesc, devicePickItems, inspectDocumentText, releasePickItems, statusMenuItems } from '../src/picks';
import type { ReleaseInfo } from '../src/protocol';

const releases: ReleaseInfo[] = [
  { version: '0.5.3', lts: false, prerelease: false, deviceRuns: true, needsDeviceUpdate: false, moduleVersion: 65 },
  { version: '2.3.1', lts: true, prerelease: false, deviceRuns: false, needsDeviceUpdate: true, moduleVersion: 2302 },
  { version: '3.3.1', lts: false, prerelease: false, deviceRuns: false, needsDeviceUpdate: true, moduleVersion: 3300 },
  { version: '3.0.0-rc.2', lts: false, prerelease: true, deviceRuns: false, needsDeviceUpdate: true, moduleVersion: 3000 },
  { version: '0.4.9', lts: false, prerelease: false, deviceRuns: false, needsDeviceUpdate: false, moduleVersion: 11 },
];

test('version sort is newest first with prereleases below their final release', () => {
  const sorted = ['1.0.0', '3.0.0-rc.2', '3.0.0', '0.5.3', '3.0.0-rc.10', 'garbage'].sort(compareVersionsDesc);
  assert.deepEqual(sorted, ['3.0.0', '3.0.0-rc.10', '3.0.0-rc.2', '1.0.0', '0.5.3', 'garbage']);
});

test('release picks: device release first, then newer (update needed), older, prereleases', () => {
  const items = releasePickItems(releases, '2.3.1', 'field-unit-7');
  const labels = items.map((i) => (i.separator ? `-- ${i.label}` : i.label));
  assert.deepEqual(labels, [
    '-- What field-unit-7 runs',
    '0.5.3',
    '-- Needs a Device OS update on field-unit-7',
    '3.3.1',
    '$(check) 2.3.1',
    '-- Older releases (also run on field-unit-7)',
    '0.4.9',
    '-- Prereleases',
    '3.0.0-rc.2',
  ]);
  const pinned = items.find((i) => i.value === '2.3.1');
  assert.equal(pinned?.description, 'LTS · needs a Device OS update on field-unit-7 · current pin');
  assert.equal(pinned?.picked, true);
  assert.equal(pinned?.detail, 'system module version 2302');
  assert.equal(items.find((i) => i.value === '0.5.3')?.description, 'field-unit-7 runs this');
  assert.equal(items.find((i) => i.value === '3.0.0-rc.2')?.description, 'prerelease · needs a Device OS update on field-unit-7');
  assert.ok(items.filter((i) => i.separator).every((i) => i.value === undefined));
});

test('release picks without device info: finals then prereleases, no device wording', () => {
  const items = releasePickItems([{ version: '6.2.1', lts: true }, { version: '6.3.0' }, { version: '6.4.0-rc.1', prerelease: true }], null, null);
  assert.deepEqual(items.map((i) => (i.separator ? `-- ${i.label}` : i.label)), ['-- Releases', '6.3.0', '6.2.1', '-- Prereleases', '6.4.0-rc.1']);
  assert.equal(items[2].description, 'LTS');
  assert.equal(items[1].description, undefined);
  const single = releasePickItems([{ version: '6.2.1', lts: true }], null, null);
  assert.deepEqual(single.map((i) => i.label), ['6.2.1']);
});

test('device picks show platform and Device OS, with id and last heard below', () => {
  const now = new Date('2025-01-01T12:00:00Z');
  const items = devicePickItems(
    [
      { id: 'e00fce68aaaa', name: 'field-unit-7', platform: 'electron', platformId: 10, deviceOs: '0.5.3', cellular: true, online: false, lastHeard: '2025-01-01T11:00:00Z', product: null },
      { id: 'b00000000001', name: null, platform: null, platformId: 13, deviceOs: null, online: true, lastHeard: 'not a date' },
    ],
    'field-unit-7',
    now,
  );
  assert.equal(items[0].label, '$(check) field-unit-7');
  assert.equal(items[0].description, 'electron · Device OS 0.5.3 · current target');
  assert.equal(items[0].detail, 'e00fce68aaaa · offline · last heard 1 h ago');
  assert.equal(items[0].value, 'field-unit-7');
  assert.equal(items[1].label, 'b00000000001');
  assert.equal(items[1].description, 'platform 13 · Device OS unknown');
  assert.equal(items[1].detail, 'b00000000001 · online · last heard not a date');
  assert.equal(items[1].value, 'b00000000001');
});

test('status menu offers the actions and shows the current pin/target/fleet', () => {
  const items = statusMenuItems({
    projectUri: 'file:///x',
    state: 'ok',
    pinnedRelease: '5.9.0',
    device: 'boron-1',
    fleet: 'trackers: 1,204 devices, floor 2.3.1',
  });
  assert.deepEqual(
    items.map((i) => i.value),
    ['selectDeviceOsVersion', 'selectTargetDevice', 'selectTargetProduct', 'showFleet', 'compileNow', 'flashToTargetDevice', 'updateDeviceOs', 'showLogs'],
  );
  assert.equal(items[2].description, 'fleet: trackers: 1,204 devices, floor 2.3.1');
  assert.equal(items[0].description, 'pinned: 5.9.0');
  assert.equal(items[1].description, 'target: boron-1');
  assert.equal(statusMenuItems(undefined)[0].description, 'pinned: not pinned');
});

test('inspect document has the text then the JSON', () => {
  const text = inspectDocumentText('/p/firmware.bin', { text: 'Platform: electron\n', json: { platformId: 10 } });
  assert.equal(text, '# /p/firmware.bin\n\nPlatform: electron\n\n# JSON\n{\n  "platformId": 10\n}\n');
  assert.match(inspectDocumentText('/x.bin', {}), /returned no details/);
  // The server's report names the file on its first line: it is not repeated as a header.
  assert.equal(inspectDocumentText('/p/t.bin', { text: '/p/t.bin\n CRC is ok\n' }), '/p/t.bin\n CRC is ok\n');
  assert.equal(inspectDocumentText('/p/t.bin', { text: '/p/other.bin\n' }), '# /p/t.bin\n\n/p/other.bin\n');
});

test('pure modules never import vscode (they must load under plain Node)', () => {
  const dir = join(__dirname, '..', 'src');
  const files = readdirSync(dir).filter((f) => f.endsWith('.js'));
  assert.ok(files.length >= 5, `compiled pure modules in ${dir}: ${files.join(', ')}`);
  for (const f of files) {
    const src = readFileSync(join(dir, f), 'utf8');
    assert.doesNotMatch(src, /require\("vscode(-languageclient[^"]*)?"\)/, f);
  }
});
