/**
 * CLIP's two towers as two ONNX files, as Hugging Face's optimum exports them
 * (`vision_model.onnx`, `text_model.onnx`), so that images and texts are embedded separately
 * (an image index in one place, text queries in another):
 *
 * - `vision_model.onnx`: `pixel_values` [batch, C, S, S] (preprocessed: resize, crop, mean/std
 *   from the metadata) → `image_embeds` [batch, projection_dim];
 * - `text_model.onnx`: `input_ids` [batch, sequence] int64 (CLIP BPE ids with start and end
 *   tokens, any padding after the end token; sequence ≤ context_length) → `text_embeds`
 *   [batch, projection_dim]. The causal mask makes right padding irrelevant (no attention_mask).
 *
 * Both are L2-normalised (`normalize: false` for the raw projections, HF's `get_*_features`);
 * their dot product times `logit_scale` (in the metadata) is CLIP's logit.
 */
import path from 'node:path';
import { mkdirSync } from 'node:fs';
import type { CLIPModel } from '../../models/clip/index.js';
import type { Tensor } from '../../torch/index.js';
import { writeFileAtomic } from '../../torch/io.js';
import { OnnxGraph, type Val } from './graph.js';
import { lower, l2normalize, add } from './lower.js';
import { encodeGraph, inEval, checkOpset } from './export.js';

export interface ExportClipOptions {
  half?: boolean | 'weights' | 'compute';
  dynamicBatch?: boolean;
  /** L2-normalise the embeddings (default true). */
  normalize?: boolean;
  opset?: number;
}

const finish = (g: OnnxGraph, y: Val, name: string): Val => {
  const out = g.op('Identity', [g.toFloat32(y)], {}, y.shape);
  g.nodes[g.nodes.length - 1]!.output = [name];
  return { ...out, name };
};

/** The image tower: bytes of `vision_model.onnx`. */
export function clipVisionOnnx(clip: CLIPModel, o: ExportClipOptions = {}): Uint8Array {
  const opset = checkOpset(o.opset);
  const p = clip.processor.config;
  const g = new OnnxGraph({ half: o.half ?? false });
  const x: Val = { name: g.fresh('pixel_values'), shape: [(o.dynamicBatch ?? true) ? 'batch' : 1, p.channels, p.cropSize, p.cropSize] };
  let y = inEval(clip, () => lower(g, clip.visual_projection, lower(g, clip.vision_model, g.fromFloat32(x), 'vision_model'), 'visual_projection'));
  if (o.normalize ?? true) y = l2normalize(g, y);
  const out = finish(g, y, 'image_embeds');
  return encodeGraph(g, {
    name: 'CLIPVisionModelWithProjection', opset, inputs: [{ val: x, dtype: 'float32' }], outputs: [{ val: out, dtype: 'float32' }],
    metadata: {
      task: 'clip-vision', mean: p.mean, std: p.std, image_size: p.cropSize, resize_shortest_side: p.size, resample: p.resample,
      rescale_factor: p.rescaleFactor, normalized: o.normalize ?? true, logit_scale: Math.exp(clip.logit_scale.item()), half: g.half,
    },
  });
}

/** The text tower: bytes of `text_model.onnx`. */
export function clipTextOnnx(clip: CLIPModel, o: ExportClipOptions = {}): Uint8Array {
  const opset = checkOpset(o.opset);
  const tm = clip.text_model;
  const c = tm.config;
  const g = new OnnxGraph({ half: o.half ?? false });
  const n = (o.dynamicBatch ?? true) ? 'batch' : 1;
  const ids: Val = { name: g.fresh('input_ids'), shape: [n, 'sequence'], dtype: 'int64' };
  const d = c.hidden_size;
  const y = inEval(clip, () => {
    // the sequence length L as a 1-element int64 tensor
    const len = g.op('Slice', [g.op('Shape', [ids], {}, [2], { dtype: 'int64' }), g.constI([1]), g.constI([2])], {}, [1], { dtype: 'int64' });
    const tok = lower(g, tm.embeddings.token_embedding, ids, 'text_model.embeddings.token_embedding');
    const posAll = g.param(tm.embeddings.position_embedding.weight, 'text_model.embeddings.position_embedding.weight');
    const pos = g.op('Slice', [posAll, g.constI([0]), len, g.constI([0])], {}, ['sequence', d]);
    const h = add(g, tok, pos);
    // the causal mask [L, L]: 0 on and below the diagonal, −∞ above, cut from the longest one
    const max = c.max_position_embeddings;
    const mask = new Array<number>(max * max);
    for (let i = 0; i < max; i++) for (let j = 0; j < max; j++) mask[i * max + j] = j > i ? -Infinity : 0;
    const full = g.constF(mask, [max, max], 'causal_mask');
    const ends = g.op('Concat', [len, len], { axis: 0 }, [2], { dtype: 'int64' });
    const causal = g.op('Slice', [full, g.constI([0, 0]), ends, g.constI([0, 1])], {}, ['sequence', 'sequence']);
    const enc = lower(g, tm.encoder, h, 'text_model.encoder', { mask: causal });
    const last = lower(g, tm.final_layer_norm, enc, 'text_model.final_layer_norm');
    // pooled at the end-of-text token (HF's rule: argmax of the ids for legacy eos id 2, else the first eos)
    const i32 = (v: Val): Val => g.op('Cast', [v], { to: 6 }, v.shape, { dtype: 'int32' });
    const key = c.eos_token_id === 2 ? i32(ids) : i32(g.op('Equal', [ids, g.constI([c.eos_token_id], [])], {}, ids.shape, { dtype: 'bool' }));
    const at = g.op('ArgMax', [key], { axis: -1, keepdims: 1 }, [n, 1], { dtype: 'int64' });
    const pooled = g.op('GatherND', [last, at], { batch_dims: 1 }, [n, d]);
    return lower(g, clip.text_projection, pooled, 'text_projection');
  });
  const out = finish(g, (o.normalize ?? true) ? l2normalize(g, y) : y, 'text_embeds');
  return encodeGraph(g, {
    name: 'CLIPTextModelWithProjection', opset, inputs: [{ val: ids, dtype: 'int64' }], outputs: [{ val: out, dtype: 'float32' }],
    metadata: {
      task: 'clip-text', context_length: c.max_position_embeddings, eos_token_id: c.eos_token_id, bos_token_id: c.bos_token_id,
      normalized: o.normalize ?? true, logit_scale: Math.exp((clip.logit_scale as Tensor).item()), half: g.half,
    },
  });
}

/** Writes `vision_model.onnx` and `text_model.onnx` into `dir`; returns their paths. */
export function exportClipOnnx(clip: CLIPModel, dir: string, o: ExportClipOptions = {}): { vision: string; text: string } {
  mkdirSync(dir, { recursive: true });
  const vision = path.join(dir, 'vision_model.onnx');
  const text = path.join(dir, 'text_model.onnx');
  writeFileAtomic(vision, clipVisionOnnx(clip, o));
  writeFileAtomic(text, clipTextOnnx(clip, o));
  return { vision, text };
}
