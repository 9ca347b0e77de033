// The status-bar item, driven by the server's `neuraldbg/status` notification.
// Its text is stable per state ("neuraldbg: ready · exec") so that users and
// the end-to-end test can tell when hovers will be answered.
import * as vscode from 'vscode';
import { StatusParams } from './protocol';

export const STATUS_ITEM_ID = 'neuraldbg.status';

export class StatusBar implements vscode.Disposable {
  private readonly item: vscode.StatusBarItem;

  constructor(clickCommand: string) {
    this.item = vscode.window.createStatusBarItem(STATUS_ITEM_ID, vscode.StatusBarAlignment.Left, 10);
    this.item.name = 'neuraldbg';
    this.item.command = clickCommand;
    this.showLocal('loading~spin', 'starting', 'Starting the neuraldbg language server');
    this.item.show();
  }

  /** States the extension knows before the server says anything. */
  showLocal(icon: string, word: string, tooltip: string, isError = false): void {
    this.item.text = `$(${icon}) neuraldbg: ${word}`;
    this.item.tooltip = tooltip;
    this.item.backgroundColor = isError ? new vscode.ThemeColor('statusBarItem.errorBackground') : undefined;
  }

  update(status: StatusParams): void {
    const backend = status.backend ? ` · ${status.backend}` : '';
    this.item.text = `$(${iconFor(status)}) neuraldbg: ${describe(status)}${backend}`;
    this.item.tooltip = tooltipFor(status);
    this.item.backgroundColor =
      status.state === 'error' ? new vscode.ThemeColor('statusBarItem.errorBackground') : undefined;
  }

  dispose(): void {
    this.item.dispose();
  }
}

function iconFor(status: StatusParams): string {
  switch (status.state) {
    case 'ready':
      return 'pulse';
    case 'busy':
      return 'sync~spin';
    case 'error':
      return 'error';
    default:
      return 'loading~spin';
  }
}

function describe(status: StatusParams): string {
  switch (status.state) {
    case 'loading': {
      const percent = asPercent(status.progress);
      return percent === undefined ? 'loading' : `loading ${percent}%`;
    }
    case 'busy':
      return status.queue > 0 ? `busy (${status.queue} queued)` : 'busy';
    default:
      return status.state;
  }
}

function asPercent(progress: number | undefined): number | undefined {
  if (typeof progress !== 'number' || !Number.isFinite(progress)) {
    return undefined;
  }
  // The schema leaves the scale open: accept both fractions and percents.
  const percent = progress <= 1 ? progress * 100 : progress;
  return Math.max(0, Math.min(100, Math.round(percent)));
}

function tooltipFor(status: StatusParams): vscode.MarkdownString {
  const lines = [`**neuraldbg** — ${status.state}`, '', `backend: \`${status.backend || '?'}\``];
  if (status.model) {
    lines.push(`model: \`${status.model}\``);
  }
  lines.push(`queue: ${status.queue ?? 0}`);
  if (status.message) {
    lines.push('', status.message);
  }
  lines.push('', 'Click to show the server log.');
  return new vscode.MarkdownString(lines.join('  \n'));
}
