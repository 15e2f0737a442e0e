/**
 * What the linear probe, fine-tuning, the supervised baseline and validation share: labelled
 * data (a training pool and an evaluation split, held in memory at the model's size), the
 * class-balanced label subset, classification metrics, and classifier checkpoints.
 *
 * Splits, for `data`:
 * - 'fashion-mnist' / 'mnist': the train split is the pool, the test split is evaluated;
 * - a folder with `train/` and `val/` (or `test/`): those;
 * - any other folder with class subfolders: a seeded 10% hold-out is evaluated, the rest is the pool.
 * Images are decoded and resized exactly as the self-supervised trainer does (`loadTrainData`).
 */
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import { FashionMNIST, ImageFolder, InMemoryDataset, MNIST, balancedSubset, randomSplitIndices } from '../data/index.js';
import { createBackbone, type BackboneSpec, type ResNetStem } from '../models/index.js';
import type { Classifier } from '../models/classifier.js';
import { DataError } from '../data/errors.js';
import { embedIndices } from './evaluate.js';
import { backboneSpec } from './config.js';
import { isBuiltinData } from './data.js';
import { saveCheckpoint } from './checkpoint.js';

/** The part of a checkpoint config that fixes the network and its input. */
export interface ModelInputConfig {
  backbone: BackboneSpec['name'];
  width: number;
  imageSize: number;
  stem: 'auto' | ResNetStem;
  channels: 1 | 3;
  mean: number[];
  std: number[];
  channelsLast?: boolean;
  /** ResNet feature pooling (`ResNetOptions`); absent: global average pooling of the last stage. */
  featureStages?: number;
  featureGrid?: number;
}


export function buildBackbone(c: ModelInputConfig): ReturnType<typeof createBackbone> {
  return createBackbone(backboneSpec(c));
}

export interface LabelledData {
  /** The training pool (labels in `train.labels`) and the indices of it that may be trained on. */
  train: InMemoryDataset;
  trainIndices: number[];
  /** The evaluation split and its indices. */
  test: InMemoryDataset;
  testIndices: number[];
  names: string[];
  /** Where the evaluation split came from. */
  split: 'test' | 'val' | 'holdout' | 'all';
  dispose(): void;
}


async function builtin(o: { data: string; dataRoot?: string; imageSize: number; channels: 1 | 3 }, train: boolean): Promise<InMemoryDataset> {
  const isF = o.data.toLowerCase() !== 'mnist';
  if (!isF && !o.dataRoot) throw new DataError('--data mnist needs --data-root DIR with the MNIST IDX files; or use --data fashion-mnist');
  const ds = isF ? await FashionMNIST.open({ root: o.dataRoot, train }) : await MNIST.open({ root: o.dataRoot!, train });
  return InMemoryDataset.from(ds, { channels: o.channels, imageSize: o.imageSize === 28 ? undefined : o.imageSize });
}

async function folder(dir: string, o: { imageSize: number; channels: 1 | 3 }): Promise<InMemoryDataset> {
  const f = await ImageFolder.open(dir, { channels: o.channels, onError: 'skip', labels: 'folders' });
  return InMemoryDataset.from(f, { imageSize: o.imageSize, channels: o.channels, fit: 'cover' });
}

function checkFolder(data: string): void {
  if (!existsSync(data)) throw new DataError(`data folder ${data} does not exist. Pass a folder with one subfolder of images per class, or fashion-mnist.`);
  if (!statSync(data).isDirectory()) throw new DataError(`--data ${data} is a file; pass a folder with one subfolder of images per class, or fashion-mnist`);
}

function requireLabels(ds: InMemoryDataset, where: string): void {
  if (ds.names.length < 2) {
    throw new DataError(`${where} has ${ds.names.length === 0 ? 'no class subfolders' : 'a single class'}: a classifier needs labelled images, ` +
      'one subfolder per class (root/cat/*.jpg, root/dog/*.jpg), at least two classes');
  }
}

/** Loads a labelled training pool and evaluation split (see the module comment). */
export async function loadLabelledData(o: { data: string; dataRoot?: string; imageSize: number; channels: 1 | 3; seed: number; holdout?: number }): Promise<LabelledData> {
  const mk = (train: InMemoryDataset, trainIndices: number[], test: InMemoryDataset, testIndices: number[], split: LabelledData['split']): LabelledData => ({
    train, trainIndices, test, testIndices, names: train.names, split,
    dispose: () => { train.dispose(); if (test !== train) test.dispose(); },
  });
  const all = (n: number): number[] => [...Array(n).keys()];
  if (isBuiltinData(o.data)) {
    const train = await builtin(o, true);
    const test = await builtin(o, false);
    return mk(train, all(train.length), test, all(test.length), 'test');
  }
  checkFolder(o.data);
  const splitDir = ['val', 'test'].map((s) => path.join(o.data, s)).find((d) => existsSync(d));
  const trainDir = path.join(o.data, 'train');
  if (splitDir && existsSync(trainDir)) {
    const train = await folder(trainDir, o);
    requireLabels(train, trainDir);
    const test = await folder(splitDir, o);
    if (test.names.join('\n') !== train.names.join('\n')) {
      test.dispose();
      train.dispose();
      throw new DataError(`${trainDir} and ${splitDir} have different class folders: [${train.names.join(', ')}] vs [${test.names.join(', ')}]`);
    }
    return mk(train, all(train.length), test, all(test.length), path.basename(splitDir) === 'val' ? 'val' : 'test');
  }
  const ds = await folder(o.data, o);
  try {
    requireLabels(ds, o.data);
  } catch (e) {
    ds.dispose();
    throw e;
  }
  const nq = Math.max(1, Math.round(ds.length * (o.holdout ?? 0.1)));
  const [qi, ti] = randomSplitIndices(ds.length, [nq, ds.length - nq], o.seed);
  return mk(ds, ti!, ds, qi!, 'holdout');
}

/** The labelled images to evaluate on: the test/val split of `data`, or all of a plain labelled folder. */
export async function loadEvalData(o: { data: string; dataRoot?: string; imageSize: number; channels: 1 | 3 }): Promise<{ ds: InMemoryDataset; indices: number[]; names: string[]; split: LabelledData['split'] }> {
  if (isBuiltinData(o.data)) {
    const ds = await builtin(o, false);
    return { ds, indices: [...Array(ds.length).keys()], names: ds.names, split: 'test' };
  }
  checkFolder(o.data);
  const splitDir = ['val', 'test'].map((s) => path.join(o.data, s)).find((d) => existsSync(d));
  const dir = splitDir ?? o.data;
  const ds = await folder(dir, o);
  try {
    requireLabels(ds, dir);
  } catch (e) {
    ds.dispose();
    throw e;
  }
  return { ds, indices: [...Array(ds.length).keys()], names: ds.names, split: splitDir ? (path.basename(splitDir) === 'val' ? 'val' : 'test') : 'all' };
}

/**
 * The labelled subset of `indices` to train on: a class-balanced fraction, seeded (the same
 * seed and fraction always pick the same images). 1 keeps them all.
 */
export function labelSubset(labels: Int32Array, indices: number[], fraction: number, seed: number): number[] {
  if (!(fraction > 0 && fraction <= 1)) throw new RangeError(`labelFraction must be in (0, 1], got ${fraction} (0.01 = 1% of the labels)`);
  if (fraction === 1) return indices.slice();
  const sub = balancedSubset(Int32Array.from(indices, (i) => labels[i]!), fraction, seed);
  return sub.map((k) => indices[k]!);
}

/**
 * Splits labelled `indices` into train / validation parts, class-balanced and seeded, with at
 * least one validation and one training sample per class; null when some class has fewer than 2.
 */
export function validationSplit(labels: Int32Array, indices: number[], fraction: number, seed: number): { train: number[]; val: number[] } | null {
  const byClass = new Map<number, number>();
  for (const i of indices) byClass.set(labels[i]!, (byClass.get(labels[i]!) ?? 0) + 1);
  if ([...byClass.values()].some((c) => c < 2)) return null;
  const local = Int32Array.from(indices, (i) => labels[i]!);
  const picked = balancedSubset(local, fraction, seed);
  // balancedSubset keeps ≥ 1 per class; make sure ≥ 1 per class is left to train on
  const counts = new Map<number, number>();
  for (const k of picked) counts.set(local[k]!, (counts.get(local[k]!) ?? 0) + 1);
  const val = new Set(picked.filter((k) => {
    const c = local[k]!;
    if (counts.get(c)! >= byClass.get(c)!) {
      counts.set(c, counts.get(c)! - 1);
      return false;
    }
    return true;
  }));
  return { train: indices.filter((_, k) => !val.has(k)), val: indices.filter((_, k) => val.has(k)) };
}

/** Maps data labels to model class indices by name; throws naming a class the model does not know. */
export function labelMap(dataNames: string[], modelNames: string[]): Int32Array {
  const pos = new Map(modelNames.map((n, i) => [n, i]));
  return Int32Array.from(dataNames, (n) => {
    const i = pos.get(n);
    if (i === undefined) {
      throw new DataError(`the data has class '${n}', which the model does not know (its classes: ${modelNames.join(', ')}). ` +
        'Evaluate on data with the same class folders as the training data.');
    }
    return i;
  });
}

export interface ClassifyMetrics {
  /** Fraction (0..1) of samples whose true class is the top prediction / among the top 5. */
  top1: number;
  top5: number;
  /** Accuracy per class name (classes without samples are left out). */
  perClass: Record<string, number>;
  /** confusion[true][predicted] counts, in the model's class order. */
  confusion: number[][];
  names: string[];
  /** Number of samples evaluated. */
  n: number;
}

/** Metrics from class scores [N, C] (logits or probabilities) and true labels (model class indices). */
export function classifyMetrics(scores: Tensor, labels: ArrayLike<number>, names: string[]): ClassifyMetrics {
  const n = scores.size(0);
  const c = scores.size(1);
  if (labels.length !== n) throw new RangeError(`classifyMetrics: ${n} score rows but ${labels.length} labels`);
  const k = Math.min(5, c);
  const top = torch.scope(() => scores.topk(k, { dim: 1 }).indices.toBigInt64Array());
  const confusion = Array.from({ length: c }, () => new Array<number>(c).fill(0));
  let top1 = 0;
  let top5 = 0;
  for (let i = 0; i < n; i++) {
    const y = labels[i]!;
    const p = Number(top[i * k]!);
    confusion[y]![p]! += 1;
    if (p === y) top1++;
    for (let j = 0; j < k; j++) if (Number(top[i * k + j]!) === y) { top5++; break; }
  }
  const perClass: Record<string, number> = {};
  for (let y = 0; y < c; y++) {
    const total = confusion[y]!.reduce((a, b) => a + b, 0);
    if (total > 0) perClass[names[y] ?? String(y)] = confusion[y]![y]! / total;
  }
  return { top1: n ? top1 / n : 0, top5: n ? top5 / n : 0, perClass, confusion, names, n };
}

/** Evaluates a classifier on `ds[indices]` (eval mode, no grad). `labelToModel` maps data labels to model classes. */
export function evaluateClassifier(model: Classifier, ds: InMemoryDataset, indices: number[], o: { mean: number[]; std: number[]; names: string[]; labelToModel?: Int32Array; batch?: number }): ClassifyMetrics {
  const wasTraining = model.training;
  model.eval();
  try {
    return torch.scope(() => {
      const logits = embedIndices((x) => model.forward(x), ds, indices, o);
      const labels = Int32Array.from(indices, (i) => (o.labelToModel ? o.labelToModel[ds.labels[i]!]! : ds.labels[i]!));
      return classifyMetrics(logits, labels, o.names);
    });
  } finally {
    model.train(wasTraining);
  }
}

/** How a classifier checkpoint was made (stored in its metadata as `extra.classifier`). */
export interface ClassifierProvenance {
  mode: 'linear-probe' | 'finetune' | 'supervised';
  /** The checkpoint the backbone came from (probe / fine-tune). */
  from?: string;
  labelFraction: number;
  /** Labelled images trained on. */
  labels: number;
  data: string;
  [k: string]: unknown;
}

/** Writes a classifier checkpoint (`task: 'classifier'`, class names, config with mean/std/imageSize/channels), atomically. */
export function saveClassifier(file: string, model: Classifier, o: { config: Record<string, unknown> & ModelInputConfig; names: string[]; provenance: ClassifierProvenance; metrics?: Record<string, unknown> }): void {
  if (o.names.length !== model.numClasses) throw new RangeError(`saveClassifier: ${o.names.length} names for ${model.numClasses} classes`);
  const { epoch: _e, ...config } = o.config as Record<string, unknown>;
  saveCheckpoint(file, {
    model,
    meta: { task: 'classifier', config, epoch: 0, step: 0, names: o.names, metrics: o.metrics, extra: { classifier: o.provenance } },
  });
}
