// Reads the `neuraldbg.*` settings and turns them into what the server reads
// (initializationOptions and workspace/configuration, lsp/README.md "Settings").
import * as vscode from 'vscode';
import { activeInterpreter } from './pythonInterpreter';

export const SECTION = 'neuraldbg';

/** How the extension starts the server. */
export interface LaunchSettings {
  pythonPath: string;
  serverCommand: string[];
}

/** What the server reads; keys and types as in lsp/schemas/settings.json. */
export interface ServerSettings {
  backend: string;
  profile: string;
  url: string;
  temperature: number | null; // null: the model profile's [sampling]
  maxFrames: number | null; // null: the server's default (it scales with the time limit on real runs)
  allowExecution: boolean;
  scoreRealRuns: boolean;
  interpreter: string; // the Python that runs the user's program; '': the server's own
}

export function readLaunchSettings(): LaunchSettings {
  const config = vscode.workspace.getConfiguration(SECTION);
  const serverCommand = config.get<unknown>('serverCommand');
  return {
    pythonPath: (config.get<string>('pythonPath') || 'python3').trim(),
    serverCommand: Array.isArray(serverCommand)
      ? serverCommand.filter((part): part is string => typeof part === 'string' && part.length > 0)
      : [],
  };
}

/**
 * May neuraldbg run workspace code? Only in a trusted workspace whose user
 * turned `neuraldbg.allowExecution` on: running workspace code is exactly
 * what trust is meant to gate. Used for the server's settings and for every
 * debug launch, so both always agree.
 */
export function executionAllowed(scope?: vscode.Uri): boolean {
  const config = vscode.workspace.getConfiguration(SECTION, scope);
  return vscode.workspace.isTrusted && config.get<boolean>('allowExecution', false) === true;
}

/** The settings sent to the server (`allowExecution`: see executionAllowed). */
export function readServerSettings(scope?: vscode.Uri): ServerSettings {
  const config = vscode.workspace.getConfiguration(SECTION, scope);
  return {
    backend: config.get<string>('backend', 'exec'),
    profile: config.get<string>('profile', ''),
    url: config.get<string>('url', ''),
    temperature: config.get<number | null>('temperature', null),
    maxFrames: config.get<number | null>('maxFrames', null),
    allowExecution: executionAllowed(scope),
    scoreRealRuns: config.get<boolean>('scoreRealRuns', true),
    interpreter: readInterpreter(config, scope),
  };
}

/**
 * The interpreter of the user's project: `neuraldbg.interpreter` when set,
 * else the one the Python extension selected for `scope` (if it is installed
 * and active), else '' (the server's own Python).
 */
function readInterpreter(config: vscode.WorkspaceConfiguration, scope?: vscode.Uri): string {
  const own = (config.get<string>('interpreter', '') || '').trim();
  return own || activeInterpreter(scope);
}

/** True when a configuration change needs a new server process. */
export function affectsLaunch(event: vscode.ConfigurationChangeEvent): boolean {
  return (
    event.affectsConfiguration(`${SECTION}.pythonPath`) || event.affectsConfiguration(`${SECTION}.serverCommand`)
  );
}
