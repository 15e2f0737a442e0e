/**
 * `clip.exportOnnx(dir)`: a CLIP `Model` as a folder that runs anywhere ONNX runs (Node with
 * onnxruntime-node, the browser with onnxruntime-web), in Hugging Face optimum's layout:
 *
 * - `vision_model.onnx`: `pixel_values` [batch, C, S, S] → `image_embeds` [batch, D];
 * - `text_model.onnx`: `input_ids` [batch, sequence] int64 → `text_embeds` [batch, D]
 *   (see `export/onnx/clip.ts`; both L2-normalised unless `normalize: false`);
 * - the tokenizer files the model came with (`bpe_simple_vocab_16e6.txt.gz` or HF's
 *   `tokenizer.json` / `vocab.json` + `merges.txt`);
 * - `clip_onnx.json`: what a runtime needs besides the graphs: preprocessing (resize, crop,
 *   mean, std), the tokenizer's files, ids and context length, `logit_scale` (logits =
 *   logit_scale · image_embeds · text_embedsᵀ), and the zero-shot classes and prompt templates
 *   when `setClasses` named them.
 */
import { copyFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../torch/io.js';
import type { CLIPModel } from '../models/clip/model.js';
import { exportClipOnnx, type ExportClipOptions } from '../export/onnx/clip.js';

/** The JSON file written beside the two graphs. */
export const CLIP_ONNX_JSON = 'clip_onnx.json';

export interface ClipOnnxFiles {
  vision: string;
  text: string;
  /** `clip_onnx.json`. */
  config: string;
  /** The tokenizer files copied into the folder. */
  tokenizer: string[];
}

/** Writes the folder (see the module comment); `classes` / `templates` are the zero-shot labels, if any. */
export function exportClipFolder(clip: CLIPModel, dir: string, o: ExportClipOptions & { classes?: readonly string[]; templates?: readonly string[] } = {}): ClipOnnxFiles {
  mkdirSync(dir, { recursive: true });
  const { classes, templates, ...opts } = o;
  const { vision, text } = exportClipOnnx(clip, dir, opts);
  const tokenizer: string[] = [];
  for (const f of clip.tokenizerFiles) {
    const to = path.join(dir, path.basename(f));
    if (path.resolve(f) !== path.resolve(to)) copyFileSync(f, to);
    tokenizer.push(to);
  }
  const p = clip.processor.config;
  const t = clip.text_model.config;
  const json = {
    format: 'dyad-clip-onnx',
    vision_model: path.basename(vision),
    text_model: path.basename(text),
    projection_dim: clip.projectionDim,
    normalized: opts.normalize ?? true,
    half: opts.half ?? false,
    logit_scale: Math.exp(clip.logit_scale.item()),
    preprocessing: {
      channels: p.channels, resize_shortest_side: p.size, resample: p.resample, crop_size: p.cropSize,
      rescale_factor: p.rescaleFactor, mean: [...p.mean], std: [...p.std],
    },
    tokenizer: {
      files: tokenizer.map((f) => path.basename(f)), context_length: t.max_position_embeddings, bos_token_id: t.bos_token_id, eos_token_id: t.eos_token_id,
    },
    ...(classes && classes.length > 0 && { classes: [...classes], templates: [...(templates ?? [])] }),
  };
  const config = path.join(dir, CLIP_ONNX_JSON);
  writeFileAtomic(config, JSON.stringify(json, null, 2) + '\n');
  return { vision, text, config, tokenizer };
}
