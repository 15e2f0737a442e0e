/**
 * Resolves a `--data` argument into the training set and the kNN monitor's labelled sets at the
 * training size:
 * - 'fashion-mnist' / 'mnist': the IDX files (train split to train on and as the kNN bank, test
 *   split as kNN queries), in memory;
 * - a folder: `<dir>/train` + `<dir>/val` (or `test`) when both exist, else the folder itself;
 *   with class subfolders the kNN monitor uses a seeded 10% hold-out as queries.
 *
 * Caching (`cache`): a folder's training images are decoded once into one uint8 [N, C, H, W]
 * tensor (`true`), or stay on disk and are decoded batch by batch ahead of the training step by
 * the `DataLoader`'s worker (`false`: memory independent of the dataset's size). `'auto'` (the
 * default) caches when the decoded images take at most a quarter of the machine's memory
 * (`cacheFits`). The kNN monitor's bank and queries are always held in memory (at most
 * `knnBankSize` images each, evenly spaced, 0 = all; a `val`/`test` folder is used whole).
 */
import { existsSync, statSync } from 'node:fs';
import { totalmem } from 'node:os';
import path from 'node:path';
import { DataError, FashionMNIST, ImageFolder, InMemoryDataset, MNIST, Subset, randomSplitIndices } from '../data/index.js';
import { FMNIST_STATS, IMAGENET_STATS, MNIST_STATS } from '../transforms/index.js';

/** Whether a folder's training images are decoded once into memory (see the module comment). */
export type CacheMode = boolean | 'auto';

/** True when `n` decoded `channels`×`size`×`size` uint8 images fit in a quarter of `memory` bytes. */
export function cacheFits(n: number, channels: number, size: number, memory = totalmem()): boolean {
  return n * channels * size * size <= memory / 4;
}

export interface TrainData {
  name: string;
  /** The training images: decoded in memory, or a file-backed folder streamed by the trainer's `DataLoader`. */
  train: InMemoryDataset | ImageFolder;
  /** Labelled bank and queries for the kNN monitor, or null when the data has no labels. */
  knn: {
    bank: InMemoryDataset; bankIndices: number[]; queries: InMemoryDataset; queryIndices: number[];
    /** Where the queries come from: the built-in test split, a val/test folder, or a seeded 10% hold-out of the training folder. */
    split: 'test' | 'val' | 'holdout';
  } | null;
  names: string[];
  channels: 1 | 3;
  imageSize: number;
  /** Per-channel mean and std for normalisation. */
  mean: number[];
  std: number[];
}

/** Whether `data` names a built-in dataset ('fashion-mnist', 'mnist') rather than a folder. */
export function isBuiltinData(data: string): boolean {
  return ['fashion-mnist', 'fashionmnist', 'mnist'].includes(data.toLowerCase());
}

/**
 * The per-channel normalisation a model trained on `data` uses: the dataset's own statistics
 * for (Fashion-)MNIST, ImageNet's for colour folders, mean 0.5 / std 0.25 for gray folders;
 * a 1-channel statistic is repeated for 3 channels.
 */
export function defaultStats(data: string, channels: 1 | 3): { mean: number[]; std: number[] } {
  const key = data.toLowerCase();
  const stats = isBuiltinData(key) ? (key === 'mnist' ? MNIST_STATS : FMNIST_STATS) : channels === 3 ? IMAGENET_STATS : { mean: [0.5], std: [0.25] };
  const rep = (v: number[]): number[] => (channels === 3 && v.length === 1 ? [v[0]!, v[0]!, v[0]!] : [...v]);
  return { mean: rep(stats.mean), std: rep(stats.std) };
}

/** `max` evenly spaced indices of 0..n-1 (all of them when `max` is 0 or ≥ n). */
function evenSample(n: number, max: number): number[] {
  if (max <= 0 || n <= max) return [...Array(n).keys()];
  const step = n / max;
  return Array.from({ length: max }, (_, i) => Math.floor(i * step));
}

export async function loadTrainData(o: { data: string; dataRoot?: string; imageSize: number; channels: 1 | 3; seed: number; knnBankSize: number;
  cache?: CacheMode; onProgress?: (done: number, total: number) => void; }): Promise<TrainData> {
  const key = o.data.toLowerCase();
  if (isBuiltinData(key)) {
    const isF = key !== 'mnist';
    if (!isF && !o.dataRoot) throw new DataError("--data mnist needs --data-root DIR with the MNIST IDX files (Debian ships only dataset-fashion-mnist); or use --data fashion-mnist");
    const open = (train: boolean): Promise<FashionMNIST | MNIST> => (isF ? FashionMNIST.open({ root: o.dataRoot, train }) : MNIST.open({ root: o.dataRoot!, train }));
    const size = o.imageSize || 28;
    const mem = async (train: boolean): Promise<InMemoryDataset> => InMemoryDataset.from(await open(train), {
      channels: o.channels, imageSize: size === 28 ? undefined : size });
    const train = await mem(true);
    const test = await mem(false);
    return { name: isF ? 'fashion-mnist' : 'mnist', train, names: train.names, channels: o.channels, imageSize: size,
      ...defaultStats(key, o.channels),
      knn: { bank: train, bankIndices: evenSample(train.length, o.knnBankSize), queries: test, queryIndices: [...Array(test.length).keys()], split: 'test' } };
  }
  if (!existsSync(o.data)) {
    throw new DataError(`data folder ${o.data} does not exist. Pass a folder of images (class subfolders optional), or --data fashion-mnist.`);
  }
  if (!statSync(o.data).isDirectory()) throw new DataError(`--data ${o.data} is a file; pass a folder of images or fashion-mnist`);
  const size = o.imageSize || 96;
  const split = ['val', 'test'].map((s) => path.join(o.data, s)).find((d) => existsSync(d));
  const trainDir = split && existsSync(path.join(o.data, 'train')) ? path.join(o.data, 'train') : o.data;
  const folder = await ImageFolder.open(trainDir, { channels: o.channels, onError: 'skip' });
  const cache = o.cache ?? 'auto';
  const inMemory = cache === true || (cache === 'auto' && cacheFits(folder.length, o.channels, size));
  const decode = (ds: ImageFolder | Subset): Promise<InMemoryDataset> => InMemoryDataset.from(ds, { imageSize: size, channels: o.channels, fit: 'cover' });
  const train = inMemory ? await InMemoryDataset.from(folder, { imageSize: size, channels: o.channels, fit: 'cover', onProgress: o.onProgress }) : folder;
  const stats = defaultStats(o.data, o.channels);
  let knn: TrainData['knn'] = null;
  if (train.names.length > 1) {
    // at most knnBankSize images each; when streaming they are decoded into memory on their own
    const held = async (all: number[]): Promise<{ ds: InMemoryDataset; indices: number[] }> => {
      const idx = evenSample(all.length, o.knnBankSize).map((k) => all[k]!);
      if (train instanceof InMemoryDataset) return { ds: train, indices: idx };
      const ds = await decode(new Subset(folder, idx));
      return { ds, indices: [...Array(ds.length).keys()] };
    };
    if (trainDir !== o.data) {
      const bank = await held([...Array(train.length).keys()]);
      const q = await decode(await ImageFolder.open(split!, { channels: o.channels, onError: 'skip' }));
      knn = { bank: bank.ds, bankIndices: bank.indices, queries: q, queryIndices: [...Array(q.length).keys()], split: 'val' };
    } else {
      const nq = Math.max(1, Math.round(train.length * 0.1));
      const [qi, bi] = randomSplitIndices(train.length, [nq, train.length - nq], o.seed);
      const bank = await held(bi!);
      const queries = await held(qi!);
      knn = { bank: bank.ds, bankIndices: bank.indices, queries: queries.ds, queryIndices: queries.indices, split: 'holdout' };
    }
  }
  return { name: path.basename(path.resolve(o.data)), train, knn, names: train.names, channels: o.channels, imageSize: size, ...stats };
}

/** Frees the images `loadTrainData` decoded into memory (the training set and the kNN monitor's sets, each once). */
export function disposeTrainData(d: TrainData): void {
  const held = new Set<InMemoryDataset>();
  if (d.train instanceof InMemoryDataset) held.add(d.train);
  if (d.knn) held.add(d.knn.bank).add(d.knn.queries);
  for (const ds of held) ds.dispose();
}
