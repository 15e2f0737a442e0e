/**
 * Validators: accuracy of a model on labelled data, one class per task (`tasks.ts` picks).
 * - Classifier: its predictions on the evaluation split (`loadEvalData`: the test split of
 *   Fashion-MNIST, `val/` or `test/` of a folder, or a whole labelled folder).
 * - Embedder: the weighted kNN classifier on its features (k = 200, τ = 0.1), training split as
 *   the bank and evaluation split as queries, as the trainer's monitor does.
 * - CLIP: zero-shot classification with the class names as labels (`clip.ts`).
 * All give top-1, top-5, per-class accuracy and the confusion matrix.
 */
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import { disposeTrainData, loadTrainData } from '../engine/data.js';
import { DataError } from '../data/errors.js';
import { embedIndices } from '../engine/evaluate.js';
import { knnScores } from '../engine/knn.js';
import { classifyMetrics, evaluateClassifier, labelMap, loadEvalData, type ClassifyMetrics } from '../engine/classify.js';
import type { Net } from './net.js';
import type { ValArgs } from './args.js';

export interface ValMetrics extends ClassifyMetrics {
  /** The data evaluated and which split of it. */
  data: string;
  split: string;
  /** 'classifier' (the head's predictions), 'knn' (an embedder's kNN classifier) or 'zero-shot' (a CLIP's class prompts). */
  method: 'classifier' | 'knn' | 'zero-shot';
  /** kNN: training images in the bank. */
  bank?: number;
}

export abstract class Validator {
  constructor(protected readonly net: Net, protected readonly args: ValArgs) {}
  abstract run(): Promise<ValMetrics>;
}

export class ClassifierValidator extends Validator {
  async run(): Promise<ValMetrics> {
    const { channels, imageSize, mean, std } = this.net.config;
    const ev = await loadEvalData({ data: this.args.data, dataRoot: this.args.dataRoot, imageSize, channels });
    try {
      const map = labelMap(ev.names, this.net.names);
      const m = evaluateClassifier(this.net.classifier!, ev.ds, ev.indices, { mean, std, names: this.net.names, labelToModel: map, batch: this.args.batch });
      return { ...m, data: this.args.data, split: ev.split, method: 'classifier' };
    } finally {
      ev.ds.dispose();
    }
  }
}

export class EmbedderValidator extends Validator {
  async run(): Promise<ValMetrics> {
    const { channels, imageSize, mean, std } = this.net.config;
    const d = await loadTrainData({ data: this.args.data, dataRoot: this.args.dataRoot, imageSize, channels, seed: this.args.seed, knnBankSize: this.args.knnBankSize, cache: false }); // only the kNN sets are decoded
    try {
      if (d.knn === null) {
        throw new DataError(`${this.args.data} has no labels: validation needs labelled images (one subfolder per class) to measure the kNN accuracy of the embeddings`);
      }
      const knn = d.knn;
      const embed = (x: Tensor): Tensor => this.net.features(x);
      return torch.scope(() => {
        const bank = embedIndices(embed, knn.bank, knn.bankIndices, { mean, std, batch: this.args.batch });
        const queries = embedIndices(embed, knn.queries, knn.queryIndices, { mean, std, batch: this.args.batch });
        const bankLabels = torch.tensor(BigInt64Array.from(knn.bankIndices, (i) => BigInt(knn.bank.labels[i]!)));
        const scores = knnScores(queries, bank, bankLabels, { k: this.args.knnK, temperature: this.args.knnTemperature, numClasses: d.names.length });
        const m = classifyMetrics(scores, Int32Array.from(knn.queryIndices, (i) => knn.queries.labels[i]!), d.names);
        return { ...m, data: this.args.data, split: knn.split, method: 'knn' as const, bank: knn.bankIndices.length };
      });
    } finally {
      disposeTrainData(d);
    }
  }
}
