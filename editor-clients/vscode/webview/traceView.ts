// The trace view's page: renders the model the extension posts (a timeline
// table per side, predicted beside executed) and reports clicks back. Built
// with DOM calls and textContent only: trace values are program output and
// never become markup.
import type { LocalChange, TraceRow, TraceSide, TraceViewModel } from '../src/traceModel';
import type { FromWebview, ToWebview } from '../src/traceViewMessages';

interface VsCodeApi {
  postMessage(message: FromWebview): void;
}
declare function acquireVsCodeApi(): VsCodeApi;

const vscode = acquireVsCodeApi();
const app = document.getElementById('app') as HTMLElement;

function el<K extends keyof HTMLElementTagNameMap>(tag: K, className?: string, text?: string): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function button(label: string, id: string, message: FromWebview): HTMLButtonElement {
  const b = el('button', 'action', label);
  b.id = id;
  b.addEventListener('click', () => vscode.postMessage(message));
  return b;
}

function toolbar(title: string, busy: boolean): HTMLElement {
  const bar = el('div', 'toolbar');
  bar.append(el('h1', 'title', title));
  if (busy) {
    bar.append(button('Cancel', 'cancel', { type: 'cancel' }));
  } else {
    bar.append(button('Raw JSON', 'raw-json', { type: 'rawJson' }), button('Refresh', 'refresh', { type: 'refresh' }));
  }
  return bar;
}

function changeCell(changes: LocalChange[]): HTMLElement {
  const cell = el('td', 'locals');
  for (const change of changes) {
    const chip = el('span', `change ${change.kind}`);
    chip.dataset.name = change.name;
    if (change.kind === 'removed') {
      chip.textContent = `${change.name} (was ${change.before ?? ''})`;
      chip.title = `${change.name} no longer bound`;
    } else if (change.kind === 'changed') {
      chip.textContent = `${change.name} = ${change.value}`;
      chip.title = `${change.name}: ${change.before ?? ''} → ${change.value}`;
    } else {
      chip.textContent = `${change.name} = ${change.value}`;
      chip.title = `${change.name} is new`;
    }
    cell.append(chip);
  }
  return cell;
}

function percent(p: number): string {
  if (p >= 0.995) return '100%';
  if (p < 0.0001) return '<0.01%';
  return `${(p * 100).toFixed(p < 0.1 ? 2 : 0)}%`;
}

function sideTable(side: TraceSide, divergence: TraceViewModel['divergence'], showConfidence: boolean): HTMLElement {
  const box = el('section', `side side-${side.label}`);
  const frames = `${side.rows.length} frame${side.rows.length === 1 ? '' : 's'}`;
  const heading = el('h2', undefined, `${side.label} · ${side.backend} · ${frames} (${side.status})`);
  box.append(heading);
  if (side.error) box.append(el('p', 'error', side.error));
  const table = el('table', 'timeline');
  table.dataset.side = side.label;
  const head = el('tr');
  for (const name of ['step', 'event', 'line', 'locals changed', ...(showConfidence ? ['confidence'] : [])]) {
    head.append(el('th', undefined, name));
  }
  table.append(el('thead'));
  table.tHead?.append(head);
  const body = el('tbody');
  for (const row of side.rows) body.append(rowElement(row, side.label, divergence, showConfidence));
  table.append(body);
  box.append(table);
  return box;
}

function rowElement(row: TraceRow, side: string, divergence: TraceViewModel['divergence'], showConfidence: boolean): HTMLElement {
  const tr = el('tr', `frame event-${row.event}`);
  tr.dataset.step = String(row.step);
  tr.dataset.line = String(row.line);
  tr.tabIndex = 0;
  if (divergence && row.step === divergence.step) tr.classList.add('diverges');
  if (divergence && row.step > divergence.step) tr.classList.add('after-divergence');
  const indent = '· '.repeat(row.depth);
  tr.append(el('td', 'step', String(row.step)));
  const event = row.event === 'return' || row.event === 'exception' ? `${row.event} ${row.value ?? 'None'}` : row.event;
  tr.append(el('td', 'event', `${indent}${event}${row.depth > 0 ? ` (${row.function})` : ''}`));
  tr.append(el('td', 'line', row.line > 0 ? String(row.line) : '?'));
  const locals = changeCell(row.changes);
  if (row.problem) locals.append(el('span', 'problem', row.problem));
  tr.append(locals);
  if (showConfidence) {
    const p = row.confidence;
    const cell = el('td', 'confidence', typeof p === 'number' ? percent(p) : '');
    if (typeof p === 'number') cell.classList.add(p >= 0.9 ? 'high' : p >= 0.5 ? 'medium' : 'low');
    tr.append(cell);
  }
  const reveal = () => {
    if (row.line > 0) vscode.postMessage({ type: 'reveal', step: row.step, line: row.line, side });
    document.querySelectorAll('tr.frame.selected').forEach((r) => r.classList.remove('selected'));
    tr.classList.add('selected');
  };
  tr.addEventListener('click', reveal);
  tr.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' || event.key === ' ') {
      event.preventDefault();
      reveal();
    }
  });
  return tr;
}

function renderTrace(title: string, model: TraceViewModel, debugging: boolean): void {
  app.replaceChildren(toolbar(title, false));
  app.dataset.state = 'trace';
  const summary = el('p', 'summary');
  const named = model.model && model.model !== model.backend; // replay names itself as its model
  const parts = [named ? `${model.backend} · model ${model.model}` : `${model.backend} backend`];
  if (model.agreement) parts.push(`model agrees with the real run on ${model.agreement.agreeing} of ${model.agreement.frames} frames`);
  if (debugging) parts.push('click a frame to move the debugger there');
  summary.textContent = parts.join(' · ');
  app.append(summary);
  if (model.divergence) app.append(el('p', 'divergence-banner', model.divergence.message));
  if (model.note) app.append(el('p', 'note', model.note));
  const legend = el('p', 'legend');
  legend.append(el('span', 'change new', 'new'), el('span', 'change changed', 'changed'), el('span', 'change removed', 'removed'));
  app.append(legend);
  const sides = el('div', `sides count-${model.sides.length}`);
  for (const side of model.sides) {
    const confidence = side.rows.some((r) => r.confidence !== undefined);
    sides.append(sideTable(side, model.divergence, confidence));
  }
  app.append(sides);
}

window.addEventListener('message', (event: MessageEvent<ToWebview>) => {
  const message = event.data;
  if (message.type === 'tracing') {
    app.replaceChildren(toolbar(message.title, true), el('p', 'busy', `${message.title}: tracing…`));
    app.dataset.state = 'tracing';
  } else if (message.type === 'failed') {
    app.replaceChildren(toolbar(message.title, false), el('p', 'error', message.message));
    app.dataset.state = 'failed';
  } else if (message.type === 'trace') {
    renderTrace(message.title, message.model, message.debugging);
  }
});

vscode.postMessage({ type: 'ready' });
