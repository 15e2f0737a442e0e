/**
 * Arguments of the `Model` methods and how they merge (with the engine's `mergeOptions`):
 * defaults < the checkpoint's config < the model's overrides (given to `Model.load` /
 * `new Model`) < the call's arguments; the right-most defined value wins, `undefined` never overrides. Unknown keys are errors that list
 * the known ones (a typo must not be silently ignored).
 */
import type { TrainConfig } from '../engine/config.js';
import { defaultConfig } from '../engine/config.js';
import { lenient, mergeOptions } from '../engine/options.js';

export interface PredictArgs {
  /** Images per forward pass (default 32). */
  batch: number;
  /** Also return L2-normalised embeddings (an embedder always does). */
  embed: boolean;
  /** Return an async iterator instead of an array (large inputs). */
  stream: boolean;
  /** URL sources: time limit per download in ms and largest size in bytes. */
  timeoutMs: number;
  maxBytes: number;
  /** libtorch threads (0: leave as is). */
  threads: number;
}

export const PREDICT_DEFAULTS: PredictArgs = { batch: 32, embed: false, stream: false, timeoutMs: 10_000, maxBytes: 50 * 1024 * 1024, threads: 0 };

export interface ValArgs {
  /** Labelled data: 'fashion-mnist', a folder with class subfolders, or a root with train/ and val/ (default: the data the model was trained on). */
  data: string;
  dataRoot?: string;
  batch: number;
  threads: number;
  /** Embedders are validated by kNN on their features: k, temperature, largest bank. */
  knnK: number;
  knnTemperature: number;
  knnBankSize: number;
  seed: number;
}

export const VAL_DEFAULTS: Omit<ValArgs, 'data'> = { batch: 256, threads: 0, knnK: 200, knnTemperature: 0.1, knnBankSize: 60_000, seed: 0 };

/** Linear probe and fine-tuning. */
export interface ClassifyArgs {
  data: string;
  dataRoot?: string;
  /** Fraction of the training labels to use, class-balanced and seeded (0.01, 0.1, 1, ...). Default 1. */
  labelFraction: number;
  seed: number;
  /** Where to write the classifier checkpoint (optional). */
  out?: string;
  threads: number;
  silent: boolean;
  // fine-tuning (the linear probe has its own sweep)
  epochs?: number;
  batch?: number;
  lr?: number;
  weightDecay?: number;
  backboneLrScale?: number;
  minSteps?: number;
  maxSteps?: number;
  minScale?: number;
  hflip?: number;
  labelSmoothing?: number;
  // linear probe
  lrs?: number[];
  weightDecays?: number[];
  valFraction?: number;
  probeEpochs?: number;
  /** ResNet feature pooling for the new classifier (`ResNetOptions`): the last N stages, each pooled to a G×G grid. Default 1 / 1. */
  featureStages?: number;
  featureGrid?: number;
}

export const CLASSIFY_DEFAULTS: Omit<ClassifyArgs, 'data'> = { labelFraction: 1, seed: 0, threads: 0, silent: false };

const CLASSIFY_KEYS = ['data', 'dataRoot', 'labelFraction', 'seed', 'out', 'threads', 'silent', 'epochs', 'batch', 'lr', 'weightDecay', 'backboneLrScale',
  'minSteps', 'maxSteps', 'minScale', 'hflip', 'labelSmoothing', 'lrs', 'weightDecays', 'valFraction', 'probeEpochs',
  'featureStages', 'featureGrid'];

/** `train()` takes the training config plus these. */
export interface TrainExtras {
  /** Supervised training from random initialisation (needs labelled data) instead of self-supervised. */
  supervised?: boolean;
  /** Supervised / fine-tuning: fraction of the labels to use. */
  labelFraction?: number;
  silent?: boolean;
  /** Fine-tuning knobs for supervised training (see `FitOptions`). */
  backboneLrScale?: number;
  minSteps?: number;
  maxSteps?: number;
  hflip?: number;
  labelSmoothing?: number;
}

export type TrainArgs = Partial<TrainConfig> & TrainExtras;

/** The `train()` arguments that are not training-config options. */
export const TRAIN_EXTRA_KEYS: readonly (keyof TrainExtras)[] = ['supervised', 'labelFraction', 'silent', 'backboneLrScale', 'minSteps', 'maxSteps', 'hflip', 'labelSmoothing'];

export const KNOWN_KEYS = {
  predict: Object.keys(PREDICT_DEFAULTS),
  val: ['data', ...Object.keys(VAL_DEFAULTS), 'dataRoot'],
  classify: CLASSIFY_KEYS,
  train: [...Object.keys(defaultConfig()), 'dataRoot', ...TRAIN_EXTRA_KEYS],
} as const;

/**
 * Merges option objects with `mergeOptions` (right-most defined value wins). Keys outside
 * `known` throw a TypeError naming the method and the known keys; `lenient` parts (checkpoint
 * configs, model overrides meant for other methods) are filtered to `known` silently.
 */
export function mergeArgs<T>(what: keyof typeof KNOWN_KEYS, parts: { args: object | undefined; lenient?: boolean }[]): T {
  return mergeOptions(what, {}, parts.map((p) => (p.lenient ? lenient(p.args) : p.args)), { extraKeys: KNOWN_KEYS[what] }) as T;
}

/** Splits merged `train()` arguments into the training config and the extras (`TRAIN_EXTRA_KEYS`). */
export function splitTrainArgs(merged: TrainArgs): { config: Partial<TrainConfig>; extras: TrainExtras } {
  const extras: Record<string, unknown> = {};
  const config: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(merged)) ((TRAIN_EXTRA_KEYS as readonly string[]).includes(k) ? extras : config)[k] = v;
  return { config: config as Partial<TrainConfig>, extras: extras as TrainExtras };
}
