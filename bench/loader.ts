/**
 * `npm run bench -- loader`: DataLoader throughput (images/s) and how long a training loop
 * waits for its batches.
 *
 * Writes `--n=N` (default 2000) JPEGs of 96×96×3 and `--n224=N` (default 500) of 224×224×3
 * once into a cache folder (`--dir=PATH`, default `$TMPDIR/dyad-bench-loader-v1`), then
 * measures, at `--batch=B` (default 256), one JSON line per case:
 * - `jpeg-folder`: ImageFolder (resized at decode) + DataLoader, with the decode worker
 *   (`workers: 1`) and on the main thread (`workers: 0`); best of `--epochs=E` (default 2).
 * - `in-memory`: `InMemoryDataset.from(folder)` build rate, then batches by `indexSelect`.
 * - `overlap`: a consumer whose synchronous "training step" (libtorch matmuls) lasts about
 *   twice the batch decode time; reports the fraction of time it waited for batches after
 *   the first (0 = never waits).
 * - `fashion-mnist`: the 60,000 IDX images in memory, and through `getBatch`.
 * - `nchw`: assembling a batch of HWC images into NCHW: libtorch permute vs a JS transpose.
 * `--sizes=96,224` picks the JPEG sizes; `--fmnist=false` skips Fashion-MNIST. (Flags take
 * `=`: the dispatcher parses them without a schema.)
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import * as torch from '../src/torch/index.js';
import { DataLoader, FashionMNIST, ImageFolder, InMemoryDataset, packNCHW, stackImages, type RawImage } from '../src/data/index.js';
import { emit, machine, num } from './common.js';

/** Smooth colour gradients with some texture and noise: compresses and decodes like a photo. */
function photo(i: number, s: number): Buffer {
  const raw = Buffer.alloc(s * s * 3);
  let seed = (i * 2654435761) >>> 0;
  const rnd = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const [a, b, c] = [rnd() * 6, rnd() * 6, rnd() * 6];
  for (let y = 0; y < s; y++) {
    for (let x = 0; x < s; x++) {
      const o = (y * s + x) * 3;
      const u = x / s;
      const v = y / s;
      raw[o] = 128 + 100 * Math.sin(a * u + b * v) + rnd() * 20;
      raw[o + 1] = 128 + 100 * Math.cos(b * u - c * v) + rnd() * 20;
      raw[o + 2] = 128 + 100 * Math.sin(c * u * v * 4 + a) + rnd() * 20;
    }
  }
  return raw;
}

/** Writes `n` JPEGs of `s`×`s` in 10 class folders under `dir`, once (a marker file records it). */
async function ensureJpegs(dir: string, n: number, s: number): Promise<void> {
  const marker = path.join(dir, `.complete-${n}`);
  if (existsSync(marker)) return;
  const t0 = performance.now();
  for (let c = 0; c < 10; c++) mkdirSync(path.join(dir, `class${c}`), { recursive: true });
  const jobs: Promise<unknown>[] = [];
  for (let i = 0; i < n; i++) {
    jobs.push(sharp(photo(i, s), { raw: { width: s, height: s, channels: 3 } }).jpeg({ quality: 90 })
      .toFile(path.join(dir, `class${i % 10}`, `${String(i).padStart(5, '0')}.jpg`)));
    if (jobs.length >= 16) await Promise.all(jobs.splice(0));
  }
  await Promise.all(jobs);
  writeFileSync(marker, '');
  console.error(`loader bench: wrote ${n} JPEGs of ${s}×${s} to ${dir} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}

/** Runs epochs and returns the best images/s (a full epoch, first batch included) and the last stats. */
async function epochs(loader: DataLoader, count: number): Promise<{ imgPerS: number; firstMs: number }> {
  let best = 0;
  let firstMs = 0;
  for (let e = 0; e < count; e++) {
    const t0 = performance.now();
    let images = 0;
    for await (const b of loader) images += b.indices.length;
    const rate = images / ((performance.now() - t0) / 1000);
    if (rate > best) {
      best = rate;
      firstMs = loader.stats.firstWaitMs;
    }
  }
  return { imgPerS: best, firstMs };
}

/** A synchronous stand-in for a training step: libtorch matmuls for about `ms` milliseconds. */
function trainStep(ms: number, a: torch.Tensor): void {
  const until = performance.now() + ms;
  while (performance.now() < until) torch.scope(() => void a.mm(a));
}

const round = (x: number, d = 0) => Number(x.toFixed(d));

export async function main(args: Record<string, unknown>): Promise<void> {
  const n96 = num(args.n, 2000);
  const n224 = num(args.n224, 500);
  const batch = num(args.batch, 256);
  const nEpochs = num(args.epochs, 2);
  const root = typeof args.dir === 'string' ? args.dir : path.join(os.tmpdir(), 'dyad-bench-loader-v1');
  const info = machine();
  const base = { bench: 'loader', batch, threadpool: Number(process.env.UV_THREADPOOL_SIZE ?? 4), torch_threads: torch.getNumThreads() };

  const sizes = typeof args.sizes === 'string' ? args.sizes.split(',').map(Number) : [96, 224];
  for (const [size, n] of ([[96, n96], [224, n224]] as const).filter(([s]) => sizes.includes(s))) {
    const dir = path.join(root, `jpeg${size}-${n}`);
    await ensureJpegs(dir, n, size);
    const ds = await ImageFolder.open(dir, { size: [size, size] });

    let decodeMsPerBatch = 0;
    for (const workers of [1, 0]) {
      const loader = new DataLoader(ds, { batchSize: batch, shuffle: true, workers });
      const r = await epochs(loader, nEpochs);
      loader.close();
      if (workers === 1) decodeMsPerBatch = (Math.min(batch, n) / r.imgPerS) * 1000;
      emit({ ...base, source: 'jpeg-folder', size, n, workers, img_per_s: round(r.imgPerS), first_batch_ms: round(r.firstMs), ...info });
    }

    // in memory: build once from the folder (decoding through the loader), then indexSelect batches
    const t0 = performance.now();
    const mem = await InMemoryDataset.from(await ImageFolder.open(dir), { imageSize: size, batchSize: batch });
    const buildS = (performance.now() - t0) / 1000;
    const memLoader = new DataLoader(mem, { batchSize: batch, shuffle: true });
    const m = await epochs(memLoader, Math.max(nEpochs, 3));
    emit({ ...base, source: 'in-memory', size, n, img_per_s: round(m.imgPerS), build_img_per_s: round(n / buildS), bytes: mem.images.numel(), ...info });
    mem.dispose();

    // overlap: a synchronous consumer slower than decoding should (almost) never wait
    const stepMs = Math.max(50, Math.round(2 * decodeMsPerBatch));
    const a = torch.randn([256, 256]).keep();
    for (const workers of [1, 0]) {
      const loader = new DataLoader(ds, { batchSize: batch, shuffle: true, workers });
      for await (const b of loader) {
        void b;
        trainStep(stepMs, a);
      }
      const s = loader.stats;
      loader.close();
      emit({
        ...base, source: 'overlap', size, n, workers, step_ms: stepMs, batches: s.batches,
        wait_fraction: round(s.waitMs / s.elapsedMs, 3), wait_ms_per_batch: round(s.waitMs / Math.max(1, s.batches - 1), 1),
        max_wait_ms: round(s.maxWaitMs, 1), first_batch_ms: round(s.firstWaitMs), ...info,
      });
    }
    a.dispose();
  }

  // Fashion-MNIST (Debian's dataset-fashion-mnist), when installed
  if (existsSync(FashionMNIST.DEFAULT_ROOT) && args.fmnist !== 'false') {
    const fm = await FashionMNIST.open();
    let t0 = performance.now();
    const mem = await InMemoryDataset.from(fm);
    const buildMs = performance.now() - t0;
    const r = await epochs(new DataLoader(mem, { batchSize: batch, shuffle: true }), Math.max(nEpochs, 3));
    emit({ ...base, source: 'fashion-mnist-in-memory', size: 28, n: fm.length, img_per_s: round(r.imgPerS), build_ms: round(buildMs, 1), ...info });
    mem.dispose();
    t0 = performance.now();
    const d = await epochs(new DataLoader(fm, { batchSize: batch, shuffle: true }), nEpochs);
    emit({ ...base, source: 'fashion-mnist-getBatch', size: 28, n: fm.length, img_per_s: round(d.imgPerS), ...info });
  }

  // NCHW assembly of one batch of 96×96×3 HWC images: libtorch permute (used on the main
  // thread) vs a JS transpose (used in the decode worker, which has no libtorch)
  const imgs: RawImage[] = Array.from({ length: batch }, (_, i) => ({ data: new Uint8Array(photo(i, 96)), height: 96, width: 96, channels: 3 }));
  const time = (f: () => void): number => {
    for (let k = 0; k < 3; k++) f();
    const ts: number[] = [];
    for (let k = 0; k < 30; k++) {
      const t = performance.now();
      f();
      ts.push(performance.now() - t);
    }
    return ts.sort((x, y) => x - y)[15]!;
  };
  const permute = time(() => stackImages(imgs, [96, 96, 3]).dispose());
  const js = time(() => torch.fromBytes(packNCHW(imgs, [96, 96, 3]), 'uint8', [batch, 3, 96, 96]).dispose());
  emit({ ...base, source: 'nchw', size: 96, permute_ms: round(permute, 2), js_transpose_ms: round(js, 2), ...info });
}
