/**
 * Momentum (EMA) encoders, as in MoCo (He et al. 2020, eq. 2) and BYOL (Grill et al. 2020):
 * θ_k ← m·θ_k + (1 − m)·θ_q, with m following a cosine schedule from `base` to 1 (BYOL §3.2).
 */
import * as nn from '../nn/index.js';
import * as torch from '../torch/index.js';

export { cosineSchedule } from '../optim/lr_scheduler.js';

/** θ_ema ← m·θ_ema + (1 − m)·θ for every parameter (buffers are left to the EMA model's own forward). */
export function updateMomentum(model: nn.Module, ema: nn.Module, m: number): void {
  const src = model.parameters();
  const dst = ema.parameters();
  if (src.length !== dst.length) throw new Error(`updateMomentum: models differ (${src.length} vs ${dst.length} parameters)`);
  torch.noGrad(() => {
    for (let i = 0; i < src.length; i++) dst[i]!.lerp_(src[i]!, 1 - m);
  });
}

/** Copies `model`'s weights into `copy` and freezes `copy` (no gradients). */
export function initMomentumCopy(model: nn.Module, copy: nn.Module): void {
  copy.loadStateDict(model.stateDict());
  copy.requiresGrad_(false);
}
