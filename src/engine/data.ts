/**
 * Resolves a `--data` argument into the training set and the kNN monitor's labelled sets, held
 * in memory as uint8 [N, C, H, W] tensors at the training size (decoded once):
 * - 'fashion-mnist' / 'mnist': the IDX files (train split to train on and as the kNN bank, test
 *   split as kNN queries);
 * - a folder: `<dir>/train` + `<dir>/val` (or `test`) when both exist, else the folder itself;
 *   with class subfolders the kNN monitor uses a seeded 10% hold-out as queries.
 */
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { FashionMNIST, ImageFolder, InMemoryDataset, MNIST, randomSplitIndices } from '../data/index.js';

export interface TrainData {
  name: string;
  train: InMemoryDataset;
  /** Labelled bank and queries for the kNN monitor, or null when the data has no labels. */
  knn: { bank: InMemoryDataset; bankIndices: number[]; queries: InMemoryDataset; queryIndices: number[] } | null;
  names: string[];
  channels: 1 | 3;
  imageSize: number;
  /** Per-channel mean and std for normalisation. */
  mean: number[];
  std: number[];
}

export class DataError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DataError';
  }
}

/** Per-channel statistics of the built-in datasets and ImageNet. */
export const FMNIST_STATS = { mean: [0.286], std: [0.353] };
export const MNIST_STATS = { mean: [0.1307], std: [0.3081] };
export const IMAGENET_STATS = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };

function evenSample(n: number, max: number): number[] {
  if (n <= max) return [...Array(n).keys()];
  const step = n / max;
  return Array.from({ length: max }, (_, i) => Math.floor(i * step));
}

export async function loadTrainData(o: { data: string; dataRoot?: string; imageSize: number; channels: 1 | 3; seed: number; knnBankSize: number;
  onProgress?: (done: number, total: number) => void; }): Promise<TrainData> {
  const key = o.data.toLowerCase();
  if (key === 'fashion-mnist' || key === 'fashionmnist' || key === 'mnist') {
    const isF = key !== 'mnist';
    if (!isF && !o.dataRoot) throw new DataError("--data mnist needs --data-root DIR with the MNIST IDX files (Debian ships only dataset-fashion-mnist); or use --data fashion-mnist");
    const open = (train: boolean): Promise<FashionMNIST | MNIST> => (isF ? FashionMNIST.open({ root: o.dataRoot, train }) : MNIST.open({ root: o.dataRoot!, train }));
    const size = o.imageSize || 28;
    const mem = async (train: boolean): Promise<InMemoryDataset> => InMemoryDataset.from(await open(train), {
      channels: o.channels, imageSize: size === 28 ? undefined : size });
    const train = await mem(true);
    const test = await mem(false);
    const stats = isF ? FMNIST_STATS : MNIST_STATS;
    const rep = (v: number[]): number[] => (o.channels === 3 ? [v[0]!, v[0]!, v[0]!] : v);
    return { name: isF ? 'fashion-mnist' : 'mnist', train, names: train.names, channels: o.channels, imageSize: size,
      mean: rep(stats.mean), std: rep(stats.std),
      knn: { bank: train, bankIndices: evenSample(train.length, o.knnBankSize), queries: test, queryIndices: [...Array(test.length).keys()] } };
  }
  if (!existsSync(o.data)) {
    throw new DataError(`data folder ${o.data} does not exist. Pass a folder of images (class subfolders optional), or --data fashion-mnist.`);
  }
  if (!statSync(o.data).isDirectory()) throw new DataError(`--data ${o.data} is a file; pass a folder of images or fashion-mnist`);
  const size = o.imageSize || 96;
  const split = ['val', 'test'].map((s) => path.join(o.data, s)).find((d) => existsSync(d));
  const trainDir = split && existsSync(path.join(o.data, 'train')) ? path.join(o.data, 'train') : o.data;
  const folder = await ImageFolder.open(trainDir, { channels: o.channels, onError: 'skip' });
  const train = await InMemoryDataset.from(folder, { imageSize: size, channels: o.channels, fit: 'cover', onProgress: o.onProgress });
  const stats = o.channels === 3 ? IMAGENET_STATS : { mean: [0.5], std: [0.25] };
  let knn: TrainData['knn'] = null;
  if (train.names.length > 1) {
    if (trainDir !== o.data) {
      const q = await InMemoryDataset.from(await ImageFolder.open(split!, { channels: o.channels, onError: 'skip' }), { imageSize: size, channels: o.channels, fit: 'cover' });
      knn = { bank: train, bankIndices: evenSample(train.length, o.knnBankSize), queries: q, queryIndices: [...Array(q.length).keys()] };
    } else {
      const nq = Math.max(1, Math.round(train.length * 0.1));
      const [qi, bi] = randomSplitIndices(train.length, [nq, train.length - nq], o.seed);
      knn = { bank: train, bankIndices: bi!.slice(0, o.knnBankSize), queries: train, queryIndices: qi! };
    }
  }
  return { name: path.basename(path.resolve(o.data)), train, knn, names: train.names, channels: o.channels, imageSize: size, ...stats };
}
