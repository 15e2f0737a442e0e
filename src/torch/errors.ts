import { DyadError } from '../errors.js';

export { DyadError, ERROR_CODES, isDyadError, type DyadErrorCode } from '../errors.js';

/** Errors raised by libtorch carry its own message (for example the shapes in a mismatch). */
export class TorchError extends DyadError<'TORCH'> {
  constructor(message: string) {
    super('TORCH', message);
    this.name = 'TorchError';
  }
}

/** Raised when a tensor is used after `dispose()` or after the `torch.scope` that owned it ended. */
export class DisposedTensorError extends DyadError<'DISPOSED_TENSOR'> {
  constructor(what = 'tensor') {
    super('DISPOSED_TENSOR',
      `this ${what} was disposed (by dispose() or at the end of the torch.scope that created it). ` +
        'Return it from the scope, or call .keep() on it, to use it afterwards.',
    );
    this.name = 'DisposedTensorError';
  }
}
