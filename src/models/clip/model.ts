/**
 * `CLIPModel` (Radford et al. 2021, "Learning Transferable Visual Models From Natural Language
 * Supervision") with Hugging Face's parameter names, so that an HF checkpoint folder loads 1:1:
 *
 *   text_model.embeddings.{token,position}_embedding.weight, text_model.encoder.layers.N...,
 *   text_model.final_layer_norm, vision_model.embeddings.{class_embedding, patch_embedding.weight,
 *   position_embedding.weight}, vision_model.pre_layrnorm, vision_model.encoder.layers.N...,
 *   vision_model.post_layernorm, visual_projection.weight, text_projection.weight, logit_scale
 *
 * ```ts
 * const clip = CLIPModel.fromPretrained('models/clip-vit-base-patch32');
 * const text = clip.encodeText(['a photo of a cat', 'a photo of a dog']);   // [2, 512], L2-normalised
 * const w = zeroShotClassifier(clip, ['cat', 'dog']);                         // [2, 512] class embeddings
 * // images → Results: Model.load(dir), model.setClasses(['cat', 'dog']), model.predict('cat.jpg') (src/api/)
 * ```
 *
 * `fromPretrained(dir)` reads `config.json` (any size: a tiny test model to ViT-L/14 and up),
 * `model.safetensors` (or the shards of `model.safetensors.index.json`), the tokenizer
 * (`tokenizer.json`, or `vocab.json` + `merges.txt`; OpenAI's vocabulary shipped with dyad when
 * the folder has none) and `preprocessor_config.json` when present. The key check is strict
 * (missing and unexpected keys are errors, listed); the `position_ids` buffers that older
 * checkpoints carry are ignored. It also loads the `last/best.safetensors` of `dyad train
 * --method clip`.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import * as nn from '../../nn/index.js';
import * as torch from '../../torch/index.js';
import type { Tensor } from '../../torch/index.js';
import { loadFile, readHeader, saveFile } from '../../torch/safetensors.js';
import { localOrCachedHub, localOrHub, type SnapshotOptions } from '../../hub/index.js';
import { fileSha256, sha256, writeFileAtomic } from '../../torch/io.js';
import { VisionTransformer } from '../vit.js';
import { createBackbone, type BackboneSpec } from '../index.js';
import { CLIPTokenizer, CLIP_BPE_FILE, packageAssetDir } from './tokenizer.js';
import { CLIPTextTransformer } from './text.js';
import { CLIPImageProcessor } from './preprocess.js';
import {
  CLIPConfigError, parseCLIPConfig, parseProcessorConfig, toHFConfig, toHFProcessorConfig,
  type CLIPConfig, type CLIPImageProcessorConfig,
} from './config.js';
import { DyadError } from '../../errors.js';

const F = torch.functional;

/** An image tower: pixels [N, C, H, W] → features [N, featureDim]. */
export interface CLIPVisionTower extends nn.Module {
  readonly featureDim: number;
  forward(x: Tensor): Tensor;
}

export interface CLIPOutput {
  /** [N_images, N_texts]: exp(logit_scale) · cosine similarity. */
  logitsPerImage: Tensor;
  /** [N_texts, N_images]: the transpose of `logitsPerImage`. */
  logitsPerText: Tensor;
  /** L2-normalised projections. */
  imageEmbeds: Tensor;
  textEmbeds: Tensor;
}

export interface FromPretrainedOptions {
  /** Missing/unexpected keys are errors (default true). */
  strict?: boolean;
  /** A tokenizer to use instead of the folder's. */
  tokenizer?: CLIPTokenizer;
}

export interface CLIPModelOptions {
  tokenizer?: CLIPTokenizer;
  processor?: Partial<CLIPImageProcessorConfig>;
  /** Files the tokenizer came from (copied by `savePretrained`). */
  tokenizerFiles?: string[];
  /** An image tower to use instead of building one from the config (LiT: a dyad backbone). */
  visionModel?: CLIPVisionTower;
}

export class CLIPError extends DyadError<'CLIP'> {
  constructor(message: string, options?: { cause?: unknown }) {
    super('CLIP', message, options);
    this.name = 'CLIPError';
  }
}

let defaultTokenizer: CLIPTokenizer | null = null;
/** OpenAI's tokenizer, parsed once per process (it is stateless but for its word cache). */
function sharedDefaultTokenizer(): CLIPTokenizer {
  defaultTokenizer ??= CLIPTokenizer.default();
  return defaultTokenizer;
}

const isPositionIds = (k: string): boolean => k === 'position_ids' || k.endsWith('.position_ids');

function readJson(file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new CLIPConfigError(`cannot read ${file}: ${(e as Error).message}`);
  }
}

export class CLIPModel extends nn.Module {
  readonly config: CLIPConfig;
  text_model: CLIPTextTransformer;
  vision_model: CLIPVisionTower;
  visual_projection: nn.Linear;
  text_projection: nn.Linear;
  logit_scale: nn.Parameter;
  /** BPE tokenizer of the text tower (OpenAI's vocabulary unless the checkpoint brings one). */
  tokenizer: CLIPTokenizer;
  /** Image preprocessing (CLIP's, or the checkpoint's `preprocessor_config.json`). */
  processor: CLIPImageProcessor;
  /** The weights file(s) this model was loaded from, if any (its identity for the search index). */
  weightsFiles: string[] = [];
  /** What `fromPretrained` was given (resolved): the HF folder or the dyad checkpoint; null for a model built in memory. */
  source: string | null = null;
  tokenizerFiles: string[];
  #identity: string | null = null;

  /** A randomly initialised model (HF's initialisation) of the given config. */
  constructor(config: Partial<CLIPConfig> | Record<string, unknown> = {}, opts: CLIPModelOptions = {}) {
    super();
    const c = parseCLIPConfig(config, 'CLIPModel config');
    this.config = c;
    const v = c.vision_config;
    this.text_model = new CLIPTextTransformer(c.text_config);
    if (opts.visionModel) {
      this.vision_model = opts.visionModel;
    } else if (v.dyad_backbone) {
      this.vision_model = createBackbone(v.dyad_backbone) as CLIPVisionTower;
    } else {
      this.vision_model = new VisionTransformer({
        imageSize: v.image_size, patchSize: v.patch_size, inChannels: v.num_channels, dim: v.hidden_size, depth: v.num_hidden_layers,
        heads: v.num_attention_heads, mlpDim: v.intermediate_size, activation: v.hidden_act, layerNormEps: v.layer_norm_eps, patchBias: false,
      });
    }
    this.visual_projection = new nn.Linear(this.vision_model.featureDim, c.projection_dim, { bias: false });
    this.text_projection = new nn.Linear(c.text_config.hidden_size, c.projection_dim, { bias: false });
    this.logit_scale = torch.scope(() => new nn.Parameter(torch.tensor(c.logit_scale_init_value).view([]))); // the scope frees the initial value
    const channels = (v.dyad_backbone ? v.dyad_backbone.inChannels : v.num_channels) as 1 | 3;
    const imageSize = v.dyad_backbone ? v.dyad_backbone.imageSize : v.image_size;
    this.processor = new CLIPImageProcessor({ ...parseProcessorConfig({}, imageSize, channels), ...opts.processor });
    if (opts.tokenizer) {
      this.tokenizer = opts.tokenizer;
      this.tokenizerFiles = opts.tokenizerFiles ?? [];
    } else {
      this.tokenizer = sharedDefaultTokenizer();
      this.tokenizerFiles = [path.join(packageAssetDir(), CLIP_BPE_FILE)];
    }
    if (this.tokenizer.vocabSize > c.text_config.vocab_size) {
      throw new CLIPConfigError(`the tokenizer has ${this.tokenizer.vocabSize} tokens but the text tower's vocab_size is ${c.text_config.vocab_size}`);
    }
    if (!opts.visionModel) this.initWeights();
  }

  /** HF's `_init_weights` (initializer_factor 1): CLIP's initialisation, for training from scratch. */
  initWeights(): void {
    const normal = (t: Tensor, std: number): void => void torch.noGrad(() => t.normal_(0, std));
    const towers: [nn.Module, number][] = [[this.text_model, this.config.text_config.num_hidden_layers]];
    if (this.vision_model instanceof VisionTransformer) {
      const ve = this.vision_model.embeddings;
      const d = this.vision_model.config.dim;
      normal(ve.class_embedding, d ** -0.5);
      normal(ve.patch_embedding.weight, 0.02);
      normal(ve.position_embedding.weight, 0.02);
      towers.push([this.vision_model, this.vision_model.config.depth]);
    }
    for (const [tower, depth] of towers) {
      for (const m of tower.modules()) {
        const a = m as unknown as Record<string, unknown>;
        if (a.q_proj instanceof nn.Linear && a.out_proj instanceof nn.Linear) {
          const dim = a.q_proj.inFeatures;
          for (const k of ['q_proj', 'k_proj', 'v_proj'] as const) normal((a[k] as nn.Linear).weight, dim ** -0.5 * (2 * depth) ** -0.5);
          normal(a.out_proj.weight, dim ** -0.5);
        } else if (a.fc1 instanceof nn.Linear && a.fc2 instanceof nn.Linear) {
          const dim = a.fc1.inFeatures;
          normal(a.fc1.weight, (2 * dim) ** -0.5);
          normal(a.fc2.weight, dim ** -0.5 * (2 * depth) ** -0.5);
        }
        if (m instanceof nn.Linear && m.bias !== null) torch.noGrad(() => m.bias!.zero_());
      }
    }
    normal(this.text_projection.weight, this.config.text_config.hidden_size ** -0.5);
    normal(this.visual_projection.weight, this.vision_model.featureDim ** -0.5);
  }

  /** Size of the joint embedding space. */
  get projectionDim(): number {
    return this.config.projection_dim;
  }
  /** Text context length (77 for OpenAI's models). */
  get contextLength(): number {
    return this.config.text_config.max_position_embeddings;
  }

  // ---- loading and saving ------------------------------------------------------------------------------

  /**
   * Loads an HF CLIP checkpoint folder (or a dyad CLIP training checkpoint file); see the
   * module comment. The model is in eval mode.
   * @throws CLIPError / CLIPConfigError / nn.StateDictError naming the file and the problem.
   */
  static fromPretrained(pathOrDir: string, opts: FromPretrainedOptions = {}): CLIPModel {
    const p = path.resolve(localOrCachedHub(pathOrDir));
    if (!existsSync(p)) {
      throw new CLIPError(`${pathOrDir} does not exist. Pass the folder of a Hugging Face CLIP checkpoint (config.json, model.safetensors, tokenizer files), ` +
        'e.g. one downloaded with `huggingface-cli download openai/clip-vit-base-patch32 --local-dir DIR`, or a dyad CLIP checkpoint (best.safetensors).');
    }
    if (statSync(p).isFile()) {
      if (!p.endsWith('.safetensors')) throw new CLIPError(`${pathOrDir} is a file but not a .safetensors file; pass the checkpoint folder`);
      const meta = readHeader(p).metadata ?? {};
      if (meta.dyad !== undefined) return CLIPModel.fromCheckpoint(p, opts);
      return CLIPModel.fromPretrained(path.dirname(p), opts);
    }
    const cfgFile = path.join(p, 'config.json');
    if (!existsSync(cfgFile)) {
      throw new CLIPError(`${pathOrDir} has no config.json: pass the folder of a Hugging Face CLIPModel checkpoint (config.json, model.safetensors, tokenizer files)`);
    }
    const config = parseCLIPConfig(readJson(cfgFile), cfgFile);
    const weights = CLIPModel.#weightFiles(p, pathOrDir);
    let tokenizer = opts.tokenizer;
    let tokenizerFiles: string[] = [];
    if (!tokenizer) {
      const local = ['tokenizer.json', 'vocab.json', 'merges.txt', CLIP_BPE_FILE].map((f) => path.join(p, f)).filter((f) => existsSync(f));
      if (local.length > 0) {
        tokenizer = CLIPTokenizer.fromFile(p);
        tokenizerFiles = local;
      }
    }
    const ppFile = path.join(p, 'preprocessor_config.json');
    const v = config.vision_config;
    const processor = existsSync(ppFile) ? parseProcessorConfig(readJson(ppFile), v.image_size, v.num_channels === 1 ? 1 : 3) : undefined;
    const model = new CLIPModel(config, { tokenizer, tokenizerFiles, processor });
    try {
      model.#loadWeightFiles(weights, opts.strict ?? true);
    } catch (e) {
      model.dispose();
      throw e;
    }
    model.source = p;
    return model.eval();
  }

  static #weightFiles(dir: string, shown: string): string[] {
    const single = path.join(dir, 'model.safetensors');
    if (existsSync(single)) return [single];
    const index = path.join(dir, 'model.safetensors.index.json');
    if (existsSync(index)) {
      const map = (readJson(index) as { weight_map?: Record<string, string> }).weight_map;
      if (!map || typeof map !== 'object') throw new CLIPError(`${index} has no weight_map`);
      const files = [...new Set(Object.values(map))].map((f) => path.join(dir, f));
      const missing = files.filter((f) => !existsSync(f));
      if (missing.length > 0) throw new CLIPError(`${index} lists shards that are not in ${shown}: ${missing.map((f) => path.basename(f)).join(', ')}; download them too`);
      return files;
    }
    // PyTorch's pickle format, read by dyad's restricted unpickler (tensors and containers only)
    const bin = path.join(dir, 'pytorch_model.bin');
    if (existsSync(bin)) return [bin];
    const other = ['tf_model.h5', 'flax_model.msgpack'].find((f) => existsSync(path.join(dir, f)));
    throw new CLIPError(`${shown} has no model.safetensors or pytorch_model.bin` + (other ? ` (only ${other}, a TensorFlow/Flax file dyad does not read). Download model.safetensors ` +
      `(npx dyad download REPO, or huggingface-cli download REPO model.safetensors --local-dir ${shown})` : '. Download the checkpoint\'s model.safetensors into the folder.'));
  }

  #loadWeightFiles(files: string[], strict: boolean): void {
    const sd = new Map<string, Tensor>();
    try {
      for (const f of files) {
        const tensors = f.endsWith('.bin') ? torch.loadStateDict(f) : loadFile(f).tensors;
        for (const [k, t] of tensors) {
          if (isPositionIds(k)) t.dispose();
          else sd.set(k, t);
        }
      }
      this.#loadState(sd, strict, files.length === 1 ? files[0]! : path.dirname(files[0]!));
    } finally {
      for (const t of sd.values()) t.dispose();
    }
    this.weightsFiles = files;
    this.#identity = null;
  }

  #loadState(sd: Map<string, Tensor>, strict: boolean, source: string): void {
    try {
      this.loadStateDict(sd, { strict });
    } catch (e) {
      if (e instanceof nn.StateDictError) {
        throw new nn.StateDictError(`${source}: the weights do not fit the CLIP model its config describes. ${e.message}`, e.missingKeys, e.unexpectedKeys, e.mismatchedKeys);
      }
      throw e;
    }
  }

  /** Loads HF-named weights (a state dict; `position_ids` entries are skipped). */
  loadHFStateDict(sd: Map<string, Tensor> | Record<string, Tensor>, opts: { strict?: boolean } = {}): void {
    const m = sd instanceof Map ? sd : new Map(Object.entries(sd));
    const filtered = new Map([...m].filter(([k]) => !isPositionIds(k)));
    this.#loadState(filtered, opts.strict ?? true, 'state dict');
  }

  /**
   * A CLIP from the Hugging Face Hub by id (`openai/clip-vit-base-patch32`, `org/name@revision`,
   * `hf://org/name`): its config, tokenizer, preprocessor and weights are downloaded once into the
   * HF cache (see `src/hub/`), then loaded with `fromPretrained`, which also takes the id once cached.
   */
  static async download(id: string, opts: FromPretrainedOptions & SnapshotOptions = {}): Promise<CLIPModel> {
    return CLIPModel.fromPretrained(await localOrHub(id, opts), opts);
  }

  /** A dyad CLIP training checkpoint (`dyad train --method clip`'s last/best.safetensors). */
  static fromCheckpoint(file: string, opts: FromPretrainedOptions = {}): CLIPModel {
    const { tensors, metadata } = loadFile(file);
    try {
      let meta: { task?: string; config?: { clip?: unknown; processor?: unknown } };
      try {
        meta = JSON.parse(metadata.dyad ?? '{}');
      } catch {
        throw new CLIPError(`${file}: the checkpoint metadata is not valid JSON (the file is damaged)`);
      }
      if (meta.task !== 'clip' || !meta.config?.clip) {
        throw new CLIPError(`${file} is a dyad ${meta.task ?? ''} checkpoint, not a CLIP one; zero-shot and text search need a CLIP model (an HF CLIP folder or dyad train --method clip)`);
      }
      const config = parseCLIPConfig(meta.config.clip, file);
      const v = config.vision_config;
      const channels = (v.dyad_backbone ? v.dyad_backbone.inChannels : v.num_channels) === 1 ? 1 : 3;
      const processor = parseProcessorConfig(meta.config.processor ?? {}, v.dyad_backbone ? v.dyad_backbone.imageSize : v.image_size, channels);
      const model = new CLIPModel(config, { processor, tokenizer: opts.tokenizer });
      const sd = new Map<string, Tensor>();
      for (const [k, t] of tensors) if (k.startsWith('model.')) sd.set(k.slice(6), t);
      try {
        model.#loadState(sd, opts.strict ?? true, file);
      } catch (e) {
        model.dispose();
        throw e;
      }
      model.weightsFiles = [file];
      model.source = path.resolve(file);
      return model.eval();
    } finally {
      for (const t of tensors.values()) t.dispose();
    }
  }

  /**
   * Writes an HF-layout folder: config.json, model.safetensors, preprocessor_config.json and
   * the tokenizer files. A ViT-tower model loads in `transformers.CLIPModel.from_pretrained`.
   */
  savePretrained(dir: string): void {
    mkdirSync(dir, { recursive: true });
    writeFileAtomic(path.join(dir, 'config.json'), JSON.stringify(toHFConfig(this.config), null, 2) + '\n');
    writeFileAtomic(path.join(dir, 'preprocessor_config.json'), JSON.stringify(toHFProcessorConfig(this.processor.config), null, 2) + '\n');
    torch.scope(() => saveFile(this.stateDict(), path.join(dir, 'model.safetensors'), { format: 'pt' }));
    for (const f of this.tokenizerFiles) {
      if (!existsSync(f)) continue;
      const dest = path.join(dir, path.basename(f));
      if (path.resolve(dest) !== path.resolve(f)) copyFileSync(f, dest);
      if (path.basename(f) === 'merges.txt' && existsSync(path.join(path.dirname(f), 'vocab.json'))) {
        const v = path.join(dir, 'vocab.json');
        if (path.resolve(v) !== path.resolve(path.join(path.dirname(f), 'vocab.json'))) copyFileSync(path.join(path.dirname(f), 'vocab.json'), v);
      }
    }
  }

  /**
   * Names the exact weights: `clip:` + sha256 of the weights file(s) this model was loaded from,
   * or of the current parameter values for a model built in memory. (What the search index records.)
   */
  get identity(): string {
    if (this.#identity === null) {
      const digest = this.weightsFiles.length > 0
        ? sha256(this.weightsFiles.map(fileSha256))
        : torch.scope(() => sha256([...this.stateDict()].flatMap(([k, t]) => [k, t.contiguous().toBytes()])));
      this.#identity = `clip:${digest}`;
    }
    return this.#identity;
  }
  /** Forget the cached identity (call after changing the weights in place, e.g. training). */
  resetIdentity(): void {
    this.#identity = null;
  }

  // ---- the HF API ----------------------------------------------------------------------------------------------

  /** Image embeddings [N, projection_dim] (not normalised), as HF's `get_image_features`. */
  getImageFeatures(pixelValues: Tensor): Tensor {
    if (pixelValues.ndim !== 4) throw new RangeError(`CLIPModel.getImageFeatures: pixelValues must be [N, C, H, W], got [${pixelValues.shape.join(', ')}]`);
    return torch.scope(() => this.visual_projection.forward(this.vision_model.forward(pixelValues)));
  }

  /** Text embeddings [N, projection_dim] (not normalised), as HF's `get_text_features`. */
  getTextFeatures(inputIds: Tensor, attentionMask: Tensor | null = null): Tensor {
    return torch.scope(() => this.text_projection.forward(this.text_model.pooled(inputIds, attentionMask)));
  }

  /**
   * Both towers and the similarity logits, as HF's `CLIPModel.forward`:
   * logitsPerText = exp(logit_scale) · normalize(T) · normalize(I)ᵀ, logitsPerImage its transpose.
   */
  forward(inputs: { inputIds: Tensor; pixelValues: Tensor; attentionMask?: Tensor | null }): CLIPOutput {
    return torch.scope(() => {
      const imageEmbeds = F.normalize(this.getImageFeatures(inputs.pixelValues), { dim: -1 });
      const textEmbeds = F.normalize(this.getTextFeatures(inputs.inputIds, inputs.attentionMask ?? null), { dim: -1 });
      const logitsPerText = textEmbeds.matmul(imageEmbeds.t()).mul(this.logit_scale.exp());
      return { logitsPerImage: logitsPerText.t(), logitsPerText, imageEmbeds, textEmbeds };
    });
  }

  // ---- conveniences -----------------------------------------------------------------------------------------------

  /**
   * Token ids of `texts` for this model: int64 [N, L], padded to the longest text (or to the
   * context length with `pad: true`), truncated to the context length with end-of-text last.
   */
  tokenize(texts: readonly string[], o: { pad?: boolean } = {}): { inputIds: Tensor; attentionMask: Tensor } {
    if (texts.length === 0) throw new RangeError('CLIPModel.tokenize: no texts');
    const b = this.tokenizer.encodeBatch(texts, { contextLength: this.contextLength, pad: o.pad ?? false, truncate: true });
    return { inputIds: torch.tensor(b.ids, { shape: b.shape }), attentionMask: torch.tensor(b.attentionMask, { shape: b.shape }) };
  }

  /**
   * Embeddings of `texts` (strings, or token ids [N, L]) in batches, without gradients:
   * [N, projection_dim], L2-normalised unless `normalize: false`.
   */
  encodeText(texts: readonly string[] | Tensor, o: { normalize?: boolean; batchSize?: number } = {}): Tensor {
    const bs = o.batchSize ?? 256;
    return torch.noGrad(() => torch.scope(() => {
      const outs: Tensor[] = [];
      const n = texts instanceof torch.Tensor ? texts.size(0) : texts.length;
      for (let i = 0; i < n; i += bs) {
        outs.push(torch.scope(() => {
          const ids = texts instanceof torch.Tensor ? texts.narrow(0, i, Math.min(bs, n - i)) : this.tokenize(texts.slice(i, i + bs)).inputIds;
          const f = this.getTextFeatures(ids);
          return o.normalize === false ? f : F.normalize(f, { dim: -1 });
        }));
      }
      return outs.length === 1 ? outs[0]! : torch.cat(outs, 0);
    }));
  }

  /** Embeddings of preprocessed pixels [N, C, H, W] in batches, without gradients; L2-normalised unless `normalize: false`. */
  encodeImages(pixelValues: Tensor, o: { normalize?: boolean; batchSize?: number } = {}): Tensor {
    const bs = o.batchSize ?? 64;
    return torch.noGrad(() => torch.scope(() => {
      const outs: Tensor[] = [];
      const n = pixelValues.size(0);
      for (let i = 0; i < n; i += bs) {
        outs.push(torch.scope(() => {
          const f = this.getImageFeatures(pixelValues.narrow(0, i, Math.min(bs, n - i)));
          return o.normalize === false ? f : F.normalize(f, { dim: -1 });
        }));
      }
      return outs.length === 1 ? outs[0]! : torch.cat(outs, 0);
    }));
  }

  /**
   * Zero-shot class embeddings [C, projection_dim] with prompt ensembling (Radford et al. 2021,
   * §3.1.4): for each label, every template ('a photo of a {}.') is filled in and embedded, the
   * normalised embeddings are averaged, and the mean is normalised again.
   */
  classEmbeddings(labels: readonly string[], templates: readonly string[] = ['a photo of a {}.']): Tensor {
    if (labels.length === 0) throw new RangeError('CLIPModel.classEmbeddings: no labels');
    if (templates.length === 0) throw new RangeError('CLIPModel.classEmbeddings: no templates');
    for (const t of templates) if (!t.includes('{}')) throw new RangeError(`CLIPModel.classEmbeddings: template '${t}' has no {} for the label`);
    return torch.scope(() => {
      const prompts = labels.flatMap((l) => templates.map((t) => t.replaceAll('{}', l)));
      const e = this.encodeText(prompts).view(labels.length, templates.length, -1); // normalised
      return F.normalize(e.mean(1), { dim: -1 });
    });
  }

  /** Class probabilities [N, C] of preprocessed pixels against class embeddings [C, D]: softmax(exp(t)·cos). */
  zeroShotProbs(pixelValues: Tensor, classEmbeds: Tensor): Tensor {
    return torch.noGrad(() => torch.scope(() => this.encodeImages(pixelValues).matmul(classEmbeds.t()).mul(this.logit_scale.exp()).softmax(-1)));
  }

  /**
   * Whether `pathOrDir` holds a CLIP model `fromPretrained` reads: an HF folder whose config.json
   * is a CLIP's (or a file in one), or a dyad checkpoint of task 'clip'. Reads only headers.
   */
  static isCLIPPath(pathOrDir: string): boolean {
    try {
      const p = path.resolve(pathOrDir);
      if (!existsSync(p)) return false;
      const isCLIPConfig = (f: string): boolean => {
        if (!existsSync(f)) return false;
        const c = JSON.parse(readFileSync(f, 'utf8')) as Record<string, unknown>;
        return c.model_type === 'clip' || (c.text_config !== undefined && c.vision_config !== undefined);
      };
      if (statSync(p).isDirectory()) return isCLIPConfig(path.join(p, 'config.json'));
      if (!p.endsWith('.safetensors')) return false;
      const meta = readHeader(p).metadata ?? {};
      if (meta.dyad !== undefined) return (JSON.parse(meta.dyad) as { task?: string }).task === 'clip';
      return isCLIPConfig(path.join(path.dirname(p), 'config.json'));
    } catch {
      return false;
    }
  }

  /** Backbone of a LiT-style model built on a dyad encoder, as its spec; null for a CLIP ViT. */
  get dyadBackbone(): (BackboneSpec & { featureDim: number }) | null {
    return this.config.vision_config.dyad_backbone ?? null;
  }
}
