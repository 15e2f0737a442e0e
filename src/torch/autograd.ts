/** Autograd mode scopes and `torch.autograd.grad`. Grad mode is per thread, as in PyTorch. */
import { N } from './native.js';
import { Tensor, handles, wrapAll } from './tensor.js';
import * as creation from './creation.js';
import * as scopeModule from './scope.js';

function withGradMode<T>(enabled: boolean, fn: () => T): T {
  const prev: boolean = N.gradEnabled(enabled);
  try {
    return fn();
  } finally {
    N.gradEnabled(prev);
  }
}

/** Runs `fn` without recording operations for autograd (`with torch.no_grad():`). */
export const noGrad = <T>(fn: () => T): T => withGradMode(false, fn);
/** Runs `fn` with autograd recording on, even inside `noGrad`. */
export const enableGrad = <T>(fn: () => T): T => withGradMode(true, fn);
export const isGradEnabled = (): boolean => N.gradEnabled();
export const setGradEnabled = (enabled: boolean): void => void N.gradEnabled(enabled);

/** Gradients of `outputs` w.r.t. `inputs`, without touching `.grad` (torch.autograd.grad). */
export function grad(
  outputs: Tensor | Tensor[],
  inputs: Tensor | Tensor[],
  opts: { gradOutputs?: Tensor[]; retainGraph?: boolean; createGraph?: boolean; allowUnused?: boolean } = {},
): (Tensor | null)[] {
  const outs = Array.isArray(outputs) ? outputs : [outputs];
  const ins = Array.isArray(inputs) ? inputs : [inputs];
  const r = N.autogradGrad(handles(outs), handles(ins), opts.gradOutputs ? handles(opts.gradOutputs) : null,
    opts.retainGraph ?? null, opts.createGraph ?? false, opts.allowUnused ?? false);
  return (r as unknown[]).map((h) => (h === null ? null : wrapAll([h as never])[0]!));
}

/**
 * Compares autograd's gradients of `fn` with central finite differences, as
 * `torch.autograd.gradcheck`. `inputs` should be float64 leaves with `requiresGrad`; the
 * output is reduced with fixed random weights, so every output element is checked.
 * Returns the largest absolute difference; throws with the first mismatch.
 */
export function gradcheck(fn: (...xs: Tensor[]) => Tensor, inputs: Tensor[], opts: { eps?: number; atol?: number; rtol?: number } = {}): number {
  const eps = opts.eps ?? 1e-6;
  const atol = opts.atol ?? 1e-5;
  const rtol = opts.rtol ?? 1e-3;
  const { scope } = scopeModule;
  return scope(() => {
    const out0 = fn(...inputs);
    const weights = creation.randnLike(out0.detach());
    const objective = (): number => noGrad(() => fn(...inputs).mul(weights).sum().item());
    const analytic = grad(out0.mul(weights).sum(), inputs, { allowUnused: true });
    let worst = 0;
    inputs.forEach((x, k) => {
      const g = analytic[k];
      const ga = g === null || g === undefined ? new Float64Array(x.numel()) : g.toFloat64Array();
      const flat = x.detach().view(-1);
      for (let i = 0; i < x.numel(); i++) {
        const orig = flat.get(i).item();
        noGrad(() => flat.get(i).fill_(orig + eps));
        const fp = objective();
        noGrad(() => flat.get(i).fill_(orig - eps));
        const fm = objective();
        noGrad(() => flat.get(i).fill_(orig));
        const numeric = (fp - fm) / (2 * eps);
        const diff = Math.abs(numeric - ga[i]!);
        worst = Math.max(worst, diff);
        if (diff > atol + rtol * Math.abs(numeric)) {
          throw new Error(`gradcheck: input ${k}, element ${i}: numeric ${numeric} vs analytic ${ga[i]} (|diff| ${diff})`);
        }
      }
    });
    return worst;
  });
}
