/**
 * Errors raised by the search layer. Every message names the thing that is wrong and the fix.
 * `code` is stable, for callers (the CLI, the server) that branch on the kind of failure.
 */
import { DyadError } from '../errors.js';

export type IndexErrorCode =
  | 'TABLE_NOT_FOUND'
  | 'MODEL_MISMATCH'
  | 'DIM_MISMATCH'
  | 'DB_UNREADABLE'
  | 'BAD_QUERY'
  | 'BAD_FILTER'
  | 'NO_TEXT_TOWER'
  | 'EMBEDDER_FAILED'
  | 'WEIGHTS_NOT_FOUND'
  | 'BAD_INPUT';

export class IndexError extends DyadError<IndexErrorCode> {
  constructor(code: IndexErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'IndexError';
  }
}

/** Shortens a model identity for messages: `abc123def456…`. */
export function shortIdentity(identity: string, n = 12): string {
  return identity.length > n ? `${identity.slice(0, n)}…` : identity;
}
