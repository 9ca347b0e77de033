// The messages between the trace view's webview and the extension (types only:
// both sides compile against this file).
import type { TraceViewModel } from './traceModel';

/** Extension -> webview: what to show. */
export type ToWebview =
  | { type: 'tracing'; title: string }
  | { type: 'trace'; title: string; model: TraceViewModel; debugging: boolean }
  | { type: 'failed'; title: string; message: string };

/** Webview -> extension: what the user did. */
export type FromWebview =
  | { type: 'ready' }
  | { type: 'reveal'; step: number; line: number; side: string }
  | { type: 'rawJson' }
  | { type: 'refresh' }
  | { type: 'cancel' };
