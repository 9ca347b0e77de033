// neuraldbg's custom LSP methods, as lsp/README.md (the contract) defines them.
import { NotificationType, RequestType } from 'vscode-languageclient/node';

export type ServerState = 'starting' | 'loading' | 'ready' | 'busy' | 'error';

/** Payload of the `neuraldbg/status` notification (lsp/schemas/status.json). */
export interface StatusParams {
  state: ServerState;
  backend: string;
  model?: string;
  message: string;
  queue: number;
  /** Loading progress, 0..1 or 0..100 (both are accepted and shown as percent). */
  progress?: number;
}

export interface TraceParams {
  uri: string;
  function: string;
  call?: string;
  /** Also return `comparison` (the real run beside a prediction): the trace view asks for it. */
  compare?: boolean;
}

/** The trace JSON exactly as `neuraldbg trace --format json` prints it. */
export type TraceResult = Record<string, unknown>;

export interface SetEntryParams {
  uri: string;
  function: string;
  call: string;
}

export interface SetEntryResult {
  ok: boolean;
  call: string;
  error?: string;
}

export interface DebugAdapterResult {
  port: number;
}

export const statusNotification = new NotificationType<StatusParams>('neuraldbg/status');
export const traceRequest = new RequestType<TraceParams, TraceResult, void>('neuraldbg/trace');
export const setEntryRequest = new RequestType<SetEntryParams, SetEntryResult, void>('neuraldbg/setEntry');
export const debugAdapterRequest = new RequestType<Record<string, never>, DebugAdapterResult, void>(
  'neuraldbg/debugAdapter',
);
