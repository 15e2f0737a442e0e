/**
 * CLIP's symmetric InfoNCE loss (Radford et al. 2021, "Learning Transferable Visual Models From
 * Natural Language Supervision", Figure 3): for a batch of N matching image–text pairs,
 *
 *   logits = exp(t) · norm(I) · norm(T)ᵀ          [N, N]
 *   loss   = ( CE(logits, 0..N−1) + CE(logitsᵀ, 0..N−1) ) / 2
 *
 * i.e. image→text and text→image classification with the other N − 1 pairs as negatives.
 * `t` is the learnable log inverse temperature (the model's `logit_scale`, initialised to
 * ln(1/0.07)); the paper clips exp(t) at 100 "to prevent scaling the logits by more than 100,
 * which we found necessary to prevent training instability". Here exp(t) is clamped at
 * `maxLogitScale` in the forward pass, and `clampLogitScale_` clips the parameter itself after
 * each optimizer step, as OpenAI's and open_clip's training code do.
 *
 * `forward(imageEmbeds [N, D], textEmbeds [N, D], logitScale [] (log space))` → scalar.
 */
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';

const F = torch.functional;

export interface CLIPLossOptions {
  /** Largest multiplier exp(t) of the cosine similarities. Default 100, as the paper. */
  maxLogitScale?: number;
}

export class CLIPLoss {
  readonly maxLogitScale: number;

  constructor(opts: CLIPLossOptions = {}) {
    const m = opts.maxLogitScale ?? 100;
    if (!(m > 0) || !Number.isFinite(m)) throw new RangeError(`CLIPLoss: maxLogitScale must be a positive number, got ${m}`);
    this.maxLogitScale = m;
  }

  /** Logits [N, N] (row i: image i against every text), with exp(t) clamped at maxLogitScale. */
  logits(imageEmbeds: Tensor, textEmbeds: Tensor, logitScale: Tensor): Tensor {
    return torch.scope(() => {
      const scale = logitScale.exp().clampMax(this.maxLogitScale);
      return F.normalize(imageEmbeds, { dim: -1 }).matmul(F.normalize(textEmbeds, { dim: -1 }).t()).mul(scale);
    });
  }

  forward(imageEmbeds: Tensor, textEmbeds: Tensor, logitScale: Tensor): Tensor {
    const a = imageEmbeds.shape;
    const b = textEmbeds.shape;
    if (a.length !== 2 || b.length !== 2 || a[0] !== b[0] || a[1] !== b[1]) {
      throw new RangeError(`CLIPLoss.forward: imageEmbeds and textEmbeds must both be [N, D] with the same shape, got [${a}] and [${b}]`);
    }
    if (a[0]! < 2) throw new RangeError(`CLIPLoss.forward: need at least 2 pairs for in-batch negatives, got ${a[0]}`);
    if (logitScale.numel() !== 1) throw new RangeError(`CLIPLoss.forward: logitScale must be a single value (log space), got shape [${logitScale.shape}]`);
    return torch.scope(() => {
      const logits = this.logits(imageEmbeds, textEmbeds, logitScale);
      const target = torch.arange(0, a[0]!, 1, { device: logits.device });
      return F.crossEntropy(logits, target).add(F.crossEntropy(logits.t(), target)).div(2);
    });
  }

  /** Clips a log-space logit scale parameter in place to [0, ln maxLogitScale] (after an optimizer step). */
  clampLogitScale_(logitScale: Tensor): void {
    torch.noGrad(() => logitScale.clamp_({ min: 0, max: Math.log(this.maxLogitScale) }));
  }
}
