/** Autograd mode scopes and `torch.autograd.grad`. Grad mode is per thread, as in PyTorch. */
import { N } from './native.js';
import { Tensor, handles, wrapAll } from './tensor.js';

function withGradMode<T>(enabled: boolean, fn: () => T): T {
  const prev: boolean = N.gradEnabled!(enabled);
  try {
    return fn();
  } finally {
    N.gradEnabled!(prev);
  }
}

/** Runs `fn` without recording operations for autograd (`with torch.no_grad():`). */
export const noGrad = <T>(fn: () => T): T => withGradMode(false, fn);
/** Runs `fn` with autograd recording on, even inside `noGrad`. */
export const enableGrad = <T>(fn: () => T): T => withGradMode(true, fn);
export const isGradEnabled = (): boolean => N.gradEnabled!();
export const setGradEnabled = (enabled: boolean): void => void N.gradEnabled!(enabled);

/** Gradients of `outputs` w.r.t. `inputs`, without touching `.grad` (torch.autograd.grad). */
export function grad(
  outputs: Tensor | Tensor[],
  inputs: Tensor | Tensor[],
  opts: { gradOutputs?: Tensor[]; retainGraph?: boolean; createGraph?: boolean; allowUnused?: boolean } = {},
): (Tensor | null)[] {
  const outs = Array.isArray(outputs) ? outputs : [outputs];
  const ins = Array.isArray(inputs) ? inputs : [inputs];
  const r = N.autogradGrad!(handles(outs), handles(ins), opts.gradOutputs ? handles(opts.gradOutputs) : null,
    opts.retainGraph ?? null, opts.createGraph ?? false, opts.allowUnused ?? false);
  return (r as unknown[]).map((h) => (h === null ? null : wrapAll([h as never])[0]!));
}
