// What the trace view shows, computed from a `neuraldbg/trace` result (with
// `compare: true`, lsp/README.md): one row per frame with the locals that
// changed since the previous frame of the same call, and, for a prediction,
// the real run beside it with the first divergence and the model's
// confidence. Pure (no vscode import): the webview only renders it.

export type ChangeKind = 'new' | 'changed' | 'removed';

export interface LocalChange {
  name: string;
  kind: ChangeKind;
  value: string; // the value now ('' when removed)
  before?: string; // the value before (changed, removed)
}

export interface TraceRow {
  step: number;
  event: string;
  line: number; // 1-based; 0: a predicted line that could not be mapped
  function: string;
  depth: number;
  changes: LocalChange[];
  value: string | null; // return value / exception
  problem?: string;
  confidence?: number | null; // the model's probability of this real frame (executed side, when rated)
}

export interface TraceSide {
  label: string; // "predicted", "executed" or "trace"
  backend: string;
  rows: TraceRow[];
  status: string;
  error: string | null;
}

export interface TraceViewModel {
  function: string;
  call: string;
  backend: string;
  model?: string;
  sides: TraceSide[]; // one (a real run, or a prediction without one) or two (predicted, executed)
  divergence?: { step: number; line: number; message: string };
  note?: string; // why there is no real run beside the prediction
  agreement?: { frames: number; agreeing: number };
}

interface FrameJson {
  event: string;
  line: number;
  function: string;
  depth: number;
  locals?: Record<string, string>;
  value?: string | null;
  problem?: string;
}

interface TraceJson {
  function?: unknown;
  call?: unknown;
  backend?: unknown;
  model?: unknown;
  frames?: unknown;
  status?: unknown;
  error?: unknown;
  comparison?: unknown;
}

interface ComparisonJson {
  predicted?: unknown;
  executed?: unknown;
  divergence?: unknown;
  reason?: unknown;
  confidence?: unknown;
  agreement?: unknown;
}

const str = (value: unknown, fallback = ''): string => (typeof value === 'string' ? value : fallback);

function frames(trace: TraceJson): FrameJson[] {
  return Array.isArray(trace.frames) ? (trace.frames as FrameJson[]) : [];
}

/** The previous frame of the same call as `frames[i]` (null: the call's first frame). */
function previousInScope(list: FrameJson[], i: number): FrameJson | null {
  const depth = list[i].depth;
  if (list[i].event === 'call') {
    return null;
  }
  for (let j = i - 1; j >= 0; j--) {
    if (list[j].depth < depth) {
      return null; // left the call: its first frame is a call frame, so this only guards odd traces
    }
    if (list[j].depth === depth) {
      return list[j];
    }
  }
  return null;
}

/** The locals of `now` that are new, changed or gone against `before` (null: all new). */
export function localChanges(before: Record<string, string> | null, now: Record<string, string>): LocalChange[] {
  const out: LocalChange[] = [];
  for (const [name, value] of Object.entries(now)) {
    if (!before || !(name in before)) {
      out.push({ name, kind: 'new', value });
    } else if (before[name] !== value) {
      out.push({ name, kind: 'changed', value, before: before[name] });
    }
  }
  if (before) {
    for (const [name, value] of Object.entries(before)) {
      if (!(name in now)) {
        out.push({ name, kind: 'removed', value: '', before: value });
      }
    }
  }
  return out;
}

export function rows(trace: TraceJson, confidence?: (number | null)[]): TraceRow[] {
  const list = frames(trace);
  return list.map((frame, i) => {
    const previous = previousInScope(list, i);
    const row: TraceRow = {
      step: i,
      event: frame.event,
      line: frame.line,
      function: frame.function,
      depth: frame.depth,
      changes: localChanges(previous ? previous.locals ?? {} : null, frame.locals ?? {}),
      value: frame.value ?? null,
    };
    if (frame.problem) {
      row.problem = frame.problem;
    }
    if (confidence) {
      row.confidence = typeof confidence[i] === 'number' ? confidence[i] : null;
    }
    return row;
  });
}

function side(label: string, trace: TraceJson, confidence?: (number | null)[]): TraceSide {
  return {
    label,
    backend: str(trace.backend),
    rows: rows(trace, confidence),
    status: str(trace.status, 'complete'),
    error: typeof trace.error === 'string' ? trace.error : null,
  };
}

/** The view of one `neuraldbg/trace` result. */
export function viewModel(result: unknown): TraceViewModel {
  const trace = (result && typeof result === 'object' ? result : {}) as TraceJson;
  const comparison = (trace.comparison && typeof trace.comparison === 'object' ? trace.comparison : {}) as ComparisonJson;
  const model: TraceViewModel = {
    function: str(trace.function),
    call: str(trace.call),
    backend: str(trace.backend),
    sides: [],
  };
  if (typeof trace.model === 'string') {
    model.model = trace.model;
  }
  const executed = comparison.executed && typeof comparison.executed === 'object' ? (comparison.executed as TraceJson) : null;
  if (comparison.predicted === true && executed) {
    const confidence = Array.isArray(comparison.confidence) ? (comparison.confidence as (number | null)[]) : undefined;
    model.sides = [side('predicted', trace), side('executed', executed, confidence)];
  } else {
    model.sides = [side(comparison.predicted === true ? 'predicted' : 'trace', trace)];
  }
  const divergence = comparison.divergence as TraceViewModel['divergence'] | null | undefined;
  if (divergence && typeof divergence.step === 'number') {
    model.divergence = divergence;
  }
  if (typeof comparison.reason === 'string' && comparison.predicted === true) {
    model.note = comparison.reason;
  }
  const agreement = comparison.agreement as TraceViewModel['agreement'] | undefined;
  if (agreement && typeof agreement.frames === 'number') {
    model.agreement = agreement;
  }
  return model;
}
