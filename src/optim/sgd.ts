/**
 * SGD with momentum, dampening, Nesterov momentum, weight decay and maximize, exactly as
 * `torch.optim.SGD` (Sutskever et al. 2013 form):
 *
 *   g = ±grad (+ wd·p);  buf = g on the first step, else μ·buf + (1 − dampening)·g;
 *   g = g + μ·buf (Nesterov) or buf;  p -= lr·g
 *
 * State: `momentum_buffer` (when momentum != 0).
 */
import type { Tensor } from '../torch/index.js';
import { Optimizer, check, withDefaults, type ParamGroup, type ParamState, type Params } from './optimizer.js';

export interface SGDOptions {
  lr: number;
  momentum?: number;
  dampening?: number;
  weightDecay?: number;
  nesterov?: boolean;
  maximize?: boolean;
}
export type SGDHyper = Required<SGDOptions>;

/** SGD's update of one parameter (shared with LARS); `d` is the direction after weight decay. */
export function momentumStep(st: ParamState, p: Tensor, d: Tensor, g: { lr: number; momentum: number; dampening: number; nesterov: boolean }): void {
  let dir = d;
  if (g.momentum !== 0) {
    let buf = st.momentum_buffer as Tensor | undefined;
    if (buf === undefined) {
      buf = d.clone().keep();
      st.momentum_buffer = buf;
    } else {
      buf.mul_(g.momentum).add_(d, { alpha: 1 - g.dampening });
    }
    dir = g.nesterov ? d.add(buf, { alpha: g.momentum }) : buf;
  }
  p.add_(dir, { alpha: -g.lr });
}

export function validateSGDLike(name: string, g: { lr: number; momentum: number; dampening: number; weightDecay: number; nesterov: boolean }): void {
  check(Number.isFinite(g.lr) && g.lr >= 0, name, 'learning rate', g.lr);
  check(Number.isFinite(g.momentum) && g.momentum >= 0, name, 'momentum value', g.momentum);
  check(Number.isFinite(g.dampening), name, 'dampening', g.dampening);
  check(Number.isFinite(g.weightDecay) && g.weightDecay >= 0, name, 'weight_decay value', g.weightDecay);
  if (g.nesterov && (g.momentum <= 0 || g.dampening !== 0)) throw new RangeError(`${name}: Nesterov momentum requires a momentum and zero dampening`);
}

export class SGD extends Optimizer<SGDHyper> {
  constructor(params: Params<SGDHyper>, opts: SGDOptions) {
    if (opts?.lr === undefined) throw new TypeError('SGD: lr is required (e.g. new SGD(params, { lr: 0.1 }))');
    super(params, withDefaults({ lr: opts.lr, momentum: 0, dampening: 0, weightDecay: 0, nesterov: false, maximize: false }, opts));
  }

  protected override validateGroup(g: ParamGroup<SGDHyper>): void {
    validateSGDLike('SGD', g);
  }

  protected override update(p: Tensor, grad: Tensor, st: ParamState, g: ParamGroup<SGDHyper>): void {
    let d = g.maximize ? grad.neg() : grad;
    if (g.weightDecay !== 0) d = d.add(p, { alpha: g.weightDecay });
    momentumStep(st, p, d, g);
  }
}
