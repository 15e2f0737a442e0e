/**
 * Label efficiency on Fashion-MNIST (the measurable form of "pre-train on unlabeled images, then
 * classify with few labels"; cf. SimCLR's semi-supervised table, Chen et al. 2020 Table 7):
 * top-1 on the test set with 1%, 10% and 100% of the training labels for
 *   (a) supervised from random initialisation,
 *   (b) SimCLR-pretrained + linear probe (frozen features, lr/wd sweep on a validation split),
 *   (c) SimCLR-pretrained + fine-tuning (whole network, backbone lr × 0.1),
 * all with the same backbone (width-16 CIFAR-ResNet-18 at 28×28, 1 channel) and, for (a) and
 * (c), the same optimisation budget. Label subsets are class-balanced and seeded.
 *
 * `npm run bench -- label-efficiency --pretrained runs/X/best.safetensors` reuses a pretraining
 * run; without it, SimCLR pretrains first for `--pretrain-epochs` (into `--out`/pretrain).
 *
 * Flags (budget first, the machine is small and shared):
 *   --pretrain-epochs 20   --pretrain-steps 0 (cap steps per pretraining epoch; 0 = whole epochs)
 *   --epochs 30            passes over the labelled images for (a) and (c)
 *   --min-steps 200        fewest steps for (a) and (c) (1% of the labels is 3 batches an epoch)
 *   --max-steps 0          most steps for (a) and (c) (0 = no cap)
 *   --fractions 0.01,0.1,1 --arms supervised,probe,finetune --test-size 10000 (class-balanced subset of the test set)
 *   --batch 256 --threads 2 --seed 0 --out runs/label-efficiency
 *   --probe-stages S --probe-grid G  the probe's ResNet features (`ResNetOptions.featureStages` /
 *                          `featureGrid`; default: the checkpoint's own, 1 / 1 unless it was trained with
 *                          others): 1 / 1 is the global pool of the last stage; 2 / 2 the last two
 *                          stages pooled to 2×2 grids each (Goyal et al. 2019's spatially pooled features)
 * Prints one JSON line per (arm, fraction), then a summary line with the table and the targets
 * ((c) − (a) at 1% ≥ 5 points; (b) at 100% ≥ 90%).
 */
import path from 'node:path';
import * as torch from '../src/torch/index.js';
import { balancedSubset } from '../src/data/index.js';
import { train } from '../src/engine/trainer.js';
import { loadLabelledData } from '../src/engine/classify.js';
import { linearProbe } from '../src/engine/probe.js';
import { finetune } from '../src/engine/finetune.js';
import { trainSupervised } from '../src/engine/supervised.js';
import { loadNet } from '../src/api/net.js';
import { emit, machine, num } from './common.js';

type Arm = 'supervised' | 'probe' | 'finetune';

/** 0.01 → '1%' (string keys keep the table in insertion order). */
const pct = (f: number): string => `${Number((f * 100).toPrecision(6))}%`;

export async function main(args: Record<string, unknown>): Promise<void> {
  const threads = num(args.threads, 2);
  const seed = num(args.seed, 0);
  const batch = num(args.batch, 256);
  const budget = {
    pretrainEpochs: num(args['pretrain-epochs'], 20), pretrainSteps: num(args['pretrain-steps'], 0),
    epochs: num(args.epochs, 30), minSteps: num(args['min-steps'], 200), maxSteps: num(args['max-steps'], 0), batch, testSize: num(args['test-size'], 10000),
  };
  // the probe pools as the checkpoint's backbone does unless --probe-stages / --probe-grid say otherwise
  const flag = (k: string): number | undefined => (args[k] === undefined ? undefined : num(args[k], 1));
  const probePooling = { featureStages: flag('probe-stages'), featureGrid: flag('probe-grid') };
  const fractions = String(args.fractions ?? '0.01,0.1,1').split(',').map(Number);
  const arms = String(args.arms ?? 'supervised,probe,finetune').split(',') as Arm[];
  for (const a of arms) if (!['supervised', 'probe', 'finetune'].includes(a)) throw new Error(`--arms: unknown arm '${a}' (supervised, probe, finetune)`);
  const out = String(args.out ?? 'runs/label-efficiency');
  torch.setNumThreads(threads);
  const t0 = performance.now();

  // the pretrained embedder (same backbone as the supervised arm: the trainer's defaults)
  let weights = typeof args.pretrained === 'string' ? args.pretrained : null;
  let pretrainS = 0;
  if ((arms.includes('probe') || arms.includes('finetune')) && weights === null) {
    const tp = performance.now();
    const r = await train({
      method: 'simclr', data: 'fashion-mnist', epochs: budget.pretrainEpochs, maxStepsPerEpoch: budget.pretrainSteps, batch, threads, seed,
      knnEvery: 0, out: path.join(out, 'pretrain'),
    }, { silent: !args.verbose, onEpoch: (m) => emit({ bench: 'label-efficiency', stage: 'pretrain', ...m }) });
    r.method.dispose();
    weights = r.lastPath;
    pretrainS = (performance.now() - tp) / 1000;
  }
  const net = weights ? loadNet(weights) : null;
  if (net && (net.config.imageSize !== 28 || net.config.channels !== 1)) throw new Error(`${weights}: a Fashion-MNIST model (28×28, 1 channel) is needed, got ${net.config.imageSize}×${net.config.imageSize}×${net.config.channels}`);
  const arch = net
    ? { backbone: net.config.backbone, width: net.config.width, stem: net.config.stem }
    : { backbone: 'resnet18' as const, width: 16, stem: 'auto' as const };
  const norm = net ? { mean: net.config.mean, std: net.config.std } : { mean: [0.286], std: [0.353] };

  const data = await loadLabelledData({ data: 'fashion-mnist', imageSize: 28, channels: 1, seed });
  if (budget.testSize < data.testIndices.length) {
    data.testIndices = balancedSubset(data.test.labels, budget.testSize / data.test.length, seed + 7);
  }
  const fit = { epochs: budget.epochs, minSteps: budget.minSteps, maxSteps: budget.maxSteps, batch, seed, silent: !args.verbose };
  const table: Record<string, Record<string, number>> = {};
  for (const arm of arms) {
    table[arm] = {};
    for (const fraction of fractions) {
      torch.manualSeed(seed);
      const ta = performance.now();
      let top1: number;
      let top5: number;
      let labels: number;
      let extra: Record<string, unknown> = {};
      if (arm === 'supervised') {
        const r = await trainSupervised({ data: 'fashion-mnist', ...arch, imageSize: 28, channels: 1, threads, seed, batch }, { ...fit, labelFraction: fraction, data });
        ({ top1, top5, labels } = r.metrics);
        extra = { steps: r.metrics.steps, train_loss: r.metrics.trainLoss };
        r.model.dispose();
      } else if (arm === 'probe') {
        const r = await linearProbe(net!.copyBackbone(probePooling), data, norm, { labelFraction: fraction, seed, silent: !args.verbose });
        ({ top1, top5, labels } = r.metrics);
        extra = { lr: r.metrics.lr, weight_decay: r.metrics.weightDecay, feature_dim: r.model.featureDim,
          featureStages: probePooling.featureStages ?? net!.config.featureStages ?? 1, featureGrid: probePooling.featureGrid ?? net!.config.featureGrid ?? 1 };
        r.model.dispose();
      } else {
        const r = await finetune(net!.copyBackbone(), data, norm, { ...fit, labelFraction: fraction });
        ({ top1, top5, labels } = r.metrics);
        extra = { steps: r.metrics.steps, train_loss: r.metrics.trainLoss };
        r.model.dispose();
      }
      table[arm]![pct(fraction)] = top1;
      emit({ bench: 'label-efficiency', arm, fraction, labels, top1, top5, test_images: data.testIndices.length, ...extra, time_s: Number(((performance.now() - ta) / 1000).toFixed(1)) });
    }
  }
  const at = (arm: Arm, f: number): number | null => table[arm]?.[pct(f)] ?? null;
  const a1 = at('supervised', 0.01);
  const c1 = at('finetune', 0.01);
  const b100 = at('probe', 1);
  emit({
    bench: 'label-efficiency-summary', weights, pretrain_s: Number(pretrainS.toFixed(0)),
    budget: { ...budget, pretrainEpochs: net ? net.config.epochs : null, pretrainSteps: net ? net.config.maxStepsPerEpoch : null }, probe_pooling: probePooling, table,
    targets: {
      finetune_minus_supervised_at_1pct: a1 !== null && c1 !== null ? Number(((c1 - a1) * 100).toFixed(2)) : null,
      finetune_beats_supervised_by_5_at_1pct: a1 !== null && c1 !== null ? c1 - a1 >= 0.05 : null,
      probe_at_100pct: b100,
      probe_reaches_90_at_100pct: b100 !== null ? b100 >= 0.9 : null,
    },
    total_s: Number(((performance.now() - t0) / 1000).toFixed(0)), threads, ...machine(),
  });
  data.dispose();
  net?.dispose();
}
