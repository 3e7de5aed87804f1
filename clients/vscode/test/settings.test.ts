import { test } from 'node:test';
import assert from 'node:assert/strict';

import { DEFAULTS, initializationOptions, readSettings } from '../src/settings';

const getter = (values: Record<string, unknown>) => (key: string) => values[key];

test('defaults when nothing is set', () => {
  assert.deepEqual(readSettings(getter({})), DEFAULTS);
  assert.equal(DEFAULTS.compileOnSave, true);
  assert.equal(DEFAULTS.compileDebounceMs, 0);
  assert.equal(DEFAULTS.uploadUnsavedBuffers, false);
});

test('values are carried over and nested keys are grouped', () => {
  const s = readSettings(
    getter({
      compileOnSave: false,
      compileDebounceMs: 750,
      uploadUnsavedBuffers: true,
      offline: true,
      'server.python': ' /venv/bin/python ',
      'server.logLevel': 'debug',
      'trace.server': 'verbose',
    }),
  );
  assert.deepEqual(s, {
    compileOnSave: false,
    compileDebounceMs: 750,
    uploadUnsavedBuffers: true,
    offline: true,
    server: { python: '/venv/bin/python', logLevel: 'debug' },
    trace: { server: 'verbose' },
  });
});

test('wrong types and unknown enum values fall back to defaults', () => {
  const s = readSettings(
    getter({ compileOnSave: 'yes', compileDebounceMs: 'fast', 'server.logLevel': 'loud', 'trace.server': true, 'server.python': 3 }),
  );
  assert.deepEqual(s, DEFAULTS);
});

test('debounce is rounded and clamped', () => {
  assert.equal(readSettings(getter({ compileDebounceMs: -5 })).compileDebounceMs, 0);
  assert.equal(readSettings(getter({ compileDebounceMs: 12.6 })).compileDebounceMs, 13);
  assert.equal(readSettings(getter({ compileDebounceMs: 1e9 })).compileDebounceMs, 60000);
  assert.equal(readSettings(getter({ compileDebounceMs: Number.NaN })).compileDebounceMs, 0);
});

test('initializationOptions is a JSON copy of the settings, not the same object', () => {
  const s = readSettings(getter({ offline: true }));
  const init = initializationOptions(s);
  assert.deepEqual(init, s);
  assert.notEqual(init, s);
  init.server.logLevel = 'error';
  assert.equal(s.server.logLevel, 'info');
});
