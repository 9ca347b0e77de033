#!/usr/bin/env node
// End-to-end test of the neuraldbg VS Code extension in real VS Code:
// code-server (VS Code in a browser) driven by Debian's Chromium through
// playwright-core. Needs `tests/e2e_vscode/install.sh` to have run.
//
// It installs the VSIX into an isolated code-server, opens a workspace with
// examples/strawberry.py, hole.py, raises.py and a slow function (slow_sum.py), waits for the extension's
// status bar to say the server is ready, then checks (each with a screenshot):
//   hover   hovering `count` in count_letter shows its values (0 → 1 → 2 → 3)
//   inlay   inlay hints render values in the editor
//   fill    the "Fill hole" code action in hole.py replaces `??`
//   debug   a neuraldbg debug session stops at a breakpoint, shows the locals,
//           and Step Over / Step Back move the current line and restore the state
//   trace-view  "neuraldbg: Show Trace" opens the trace view (a webview): the frames as a
//           timeline with the locals' changes marked; clicking a frame puts the editor's cursor
//           on its line, and in a debug session moves the debugger to that step; its "Raw
//           JSON" button opens the `neuraldbg/trace` JSON
//   trace-progress  Show Trace on a function whose real run takes seconds: the view shows
//           its tracing state, then the trace; no "tracing" progress stays on screen
//   trace-compare  on the replay backend the trace view shows the prediction and the real
//           run side by side
//   data-breakpoint  stopped on `count += 1`, "Break on Value Change" on count in the Variables
//           view, Continue: the session stops where count became 1
//   uncaught-exception  debugging parse_port("70000"): with "Uncaught Exceptions" (on by
//           default) it stops on the raise with VS Code's exception widget
//   install-hint  with neuraldbg.pythonPath on a Python without neuraldbg, the
//           status bar says "not installed" and a message names the fix; putting
//           the setting back restarts the server
//
// Environment:
//   NEURALDBG_E2E_CACHE       install.sh's cache (default <repo>/.artifacts/e2e-cache)
//   NEURALDBG_E2E_PYTHON      interpreter with neuraldbg (default <repo>/.venv/bin/python)
//   NEURALDBG_E2E_ARTIFACTS   where screenshots and logs go (default <repo>/.artifacts/e2e-vscode/<time>)
//   NEURALDBG_E2E_CHECKS      comma-separated subset of hover,inlay,fill,debug,trace-view,trace-progress,
//                             trace-compare,data-breakpoint,uncaught-exception,install-hint (default: all)
//   NEURALDBG_E2E_SERVER_COMMAND  JSON array: neuraldbg.serverCommand (to try the harness on another server)
//   NEURALDBG_E2E_READY       status-bar text that means ready (default "neuraldbg: ready")
//
// Exit status: 0 when every selected check passed, 1 when one failed, 2 when
// the harness itself could not start. code-server is always stopped.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const CACHE = path.resolve(process.env.NEURALDBG_E2E_CACHE || path.join(REPO, '.artifacts', 'e2e-cache'));
const PYTHON = process.env.NEURALDBG_E2E_PYTHON || path.join(REPO, '.venv', 'bin', 'python');
const STAMP = new Date().toISOString().replace(/[:.]/g, '-');
const ARTIFACTS = path.resolve(process.env.NEURALDBG_E2E_ARTIFACTS || path.join(REPO, '.artifacts', 'e2e-vscode', STAMP));
const ALL_CHECKS = ['hover', 'inlay', 'fill', 'debug', 'trace-view', 'trace-progress', 'trace-compare', 'data-breakpoint', 'uncaught-exception', 'find-inputs', 'trace-divergence', 'install-hint'];
const CHECKS = (process.env.NEURALDBG_E2E_CHECKS || ALL_CHECKS.join(',')).split(',').map((c) => c.trim()).filter(Boolean);
const READY_TEXT = process.env.NEURALDBG_E2E_READY || 'neuraldbg: ready';
const SERVER_COMMAND = process.env.NEURALDBG_E2E_SERVER_COMMAND ? JSON.parse(process.env.NEURALDBG_E2E_SERVER_COMMAND) : [];

// Ground truth for count_letter("strawberry", "r") (examples/strawberry.py).
const STRAWBERRY = {
  file: 'strawberry.py',
  functionLine: 'def count_letter(word: str, letter: str) -> int:',
  hoverLine: 'count += 1',
  hoverToken: 'count',
  breakpointLine: 13, // `count += 1`
  // count's values in order (whatever separates them), and where they come from.
  countChain: /\b0\b\D*\b1\b\D*\b2\b\D*\b3\b/,
  origin: /executed/i,
};

// parse_port("70000") raises ValueError on line 15, uncaught (examples/raises.py).
const RAISES = {
  file: 'raises.py',
  functionLine: 'def parse_port(text: str) -> int:',
  config: 'Simulate parse_port',
  call: 'parse_port("70000")',
  raiseLine: 15,
};

// A function whose real run takes seconds: "Show Trace" on it waits for the
// trace the editor started when the file opened.
const SLOW = {
  file: 'slow_sum.py',
  functionLine: 'def slow_sum(n):',
  source: [
    'import time',
    '',
    '',
    'def slow_sum(n):',
    "    '''",
    '    >>> slow_sum(8)',
    '    28',
    "    '''",
    '    total = 0',
    '    for i in range(n):',
    '        time.sleep(0.4)',
    '        total += i',
    '    return total',
    '',
  ].join('\n'),
};

const log = (...parts) => console.log(`[e2e ${new Date().toISOString().slice(11, 19)}]`, ...parts);

class CheckFailed extends Error {}

/** Polls `probe` until it returns a truthy value; `onRetry` runs between tries (e.g. move the mouse). */
async function until(what, probe, { timeoutMs = 30000, intervalMs = 250, onRetry } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (let attempt = 0; ; attempt++) {
    try {
      last = await probe(attempt);
      if (last) return last;
    } catch (error) {
      if (error instanceof CheckFailed) throw error; // the probe saw a definite failure: stop waiting
      last = error;
    }
    if (Date.now() > deadline) {
      const detail = last instanceof Error ? `: ${last.message}` : last !== undefined ? ` (last: ${JSON.stringify(last)})` : '';
      throw new CheckFailed(`timed out after ${timeoutMs / 1000}s waiting for ${what}${detail}`);
    }
    if (onRetry) await onRetry(attempt);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function readInstallEnv() {
  const file = path.join(CACHE, 'env.json');
  if (!fs.existsSync(file)) {
    throw new Error(`${file} is missing: run tests/e2e_vscode/install.sh first (NEURALDBG_E2E_CACHE=${CACHE})`);
  }
  const env = JSON.parse(fs.readFileSync(file, 'utf8'));
  for (const key of ['node', 'codeServer', 'playwrightCore', 'chromium', 'vsix']) {
    if (!env[key] || !fs.existsSync(env[key])) {
      throw new Error(`${file}: ${key} = ${env[key]} does not exist: run tests/e2e_vscode/install.sh again`);
    }
  }
  return env;
}

/** The scratch folders and workspace of one run. */
function prepareScratch() {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'neuraldbg-e2e-'));
  const dirs = Object.fromEntries(
    ['userData', 'extensions', 'xdgConfig', 'xdgData', 'xdgCache', 'chromium', 'workspace'].map((name) => [name, path.join(root, name)]),
  );
  Object.values(dirs).forEach((dir) => fs.mkdirSync(dir, { recursive: true }));
  for (const example of ['strawberry.py', 'hole.py', 'raises.py']) {
    fs.copyFileSync(path.join(REPO, 'examples', example), path.join(dirs.workspace, example));
  }
  fs.writeFileSync(path.join(dirs.workspace, SLOW.file), SLOW.source);
  fs.mkdirSync(path.join(dirs.workspace, '.vscode'));
  fs.writeFileSync(
    path.join(dirs.workspace, '.vscode', 'launch.json'),
    JSON.stringify(
      {
        version: '0.2.0',
        configurations: [
          {
            type: 'neuraldbg',
            request: 'launch',
            name: 'Simulate count_letter',
            program: '${workspaceFolder}/strawberry.py',
            function: 'count_letter',
            args: 'count_letter("strawberry", "r")',
            backend: 'exec',
            stopOnEntry: false,
          },
          {
            type: 'neuraldbg',
            request: 'launch',
            name: RAISES.config,
            program: '${workspaceFolder}/raises.py',
            function: 'parse_port',
            args: RAISES.call,
            backend: 'exec',
            stopOnEntry: false,
          },
        ],
      },
      null,
      2,
    ),
  );
  const settings = {
    'editor.hover.delay': 100,
    'editor.hover.sticky': true,
    'editor.inlayHints.enabled': 'on',
    'editor.minimap.enabled': false,
    'workbench.startupEditor': 'none',
    'workbench.tips.enabled': false,
    'workbench.enableExperiments': false,
    'workbench.secondarySideBar.defaultVisibility': 'hidden',
    'chat.disableAIFeatures': true,
    'security.workspace.trust.enabled': false,
    'telemetry.telemetryLevel': 'off',
    'update.mode': 'none',
    'extensions.autoCheckUpdates': false,
    'extensions.autoUpdate': false,
    'extensions.ignoreRecommendations': true,
    'git.enabled': false,
    'debug.openDebug': 'openOnDebugBreak',
    'debug.toolBarLocation': 'floating',
    'neuraldbg.pythonPath': PYTHON,
    'neuraldbg.backend': 'exec',
    'neuraldbg.allowExecution': true,
    'neuraldbg.trace.server': 'messages',
  };
  if (SERVER_COMMAND.length) settings['neuraldbg.serverCommand'] = SERVER_COMMAND;
  // code-server is a remote window: machine-scoped settings (neuraldbg.pythonPath,
  // neuraldbg.serverCommand) are read from the Machine settings, not the User ones.
  for (const scope of ['User', 'Machine']) {
    fs.mkdirSync(path.join(dirs.userData, scope), { recursive: true });
    fs.writeFileSync(path.join(dirs.userData, scope, 'settings.json'), JSON.stringify(settings, null, 2));
  }
  fs.writeFileSync(path.join(root, 'code-server.yaml'), 'auth: none\ncert: false\n');
  return { root, dirs, settings, config: path.join(root, 'code-server.yaml') };
}

function childEnv(installEnv, dirs) {
  return {
    ...process.env,
    PATH: `${path.dirname(installEnv.node)}:${process.env.PATH}`,
    XDG_CONFIG_HOME: dirs.xdgConfig,
    XDG_DATA_HOME: dirs.xdgData,
    XDG_CACHE_HOME: dirs.xdgCache,
  };
}

function installExtension(installEnv, dirs) {
  const result = spawnSync(
    installEnv.codeServer,
    ['--install-extension', installEnv.vsix, '--extensions-dir', dirs.extensions, '--user-data-dir', dirs.userData],
    { env: childEnv(installEnv, dirs), encoding: 'utf8', timeout: 120000 },
  );
  if (result.status !== 0) {
    throw new Error(`code-server --install-extension failed (${result.status}): ${result.stdout}\n${result.stderr}`);
  }
  log(result.stdout.trim().split('\n').pop());
}

async function startCodeServer(installEnv, scratch, port) {
  const { dirs } = scratch;
  const logFile = fs.openSync(path.join(ARTIFACTS, 'code-server.log'), 'w');
  const child = spawn(
    installEnv.codeServer,
    [
      '--bind-addr', `127.0.0.1:${port}`,
      '--auth', 'none',
      '--disable-telemetry',
      '--disable-update-check',
      '--disable-workspace-trust',
      '--disable-getting-started-override',
      '--config', scratch.config,
      '--user-data-dir', dirs.userData,
      '--extensions-dir', dirs.extensions,
      '--reconnection-grace-time', '5',
      dirs.workspace,
    ],
    { cwd: scratch.root, env: childEnv(installEnv, dirs), detached: true, stdio: ['ignore', logFile, logFile] },
  );
  let exited = null;
  child.on('exit', (code, signal) => {
    exited = { code, signal };
  });
  await until(
    'code-server /healthz',
    async () => {
      if (exited) throw new Error(`code-server exited early (${JSON.stringify(exited)}); see ${ARTIFACTS}/code-server.log`);
      const response = await fetch(`http://127.0.0.1:${port}/healthz`);
      return response.ok;
    },
    { timeoutMs: 60000 },
  );
  return child;
}

/** SIGTERM to code-server's process group, then SIGKILL if it lingers. */
async function stopCodeServer(child) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  try {
    process.kill(-child.pid, 'SIGTERM');
  } catch {
    return;
  }
  const timer = new Promise((resolve) => setTimeout(() => resolve('timeout'), 10000));
  if ((await Promise.race([exited, timer])) === 'timeout') {
    log('code-server did not stop on SIGTERM within 10 s: SIGKILL');
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
}

// ---------------------------------------------------------------- page helpers

class Workbench {
  constructor(page) {
    this.page = page;
    this.shots = [];
  }

  async screenshot(name) {
    const file = path.join(ARTIFACTS, `${name}.png`);
    await this.page.screenshot({ path: file });
    this.shots.push(file);
    log(`screenshot ${file}`);
    return file;
  }

  /** Text of every status-bar item. */
  statusBarTexts() {
    return this.page.$$eval('.statusbar-item', (items) => items.map((item) => item.innerText.trim()).filter(Boolean));
  }

  /** Runs a command from the palette, clicking the row whose title is exactly `label`. */
  async runCommand(label) {
    await this.page.keyboard.press('Escape');
    await this.page.keyboard.press('F1');
    const input = this.page.locator('.quick-input-widget input');
    await input.waitFor({ state: 'visible', timeout: 10000 });
    await input.fill(`>${label}`);
    const index = await until(`command "${label}" in the palette`, () =>
      this.page.$$eval(
        '.quick-input-list .monaco-list-row',
        (rows, label) => {
          const i = rows.findIndex((r) => r.innerText.split('\n')[0].trim() === label);
          return i >= 0 ? i + 1 : 0; // 1-based so that a match is truthy
        },
        label,
      ),
    );
    await this.page.locator('.quick-input-list .monaco-list-row').nth(index - 1).click();
  }

  async openFile(name, expectedText) {
    const opened = () => this.editorText().then((text) => text.includes(expectedText));
    if (await opened()) return;
    await until(
      `${name} in the editor`,
      async () => {
        await this.page.keyboard.press('Escape');
        await this.page.keyboard.press('Control+P');
        const input = this.page.locator('.quick-input-widget input');
        await input.waitFor({ state: 'visible', timeout: 10000 });
        await input.fill(name);
        // Enter only once the filtered list has the file on its focused row
        // (before that the list may still show recently opened files).
        const focused = await until(`"${name}" focused in quick open`, () =>
          this.page.$$eval(
            '.quick-input-list .monaco-list-row.focused',
            (rows, name) => rows.some((r) => r.innerText.includes(name)),
            name,
          ),
        { timeoutMs: 10000 }).catch(() => false);
        if (!focused) {
          const rows = await this.page.$$eval('.quick-input-list .monaco-list-row', (rows) =>
            rows.map((r) => `${r.className}: ${r.innerText.replace(/\s+/g, ' ')}`),
          );
          log(`quick open: "${name}" is not the focused row; rows: ${JSON.stringify(rows)}`);
          return false;
        }
        await this.page.keyboard.press('Enter');
        return until(`${name} to show`, opened, { timeoutMs: 10000 })
          .catch(() => false);
      },
      { timeoutMs: 45000, intervalMs: 500 },
    );
  }

  /** Rendered text of the active editor (only the lines in view). */
  editorText() {
    return this.page.evaluate(() => {
      const editor = document.querySelector('.editor-group-container.active .editor-instance .monaco-editor .view-lines');
      return editor ? editor.innerText.replace(/\u00a0/g, ' ') : '';
    });
  }

  /** Rendered lines of the active editor: {line (1-based, from the gutter), text (with any injected text)}. */
  renderedLines() {
    return this.page.evaluate(() => {
      const editor = document.querySelector('.editor-group-container.active .editor-instance .monaco-editor');
      if (!editor) return [];
      const numbers = [...editor.querySelectorAll('.margin-view-overlays .line-numbers')].map((n) => ({
        top: Math.round(n.getBoundingClientRect().top),
        line: Number(n.textContent.trim()),
      }));
      return [...editor.querySelectorAll('.view-lines .view-line')]
        .map((view) => {
          const top = Math.round(view.getBoundingClientRect().top);
          const number = numbers.find((n) => Math.abs(n.top - top) <= 2);
          return { top, line: number ? number.line : null, text: view.textContent.replace(/\u00a0/g, ' ') };
        })
        .sort((a, b) => a.top - b.top)
        .map(({ line, text }) => ({ line, text }));
    });
  }

  /** Centre of `token` (its nth occurrence) on the first rendered line containing `lineText`. */
  tokenCenter(lineText, token, occurrence = 0) {
    return this.page.evaluate(
      ({ lineText, token, occurrence }) => {
        const editor = document.querySelector('.editor-group-container.active .editor-instance .monaco-editor');
        if (!editor) return null;
        for (const line of editor.querySelectorAll('.view-lines .view-line')) {
          const text = line.textContent.replace(/\u00a0/g, ' ');
          if (!text.includes(lineText)) continue;
          // Walk the text nodes to find the token's characters, then measure them.
          const walker = document.createTreeWalker(line, NodeFilter.SHOW_TEXT);
          const nodes = [];
          let joined = '';
          for (let node = walker.nextNode(); node; node = walker.nextNode()) {
            nodes.push({ node, start: joined.length });
            joined += node.textContent.replace(/\u00a0/g, ' ');
          }
          let index = joined.indexOf(lineText);
          index = joined.indexOf(token, index);
          for (let i = 0; i < occurrence && index >= 0; i++) index = joined.indexOf(token, index + 1);
          if (index < 0) return null;
          const mid = index + Math.floor(token.length / 2);
          const hit = nodes.filter((n) => n.start <= mid).pop();
          const range = document.createRange();
          range.setStart(hit.node, mid - hit.start);
          range.setEnd(hit.node, mid - hit.start + 1);
          const rect = range.getBoundingClientRect();
          return { x: rect.left + rect.width / 2, y: rect.top + rect.height / 2 };
        }
        return null;
      },
      { lineText, token, occurrence },
    );
  }

  /** Text of the visible editor hover, or '' when none shows. */
  hoverText() {
    return this.page.evaluate(() => {
      const hovers = [...document.querySelectorAll('.monaco-editor .monaco-hover')].filter(
        (hover) => !hover.classList.contains('hidden') && hover.getBoundingClientRect().height > 0,
      );
      return hovers.map((hover) => hover.innerText.trim()).join('\n');
    });
  }

  /** Moves the mouse over a token until a hover that satisfies `accept` shows; away and back between tries. */
  async hover(lineText, token, accept, timeoutMs = 60000) {
    let seen = '';
    try {
      return await until(
        `a hover over "${token}" on "${lineText}"`,
        async () => {
          const center = await this.tokenCenter(lineText, token);
          if (!center) throw new Error(`"${token}" on "${lineText}" is not on screen`);
          await this.page.mouse.move(center.x, center.y, { steps: 2 });
          // Wait a little for this try's hover (the hover delay is 100 ms).
          return await until('hover text', async () => {
            const text = await this.hoverText();
            if (text) seen = text;
            return text && accept(text) ? text : null;
          }, { timeoutMs: 2500, intervalMs: 100 }).catch(() => null);
        },
        {
          timeoutMs,
          intervalMs: 200,
          onRetry: async () => {
            await this.page.mouse.move(5, 5);
            await this.page.keyboard.press('Escape');
          },
        },
      );
    } catch (error) {
      throw new CheckFailed(`${error.message}; last hover text: ${JSON.stringify(seen)}`);
    }
  }

  async goToLine(line) {
    await this.page.keyboard.press('Control+G');
    const input = this.page.locator('.quick-input-widget input');
    await input.waitFor({ state: 'visible', timeout: 10000 });
    await input.fill(`:${line}`);
    await this.page.keyboard.press('Enter');
    await until(`the cursor on line ${line}`, async () => (await this.cursorLine()) === line);
  }

  /** The cursor line from the status bar's "Ln 13, Col 1". */
  async cursorLine() {
    const texts = await this.statusBarTexts();
    for (const text of texts) {
      const match = /Ln (\d+), Col \d+/.exec(text);
      if (match) return Number(match[1]);
    }
    return null;
  }
}

// ---------------------------------------------------------------- checks

async function checkHover(wb, details) {
  await wb.openFile(STRAWBERRY.file, STRAWBERRY.functionLine);
  const text = await wb.hover(STRAWBERRY.hoverLine, STRAWBERRY.hoverToken, (t) =>
    t.includes(STRAWBERRY.hoverToken) && STRAWBERRY.countChain.test(t) && STRAWBERRY.origin.test(t),
  );
  details.hoverText = text;
  await wb.screenshot('02-hover-count');
  log(`hover text: ${JSON.stringify(text)}`);
}

async function checkInlayHints(wb, details) {
  await wb.page.mouse.move(5, 5);
  await wb.page.keyboard.press('Escape');
  await wb.openFile(STRAWBERRY.file, STRAWBERRY.functionLine);
  const source = fs.readFileSync(path.join(REPO, 'examples', STRAWBERRY.file), 'utf8').split('\n');
  // A rendered line that differs from its source line carries injected text: the inlay hints.
  const hinted = await until(
    'inlay hints with values in count_letter',
    async () => {
      const lines = await wb.renderedLines();
      const withHints = lines.filter(
        ({ line, text }) => line !== null && source[line - 1] !== undefined && text.trimEnd() !== source[line - 1].trimEnd(),
      );
      return withHints.some(({ text }) => /\d/.test(text)) ? withHints : null;
    },
    { timeoutMs: 60000, intervalMs: 500 },
  );
  details.inlayLines = hinted.map((h) => `${h.line}: ${h.text}`);
  log(`lines with inlay hints: ${JSON.stringify(details.inlayLines)}`);
  // On `count += 1` the hint shows what count becomes there: 1, 2, 3.
  const countLine = hinted.find((h) => source[h.line - 1].includes(STRAWBERRY.hoverLine));
  const injected = countLine ? countLine.text.replace(source[countLine.line - 1].trim(), '') : '';
  details.countLineHint = injected.trim();
  if (!/\b1\b\D*\b2\b\D*\b3\b/.test(injected)) {
    throw new CheckFailed(`no inlay hint with count's values 1, 2, 3 on \`${STRAWBERRY.hoverLine}\`: ${JSON.stringify(details.inlayLines)}`);
  }
  await wb.screenshot('03-inlay-hints');
}

async function checkFillHole(wb, details) {
  await wb.page.mouse.move(5, 5);
  await wb.openFile('hole.py', 'def running_max');
  const holeLine = fs.readFileSync(path.join(REPO, 'examples', 'hole.py'), 'utf8').split('\n').findIndex((l) => l.includes('= ??')) + 1;
  let actions = [];
  await until(
    'a "Fill hole" code action on `??` in hole.py',
    async () => {
      const center = await wb.tokenCenter('best = ??', '??');
      if (!center) throw new Error('`best = ??` is not on screen');
      await wb.page.mouse.click(center.x, center.y);
      await wb.page.keyboard.press('Control+.');
      actions = await until(
        'the code action menu',
        () =>
          wb.page.$$eval('.action-widget .monaco-list-row, .context-view .action-widget .action-item', (rows) =>
            rows.map((r) => r.innerText.trim()).filter(Boolean),
          ).then((rows) => (rows.length ? rows : null)),
        { timeoutMs: 4000 },
      ).catch(() => []);
      if (actions.some((a) => /fill hole/i.test(a))) return true;
      await wb.page.keyboard.press('Escape');
      return false;
    },
    { timeoutMs: 60000, intervalMs: 1000 },
  ).catch((error) => {
    throw new CheckFailed(`${error.message}; code actions seen: ${JSON.stringify(actions)}`);
  });
  details.codeActions = actions;
  await wb.screenshot('04a-fill-hole-menu');
  const row = wb.page.locator('.action-widget .monaco-list-row', { hasText: /fill hole/i }).first();
  await row.click();
  const filled = await until(
    '`??` to be replaced',
    async () => {
      const line = (await wb.renderedLines()).find((l) => l.line === holeLine);
      return line && !line.text.includes('??') ? line.text : null;
    },
    { timeoutMs: 30000 },
  );
  details.filledLine = filled.trim();
  log(`filled line: ${JSON.stringify(details.filledLine)}`);
  await wb.screenshot('04b-fill-hole-applied');
}

/** Current frame's line, from the Call Stack view ("13:1") or the editor's top-frame decoration. */
async function stoppedLine(wb) {
  return wb.page.evaluate(() => {
    const focused = document.querySelector('.debug-call-stack .monaco-list-row.focused .line-number, .debug-call-stack .monaco-list-row.selected .line-number');
    const first = focused || document.querySelector('.debug-call-stack .monaco-list-row .stack-frame .line-number');
    if (first) {
      const match = /(\d+)(:\d+)?/.exec(first.textContent);
      if (match) return Number(match[1]);
    }
    return null;
  });
}

/** Text of a modal dialog or error notifications, if VS Code shows any. */
async function visibleErrors(wb) {
  return wb.page.evaluate(() => {
    const texts = [];
    for (const el of document.querySelectorAll('.monaco-dialog-box, .notification-toast')) {
      if (el.getBoundingClientRect().height > 0 && (el.querySelector('.codicon-error') || el.classList.contains('monaco-dialog-box'))) {
        texts.push(el.innerText.trim().replace(/\s+/g, ' '));
      }
    }
    return texts;
  });
}

/** The Variables view's rows ("count: 0", ...), expanding a collapsed scope (e.g. Locals) first. */
async function variablesText(wb) {
  const pane = wb.page.locator('.pane', { has: wb.page.locator('.pane-header', { hasText: /^\s*Variables/i }) }).first();
  if (!(await pane.count())) return '';
  const collapsed = pane.locator('.monaco-list-row[aria-expanded="false"]').first();
  if (await collapsed.count()) {
    await collapsed.click();
  }
  return (await pane.locator('.pane-body').innerText()).trim();
}

async function checkDebug(wb, details) {
  await wb.page.mouse.move(5, 5);
  await wb.openFile(STRAWBERRY.file, STRAWBERRY.functionLine);
  await wb.goToLine(STRAWBERRY.breakpointLine);
  await wb.page.keyboard.press('F9');
  await until('the breakpoint glyph', () =>
    wb.page.$$eval('.editor-group-container.active .codicon-debug-breakpoint, .editor-group-container.active .codicon-debug-breakpoint-unverified', (e) => e.length > 0),
  );
  await wb.page.keyboard.press('F5');
  const first = await until('the session to stop at the breakpoint', async () => {
    const errors = await visibleErrors(wb);
    if (errors.length) throw new CheckFailed(`VS Code reports: ${errors.join(' | ')}`);
    const line = await stoppedLine(wb);
    return line === STRAWBERRY.breakpointLine ? line : null;
  }, { timeoutMs: 60000, intervalMs: 500 });
  const variables = await until('locals in the Variables view', async () => {
    const text = await variablesText(wb);
    return /count/.test(text) && /word/.test(text) && /strawberry/.test(text) ? text : null;
  }, { timeoutMs: 20000 });
  details.stoppedAt = first;
  details.variables = variables;
  log(`stopped at line ${first}; variables: ${JSON.stringify(variables)}`);
  await wb.screenshot('05-debug-stopped');

  await wb.page.keyboard.press('F10');
  const afterStep = await until('Step Over to move the current line', async () => {
    const line = await stoppedLine(wb);
    return line !== null && line !== first ? line : null;
  }, { timeoutMs: 20000 });
  details.afterStepOver = afterStep;
  // `count += 1` ran: the locals changed (count 0 -> 1).
  details.variablesAfterStepOver = await until('the Variables view to change after Step Over', async () => {
    const text = await variablesText(wb);
    return text && text !== variables ? text : null;
  }, { timeoutMs: 10000 });
  log(`after Step Over: line ${afterStep}; variables: ${JSON.stringify(details.variablesAfterStepOver)}`);
  await wb.screenshot('06-debug-step-over');

  // VS Code shows Step Back only when the adapter sets supportsStepBack.
  const stepBack = wb.page.locator('.debug-toolbar .action-label.codicon-debug-step-back, .debug-toolbar [aria-label^="Step Back"]').first();
  await stepBack.waitFor({ state: 'visible', timeout: 10000 }).catch(() => {
    throw new CheckFailed('no Step Back button in the debug toolbar (does the adapter set supportsStepBack?)');
  });
  await stepBack.click();
  const afterBack = await until('Step Back to return to the breakpoint line', async () => {
    const line = await stoppedLine(wb);
    return line === first ? line : null;
  }, { timeoutMs: 20000 });
  details.afterStepBack = afterBack;
  // Stepping back restores the state of that step: the locals seen at the first stop.
  details.variablesAfterStepBack = await until('the Variables view to show the first stop\'s locals again', async () => {
    const text = await variablesText(wb);
    return text === variables ? text : null;
  }, { timeoutMs: 10000 }).catch(async (error) => {
    details.variablesAfterStepBack = await variablesText(wb);
    await wb.screenshot('07-debug-step-back');
    throw new CheckFailed(`${error.message}: first stop ${JSON.stringify(variables)}, after Step Back ${JSON.stringify(details.variablesAfterStepBack)}`);
  });
  log(`after Step Back: line ${afterBack}; variables: ${JSON.stringify(details.variablesAfterStepBack)}`);
  await wb.screenshot('07-debug-step-back');
  await wb.page.keyboard.press('Shift+F5');
}

/** The frame of the neuraldbg trace view (a webview: an iframe inside an iframe) once it shows `state`. */
async function traceViewFrame(wb, state = 'trace', timeoutMs = 60000) {
  return until(`the trace view to show "${state}"`, async () => {
    for (const frame of wb.page.frames()) {
      const app = await frame.$(`#app[data-state="${state}"]`).catch(() => null);
      if (app) return frame;
    }
    return null;
  }, { timeoutMs, intervalMs: 300 });
}

/** Visible notification toasts (text), e.g. a progress notification with its Cancel button. */
function toastTexts(wb) {
  return wb.page.evaluate(() => [...document.querySelectorAll('.notification-toast')]
    .filter((el) => el.getBoundingClientRect().height > 0)
    .map((el) => el.innerText.replace(/\s+/g, ' ').trim()));
}

/** No "neuraldbg: tracing …" notification or status-bar item is left once the trace is shown. */
async function assertNoTracingProgress(wb, fn, details) {
  const lingering = async () => [...(await toastTexts(wb)), ...(await wb.statusBarTexts())].filter((t) => t.includes(`tracing ${fn}`));
  details.progressRightAfter = await lingering();
  // the server's $/progress end and VS Code's notification close are asynchronous: give them a moment
  await new Promise((resolve) => setTimeout(resolve, 2000));
  details.progressAfter2s = await lingering();
  if (details.progressRightAfter.length || details.progressAfter2s.length) {
    throw new CheckFailed(`a "tracing ${fn}" progress is still on screen after the trace view showed the trace: ` +
      `${JSON.stringify(details.progressRightAfter)} then ${JSON.stringify(details.progressAfter2s)}`);
  }
}

/** The rows of the trace view's table(s): {side, step, line, text, changes: [{name, kind, text}]}. */
function traceRows(frame) {
  return frame.$$eval('tr.frame', (rows) => rows.map((row) => ({
    side: row.closest('table').dataset.side,
    step: Number(row.dataset.step),
    line: Number(row.dataset.line),
    text: row.innerText.replace(/\s+/g, ' ').trim(),
    changes: [...row.querySelectorAll('.change')].map((c) => ({ name: c.dataset.name, kind: c.classList[1], text: c.textContent })),
  })));
}

async function checkTraceView(wb, details) {
  await wb.page.mouse.move(5, 5);
  await wb.openFile(STRAWBERRY.file, STRAWBERRY.functionLine);
  const startLine = 10; // `count = 0`: inside count_letter, away from the frame clicked below
  await wb.goToLine(startLine);
  await wb.runCommand('neuraldbg: Show Trace');
  const frame = await traceViewFrame(wb);
  const rows = await traceRows(frame);
  details.rowCount = rows.length;
  details.firstRows = rows.slice(0, 6).map((r) => r.text);
  log(`trace view: ${rows.length} rows; first: ${JSON.stringify(details.firstRows)}`);
  if (rows.length < 10) throw new CheckFailed(`the trace view shows ${rows.length} frames: ${JSON.stringify(details.firstRows)}`);
  // Ground truth of count_letter("strawberry", "r"): the call frame binds word and letter (new),
  // `for ch in word` binds ch (new), `count += 1` turns count 0 into 1 (changed).
  const has = (pred) => rows.some((r) => r.changes.some(pred));
  details.colours = {
    newWord: has((c) => c.name === 'word' && c.kind === 'new'),
    newCh: has((c) => c.name === 'ch' && c.kind === 'new'),
    countChanged: has((c) => c.name === 'count' && c.kind === 'changed' && c.text === 'count = 1'),
  };
  if (!Object.values(details.colours).every(Boolean)) {
    throw new CheckFailed(`the locals' changes are not marked as expected: ${JSON.stringify(details.colours)}`);
  }
  await assertNoTracingProgress(wb, 'count_letter', details);
  await wb.screenshot('09-trace-view');

  const target = rows.find((r) => r.line === STRAWBERRY.breakpointLine);
  details.clickedStep = target.step;
  details.clickedLine = target.line;
  await frame.locator(`tr.frame[data-step="${target.step}"]`).first().click();
  details.cursorLineAfterClick = await until(`the editor's cursor on line ${target.line} after clicking step ${target.step}`, async () => {
    const line = await wb.cursorLine();
    return line === target.line ? line : null;
  }, { timeoutMs: 15000 });
  details.activeTabAfterClick = await wb.page.$$eval('.editor-group-container.active .tab.active', (tabs) => tabs.map((t) => t.innerText.trim()).join(' | '));
  log(`clicked step ${target.step}: cursor on line ${details.cursorLineAfterClick} of ${details.activeTabAfterClick}`);
  await wb.screenshot('10-trace-view-reveal');

  // In a neuraldbg debug session on this file, a click also moves the debugger to that step
  // (neuraldbg/goToStep): from the breakpoint on `count += 1` (step 8) to `return count`.
  const back = rows.find((r) => r.line === 14 && /return/.test(r.text)) || rows[rows.length - 1];
  // the breakpoint of the debug check, or one set here (the cursor is on line 13 after the click)
  const glyphs = () => wb.page.$$eval('.editor-group-container.active .codicon-debug-breakpoint, .editor-group-container.active .codicon-debug-breakpoint-unverified', (e) => e.length);
  if ((await glyphs()) === 0) {
    await wb.page.keyboard.press('F9');
    await until('the breakpoint glyph', async () => (await glyphs()) > 0);
  }
  await wb.runCommand('Debug: Start Debugging');
  details.debugStoppedAt = await until('the debug session to stop at the breakpoint', async () => {
    const errors = await visibleErrors(wb);
    if (errors.length) throw new CheckFailed(`VS Code reports: ${errors.join(' | ')}`);
    const line = await stoppedLine(wb);
    return line === STRAWBERRY.breakpointLine ? line : null;
  }, { timeoutMs: 60000, intervalMs: 500 });
  await frame.locator(`tr.frame[data-step="${back.step}"]`).first().click();
  details.debugJumpStep = back.step;
  details.debugLineAfterClick = await until(`the debugger on line ${back.line} (step ${back.step})`, async () => {
    const line = await stoppedLine(wb);
    return line === back.line ? line : null;
  }, { timeoutMs: 20000 });
  details.variablesAfterClick = await until('the Variables view at the clicked step', async () => {
    const text = await variablesText(wb);
    return /count/.test(text) && /\b3\b/.test(text) ? text : null;
  }, { timeoutMs: 20000 });
  log(`debugger moved to step ${back.step}: line ${details.debugLineAfterClick}; variables ${JSON.stringify(details.variablesAfterClick)}`);
  await wb.screenshot('10b-trace-view-debugger');
  await wb.runCommand('Debug: Stop');
  await until('the debug session to end', async () => (await stoppedLine(wb)) === null, { timeoutMs: 20000 });

  // The raw JSON, one click away.
  await frame.locator('#raw-json').click();
  const text = await until('the trace JSON document', async () => {
    const editors = await wb.page.$$eval('.editor-instance .monaco-editor .view-lines', (els) =>
      els.map((el) => el.innerText.replace(/\u00a0/g, ' ')),
    );
    return editors.find((t) => t.includes('"frames"') && t.includes('"function"')) ?? null;
  }, { timeoutMs: 30000 });
  details.traceHead = text.split('\n').slice(0, 8).join('\n');
  details.tabTitle = await wb.page.$$eval('.tab.active', (tabs) => tabs.map((t) => t.innerText.trim()).join(' | '));
  if (!/count_letter/.test(text)) throw new CheckFailed(`the trace document does not name count_letter: ${details.traceHead}`);
  log(`trace document (${details.tabTitle}): ${JSON.stringify(details.traceHead)}`);
  await wb.screenshot('11-trace-json');
  await wb.runCommand('View: Close All Editors');
}

async function checkTraceProgress(wb, details) {
  // The trace of slow_sum takes seconds: the view shows its tracing state, then the trace, and
  // no progress notification stays behind.
  await wb.page.mouse.move(5, 5);
  await wb.openFile(SLOW.file, SLOW.functionLine);
  await wb.goToLine(10);
  await wb.runCommand('neuraldbg: Show Trace');
  const tracing = await traceViewFrame(wb, 'tracing', 20000).catch(() => null);
  details.sawTracingState = Boolean(tracing);
  if (tracing) await wb.screenshot('12-trace-view-tracing');
  const frame = await traceViewFrame(wb, 'trace', 60000);
  const rows = await traceRows(frame);
  details.rowCount = rows.length;
  details.lastRow = rows.length ? rows[rows.length - 1].text : '';
  if (!/return 28/.test(details.lastRow)) throw new CheckFailed(`the slow_sum trace does not end with return 28: ${details.lastRow}`);
  await assertNoTracingProgress(wb, 'slow_sum', details);
  await wb.screenshot('13-trace-view-done');
  await wb.runCommand('View: Close All Editors');
}

/** The start of the extension's output channel ("neuraldbg"): the command line and the server's first stderr lines. */
function extensionLogTail(scratch, lines = 12) {
  const logs = path.join(scratch.dirs.userData, 'logs');
  const found = fs.existsSync(logs)
    ? fs.readdirSync(logs, { recursive: true }).map(String).filter((f) => f.endsWith(path.join('neuraldbg.neuraldbg', 'neuraldbg.log')))
    : [];
  if (!found.length) return '(no neuraldbg.log yet)';
  const text = fs.readFileSync(path.join(logs, found.sort().pop()), 'utf8');
  return text.trimEnd().split('\n').slice(0, lines).join('\n');
}

/** Writes the User and Machine settings of the running code-server (VS Code reloads them on change). */
function writeSettings(scratch, settings) {
  for (const scope of ['User', 'Machine']) {
    fs.writeFileSync(path.join(scratch.dirs.userData, scope, 'settings.json'), JSON.stringify(settings, null, 2));
  }
}

async function checkInstallHint(wb, details, scratch) {
  // An interpreter without neuraldbg: the extension must say so and name the fix,
  // then recover once the setting points back at a good one.
  const bare = ['/usr/bin/python3', '/usr/local/bin/python3'].find((p) => {
    if (!fs.existsSync(p)) return false;
    return spawnSync(p, ['-c', 'import neuraldbg'], { cwd: scratch.dirs.workspace }).status !== 0;
  });
  if (!bare) throw new CheckFailed('no Python without neuraldbg found to try the install hint with');
  await wb.page.keyboard.press('Escape');
  writeSettings(scratch, { ...scratch.settings, 'neuraldbg.pythonPath': bare, 'neuraldbg.serverCommand': [] });
  details.status = await until('the status bar to say "neuraldbg: not installed"', async () =>
    (await wb.statusBarTexts()).find((t) => t.includes('neuraldbg: not installed')),
  { timeoutMs: 60000, intervalMs: 500 });
  details.message = await until('the error message with the fix', () =>
    wb.page.evaluate(() => [...document.querySelectorAll('.notification-toast, .notifications-list-container .monaco-list-row')]
      .map((el) => el.innerText.replace(/\s+/g, ' ').trim())
      .find((text) => text.includes('cannot import neuraldbg'))),
  { timeoutMs: 20000 });
  const fix = `${bare} -m pip install neuraldbg`;
  if (!details.message.includes(fix) || !details.message.includes('neuraldbg.pythonPath')) {
    throw new CheckFailed(`the message does not name the fix (${fix} / neuraldbg.pythonPath): ${details.message}`);
  }
  log(`install hint: ${JSON.stringify(details.message)}`);
  await wb.screenshot('08-install-hint');
  writeSettings(scratch, scratch.settings);
  details.recovered = await until(`the status bar to show "${READY_TEXT}" again`, async () =>
    (await wb.statusBarTexts()).find((t) => t.includes(READY_TEXT)),
  { timeoutMs: 120000, intervalMs: 500 });
}

/** Starts the launch configuration called `name` from the palette and waits for its first stop on `line`. */
async function debugUntilStopped(wb, name, line) {
  await wb.runCommand('Debug: Select and Start Debugging');
  const row = wb.page.locator('.quick-input-list .monaco-list-row', { hasText: name }).first();
  await row.waitFor({ state: 'visible', timeout: 10000 });
  await row.click();
  return until(`the session "${name}" to stop on line ${line}`, async () => {
    const errors = await visibleErrors(wb);
    if (errors.length) throw new CheckFailed(`VS Code reports: ${errors.join(' | ')}`);
    return (await stoppedLine(wb)) === line ? line : null;
  }, { timeoutMs: 60000, intervalMs: 500 });
}

/** The "Paused on …" label of the Call Stack view. */
function pausedLabel(wb) {
  return wb.page.evaluate(() => {
    const label = document.querySelector('.call-stack-state-message') ||
      document.querySelector('.debug-call-stack .monaco-list-row .state.label');
    return label ? label.textContent.trim() : '';
  });
}

async function stopDebugging(wb) {
  await wb.runCommand('Debug: Stop');
  await until('the debug session to end', async () => (await stoppedLine(wb)) === null, { timeoutMs: 20000 });
}

async function checkDataBreakpoint(wb, details) {
  // Stopped on `count += 1` with count = 0: "Break on Value Change" on count, then Continue
  // stops where count has become 1 (the next frame, line 11), before the breakpoint's next hit.
  await wb.page.mouse.move(5, 5);
  await wb.openFile(STRAWBERRY.file, STRAWBERRY.functionLine);
  await wb.goToLine(STRAWBERRY.breakpointLine);
  const glyphs = () => wb.page.$$eval('.editor-group-container.active .codicon-debug-breakpoint, .editor-group-container.active .codicon-debug-breakpoint-unverified', (e) => e.length);
  if ((await glyphs()) === 0) {
    await wb.page.keyboard.press('F9');
    await until('the breakpoint glyph', async () => (await glyphs()) > 0);
  }
  details.stoppedAt = await debugUntilStopped(wb, 'Simulate count_letter', STRAWBERRY.breakpointLine);
  await until('count = 0 in the Variables view', async () => /count\s*=\s*0/.test(await variablesText(wb)));
  const variable = wb.page.locator('.debug-variables .monaco-list-row', { hasText: /^\s*count\s*=/ }).first();
  await variable.click({ button: 'right' });
  const item = wb.page.locator('.context-view .action-menu-item', { hasText: 'Break on Value Change' }).first();
  await item.waitFor({ state: 'visible', timeout: 10000 }).catch(() => {
    throw new CheckFailed('no "Break on Value Change" in the Variables context menu (does the adapter answer dataBreakpointInfo?)');
  });
  // VS Code's menus act on the item under the mouse: hover it, then choose it with Enter
  await item.hover();
  await wb.page.keyboard.press('Enter');
  await until('the data breakpoint in the Breakpoints view', () => wb.page.$$eval('.debug-breakpoints .monaco-list-row',
    (rows) => rows.some((r) => /count/.test(r.innerText))), { timeoutMs: 10000 });
  await wb.page.keyboard.press('F5');
  details.stoppedOnChangeAt = await until('the data breakpoint to stop the session', async () => {
    const line = await stoppedLine(wb);
    return line !== null && line !== STRAWBERRY.breakpointLine ? line : null;
  }, { timeoutMs: 30000 });
  details.paused = await pausedLabel(wb);
  details.variables = await until('count = 1 in the Variables view', async () => {
    const text = await variablesText(wb);
    return /count\s*=\s*1\b/.test(text) ? text : null;
  }, { timeoutMs: 10000 });
  log(`data breakpoint: stopped on line ${details.stoppedOnChangeAt} (${details.paused}); ${JSON.stringify(details.variables)}`);
  await wb.screenshot('14-data-breakpoint');
  await stopDebugging(wb);
  // leave no breakpoints behind for the next checks (the palette says "Run: …" or "Debug: …")
  await wb.page.keyboard.press('Escape');
  await wb.page.keyboard.press('F1');
  await wb.page.locator('.quick-input-widget input').fill('>Remove All Breakpoints');
  const remove = wb.page.locator('.quick-input-list .monaco-list-row', { hasText: /Remove All Breakpoints/ }).first();
  await remove.waitFor({ state: 'visible', timeout: 10000 });
  await remove.click();
  await until('no breakpoints left', () => wb.page.$$eval('.debug-breakpoints .monaco-list-row',
    (rows) => !rows.some((r) => /strawberry\.py|count/.test(r.innerText))), { timeoutMs: 10000 });
}

async function checkUncaughtException(wb, details) {
  // "Uncaught Exceptions" is on by default: the session stops where parse_port raises,
  // with VS Code's exception widget, before it ends.
  await wb.page.mouse.move(5, 5);
  await wb.openFile(RAISES.file, RAISES.functionLine);
  details.stoppedAt = await debugUntilStopped(wb, RAISES.config, RAISES.raiseLine);
  details.paused = await pausedLabel(wb);
  details.exceptionWidget = await until('the exception widget', () => wb.page.evaluate(() => {
    const widget = document.querySelector('.exception-widget');
    return widget ? widget.innerText.replace(/\s+/g, ' ').trim() : null;
  }), { timeoutMs: 20000 });
  log(`uncaught exception: line ${details.stoppedAt} (${details.paused}); widget ${JSON.stringify(details.exceptionWidget)}`);
  if (!/ValueError/.test(details.exceptionWidget) || !/port out of range: 70000/.test(details.exceptionWidget)) {
    throw new CheckFailed(`the exception widget does not show the ValueError: ${details.exceptionWidget}`);
  }
  await wb.screenshot('15-uncaught-exception');
  await stopDebugging(wb);
}

/** Waits for the status bar to say `backend` is ready. */
function backendReady(wb, backend, timeoutMs) {
  return until(`the status bar to say the ${backend} backend is ready`, async () =>
    (await wb.statusBarTexts()).find((t) => t.includes('neuraldbg: ready') && t.includes(backend)),
  { timeoutMs, intervalMs: 500 });
}

/** On `backend` (with the settings `extra`), Show Trace on count_letter and run `body`; then the exec backend again. */
async function showTraceOn(wb, scratch, backend, extra, timeoutMs, body) {
  await wb.page.keyboard.press('Escape');
  writeSettings(scratch, { ...scratch.settings, 'neuraldbg.backend': backend, ...extra });
  try {
    await backendReady(wb, backend, timeoutMs);
    await wb.openFile(STRAWBERRY.file, STRAWBERRY.functionLine);
    await wb.goToLine(10);
    await wb.runCommand('neuraldbg: Show Trace');
    await body();
    await wb.runCommand('View: Close All Editors');
  } finally {
    writeSettings(scratch, scratch.settings);
    await backendReady(wb, 'exec', 60000);
  }
}

async function checkTraceCompare(wb, details, scratch) {
  // On the replay backend (a real run fed back through the model path) the trace is a
  // prediction: the view puts the real run beside it, row for row.
  await showTraceOn(wb, scratch, 'replay', {}, 60000, async () => {
    const frame = await traceViewFrame(wb);
    const rows = await traceRows(frame);
    details.sides = [...new Set(rows.map((r) => r.side))];
    details.rowsPerSide = Object.fromEntries(details.sides.map((side) => [side, rows.filter((r) => r.side === side).length]));
    details.headings = await frame.$$eval('section.side h2', (hs) => hs.map((h) => h.textContent));
    details.divergence = await frame.$$eval('.divergence-banner, tr.diverges', (els) => els.length);
    log(`compare: ${JSON.stringify(details.headings)}; divergence marks ${details.divergence}`);
    await wb.screenshot('16-trace-view-compare');
  });
}

async function checkFindInputs(wb, details) {
  // The lens on parse_port's raise: the server searches (with its progress bar), the inputs
  // found come up in a quick pick, and the one picked becomes parse_port's input.
  await wb.page.mouse.move(5, 5);
  await wb.page.keyboard.press('Escape');
  await wb.openFile(RAISES.file, RAISES.functionLine);
  const lensTitle = 'Find an input that raises ValueError';
  const lens = wb.page.locator('.codelens-decoration a', { hasText: lensTitle }).first();
  await lens.waitFor({ state: 'visible', timeout: 60000 }).catch(async () => {
    const lenses = await wb.page.$$eval('.codelens-decoration', (els) => els.map((e) => e.innerText));
    throw new CheckFailed(`no "${lensTitle}" lens; lenses: ${JSON.stringify(lenses)}`);
  });
  details.lenses = await wb.page.$$eval('.codelens-decoration', (els) => els.map((e) => e.innerText.trim()));
  await lens.click();
  const title = wb.page.locator('.quick-input-widget .quick-input-title');
  await until('the quick pick of the inputs found', async () =>
    /inputs that raise ValueError/.test((await title.innerText().catch(() => '')) || ''), { timeoutMs: 120000 });
  details.pickTitle = (await title.innerText()).trim();
  details.picks = await wb.page.$$eval('.quick-input-list .monaco-list-row', (rows) =>
    rows.map((r) => r.innerText.replace(/\s+/g, ' ').trim()));
  log(`find inputs: ${details.pickTitle}: ${JSON.stringify(details.picks)}`);
  await wb.screenshot('17-find-inputs');
  const first = wb.page.locator('.quick-input-list .monaco-list-row').first();
  details.picked = (await first.locator('.label-name').first().innerText()).trim();
  await first.click();
  // every view re-traces on the input picked: the hover over `text` names it
  details.hoverText = await wb.hover('port = int(text)', 'text', (t) => t.includes(`input ${details.picked}`) ||
    t.includes(`input \`${details.picked}\``));
  await wb.screenshot('18-find-inputs-used');
}

async function checkTraceDivergence(wb, details, scratch) {
  // On a model backend whose prediction parts from the real run (the tiny random CWM that
  // tests/test_vscode_e2e.py builds: NEURALDBG_E2E_TINY_MODEL) the view marks the first
  // divergence, and once the real run is rated under the model, Refresh shows the model's
  // probability of each real frame in a confidence column.
  const tiny = process.env.NEURALDBG_E2E_TINY_MODEL;
  if (!tiny) throw new CheckFailed('NEURALDBG_E2E_TINY_MODEL is not set: the path of a CWM checkpoint folder');
  await showTraceOn(wb, scratch, 'local', { 'neuraldbg.profile': tiny, 'neuraldbg.maxFrames': 4 }, 180000, async () => {
    const frame = await traceViewFrame(wb, 'trace', 180000);
    details.headings = await frame.$$eval('section.side h2', (hs) => hs.map((h) => h.textContent));
    details.banner = await frame.$eval('.divergence-banner', (b) => b.textContent).catch(() => null);
    details.diverging = await frame.$$eval('tr.diverges', (rows) =>
      rows.map((r) => `${r.closest('table').dataset.side}:${r.dataset.step}`));
    details.afterDivergence = await frame.$$eval('tr.after-divergence', (rows) => rows.length);
    // the rating runs in the background after the real run: Refresh until the column shows
    details.confidence = await until('a confidence column on the executed side', async () => {
      const current = await traceViewFrame(wb, 'trace', 60000);
      const cells = await current.$$eval('table[data-side="executed"] td.confidence', (tds) =>
        tds.map((td) => ({ text: td.textContent, level: td.classList[1] || '' })));
      if (cells.some((c) => c.text)) return cells;
      await current.click('#refresh');
      return null;
    }, { timeoutMs: 180000, intervalMs: 3000 });
    details.confidenceHeader = await (await traceViewFrame(wb)).$$eval('table[data-side="executed"] th',
      (ths) => ths.map((th) => th.textContent));
    log(`divergence: ${JSON.stringify(details.banner)} at ${JSON.stringify(details.diverging)}; confidence ${JSON.stringify(details.confidence)}`);
    // both sides whole, in a panel half the window wide: the executed side under the predicted one
    details.confidenceVisible = await (await traceViewFrame(wb)).$$eval('table[data-side="executed"] td.confidence', (tds) =>
      tds.filter((td) => td.textContent).every((td) => {
        const box = td.getBoundingClientRect();
        return box.width > 0 && box.right <= document.documentElement.clientWidth;
      }));
    await wb.screenshot('19-trace-view-divergence');
  });
}

const CHECK_FUNCTIONS = {
  'trace-compare': checkTraceCompare,
  'data-breakpoint': checkDataBreakpoint,
  'uncaught-exception': checkUncaughtException,
  'find-inputs': checkFindInputs,
  'trace-divergence': checkTraceDivergence,
  hover: checkHover,
  inlay: checkInlayHints,
  fill: checkFillHole,
  debug: checkDebug,
  'trace-view': checkTraceView,
  'trace-progress': checkTraceProgress,
  'install-hint': checkInstallHint,
};

// ---------------------------------------------------------------- main

async function main() {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  for (const check of CHECKS) {
    if (!CHECK_FUNCTIONS[check]) throw new Error(`unknown check "${check}" in NEURALDBG_E2E_CHECKS (known: ${ALL_CHECKS.join(', ')})`);
  }
  log(`artifacts: ${ARTIFACTS}`);
  const installEnv = readInstallEnv();
  if (!SERVER_COMMAND.length && !fs.existsSync(PYTHON)) throw new Error(`NEURALDBG_E2E_PYTHON=${PYTHON} does not exist`);
  const { chromium } = createRequire(import.meta.url)(installEnv.playwrightCore);
  const scratch = prepareScratch();
  const results = { artifacts: ARTIFACTS, python: PYTHON, checks: {}, screenshots: [] };
  let codeServer;
  let context;
  const cleanup = async () => {
    await context?.close().catch(() => undefined);
    await stopCodeServer(codeServer);
    // Keep VS Code's logs (the extension host's log holds the server's stderr).
    const logs = path.join(scratch.dirs.userData, 'logs');
    if (fs.existsSync(logs)) fs.cpSync(logs, path.join(ARTIFACTS, 'vscode-logs'), { recursive: true });
    fs.rmSync(scratch.root, { recursive: true, force: true });
  };
  const onSignal = (signal) => {
    log(`${signal}: stopping code-server`);
    cleanup().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const started = Date.now();
    installExtension(installEnv, scratch.dirs);
    const port = await freePort();
    codeServer = await startCodeServer(installEnv, scratch, port);
    log(`code-server pid ${codeServer.pid} on 127.0.0.1:${port}`);
    context = await chromium.launchPersistentContext(scratch.dirs.chromium, {
      executablePath: installEnv.chromium,
      headless: true,
      viewport: { width: 1400, height: 900 },
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    const page = context.pages()[0] || (await context.newPage());
    page.setDefaultTimeout(30000);
    const wb = new Workbench(page);
    await page.goto(`http://127.0.0.1:${port}/?folder=${encodeURIComponent(scratch.dirs.workspace)}`);
    await page.locator('.monaco-workbench').waitFor({ state: 'visible', timeout: 60000 });
    log(`workbench up in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    // Opening a Python file activates the extension.
    await wb.openFile(STRAWBERRY.file, STRAWBERRY.functionLine);
    const ready = await until(
      `the status bar to show "${READY_TEXT}"`,
      async () => (await wb.statusBarTexts()).find((t) => t.includes(READY_TEXT)),
      { timeoutMs: 120000, intervalMs: 500 },
    ).catch(async (error) => {
      await wb.screenshot('01-not-ready');
      const texts = await wb.statusBarTexts();
      throw new Error(`${error.message}; status bar: ${JSON.stringify(texts)}\n--- neuraldbg output channel (start) ---\n${extensionLogTail(scratch)}`);
    });
    results.ready = ready;
    log(`server ready after ${((Date.now() - started) / 1000).toFixed(1)} s: "${ready}"`);
    await wb.screenshot('01-ready');

    for (const check of CHECKS) {
      const details = {};
      const t0 = Date.now();
      try {
        await CHECK_FUNCTIONS[check](wb, details, scratch);
        results.checks[check] = { ok: true, seconds: (Date.now() - t0) / 1000, ...details };
        log(`PASS ${check} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
      } catch (error) {
        results.checks[check] = { ok: false, error: error.message, seconds: (Date.now() - t0) / 1000, ...details };
        log(`FAIL ${check}: ${error.message}`);
        await wb.screenshot(`fail-${check}`).catch(() => undefined);
        await page.keyboard.press('Escape').catch(() => undefined);
      }
    }
    results.screenshots = wb.shots;
    results.seconds = (Date.now() - started) / 1000;
  } finally {
    await cleanup();
    fs.writeFileSync(path.join(ARTIFACTS, 'results.json'), JSON.stringify(results, null, 2));
  }
  const failed = Object.entries(results.checks).filter(([, r]) => !r.ok);
  log(`results: ${path.join(ARTIFACTS, 'results.json')}`);
  log(`screenshots: ${results.screenshots.join(' ')}`);
  if (failed.length) {
    for (const [name, r] of failed) console.error(`e2e FAILED: ${name}: ${r.error}`);
    console.error(`e2e: ${CHECKS.length - failed.length} of ${CHECKS.length} checks passed; artifacts in ${ARTIFACTS}`);
    return 1;
  }
  log(`e2e: all ${CHECKS.length} checks passed in ${results.seconds.toFixed(1)} s; artifacts in ${ARTIFACTS}`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (error) => {
    console.error(`e2e harness error: ${error instanceof CheckFailed ? error.message : error.stack || error}`);
    console.error(`artifacts in ${ARTIFACTS}`);
    process.exit(2);
  },
);
