// The `neuraldbg` debug type. The adapter runs inside the language-server
// process (so inline values during a session come from the same trace); the
// extension asks the server for its loopback port and connects VS Code to it.
import * as vscode from 'vscode';
import { functionAt } from './functionAtCursor';
import { debugAdapterRequest } from './protocol';
import { ServerConnection } from './serverConnection';
import { executionAllowed } from './settings';

export const DEBUG_TYPE = 'neuraldbg';

export class DebugConfigurationProvider implements vscode.DebugConfigurationProvider {
  /** F5 without a launch.json: simulate the function under the cursor. */
  resolveDebugConfiguration(
    _folder: vscode.WorkspaceFolder | undefined,
    config: vscode.DebugConfiguration,
  ): vscode.DebugConfiguration | undefined {
    if (!config.type && !config.request && !config.name) {
      const editor = vscode.window.activeTextEditor;
      if (!editor || editor.document.languageId !== 'python') {
        void vscode.window.showErrorMessage('neuraldbg: open a Python file to simulate one of its functions.');
        return undefined;
      }
      return {
        type: DEBUG_TYPE,
        request: 'launch',
        name: 'Simulate function under cursor',
        program: '${file}',
        function: '',
        args: '',
        stopOnEntry: true,
      };
    }
    return config;
  }

  /**
   * Fills `function` from the cursor when the launch configuration leaves it
   * empty, and sets `allowExecution` from trust and the setting, whatever
   * launch.json says (the adapter in the server heeds only its own setting;
   * this keeps the launch from ever claiming more).
   */
  resolveDebugConfigurationWithSubstitutedVariables(
    folder: vscode.WorkspaceFolder | undefined,
    config: vscode.DebugConfiguration,
  ): vscode.DebugConfiguration | undefined {
    if (typeof config.program !== 'string' || config.program.length === 0) {
      void vscode.window.showErrorMessage('neuraldbg: the launch configuration needs "program" (a Python file).');
      return undefined;
    }
    config.allowExecution = executionAllowed(folder?.uri ?? vscode.Uri.file(config.program));
    if (!config.function) {
      const editor = vscode.window.activeTextEditor;
      const name =
        editor && editor.document.uri.fsPath === config.program
          ? functionAt(editor.document, editor.selection.active)
          : undefined;
      if (!name) {
        void vscode.window.showErrorMessage(
          'neuraldbg: set "function" in the launch configuration, or put the cursor inside the function to simulate.',
        );
        return undefined;
      }
      config.function = name;
    }
    return config;
  }
}

export class DebugAdapterFactory implements vscode.DebugAdapterDescriptorFactory {
  constructor(
    private readonly connection: ServerConnection,
    private readonly output: vscode.LogOutputChannel,
  ) {}

  async createDebugAdapterDescriptor(session: vscode.DebugSession): Promise<vscode.DebugAdapterDescriptor | undefined> {
    try {
      const client = await this.connection.ready();
      const { port } = await client.sendRequest(debugAdapterRequest, {});
      if (!Number.isInteger(port) || port <= 0) {
        throw new Error(`the server answered neuraldbg/debugAdapter with an invalid port: ${JSON.stringify(port)}`);
      }
      this.output.info(`debug session "${session.name}": adapter on 127.0.0.1:${port}`);
      return new vscode.DebugAdapterServer(port, '127.0.0.1');
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      this.output.error(`debug session "${session.name}": ${message}`);
      // Throwing makes VS Code show the message and end the launch cleanly.
      throw new Error(`neuraldbg: cannot start the debugger: ${message}`);
    }
  }
}
