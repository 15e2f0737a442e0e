import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import sharp from 'sharp';
import * as torch from '../src/torch/index.js';
import { folderMaker, tempDir } from './helpers/tmp.js';
import {
  DataLoader, DecodeError, FashionMNIST, IdxImageDataset, ImageFolder, InMemoryDataset, Subset, rgbToGray,
  type Batch, type Dataset, type Sample,
} from '../src/data/index.js';

const tmp = tempDir('loader');
/** A fresh folder under the test's temp dir. */
const folder = folderMaker(tmp);

/** A lossless PNG whose pixels identify it: R = id, G = y * 10 + x % 10, B = label * 60. */
async function png(file: string, id: number, label: number, w = 16, h = 12): Promise<void> {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const raw = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const o = (y * w + x) * 3;
      raw[o] = id;
      raw[o + 1] = (y * 10 + (x % 10)) & 255;
      raw[o + 2] = label * 60;
    }
  }
  await sharp(raw, { raw: { width: w, height: h, channels: 3 } }).png().toFile(file);
}

/** `n` PNGs in classes a/b/c, file names sorted so that dataset index = id. */
async function labelledFolder(n: number, w = 16, h = 12): Promise<string> {
  const root = folder('labelled');
  const per = Math.ceil(n / 3);
  for (let i = 0; i < n; i++) {
    const label = Math.floor(i / per);
    await png(path.join(root, 'abc'[label]!, `${String(i).padStart(3, '0')}.png`), i, label, w, h);
  }
  return root;
}

async function collect(loader: DataLoader, f: (b: Batch) => void = () => {}): Promise<number[][]> {
  const out: number[][] = [];
  for await (const b of loader) {
    out.push(b.indices);
    f(b);
  }
  return out;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A synthetic dataset whose getBatch takes `delayMs`: deterministic timing for the prefetch test. */
class SlowDataset implements Dataset<Sample> {
  readonly names: string[] = [];
  calls = 0;
  constructor(readonly length: number, readonly delayMs: number) {}
  async get(i: number): Promise<Sample> {
    return (await this.getBatch([i]))[0]!;
  }
  async getBatch(indices: number[]): Promise<Sample[]> {
    this.calls++;
    await sleep(this.delayMs);
    return indices.map((i) => ({ image: { data: new Uint8Array(4 * 4).fill(i & 255), height: 4, width: 4, channels: 1 as const }, label: -1, index: i }));
  }
}

describe('DataLoader: batches', () => {
  let root: string;
  let ds: ImageFolder;
  before(async () => {
    root = await labelledFolder(23);
    ds = await ImageFolder.open(root);
  });

  for (const workers of [1, 0]) {
    it(`shapes, dtypes, labels, paths and pixels match the dataset (workers: ${workers})`, async () => {
      const loader = new DataLoader(ds, { batchSize: 5, workers });
      assert.equal(loader.length, 5);
      const sizes: number[] = [];
      const seen: number[] = [];
      for await (const b of loader) {
        const n = b.indices.length;
        sizes.push(n);
        assert.deepEqual(b.images.shape, [n, 3, 12, 16]);
        assert.equal(b.images.dtype, 'uint8');
        assert.deepEqual(b.labels.shape, [n]);
        assert.equal(b.labels.dtype, 'int64');
        assert.deepEqual(b.labels.toArray(), b.indices.map((i) => ds.labels[i]!));
        assert.deepEqual(b.paths, b.indices.map((i) => ds.paths[i]!));
        const px = b.images.toUint8Array();
        const plane = 12 * 16;
        b.indices.forEach((i, k) => {
          assert.equal(px[k * 3 * plane], i, 'R channel plane holds the image id');
          assert.equal(px[k * 3 * plane + plane + 16 + 3], 13, 'G plane: y * 10 + x at (1, 3)');
          assert.equal(px[k * 3 * plane + 2 * plane], ds.labels[i]! * 60, 'B plane holds the label');
        });
        seen.push(...b.indices);
      }
      assert.deepEqual(sizes, [5, 5, 5, 5, 3]);
      assert.deepEqual(seen, Array.from({ length: 23 }, (_, i) => i));
      loader.close();
    });
  }

  it('worker and main-thread decoding give identical batches (resize and channel conversion included)', async () => {
    const mixed = folder('mixed');
    for (let i = 0; i < 7; i++) await png(path.join(mixed, `${i}.png`), i * 30, 0, 10 + i * 3, 9 + i);
    const mds = await ImageFolder.open(mixed);
    for (const opts of [{ imageSize: [8, 12] as [number, number] }, { imageSize: 6, channels: 1 as const, fit: 'cover' as const }]) {
      const a: torch.Tensor[] = [];
      const b: torch.Tensor[] = [];
      await collect(new DataLoader(mds, { batchSize: 4, workers: 1, ...opts }), (x) => a.push(x.images.clone()));
      await collect(new DataLoader(mds, { batchSize: 4, workers: 0, ...opts }), (x) => b.push(x.images.clone()));
      assert.equal(a.length, 2);
      a.forEach((t, k) => assert.ok(t.equal(b[k]!), `batch ${k} equal with ${JSON.stringify(opts)}`));
      assert.deepEqual(a[0]!.shape, opts.channels === 1 ? [4, 1, 6, 6] : [4, 3, 8, 12]);
      for (const t of [...a, ...b]) t.dispose();
    }
  });

  it('channels: 1 is BT.601 luma of the decoded RGB, as rgbToGray', async () => {
    const loader = new DataLoader(ds, { batchSize: 4, channels: 1 });
    for await (const b of loader) {
      assert.deepEqual(b.images.shape, [4, 1, 12, 16]);
      const want = rgbToGray((await ds.get(b.indices[2]!)).image).data;
      assert.deepEqual(torch.scope(() => b.images.get(2).toUint8Array()), want);
      break;
    }
    loader.close();
  });

  it('shuffle: every index exactly once per epoch; same seed, same order; new epoch, new order; setEpoch replays', async () => {
    const a = new DataLoader(ds, { batchSize: 4, shuffle: true, seed: 7 });
    const b = new DataLoader(ds, { batchSize: 4, shuffle: true, seed: 7 });
    const c = new DataLoader(ds, { batchSize: 4, shuffle: true, seed: 8 });
    const e0 = await collect(a);
    assert.equal(a.epoch, 1, 'an iteration advances the epoch');
    const e1 = await collect(a);
    const flat0 = e0.flat();
    assert.deepEqual([...flat0].sort((x, y) => x - y), Array.from({ length: 23 }, (_, i) => i));
    assert.deepEqual([...e1.flat()].sort((x, y) => x - y), Array.from({ length: 23 }, (_, i) => i));
    assert.notDeepEqual(flat0, Array.from({ length: 23 }, (_, i) => i), 'shuffled');
    assert.notDeepEqual(e1.flat(), flat0, 'epoch 1 differs from epoch 0');
    assert.deepEqual(await collect(b), e0, 'same seed, same order');
    assert.notDeepEqual((await collect(c)).flat(), flat0, 'other seed, other order');
    a.setEpoch(1);
    assert.deepEqual(await collect(a), e1, 'setEpoch(1) reproduces epoch 1 (resume)');
    assert.deepEqual(a.batches(0), e0, 'batches(epoch) predicts the order');
    a.close();
    b.close();
    c.close();
  });

  it('dropLast drops the short final batch; length follows', async () => {
    const loader = new DataLoader(ds, { batchSize: 5, shuffle: true, dropLast: true });
    assert.equal(loader.length, 4);
    const batches = await collect(loader);
    assert.equal(batches.length, 4);
    assert.ok(batches.every((x) => x.length === 5));
    assert.equal(new Set(batches.flat()).size, 20);
    assert.equal(new DataLoader(ds, { batchSize: 5 }).length, 5);
    loader.close();
  });

  it('images of different sizes: a clear error without imageSize, resized with it', async () => {
    const mixed = folder('sizes');
    await png(path.join(mixed, 'a.png'), 1, 0, 16, 12);
    await png(path.join(mixed, 'b.png'), 2, 0, 20, 12);
    const mds = await ImageFolder.open(mixed);
    const base = torch.memory().count;
    for (const workers of [0, 1]) {
      const loader = new DataLoader(mds, { batchSize: 2, workers });
      await assert.rejects(collect(loader), (e: Error) => {
        assert.match(e.message, /same size/);
        assert.match(e.message, /12×16/);
        assert.match(e.message, /12×20/);
        assert.match(e.message, /imageSize/);
        return true;
      });
      loader.close();
    }
    assert.equal(torch.memory().count, base, 'nothing leaked by the failed batch');
    const ok = new DataLoader(mds, { batchSize: 2, imageSize: [10, 10] });
    await collect(ok, (b) => assert.deepEqual(b.images.shape, [2, 3, 10, 10]));
    ok.close();
  });

  it('Subset of an ImageFolder: indices are subset positions, pixels those of the parent', async () => {
    const sub = new Subset(ds, [20, 3, 11]);
    for (const workers of [0, 1]) {
      const loader = new DataLoader(sub, { batchSize: 3, workers });
      await collect(loader, (b) => {
        assert.deepEqual(b.indices, [0, 1, 2]);
        assert.deepEqual(b.labels.toArray(), [20, 3, 11].map((i) => ds.labels[i]!));
        assert.deepEqual(b.paths, [20, 3, 11].map((i) => ds.paths[i]!));
        const px = b.images.toUint8Array();
        assert.deepEqual([0, 1, 2].map((k) => px[k * 3 * 192]), [20, 3, 11]);
      });
      loader.close();
    }
  });
});

describe('DataLoader: bad files follow the dataset policy', () => {
  let root: string;
  before(async () => {
    root = folder('bad');
    for (let i = 0; i < 6; i++) await png(path.join(root, `${i}.png`), i, 0);
    fs.writeFileSync(path.join(root, '2.png'), 'not an image at all');
    fs.writeFileSync(path.join(root, '4.png'), Buffer.alloc(0));
    fs.writeFileSync(path.join(root, '5.png'), 'also garbage');
  });

  for (const workers of [1, 0]) {
    it(`onError 'skip': smaller batches, all-bad batch skipped, one warning (workers: ${workers})`, async () => {
      const warnings: string[] = [];
      const ds = await ImageFolder.open(root, { onError: 'skip', onWarning: (m) => warnings.push(m) });
      const loader = new DataLoader(ds, { batchSize: 2, workers });
      const got = await collect(loader);
      assert.deepEqual(got, [[0, 1], [3]], 'batch [2, 3] lost file 2; batch [4, 5] had no good file');
      assert.ok(warnings.length >= 1 && warnings.some((w) => /2\.png/.test(w)), warnings.join('\n'));
      assert.equal(ds.badFiles.size, 3);
      // second epoch: known bad files are skipped without new warnings
      const n = warnings.length;
      assert.deepEqual(await collect(loader), [[0, 1], [3]]);
      assert.equal(warnings.length, n);
      loader.close();
    });

    it(`onError 'fail': the loop throws the DecodeError, nothing leaks (workers: ${workers})`, async () => {
      const ds = await ImageFolder.open(root);
      const base = torch.memory().count;
      const loader = new DataLoader(ds, { batchSize: 2, workers, prefetch: 2 });
      await assert.rejects(collect(loader), (e: unknown) => {
        assert.ok(e instanceof DecodeError, String(e));
        assert.match(e.message, /2\.png/);
        return true;
      });
      assert.equal(torch.memory().count, base);
      loader.close();
    });
  }
});

describe('DataLoader: prefetch and memory', () => {
  it('prefetch overlaps loading with a slow consumer (synthetic 30 ms loads, 50 ms consumer)', async () => {
    const ds = new SlowDataset(40, 30);
    const loader = new DataLoader(ds, { batchSize: 4, prefetch: 2, fetchChunk: 4 });
    await collect(loader); // warm-up
    let consumed = 0;
    for await (const b of loader) {
      consumed += b.indices.length;
      await sleep(50);
    }
    assert.equal(consumed, 40);
    const s = loader.stats;
    assert.equal(s.batches, 10);
    const frac = s.waitMs / s.elapsedMs;
    assert.ok(frac < 0.15, `waited ${s.waitMs.toFixed(1)} ms of ${s.elapsedMs.toFixed(1)} ms after the first batch (${(frac * 100).toFixed(1)}%)`);
    // without prefetch the same consumer waits for every load: the measurement sees it
    const none = new DataLoader(ds, { batchSize: 4, prefetch: 0, fetchChunk: 4 });
    for await (const b of none) {
      void b;
      await sleep(50);
    }
    assert.ok(none.stats.waitMs > 9 * 20, `no prefetch: waited ${none.stats.waitMs.toFixed(1)} ms`);
  });

  it('prefetch overlaps real decoding: waiting after the first batch is a small fraction', async () => {
    const root = folder('overlap');
    for (let i = 0; i < 48; i++) await png(path.join(root, `${String(i).padStart(2, '0')}.png`), i, 0, 32, 32);
    const ds = await ImageFolder.open(root);
    for (const workers of [1, 0]) {
      const loader = new DataLoader(ds, { batchSize: 6, shuffle: true, workers });
      for await (const b of loader) {
        void b;
        await sleep(50);
      }
      const s = loader.stats;
      assert.equal(s.batches, 8);
      const frac = s.waitMs / s.elapsedMs;
      assert.ok(frac < 0.25, `workers ${workers}: waited ${s.waitMs.toFixed(1)} ms of ${s.elapsedMs.toFixed(1)} ms (${(frac * 100).toFixed(1)}%)`);
      loader.close();
    }
  });

  it('break with batches in flight disposes everything (count back to baseline)', async () => {
    const root = await labelledFolder(30);
    const ds = await ImageFolder.open(root);
    for (const workers of [1, 0]) {
      const base = torch.memory().count;
      const loader = new DataLoader(ds, { batchSize: 3, prefetch: 3, workers });
      let n = 0;
      for await (const b of loader) {
        torch.scope(() => b.images.float().div(255).mean().item());
        if (++n === 2) break;
      }
      assert.equal(torch.memory().count, base, `workers ${workers}`);
      // an exception in the loop body also ends the iteration cleanly
      await assert.rejects(async () => {
        for await (const b of loader) {
          void b;
          throw new Error('boom');
        }
      }, /boom/);
      assert.equal(torch.memory().count, base);
      loader.close();
    }
  });

  it('batches survive the consumer scope; the loader frees each when the next is requested', async () => {
    const ds = await ImageFolder.open(await labelledFolder(6));
    const loader = new DataLoader(ds, { batchSize: 2 });
    let prev: Batch | null = null;
    for await (const b of loader) {
      if (prev) assert.ok(prev.images.isDisposed && prev.labels.isDisposed, 'previous batch freed');
      const m = torch.scope(() => b.images.float().mean().item());
      assert.ok(Number.isFinite(m));
      assert.ok(!b.images.isDisposed, 'the scope did not free the batch');
      prev = b;
    }
    assert.ok(prev!.images.isDisposed, 'last batch freed at the end');
    loader.close();

    const manual = new DataLoader(ds, { batchSize: 2, autoDispose: false });
    const kept: Batch[] = [];
    for await (const b of manual) kept.push(b);
    assert.ok(kept.every((b) => !b.images.isDisposed), 'autoDispose: false hands ownership over');
    for (const b of kept) b.dispose();
    manual.close();
  });

  it('10,000 batches keep the live tensor count flat (in-memory)', async () => {
    const n = 100;
    const pixels = new Uint8Array(n * 16).map((_, i) => i & 255);
    const idx = new IdxImageDataset(pixels, new Uint8Array(n).map((_, i) => i % 10), 4, 4, ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    const mem = await InMemoryDataset.from(idx);
    const base = torch.memory().count;
    const loader = new DataLoader(mem, { batchSize: 1, shuffle: true });
    let batches = 0;
    let maxCount = 0;
    for (let e = 0; e < 100; e++) {
      for await (const b of loader) {
        torch.scope(() => b.images.float().sum().item());
        batches++;
        if (batches % 500 === 0) maxCount = Math.max(maxCount, torch.memory().count);
      }
    }
    assert.equal(batches, 10000);
    assert.ok(maxCount <= base + 2, `live tensors ${maxCount}, baseline ${base}`);
    assert.equal(torch.memory().count, base);
    mem.dispose();
  });
});

describe('DataLoader: argument errors', () => {
  let ds: ImageFolder;
  before(async () => {
    ds = await ImageFolder.open(await labelledFolder(3));
  });

  it('empty dataset, bad batchSize / prefetch / workers / imageSize / channels, dropLast without a batch', () => {
    assert.throws(() => new DataLoader(new Subset(ds, []), { batchSize: 2 }), /empty \(0 samples\)/);
    for (const batchSize of [0, -1, 1.5, NaN]) assert.throws(() => new DataLoader(ds, { batchSize }), /batchSize must be an integer >= 1/);
    assert.throws(() => new DataLoader(ds, { prefetch: -1 }), /prefetch/);
    assert.throws(() => new DataLoader(ds, { workers: 0.5 }), /workers/);
    assert.throws(() => new DataLoader(ds, { imageSize: 0 }), /imageSize/);
    assert.throws(() => new DataLoader(ds, { imageSize: [4] as unknown as [number, number] }), /imageSize/);
    assert.throws(() => new DataLoader(ds, { channels: 2 as 1 }), /channels must be 1 or 3/);
    assert.throws(() => new DataLoader(ds, { batchSize: 4, dropLast: true }), /dropLast.*leaves no batch/);
    assert.throws(() => new DataLoader({} as Dataset<Sample>), /Dataset interface/);
  });
});

describe('InMemoryDataset', () => {
  it('equals the decoded images; loader batches from memory equal decoded batches', async () => {
    const root = folder('mem');
    for (let i = 0; i < 11; i++) await png(path.join(root, i < 6 ? 'x' : 'y', `${String(i).padStart(2, '0')}.png`), i * 20, i < 6 ? 0 : 1, 14 + i, 10 + (i % 3));
    const ds = await ImageFolder.open(root);
    const base = torch.memory().count;
    const mem = await InMemoryDataset.from(ds, { imageSize: [9, 13], batchSize: 4 });
    assert.deepEqual(mem.images.shape, [11, 3, 9, 13]);
    assert.equal(mem.images.dtype, 'uint8');
    assert.deepEqual(Array.from(mem.labels), Array.from(ds.labels));
    assert.deepEqual(mem.paths, ds.paths);
    assert.equal(torch.memory().count, base + 1, 'one tensor for the whole dataset');

    const decoded: torch.Tensor[] = [];
    await collect(new DataLoader(ds, { batchSize: 11, imageSize: [9, 13] }), (b) => decoded.push(b.images.clone()));
    assert.ok(mem.images.equal(decoded[0]!), 'in-memory tensor equals the decoded batch');
    decoded[0]!.dispose();

    const order = [10, 2, 7];
    const fromMem = new DataLoader(mem, { batchSize: 3 });
    const sub = new DataLoader(new Subset(ds, order), { batchSize: 3, imageSize: [9, 13] });
    const a: torch.Tensor[] = [];
    await collect(new DataLoader(new Subset(mem, order), { batchSize: 3 }), (b) => a.push(b.images.clone()));
    await collect(sub, (b) => assert.ok(b.images.equal(a[0]!)));
    a[0]!.dispose();
    await collect(fromMem, (b) => {
      assert.deepEqual(b.labels.toArray(), b.indices.map((i) => ds.labels[i]!));
      assert.deepEqual(b.paths, b.indices.map((i) => ds.paths[i]!));
    });
    const s = await mem.get(4);
    assert.deepEqual([s.image.height, s.image.width, s.image.channels], [9, 13, 3]);
    assert.equal(s.image.data[0], 80, 'HWC: R of image 4');
    assert.throws(() => new DataLoader(mem, { imageSize: 32 }), /InMemoryDataset with those imageSize/);
    sub.close();
    mem.dispose();
    assert.equal(torch.memory().count, base);
  });

  it('skipped files are left out; sourceIndices maps back', async () => {
    const root = folder('memskip');
    for (let i = 0; i < 5; i++) await png(path.join(root, `${i}.png`), i, 0);
    fs.writeFileSync(path.join(root, '1.png'), 'broken');
    const ds = await ImageFolder.open(root, { onError: 'skip', onWarning: () => {} });
    const mem = await InMemoryDataset.from(ds, { batchSize: 2 });
    assert.equal(mem.length, 4);
    assert.deepEqual(Array.from(mem.sourceIndices), [0, 2, 3, 4]);
    assert.deepEqual(torch.scope(() => mem.images.select(1, 0).select(1, 0).select(1, 0).toArray()), [0, 2, 3, 4]);
    mem.dispose();
  });

  it('FashionMNIST: [60000, 1, 28, 28] uint8 straight from the IDX block, first image bytes match the file', async () => {
    const fm = await FashionMNIST.open();
    const base = torch.memory().count;
    const mem = await InMemoryDataset.from(fm);
    assert.deepEqual(mem.images.shape, [60000, 1, 28, 28]);
    assert.equal(mem.images.dtype, 'uint8');
    const raw = zlib.gunzipSync(fs.readFileSync(path.join(FashionMNIST.DEFAULT_ROOT, 'train-images-idx3-ubyte.gz')));
    const labels = zlib.gunzipSync(fs.readFileSync(path.join(FashionMNIST.DEFAULT_ROOT, 'train-labels-idx1-ubyte.gz')));
    assert.deepEqual(torch.scope(() => mem.images.get(0).toUint8Array()), new Uint8Array(raw.subarray(16, 16 + 784)));
    assert.deepEqual(torch.scope(() => mem.images.get(59999).toUint8Array()), new Uint8Array(raw.subarray(16 + 59999 * 784)));
    assert.deepEqual(Array.from(mem.labels.subarray(0, 20)), Array.from(labels.subarray(8, 28)));
    assert.deepEqual(mem.names, [...FashionMNIST.CLASSES]);
    // a shuffled in-memory batch equals the decoded batch of the same indices
    const a = new DataLoader(mem, { batchSize: 256, shuffle: true, seed: 3 });
    const b = new DataLoader(fm, { batchSize: 256, shuffle: true, seed: 3 });
    const ia = a[Symbol.asyncIterator]();
    const ib = b[Symbol.asyncIterator]();
    const [ra, rb] = [await ia.next(), await ib.next()];
    assert.deepEqual(ra.value!.indices, rb.value!.indices);
    assert.ok(ra.value!.images.equal(rb.value!.images));
    assert.ok(ra.value!.labels.equal(rb.value!.labels));
    await ia.return();
    await ib.return();
    mem.dispose();
    assert.equal(torch.memory().count, base);
  });

  it('FashionMNIST test split with channels 3: grey replicated into [10000, 3, 28, 28]', async () => {
    const fm = await FashionMNIST.open({ train: false });
    const mem = await InMemoryDataset.from(fm, { channels: 3 });
    assert.deepEqual(mem.images.shape, [10000, 3, 28, 28]);
    torch.scope(() => {
      const img = mem.images.get(123);
      assert.ok(img.get(0).equal(img.get(2)) && img.get(1).equal(img.get(0)));
      assert.deepEqual(img.get(0).toUint8Array(), fm.image(123).data);
    });
    mem.dispose();
  });
});
