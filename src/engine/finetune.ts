/**
 * Fine-tuning with few labels: a pretrained backbone plus a zero-initialised linear head,
 * trained end to end with cross-entropy on a class-balanced fraction of the labels (the
 * semi-supervised protocol of SimCLR, Chen et al. 2020 §4 / Table 7, which fine-tunes the whole
 * network on 1% and 10% of ImageNet's labels). The backbone learns at a lower rate
 * (`backboneLrScale`, default 0.1) than the head, so the first, random-headed steps do not wreck
 * the pretrained features. The loop is the engine's, through `trainClassifier` (see supervised.ts).
 */
import { Classifier, type ClassifierBackbone } from '../models/classifier.js';
import type { LabelledData } from './classify.js';
import { FIT_DEFAULTS, pickFit, trainClassifier, type ClassifierRunResult, type FitOptions } from './supervised.js';

export interface FinetuneOptions extends Partial<Omit<FitOptions, 'mean' | 'std'>> {
  /** Fraction of the training labels (class-balanced, seeded); default 1. */
  labelFraction?: number;
}

export const FINETUNE_DEFAULTS: Partial<FitOptions> = { backboneLrScale: 0.1, lr: 0.1, epochs: 30 };

/**
 * Fine-tunes `backbone` (it becomes part of the returned classifier: pass a copy if the caller
 * keeps using it) on `data`; `norm` is the normalisation it was pretrained with.
 */
export async function finetune(backbone: ClassifierBackbone, data: LabelledData, norm: { mean: number[]; std: number[] }, opts: FinetuneOptions = {}): Promise<ClassifierRunResult> {
  const model = new Classifier(backbone, data.names.length, { zeroHead: true });
  return trainClassifier(model, data, {
    labelFraction: opts.labelFraction ?? 1, seed: opts.seed ?? 0,
    fit: { ...FIT_DEFAULTS, ...FINETUNE_DEFAULTS, ...pickFit(opts), onLog: opts.onLog, ...norm } as FitOptions,
  });
}
