/**
 * Linear probe: the standard evaluation of self-supervised features (Chen et al. 2020 §4, the
 * "linear evaluation protocol"), and the cheapest way to turn an embedder into a classifier.
 *
 * The backbone is frozen, so its features are computed once (eval mode, no augmentation) for
 * the labelled images and for the evaluation split. Features are standardised (per-dimension
 * mean and std of the labelled set) and a linear layer is trained on them with Adam, cross-
 * entropy, an L2 penalty and a cosine lr schedule. A small sweep over lr × weight decay picks
 * the pair with the best accuracy on a class-balanced validation part (20%) of the labelled
 * images; the final layer is then trained on all of them with that pair. The standardisation
 * is folded into the layer (W' = W / σ, b' = b − W'·μ), so the result is a plain
 * `Classifier` (backbone + head) that takes images.
 */
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import * as nn from '../nn/index.js';
import { Adam } from '../optim/index.js';
import { LinearWarmupCosine } from '../optim/lr_scheduler.js';
import { Rng } from '../data/index.js';
import { Classifier, type ClassifierBackbone } from '../models/classifier.js';
import { embedIndices } from './evaluate.js';
import { classifyMetrics, labelSubset, validationSplit, type ClassifyMetrics, type LabelledData } from './classify.js';
import { Progress } from './progress.js';
import { fit } from './loop.js';
import { definedOnly } from './options.js';
import { Supervised, type LabelledBatch } from '../methods/supervised.js';

export interface ProbeOptions {
  /** Fraction of the training labels (class-balanced, seeded); default 1. */
  labelFraction?: number;
  seed?: number;
  /** The sweep: Adam learning rates × L2 weight decays. */
  lrs?: number[];
  weightDecays?: number[];
  /** Passes over the labelled features per fit (default 100), bounded by minSteps/maxSteps (200/2000). */
  epochs?: number;
  minSteps?: number;
  maxSteps?: number;
  /** Feature rows per step (default 512). */
  batch?: number;
  /** Share of the labelled images held out to choose the sweep's winner (default 0.2). */
  valFraction?: number;
  /** Images per forward pass when computing features (default 256). */
  featureBatch?: number;
  silent?: boolean;
}

export const PROBE_DEFAULTS = {
  labelFraction: 1, seed: 0, lrs: [1e-3, 1e-2, 1e-1], weightDecays: [0, 1e-4, 1e-3], epochs: 100, minSteps: 200, maxSteps: 2000, batch: 512,
  valFraction: 0.2, featureBatch: 256,
};

export interface SweepPoint {
  lr: number;
  weightDecay: number;
  /** Validation accuracy (0..1). */
  val: number;
}

export interface ProbeResult {
  model: Classifier;
  names: string[];
  metrics: ClassifyMetrics & { split: LabelledData['split']; labels: number; lr: number; weightDecay: number; sweep: SweepPoint[] };
}

/** Trains `linear` on standardised features `x` [n, D] with labels `y` [n] (int64), on the engine's loop (one "epoch" of `steps`). */
async function fitLinear(linear: nn.Linear, x: Tensor, y: Tensor, o: { lr: number; weightDecay: number; steps: number; batch: number; seed: number }): Promise<void> {
  const n = x.size(0);
  const optimizer = new Adam([
    { params: [linear.weight], weightDecay: o.weightDecay },
    { params: [linear.bias!], weightDecay: 0 },
  ], { lr: o.lr });
  const scheduler = new LinearWarmupCosine(optimizer, { warmupSteps: 0, totalSteps: o.steps });
  const rng = new Rng(o.seed);
  const batch = Math.min(o.batch, n);
  await fit({
    method: new Supervised(linear), optimizer, scheduler, epochs: 1, stepsPerEpoch: o.steps,
    *batches() {
      let perm = rng.permutation(n);
      let pos = 0;
      for (;;) {
        if (pos + batch > n) {
          perm = rng.permutation(n);
          pos = 0;
        }
        const idx = perm.subarray(pos, pos + batch);
        pos += batch;
        yield {
          size: batch,
          batch: (): LabelledBatch => {
            const i = torch.tensor(BigInt64Array.from(idx, (v) => BigInt(v)));
            return { inputs: x.indexSelect(0, i), labels: y.indexSelect(0, i) };
          },
        };
      }
    },
  });
}

function accuracy(linear: nn.Linear, x: Tensor, y: Tensor): number {
  return torch.noGrad(() => torch.scope(() => linear.forward(x).argmax(1).eq(y).float().mean().item()));
}

/**
 * Linear probe of `backbone` on `data` (see the module comment). The backbone becomes part of
 * the returned classifier (pass a copy if the caller keeps using it); `mean`/`std` are the
 * normalisation the backbone was trained with.
 */
export async function linearProbe(backbone: ClassifierBackbone, data: LabelledData, norm: { mean: number[]; std: number[] }, opts: ProbeOptions = {}): Promise<ProbeResult> {
  const o = { ...PROBE_DEFAULTS, ...definedOnly(opts) } as typeof PROBE_DEFAULTS & ProbeOptions;
  const progress = new Progress(process.stdout, { silent: o.silent });
  const labelled = labelSubset(data.train.labels, data.trainIndices, o.labelFraction, o.seed);
  const numClasses = data.names.length;
  const labelsOf = (idx: number[]): Tensor => torch.tensor(BigInt64Array.from(idx, (i) => BigInt(data.train.labels[i]!)));
  backbone.eval();
  const embed = (x: Tensor): Tensor => backbone.forward(x);
  const t0 = performance.now();
  // tensors that live across the fits' awaits are held here and freed at the end (scopes are synchronous)
  const held = torch.scope(() => {
    const feats = embedIndices(embed, data.train, labelled, { ...norm, batch: o.featureBatch });
    const testFeats = embedIndices(embed, data.test, data.testIndices, { ...norm, batch: o.featureBatch });
    const mu = feats.mean(0, { keepdim: true });
    const sd = feats.std(0, { unbiased: false, keepdim: true }).add(1e-6);
    return { testFeats, mu, sd, xs: feats.sub(mu).div(sd), y: labelsOf(labelled) };
  });
  try {
    const { testFeats, mu, sd, xs, y } = held;
    progress.log(`linear probe: features of ${labelled.length} labelled and ${data.testIndices.length} evaluation images in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const steps = (n: number): number => Math.min(o.maxSteps, Math.max(o.minSteps, Math.ceil((o.epochs * n) / Math.min(o.batch, n))));
    const fresh = (seed: number): nn.Linear => {
      torch.manualSeed(seed);
      return new nn.Linear(xs.size(1), numClasses);
    };

    // the sweep, on a validation part of the labelled images
    const sweep: SweepPoint[] = [];
    const local = [...labelled.keys()];
    const split = validationSplit(Int32Array.from(labelled, (i) => data.train.labels[i]!), local, o.valFraction, o.seed + 1);
    let best = { lr: o.lrs[0]!, weightDecay: o.weightDecays[0]! };
    if (split && o.lrs.length * o.weightDecays.length > 1) {
      const parts = torch.scope(() => {
        const pick = (ix: number[]): Tensor => torch.tensor(BigInt64Array.from(ix, (v) => BigInt(v)));
        const tr = pick(split.train);
        const va = pick(split.val);
        return { xtr: xs.indexSelect(0, tr), ytr: y.indexSelect(0, tr), xva: xs.indexSelect(0, va), yva: y.indexSelect(0, va) };
      });
      try {
        let bestVal = -1;
        for (const lr of o.lrs) {
          for (const weightDecay of o.weightDecays) {
            const lin = fresh(o.seed);
            try {
              await fitLinear(lin, parts.xtr, parts.ytr, { lr, weightDecay, steps: steps(split.train.length), batch: o.batch, seed: o.seed });
              const val = accuracy(lin, parts.xva, parts.yva);
              sweep.push({ lr, weightDecay, val });
              if (val > bestVal) {
                bestVal = val;
                best = { lr, weightDecay };
              }
            } finally {
              lin.dispose();
            }
          }
        }
      } finally {
        torch.disposeAll(parts);
      }
      progress.log(`linear probe: sweep ${sweep.map((p) => `lr ${p.lr} wd ${p.weightDecay}: ${(p.val * 100).toFixed(1)}%`).join(', ')}; ` +
        `chose lr ${best.lr}, wd ${best.weightDecay}`);
    }

    // the final layer on all labelled images, folded into a head that takes raw features
    const lin = fresh(o.seed);
    await fitLinear(lin, xs, y, { ...best, steps: steps(labelled.length), batch: o.batch, seed: o.seed });
    const model = new Classifier(backbone, numClasses);
    torch.noGrad(() => torch.scope(() => {
      const w = lin.weight.div(sd); // [C, D] / [1, D]
      const b = lin.bias!.sub(w.matmul(mu.squeeze(0)));
      model.head.weight.copy_(w);
      model.head.bias!.copy_(b);
    }));
    lin.dispose();
    model.eval();
    const testLabels = Int32Array.from(data.testIndices, (i) => data.test.labels[i]!);
    const m = torch.scope(() => classifyMetrics(torch.noGrad(() => model.head.forward(testFeats)), testLabels, data.names));
    progress.log(`linear probe: top-1 ${(m.top1 * 100).toFixed(2)}% on ${m.n} ${data.split} images with ${labelled.length} labels`);
    return { model, names: data.names, metrics: { ...m, split: data.split, labels: labelled.length, ...best, sweep } };
  } finally {
    torch.disposeAll(held);
  }
}
