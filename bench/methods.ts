/**
 * The method zoo on Fashion-MNIST, measured the same way (lightly's benchmark table): every
 * method trains with the same backbone, batch, epochs and optimizer (SGD, lr 0.12 × batch/256,
 * momentum 0.9, wd 5e-4, cosine; the trainer's defaults plus each method's paper defaults from
 * `METHOD_DEFAULTS`), then reports
 *   - kNN top-1 (k 200, cosine, exp(sim/0.1)) on the 10k test images against a bank of all 60k
 *     training images, on the backbone's features;
 *   - linear-probe top-1 (frozen features, the probe's lr × wd sweep on a 20% validation split);
 *   - images/s of training (mean over epochs), peak RSS during the method's run, wall time.
 * Rows: simclr, moco, byol, simsiam, barlow, vicreg, dino, nnclr, supcon, triplet, autoencoder, and
 * the supervised upper bound (same backbone, cross-entropy on all labels, same epochs).
 *
 * Unseen-class retrieval (`--sections retrieval`): triplet, supcon and SimCLR train on the
 * training images of classes 0–4 only; recall@1 and mAP@R (`engine/retrieval.ts`) of the test images
 * of classes 5–9 querying each other, on backbone features, against raw pixels.
 *
 * Flags: --methods a,b,... (default all)  --sections table,retrieval (`--unseen`: retrieval only)
 *        --epochs 10  --max-steps 0 (cap steps per epoch: quick looks)  --limit 0 (quick looks: at most
 *        this many images in the kNN bank, its queries, the probe's labelled set and test set, and the
 *        retrieval queries; 0 = all, the table's setting)  --batch 256  --width 16  --stem cifar-stride2
 *        --threads 2  --probe true  --samples-per-class (triplet K; default batch/8, batch/4 for
 *        retrieval)  --seed 0  --out runs/bench-methods  --verbose
 * Prints one JSON line per row, then a summary line with the table.
 */
import path from 'node:path';
import * as torch from '../src/torch/index.js';
import { train } from '../src/engine/trainer.js';
import { loadTrainData, type TrainData } from '../src/engine/data.js';
import { loadLabelledData } from '../src/engine/classify.js';
import { linearProbe } from '../src/engine/probe.js';
import { trainSupervised } from '../src/engine/supervised.js';
import { embedIndices, knnMonitor } from '../src/engine/evaluate.js';
import { retrievalMetrics } from '../src/engine/retrieval.js';
import { loadNet } from '../src/api/net.js';
import { InMemoryDataset } from '../src/data/index.js';
import { SSL_METHODS, type SSLMethodName } from '../src/methods/index.js';
import type { TrainConfig } from '../src/engine/config.js';
import { emit, machine, num } from './common.js';
import { isDyadError } from '../src/errors.js';

const mb = (b: number): number => Math.round(b / 2 ** 20);
/** At most `max` evenly spaced items of `xs` (all of them when `max` is 0). */
const spaced = <T>(xs: T[], max: number): T[] => (max <= 0 || xs.length <= max ? xs : Array.from({ length: max }, (_, i) => xs[Math.floor((i * xs.length) / max)]!));

export async function main(args: Record<string, unknown>): Promise<void> {
  const epochs = num(args.epochs, 10);
  const maxSteps = num(args['max-steps'], 0);
  const batch = num(args.batch, 256);
  const threads = num(args.threads, 2);
  const seed = num(args.seed, 0);
  const out = String(args.out ?? 'runs/bench-methods');
  const stem = String(args.stem ?? 'cifar-stride2') as TrainConfig['stem'];
  const arch = { backbone: 'resnet18' as const, width: num(args.width, 16), stem };
  const sections = args.unseen ? ['retrieval'] : String(args.sections ?? 'table,retrieval').split(',');
  const limit = num(args.limit, 0);
  const methods = String(args.methods ?? [...SSL_METHODS, 'supervised'].join(',')).split(',');
  for (const m of methods) if (m !== 'supervised' && !SSL_METHODS.includes(m as SSLMethodName)) throw new Error(`--methods: unknown method '${m}'`);
  const probe = args.probe !== 'false';
  const settings = { epochs, max_steps_per_epoch: maxSteps, limit, batch, threads, ...arch, seed };
  torch.setNumThreads(threads);

  const data = await loadTrainData({ data: 'fashion-mnist', imageSize: 28, channels: 1, seed, knnBankSize: limit });
  data.knn!.queryIndices = spaced(data.knn!.queryIndices, limit);
  const labelled = await loadLabelledData({ data: 'fashion-mnist', imageSize: 28, channels: 1, seed });
  // the probe's labelled and test images (the supervised row trains on all of labelled's)
  const probeData = limit > 0 ? { ...labelled, trainIndices: spaced(labelled.trainIndices, limit), testIndices: spaced(labelled.testIndices, limit) } : labelled;
  const common = { data: 'fashion-mnist', epochs, batch, threads, seed, maxStepsPerEpoch: maxSteps, ...arch };
  const norm = { mean: data.mean, std: data.std };

  /** Trains `method` on `d`, tracking wall time and peak RSS. */
  async function run(method: SSLMethodName, d: TrainData, o: Partial<TrainConfig>, dir: string) {
    let peak = process.memoryUsage.rss();
    const t0 = performance.now();
    const r = await train({ ...common, method, out: dir, ...o }, {
      silent: !args.verbose, data: d, onStepEnd: () => { peak = Math.max(peak, process.memoryUsage.rss()); },
      onEpoch: (m) => { if (args.verbose) emit({ bench: 'methods', method, ...m }); },
    });
    return { r, wall_s: (performance.now() - t0) / 1000, peak_rss_mb: mb(peak) };
  }

  const table: Record<string, Record<string, number | string | null>> = {};
  if (sections.includes('table')) {
    for (const method of methods) {
      torch.emptyCache(); // hand back the previous method's cached blocks, so its RSS does not count here
      const K = num(args['samples-per-class'], batch / 8);
      let row: Record<string, number | string | null>;
      if (method === 'supervised') {
        let peak = process.memoryUsage.rss();
        const t0 = performance.now();
        const steps = Math.floor(labelled.trainIndices.length / batch);
        const r = await trainSupervised({ ...common, imageSize: 28, channels: 1 }, {
          data: labelled, epochs, batch, maxSteps: maxSteps > 0 ? maxSteps * epochs : 0, minSteps: 1, silent: !args.verbose,
          onLog: () => { peak = Math.max(peak, process.memoryUsage.rss()); },
        });
        const wall = (performance.now() - t0) / 1000;
        const knn = torch.noGrad(() => knnMonitor((x) => r.model.backbone.forward(x), data.knn!, { ...norm, k: 200, temperature: 0.1 }));
        const images = r.metrics.steps * batch;
        row = { knn_top1: knn, linear_top1: r.metrics.top1, img_per_s: Number((images / wall).toFixed(1)), peak_rss_mb: mb(peak), wall_s: Number(wall.toFixed(1)), steps: r.metrics.steps, full_epoch_steps: steps };
        r.model.dispose();
      } else {
        const m = method as SSLMethodName;
        let ran: Awaited<ReturnType<typeof run>>;
        try {
          ran = await run(m, data, { knnEvery: epochs, ...(m === 'triplet' ? { samplesPerClass: K } : {}) }, path.join(out, m));
        } catch (e) {
          // a method whose loss diverges is a row of the table ("diverged"), not the end of the benchmark
          if (!isDyadError(e, 'TRAINING_DIVERGED')) throw e;
          table[method] = { diverged: (e as Error).message };
          emit({ bench: 'methods', method, diverged: (e as Error).message, ...settings });
          continue;
        }
        const { r, wall_s, peak_rss_mb } = ran;
        const last = r.metrics.at(-1)!;
        let linear: number | null = null;
        if (probe) {
          const net = loadNet(r.lastPath);
          const p = await linearProbe(net.copyBackbone(), probeData, norm, { seed, silent: !args.verbose });
          linear = p.metrics.top1;
          p.model.dispose();
          net.dispose();
        }
        const imgPerS = r.metrics.reduce((s, x) => s + x.img_per_s, 0) / r.metrics.length;
        row = { knn_top1: last.knn_top1 ?? null, linear_top1: linear, img_per_s: Number(imgPerS.toFixed(1)), peak_rss_mb, wall_s: Number(wall_s.toFixed(1)), final_loss: Number(last.loss.toFixed(4)) };
        r.method.dispose();
      }
      table[method] = row;
      emit({ bench: 'methods', method, ...row, ...settings });
    }
  }

  const retrieval: Record<string, Record<string, number>> = {};
  if (sections.includes('retrieval')) {
    const tr = data.train as InMemoryDataset;
    const seen = [...Array(tr.length).keys()].filter((i) => tr.labels[i]! < 5);
    const test = data.knn!.queries;
    const unseen = spaced([...Array(test.length).keys()].filter((i) => test.labels[i]! >= 5), limit);
    const unseenLabels = unseen.map((i) => test.labels[i]!);
    const seenData: TrainData = { ...data, train: torch.scope(() => new InMemoryDataset(tr.images.indexSelect(0, torch.tensor(BigInt64Array.from(seen, BigInt))).keep(), seen.map((i) => tr.labels[i]!), { names: tr.names })), knn: null };
    retrieval.pixels = torch.scope(() => ({ ...retrievalMetrics(embedIndices((x) => x.flatten(1), test, unseen, norm), unseenLabels) }));
    emit({ bench: 'methods-retrieval', features: 'pixels', ...retrieval.pixels });
    for (const method of ['triplet', 'supcon', 'simclr'] as const) {
      const { r, wall_s } = await run(method, seenData, { knnEvery: 0, ...(method === 'triplet' ? { samplesPerClass: num(args['samples-per-class'], batch / 4) } : {}) }, path.join(out, `retrieval-${method}`));
      r.method.eval();
      retrieval[method] = torch.scope(() => torch.noGrad(() => ({ ...retrievalMetrics(embedIndices((x) => r.method.embed(x), test, unseen, norm), unseenLabels), wall_s: Number(wall_s.toFixed(1)) })));
      emit({ bench: 'methods-retrieval', features: `${method} backbone (trained on classes 0-4)`, ...retrieval[method] });
      r.method.dispose();
    }
    (seenData.train as InMemoryDataset).dispose();
  }
  emit({ bench: 'methods-summary', settings, table, retrieval, ...machine() });
  labelled.dispose();
}
