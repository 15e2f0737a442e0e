/** Gradient clipping, as `torch.nn.utils.clip_grad_norm_` / `clip_grad_value_`. */
import { Tensor, noGrad, scope, stack } from '../torch/index.js';

/**
 * Scales the gradients of `params` in place so that their joint `normType`-norm is at most
 * `maxNorm` (coefficient min(1, maxNorm / (norm + 1e-6)), applied to every gradient as PyTorch
 * does). Returns the total norm before clipping, as a number (one host sync). Parameters
 * without a gradient are skipped; with none at all the norm is 0.
 * @param normType 2 by default; `Infinity` for the max-norm.
 * @param opts.errorIfNonfinite throw when the total norm is NaN or infinite (gradients untouched).
 */
export function clipGradNorm_(params: Tensor | Iterable<Tensor>, maxNorm: number, normType = 2, opts: { errorIfNonfinite?: boolean } = {}): number {
  const list = params instanceof Tensor ? [params] : [...params];
  if (!(maxNorm >= 0)) throw new RangeError(`clipGradNorm_: maxNorm must be >= 0, got ${maxNorm}`);
  return scope(() => noGrad(() => {
    const grads = list.map((p) => p.grad).filter((g): g is Tensor => g !== null);
    if (grads.length === 0) return 0;
    const norms = grads.map((g) => (normType === Infinity ? g.abs().max() : g.norm(normType)));
    const total = normType === Infinity ? stack(norms).max() : stack(norms).norm(normType);
    const value = total.item();
    if (opts.errorIfNonfinite && !Number.isFinite(value)) {
      throw new Error(`clipGradNorm_: the total norm of order ${normType} of the gradients is ${value}, so they cannot be clipped. ` +
        'Set errorIfNonfinite: false to clip anyway (the gradients become NaN).');
    }
    const coef = total.add(1e-6).reciprocal().mul_(maxNorm).clamp_({ max: 1 });
    for (const g of grads) g.mul_(coef);
    return value;
  }));
}

/** Clamps every gradient of `params` to [-clipValue, clipValue] in place. */
export function clipGradValue_(params: Tensor | Iterable<Tensor>, clipValue: number): void {
  const list = params instanceof Tensor ? [params] : [...params];
  scope(() => noGrad(() => {
    for (const p of list) p.grad?.clamp_({ min: -clipValue, max: clipValue });
  }));
}
