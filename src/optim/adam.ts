/**
 * Adam (Kingma & Ba 2015) and AdamW (Loshchilov & Hutter 2019, decoupled weight decay),
 * exactly as `torch.optim.Adam` / `torch.optim.AdamW` (single-tensor path), with amsgrad and
 * maximize:
 *
 *   t += 1;  Adam: g += wd·p  |  AdamW: p *= 1 − lr·wd
 *   m = β1·m + (1 − β1)·g;  v = β2·v + (1 − β2)·g²;  (amsgrad: v̂ = max(v̂, v), used for v)
 *   p -= lr / (1 − β1^t) · m / (√v / √(1 − β2^t) + eps)
 *
 * State: `step` (a number, per parameter), `exp_avg`, `exp_avg_sq`, `max_exp_avg_sq` (amsgrad).
 */
import { zerosLike } from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import { Optimizer, check, withDefaults, type ParamGroup, type ParamState, type Params } from './optimizer.js';

export interface AdamOptions {
  lr?: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
  amsgrad?: boolean;
  maximize?: boolean;
}
export type AdamHyper = Required<AdamOptions>;

abstract class AdamBase extends Optimizer<AdamHyper> {
  protected abstract readonly decoupled: boolean;

  protected override validateGroup(g: ParamGroup<AdamHyper>): void {
    const name = this.constructor.name;
    check(Number.isFinite(g.lr) && g.lr >= 0, name, 'learning rate', g.lr);
    check(Number.isFinite(g.eps) && g.eps >= 0, name, 'epsilon value', g.eps);
    check(Array.isArray(g.betas) && g.betas.length === 2, name, 'betas', g.betas);
    check(g.betas[0] >= 0 && g.betas[0] < 1, name, 'beta parameter at index 0', g.betas[0]);
    check(g.betas[1] >= 0 && g.betas[1] < 1, name, 'beta parameter at index 1', g.betas[1]);
    check(Number.isFinite(g.weightDecay) && g.weightDecay >= 0, name, 'weight_decay value', g.weightDecay);
  }

  protected override update(p: Tensor, grad0: Tensor, st: ParamState, g: ParamGroup<AdamHyper>): void {
    const [b1, b2] = g.betas;
    const { lr, eps, weightDecay: wd } = g;
    let grad = g.maximize ? grad0.neg() : grad0;
    if (st.step === undefined) {
      st.step = 0;
      st.exp_avg = zerosLike(p).keep();
      st.exp_avg_sq = zerosLike(p).keep();
    }
    if (g.amsgrad && st.max_exp_avg_sq === undefined) st.max_exp_avg_sq = zerosLike(p).keep();
    const step = (st.step as number) + 1;
    st.step = step;
    const m = st.exp_avg as Tensor;
    const v = st.exp_avg_sq as Tensor;
    if (this.decoupled) {
      if (wd !== 0) p.mul_(1 - lr * wd);
    } else if (wd !== 0) {
      grad = grad.add(p, { alpha: wd });
    }
    m.mul_(b1).add_(grad, { alpha: 1 - b1 });
    v.mul_(b2).addcmul_(grad, grad, { value: 1 - b2 });
    const stepSize = lr / (1 - b1 ** step);
    const bc2Sqrt = Math.sqrt(1 - b2 ** step);
    let second = v;
    if (g.amsgrad) {
      const vmax = st.max_exp_avg_sq as Tensor;
      vmax.copy_(vmax.maximum(v));
      second = vmax;
    }
    const denom = second.sqrt().div_(bc2Sqrt).add_(eps);
    p.addcdiv_(m, denom, { value: -stepSize });
  }
}

/** Adam; defaults lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight decay 0 (L2, added to the gradient). */
export class Adam extends AdamBase {
  protected override readonly decoupled = false;
  constructor(params: Params<AdamHyper>, opts: AdamOptions = {}) {
    super(params, withDefaults<AdamHyper>({ lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0, amsgrad: false, maximize: false }, opts));
  }
}

/** AdamW; defaults lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight decay 1e-2 (decoupled). */
export class AdamW extends AdamBase {
  protected override readonly decoupled = true;
  constructor(params: Params<AdamHyper>, opts: AdamOptions = {}) {
    super(params, withDefaults<AdamHyper>({ lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 1e-2, amsgrad: false, maximize: false }, opts));
  }
}
