/**
 * Self-supervised training on Fashion-MNIST with the recipe: width-16 CIFAR-ResNet-18,
 * batch 256, 2 threads, SGD lr 0.06 × batch/128 (0.12 at batch 256), momentum 0.9, wd 5e-4,
 * cosine, crop scale (0.2, 1), hflip, brightness/contrast ±0.4 with p 0.8, no blur, mean 0.286 /
 * std 0.353; SimCLR τ 0.5, MoCo v2 τ 0.2 with a 4096 queue. Prints one JSON line per epoch
 * (kNN top-1 on the 10k test set against a bank of the 60k training images, full-pipeline
 * views/s = data + augmentation + step, both views counted as the reference does), then the
 * PyTorch reference step in the same session for the ratio.
 * Flags: --methods simclr,moco --epochs 10 --width 16 --batch 256 --threads 2 --stem cifar --out runs/bench
 *        plus any training option (--min-scale, --cj-strength, --temperature, --lr, --head-layers, --loss,
 *        --local-views, --feature-grid, ...).
 */
import { train } from '../src/engine/trainer.js';
import type { TrainConfig } from '../src/engine/config.js';
import { emit, machine, num, runReference } from './common.js';

export async function main(args: Record<string, unknown>): Promise<void> {
  const methods = String(args.methods ?? 'simclr,moco').split(',') as ('simclr' | 'moco')[];
  const epochs = num(args.epochs, 10);
  const width = num(args.width, 16);
  const batch = num(args.batch, 256);
  const threads = num(args.threads, 2);
  const extra: Partial<TrainConfig> = {};
  for (const k of ['minScale', 'cjStrength', 'temperature', 'lr', 'weightDecay', 'memoryBankSize', 'emaMomentum', 'warmupEpochs', 'blur', 'maxStepsPerEpoch', 'headLayers', 'localViews', 'localSize', 'localMinScale', 'localMaxScale', 'featureStages', 'featureGrid'] as const) {
    const flag = k.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());
    if (args[flag] !== undefined) (extra as Record<string, number>)[k] = Number(args[flag]);
  }
  if (args.loss !== undefined) extra.loss = String(args.loss) as TrainConfig['loss'];
  const results: Record<string, unknown> = {};
  for (const method of methods) {
    const out = `${String(args.out ?? 'runs/bench')}-${method}`;
    const r = await train({
      method, data: 'fashion-mnist', epochs, batch, width, threads, backbone: 'resnet18', knnEvery: num(args['knn-every'], 1), knnBankSize: 60000,
      stem: (args.stem as TrainConfig['stem'] | undefined) ?? 'auto', temperature: method === 'moco' ? 0.2 : 0.5, out, channelsLast: args['channels-last'] !== 'false', concatViews: args['concat-views'] !== 'false', ...extra,
    }, { silent: !args.verbose, onEpoch: (m) => emit({ bench: 'knn', method, ...m, views_per_s: Number((2 * m.img_per_s).toFixed(1)) }) });
    results[method] = { knn_top1: r.metrics.map((m) => m.knn_top1 ?? null), views_per_s: r.metrics.map((m) => Number((2 * m.img_per_s).toFixed(1))), out };
  }
  const rate = (line: string | null): number | null => (line ? Number(/img_per_s=([\d.]+)/.exec(line)?.[1]) : null);
  const refImgPerS = args['no-reference'] ? null : rate(runReference('torch_reference.py', [width, batch, 5, threads]));
  const refDyadEnvImgPerS = args['no-reference'] ? null : rate(runReference('torch_reference.py', [width, batch, 5, threads], 'dyad'));
  emit({ bench: 'knn-summary', epochs, width, batch, threads, stem: args.stem ?? 'auto', ...results, torch_step_img_per_s: refImgPerS, torch_dyad_env_step_img_per_s: refDyadEnvImgPerS, ...machine() });
}
