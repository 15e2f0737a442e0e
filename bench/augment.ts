/**
 * Augmentation throughput: SimCLR's two-view pipeline (src/transforms) on uint8 batches
 * `[N, C, S, S]`, in views per second, at 28×28×1, 96×96×3 and 224×224×3. The pipeline is
 * the one ../shared/bench/torchvision_augment.py runs per image on PIL (crop scale [0.08, 1],
 * flip, jitter (0.8, 0.8, 0.8, 0.2) p 0.8, grayscale p 0.2, blur (10% kernel) p 0.5,
 * normalise), so the two numbers compare directly; `--reference` runs it in the same session.
 *
 *   node dist/bench/augment.js [--size=28 --channels=1 --batch=256] [--threads=2] [--seconds=3] [--reference]
 *   npm run bench -- augment [same flags]
 *
 * Prints one JSON line per size: {"bench":"augment","size":28,"channels":1,"views_per_s":...}.
 */
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import * as torch from '../src/torch/index.js';
import { SimCLRTransform, simclrKernelSize } from '../src/transforms/index.js';
import { emit, machine, num, runReference } from './common.js';

export interface AugmentCase {
  size: number;
  channels: 1 | 3;
  batch: number;
}

export interface AugmentBenchOptions {
  /** Default: 28×28×1 and 96×96×3 at batch 256, 224×224×3 at batch 64. */
  cases?: AugmentCase[];
  /** libtorch intra-op threads. Default 2. */
  threads?: number;
  /** Minimum timed seconds per case (after one warm-up batch). Default 3. */
  seconds?: number;
  /** Also run torchvision's per-image PIL pipeline (256 images, 1 thread) and report the ratio. */
  reference?: boolean;
  /** Print each result as a JSON line (default true). */
  print?: boolean;
}

export const DEFAULT_CASES: AugmentCase[] = [
  { size: 28, channels: 1, batch: 256 },
  { size: 96, channels: 3, batch: 256 },
  { size: 224, channels: 3, batch: 64 },
];

/** Runs the cases and returns one record per case (also printed as JSON lines). */
export async function runAugmentBench(opts: AugmentBenchOptions = {}): Promise<Record<string, unknown>[]> {
  const threads = opts.threads ?? 2;
  torch.setNumThreads(threads);
  const seconds = opts.seconds ?? 3;
  const out: Record<string, unknown>[] = [];
  for (const c of opts.cases ?? DEFAULT_CASES) {
    torch.manualSeed(0);
    const images = torch.randint(0, 256, [c.batch, c.channels, c.size, c.size], { dtype: 'uint8' }).keep();
    const t = new SimCLRTransform({
      inputSize: c.size, minScale: 0.08, cjStrength: 1.0, cjProb: 0.8, randomGrayScale: 0.2,
      gaussianBlur: 0.5, kernelSize: simclrKernelSize(c.size), hfProb: 0.5, normalize: { mean: [0.5], std: [0.5] },
    });
    torch.scope(() => void t.forward(images)); // warm-up
    const live = torch.memory().count;
    let batches = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < seconds * 1000 || batches < 3) {
      torch.scope(() => void t.forward(images));
      batches++;
    }
    const s = (performance.now() - t0) / 1000;
    images.dispose();
    const r: Record<string, unknown> = {
      bench: 'augment', size: c.size, channels: c.channels, batch: c.batch, threads,
      views_per_s: Number(((2 * c.batch * batches) / s).toFixed(1)),
      ms_per_batch: Number(((s * 1000) / batches).toFixed(2)),
      leaked_tensors: torch.memory().count - (live - 1),
    };
    if (opts.reference) {
      const line = runReference('torchvision_augment.py', [c.size, c.channels, 256]);
      const ref = line === null ? null : Number(/views_per_s=([\d.]+)/.exec(line)?.[1]);
      r.torchvision_views_per_s = ref;
      r.ratio = ref ? Number(((r.views_per_s as number) / ref).toFixed(2)) : null;
    }
    Object.assign(r, machine());
    if (opts.print ?? true) emit(r);
    out.push(r);
  }
  return out;
}

/** Entry for `npm run bench -- augment`: flags --size/--channels/--batch pick one case. */
export async function main(args: Record<string, unknown>): Promise<void> {
  const cases = args.size === undefined ? undefined : [{
    size: num(args.size, 28),
    channels: num(args.channels, 1) as 1 | 3,
    batch: num(args.batch, num(args.size, 28) >= 224 ? 64 : 256),
  }];
  await runAugmentBench({ cases, threads: num(args.threads, 2), seconds: num(args.seconds, 3), reference: args.reference === true });
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values } = parseArgs({ args: process.argv.slice(2), strict: false });
  await main(values);
}
