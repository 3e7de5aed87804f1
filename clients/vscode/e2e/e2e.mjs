// End-to-end test of the Fieldsafe VS Code extension in a real VS Code (code-server), driven by
// puppeteer-core + Debian chromium, with the fieldsafe emulator as the Particle Cloud.
//
// Every wait polls a DOM/disk condition with a timeout (no fixed sleeps). Screenshots of each
// checked moment go to e2e/screenshots/. Exit status: 0 all checks passed, 1 otherwise.
//
// Modes: (default) the full flow; --smoke (extension loads, launch line in the logs);
// --not-installed (an interpreter without fieldsafe gets the install notification).
// Env: FIELDSAFE_PYTHON (interpreter with fieldsafe installed; default python3), CHROMIUM
// (default /usr/bin/chromium), FIELDSAFE_VSIX (default ../fieldsafe.vsix), E2E_KEEP=1 keeps the
// temp dir, E2E_HEADFUL=1 shows the browser (needs a display).
import { spawn, execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import puppeteer from 'puppeteer-core';

const HERE = dirname(fileURLToPath(import.meta.url));
const CLIENT = resolve(HERE, '..');
const REPO = resolve(CLIENT, '..', '..');
const EXAMPLE = join(REPO, 'examples', 'field-tracker');
const VSIX = resolve(process.env.FIELDSAFE_VSIX ?? join(CLIENT, 'fieldsafe.vsix'));
const PYTHON = process.env.FIELDSAFE_PYTHON ?? 'python3';
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const CODE_SERVER = join(HERE, 'node_modules', '.bin', 'code-server');
const SHOTS = join(HERE, 'screenshots');
const TOKEN = 'fieldsafe-e2e-token';
const SMOKE = process.argv.includes('--smoke');
// --not-installed: point fieldsafe.server.python at an interpreter without fieldsafe and check the fix shown.
const NOT_INSTALLED = process.argv.includes('--not-installed');
const BARE_PYTHON = process.env.E2E_BARE_PYTHON ?? '/usr/bin/python3';
const TINKER_BIN = join(REPO, 'tests', 'fixtures', 'particle-binaries', 'electron_tinker.bin');
/** Where the workspace holds the real Particle binary for Inspect Binary (outside src/: not uploaded). */
const BIN_REL = 'binaries/electron_tinker.bin';

const started = Date.now();
const children = [];
const results = [];

function log(msg) {
  const t = ((Date.now() - started) / 1000).toFixed(1).padStart(6);
  console.log(`[e2e ${t}s] ${msg}`);
}

/** Poll `fn` until it returns a truthy value; throw with `what` after `timeoutMs`. */
async function waitFor(what, fn, timeoutMs = 30_000, intervalMs = 150) {
  const deadline = Date.now() + timeoutMs;
  let lastErr;
  for (;;) {
    try {
      const v = await fn();
      if (v) {
        return v;
      }
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastErr ? ` (last error: ${lastErr.message})` : ''}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

function freePort() {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.on('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => res(port));
    });
  });
}

/** Spawn in its own process group so cleanup can stop it and its children by pgid. */
function startProcess(name, cmd, args, opts = {}) {
  const child = spawn(cmd, args, { ...opts, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  child.output = '';
  const keep = (chunk) => {
    child.output += chunk.toString();
    if (child.output.length > 200_000) {
      child.output = child.output.slice(-100_000);
    }
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  child.procName = name;
  children.push(child);
  return child;
}

function stopAll() {
  for (const child of children.reverse()) {
    if (child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {
        // already gone
      }
    }
  }
}

/** The product the fleet checks target: a generated Electron fleet next to the default account. */
const FLEET_PRODUCT = 'electron-fleet';
const FLEET_SPEC = {
  seed: 3,
  devices: 400,
  platform: 'electron',
  device_os: { '1.5.2': 25, '2.3.1': 55, '3.3.1': 20 },
  firmware: { '1': 100 },
  groups: { beta: 0.2 },
  offline: 0.1,
};

async function startEmulator() {
  const emu = startProcess('emulator', PYTHON, [
    '-m', 'fieldsafe', 'emulator', '--port', '0', '--token', TOKEN, '--fleet', JSON.stringify(FLEET_SPEC),
  ]);
  const url = await waitFor(
    'the emulator to print its URL',
    () => {
      if (emu.exitCode !== null) {
        throw new Error(`emulator exited ${emu.exitCode}: ${emu.output}`);
      }
      const m = /^(http:\/\/127\.0\.0\.1:\d+)\S*$/m.exec(emu.output);
      return m ? m[1] : undefined;
    },
    30_000,
  );
  log(`emulator at ${url}`);
  return url;
}

function interpreterPath() {
  return execFileSync(PYTHON, ['-c', 'import sys, fieldsafe; print(sys.executable)'], { encoding: 'utf8' }).trim();
}

function prepareWorkspace(W, python) {
  const ws = join(W, 'field-tracker');
  cpSync(EXAMPLE, ws, { recursive: true });
  mkdirSync(join(ws, dirname(BIN_REL)), { recursive: true });
  cpSync(TINKER_BIN, join(ws, BIN_REL));
  const userDir = join(W, 'data', 'User');
  mkdirSync(userDir, { recursive: true });
  mkdirSync(join(W, 'home'), { recursive: true });
  const settings = {
    'security.workspace.trust.enabled': false,
    'workbench.startupEditor': 'none',
    'workbench.tips.enabled': false,
    'workbench.welcomePage.walkthroughs.openOnInstall': false,
    'telemetry.telemetryLevel': 'off',
    'extensions.autoUpdate': false,
    'extensions.autoCheckUpdates': false,
    'extensions.ignoreRecommendations': true,
    'update.mode': 'none',
    'chat.commandCenter.enabled': false,
    'workbench.secondarySideBar.defaultVisibility': 'hidden',
    // Typing in the test must not be swallowed by suggestions or auto-closing.
    'editor.quickSuggestions': { other: false, comments: false, strings: false },
    'editor.suggestOnTriggerCharacters': false,
    'editor.acceptSuggestionOnEnter': 'off',
    'editor.autoClosingBrackets': 'never',
    'editor.autoClosingQuotes': 'never',
    'editor.formatOnType': false,
    'files.autoSave': 'off',
    'fieldsafe.server.python': python,
    'fieldsafe.server.logLevel': 'info',
    'fieldsafe.trace.server': process.env.E2E_TRACE ? 'verbose' : 'off',
  };
  writeFileSync(join(userDir, 'settings.json'), JSON.stringify(settings, null, 2));
  return ws;
}

function codeServerEnv(W, apiUrl) {
  return {
    ...process.env,
    HOME: join(W, 'home'),
    PARTICLE_API_URL: apiUrl,
    PARTICLE_ACCESS_TOKEN: TOKEN,
    // Never let a stray cloud URL from the caller's env leak in.
    PARTICLE_API_BASE_URL: '',
  };
}

function installExtension(W, env) {
  const out = execFileSync(
    CODE_SERVER,
    ['--user-data-dir', join(W, 'data'), '--extensions-dir', join(W, 'ext'), '--install-extension', VSIX],
    { env, encoding: 'utf8' },
  );
  if (!/successfully installed/i.test(out)) {
    throw new Error(`--install-extension did not succeed: ${out}`);
  }
  const list = execFileSync(
    CODE_SERVER,
    ['--user-data-dir', join(W, 'data'), '--extensions-dir', join(W, 'ext'), '--list-extensions', '--show-versions'],
    { env, encoding: 'utf8' },
  );
  log(`installed extensions: ${list.trim().replace(/\n/g, ', ')}`);
  if (!/fieldsafe\.fieldsafe@/.test(list)) {
    throw new Error(`fieldsafe.fieldsafe not listed after install: ${list}`);
  }
}

async function startCodeServer(W, ws, env) {
  const port = await freePort();
  const cs = startProcess(
    'code-server',
    CODE_SERVER,
    [
      '--auth', 'none',
      '--bind-addr', `127.0.0.1:${port}`,
      '--disable-telemetry',
      '--disable-update-check',
      '--disable-workspace-trust',
      '--disable-getting-started-override',
      '--user-data-dir', join(W, 'data'),
      '--extensions-dir', join(W, 'ext'),
      ws,
    ],
    { env },
  );
  const base = `http://127.0.0.1:${port}`;
  await waitFor('code-server /healthz', async () => {
    if (cs.exitCode !== null) {
      throw new Error(`code-server exited ${cs.exitCode}: ${cs.output}`);
    }
    const r = await fetch(`${base}/healthz`).catch(() => undefined);
    return r?.ok;
  }, 60_000, 200);
  log(`code-server at ${base}`);
  return { cs, base };
}

// ---- page helpers ------------------------------------------------------------------------------

async function shot(page, name) {
  mkdirSync(SHOTS, { recursive: true });
  const file = join(SHOTS, `${name}.png`);
  await page.screenshot({ path: file });
  log(`screenshot ${relative(CLIENT, file)}`);
}

/** Text of every Problems panel row (file rows and marker rows). */
function problemRows(page) {
  return page.$$eval('.markers-panel .monaco-list-row', (rows) =>
    rows.map((r) => ({
      text: (r.innerText || r.textContent || '').replace(/\s+/g, ' ').trim(),
      label: r.getAttribute('aria-label') || '',
    })),
  );
}

async function statusItems(page) {
  return page.$$eval('.part.statusbar .statusbar-item', (items) =>
    items.map((e) => ({
      id: e.id,
      text: (e.innerText || '').replace(/\s+/g, ' ').trim(),
      label: e.getAttribute('aria-label') || '',
      classes: e.className,
      icons: Array.from(e.querySelectorAll('.codicon')).map((i) => i.className).join(' '),
    })),
  );
}

async function fieldsafeStatus(page) {
  const items = await statusItems(page);
  return items.find((i) => /fieldsafe/i.test(i.id) || /Device OS|Fieldsafe/.test(i.text));
}

async function quickInputVisible(page) {
  return page.$eval('.quick-input-widget', (e) => getComputedStyle(e).display !== 'none').catch(() => false);
}

/** Visible quick input rows in list order (virtualised lists append DOM rows in any order). */
async function quickInputRows(page) {
  return (await quickInputRowsIndexed(page)).map((x) => x.t);
}

/** Run a command by its palette title (F1, type, wait for the row, Enter). */
async function runCommand(page, title) {
  await page.keyboard.press('F1');
  await waitFor('the command palette', () => quickInputVisible(page), 10_000);
  await page.keyboard.type(title);
  // Enter runs the first row: wait until the filter has put this command first.
  await waitFor(`palette row "${title}" first`, async () => ((await quickInputRows(page))[0] ?? '').includes(title), 10_000);
  await page.keyboard.press('Enter');
}

/** Quick Open a file by a path fragment and wait for its editor tab to be active. */
async function openFile(page, pathFragment, tabName) {
  await page.keyboard.down('Control');
  await page.keyboard.press('KeyP');
  await page.keyboard.up('Control');
  await waitFor('quick open', () => quickInputVisible(page), 10_000);
  await page.keyboard.type(pathFragment);
  // Enter opens the first row: wait until the filter has put the wanted file first (not a recent editor).
  await waitFor(`quick open's first row is ${pathFragment}`, async () => {
    const rows = await quickInputRows(page);
    return rows.length > 0 && rows[0].includes(tabName);
  }, 15_000);
  await page.keyboard.press('Enter');
  await waitFor(`active editor tab ${tabName}`, () =>
    page.$$eval('.tabs-container .tab.active', (tabs, n) => tabs.some((t) => (t.getAttribute('aria-label') || t.innerText).includes(n)), tabName),
  );
  await waitFor('editor focus', () => page.$eval('.monaco-editor.focused', () => true).catch(() => false), 10_000);
}

async function clickTab(page, tabName) {
  const selector = '.tabs-container .tab';
  await waitFor(`editor tab ${tabName}`, () =>
    page.$$eval(selector, (tabs, n) => tabs.some((t) => (t.getAttribute('aria-label') || t.innerText).includes(n)), tabName),
  );
  const tabs = await page.$$(selector);
  for (const tab of tabs) {
    const label = await tab.evaluate((t) => t.getAttribute('aria-label') || t.innerText);
    if (label.includes(tabName)) {
      await tab.click();
      break;
    }
  }
  await waitFor(`active editor tab ${tabName}`, () =>
    page.$$eval('.tabs-container .tab.active', (tabs, n) => tabs.some((t) => (t.getAttribute('aria-label') || t.innerText).includes(n)), tabName),
  );
}

async function goToLineCol(page, line, col) {
  await page.keyboard.down('Control');
  await page.keyboard.press('KeyG');
  await page.keyboard.up('Control');
  await waitFor('go to line', () => quickInputVisible(page), 10_000);
  await page.keyboard.type(`${line}:${col}`);
  await page.keyboard.press('Enter');
  await waitFor('editor focus after go to line', () => page.$eval('.monaco-editor.focused', () => true).catch(() => false), 10_000);
}

async function activeTabDirty(page) {
  return page.$eval('.tabs-container .tab.active', (t) => t.classList.contains('dirty')).catch(() => false);
}

async function save(page) {
  await page.keyboard.down('Control');
  await page.keyboard.press('KeyS');
  await page.keyboard.up('Control');
  await waitFor('the active editor to be saved', async () => !(await activeTabDirty(page)), 10_000);
}

/** Quick input rows with their list index, in list order (for clicking a row found by text). */
async function quickInputRowsIndexed(page) {
  return page.$$eval('.quick-input-widget .monaco-list-row', (rows) =>
    rows
      .map((r) => {
        // Join text nodes with spaces: innerText glues label and description ("0.5.3field-unit-7 …").
        const parts = [];
        const walker = document.createTreeWalker(r, NodeFilter.SHOW_TEXT);
        for (let n = walker.nextNode(); n; n = walker.nextNode()) {
          parts.push(n.nodeValue);
        }
        return { i: Number(r.getAttribute('data-index') ?? 0), t: parts.join(' ').replace(/\s+/g, ' ').trim() };
      })
      .sort((a, b) => a.i - b.i),
  );
}

/** The frame of an open webview whose document has `selector` (code-server nests webviews in iframes). */
async function webviewFrame(page, selector) {
  for (const frame of page.frames()) {
    try {
      if (await frame.$(selector)) {
        return frame;
      }
    } catch {
      // a frame that navigated away meanwhile
    }
  }
  return undefined;
}

/** The fleet view's rows as {release, worst, pin, floor, colours} read from its DOM. */
async function fleetRows(frame) {
  return frame.$$eval('tr.row', (rows) =>
    rows.map((r) => ({
      release: r.getAttribute('data-release'),
      worst: r.getAttribute('data-worst'),
      pin: r.getAttribute('data-pin') === 'true',
      floor: r.getAttribute('data-floor') === 'true',
      segments: Array.from(r.querySelectorAll('.seg')).map((x) => x.getAttribute('data-consequence')),
      devices: Number((r.querySelector('td.num')?.textContent || '0').replace(/,/g, '')),
    })),
  );
}

async function checkFleet(page, ws) {
  const settingsPath = join(ws, '.vscode', 'settings.json');
  await check('Select Target Product lists the account\'s products; picking one writes fieldsafe.targetProduct', async () => {
    await runCommand(page, 'Fieldsafe: Select Target Product');
    let seen = [];
    const row = await waitFor(`the ${FLEET_PRODUCT} row`, async () => {
      seen = await quickInputRows(page);
      return seen.find((r) => r.includes(FLEET_PRODUCT));
    }, 30_000).catch((err) => {
      throw new Error(`${err.message}; rows seen: ${JSON.stringify(seen.slice(0, 4))}`);
    });
    await shot(page, '15-product-picker');
    const rows = await quickInputRowsIndexed(page);
    const idx = rows.find((r) => r.t.includes(FLEET_PRODUCT)).i;
    await page.click(`.quick-input-widget .monaco-list-row[data-index="${idx}"]`);
    await waitFor('fieldsafe.targetProduct on disk', () =>
      readFileSync(settingsPath, 'utf8').includes(`"fieldsafe.targetProduct": "${FLEET_PRODUCT}"`), 20_000);
    const item = await waitFor('the status item naming the fleet and its floor', async () => {
      const i = await fieldsafeStatus(page);
      return i && new RegExp(`${FLEET_PRODUCT}: [\\d,]+ devices, floor 1\\.5\\.2`).test(i.text) ? i : undefined;
    }, 60_000);
    return `row "${row}"; status "${item.text}"`;
  }, { page });

  await check('Show Fleet: the chart of the Device OS distribution, pin marked, bars coloured by consequence', async () => {
    await runCommand(page, 'Fieldsafe: Show Fleet');
    const frame = await waitFor('the fleet webview', () => webviewFrame(page, '#fleet-title'), 30_000);
    const rows = await waitFor('three Device OS rows', async () => {
      const r = await fleetRows(frame);
      return r.length === 3 ? r : undefined;
    }, 20_000);
    const byRelease = Object.fromEntries(rows.map((r) => [r.release, r]));
    const pin = rows.find((r) => r.pin);
    if (!pin || pin.release !== '2.3.1') {
      throw new Error(`pin not marked on 2.3.1: ${JSON.stringify(rows)}`);
    }
    if (!byRelease['1.5.2']?.floor || byRelease['1.5.2'].worst !== 'healer' || !byRelease['1.5.2'].segments.includes('healer')) {
      throw new Error(`1.5.2 should be the floor and healed through Safe Mode: ${JSON.stringify(byRelease['1.5.2'])}`);
    }
    if (byRelease['3.3.1']?.worst !== 'runs' || byRelease['2.3.1'].worst !== 'runs') {
      throw new Error(`2.3.1 and 3.3.1 run the pin as is: ${JSON.stringify(rows)}`);
    }
    const colours = await frame.$$eval('.seg', (segs) => [...new Set(segs.map((x) => getComputedStyle(x).backgroundColor))]);
    if (colours.length < 2) {
      throw new Error(`bars are not coloured by consequence: ${JSON.stringify(colours)}`);
    }
    const title = await frame.$eval('#fleet-title', (e) => e.textContent);
    await shot(page, '16-fleet-view');
    return `"${title}"; rows ${rows.map((r) => `${r.release}:${r.devices}:${r.worst}`).join(' ')}; ${colours.length} colours`;
  }, { page });

  await check('Select Target Groups: picking beta writes fieldsafe.targetGroups and the fleet view follows', async () => {
    await runCommand(page, 'Fieldsafe: Select Target Groups');
    await waitFor('the beta row', async () => (await quickInputRows(page)).some((r) => /^beta/.test(r)), 30_000);
    await shot(page, '17-group-picker');
    const rows = await quickInputRowsIndexed(page);
    const idx = rows.find((r) => /^beta/.test(r.t)).i;
    await page.click(`.quick-input-widget .monaco-list-row[data-index="${idx}"] .monaco-checkbox, .quick-input-widget .monaco-list-row[data-index="${idx}"]`);
    await page.keyboard.press('Enter');
    await waitFor('fieldsafe.targetGroups on disk', () => /"fieldsafe\.targetGroups": \["beta"\]/.test(readFileSync(settingsPath, 'utf8')), 20_000);
    // Each re-draw replaces the webview document (and its frame): look the frame up on every poll.
    const title = await waitFor('the view re-drawn for the beta group', async () => {
      const frame = await webviewFrame(page, '#fleet-title');
      const t = frame ? await frame.$eval('#fleet-title', (e) => e.textContent).catch(() => '') : '';
      return t.includes('(groups beta)') ? t : undefined;
    }, 60_000);
    await shot(page, '18-fleet-view-beta');
    return `"${title}"`;
  }, { page });
}

/** Call the emulator's loopback admin API (faults, request log). */
async function emulatorAdmin(apiUrl, method, path, body) {
  const r = await fetch(`${apiUrl}${path}`, {
    method,
    headers: body ? { 'content-type': 'application/json' } : undefined,
    body: body ? JSON.stringify(body) : undefined,
  });
  if (!r.ok) {
    throw new Error(`${method} ${path}: HTTP ${r.status} ${await r.text()}`);
  }
  const text = await r.text();
  return text ? JSON.parse(text) : undefined;
}

/** PIDs of the fieldsafe language servers running in this workspace (cwd = the project folder). */
function serverPids(ws) {
  const pids = [];
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      if (cmd.includes('fieldsafe') && cmd.includes('lsp') && readlinkSync(`/proc/${pid}/cwd`) === ws) {
        pids.push(Number(pid));
      }
    } catch {
      // the process ended while we looked
    }
  }
  return pids.sort((a, b) => a - b);
}

/** Labels of the open context menu's items (VS Code renders menus in a shadow root in the browser). */
function contextMenuLabels(page) {
  return page.evaluate(() => {
    const out = [];
    const walk = (root) => {
      for (const el of root.querySelectorAll('*')) {
        if (el.matches('.monaco-menu .action-label') && el.offsetParent !== null) {
          out.push((el.getAttribute('aria-label') || el.textContent || '').trim());
        }
        if (el.shadowRoot) {
          walk(el.shadowRoot);
        }
      }
    };
    walk(document);
    return out;
  });
}

/** True once the open context menu is fully opaque (VS Code fades it in; the screenshot waits). */
function contextMenuOpaque(page) {
  return page.evaluate(() => {
    const box = document.querySelector('.context-view');
    if (!box) {
      return false;
    }
    const els = [box, ...box.querySelectorAll('*')];
    for (const el of [...els]) {
      if (el.shadowRoot) {
        els.push(...el.shadowRoot.querySelectorAll('*'));
      }
    }
    return els.every((el) => getComputedStyle(el).opacity === '1' && !(el.getAnimations?.() ?? []).some((a) => a.playState === 'running'));
  });
}

/** Click the visible context menu item with this label (inside the shadow root). */
async function clickContextMenuItem(page, label) {
  const box = await page.evaluate((want) => {
    let found;
    const walk = (root) => {
      for (const el of root.querySelectorAll('*')) {
        if (!found && el.matches('.monaco-menu .action-label') && el.offsetParent !== null
          && (el.getAttribute('aria-label') || el.textContent || '').trim() === want) {
          const r = el.getBoundingClientRect();
          found = { x: r.x + r.width / 2, y: r.y + r.height / 2 };
        }
        if (el.shadowRoot) {
          walk(el.shadowRoot);
        }
      }
    };
    walk(document);
    return found;
  }, label);
  if (!box) {
    throw new Error(`no context menu item "${label}"`);
  }
  await page.mouse.click(box.x, box.y);
}

/** The open modal dialog: message, detail and button labels (undefined when none is shown). */
function modalDialog(page) {
  return page.evaluate(() => {
    const box = document.querySelector('.monaco-dialog-box');
    if (!box || box.offsetParent === null) {
      return undefined;
    }
    const text = (sel) => (box.querySelector(sel)?.innerText || '').replace(/\s+/g, ' ').trim();
    const buttons = Array.from(box.querySelectorAll('.dialog-buttons .monaco-button')).map((b) => (b.innerText || b.getAttribute('title') || '').trim());
    return { message: text('.dialog-message-text'), detail: text('.dialog-message-detail'), buttons };
  });
}

/** Click the modal dialog's button with this label. */
async function clickDialogButton(page, label) {
  const handle = await page.evaluateHandle((want) =>
    Array.from(document.querySelectorAll('.monaco-dialog-box .dialog-buttons .monaco-button')).find((b) => (b.innerText || '').trim() === want), label);
  const el = handle.asElement();
  if (!el) {
    throw new Error(`no dialog button "${label}"`);
  }
  await el.click();
}

/** Texts of the visible notifications (toasts and the notification center). */
function notificationTexts(page) {
  return page.$$eval('.notification-list-item-message', (els) => els.map((e) => e.innerText.replace(/\s+/g, ' ')));
}

/** Labels of the editor tabs, in order. */
function tabLabels(page) {
  return page.$$eval('.tabs-container .tab', (tabs) => tabs.map((t) => t.getAttribute('aria-label') || t.innerText));
}

/** The text of the active editor's visible lines (whitespace normalised). */
async function activeEditorText(page) {
  const t = await page.$eval('.editor-group-container.active .monaco-editor .view-lines', (e) => e.innerText).catch(() => '');
  return t.replace(/\s+/g, ' ');
}

/** Problems rows about the 2.3.1 pin against field-unit-7 on 0.5.3. */
function isMismatchRow(r) {
  return /0\.5\.3/.test(r.text) && /2\.3\.1/.test(r.text) && /\[Ln \d+, Col \d+\]/.test(r.text);
}

/**
 * Run one named check. A failed check is recorded and, unless `fatal`, the next (independent)
 * checks still run so one server bug does not hide the state of everything else.
 */
async function check(name, fn, { fatal = false, page } = {}) {
  const t0 = Date.now();
  try {
    const detail = await fn();
    results.push({ name, ok: true, ms: Date.now() - t0, detail });
    log(`PASS ${name}${detail ? ` — ${detail}` : ''}`);
    return true;
  } catch (err) {
    results.push({ name, ok: false, ms: Date.now() - t0, detail: err.message });
    log(`FAIL ${name} — ${err.message}`);
    if (page) {
      await shot(page, `FAILED-${results.length}`).catch(() => undefined);
      // Leave no picker or menu open for the next check.
      await page.keyboard.press('Escape').catch(() => undefined);
      await page.keyboard.press('Escape').catch(() => undefined);
    }
    if (fatal) {
      throw err;
    }
    return false;
  }
}

/** The output channel shows the exact server command line (the launch attempt). */
async function checkLogs(page) {
  await check('"Fieldsafe: Show Logs" shows the launch command in the output channel', async () => {
    await runCommand(page, 'Fieldsafe: Show Logs');
    const line = await waitFor('"Starting the Fieldsafe server" in the output view', async () => {
      // Monaco renders spaces as U+00A0 and wraps long lines: normalise all whitespace first.
      const t = (await page.$eval('.part.panel .view-lines', (e) => e.innerText).catch(() => '')).replace(/\s+/g, ' ');
      return /Starting the Fieldsafe server: (.*?) \(interpreter: [^)]*\)/.exec(t)?.[0];
    }, 20_000);
    await shot(page, '07-logs');
    if (!line.includes('-m fieldsafe lsp')) {
      throw new Error(`launch line without "-m fieldsafe lsp": ${line}`);
    }
    return line.trim();
  }, { page });
}

// ---- the test --------------------------------------------------------------------------------------

async function main() {
  if (!existsSync(VSIX)) {
    throw new Error(`${VSIX} not found: run "npm run package" in clients/vscode first`);
  }
  if (!existsSync(CODE_SERVER)) {
    throw new Error(`${CODE_SERVER} not found: run "npm ci" in clients/vscode/e2e first (see run-e2e.sh)`);
  }
  if (!existsSync(EXAMPLE)) {
    throw new Error(`${EXAMPLE} not found`);
  }
  if (!SMOKE && !NOT_INSTALLED) {
    rmSync(SHOTS, { recursive: true, force: true }); // the full run owns the folder; other modes add to it
  }
  const W = mkdtempSync(join(tmpdir(), 'fieldsafe-e2e-'));
  log(`work dir ${W}`);
  let browser;
  try {
    const python = NOT_INSTALLED ? BARE_PYTHON : interpreterPath();
    log(`server interpreter ${python}`);
    const apiUrl = await startEmulator();
    const ws = prepareWorkspace(W, python);
    const env = codeServerEnv(W, apiUrl);
    installExtension(W, env);
    const { base } = await startCodeServer(W, ws, env);

    browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: process.env.E2E_HEADFUL ? false : true,
      userDataDir: mkdtempSync(join(W, 'chromium-')),
      defaultViewport: { width: 1440, height: 900 },
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-dev-shm-usage',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
    });
    const page = await browser.newPage();
    const tOpen = Date.now();
    await page.goto(`${base}/?folder=${encodeURIComponent(ws)}`, { waitUntil: 'domcontentloaded' });
    await check('workbench loads', async () => {
      await page.waitForSelector('.monaco-workbench .part.statusbar', { timeout: 60_000 });
      return `${Date.now() - tOpen} ms`;
    }, { fatal: true, page });

    await check('extension activates (Fieldsafe status bar item)', async () => {
      const item = await waitFor('the Fieldsafe status bar item', () => fieldsafeStatus(page), 60_000);
      return `status item "${item.text}"`;
    }, { fatal: true, page });

    // Problems panel open from the start, so the first diagnostic is seen as soon as it lands.
    await page.keyboard.down('Control');
    await page.keyboard.down('Shift');
    await page.keyboard.press('KeyM');
    await page.keyboard.up('Shift');
    await page.keyboard.up('Control');
    await page.waitForSelector('.markers-panel', { timeout: 20_000 });

    if (SMOKE) {
      await checkLogs(page);
      return;
    }
    if (NOT_INSTALLED) {
      await check('an interpreter without fieldsafe gets a notification with the install command', async () => {
        // the VSIX carries no wheel and runs outside a checkout: the hint names what pip needs (no index has fieldsafe)
        const want = `Install with: ${BARE_PYTHON} -m pip install '<fieldsafe checkout or wheel>', naming a clone of the fieldsafe repository`;
        const msg = await waitFor(`a notification containing "${want}"`, async () => {
          const texts = await page.$$eval('.notification-list-item-message', (els) => els.map((e) => e.innerText.replace(/\s+/g, ' ')));
          return texts.find((t) => t.includes(want));
        }, 30_000);
        const item = await waitFor('the status item in error colours', async () => {
          const i = await fieldsafeStatus(page);
          return i && /error-kind/.test(i.classes) ? i : undefined;
        }, 10_000);
        await shot(page, '08-not-installed');
        return `"${msg}"; status "${item.text}"`;
      }, { page });
      return;
    }

    let mismatchRow;
    await check('mismatch diagnostic appears in the Problems panel', async () => {
      mismatchRow = await waitFor('a Problems row about 2.3.1 vs field-unit-7 on 0.5.3', async () => {
        const rows = await problemRows(page);
        return rows.find((r) => /0\.5\.3/.test(r.text) && /2\.3\.1/.test(r.text) && /\[Ln \d+, Col \d+\]/.test(r.text));
      }, 90_000);
      const ms = Date.now() - tOpen;
      console.log(`METRIC open_to_first_diagnostic_ms ${ms}`);
      await shot(page, '01-mismatch-problems');
      return `${ms} ms after opening the project: "${mismatchRow.text}"`;
    }, { fatal: true, page });

    await check('status bar shows the pin and the device (warning colours)', async () => {
      const item = await waitFor('status item with 2.3.1 and field-unit-7 in mismatch', async () => {
        const i = await fieldsafeStatus(page);
        return i && /2\.3\.1/.test(i.text) && /field-unit-7/.test(i.text) && /0\.5\.3/.test(i.text) && /warning-kind/.test(i.classes)
          ? i
          : undefined;
      }, 60_000);
      return `"${item.text}" (${item.classes.split(' ').filter((c) => c.endsWith('-kind')).join(' ')})`;
    }, { page });

    await check('status item opens the action menu; Device OS picker lists releases from the server', async () => {
      await page.click('.part.statusbar .statusbar-item.warning-kind a, .part.statusbar .statusbar-item.warning-kind');
      await waitFor('the status menu', async () => (await quickInputRows(page)).some((r) => r.includes('Change Device OS version')), 15_000);
      await shot(page, '02-status-menu');
      const rows = await quickInputRows(page);
      const idx = rows.findIndex((r) => r.includes('Change Device OS version'));
      await page.click(`.quick-input-widget .monaco-list-row[data-index="${idx}"]`);
      let seen = [];
      const first = await waitFor('release rows from the server, the device\'s 0.5.3 first', async () => {
        seen = await quickInputRows(page);
        return seen.length > 1 && /^0\.5\.3 .*field-unit-7 runs this/.test(seen[0]) ? seen[0] : undefined;
      }, 30_000).catch((err) => {
        throw new Error(`${err.message}; rows seen: ${JSON.stringify(seen.slice(0, 4))}`);
      });
      await shot(page, '03-release-picker');
      // Filter on the description: the pinned 2.3.1 is LTS and needs a Device OS update on the device.
      await page.keyboard.type('2.3.1');
      const pinned = await waitFor('the 2.3.1 row flagged LTS + needs a Device OS update', async () => {
        const r = await quickInputRows(page);
        return r.find((x) => /2\.3\.1 .*LTS.*needs a Device OS update on field-unit-7.*current pin/.test(x));
      }, 10_000);
      await shot(page, '03b-release-picker-filtered');
      await page.keyboard.press('Escape');
      await waitFor('the picker to close', async () => !(await quickInputVisible(page)), 10_000);
      return `first row "${first}"; pinned row "${pinned}"`;
    }, { page });

    await check('Select Target Device lists the account\'s devices with platform and Device OS', async () => {
      await runCommand(page, 'Fieldsafe: Select Target Device');
      let seen = [];
      const row = await waitFor('the field-unit-7 row (current target first)', async () => {
        seen = await quickInputRows(page);
        return seen.length > 1 && /^\$?\(?.*field-unit-7 electron · Device OS 0\.5\.3 · current target/.test(seen[0]) ? seen[0] : undefined;
      }, 30_000).catch((err) => {
        throw new Error(`${err.message}; rows seen: ${JSON.stringify(seen.slice(0, 4))}`);
      });
      await shot(page, '03c-device-picker');
      await page.keyboard.press('Escape');
      await waitFor('the picker to close', async () => !(await quickInputVisible(page)), 10_000);
      return `${seen.length} rows; first "${row}"`;
    }, { page });

    const settingsPath = join(ws, '.vscode', 'settings.json');
    await check('Retarget quick-fix rewrites .vscode/settings.json and the problem goes away', async () => {
      const m = /\[Ln (\d+), Col (\d+)\]/.exec(mismatchRow.text);
      await openFile(page, '.vscode/settings.json', 'settings.json');
      await goToLineCol(page, Number(m[1]), Number(m[2]));
      // Ctrl+. again when VS Code answered "No code actions available" (the server may still be
      // re-checking the just-opened buffer); the number of tries is reported.
      let tries = 0;
      const actions = await waitFor('the quick fix menu with "Retarget to 0.5.3"', async () => {
        const labels = await page.$$eval('.action-widget .monaco-list-row', (rows) => rows.map((r) => (r.innerText || '').trim()));
        if (labels.some((l) => /Retarget to 0\.5\.3/.test(l))) {
          return labels;
        }
        const open = labels.length > 0 || (await page.$('.action-widget .monaco-list-row, .monaco-editor .message-widget, .monaco-editor-overlaymessage'));
        if (!open && tries < 5) {
          tries += 1;
          await page.keyboard.down('Control');
          await page.keyboard.press('Period');
          await page.keyboard.up('Control');
        } else if (open && labels.length === 0) {
          // "No code actions available" message: let it fade and try again
          await page.keyboard.press('Escape');
        }
        return undefined;
      }, 30_000, 500);
      console.log(`NOTE quick fix menu needed ${tries} Ctrl+. press(es)`);
      await shot(page, '04-quick-fix');
      const rows = await page.$$('.action-widget .monaco-list-row');
      const idx = actions.findIndex((l) => /Retarget to 0\.5\.3/.test(l));
      await rows[idx].click();
      await waitFor('the edit to reach the buffer or the disk', async () =>
        (await activeTabDirty(page)) || /"particle\.firmwareVersion":\s*"0\.5\.3"/.test(readFileSync(settingsPath, 'utf8')),
      10_000);
      if (await activeTabDirty(page)) {
        await save(page);
      }
      const onDisk = await waitFor('settings.json on disk to pin 0.5.3', () => {
        const text = readFileSync(settingsPath, 'utf8');
        return /"particle\.firmwareVersion":\s*"0\.5\.3"/.test(text) ? text : undefined;
      }, 15_000);
      if (!/\/\/ Pinned with/.test(onDisk)) {
        throw new Error(`the comment in settings.json was lost:\n${onDisk}`);
      }
      await waitFor('the mismatch problem to disappear after the recompile', async () => {
        const rows = await problemRows(page);
        return !rows.some((r) => /0\.5\.3/.test(r.text) && /2\.3\.1/.test(r.text));
      }, 90_000);
      const item = await waitFor('status "ok" (check icon, no warning colours) for 0.5.3 after the recompile', async () => {
        const i = await fieldsafeStatus(page);
        return i && /Device OS 0\.5\.3/.test(i.text) && !/warning-kind|error-kind/.test(i.classes) && /codicon-check\b/.test(i.icons) ? i : undefined;
      }, 90_000);
      await shot(page, '05-retargeted');
      return `quick fix items: ${JSON.stringify(actions)}; status now "${item.text}"`;
    }, { page });

    await check('a compile error in the .ino shows on its line after save', async () => {
      const ino = readdirSync(join(ws, 'src')).find((f) => f.endsWith('.ino'));
      await openFile(page, `src/${ino}`, ino);
      await page.keyboard.down('Control');
      await page.keyboard.press('End');
      await page.keyboard.up('Control');
      await page.keyboard.press('Enter');
      await page.keyboard.type('int fieldsafe_e2e_broken = ;');
      await save(page);
      const text = readFileSync(join(ws, 'src', ino), 'utf8');
      const lines = text.split('\n');
      const line = lines.findIndex((l) => l.includes('fieldsafe_e2e_broken')) + 1;
      if (line === 0) {
        throw new Error(`the bad line did not reach ${ino} on disk`);
      }
      const row = await waitFor(`an error row on ${ino} line ${line}`, async () => {
        const rows = await problemRows(page);
        return rows.find((r) => new RegExp(`\\[Ln ${line}, Col \\d+\\]`).test(r.text) && !/0\.5\.3/.test(r.text));
      }, 120_000);
      await waitFor('the squiggle in the editor', () => page.$('.monaco-editor .squiggly-error'), 10_000);
      await shot(page, '06-compile-error');
      return `"${row.text}"`;
    }, { page });

    // The .ino still holds the bad line saved by the previous check: its compile error is the
    // diagnostic that only a compile (not a pin check) brings back.
    const ino = readdirSync(join(ws, 'src')).find((f) => f.endsWith('.ino'));
    const badLine = readFileSync(join(ws, 'src', ino), 'utf8').split('\n').findIndex((l) => l.includes('fieldsafe_e2e_broken')) + 1;
    const isCompileRow = (r) => new RegExp(`\\[Ln ${badLine}, Col \\d+\\]`).test(r.text) && !/0\.5\.3/.test(r.text);

    await check('Select Device OS Version: picking 2.3.1 writes it to .vscode/settings.json on disk', async () => {
      await runCommand(page, 'Fieldsafe: Select Device OS Version');
      await waitFor('release rows with the current pin 0.5.3', async () =>
        (await quickInputRows(page)).some((r) => /0\.5\.3 .*current pin/.test(r)), 30_000);
      await page.keyboard.type('2.3.1');
      const row = await waitFor('the 2.3.1 row', async () =>
        (await quickInputRowsIndexed(page)).find((r) => /^2\.3\.1 .*LTS/.test(r.t)), 10_000);
      await shot(page, '09-release-pick');
      await page.click(`.quick-input-widget .monaco-list-row[data-index="${row.i}"]`);
      const onDisk = await waitFor('settings.json on disk to pin 2.3.1', () => {
        const text = readFileSync(settingsPath, 'utf8');
        return /"particle\.firmwareVersion":\s*"2\.3\.1"/.test(text) ? text : undefined;
      }, 15_000);
      if (!/\/\/ Pinned with/.test(onDisk) || !/"particle\.targetDevice":\s*"field-unit-7"/.test(onDisk)) {
        throw new Error(`settings.json lost its comment or other keys:\n${onDisk}`);
      }
      const tabs = await page.$$eval('.tabs-container .tab.dirty', (t) => t.map((x) => x.getAttribute('aria-label') || x.innerText));
      if (tabs.some((t) => t.includes('settings.json'))) {
        throw new Error(`the settings.json tab is still dirty: ${JSON.stringify(tabs)}`);
      }
      const mismatch = await waitFor('the mismatch problem (2.3.1 vs 0.5.3) to come back', async () =>
        (await problemRows(page)).find(isMismatchRow), 60_000);
      await shot(page, '09b-release-picked');
      return `picked "${row.t}"; on disk and saved; problem "${mismatch.text}"`;
    }, { page });

    await check('Restart Server: a new server process starts and its diagnostics come back', async () => {
      const before = await waitFor('one running fieldsafe server in the workspace', () => serverPids(ws).length ? serverPids(ws) : undefined, 10_000);
      await runCommand(page, 'Fieldsafe: Restart Server');
      const after = await waitFor(`a new server process (was ${before})`, () => {
        const now = serverPids(ws);
        return now.length > 0 && now.every((p) => !before.includes(p)) ? now : undefined;
      }, 30_000);
      // The old server's compile error is cleared with it (the new one has not compiled); the pin
      // check of the new server publishes the mismatch again.
      const rows = await waitFor('the mismatch row back and the old compile error gone', async () => {
        const r = await problemRows(page);
        return r.some(isMismatchRow) && !r.some(isCompileRow) ? r : undefined;
      }, 60_000);
      const item = await waitFor('the status item back from the new server (2.3.1, warning colours)', async () => {
        const i = await fieldsafeStatus(page);
        return i && /Device OS 2\.3\.1/.test(i.text) && /warning-kind/.test(i.classes) ? i : undefined;
      }, 30_000);
      await shot(page, '10-restarted');
      return `server pid ${before} -> ${after}; status "${item.text}"; problems: ${JSON.stringify(rows.filter(isMismatchRow).map((r) => r.text))}`;
    }, { page });

    await check('Compile Now from the palette: the status bar spins while compiling, then the compile error is back', async () => {
      // Slow the compile down (one request) so the "compiling" state is there long enough to see.
      await emulatorAdmin(apiUrl, 'DELETE', '/__emulator/faults');
      await emulatorAdmin(apiUrl, 'POST', '/__emulator/faults', { pattern: '/v1/binaries', method: 'POST', kind: 'latency', delay: 4, count: 1 });
      try {
        await runCommand(page, 'Fieldsafe: Compile Now');
        const spinning = await waitFor('the status item with the spinning sync icon', async () => {
          const i = await fieldsafeStatus(page);
          return i && /codicon-sync\b/.test(i.icons) && /codicon-modifier-spin/.test(i.icons) && /Device OS 2\.3\.1/.test(i.text) ? i : undefined;
        }, 15_000);
        await shot(page, '11-compiling');
        const row = await waitFor(`the compile error on ${ino} line ${badLine}`, async () => (await problemRows(page)).find(isCompileRow), 90_000);
        const item = await waitFor('the status item in error colours, not spinning', async () => {
          const i = await fieldsafeStatus(page);
          return i && /error-kind/.test(i.classes) && !/codicon-modifier-spin/.test(i.icons) ? i : undefined;
        }, 30_000);
        await shot(page, '12-compiled');
        const { faults } = await emulatorAdmin(apiUrl, 'GET', '/__emulator/faults');
        const hits = faults.reduce((n, f) => n + (f.hits ?? 0), 0);
        if (hits !== 1) {
          throw new Error(`expected the compile to send one POST /v1/binaries through the latency fault, saw ${hits}: ${JSON.stringify(faults)}`);
        }
        return `while compiling "${spinning.text}"; then "${item.text}" and "${row.text}"`;
      } finally {
        await emulatorAdmin(apiUrl, 'DELETE', '/__emulator/faults').catch(() => undefined);
      }
    }, { page });

    const inspectText = /depends on system module 2 .*Device OS 0\.4\.8/;
    const binPath = join(ws, BIN_REL);
    /** The active tab when it is a clean (read-only) report of the binary, with more than `minTabs` tabs open. */
    const inspectReport = async (minTabs) => {
      const tabs = await tabLabels(page);
      const active = await page.$eval('.tabs-container .tab.active', (t) => ({
        label: t.getAttribute('aria-label') || t.innerText,
        dirty: t.classList.contains('dirty'),
      })).catch(() => undefined);
      const text = await activeEditorText(page);
      return tabs.length > minTabs && active && /electron_tinker\.bin\.inspect\.txt/.test(active.label) && !active.dirty
        && text.includes(binPath) && inspectText.test(text) ? { tab: active.label, text } : undefined;
    };
    await check('Inspect Binary from the palette: the file dialog, then the report in a read-only document', async () => {
      const tabsBefore = (await tabLabels(page)).length;
      await runCommand(page, 'Fieldsafe: Inspect Binary');
      // code-server uses the simple file dialog: a quick input holding a path.
      await waitFor('the simple file dialog (a path in the quick input)', async () =>
        (await quickInputVisible(page)) && (await page.$eval('.quick-input-widget input', (e) => e.value).catch(() => '')).startsWith('/'), 15_000);
      await page.$eval('.quick-input-widget input', (e) => e.select());
      await page.keyboard.type(binPath);
      await waitFor('the dialog to show the typed path', async () =>
        (await page.$eval('.quick-input-widget input', (e) => e.value).catch(() => '')) === binPath, 10_000);
      await shot(page, '13-inspect-dialog');
      await page.keyboard.press('Enter');
      const report = await waitFor('a new read-only document with the inspect report', () => inspectReport(tabsBefore), 30_000);
      await shot(page, '13b-inspect-binary');
      return `tab "${report.tab}"; "${inspectText.exec(report.text)[0]}"`;
    }, { page });

    await check('Inspect Binary from the Explorer context menu of a .bin file', async () => {
      // Another editor in front first, so the report tab becoming active is the command's doing. The .ino is
      // already open: click its tab (Quick Open's Enter can race the filter and reopen the recent report).
      await clickTab(page, ino);
      await page.keyboard.down('Control');
      await page.keyboard.down('Shift');
      await page.keyboard.press('KeyE');
      await page.keyboard.up('Shift');
      await page.keyboard.up('Control');
      const explorerRow = (name) => page.$$eval('.explorer-folders-view .monaco-list-row', (rows, n) => {
        const r = rows.find((x) => (x.getAttribute('aria-label') || x.innerText || '').trim().split(/\s/)[0] === n);
        return r ? { index: r.getAttribute('data-index'), expanded: r.getAttribute('aria-expanded') } : undefined;
      }, name);
      const folder = await waitFor('the "binaries" folder in the Explorer', () => explorerRow('binaries'), 15_000);
      if (folder.expanded !== 'true') {
        await page.click(`.explorer-folders-view .monaco-list-row[data-index="${folder.index}"]`);
      }
      const file = await waitFor('electron_tinker.bin in the Explorer', () => explorerRow('electron_tinker.bin'), 15_000);
      await page.click(`.explorer-folders-view .monaco-list-row[data-index="${file.index}"]`, { button: 'right' });
      const labels = await waitFor('the context menu with "Inspect Binary"', async () => {
        const l = await contextMenuLabels(page);
        return l.includes('Inspect Binary') ? l : undefined;
      }, 15_000);
      await waitFor('the context menu to finish fading in', () => contextMenuOpaque(page), 5_000);
      await shot(page, '14-explorer-context-menu');
      await clickContextMenuItem(page, 'Inspect Binary');
      const report = await waitFor('the inspect report as the active document', () => inspectReport(0), 30_000);
      await shot(page, '14b-inspect-from-explorer');
      return `menu had ${labels.length} items; tab "${report.tab}"; "${inspectText.exec(report.text)[0]}"`;
    }, { page });
    await checkFleet(page, ws);
    // ---- guarded flash (issue 10): the field simulator's ledger says what reached the device ----
    const fieldLedger = async (device) => (await emulatorAdmin(apiUrl, 'GET', `/__emulator/field/${device}`)).device;
    await check('Flash to Target Device: a build field-unit-7 would not run is refused in a modal with its cost (nothing sent)', async () => {
      // The source compiles again (an earlier check saved a compile error into it); the pin is 2.3.1, field-unit-7 runs 0.5.3.
      writeFileSync(join(ws, 'src', ino), readFileSync(join(EXAMPLE, 'src', ino), 'utf8'));
      await clickTab(page, ino);
      await waitFor(`${ino} reloaded without the bad line`, async () => !(await activeEditorText(page)).includes('fieldsafe_e2e_broken'), 15_000);
      if (!/"particle\.firmwareVersion":\s*"2\.3\.1"/.test(readFileSync(settingsPath, 'utf8'))) {
        throw new Error('expected the pin 2.3.1 from the earlier checks');
      }
      await runCommand(page, 'Fieldsafe: Flash to Target Device');
      const dialog = await waitFor('the refused-flash modal', () => modalDialog(page), 120_000);
      await shot(page, '15-flash-refused');
      if (!/would not run on field-unit-7 .*Device OS 2\.3\.1.*0\.5\.3.*Nothing was sent/.test(dialog.message)) {
        throw new Error(`unexpected dialog message: ${dialog.message}`);
      }
      const labels = dialog.buttons.join(' | ');
      if (!dialog.buttons.includes('Retarget and rebuild') || !dialog.buttons.some((b) => /^Update Device OS first \(~[\d,]+ KB\)$/.test(b))
        || !dialog.buttons.includes('Cancel') || dialog.buttons.some((b) => /anyway/i.test(b))) {
        throw new Error(`unexpected buttons: ${labels}`);
      }
      if (!/Safe Mode/.test(dialog.detail)) {
        throw new Error(`the detail does not state the consequence: ${dialog.detail}`);
      }
      const ledger = await fieldLedger('field-unit-7');
      if (ledger.bytes_total !== 0 || ledger.safe_mode_entries !== 0) {
        throw new Error(`something reached the device: ${JSON.stringify(ledger)}`);
      }
      return `"${dialog.message}" [${labels}]; ledger 0 bytes, 0 Safe Mode`;
    }, { page });

    await check('Retarget and rebuild: the pin becomes 0.5.3 on disk and the rebuilt app is flashed; the device runs it (no Safe Mode)', async () => {
      await clickDialogButton(page, 'Retarget and rebuild');
      await waitFor('particle.firmwareVersion 0.5.3 in .vscode/settings.json on disk', () =>
        /"particle\.firmwareVersion":\s*"0\.5\.3"/.test(readFileSync(settingsPath, 'utf8')), 30_000);
      const done = await waitFor('the "Flashed field-unit-7" notification', async () =>
        (await notificationTexts(page)).find((t) => /Flashed field-unit-7: back online running the new app on Device OS 0\.5\.3/.test(t)), 180_000);
      await shot(page, '16-flashed');
      const ledger = await fieldLedger('field-unit-7');
      if (!(ledger.bytes_app > 0) || ledger.bytes_modules !== 0 || ledger.safe_mode_entries !== 0 || !ledger.running_app || ledger.status === 'safe_mode') {
        throw new Error(`unexpected ledger after the flash: ${JSON.stringify(ledger)}`);
      }
      return `"${done}"; ledger ${ledger.bytes_app} app bytes, ${ledger.reboots} reboot(s), Safe Mode ${ledger.safe_mode_entries}`;
    }, { page });
    await checkLogs(page);
  } finally {
    if (browser) {
      await browser.close().catch(() => undefined);
    }
    stopAll();
    if (results.some((r) => !r.ok)) {
      for (const c of children) {
        console.log(`---- ${c.procName} output (tail) ----\n${c.output.slice(-4000)}`);
      }
      const logs = join(W, 'data', 'logs');
      if (existsSync(logs)) {
        try {
          const out = execFileSync('bash', ['-c', `find "${logs}" -name '*Fieldsafe*' -o -name 'exthost.log' | head -5 | xargs -r tail -n 60`], { encoding: 'utf8' });
          console.log(`---- extension logs (tail) ----\n${out}`);
        } catch {
          // best effort
        }
      }
    }
    if (!process.env.E2E_KEEP) {
      rmSync(W, { recursive: true, force: true });
    } else {
      log(`kept ${W}`);
    }
  }
}

main()
  .then(() => {
    const failed = results.filter((r) => !r.ok).length;
    console.log(`e2e: ${results.length - failed} passed, ${failed} failed`);
    process.exit(failed === 0 && results.length > 0 ? 0 : 1);
  })
  .catch((err) => {
    const failed = results.filter((r) => !r.ok).length || 1;
    console.error(`e2e error: ${err.stack || err}`);
    console.log(`e2e: ${results.filter((r) => r.ok).length} passed, ${failed} failed`);
    stopAll();
    process.exit(1);
  });
