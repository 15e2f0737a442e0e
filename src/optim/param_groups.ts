/** Building parameter groups the way SSL recipes do. */
import type { Tensor } from '../torch/index.js';

/** Module names of normalisation layers: `bn1`, `ln_1`, `ln_post`, `gn`, anything with `norm` (`norm1`, `layer_norm`). */
const NORM_SEGMENT = /^(bn|ln|gn)(\d+|_\w+)?$|norm/i;

/** Whether a parameter is a bias or belongs to a normalisation layer (the usual no-decay set). */
export function isBiasOrNorm(name: string, p: Tensor): boolean {
  if (p.ndim <= 1) return true;
  const segs = name.split('.');
  if (segs[segs.length - 1] === 'bias') return true;
  return segs.slice(0, -1).some((s) => NORM_SEGMENT.test(s));
}

export interface WeightDecayGroupsOptions {
  weightDecay: number;
  /** Extra names (or a test) to exempt from decay, e.g. ViT's `cls_token`, `pos_embed`. */
  noDecay?: string[] | ((name: string, p: Tensor) => boolean);
  /** Keep parameters with requiresGrad false (frozen); default false, as the recipes filter them. */
  includeFrozen?: boolean;
}

/**
 * Splits named parameters into a decayed group and a group without weight decay (biases,
 * 1-d parameters, normalisation layers), as SimCLR/BYOL/MoCo v3 recipes do. The no-decay group
 * also has `lars: false`, so LARS skips its trust-ratio adaptation (ignored by other optimizers).
 * Empty groups are left out. Each group has a `name`: 'decay' or 'no_decay'.
 * @example new AdamW(paramGroupsForWeightDecay(model.namedParameters(), { weightDecay: 0.05 }), { lr: 1e-3 })
 */
export function paramGroupsForWeightDecay(
  namedParams: Iterable<[string, Tensor]>,
  opts: WeightDecayGroupsOptions,
): { params: Tensor[]; weightDecay: number; name: string; lars?: boolean }[] {
  const extra = opts.noDecay;
  const exempt = typeof extra === 'function' ? extra : (name: string) => (extra ?? []).some((n) => name === n || name.endsWith('.' + n));
  const decay: Tensor[] = [];
  const noDecay: Tensor[] = [];
  for (const [name, p] of namedParams) {
    if (!opts.includeFrozen && !p.requiresGrad) continue;
    (isBiasOrNorm(name, p) || exempt(name, p) ? noDecay : decay).push(p);
  }
  const groups: { params: Tensor[]; weightDecay: number; name: string; lars?: boolean }[] = [];
  if (decay.length > 0) groups.push({ params: decay, weightDecay: opts.weightDecay, name: 'decay' });
  if (noDecay.length > 0) groups.push({ params: noDecay, weightDecay: 0, name: 'no_decay', lars: false });
  return groups;
}
