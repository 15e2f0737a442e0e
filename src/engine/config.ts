/**
 * The training configuration: one object whose defaults work. Arguments merge right-most
 * wins (call > checkpoint/model > defaults). Defaults follow the SimCLR CIFAR-10 recipe
 * (Chen et al. 2020, Appendix B.9) scaled to a 2-core CPU: width-16 CIFAR-ResNet-18, batch 256,
 * SGD with lr 0.12 × batch/256 (= 0.06 × batch/128), momentum 0.9, wd 5e-4, cosine schedule.
 */
import type { CacheMode } from './data.js';
import { RESNET_STEMS, type ResNetStem } from '../models/resnet.js';
import { torchScriptFileIdentity, type BackboneSpec } from '../models/index.js';
import { check, mergeOptions } from './options.js';
import { SIMCLR_LOSSES, type SimCLRLossName } from '../methods/simclr.js';
import { SSL_METHODS, type SSLMethodName } from '../methods/index.js';
import { TRIPLET_MININGS, type TripletMining } from '../losses/triplet.js';

export type MethodName = SSLMethodName;
export type BackboneName = 'resnet18' | 'resnet34' | 'resnet50' | 'vit-tiny' | 'vit-small' | 'torchscript';
export type OptimizerName = 'sgd' | 'lars' | 'adamw';

export interface TrainConfig {
  method: MethodName;
  /** 'fashion-mnist', 'mnist' (needs dataRoot), or a folder of images. */
  data: string;
  dataRoot?: string;
  epochs: number;
  batch: number;
  backbone: BackboneName;
  /**
   * A TorchScript model (`torch.jit.trace(model, x).save('model.pt')`) as the encoder, its
   * output as the features (`--backbone-from`): sets `backbone` to 'torchscript'. Checkpoints keep
   * its absolute path and `backboneSha256`, and need the same file there to load.
   */
  backboneFrom: string;
  backboneSha256: string;
  /** Channels of the first ResNet stage (64 in the paper), or the ViT width. */
  width: number;
  /** Training resolution; defaults to 28 for (Fashion-)MNIST and 96 for folders. */
  imageSize: number;
  /** 'cifar' (3×3 stem, no max-pool) for images ≤ 64 px, else 'imagenet'. 'auto' picks by imageSize.
   *  'cifar-stride2' halves the resolution in the stem: ≈ 3.5× faster at 28 px (see ResNet). */
  stem: 'auto' | ResNetStem;
  channels: 1 | 3;
  /**
   * ResNet: what the backbone returns (`ResNetOptions.featureStages` / `featureGrid`): the last S
   * stages each average-pooled to G×G and concatenated. 1 / 1 (the default) is the global pool
   * of the last stage. The projection head, the kNN monitor and `embed` all see these features.
   */
  featureStages: number;
  featureGrid: number;
  optimizer: OptimizerName;
  /** Learning rate at batch 256; the run uses lr × batch / 256. */
  lr: number;
  momentum: number;
  weightDecay: number;
  warmupEpochs: number;
  temperature: number;
  /** MoCo: queue size (NNCLR: support-set size) and base EMA momentum (MoCo, BYOL, DINO). */
  memoryBankSize: number;
  emaMomentum: number;
  /** DINO: the teacher's temperature after a linear warm-up from 0.04 over `warmupTeacherEpochs` (`DINOLoss`); the student's is `temperature`. */
  teacherTemperature: number;
  warmupTeacherEpochs: number;
  /** Triplet: margin, mining ('batch-hard', 'batch-all', 'semi-hard'), and K of the P×K batches (P = batch / K). */
  margin: number;
  mining: TripletMining;
  samplesPerClass: number;
  /**
   * SimCLR: encode both views in one batch of 2N (batch-norm statistics over both, as the paper's
   * TF code) or each view in its own batch of N (as lightly's examples and the PyTorch reference
   * of the benchmark do).
   */
  concatViews: boolean;
  /**
   * SimCLR: projection-head depth, 2 (SimCLR v1, Linear → BN → ReLU → Linear) or 3 (SimCLR v2,
   * Chen et al. 2020b §2; the default: +0.6 kNN points after 10 Fashion-MNIST epochs, BENCHMARKS.md).
   */
  headLayers: 2 | 3;
  /** SimCLR: 'ntxent' (default), or the decoupled 'dcl' / 'dclw' (Yeh et al. 2022; `DCLLoss`). */
  loss: SimCLRLossName;
  /** Augmentation: smallest crop scale, colour-jitter strength, blur probability. */
  minScale: number;
  /**
   * SimCLR multi-crop (SwAV, Caron et al. 2020 §3.2): small views per image besides the two
   * global ones (0 = none, the default), their side (0 = imageSize / 2) and crop-area range.
   */
  localViews: number;
  localSize: number;
  localMinScale: number;
  localMaxScale: number;
  cjStrength: number;
  blur: number;
  seed: number;
  /** Run folder: metrics.jsonl, results.csv, config.json, last/best.safetensors. */
  out: string;
  /** Run the kNN monitor every N epochs (0 = never). */
  knnEvery: number;
  knnK: number;
  knnTemperature: number;
  /**
   * Cap on the kNN monitor's bank (training images embedded, evenly spaced), to bound its cost;
   * 0 = all of them (the default, so the monitor that picks `best` agrees with `dyad knn`).
   * Each metrics row records the bank it used (`knn_bank`).
   */
  knnBankSize: number;
  threads: number;
  /** Stop after this many steps per epoch (tests, quick looks); 0 = whole epochs. */
  maxStepsPerEpoch: number;
  /** Channels-last memory format for conv weights and inputs (oneDNN's preferred layout; 1.1× PyTorch's default on the train-step benchmark). */
  channelsLast: boolean;
  /**
   * A folder's training images: decoded once into memory (true), decoded batch by batch from the
   * files while training (false), or in memory when they fit in a quarter of the RAM ('auto',
   * the default). See `engine/data.ts`.
   */
  cache: CacheMode;
  /** Where the model and each batch live: 'cpu', 'cuda' or 'cuda:N' (CUDA needs a CUDA libtorch; README: Scale out). */
  device: string;
  /** Mixed precision: 'none', 'bf16' (autocast bfloat16, CPU or CUDA) or 'fp16' (autocast float16 with a GradScaler; CUDA only). */
  amp: AmpMode;
}
export type AmpMode = 'none' | 'bf16' | 'fp16';

export function defaultConfig(): TrainConfig {
  return {
    method: 'simclr', data: 'fashion-mnist', epochs: 10, batch: 256, backbone: 'resnet18', backboneFrom: '', backboneSha256: '', width: 16, imageSize: 0, stem: 'auto', channels: 1, featureStages: 1, featureGrid: 1,
    optimizer: 'sgd', lr: 0.12, momentum: 0.9, weightDecay: 5e-4, warmupEpochs: 0, temperature: 0.5,
    memoryBankSize: 4096, emaMomentum: 0.99, teacherTemperature: 0.04, warmupTeacherEpochs: 0, margin: 0.2, mining: 'batch-hard', samplesPerClass: 4, concatViews: true, headLayers: 3, loss: 'ntxent', minScale: 0.2, localViews: 0, localSize: 0, localMinScale: 0.05, localMaxScale: 0.2, cjStrength: 0.5, blur: 0, seed: 0, out: 'runs/train',
    knnEvery: 1, knnK: 200, knnTemperature: 0.1, knnBankSize: 0, threads: 0, maxStepsPerEpoch: 0, channelsLast: true, cache: 'auto',
    device: 'cpu', amp: 'none',
  };
}

/**
 * What a checkpoint written before an option existed was trained with (that option's default
 * then), so resuming or loading it rebuilds the same network after a default changes.
 */
const BEFORE_OPTION: Partial<TrainConfig> = { headLayers: 2 };

/** A checkpoint's saved training config, with the values older checkpoints imply for options they do not name. */
export function savedTrainConfig<T extends Record<string, unknown>>(saved: T): T & Partial<TrainConfig> {
  return { ...BEFORE_OPTION, ...saved };
}

/** The backbone a config describes (one translation, used by every trainer and checkpoint loader). */
export function backboneSpec(c: Pick<TrainConfig, 'backbone' | 'channels' | 'imageSize' | 'width' | 'stem'> & { featureStages?: number; featureGrid?: number } &
  { backboneFrom?: string; backboneSha256?: string; featureDim?: number }): BackboneSpec {
  if (c.backbone === 'torchscript') {
    return { name: 'torchscript', inChannels: c.channels, imageSize: c.imageSize, file: c.backboneFrom || undefined, sha256: c.backboneSha256 || undefined,
      featureDim: c.featureDim, featureStages: c.featureStages, featureGrid: c.featureGrid };
  }
  return { name: c.backbone, inChannels: c.channels, imageSize: c.imageSize, width: c.width, stem: c.stem === 'auto' ? undefined : c.stem,
    featureStages: c.featureStages, featureGrid: c.featureGrid };
}

/**
 * Per-method defaults that differ from SimCLR's: τ 0.1 for NNCLR and SupCon (and DINO's student,
 * the papers'), DINO's two local views (multi-crop); VICReg and Barlow Twins with their papers'
 * optimizer, LARS (lr 0.3, wd 1e-6, a 1-epoch linear warm-up), and the autoencoder with SGD at lr
 * 0.01. Barlow Twins with SGD did not diverge but learned little: after one epoch at batch 256 its kNN
 * was 67.45% at lr 0.12, 52.28% at 0.03 and 56.96% at 0.01, against 75.22% with LARS. With SGD at batch 256
 * on Fashion-MNIST, VICReg at 0.03 and the autoencoder at the shared 0.12 became NaN within 8 steps,
 * and VICReg at 0.01 after a warm-up still did once the warm-up ended: VICReg's loss (weights
 * 25/25/1, its covariance term growing as the 4th power of the embedding's scale) is not
 * scale-invariant, and LARS's per-layer trust ratio bounds each step relative to the weights; the
 * autoencoder's MSE regression has no bounded gradient as a softmax has. The screens are in
 * BENCHMARKS.md ("methods"); test/methods_stability.test.ts keeps all three from diverging.
 */
export const METHOD_DEFAULTS: Partial<Record<MethodName, Partial<TrainConfig>>> = {
  nnclr: { temperature: 0.1 }, supcon: { temperature: 0.1 }, dino: { temperature: 0.1, localViews: 2 }, vicreg: { optimizer: 'lars', lr: 0.3, weightDecay: 1e-6, warmupEpochs: 1 },
  barlow: { optimizer: 'lars', lr: 0.3, weightDecay: 1e-6, warmupEpochs: 1 }, autoencoder: { lr: 0.01 },
};

/** Merges option objects (right-most wins; see `mergeOptions`) over the defaults of the method they name, then validates the result with a clear message. */
/** Throws unless `device` is 'cpu', 'cuda' or 'cuda:N' (the trainer's device names). */
export function checkDeviceName(device: unknown): void {
  if (!/^(cpu|cuda(:\d+)?)$/.test(String(device))) throw new RangeError(`device must be 'cpu', 'cuda' or 'cuda:N', got '${String(device)}'`);
}

export function resolveConfig(...parts: Partial<TrainConfig>[]): TrainConfig {
  const method = [...parts].reverse().find((p) => p?.method !== undefined)?.method;
  // a TorchScript encoder takes colour images unless told otherwise (torchvision's models do)
  const fromPt = parts.some((p) => p?.backboneFrom) ? { channels: 3 as const } : undefined;
  return validateTrainConfig(mergeOptions('training', defaultConfig(), [method ? METHOD_DEFAULTS[method] : undefined, fromPt, ...parts], { extraKeys: ['dataRoot'] }));
}

/** Checks a merged training config (and turns CLI/JSON strings for `cache` into booleans). */
export function validateTrainConfig(c: TrainConfig): TrainConfig {
  const oneOf = (k: keyof TrainConfig, vals: readonly string[]): void => check.oneOf(k, c[k], vals);
  oneOf('method', SSL_METHODS);
  oneOf('mining', TRIPLET_MININGS);
  if (c.backboneFrom) {
    c.backbone = 'torchscript';
    // a checkpoint's config keeps its file and hash: building the backbone checks them (a missing or changed file is named there)
    if (!c.backboneSha256) ({ file: c.backboneFrom, sha256: c.backboneSha256 } = torchScriptFileIdentity(c.backboneFrom));
  } else if (c.backbone === 'torchscript') {
    throw new RangeError("backbone 'torchscript' needs the model file: pass --backbone-from model.pt (backboneFrom)");
  }
  oneOf('backbone', ['resnet18', 'resnet34', 'resnet50', 'vit-tiny', 'vit-small', 'torchscript']);
  oneOf('optimizer', ['sgd', 'lars', 'adamw']);
  oneOf('stem', ['auto', ...RESNET_STEMS]);
  oneOf('cache', ['true', 'false', 'auto']);
  oneOf('loss', SIMCLR_LOSSES);
  oneOf('amp', ['none', 'bf16', 'fp16']);
  if (c.amp === 'fp16' && c.device === 'cpu') throw new RangeError("amp 'fp16' (--amp fp16) needs --device cuda: libtorch's CPU autocast runs bfloat16; use --amp bf16 on the CPU");
  checkDeviceName(c.device);
  if (c.loss !== 'ntxent' && c.method !== 'simclr') throw new RangeError(`loss '${c.loss}' is a SimCLR option; ${c.method} uses NT-Xent with its queue`);
  if (typeof c.cache === 'string' && c.cache !== 'auto') c.cache = c.cache === 'true'; // from a CLI flag or JSON
  const positiveInt = (k: keyof TrainConfig, min = 1): void => check.int(k, c[k], min);
  positiveInt('epochs');
  positiveInt('batch', 2);
  positiveInt('width', c.backbone === 'torchscript' ? 0 : 1);
  positiveInt('knnEvery', 0);
  positiveInt('knnBankSize', 0);
  positiveInt('maxStepsPerEpoch', 0);
  check.positive('lr', c.lr);
  check.positive('temperature', c.temperature);
  if (c.headLayers !== 2 && c.headLayers !== 3) throw new RangeError(`headLayers must be 2 or 3, got ${String(c.headLayers)}`);
  positiveInt('featureStages');
  positiveInt('featureGrid');
  positiveInt('localViews', 0);
  positiveInt('localSize', 0);
  if (c.localViews > 0 && c.method !== 'simclr' && c.method !== 'dino') throw new RangeError(`localViews (multi-crop) is a SimCLR option (and DINO's); ${c.method} trains on ${c.method === 'triplet' || c.method === 'autoencoder' ? 1 : 2} views`);
  check.positive('teacherTemperature', c.teacherTemperature);
  positiveInt('warmupTeacherEpochs', 0);
  if (!(c.margin >= 0)) throw new RangeError(`margin must be ≥ 0, got ${String(c.margin)}`);
  positiveInt('samplesPerClass', 2);
  if (c.method === 'triplet' && (c.batch % c.samplesPerClass !== 0 || c.batch / c.samplesPerClass < 2)) {
    throw new RangeError(`triplet: batch ${c.batch} must be a multiple of samplesPerClass ${c.samplesPerClass} with at least 2 classes per batch (P × K = batch)`);
  }
  if (!(c.localMinScale > 0 && c.localMinScale <= c.localMaxScale && c.localMaxScale <= 1)) {
    throw new RangeError(`localMinScale / localMaxScale must satisfy 0 < min ≤ max ≤ 1, got ${c.localMinScale} / ${c.localMaxScale}`);
  }
  if (c.channels !== 1 && c.channels !== 3) throw new RangeError(`channels must be 1 or 3, got ${String(c.channels)}`);
  return c;
}
