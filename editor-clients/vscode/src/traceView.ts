// "Show Trace": a webview beside the source with the trace as a timeline
// (lsp/README.md `neuraldbg/trace` with `compare: true`). The panel opens at
// once and shows the tracing state with its own Cancel button: no separate
// progress notification (the server's `$/progress` shows in the status bar),
// so nothing is left on screen once the trace is there. Clicking a frame
// reveals its line in the source and, in a neuraldbg debug session on that
// file, moves the debugger to that step. The raw JSON is one click away.
import * as vscode from 'vscode';
import { DEBUG_TYPE } from './debugAdapter';
import { TraceResult, traceRequest } from './protocol';
import { ServerConnection } from './serverConnection';
import { TraceDocuments } from './traceDocuments';
import { viewModel } from './traceModel';
import type { FromWebview, ToWebview } from './traceViewMessages';

export const TRACE_VIEW_TYPE = 'neuraldbg.traceView';
/** The custom DAP request that moves a neuraldbg debug session to one step of its trace. */
export const GO_TO_STEP_REQUEST = 'neuraldbg/goToStep';

export interface TraceTarget {
  uri: string;
  function: string;
  call?: string;
}

/** One open trace view (one per source file and function). */
class TracePanel {
  state: ToWebview;
  result: TraceResult | undefined;
  running: vscode.CancellationTokenSource | undefined;
  ready = false;

  constructor(
    readonly panel: vscode.WebviewPanel,
    public target: TraceTarget,
  ) {
    this.state = { type: 'tracing', title: titleOf(target) };
  }

  post(state: ToWebview): void {
    this.state = state;
    if (this.ready) {
      void this.panel.webview.postMessage(state);
    }
  }
}

function titleOf(target: TraceTarget): string {
  return target.call ? target.call : target.function;
}

function keyOf(target: TraceTarget): string {
  return `${target.uri}::${target.function}`;
}

export class TraceViews implements vscode.Disposable {
  private readonly panels = new Map<string, TracePanel>();

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly connection: ServerConnection,
    private readonly documents: TraceDocuments,
    private readonly output: vscode.LogOutputChannel,
  ) {}

  /** Opens (or refreshes) the trace view of `target` and traces it. */
  async show(target: TraceTarget): Promise<void> {
    const view = this.panels.get(keyOf(target)) ?? this.create(target);
    view.target = target;
    view.panel.reveal(undefined, true);
    await this.trace(view);
  }

  private create(target: TraceTarget): TracePanel {
    const media = vscode.Uri.joinPath(this.extensionUri, 'media');
    const scripts = vscode.Uri.joinPath(this.extensionUri, 'out', 'webview');
    const panel = vscode.window.createWebviewPanel(
      TRACE_VIEW_TYPE,
      `Trace: ${target.function}`,
      { viewColumn: vscode.ViewColumn.Beside, preserveFocus: true },
      { enableScripts: true, localResourceRoots: [media, scripts], retainContextWhenHidden: true },
    );
    const view = new TracePanel(panel, target);
    panel.webview.html = pageHtml(panel.webview, media, scripts);
    panel.webview.onDidReceiveMessage((message: FromWebview) => this.onMessage(view, message));
    panel.onDidDispose(() => {
      view.running?.cancel();
      this.panels.delete(keyOf(view.target));
    });
    this.panels.set(keyOf(target), view);
    return view;
  }

  private async trace(view: TracePanel): Promise<void> {
    view.running?.cancel();
    const running = new vscode.CancellationTokenSource();
    view.running = running;
    const { target } = view;
    view.post({ type: 'tracing', title: titleOf(target) });
    try {
      const client = await this.connection.ready();
      const result = await client.sendRequest(
        traceRequest,
        { uri: target.uri, function: target.function, call: target.call, compare: true },
        running.token,
      );
      if (view.running !== running) {
        return; // a newer trace of this view replaced this one
      }
      view.result = result;
      const call = typeof result.call === 'string' && result.call ? result.call : titleOf(target);
      view.post({ type: 'trace', title: call, model: viewModel(result), debugging: this.debugSessionFor(target) !== undefined });
    } catch (error) {
      if (view.running !== running) {
        return;
      }
      const message = running.token.isCancellationRequested
        ? 'cancelled'
        : error instanceof Error
          ? error.message
          : String(error);
      this.output.error(`neuraldbg.showTrace: ${message}`);
      view.post({ type: 'failed', title: titleOf(target), message: `${target.function}: ${message}` });
    } finally {
      if (view.running === running) {
        view.running = undefined;
      }
      running.dispose();
    }
  }

  private onMessage(view: TracePanel, message: FromWebview): void {
    switch (message.type) {
      case 'ready':
        view.ready = true;
        void view.panel.webview.postMessage(view.state);
        break;
      case 'reveal':
        void this.reveal(view.target, message.line, message.step).catch((error: unknown) =>
          this.output.error(`trace view: ${error instanceof Error ? error.message : String(error)}`),
        );
        break;
      case 'rawJson':
        if (view.result) {
          void this.documents.show(vscode.Uri.parse(view.target.uri), view.target.function, view.result);
        }
        break;
      case 'refresh':
        void this.trace(view);
        break;
      case 'cancel':
        view.running?.cancel();
        break;
    }
  }

  /** Puts the cursor on `line` of the source (in the editor already showing it, if any). */
  private async reveal(target: TraceTarget, line: number, step: number): Promise<void> {
    const source = vscode.Uri.parse(target.uri);
    const document = await vscode.workspace.openTextDocument(source);
    const shown = vscode.window.visibleTextEditors.find((e) => e.document.uri.toString() === source.toString());
    const at = new vscode.Position(Math.min(Math.max(line - 1, 0), document.lineCount - 1), 0);
    const editor = await vscode.window.showTextDocument(document, {
      viewColumn: shown?.viewColumn ?? vscode.ViewColumn.One,
      selection: new vscode.Range(at, at),
      preserveFocus: false,
    });
    editor.revealRange(new vscode.Range(at, at), vscode.TextEditorRevealType.InCenterIfOutsideViewport);
    const session = this.debugSessionFor(target);
    if (session) {
      try {
        await session.customRequest(GO_TO_STEP_REQUEST, { step });
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        void vscode.window.showWarningMessage(`neuraldbg: the debugger could not move to step ${step}: ${message}`);
      }
    }
  }

  /** The active neuraldbg debug session on the target's file, if any. */
  private debugSessionFor(target: TraceTarget): vscode.DebugSession | undefined {
    const session = vscode.debug.activeDebugSession;
    if (!session || session.type !== DEBUG_TYPE || typeof session.configuration.program !== 'string') {
      return undefined;
    }
    const program = vscode.Uri.file(session.configuration.program).toString();
    return program === vscode.Uri.parse(target.uri).toString() ? session : undefined;
  }

  dispose(): void {
    for (const view of [...this.panels.values()]) {
      view.panel.dispose();
    }
    this.panels.clear();
  }
}

/** The page: local script and style only, under a CSP that allows nothing else. */
function pageHtml(webview: vscode.Webview, media: vscode.Uri, scripts: vscode.Uri): string {
  const nonce = Array.from({ length: 32 }, () => Math.floor(Math.random() * 36).toString(36)).join('');
  const style = webview.asWebviewUri(vscode.Uri.joinPath(media, 'traceView.css'));
  const script = webview.asWebviewUri(vscode.Uri.joinPath(scripts, 'webview', 'traceView.js'));
  const csp = [
    "default-src 'none'",
    `style-src ${webview.cspSource}`,
    `script-src 'nonce-${nonce}' ${webview.cspSource}`,
    `img-src ${webview.cspSource}`,
  ].join('; ');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${style.toString()}">
<title>neuraldbg trace</title>
</head>
<body>
<div id="app" data-state="loading"></div>
<script type="module" nonce="${nonce}" src="${script.toString()}"></script>
</body>
</html>`;
}
