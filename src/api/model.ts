/**
 * `Model`: the object users meet (Ultralytics' `YOLO` for classification, in TypeScript).
 *
 * ```ts
 * const model = await Model.load('runs/fmnist/best.safetensors');     // embedder or classifier
 * const [r] = await model.predict('shoe.jpg');                          // classifier
 * console.log(r.names[r.probs.top1], r.probs.top1conf);
 * const vectors = await model.embed(['a.jpg', 'b.png']);                // L2-normalised rows
 * const clf = await model.linearProbe({ data: 'fashion-mnist', labelFraction: 0.1 });
 * const metrics = await clf.val();                                       // top1, top5, per class, confusion
 * const clip = await Model.load('models/clip-vit-base-patch32');         // a CLIP: HF folder or dyad checkpoint
 * clip.setClasses(['cat', 'dog']);                                       // now a zero-shot classifier
 * ```
 *
 * Each method delegates to the class its task names in the task table (`TASKS`): a trainer, a
 * predictor or a validator. Arguments merge right-most wins: defaults < the checkpoint's config
 * < the model's overrides (`Model.load(w, overrides)`) < the call's arguments.
 */
import { randomUUID } from 'node:crypto';
import * as torch from '../torch/index.js';
import { fileSha256 } from '../torch/io.js';
import type { Embedder } from '../search/embedder.js';
import { loadLabelledData } from '../engine/classify.js';
import { linearProbe as runLinearProbe } from '../engine/probe.js';
import { finetune as runFinetune } from '../engine/finetune.js';
import { DataError } from '../data/errors.js';
import {
  CLASSIFY_DEFAULTS, KNOWN_KEYS, PREDICT_DEFAULTS, VAL_DEFAULTS, mergeArgs, splitTrainArgs,
  type ClassifyArgs, type PredictArgs, type TrainArgs, type ValArgs,
} from './args.js';
import { Net, loadNet, type NetConfig, type Task } from './net.js';
import { TaskError, type Results } from './results.js';
import { embedderHint } from './predictor.js';
import { clipHint } from './clip.js';
import type { Source } from '../data/sources.js';
import { TASKS } from './tasks.js';
import { freshRunDir, type TrainOutcome } from './trainer.js';
import type { ValMetrics } from './validator.js';
import { writeFileAtomic } from '../torch/io.js';
import { localOrHub } from '../hub/index.js';
import { StateDictError, isTorchScriptFile } from '../nn/index.js';
import { CheckpointError } from '../engine/checkpoint.js';
import { loadTorchvisionClassifier } from '../export/pytorch.js';
import { loadTorchScriptParts, type TorchScriptLoadOptions } from './torchscript.js';
import { exportNetOnnx } from '../export/onnx/net.js';
import { exportClipOnnx } from '../export/onnx/clip.js';
import { ExportError } from '../export/onnx/graph.js';
import { exportClipFolder, type ClipOnnxFiles } from './clip_export.js';
import type { TorchvisionArch } from '../models/torchvision.js';

/**
 * `Model.load` options beyond the model's overrides: a Hub revision; a torchvision state dict's
 * (`.pth`, `.pt`) architecture and class names; a TorchScript model's input size, statistics,
 * output size and class names (`TorchScriptLoadOptions`; `channels` is the override's).
 */
export interface LoadOptions extends Omit<TorchScriptLoadOptions, 'channels'> {
  /** A Hub id's revision (branch, tag or commit), as `hf://org/name@revision` does. */
  revision?: string;
  /** torchvision architecture (default 'resnet18'). */
  arch?: TorchvisionArch;
  /** Class names of the checkpoint's head (default '0', '1', ...). */
  names?: string[];
}

/** `model.export` arguments (Ultralytics' names where they exist). */
export interface ExportArgs {
  /** 'onnx' (the default and the only format). */
  format?: 'onnx';
  /** Output file (a folder for CLIP); default: the weights path with .onnx. */
  out?: string;
  opset?: number;
  /** A symbolic batch axis (default true). */
  dynamicBatch?: boolean;
  /** float16 weights and compute (outputs within ~1e-2). */
  half?: boolean;
  /** Image side of the exported input (default: the checkpoint's). */
  imgsz?: number;
}

/** A torchvision classifier checkpoint as a dyad classifier network. */
function loadTorchvisionNet(file: string, o: LoadOptions): Net {
  let r: ReturnType<typeof loadTorchvisionClassifier>;
  try {
    r = loadTorchvisionClassifier(file, o.arch ?? 'resnet18', { names: o.names });
  } catch (e) {
    if (!(e instanceof StateDictError)) throw e;
    throw new CheckpointError(`${file} is not a torchvision ${o.arch ?? 'resnet18'} state dict (${e.message.split('\n').slice(1).map((l) => l.trim()).filter((l) => !l.startsWith('(pass')).join(' ')}). ` +
      "Pass its architecture ({ arch: 'resnet34' }), or export any other model as TorchScript (torch.jit.trace(model, x).save('model.pt')) and Model.load that", { cause: e });
  }
  return new Net('classifier', r.classifier, r.config as NetConfig, r.names, file);
}

/** Options a model keeps for all its calls (any method's arguments). */
export type ModelOverrides = Partial<PredictArgs & ValArgs & ClassifyArgs & TrainArgs>;

const ALL_KEYS = new Set<string>(Object.values(KNOWN_KEYS).flat());

/** A new classifier's feature pooling: the call's, else the source network's (absent: the backbone's default, global). */
function poolingOf(net: Net, a: ClassifyArgs): Pick<ClassifyArgs, 'featureStages' | 'featureGrid'> {
  return { featureStages: a.featureStages ?? net.config.featureStages, featureGrid: a.featureGrid ?? net.config.featureGrid };
}

export class Model implements Embedder {
  #net: Net | null;
  #task: Task;
  #identity: string | null = null;
  /** Options given to the constructor / `load`, applied to every call (below the call's own). */
  readonly overrides: ModelOverrides;
  /** Metrics of the run that made this model (probe, fine-tune, training), when known. */
  metrics: Record<string, unknown> | null = null;

  /** An untrained model: `train()` builds and trains it (self-supervised unless `supervised: true`). */
  constructor(overrides: ModelOverrides = {}) {
    for (const k of Object.keys(overrides)) {
      if (!ALL_KEYS.has(k)) throw new TypeError(`unknown Model option '${k}'. Known options: ${[...ALL_KEYS].sort().join(', ')}`);
    }
    this.overrides = { ...overrides };
    this.#net = null;
    this.#task = 'embedder';
  }

  /**
   * Loads a dyad checkpoint: a self-supervised run's `best.safetensors` (an embedder), a
   * classifier from `linearProbe` / `finetune` / supervised training, or a CLIP (a Hugging Face
   * CLIP folder, or a `dyad train --method clip` checkpoint: task 'clip', see `setClasses`), a
   * torchvision state dict (`resnet18.pth`, `{ arch }`), a TorchScript model (`model.pt` from
   * `torch.jit.trace`: an embedder, or a classifier when it has class names, see `./torchscript.ts`;
   * `{ imgsz, mean, std, featureDim, names }`), or any of these on the Hugging Face Hub
   * (`hf://org/name[@revision]`, fetched once into the HF cache; nothing downloads otherwise).
   * @throws CheckpointError for a missing or damaged file, or weights that do not fit its config.
   */
  static async load(weights: string, overrides: ModelOverrides & LoadOptions = {}): Promise<Model> {
    const { arch, names, revision, imgsz, mean, std, featureDim, ...rest } = overrides;
    const m = new Model(rest);
    const file = await localOrHub(weights, { revision });
    if (isTorchScriptFile(file)) {
      const p = loadTorchScriptParts(file, { imgsz: imgsz ?? rest.imageSize, channels: rest.channels, mean, std, featureDim, names });
      m.#setNet(new Net(p.task, p.module, p.config, p.names, file));
    } else {
      m.#setNet(/\.(pth|pt|bin)$/i.test(file) ? loadTorchvisionNet(file, { arch, names }) : loadNet(file));
    }
    return m;
  }

  /** Wraps a loaded network (used by the probe and fine-tuning, and by tests). */
  static fromNet(net: Net, overrides: ModelOverrides = {}): Model {
    const m = new Model(overrides);
    m.#setNet(net);
    return m;
  }

  #setNet(net: Net): void {
    this.#net?.dispose();
    this.#net = net;
    this.#task = net.task;
    this.#identity = null;
    if (net.meta.metrics) this.metrics = { ...net.meta.metrics };
  }

  #requireNet(what: string): Net {
    if (this.#net === null) throw new Error(`${what}: this Model has no weights yet. Load a checkpoint (await Model.load('runs/x/best.safetensors')) or train it first (await model.train({ data }))`);
    return this.#net;
  }

  /** 'embedder' (self-supervised: embeddings), 'classifier' (class probabilities and embeddings) or 'clip' (embeddings; probabilities after `setClasses`). */
  get task(): Task {
    return this.#task;
  }

  /** Class names (a classifier's classes; an embedder's training-data classes, if any; a CLIP's `setClasses` labels). */
  get names(): string[] {
    return this.#net?.names ?? [];
  }

  /** The checkpoint config: backbone, imageSize, channels, mean, std, training options. */
  get config(): NetConfig | null {
    return this.#net?.config ?? null;
  }

  /** The checkpoint file this model was loaded from or saved to. */
  get weights(): string | null {
    return this.#net?.weights ?? null;
  }

  /** Length of the embeddings (the backbone's feature size). */
  get dim(): number {
    return this.#requireNet('dim').featureDim;
  }

  /** Names the exact weights (sha256 of the checkpoint file; a CLIP's as `CLIPModel.identity`): what the search index records. */
  get identity(): string {
    if (this.#identity === null) {
      const net = this.#requireNet('identity');
      this.#identity = net.clip ? net.clip.identity : net.weights ? `dyad:${fileSha256(net.weights)}` : `dyad:unsaved:${randomUUID()}`;
    }
    return this.#identity;
  }

  /** The underlying network (module, config, names). */
  get net(): Net | null {
    return this.#net;
  }

  /**
   * Makes a CLIP model a zero-shot classifier over `labels` (Radford et al. 2021, §3.1): each
   * label's prompts (`templates`, '{}' for the label; default ['a photo of a {}.'],
   * `IMAGENET_TEMPLATES` for the paper's 80) are embedded, averaged and normalised; `predict`
   * then gives `Results` with `names` = labels and `probs` = softmax(exp(t) · cos(image, class)),
   * `val` the zero-shot accuracy, and `save` keeps the classes. Returns this model.
   * @throws TaskError for a model that is not a CLIP (its classes come from training).
   */
  setClasses(labels: readonly string[], o: { templates?: readonly string[] } = {}): this {
    const net = this.#requireNet('setClasses');
    if (!net.clip) {
      throw new TaskError(`setClasses names the classes of a CLIP model (zero-shot); ${net.weights ?? 'this model'} is a dyad ${net.task}, whose classes come from training: ` +
        'make a classifier with model.linearProbe({ data }) or model.finetune({ data }) on images in one subfolder per class');
    }
    net.setClasses(labels, o.templates);
    return this;
  }

  #predictArgs(args: Partial<PredictArgs>): PredictArgs {
    const a = mergeArgs<PredictArgs>('predict', [{ args: PREDICT_DEFAULTS }, { args: this.overrides, lenient: true }, { args }]);
    if (!Number.isInteger(a.batch) || a.batch < 1) throw new RangeError(`batch must be a positive integer, got ${String(a.batch)}`);
    if (a.threads > 0) torch.setNumThreads(a.threads);
    return a;
  }

  #predictor(args: PredictArgs) {
    const net = this.#requireNet('predict');
    return new TASKS[net.task].predictor(net, args);
  }

  /**
   * Runs the model on images: a path, folder, glob, URL, Buffer/Uint8Array, Tensor, or an array
   * of these. Returns one `Results` per image, in order; with `stream: true`, an async iterator
   * that yields them batch by batch (for large inputs).
   */
  predict(source: Source, args: Partial<PredictArgs> & { stream: true }): AsyncGenerator<Results>;
  predict(source: Source, args?: Partial<PredictArgs> & { stream?: false }): Promise<Results[]>;
  predict(source: Source, args: Partial<PredictArgs> = {}): Promise<Results[]> | AsyncGenerator<Results> {
    if (args.stream) return this.#predictor(this.#predictArgs(args)).stream(source);
    return (async () => {
      const out: Results[] = [];
      for await (const r of this.#predictor(this.#predictArgs(args)).stream(source)) out.push(r);
      return out;
    })();
  }

  /** L2-normalised float32 embeddings, one row per image, in order. */
  async embed(source: Source, args: Partial<Omit<PredictArgs, 'stream' | 'embed'>> = {}): Promise<Float32Array[]> {
    const rs = await this.predict(source, { ...args, embed: true, stream: false });
    return rs.map((r) => r.embedding!);
  }

  /** The search index's `Embedder` interface. */
  async embedImages(paths: string[]): Promise<Float32Array[]> {
    return paths.length === 0 ? [] : this.embed(paths);
  }

  /**
   * Trains: self-supervised (an embedder, or a new `Model`), fine-tuning (a classifier, on
   * labelled data with its classes), or supervised from random initialisation (`supervised: true`).
   * The model then holds the result (`<out>/best.safetensors`).
   */
  async train(args: TrainArgs = {}): Promise<TrainOutcome> {
    const net = this.#net;
    // a checkpoint passes on its architecture and data; its training recipe only to the same kind of training
    const keep = args.supervised ?? this.overrides.supervised
      ? (k: string): boolean => ['backbone', 'width', 'stem', 'channels', 'imageSize', 'data', 'dataRoot', 'seed', 'threads', 'channelsLast'].includes(k)
      : (k: string): boolean => k !== 'out' && k !== 'mean' && k !== 'std';
    const fromCkpt = net ? Object.fromEntries(Object.entries(net.config).filter(([k]) => keep(k))) : undefined;
    const merged = mergeArgs<TrainArgs>('train', [{ args: fromCkpt, lenient: true }, { args: this.overrides, lenient: true }, { args }]);
    const explicitOut = args.out ?? this.overrides.out;
    const { config, extras } = splitTrainArgs(merged);
    config.out = explicitOut ?? freshRunDir();
    const task: Task = extras.supervised ? 'classifier' : this.#task;
    const trainer = new TASKS[task].trainer(net, config, extras);
    const { net: trained, outcome } = await trainer.run();
    this.#setNet(trained);
    this.metrics = (outcome.metrics ?? { epochs: outcome.epochs }) as Record<string, unknown>;
    return outcome;
  }

  /** Accuracy on labelled data (default: the data the model was trained on): top1, top5, per-class accuracy, confusion matrix. */
  async val(args: Partial<ValArgs> = {}): Promise<ValMetrics> {
    const net = this.#requireNet('val');
    const a = mergeArgs<ValArgs>('val', [{ args: VAL_DEFAULTS }, { args: { data: net.config.data, dataRoot: net.config.dataRoot }, lenient: true },
      { args: this.overrides, lenient: true }, { args }]);
    if (!a.data) throw new DataError('val: pass data (a labelled folder or fashion-mnist)');
    if (a.threads > 0) torch.setNumThreads(a.threads);
    return new TASKS[net.task].validator(net, a).run();
  }

  #classifyArgs(args: Partial<ClassifyArgs>, what: string): ClassifyArgs {
    const a = mergeArgs<ClassifyArgs>('classify', [{ args: CLASSIFY_DEFAULTS }, { args: this.overrides, lenient: true }, { args }]);
    if (!a.data) throw new DataError(`${what}: pass data, labelled images (a folder with one subfolder per class, or fashion-mnist)`);
    if (a.threads > 0) torch.setNumThreads(a.threads);
    torch.manualSeed(a.seed);
    return a;
  }

  #classifierModel(net: Net, a: ClassifyArgs, mode: 'linear-probe' | 'finetune', r: { model: Net['module']; names: string[]; metrics: Record<string, unknown> & { labels: number; top1: number; top5: number; n: number; split: string } }): Model {
    const config = { ...net.config, data: a.data, dataRoot: a.dataRoot, ...poolingOf(net, a) } as NetConfig;
    const provenance = { mode, from: net.weights ?? undefined, labelFraction: a.labelFraction, labels: r.metrics.labels, data: a.data };
    const summary = { top1: r.metrics.top1, top5: r.metrics.top5, split: r.metrics.split, n: r.metrics.n };
    const clf = new Net('classifier', r.model, config, r.names, null, { task: 'classifier', names: r.names, metrics: summary, extra: { classifier: provenance } });
    if (a.out) clf.save(a.out);
    const m = Model.fromNet(clf, this.overrides);
    m.metrics = r.metrics;
    return m;
  }

  /**
   * Linear probe: freezes the backbone, computes features once, trains a linear classifier on a
   * class-balanced `labelFraction` of the labels of `data` (a small lr/wd sweep on a validation
   * split), and returns it as a classifier `Model` (saved to `out` when given). `metrics` holds
   * its accuracy on the test/val split.
   */
  async linearProbe(args: Partial<ClassifyArgs> & { data: string }): Promise<Model> {
    const net = this.#requireNet('linearProbe');
    const a = this.#classifyArgs(args, 'linearProbe');
    const { imageSize, channels, mean, std } = net.config;
    const data = await loadLabelledData({ data: a.data, dataRoot: a.dataRoot, imageSize, channels, seed: a.seed });
    try {
      const r = await runLinearProbe(net.copyBackbone(poolingOf(net, a)), data, { mean, std }, {
        labelFraction: a.labelFraction, seed: a.seed, lrs: a.lrs, weightDecays: a.weightDecays, valFraction: a.valFraction, epochs: a.probeEpochs,
        featureBatch: a.batch, silent: a.silent,
      });
      return this.#classifierModel(net, a, 'linear-probe', r as never);
    } finally {
      data.dispose();
    }
  }

  /**
   * Fine-tuning: the whole network (backbone at a lower lr) plus a new linear head, on a
   * class-balanced `labelFraction` of the labels of `data`. Returns a classifier `Model`
   * (saved to `out` when given); `metrics` holds its accuracy on the test/val split.
   */
  async finetune(args: Partial<ClassifyArgs> & { data: string }): Promise<Model> {
    const net = this.#requireNet('finetune');
    const a = this.#classifyArgs(args, 'finetune');
    const { imageSize, channels, mean, std } = net.config;
    const data = await loadLabelledData({ data: a.data, dataRoot: a.dataRoot, imageSize, channels, seed: a.seed });
    try {
      const r = await runFinetune(net.copyBackbone(poolingOf(net, a)), data, { mean, std }, {
        labelFraction: a.labelFraction, seed: a.seed, epochs: a.epochs, batch: a.batch, lr: a.lr, weightDecay: a.weightDecay,
        backboneLrScale: a.backboneLrScale, minSteps: a.minSteps, maxSteps: a.maxSteps, minScale: a.minScale, hflip: a.hflip,
        labelSmoothing: a.labelSmoothing, silent: a.silent, channelsLast: net.config.channelsLast as boolean | undefined,
      });
      return this.#classifierModel(net, a, 'finetune', r as never);
    } finally {
      data.dispose();
    }
  }

  /**
   * Exports the model for deployment without libtorch (Ultralytics' `model.export`): ONNX
   * (opset 17, dynamic batch). A classifier gives probabilities, an embedder its features, a CLIP
   * two files (`vision_model.onnx`, `text_model.onnx`) in a folder. Preprocessing (mean, std,
   * image size) and class names go in the file's metadata. Returns the path(s) written.
   */
  export(args: ExportArgs = {}): string[] {
    const net = this.#requireNet('export');
    const format = args.format ?? 'onnx';
    if (format !== 'onnx') throw new TypeError(`export: format must be 'onnx' (the only one dyad writes), got '${String(format)}'`);
    if (net.config.backbone === 'torchscript') {
      throw new ExportError(`${net.weights ?? 'this model'} runs a TorchScript model (${String(net.config.backboneFrom)}), whose graph dyad does not lower to ONNX: ` +
        'export the TorchScript model with torch.onnx.export in PyTorch');
    }
    const o = { opset: args.opset, dynamicBatch: args.dynamicBatch ?? true, half: args.half ?? false };
    const base = (net.weights ?? 'model').replace(/[/\\]+$/, '').replace(/\.(safetensors|pth|pt|bin)$/i, '');
    if (net.clip) {
      const r = exportClipOnnx(net.clip, args.out ?? `${base}-onnx`, o);
      return [r.vision, r.text];
    }
    const out = args.out ?? `${base}.onnx`;
    writeFileAtomic(out, exportNetOnnx(net, { ...o, ...(args.imgsz !== undefined && { imgsz: args.imgsz }) }));
    return [out];
  }

  /**
   * CLIP: a folder that runs without libtorch (`./clip_export.ts`): `vision_model.onnx`,
   * `text_model.onnx`, the tokenizer files and `clip_onnx.json` (preprocessing, tokenizer ids,
   * logit scale, and the `setClasses` labels and templates). Returns the paths written.
   */
  exportOnnx(dir: string, o: { opset?: number; dynamicBatch?: boolean; half?: boolean; normalize?: boolean } = {}): ClipOnnxFiles {
    const net = this.#requireNet('exportOnnx');
    if (!net.clip) throw new TypeError(`exportOnnx(dir) writes a CLIP's two towers; ${net.weights ?? 'this model'} is a dyad ${net.task}: use model.export({ format: 'onnx' })`);
    return exportClipFolder(net.clip, dir, { ...o, classes: net.names, templates: net.templates });
  }

  /** Writes this model as a dyad checkpoint (atomically) and remembers the file. */
  save(file: string): void {
    this.#requireNet('save').save(file);
    this.#identity = null;
  }

  /** Frees the network's tensors. */
  dispose(): void {
    this.#net?.dispose();
    this.#net = null;
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  /** Throws the "no probabilities" error unless this model gives them (a classifier, a CLIP with classes), for callers that need probs up front. */
  requireClassifier(): void {
    if (this.#task === 'clip' && this.#net!.classEmbeds === null) throw new TaskError(clipHint(this.#net!.weights));
    if (this.#task !== 'classifier' && this.#task !== 'clip') throw new TaskError(embedderHint(this.#net?.weights ?? null));
  }
}
