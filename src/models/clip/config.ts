/**
 * CLIP configuration, as Hugging Face's `CLIPConfig` (`config.json` of a `CLIPModel`
 * checkpoint): `text_config`, `vision_config`, `projection_dim`, `logit_scale_init_value`.
 * Missing fields take HF's defaults (the openai/clip-vit-base-patch32 sizes), and the legacy
 * `text_config_dict` / `vision_config_dict` override them, as HF reads them.
 *
 * A CLIP whose image tower is one of dyad's own backbones (LiT-style training on a frozen
 * self-supervised encoder) has `vision_config.dyad_backbone` instead of the ViT sizes.
 */
import type { Activation } from '../transformer.js';
import type { BackboneSpec } from '../index.js';
import { DyadError } from '../../errors.js';

export interface CLIPTextConfig {
  vocab_size: number;
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  /** Context length (77 for OpenAI's models). */
  max_position_embeddings: number;
  hidden_act: Activation;
  layer_norm_eps: number;
  bos_token_id: number;
  /**
   * End-of-text id. HF's legacy configs say 2 although the real token is 49407 (the largest id);
   * for them the text features are pooled at the argmax of the ids, as HF does.
   */
  eos_token_id: number;
  pad_token_id: number;
}

export interface CLIPVisionConfig {
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_channels: number;
  image_size: number;
  patch_size: number;
  hidden_act: Activation;
  layer_norm_eps: number;
  /** A dyad backbone (ResNet / ViT from `createBackbone`) in place of the CLIP ViT (LiT-style models). */
  dyad_backbone?: BackboneSpec & { featureDim: number };
}

export interface CLIPConfig {
  text_config: CLIPTextConfig;
  vision_config: CLIPVisionConfig;
  projection_dim: number;
  /** ln(1/τ) at initialisation: ln(1/0.07) = 2.6592. */
  logit_scale_init_value: number;
}

/** CLIP preprocessing (HF `CLIPImageProcessor`): shortest side → `size`, centre crop, /255, normalise. */
export interface CLIPImageProcessorConfig {
  /** Shortest side after resizing (224). */
  size: number;
  /** Side of the centre crop (224). */
  cropSize: number;
  doResize: boolean;
  doCenterCrop: boolean;
  doNormalize: boolean;
  /** Multiplier applied to the 0..255 pixels (1/255). */
  rescaleFactor: number;
  mean: number[];
  std: number[];
  /** Resampling filter of the resize. HF's `resample: 3` (PIL bicubic) is the CLIP default. */
  resample: 'bicubic' | 'bilinear' | 'nearest';
  /** Channels the model reads (3 for CLIP; 1 for a LiT model on a grayscale encoder). */
  channels: 1 | 3;
}

export const CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073];
export const CLIP_STD = [0.26862954, 0.26130258, 0.27577711];

export function defaultTextConfig(): CLIPTextConfig {
  return {
    vocab_size: 49408, hidden_size: 512, intermediate_size: 2048, num_hidden_layers: 12, num_attention_heads: 8,
    max_position_embeddings: 77, hidden_act: 'quick_gelu', layer_norm_eps: 1e-5, bos_token_id: 49406, eos_token_id: 49407, pad_token_id: 1,
  };
}

export function defaultVisionConfig(): CLIPVisionConfig {
  return {
    hidden_size: 768, intermediate_size: 3072, num_hidden_layers: 12, num_attention_heads: 12, num_channels: 3, image_size: 224, patch_size: 32,
    hidden_act: 'quick_gelu', layer_norm_eps: 1e-5,
  };
}

export class CLIPConfigError extends DyadError<'CLIP_CONFIG'> {
  constructor(message: string, options?: { cause?: unknown }) {
    super('CLIP_CONFIG', message, options);
    this.name = 'CLIPConfigError';
  }
}

const ACTIVATIONS: readonly string[] = ['gelu', 'quick_gelu', 'gelu_new', 'relu'];

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function pick<T extends object>(defaults: T, ...sources: unknown[]): T {
  const out = { ...defaults } as Record<string, unknown>;
  for (const s of sources) {
    if (!isObj(s)) continue;
    for (const k of Object.keys(defaults)) if (s[k] !== undefined && s[k] !== null) out[k] = s[k];
    if ('dyad_backbone' in s && s.dyad_backbone !== undefined) out.dyad_backbone = s.dyad_backbone;
  }
  return out as T;
}

function checkTower(c: Json, where: string, ints: string[]): void {
  for (const k of ints) {
    const v = c[k];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new CLIPConfigError(`${where}.${k} must be a positive integer, got ${JSON.stringify(v)}`);
  }
  if (!ACTIVATIONS.includes(String(c.hidden_act))) {
    throw new CLIPConfigError(`${where}.hidden_act '${String(c.hidden_act)}' is not supported: use ${ACTIVATIONS.join(', ')}`);
  }
  if ((c.hidden_size as number) % (c.num_attention_heads as number) !== 0) {
    throw new CLIPConfigError(`${where}.hidden_size ${String(c.hidden_size)} is not divisible by num_attention_heads ${String(c.num_attention_heads)}`);
  }
}

/**
 * A full config from a (possibly partial) HF `config.json` object; checks the sizes.
 * @throws CLIPConfigError naming the bad field.
 */
export function parseCLIPConfig(raw: unknown, source = 'config.json'): CLIPConfig {
  if (!isObj(raw)) throw new CLIPConfigError(`${source}: expected a JSON object`);
  if (raw.model_type !== undefined && raw.model_type !== 'clip') {
    throw new CLIPConfigError(`${source}: model_type '${String(raw.model_type)}' is not 'clip'; dyad loads CLIPModel checkpoints (e.g. openai/clip-vit-base-patch32)`);
  }
  const text = pick(defaultTextConfig(), raw.text_config, raw.text_config_dict);
  const vision = pick(defaultVisionConfig(), raw.vision_config, raw.vision_config_dict);
  checkTower(text as unknown as Json, `${source}: text_config`, ['vocab_size', 'hidden_size', 'intermediate_size', 'num_hidden_layers', 'num_attention_heads', 'max_position_embeddings']);
  if (vision.dyad_backbone === undefined) {
    checkTower(vision as unknown as Json, `${source}: vision_config`, ['hidden_size', 'intermediate_size', 'num_hidden_layers', 'num_attention_heads', 'num_channels', 'image_size', 'patch_size']);
    if (vision.image_size % vision.patch_size !== 0) {
      throw new CLIPConfigError(`${source}: vision_config.image_size ${vision.image_size} is not a multiple of patch_size ${vision.patch_size}`);
    }
  }
  const projection = raw.projection_dim ?? 512;
  if (typeof projection !== 'number' || !Number.isInteger(projection) || projection < 1) {
    throw new CLIPConfigError(`${source}: projection_dim must be a positive integer, got ${JSON.stringify(projection)}`);
  }
  const scale = raw.logit_scale_init_value ?? 2.6592;
  if (typeof scale !== 'number' || !Number.isFinite(scale)) throw new CLIPConfigError(`${source}: logit_scale_init_value must be a number`);
  return { text_config: text, vision_config: vision, projection_dim: projection, logit_scale_init_value: scale };
}

/** The config as HF writes it (`config.json`), loadable by `transformers.CLIPModel` when the image tower is a ViT. */
export function toHFConfig(c: CLIPConfig): Json {
  return {
    architectures: ['CLIPModel'], model_type: 'clip', projection_dim: c.projection_dim, logit_scale_init_value: c.logit_scale_init_value,
    initializer_factor: 1.0,
    text_config: { ...c.text_config, model_type: 'clip_text_model', projection_dim: c.projection_dim },
    vision_config: { ...c.vision_config, model_type: 'clip_vision_model', projection_dim: c.projection_dim },
  };
}

/** Preprocessing values from an HF `preprocessor_config.json` object (CLIP's defaults where absent). */
export function parseProcessorConfig(raw: unknown, imageSize = 224, channels: 1 | 3 = 3): CLIPImageProcessorConfig {
  const r = isObj(raw) ? raw : {};
  const side = (v: unknown, d: number): number => {
    if (typeof v === 'number') return v;
    if (isObj(v)) {
      const s = v.shortest_edge ?? v.height ?? v.width;
      if (typeof s === 'number') return s;
    }
    return d;
  };
  const resample = r.resample === 2 ? 'bilinear' : r.resample === 0 ? 'nearest' : 'bicubic';
  const arr = (v: unknown, d: number[]): number[] => (Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'number') ? (v as number[]) : d);
  const rep = (v: number[]): number[] => (channels === 1 ? [v.reduce((a, b) => a + b, 0) / v.length] : v.length === 1 ? [v[0]!, v[0]!, v[0]!] : v);
  return {
    size: side(r.size, imageSize),
    cropSize: side(r.crop_size, imageSize),
    doResize: r.do_resize !== false,
    doCenterCrop: r.do_center_crop !== false,
    doNormalize: r.do_normalize !== false,
    rescaleFactor: typeof r.rescale_factor === 'number' && r.do_rescale !== false ? r.rescale_factor : r.do_rescale === false ? 1 : 1 / 255,
    mean: rep(arr(r.image_mean, CLIP_MEAN)),
    std: rep(arr(r.image_std, CLIP_STD)),
    resample,
    channels,
  };
}

/** The processor config as HF writes it (`preprocessor_config.json`). */
export function toHFProcessorConfig(p: CLIPImageProcessorConfig): Json {
  return {
    crop_size: { height: p.cropSize, width: p.cropSize }, do_center_crop: p.doCenterCrop, do_convert_rgb: true, do_normalize: p.doNormalize,
    do_rescale: true, do_resize: p.doResize, image_mean: p.mean, image_std: p.std, image_processor_type: 'CLIPImageProcessor',
    resample: p.resample === 'bicubic' ? 3 : p.resample === 'bilinear' ? 2 : 0, rescale_factor: p.rescaleFactor, size: { shortest_edge: p.size },
  };
}
