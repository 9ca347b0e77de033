// Works out the server's command line and checks, before starting it, that
// the chosen interpreter can import neuraldbg (so the user gets one clear fix
// instead of a crashed server and a stack trace in the log).
import { execFile } from 'child_process';
import { Executable, TransportKind } from 'vscode-languageclient/node';
import { LaunchSettings } from './settings';

export interface LaunchPlan {
  executable: Executable;
  /** Human-readable command line, for the log. */
  display: string;
}

/**
 * `python -m` would put the working folder first on sys.path, so a workspace
 * holding a `neuraldbg/` folder could run its own code in place of the
 * server, trusted or not: PYTHONSAFEPATH=1 (Python 3.11+) turns that off for
 * the import check and the server alike, so both see the same neuraldbg.
 */
export function serverEnv(): NodeJS.ProcessEnv {
  return { ...process.env, PYTHONSAFEPATH: '1' };
}

export function planLaunch(settings: LaunchSettings, cwd: string): LaunchPlan {
  // TransportKind.stdio makes the client append `--stdio` to the arguments.
  if (settings.serverCommand.length > 0) {
    const [command, ...args] = settings.serverCommand;
    return {
      executable: { command, args, transport: TransportKind.stdio, options: { cwd, env: serverEnv() } },
      display: [...settings.serverCommand, '--stdio'].join(' '),
    };
  }
  const args = ['-m', 'neuraldbg', 'serve'];
  return {
    executable: { command: settings.pythonPath, args, transport: TransportKind.stdio, options: { cwd, env: serverEnv() } },
    display: [settings.pythonPath, ...args, '--stdio'].join(' '),
  };
}

export interface ImportCheck {
  ok: boolean;
  /** What went wrong, for the log (empty when ok). */
  detail: string;
}

/** Runs `<pythonPath> -c "import neuraldbg"`. */
export function checkImport(pythonPath: string, cwd: string, timeoutMs = 30000): Promise<ImportCheck> {
  return new Promise((resolve) => {
    execFile(pythonPath, ['-c', 'import neuraldbg'], { cwd, env: serverEnv(), timeout: timeoutMs }, (error, _stdout, stderr) => {
      if (!error) {
        resolve({ ok: true, detail: '' });
        return;
      }
      const reason = (stderr || '').trim().split('\n').pop() || error.message;
      resolve({ ok: false, detail: reason });
    });
  });
}

/** The message shown when the import check fails: it names the exact fix. */
export function importFixMessage(pythonPath: string, detail: string): string {
  return (
    `neuraldbg: "${pythonPath}" cannot import neuraldbg (${detail}). ` +
    `Fix: run \`${pythonPath} -m pip install neuraldbg\`, ` +
    `or set "neuraldbg.pythonPath" to a Python interpreter that has neuraldbg installed.`
  );
}
