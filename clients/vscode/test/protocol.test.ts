import { test } from 'node:test';
import assert from 'node:assert/strict';

import { parseSetTargetResult, settingsJsonUri } from '../src/protocol';

test('setTarget result: applyEdit, file, and malformed answers', () => {
  assert.deepEqual(parseSetTargetResult({ applied: true, via: 'workspace/applyEdit', changes: {} }), {
    applied: true,
    via: 'workspace/applyEdit',
  });
  assert.deepEqual(parseSetTargetResult({ applied: false, via: 'file' }), { applied: false, via: 'file' });
  assert.deepEqual(parseSetTargetResult({ applied: true, via: 'carrier pigeon' }), { applied: true, via: 'unknown' });
  assert.deepEqual(parseSetTargetResult(null), { applied: true, via: 'unknown' });
  assert.deepEqual(parseSetTargetResult('ok'), { applied: true, via: 'unknown' });
});

test('settings.json URI of a project, with or without a trailing slash', () => {
  assert.equal(settingsJsonUri('file:///w/field-tracker'), 'file:///w/field-tracker/.vscode/settings.json');
  assert.equal(settingsJsonUri('file:///w/field-tracker/'), 'file:///w/field-tracker/.vscode/settings.json');
  assert.equal(settingsJsonUri('file:///w/my%20proj'), 'file:///w/my%20proj/.vscode/settings.json');
});
