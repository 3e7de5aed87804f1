import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  chooseInterpreter,
  expandPath,
  formatCommand,
  importCheck,
  importFailureMessage,
  installCommand,
  pickInstallSource,
  UNKNOWN_SOURCE,
  installHint,
  serverLaunch,
} from '../src/launch';

test('setting wins over the Python extension and the default', () => {
  const i = chooseInterpreter({ setting: ' /opt/venv/bin/python ', pythonExtension: ['/usr/bin/python3.12'] });
  assert.deepEqual(i, { command: '/opt/venv/bin/python', prefixArgs: [], source: 'setting' });
});

test('Python extension interpreter is used when the setting is empty', () => {
  const i = chooseInterpreter({ setting: '  ', pythonExtension: ['conda', 'run', '-n', 'iot', 'python'] });
  assert.equal(i.source, 'python-extension');
  assert.equal(i.command, 'conda');
  assert.deepEqual(serverLaunch(i).args, ['run', '-n', 'iot', 'python', '-m', 'fieldsafe', 'lsp']);
});

test('a single executable path from the Python extension is accepted', () => {
  const i = chooseInterpreter({ pythonExtension: '/home/u/.venv/bin/python' });
  assert.deepEqual(serverLaunch(i), { command: '/home/u/.venv/bin/python', args: ['-m', 'fieldsafe', 'lsp'] });
});

test('empty or junk Python extension answers fall back to python3', () => {
  for (const ext of [undefined, null, [], [''], '  ']) {
    const i = chooseInterpreter({ setting: undefined, pythonExtension: ext });
    assert.deepEqual(i, { command: 'python3', prefixArgs: [], source: 'default' }, JSON.stringify(ext));
  }
});

test('server launch is "<python> -m fieldsafe lsp" and the check imports fieldsafe', () => {
  const i = chooseInterpreter({});
  assert.deepEqual(serverLaunch(i), { command: 'python3', args: ['-m', 'fieldsafe', 'lsp'] });
  assert.deepEqual(importCheck(i), { command: 'python3', args: ['-c', 'import fieldsafe'] });
});

test('log level is passed as a flag', () => {
  assert.deepEqual(serverLaunch(chooseInterpreter({}), 'debug').args, ['-m', 'fieldsafe', 'lsp', '--log-level', 'debug']);
});

test('setting expands ~ and ${workspaceFolder}', () => {
  const i = chooseInterpreter({ setting: '${workspaceFolder}/.venv/bin/python', workspaceFolder: '/p/field', home: '/home/u' });
  assert.equal(i.command, '/p/field/.venv/bin/python');
  assert.equal(expandPath('~/venv/bin/python', null, '/home/u'), '/home/u/venv/bin/python');
  assert.equal(expandPath('~', null, '/home/u'), '/home/u');
  assert.equal(expandPath('${userHome}/x', null, '/home/u'), '/home/u/x');
  assert.equal(expandPath('~other/x', null, '/home/u'), '~other/x');
});

test('install hint names the interpreter actually used and a source pip can install, quoted for a shell', () => {
  const i = chooseInterpreter({ setting: '/opt/My Python/bin/python3' });
  assert.equal(installHint(i, '/src/fieldsafe'), "Install with: '/opt/My Python/bin/python3' -m pip install /src/fieldsafe");
  assert.equal(installCommand(chooseInterpreter({}), '/src/fieldsafe'), 'python3 -m pip install /src/fieldsafe');
  // never `pip install fieldsafe`: that name resolves on no package index yet
  assert.match(installHint(i), /pip install '<fieldsafe checkout or wheel>', naming a clone of the fieldsafe repository/);
  assert.equal(pickInstallSource(['/x/server/fieldsafe-0.1.0-py3-none-any.whl'], '/repo'), '/x/server/fieldsafe-0.1.0-py3-none-any.whl');
  assert.equal(pickInstallSource([], '/repo'), '/repo');
  assert.equal(pickInstallSource([], undefined), UNKNOWN_SOURCE);
  assert.equal(formatCommand({ command: 'a', args: ["it's"] }), "a 'it'\\''s'");
});

test('missing module message carries the install command', () => {
  const i = chooseInterpreter({});
  const msg = importFailureMessage(i, { exitCode: 1, stderr: "Traceback...\nModuleNotFoundError: No module named 'fieldsafe'\n" });
  assert.match(msg, /not installed/);
  assert.match(msg, /Install with: python3 -m pip install '<fieldsafe checkout or wheel>'/);
});

test('a missing interpreter says to set fieldsafe.server.python', () => {
  const i = chooseInterpreter({ setting: '/nope/python' });
  const msg = importFailureMessage(i, { errorCode: 'ENOENT' });
  assert.match(msg, /cannot run the Python interpreter "\/nope\/python"/);
  assert.match(msg, /fieldsafe\.server\.python/);
});

test('other import failures show the last stderr line and the install hint', () => {
  const i = chooseInterpreter({});
  const msg = importFailureMessage(i, { exitCode: 1, stderr: 'Traceback\nImportError: cannot import name x\n\n' });
  assert.match(msg, /ImportError: cannot import name x\. Install with/);
});
