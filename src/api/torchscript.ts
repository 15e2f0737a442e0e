/**
 * TorchScript models in `Model.load('model.pt')`: a `torch.jit.trace` / `torch.jit.script`
 * export loaded with libtorch's `torch::jit::load` (`nn.ScriptModule`) as a dyad backbone
 * (kind 'torchscript', `models/torchscript.ts`), so it embeds, predicts, probes, fine-tunes and
 * trains (`dyad train --backbone-from model.pt`) like dyad's own backbones.
 *
 * - Input: `imgsz`² images (default 224) with `channels` (default 3), normalised with ImageNet's
 *   mean/std (torchvision's convention) unless `mean` / `std` say otherwise.
 * - Features: the TorchScript output [N, D]; D is found by one forward of a zero image, or given
 *   (`featureDim`).
 * - Class names: `{ names }`, else a sidecar next to the file: `model.pt.json` (`{ "names": [...] }`
 *   or `{ "names": { "0": "cat", ... } }`, Ultralytics' form; it may also give `imgsz`, `mean`,
 *   `std`, `channels`) or `classes.txt` (one name a line). When the output has as many values as
 *   there are names, the model is a classifier (its output is the logits; `predict` gives their
 *   softmax), otherwise an embedder.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import { TorchScriptError } from '../nn/index.js';
import { SelfSupervisedMethod, type Backbone } from '../methods/index.js';
import { Classifier } from '../models/classifier.js';
import { loadTorchScriptBackbone, torchScriptFileIdentity } from '../models/torchscript.js';
import { IMAGENET_STATS, checkStats } from '../transforms/index.js';
import type { NetConfig } from './net.js';

/** `Model.load` options for a TorchScript file. */
export interface TorchScriptLoadOptions {
  /** Side of the model's square input (default: the sidecar's, else 224). */
  imgsz?: number;
  /** Input channels (default 3). */
  channels?: 1 | 3;
  /** Per-channel normalisation (default ImageNet's, as torchvision). */
  mean?: number[];
  std?: number[];
  /** The output size (default: found by a forward of a zero image). */
  featureDim?: number;
  /** Class names (default: the sidecar's); a model whose output has this many values is a classifier. */
  names?: string[];
}

/**
 * A backbone alone as an embedder (task 'embedder'): what `Model.load` makes of a TorchScript
 * model that is not a classifier. It has no training objective of its own: `model.train()`
 * trains a method (SimCLR by default) on top of it, `finetune` / `linearProbe` a classifier.
 */
export class BackboneEmbedder extends SelfSupervisedMethod {
  readonly methodName = 'backbone';
  backbone: Backbone;

  constructor(backbone: Backbone) {
    super();
    this.backbone = backbone;
  }

  trainingStep(): Tensor {
    throw new TypeError('a loaded TorchScript backbone has no training objective of its own: train a method on it (model.train({ data }) or dyad train --backbone-from model.pt)');
  }
}

/** The sidecar next to `file`: `<file>.json` or `classes.txt`. */
function sidecar(file: string): TorchScriptLoadOptions {
  const json = `${file}.json`;
  if (existsSync(json)) {
    let raw: Record<string, unknown>;
    try {
      raw = JSON.parse(readFileSync(json, 'utf8')) as Record<string, unknown>;
    } catch (e) {
      throw new TorchScriptError(`${json} is not valid JSON (${(e as Error).message}); it should hold { "names": ["cat", "dog"], "imgsz": 224 } or be removed`);
    }
    const names = raw.names;
    const o: TorchScriptLoadOptions = {};
    if (Array.isArray(names)) o.names = names.map(String);
    else if (names !== null && typeof names === 'object') {
      const entries = Object.entries(names as Record<string, unknown>).sort(([a], [b]) => Number(a) - Number(b));
      if (!entries.every(([k], i) => Number(k) === i)) throw new TorchScriptError(`${json}: "names" as an object must have the keys 0, 1, 2, ... (Ultralytics' form)`);
      o.names = entries.map(([, v]) => String(v));
    } else if (names !== undefined) throw new TorchScriptError(`${json}: "names" must be a list of class names`);
    for (const k of ['imgsz', 'channels', 'featureDim'] as const) if (typeof raw[k] === 'number') (o as Record<string, unknown>)[k] = raw[k];
    for (const k of ['mean', 'std'] as const) if (Array.isArray(raw[k])) o[k] = (raw[k] as unknown[]).map(Number);
    if (o.names) return o;
    return { ...o, ...classesTxt(file) };
  }
  return classesTxt(file);
}

/** Names from `classes.txt` beside `file` (one a line), if there is one. */
function classesTxt(file: string): TorchScriptLoadOptions {
  const txt = path.join(path.dirname(file), 'classes.txt');
  return existsSync(txt) ? { names: readFileSync(txt, 'utf8').split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '') } : {};
}

/**
 * Loads a TorchScript file as the parts of a `Net` (see the module comment).
 * @throws TorchScriptError naming the file for a missing, non-TorchScript or damaged file, or a forward that fails on the input size.
 */
export function loadTorchScriptParts(file: string, opts: TorchScriptLoadOptions = {}): { task: 'embedder' | 'classifier'; module: BackboneEmbedder | Classifier; config: NetConfig; names: string[] } {
  const side = sidecar(file);
  const o = { ...side, ...Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)) } as TorchScriptLoadOptions;
  const imageSize = o.imgsz ?? 224;
  const channels = o.channels ?? 3;
  if (!Number.isInteger(imageSize) || imageSize < 1) throw new RangeError(`${file}: imgsz must be a positive integer, got ${String(imageSize)}`);
  if (channels !== 1 && channels !== 3) throw new RangeError(`${file}: channels must be 1 or 3, got ${String(channels)}`);
  const stats = { mean: o.mean ?? (channels === 3 ? IMAGENET_STATS.mean : [0.5]), std: o.std ?? (channels === 3 ? IMAGENET_STATS.std : [0.25]) };
  checkStats(stats, `${file}: mean/std`);
  const id = torchScriptFileIdentity(file, 'Model.load:');
  const sm = loadTorchScriptBackbone({ file: id.file, inChannels: channels, imageSize, featureDim: o.featureDim });
  const names = o.names ?? [];
  if (opts.names !== undefined && names.length !== sm.featureDim) {
    sm.dispose();
    throw new TorchScriptError(`${file}: ${names.length} class names for a model with ${sm.featureDim} outputs; pass one name per output, or no names to use it as an embedder`);
  }
  const config = {
    backbone: 'torchscript', backboneFrom: id.file, backboneSha256: id.sha256, featureDim: sm.featureDim, width: 0, stem: 'auto',
    imageSize, channels, mean: [...stats.mean], std: [...stats.std],
  } as NetConfig;
  if (names.length > 0 && names.length === sm.featureDim) {
    // the TorchScript output is the logits: an identity head keeps them exact (1·x + 0), and lets dyad's classifier code (fine-tuning, saving) work unchanged
    const clf = new Classifier(sm, names.length);
    torch.noGrad(() => {
      torch.scope(() => clf.head.weight.copy_(torch.eye(names.length)));
      clf.head.bias!.zero_();
    });
    return { task: 'classifier', module: clf, config, names };
  }
  return { task: 'embedder', module: new BackboneEmbedder(sm), config, names };
}
