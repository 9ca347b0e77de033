// Read-only documents that show a `neuraldbg/trace` result as JSON. A content
// provider (rather than an untitled document) keeps them read-only and lets
// "Show Trace" on the same function refresh the open tab in place.
import * as vscode from 'vscode';

export const TRACE_SCHEME = 'neuraldbg-trace';

export class TraceDocuments implements vscode.TextDocumentContentProvider, vscode.Disposable {
  private readonly contents = new Map<string, string>();
  private readonly changed = new vscode.EventEmitter<vscode.Uri>();
  readonly onDidChange = this.changed.event;

  provideTextDocumentContent(uri: vscode.Uri): string {
    return this.contents.get(uri.toString()) ?? '// This trace is no longer available: run "neuraldbg: Show Trace" again.\n';
  }

  /** Shows `trace` in a read-only JSON editor beside the source. */
  async show(source: vscode.Uri, functionName: string, trace: unknown): Promise<vscode.TextEditor> {
    const file = source.path.split('/').pop() ?? 'trace';
    const uri = vscode.Uri.from({
      scheme: TRACE_SCHEME,
      path: `/${file}::${functionName}.trace.json`,
      query: source.toString(),
    });
    this.contents.set(uri.toString(), JSON.stringify(trace, null, 2) + '\n');
    this.changed.fire(uri);
    const document = await vscode.workspace.openTextDocument(uri);
    await vscode.languages.setTextDocumentLanguage(document, 'json');
    return vscode.window.showTextDocument(document, { viewColumn: vscode.ViewColumn.Beside, preview: true });
  }

  dispose(): void {
    this.changed.dispose();
    this.contents.clear();
  }
}
