// The interpreter the Python extension (ms-python.python) selected, for
// neuraldbg's tracer to run the user's code under, and a watch that tells the
// server when that choice changes.
import * as path from 'path';
import * as vscode from 'vscode';

export const PYTHON_EXTENSION = 'ms-python.python';

/** The part of the Python extension's API neuraldbg uses (its `environments` API). */
interface PythonExtensionApi {
  environments?: {
    getActiveEnvironmentPath(resource?: vscode.Uri): { path?: string } | undefined;
    onDidChangeActiveEnvironmentPath?: vscode.Event<unknown>;
  };
}

/**
 * The selected interpreter's path for `scope`, or '' when the Python
 * extension is missing, not active yet, or names no absolute path.
 */
export function activeInterpreter(scope?: vscode.Uri): string {
  const extension = vscode.extensions.getExtension<PythonExtensionApi>(PYTHON_EXTENSION);
  if (!extension?.isActive) {
    return '';
  }
  try {
    const found = extension.exports?.environments?.getActiveEnvironmentPath(scope)?.path ?? '';
    return path.isAbsolute(found) ? found : '';
  } catch {
    return ''; // an API older or newer than this: the server's own Python
  }
}

/**
 * Calls `onChange` once the Python extension is active (activating it if
 * installed) and whenever its selected interpreter changes. Never blocks the
 * caller; without the Python extension it does nothing.
 */
export function watchActiveInterpreter(onChange: () => void, output: vscode.LogOutputChannel): vscode.Disposable {
  const extension = vscode.extensions.getExtension<PythonExtensionApi>(PYTHON_EXTENSION);
  const subscriptions: vscode.Disposable[] = [];
  let disposed = false;
  if (extension) {
    void Promise.resolve(extension.isActive ? extension.exports : extension.activate()).then(
      (api) => {
        const changes = api?.environments?.onDidChangeActiveEnvironmentPath;
        if (disposed) {
          return;
        }
        if (changes) {
          subscriptions.push(changes(() => onChange()));
        }
        onChange();
      },
      (error: unknown) => output.warn(`the Python extension did not activate: ${String(error)}`),
    );
  }
  return new vscode.Disposable(() => {
    disposed = true;
    subscriptions.forEach((subscription) => subscription.dispose());
  });
}
