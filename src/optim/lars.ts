/**
 * LARS, layer-wise adaptive rate scaling (You, Gitman & Ginsburg 2017, "Large Batch Training
 * of Convolutional Networks"), in the form SimCLR/BYOL recipes use (solo-learn, lightly, PL
 * bolts): SGD with momentum whose per-parameter step is scaled by a trust ratio.
 *
 * For a parameter p with gradient g in a group with `lars` not false, when ‖p‖ > 0 and ‖g‖ > 0:
 *
 *   r = η·‖p‖ / (‖g‖ + wd·‖p‖ + eps)      (clipLarsLr: r = min(r / lr, 1))
 *   d = (g + wd·p) · r
 *
 * otherwise d = g. Groups with `lars: false` (biases and norm parameters, see
 * `paramGroupsForWeightDecay`) skip the adaptation and take a plain `torch.optim.SGD` step:
 * d = g + wd·p with their own weight decay (0 in the usual recipes). Then, as SGD:
 * buf = μ·buf + (1 − dampening)·d (first step: buf = d); p −= lr·(Nesterov ? d + μ·buf : buf).
 *
 * The trust ratio stays on the device (no host sync per parameter). State: `momentum_buffer`.
 */
import { where, type Tensor } from '../torch/index.js';
import { Optimizer, check, withDefaults, type ParamGroup, type ParamState, type Params } from './optimizer.js';
import { momentumStep, validateSGDLike } from './sgd.js';

export interface LARSOptions {
  lr: number;
  /** Default 0.9. */
  momentum?: number;
  dampening?: number;
  weightDecay?: number;
  nesterov?: boolean;
  /** η, default 0.001. */
  trustCoefficient?: number;
  /** Added to the trust ratio's denominator, default 1e-8. */
  eps?: number;
  /** Caps the adapted lr at the global lr (r = min(r / lr, 1)), as solo-learn's `clip_lars_lr`. */
  clipLarsLr?: boolean;
}
export type LARSHyper = Required<LARSOptions>;

export class LARS extends Optimizer<LARSHyper> {
  constructor(params: Params<LARSHyper & { lars: boolean }>, opts: LARSOptions) {
    if (opts?.lr === undefined) throw new TypeError('LARS: lr is required (e.g. new LARS(params, { lr: 0.3 }))');
    super(params as Params<LARSHyper>, withDefaults<LARSHyper>(
      { lr: opts.lr, momentum: 0.9, dampening: 0, weightDecay: 0, nesterov: false, trustCoefficient: 1e-3, eps: 1e-8, clipLarsLr: false }, opts));
  }

  protected override validateGroup(g: ParamGroup<LARSHyper>): void {
    validateSGDLike('LARS', g);
    check(Number.isFinite(g.trustCoefficient) && g.trustCoefficient >= 0, 'LARS', 'trust coefficient', g.trustCoefficient);
    check(Number.isFinite(g.eps) && g.eps >= 0, 'LARS', 'eps', g.eps);
    if (g.clipLarsLr && !(g.lr > 0)) throw new RangeError('LARS: clipLarsLr needs lr > 0');
  }

  protected override update(p: Tensor, grad: Tensor, st: ParamState, g: ParamGroup<LARSHyper>): void {
    const wd = g.weightDecay;
    let d = grad;
    if (g.lars !== false) {
      const pn = p.norm();
      const gn = grad.norm();
      let ratio = pn.div(gn.add(pn.mul(wd)).add(g.eps)).mul(g.trustCoefficient);
      if (g.clipLarsLr) ratio = ratio.div(g.lr).clamp({ max: 1 });
      // Scale s: the ratio when both norms are > 0. Otherwise d must be g: s = 1 when ‖g‖ > 0
      // (then p = 0 and g + wd·p = g), s = 0 when g = 0.
      const gPos = gn.gt(0);
      const s = where(pn.gt(0).logicalAnd(gPos), ratio, gPos.to(ratio.dtype));
      d = wd !== 0 ? grad.add(p, { alpha: wd }).mul_(s) : grad.mul(s);
    } else if (wd !== 0) {
      d = grad.add(p, { alpha: wd });
    }
    momentumStep(st, p, d, g);
  }
}
