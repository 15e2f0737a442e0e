/** The optimisation step every training loop of the engine shares. */
import type { Tensor } from '../torch/index.js';
import type { Optimizer } from '../optim/index.js';

/**
 * Backward pass and optimizer step on a scalar loss; returns the loss value. A NaN or infinite
 * loss is returned without stepping, so the caller can stop and keep its last good checkpoint.
 * `beforeStep` runs between backward and the step (gradient clipping, cancelled gradients).
 */
export function optimizerStep(loss: Tensor, optimizer: Optimizer<any>, beforeStep?: () => void): number {
  const value = loss.item();
  if (!Number.isFinite(value)) return value;
  loss.backward();
  beforeStep?.();
  optimizer.step();
  optimizer.zeroGrad();
  return value;
}
