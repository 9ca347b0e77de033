// Entry point: wires the output channel, status bar, server connection,
// commands and debug type together.
import * as vscode from 'vscode';
import { OWNED_COMMANDS, registerCommands } from './commands';
import { DEBUG_TYPE, DebugAdapterFactory, DebugConfigurationProvider } from './debugAdapter';
import { FIND_INPUTS_COMMAND, registerFindInputs } from './findInputs';
import { watchActiveInterpreter } from './pythonInterpreter';
import { ServerConnection } from './serverConnection';
import { SECTION, affectsLaunch } from './settings';
import { StatusBar } from './statusBar';
import { TRACE_SCHEME, TraceDocuments } from './traceDocuments';
import { TraceViews } from './traceView';

let connection: ServerConnection | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const output = vscode.window.createOutputChannel('neuraldbg', { log: true });
  const status = new StatusBar('neuraldbg.showOutput');
  const traces = new TraceDocuments();
  connection = new ServerConnection(output, status, new Set([...OWNED_COMMANDS, FIND_INPUTS_COMMAND]));
  const server = connection;
  const views = new TraceViews(context.extensionUri, server, traces, output);

  context.subscriptions.push(
    output,
    status,
    traces,
    views,
    vscode.workspace.registerTextDocumentContentProvider(TRACE_SCHEME, traces),
    ...registerCommands(server, traces, views, output),
    registerFindInputs(server, output),
    vscode.debug.registerDebugConfigurationProvider(DEBUG_TYPE, new DebugConfigurationProvider()),
    vscode.debug.registerDebugAdapterDescriptorFactory(DEBUG_TYPE, new DebugAdapterFactory(server, output)),
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (affectsLaunch(event)) {
        void server.restart();
      } else if (event.affectsConfiguration(SECTION)) {
        server.notifyConfigurationChanged();
      }
    }),
    // Trust changes what allowExecution means: tell the server at once.
    vscode.workspace.onDidGrantWorkspaceTrust(() => server.notifyConfigurationChanged()),
    // The tracer runs under the interpreter the Python extension selected (unless neuraldbg.interpreter is set).
    watchActiveInterpreter(() => server.notifyConfigurationChanged(), output),
  );

  await server.start();
}

export async function deactivate(): Promise<void> {
  // The module-level handle exists only so that deactivate can stop the
  // server process; VS Code calls deactivate without the extension context.
  await connection?.stop();
  connection = undefined;
}
