import { test } from 'node:test';
import assert from 'node:assert/strict';

import { parseStatusPayload, type StatusPayload } from '../src/protocol';
import { formatAge, normaliseUri, pickProject, statusView } from '../src/status';

const base: StatusPayload = {
  projectUri: 'file:///w/field-tracker',
  state: 'mismatch',
  pinnedRelease: '2.3.1',
  platform: 'electron',
  device: 'field-unit-7',
  deviceRelease: '0.5.3',
  deviceAgeSeconds: 300,
  message: 'Pinned 2.3.1 but field-unit-7 runs 0.5.3',
};

test('mismatch shows pin, device and what it runs, in warning colours', () => {
  const v = statusView(base);
  assert.equal(v.text, '$(warning) Device OS 2.3.1 · field-unit-7 runs 0.5.3');
  assert.equal(v.background, 'statusBarItem.warningBackground');
  assert.match(v.tooltip, /Pinned 2\.3\.1 but field-unit-7 runs 0\.5\.3/);
  assert.match(v.tooltip, /reported 5 min ago/);
  assert.match(v.tooltip, /Platform: electron/);
});

test('each state has its icon and colour', () => {
  const expect: Record<StatusPayload['state'], [string, string | undefined]> = {
    idle: ['$(chip)', undefined],
    compiling: ['$(sync~spin)', undefined],
    ok: ['$(check)', undefined],
    mismatch: ['$(warning)', 'statusBarItem.warningBackground'],
    failed: ['$(error)', 'statusBarItem.errorBackground'],
  };
  for (const [state, [icon, bg]] of Object.entries(expect)) {
    const v = statusView({ ...base, state: state as StatusPayload['state'] });
    assert.ok(v.text.startsWith(icon + ' '), `${state}: ${v.text}`);
    assert.equal(v.background, bg, state);
  }
});

test('no device: platform is shown; no pin: says so', () => {
  assert.equal(statusView({ projectUri: 'file:///x', state: 'ok', pinnedRelease: '6.2.1', platform: 'boron' }).text, '$(check) Device OS 6.2.1 · boron');
  const v = statusView({ projectUri: 'file:///x', state: 'idle' });
  assert.equal(v.text, '$(chip) Device OS not pinned');
  assert.match(v.tooltip, /Target device: none selected/);
  assert.equal(statusView({ ...base, deviceRelease: null }).text, '$(warning) Device OS 2.3.1 · field-unit-7 (Device OS unknown)');
});

test('ages are readable', () => {
  assert.equal(formatAge(12.4), '12 s ago');
  assert.equal(formatAge(600), '10 min ago');
  assert.equal(formatAge(7200), '2 h ago');
  assert.equal(formatAge(86400 * 3), '3 days ago');
  assert.equal(formatAge(null), undefined);
  assert.equal(formatAge(-1), undefined);
});

test('status payload validation drops junk and blanks', () => {
  assert.equal(parseStatusPayload(null), undefined);
  assert.equal(parseStatusPayload({ projectUri: 'file:///x', state: 'exploded' }), undefined);
  assert.equal(parseStatusPayload({ state: 'ok' }), undefined);
  const p = parseStatusPayload({ projectUri: 'file:///x', state: 'ok', pinnedRelease: '', deviceAgeSeconds: 'old', extra: 1 });
  assert.deepEqual(p, {
    projectUri: 'file:///x',
    state: 'ok',
    pinnedRelease: null,
    platform: null,
    device: null,
    deviceRelease: null,
    deviceAgeSeconds: null,
    fleet: null,
    fleetError: null,
    message: null,
  });
});

test('active project is the deepest root containing the document', () => {
  const roots = ['file:///w', 'file:///w/a', 'file:///w/ab/'];
  assert.equal(pickProject(roots, 'file:///w/a/src/app.ino'), 'file:///w/a');
  assert.equal(pickProject(roots, 'file:///w/ab/x.cpp'), 'file:///w/ab/');
  assert.equal(pickProject(roots, 'file:///w/other.cpp'), 'file:///w');
  assert.equal(pickProject(roots, 'file:///elsewhere/x.cpp'), undefined);
  assert.equal(pickProject(['file:///only'], 'file:///elsewhere/x.cpp'), 'file:///only');
  assert.equal(pickProject(['file:///only'], undefined), 'file:///only');
  assert.equal(pickProject([], 'file:///x'), undefined);
});

test('URIs compare after percent-decoding and drive-letter case folding', () => {
  assert.equal(pickProject(['file:///w/my%20proj'], 'file:///w/my proj/src/a.ino'), 'file:///w/my%20proj');
  assert.equal(normaliseUri('file:///C:/x/'), 'file:///c:/x');
  assert.equal(normaliseUri('file:///w/%E0%A4%A'), 'file:///w/%E0%A4%A');
});

test('the fleet target shows in the status text and tooltip', () => {
  const v = statusView({ ...base, device: null, deviceRelease: null, platform: 'boron', fleet: 'trackers: 1,204 devices, floor 2.3.1' });
  assert.equal(v.text, '$(warning) Device OS 2.3.1 · boron · trackers: 1,204 devices, floor 2.3.1');
  assert.match(v.tooltip, /Target fleet: trackers: 1,204 devices, floor 2\.3\.1/);
  const failed = statusView({ ...base, fleet: null, fleetError: 'product nope not found' });
  assert.match(failed.tooltip, /Target fleet: not checked \(product nope not found\)/);
  assert.equal(parseStatusPayload({ projectUri: 'file:///x', state: 'ok', fleet: 'a: 1 devices' })?.fleet, 'a: 1 devices');
});
