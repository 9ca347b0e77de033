// Owns the language client: starting the server (after the import check),
// stopping and restarting it, serving settings, and routing the status
// notification to the status bar.
import * as os from 'os';
import * as vscode from 'vscode';
import {
  DidChangeConfigurationNotification,
  ExecuteCommandRegistrationOptions,
  ExecuteCommandRequest,
  LanguageClient,
  LanguageClientOptions,
  State,
} from 'vscode-languageclient/node';
import { statusNotification } from './protocol';
import { checkImport, importFixMessage, planLaunch } from './serverLauncher';
import { SECTION, readLaunchSettings, readServerSettings } from './settings';
import { StatusBar } from './statusBar';

export class ServerNotRunning extends Error {}

export class ServerConnection implements vscode.Disposable {
  private client: LanguageClient | undefined;
  private starting: Promise<LanguageClient | undefined> | undefined;
  /** executeCommand ids the server offers (from its capabilities or dynamic registration). */
  private readonly serverCommands = new Set<string>();

  constructor(
    private readonly output: vscode.LogOutputChannel,
    private readonly status: StatusBar,
    /** Command ids the extension registers itself; the client must not register them again. */
    private readonly ownedCommands: ReadonlySet<string>,
  ) {}

  /** Starts the server unless it runs or is starting; resolves to undefined if it cannot start. */
  start(): Promise<LanguageClient | undefined> {
    if (this.client && this.client.state === State.Running) {
      return Promise.resolve(this.client);
    }
    if (!this.starting) {
      this.starting = this.doStart().finally(() => {
        this.starting = undefined;
      });
    }
    return this.starting;
  }

  /** The running client, starting it if needed; throws with a readable message if impossible. */
  async ready(): Promise<LanguageClient> {
    const client = await this.start();
    if (!client) {
      throw new ServerNotRunning('the neuraldbg server is not running (see the "neuraldbg" output for why)');
    }
    return client;
  }

  offersCommand(command: string): boolean {
    return this.serverCommands.has(command);
  }

  async restart(): Promise<LanguageClient | undefined> {
    await this.stop();
    return this.start();
  }

  async stop(): Promise<void> {
    if (this.starting) {
      await this.starting;
    }
    const client = this.client;
    this.client = undefined;
    this.serverCommands.clear();
    if (client) {
      try {
        await client.stop(5000);
      } catch (error) {
        this.output.warn(`stopping the server: ${String(error)}`);
      }
      await client.dispose();
    }
    this.status.showLocal('circle-slash', 'stopped', 'The neuraldbg server is not running');
  }

  /** Pushes the current settings; the server re-reads workspace/configuration too. */
  notifyConfigurationChanged(): void {
    if (this.client && this.client.state === State.Running) {
      void this.client.sendNotification(DidChangeConfigurationNotification.type, {
        settings: { [SECTION]: readServerSettings() },
      });
    }
  }

  async dispose(): Promise<void> {
    await this.stop();
  }

  private async doStart(): Promise<LanguageClient | undefined> {
    const launch = readLaunchSettings();
    // An untrusted folder is not even the working directory of the server.
    const folder = vscode.workspace.workspaceFolders?.[0]?.uri;
    const cwd = folder?.scheme === 'file' && vscode.workspace.isTrusted ? folder.fsPath : os.homedir();
    this.status.showLocal('loading~spin', 'starting', 'Starting the neuraldbg language server');
    if (launch.serverCommand.length === 0) {
      const check = await checkImport(launch.pythonPath, cwd);
      if (!check.ok) {
        const message = importFixMessage(launch.pythonPath, check.detail);
        this.output.error(message);
        this.status.showLocal('error', 'not installed', message, true);
        void vscode.window.showErrorMessage(message, 'Open Settings').then((choice) => {
          if (choice === 'Open Settings') {
            void vscode.commands.executeCommand('workbench.action.openSettings', `${SECTION}.pythonPath`);
          }
        });
        return undefined;
      }
    }
    const plan = planLaunch(launch, cwd);
    this.output.info(`starting: ${plan.display}`);
    const client = new LanguageClient('neuraldbg', 'neuraldbg', { run: plan.executable, debug: plan.executable }, this.clientOptions());
    this.keepOwnedCommands(client);
    let statusSeen = false;
    client.onNotification(statusNotification, (params) => {
      statusSeen = true;
      this.status.update(params);
    });
    client.onDidChangeState((event) => {
      if (event.newState === State.Stopped && this.client === client) {
        this.status.showLocal('circle-slash', 'stopped', 'The neuraldbg server stopped: see the "neuraldbg" output', true);
      }
    });
    try {
      await client.start();
    } catch (error) {
      const message = `neuraldbg: the server did not start (${plan.display}): ${String(error)}`;
      this.output.error(message);
      this.status.showLocal('error', 'error', message, true);
      void vscode.window.showErrorMessage(message);
      await client.dispose().catch(() => undefined);
      return undefined;
    }
    this.client = client;
    if (!statusSeen) {
      // The server has answered `initialize` but not said whether it is ready.
      this.status.showLocal('plug', 'connected', 'Connected to the neuraldbg server; waiting for its status');
    }
    for (const command of client.initializeResult?.capabilities.executeCommandProvider?.commands ?? []) {
      this.serverCommands.add(command);
    }
    return client;
  }

  private clientOptions(): LanguageClientOptions {
    return {
      documentSelector: [
        { scheme: 'file', language: 'python' },
        { scheme: 'untitled', language: 'python' },
      ],
      initializationOptions: () => readServerSettings(),
      outputChannel: this.output,
      traceOutputChannel: this.output,
      // Settings are pushed by notifyConfigurationChanged (not by the client's
      // own sync) so that allowExecution stays gated by workspace trust.
      middleware: {
        workspace: {
          configuration: (params, token, next) => {
            const fallback = next(params, token);
            return params.items.map((item, index) => {
              const scope = item.scopeUri ? vscode.Uri.parse(item.scopeUri) : undefined;
              if (item.section === SECTION) {
                return readServerSettings(scope);
              }
              if (item.section?.startsWith(`${SECTION}.`)) {
                const key = item.section.slice(SECTION.length + 1) as keyof ReturnType<typeof readServerSettings>;
                const settings = readServerSettings(scope);
                return key in settings ? settings[key] : null;
              }
              return Array.isArray(fallback) ? fallback[index] : null;
            });
          },
        },
      },
    };
  }

  /**
   * The client registers a VS Code command for each executeCommand id the
   * server offers; for the ids the extension registers itself (the palette
   * commands) that would fail with "command already exists". Drop those from
   * the client's registration: the extension forwards them to the server.
   */
  private keepOwnedCommands(client: LanguageClient): void {
    type Registration = { id: string; registerOptions: ExecuteCommandRegistrationOptions };
    const feature = (client as unknown as { getFeature(method: string): { register(data: Registration): void } | undefined })
      .getFeature(ExecuteCommandRequest.method);
    if (!feature) {
      return;
    }
    const register = feature.register.bind(feature);
    feature.register = (data: Registration) => {
      const commands = data.registerOptions.commands ?? [];
      commands.forEach((command) => this.serverCommands.add(command));
      register({
        ...data,
        registerOptions: { ...data.registerOptions, commands: commands.filter((c) => !this.ownedCommands.has(c)) },
      });
    };
  }
}
