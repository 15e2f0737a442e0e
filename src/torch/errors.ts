/** Errors raised by libtorch carry its own message (for example the shapes in a mismatch). */
export class TorchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TorchError';
  }
}

/** Raised when a tensor is used after `dispose()` or after the `torch.scope` that owned it ended. */
export class DisposedTensorError extends Error {
  constructor(what = 'tensor') {
    super(
      `this ${what} was disposed (by dispose() or at the end of the torch.scope that created it). ` +
        'Return it from the scope, or call .keep() on it, to use it afterwards.',
    );
    this.name = 'DisposedTensorError';
  }
}
