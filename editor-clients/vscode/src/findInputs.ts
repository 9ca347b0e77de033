// Inverse execution: the command neuraldbg.findInputs (what the server's code
// actions and lenses run, and the palette). A "returns" goal without a value
// asks for it first; the inputs found are offered in a quick pick, and the one
// chosen becomes the function's input (neuraldbg.setEntry), so every view
// re-traces on it. The server shows the search's progress bar (with Cancel).
import * as vscode from 'vscode';
import { ExecuteCommandRequest, RequestType } from 'vscode-languageclient/node';
import { functionAt } from './functionAtCursor';
import { ServerConnection } from './serverConnection';

export const FIND_INPUTS_COMMAND = 'neuraldbg.findInputs';

/** lsp/schemas/find-inputs-params.json */
export interface FindInputsParams {
  uri: string;
  function?: string;
  position?: { line: number; character: number };
  goal: { kind: 'reach' | 'returns' | 'raises' | 'when'; line?: number; expr?: string };
  budget?: number;
}

/** lsp/schemas/find-inputs-result.json (the parts shown here). */
export interface FindInputsResult {
  function: string;
  goal: string;
  found: { call: string; checked: boolean; origin: string; outcome: string }[];
  summary: string;
}

export const findInputsRequest = new RequestType<FindInputsParams, FindInputsResult, void>('neuraldbg/findInputs');

export function registerFindInputs(connection: ServerConnection, output: vscode.LogOutputChannel): vscode.Disposable {
  return vscode.commands.registerCommand(FIND_INPUTS_COMMAND, async (...args: unknown[]) => {
    try {
      return await findInputs(connection, args);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      output.error(`${FIND_INPUTS_COMMAND}: ${message}`);
      void vscode.window.showErrorMessage(`neuraldbg: ${message}`);
      return undefined;
    }
  });
}

async function findInputs(connection: ServerConnection, args: unknown[]): Promise<FindInputsResult | undefined> {
  const params = paramsFromArgs(args) ?? cursorParams();
  if (!params) {
    return undefined;
  }
  if (params.goal.kind === 'returns' && !params.goal.expr) {
    const expr = await vscode.window.showInputBox({
      title: 'neuraldbg: find an input that returns…',
      prompt: `The value ${params.function ?? 'the function'} should return (a Python constant)`,
      placeHolder: "e.g. 42, 'done', [1, 2]",
      validateInput: (text) => (text.trim() ? undefined : 'type a value, e.g. 42'),
    });
    if (expr === undefined) {
      return undefined; // the user closed the box
    }
    params.goal = { ...params.goal, expr: expr.trim() };
  }
  const client = await connection.ready();
  const result = await client.sendRequest(findInputsRequest, params);
  if (!result.found.length) {
    void vscode.window.showWarningMessage(`neuraldbg: ${result.summary}`);
    return result;
  }
  const picked = await vscode.window.showQuickPick(
    result.found.map((f) => ({
      label: f.call,
      description: f.checked ? 'checked by a real run' : 'predicted',
      detail: `${f.outcome} · from ${f.origin}`,
      call: f.call,
    })),
    { title: `neuraldbg: inputs that ${result.goal}`, placeHolder: 'Use this input for the function (every view re-traces on it)' },
  );
  if (picked) {
    await client.sendRequest(ExecuteCommandRequest.type, {
      command: 'neuraldbg.setEntry',
      arguments: [params.uri, result.function, picked.call],
    });
  }
  return result;
}

/** What a code action or lens passes: [{uri, function, goal}] or [uri, function, goal]. */
function paramsFromArgs(args: unknown[]): FindInputsParams | undefined {
  const [first, second, third] = args;
  const source = first && typeof first === 'object' ? (first as Record<string, unknown>) : undefined;
  const uri = source ? source.uri : first;
  const fn = source ? source.function : second;
  const goal = source ? source.goal : third;
  if (typeof uri !== 'string' || !goal || typeof goal !== 'object') {
    return undefined;
  }
  return {
    ...(source ?? {}),
    uri,
    function: typeof fn === 'string' ? fn : undefined,
    goal: { ...(goal as FindInputsParams['goal']) },
  } as FindInputsParams;
}

/** From the palette: reach the cursor's line in the function around it. */
function cursorParams(): FindInputsParams | undefined {
  const editor = vscode.window.activeTextEditor;
  if (!editor || editor.document.languageId !== 'python') {
    throw new Error('open a Python file and put the cursor on a line of a function');
  }
  const position = editor.selection.active;
  const fn = functionAt(editor.document, position);
  if (!fn) {
    throw new Error('put the cursor on a line inside a function');
  }
  return {
    uri: editor.document.uri.toString(),
    function: fn,
    goal: { kind: 'reach', line: position.line },
  };
}
