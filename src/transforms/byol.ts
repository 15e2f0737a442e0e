/**
 * BYOL's asymmetric augmentation (Grill et al. 2020, "Bootstrap Your Own Latent", Appendix B,
 * Table 6; lightly's `BYOLTransform` = `BYOLView1Transform` + `BYOLView2Transform`): both views
 * take a random resized crop with horizontal flip, colour jitter (0.4, 0.4, 0.2, 0.1) with
 * p = 0.8 and grayscale with p = 0.2, but they differ in
 *
 *   | | Gaussian blur p | solarization p |
 *   |---|---|---|
 *   | view 1 | 1.0 | 0 |
 *   | view 2 | 0.1 | 0.2 |
 *
 * Solarization (x → 1 − x for x ≥ 0.5) runs on [0, 1] pixels, before normalisation.
 * `[N, C, H, W]` (uint8 or float in [0, 1]) → two views `[N, C, size, size]`, normalised.
 */
import { Compose, type Transform } from './core.js';
import { RandomSolarization } from './color.js';
import { IMAGENET_STATS, Normalize } from './normalize.js';
import { MultiViewTransform, simclrView, type SimCLRViewOptions } from './views.js';

export interface BYOLTransformOptions extends Omit<SimCLRViewOptions, 'gaussianBlur'> {
  /** Blur probability of [view 1, view 2]. Default [1.0, 0.1]. */
  gaussianBlur?: [number, number];
  /** Solarization probability of [view 1, view 2]. Default [0, 0.2]. */
  solarizationProb?: [number, number];
  /** See `DEFAULT_MAX_CHUNK_BYTES`. */
  maxChunkBytes?: number;
}

export class BYOLTransform extends MultiViewTransform {
  constructor(o: BYOLTransformOptions = {}) {
    const blur = o.gaussianBlur ?? [1.0, 0.1];
    const solarize = o.solarizationProb ?? [0, 0.2];
    for (const p of [...blur, ...solarize]) {
      if (!(p >= 0 && p <= 1)) throw new RangeError(`BYOLTransform: gaussianBlur and solarizationProb are probabilities in [0, 1], got ${p}`);
    }
    const norm = o.normalize === undefined ? IMAGENET_STATS : o.normalize;
    const view = (i: 0 | 1): Transform => {
      const steps: Transform[] = [simclrView({ cjStrength: 0.5, cjSat: 0.4, ...o, gaussianBlur: blur[i], normalize: null })];
      if (solarize[i] > 0) steps.push(new RandomSolarization({ threshold: 0.5, p: solarize[i] }));
      if (norm !== null) steps.push(new Normalize(norm));
      return new Compose(steps);
    };
    super([view(0), view(1)], { maxChunkBytes: o.maxChunkBytes });
  }
}
