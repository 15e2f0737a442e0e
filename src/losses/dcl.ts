/**
 * Decoupled contrastive loss (Yeh et al. 2022, "Decoupled Contrastive Learning", ECCV, eq. 6;
 * lightly's `DCLLoss` / `DCLWLoss`). NT-Xent's denominator holds the positive pair too, and its
 * gradient then carries a "negative-positive coupling" factor that shrinks the learning signal
 * when the positive is already close or the batch is small. DCL drops the positive from the
 * denominator:
 *
 *   ℓᵢ = −⟨zᵢ, zᵢ'⟩/τ · w(i) + log Σ_{k ∉ {i, i'}} exp(⟨zᵢ, z_k⟩/τ)
 *
 * over all 2B rows of both views (so 2B − 2 negatives per row), mean over rows. `sigma` turns it
 * into DCLW: the positive term weighted by w(i) = 2 − B·softmaxᵢ(⟨zᵢ, zᵢ'⟩/σ) (a negative
 * von Mises-Fisher weighting; its mean over the batch is 1, and hard positives weigh more).
 *
 * `forward(out0 [B, D], out1 [B, D])` → scalar; rows are L2-normalised. Stable: masked entries are
 * −∞ inside a log-sum-exp. Unlike NT-Xent the value can be negative.
 */
import * as nn from '../nn/index.js';
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import { checkViewPair, viewPairLogits } from './ntxent.js';

const F = torch.functional;

export interface DCLLossOptions {
  /** τ. Default 0.1 (the paper's and lightly's default). */
  temperature?: number;
  /** DCLW's σ for the positive weighting; undefined = plain DCL (w = 1). */
  sigma?: number;
}

export class DCLLoss extends nn.Module {
  readonly temperature: number;
  readonly sigma: number | null;

  constructor(opts: DCLLossOptions = {}) {
    super();
    const t = opts.temperature ?? 0.1;
    if (!(t > 0) || !Number.isFinite(t)) throw new RangeError(`DCLLoss: temperature must be a positive number, got ${t}`);
    const s = opts.sigma;
    if (s !== undefined && (!(s > 0) || !Number.isFinite(s))) throw new RangeError(`DCLLoss: sigma must be a positive number, got ${s}`);
    this.temperature = t;
    this.sigma = s ?? null;
  }

  forward(out0: Tensor, out1: Tensor): Tensor {
    const b = checkViewPair('DCLLoss.forward', out0, out1, 2)[0]!;
    return torch.scope(() => {
      const { logits, partner } = viewPairLogits(F.normalize(out0), F.normalize(out1), this.temperature); // [2B, 2B], [2B]
      const pos = logits.gather(1, partner.unsqueeze(1)).squeeze(1); // [2B]
      const on = { device: logits.device };
      const isPartner = torch.arange(0, 2 * b, 1, on).unsqueeze(0).eq(partner.unsqueeze(1)); // [2B, 2B]: column = row's positive
      const mask = torch.eye(2 * b, 2 * b, { dtype: 'bool', ...on }).logicalOr(isPartner); // self and positive out of the denominator
      const neg = logits.maskedFill(mask, -Infinity).logsumexp(1); // [2B]
      let positive = pos.neg();
      if (this.sigma !== null) {
        const sim = pos.detach().mul(this.temperature / this.sigma).narrow(0, 0, b); // ⟨zᵢ, zᵢ'⟩/σ, one per pair
        const w = F.softmax(sim, 0).mul(-b).add(2);
        positive = positive.mul(torch.cat([w, w], 0));
      }
      return positive.add(neg).mean();
    });
  }
}

/** DCLW (Yeh et al. 2022): `DCLLoss` with the von Mises-Fisher weighting, σ = 0.5 by default. */
export class DCLWLoss extends DCLLoss {
  constructor(opts: DCLLossOptions = {}) {
    super({ temperature: opts.temperature, sigma: opts.sigma ?? 0.5 });
  }
}
