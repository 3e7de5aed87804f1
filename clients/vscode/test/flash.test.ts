import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  buildFailure,
  type FlashAnswer,
  flashOutcomeMessage,
  kb,
  refusedFlashDialog,
  updateOutcomeMessage,
  updatePlanDetail,
} from '../src/flash';

// Shaped like fieldsafe.server.flash's answer for the example project (2.3.1 build, field-unit-7 on 0.5.3).
const refused: FlashAnswer = {
  verdict: 'refuse',
  allowed: false,
  outcome: 'refused',
  device: { name: 'field-unit-7', deviceOs: '0.5.3' },
  neededRelease: '2.3.1',
  retarget: { title: 'Retarget to 0.5.3 (what field-unit-7 runs) and rebuild', release: '0.5.3' },
  update: { title: 'Update Device OS first (~340 KB)', release: '2.3.1', bytes: 340204 },
  findings: [
    { code: 'FS101', severity: 'error', message: 'boots in Safe Mode' },
    { code: 'FS604', severity: 'error', message: 'would stay in Safe Mode' },
    { code: 'FS103', severity: 'hint', message: 'not shown' },
  ],
};

test('refused flash: consequence, cost and exactly the two ways out (no flash anyway)', () => {
  const dialog = refusedFlashDialog(refused);
  assert.ok(dialog);
  assert.match(dialog.message, /would not run on field-unit-7 \(it needs Device OS 2\.3\.1, field-unit-7 runs 0\.5\.3\)/);
  assert.match(dialog.message, /Nothing was sent/);
  assert.deepEqual(
    dialog.buttons.map((b) => [b.title, b.action, b.release]),
    [
      ['Retarget and rebuild', 'retarget', '0.5.3'],
      ['Update Device OS first (~340 KB)', 'update', '2.3.1'],
    ],
  );
  assert.ok(dialog.detail.includes('[FS604]') && !dialog.detail.includes('not shown'));
  assert.ok(!dialog.buttons.some((b) => /anyway/i.test(b.title)));
});

test('no update button when the server offers no planned update (Gen 2 cap, updates disabled)', () => {
  const dialog = refusedFlashDialog({ ...refused, update: null });
  assert.deepEqual(dialog?.buttons.map((b) => b.action), ['retarget']);
});

test('an allowed flash has no dialog; a failed build says why', () => {
  assert.equal(refusedFlashDialog({ verdict: 'send', allowed: true }), undefined);
  assert.match(
    buildFailure({ outcome: 'build_failed', build: { findings: [{ code: 'FS301', severity: 'error', message: "expected ';'" }] } }) ?? '',
    /build failed, nothing was sent: expected ';'/,
  );
  assert.equal(buildFailure(refused), undefined);
});

test('outcome messages', () => {
  assert.deepEqual(flashOutcomeMessage({ outcome: 'done', device: { name: 'u' }, deviceAfter: { deviceOs: '0.5.3' } }), {
    ok: true,
    text: 'Flashed u: back online running the new app on Device OS 0.5.3.',
  });
  const timeout = flashOutcomeMessage({
    outcome: 'timeout',
    device: { name: 'u' },
    findings: [{ code: 'FS607', severity: 'error', message: 'Sent to u, but it did not come back' }],
  });
  assert.equal(timeout.ok, false);
  assert.match(timeout.text, /timeout: Sent to u, but it did not come back/);
  assert.equal(updateOutcomeMessage({ outcome: 'done', sentBytes: 340204, deviceAfter: { deviceOs: '2.3.1' } }, 'u').text,
    'Updated u to Device OS 2.3.1 (340 KB sent).');
});

test('update plan detail lists modules in order with sizes', () => {
  const text = updatePlanDetail({
    summary: 'Update u from 0.5.3 to 2.3.1: 2 modules',
    plan: { steps: [{ module: 'bootloader', release: '2.3.1', bytes: 15672 }, { module: 'system-part1', release: '2.3.1', bytes: 87468 }] },
  });
  assert.deepEqual(text.split('\n'), ['1. bootloader 2.3.1: 15,672 B', '2. system-part1 2.3.1: 87,468 B', '', 'Update u from 0.5.3 to 2.3.1: 2 modules']);
  assert.equal(kb(1_234_567), '1,235 KB');
});
