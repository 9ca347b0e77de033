// Microsoft's DebugClient (@vscode/debugadapter-testsupport) against
// `python -m neuraldbg.dap`: launch, breakpoints, stepping (back too),
// variables, evaluate, as VS Code drives an adapter. Plain node + assert.
'use strict';
const assert = require('assert');
const path = require('path');
const { DebugClient } = require('@vscode/debugadapter-testsupport');

const PYTHON = process.env.NEURALDBG_PYTHON || 'python3';
const REPO = path.resolve(__dirname, '..', '..');
const PROGRAM = path.join(REPO, 'examples', 'strawberry.py');
const RECURSION = path.join(REPO, 'examples', 'recursion.py');
const CALL = 'count_letter("strawberry", "r")';

function client() {
  // "-mneuraldbg.dap" is one argument: DebugClient spawns runtime + [executable].
  const dc = new DebugClient(PYTHON, '-mneuraldbg.dap', 'neuraldbg', { cwd: REPO, env: process.env }, true);
  dc.defaultTimeout = 30000;
  return dc;
}

async function locals(dc) {
  const st = await dc.stackTraceRequest({ threadId: 1 });
  const frame = st.body.stackFrames[0];
  const sc = await dc.scopesRequest({ frameId: frame.id });
  const vars = await dc.variablesRequest({ variablesReference: sc.body.scopes[0].variablesReference });
  const out = {};
  for (const v of vars.body.variables) out[v.name] = v;
  return { frame, vars: out };
}

const tests = {
  async 'initialize advertises step back and the exception filters'(dc) {
    const resp = await dc.initializeRequest();
    assert.strictEqual(resp.body.supportsStepBack, true);
    assert.strictEqual(resp.body.supportsConfigurationDoneRequest, true);
    assert.deepStrictEqual(resp.body.exceptionBreakpointFilters.map(f => [f.filter, f.default]),
      [['raised', false], ['uncaught', true]]);
  },

  async 'hit a breakpoint, next, step back, variables, continue'(dc) {
    await dc.hitBreakpoint({ program: PROGRAM, function: 'count_letter', args: CALL, allowExecution: true },
      { path: PROGRAM, line: 13 });
    let { vars } = await locals(dc);
    assert.strictEqual(vars.count.value, '0');
    assert.strictEqual(vars.ch.value, "'r'");
    await Promise.all([dc.nextRequest({ threadId: 1 }), dc.assertStoppedLocation('step', { path: PROGRAM, line: 11 })]);
    ({ vars } = await locals(dc));
    assert.strictEqual(vars.count.value, '1');
    await Promise.all([dc.stepBackRequest({ threadId: 1 }), dc.assertStoppedLocation('step', { path: PROGRAM, line: 13 })]);
    ({ vars } = await locals(dc));
    assert.strictEqual(vars.count.value, '0');
    const { frame } = await locals(dc);
    const ev = await dc.evaluateRequest({ expression: 'count + len(word)', frameId: frame.id, context: 'watch' });
    assert.strictEqual(ev.body.result, '10');
    await Promise.all([dc.continueRequest({ threadId: 1 }), dc.assertStoppedLocation('breakpoint', { path: PROGRAM, line: 13 })]);
    ({ vars } = await locals(dc));
    assert.strictEqual(vars.count.value, '1');
    await Promise.all([dc.reverseContinueRequest({ threadId: 1 }), dc.assertStoppedLocation('breakpoint', { line: 13 })]);
    ({ vars } = await locals(dc));
    assert.strictEqual(vars.count.value, '0');
    await Promise.all([dc.continueRequest({ threadId: 1 }), dc.assertStoppedLocation('breakpoint', { line: 13 })]);
    await Promise.all([dc.continueRequest({ threadId: 1 }), dc.assertStoppedLocation('breakpoint', { line: 13 })]);
    await Promise.all([dc.continueRequest({ threadId: 1 }), dc.waitForEvent('terminated')]);
  },

  async 'step in and out on the replay backend, with the stack'(dc) {
    await Promise.all([
      dc.configurationSequence(),
      dc.launch({ program: RECURSION, function: 'fib_list', args: 'fib_list(2)', backend: 'replay', stopOnEntry: true,
                  allowExecution: true }),
      dc.assertStoppedLocation('entry', { path: RECURSION, line: 13 }),
    ]);
    for (const line of [15, 16, 17]) {
      await Promise.all([dc.nextRequest({ threadId: 1 }), dc.assertStoppedLocation('step', { line })]);
    }
    const st = (await Promise.all([dc.stepInRequest({ threadId: 1 }), dc.assertStoppedLocation('step', { line: 22 })]))[1];
    assert.deepStrictEqual(st.body.stackFrames.map(f => [f.name, f.line]), [['fib', 22], ['fib_list', 17]]);
    // step out stops in the caller on the calling line, as debugpy does; the next line is one next away
    await Promise.all([dc.stepOutRequest({ threadId: 1 }), dc.assertStoppedLocation('step', { line: 17 })]);
    assert.strictEqual((await locals(dc)).vars['(return) fib'].value, '0');
    await Promise.all([dc.nextRequest({ threadId: 1 }), dc.assertStoppedLocation('step', { line: 16 })]);
    const { vars } = await locals(dc);
    assert.strictEqual(vars.out.value, '[0]');
    const kids = await dc.variablesRequest({ variablesReference: vars.out.variablesReference });
    assert.deepStrictEqual(kids.body.variables.map(v => [v.name, v.value]), [['0', '0']]);
  },

  async 'a bad launch is an error response'(dc) {
    await dc.initializeRequest();
    await assert.rejects(dc.launchRequest({ program: PROGRAM, function: 'nope' }), /no function 'nope'/);
    await assert.rejects(dc.send('nonsense', {}), /unknown request 'nonsense'/);
  },

  async 'a launch that does not allow running code is refused and runs nothing'(dc) {
    await dc.initializeRequest();
    for (const backend of ['exec', 'replay']) {
      await assert.rejects(dc.launchRequest({ program: PROGRAM, function: 'count_letter', args: CALL, backend }),
        /running code is not allowed here: add "allowExecution": true to the launch configuration/);
    }
    assert.deepStrictEqual((await dc.threadsRequest()).body.threads, []);
    await assert.rejects(dc.send('neuraldbg/trace', {}), /no program is being debugged/);
  },
};

(async () => {
  let passed = 0, failed = 0;
  for (const [name, body] of Object.entries(tests)) {
    const dc = client();
    await dc.start();
    try {
      await body(dc);
      passed++;
      console.log(`ok - ${name}`);
    } catch (err) {
      failed++;
      console.log(`not ok - ${name}\n  ${(err && err.stack) || err}`);
    } finally {
      await dc.stop();
    }
  }
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
})();
