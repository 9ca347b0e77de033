// The palette commands. Code lenses call the same ids with the server's own
// arguments; from the palette the extension builds them from the cursor.
import * as vscode from 'vscode';
import { ExecuteCommandRequest } from 'vscode-languageclient/node';
import { allFunctions, functionAt } from './functionAtCursor';
import { traceRequest } from './protocol';
import { ServerConnection } from './serverConnection';
import { TraceDocuments } from './traceDocuments';
import { TraceTarget, TraceViews } from './traceView';

/** Commands forwarded to the server's workspace/executeCommand under the same id. */
export const SERVER_COMMANDS = [
  'neuraldbg.simulateFunction',
  'neuraldbg.resampleInput',
  'neuraldbg.fillHoles',
  'neuraldbg.verify',
] as const;

export const CLIENT_COMMANDS = [
  'neuraldbg.showTrace',
  'neuraldbg.showTraceJson',
  'neuraldbg.restartServer',
  'neuraldbg.showOutput',
] as const;

export const OWNED_COMMANDS: ReadonlySet<string> = new Set<string>([...SERVER_COMMANDS, ...CLIENT_COMMANDS]);

/** The argument sent when a command comes from the palette: where the cursor is. */
export interface CursorTarget {
  uri: string;
  function: string;
  position: { line: number; character: number };
}

export function registerCommands(
  connection: ServerConnection,
  traces: TraceDocuments,
  views: TraceViews,
  output: vscode.LogOutputChannel,
): vscode.Disposable[] {
  const forwarded = SERVER_COMMANDS.map((command) =>
    vscode.commands.registerCommand(command, (...args: unknown[]) =>
      reportErrors(command, output, () => forward(connection, command, args)),
    ),
  );
  return [
    ...forwarded,
    vscode.commands.registerCommand('neuraldbg.showTrace', (...args: unknown[]) =>
      reportErrors('neuraldbg.showTrace', output, () => showTrace(views, args)),
    ),
    vscode.commands.registerCommand('neuraldbg.showTraceJson', (...args: unknown[]) =>
      reportErrors('neuraldbg.showTraceJson', output, () => showTraceJson(connection, traces, args)),
    ),
    vscode.commands.registerCommand('neuraldbg.restartServer', () =>
      reportErrors('neuraldbg.restartServer', output, async () => {
        output.info('restarting the server');
        await connection.restart();
      }),
    ),
    vscode.commands.registerCommand('neuraldbg.showOutput', () => output.show(true)),
  ];
}

async function reportErrors(command: string, output: vscode.LogOutputChannel, run: () => Promise<unknown>): Promise<unknown> {
  try {
    return await run();
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    output.error(`${command}: ${message}`);
    void vscode.window.showErrorMessage(`neuraldbg: ${message}`);
    return undefined;
  }
}

async function forward(connection: ServerConnection, command: string, args: unknown[]): Promise<unknown> {
  const client = await connection.ready();
  let commandArgs = args;
  if (commandArgs.length === 0) {
    const target = await cursorTarget();
    if (!target) {
      return undefined;
    }
    commandArgs = [target];
  }
  if (!connection.offersCommand(command)) {
    if (command === 'neuraldbg.fillHoles') {
      return fillHolesWithCodeAction();
    }
    throw new Error(`this neuraldbg server does not offer the command ${command}`);
  }
  const result: unknown = await client.sendRequest(ExecuteCommandRequest.type, { command, arguments: commandArgs });
  void presentResult(result);
  return result;
}

/** Tells the user what a forwarded command did: a verdict ({ok, message}) or a trace summary. */
async function presentResult(result: unknown): Promise<void> {
  if (!result || typeof result !== 'object') {
    return;
  }
  const data = result as { ok?: unknown; message?: unknown; frames?: unknown; function?: unknown; call?: unknown; status?: unknown; error?: unknown };
  if (typeof data.message === 'string') {
    const show = data.ok === false ? vscode.window.showWarningMessage : vscode.window.showInformationMessage;
    await show(`neuraldbg: ${data.message}`);
    return;
  }
  if (Array.isArray(data.frames)) {
    const call = typeof data.call === 'string' && data.call ? data.call : String(data.function ?? 'function');
    const problem = typeof data.error === 'string' && data.error ? `: ${data.error}` : '';
    const choice = await vscode.window.showInformationMessage(
      `neuraldbg: ${call}: ${data.frames.length} frames (${String(data.status ?? 'done')}${problem})`,
      'Show Trace',
    );
    if (choice === 'Show Trace' && typeof data.function === 'string') {
      const editor = vscode.window.activeTextEditor;
      if (editor) {
        await vscode.commands.executeCommand('neuraldbg.showTrace', {
          uri: editor.document.uri.toString(),
          function: data.function,
          call: typeof data.call === 'string' ? data.call : undefined,
        });
      }
    }
  }
}

/** Without a server command, "Fill holes" applies the server's "Fill all holes" code action. */
async function fillHolesWithCodeAction(): Promise<void> {
  const editor = vscode.window.activeTextEditor;
  if (!editor) {
    throw new Error('open a Python file first');
  }
  const actions =
    (await vscode.commands.executeCommand<vscode.CodeAction[]>(
      'vscode.executeCodeActionProvider',
      editor.document.uri,
      editor.selection,
    )) ?? [];
  const fill =
    actions.find((action) => action.title.startsWith('Fill all holes')) ??
    actions.find((action) => action.title.startsWith('Fill hole'));
  if (!fill) {
    throw new Error('no hole to fill here: put the cursor in a function that has a `??` hole');
  }
  if (fill.edit) {
    await vscode.workspace.applyEdit(fill.edit);
  }
  if (fill.command) {
    await vscode.commands.executeCommand(fill.command.command, ...(fill.command.arguments ?? []));
  }
}

async function cursorTarget(): Promise<CursorTarget | undefined> {
  const editor = vscode.window.activeTextEditor;
  if (!editor || editor.document.languageId !== 'python') {
    throw new Error('open a Python file and put the cursor in a function');
  }
  const position = editor.selection.active;
  const name = functionAt(editor.document, position) ?? (await pickFunction(editor.document));
  if (!name) {
    return undefined;
  }
  return {
    uri: editor.document.uri.toString(),
    function: name,
    position: { line: position.line, character: position.character },
  };
}

async function pickFunction(document: vscode.TextDocument): Promise<string | undefined> {
  const functions = allFunctions(document);
  if (functions.length === 0) {
    throw new Error('this file has no function to trace');
  }
  const picked = await vscode.window.showQuickPick(
    functions.map((fn) => ({ label: fn.name, description: `line ${fn.line + 1}` })),
    { placeHolder: 'Function to trace' },
  );
  return picked?.label;
}

/** Accepts what a code lens passes ({uri, function, call?} or [uri, function]) or nothing. */
function traceTargetFromArgs(args: unknown[]): TraceTarget | undefined {
  const [first, second] = args;
  if (first && typeof first === 'object' && 'uri' in first && 'function' in first) {
    const target = first as { uri: unknown; function: unknown; call?: unknown };
    if (typeof target.uri === 'string' && typeof target.function === 'string') {
      return {
        uri: target.uri,
        function: target.function,
        call: typeof target.call === 'string' && target.call ? target.call : undefined,
      };
    }
  }
  if (typeof first === 'string' && typeof second === 'string') {
    return { uri: first, function: second };
  }
  return undefined;
}

/** The trace view (a webview); it shows its own tracing state, so no progress notification here. */
async function showTrace(views: TraceViews, args: unknown[]): Promise<void> {
  const target: TraceTarget | undefined = traceTargetFromArgs(args) ?? (await cursorTarget());
  if (target) {
    await views.show(target);
  }
}

/** The `neuraldbg/trace` result as a read-only JSON document (also the trace view's "Raw JSON"). */
async function showTraceJson(connection: ServerConnection, traces: TraceDocuments, args: unknown[]): Promise<void> {
  const target: TraceTarget | undefined = traceTargetFromArgs(args) ?? (await cursorTarget());
  if (!target) {
    return;
  }
  const client = await connection.ready();
  const trace = await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Window, title: `neuraldbg: tracing ${target.function}` },
    () => client.sendRequest(traceRequest, { uri: target.uri, function: target.function, call: target.call }),
  );
  await traces.show(vscode.Uri.parse(target.uri), target.function, trace);
}
