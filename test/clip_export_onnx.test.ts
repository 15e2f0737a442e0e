// clip.exportOnnx(dir) on the CLIP Model facade (src/api/clip_export.ts): a tiny CLIP with
// zero-shot classes writes vision_model.onnx, text_model.onnx, its tokenizer and clip_onnx.json;
// onnxruntime-node's image and text embeddings match dyad's, the text tower reproduces the class
// embeddings of setClasses, and the JSON holds what a runtime needs (preprocessing, ids, logit scale, classes).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import ort from 'onnxruntime-node';

import * as torch from '../src/torch/index.js';
import type { Tensor } from '../src/torch/index.js';
import { CLIPModel } from '../src/models/clip/index.js';
import { Model } from '../src/api/model.js';
import { Net, clipNet } from '../src/api/net.js';
import { Classifier } from '../src/models/classifier.js';
import { tempDir } from './helpers/tmp.js';

torch.setNumThreads(1);

async function run(file: string, name: string, t: Tensor): Promise<ort.Tensor> {
  const s = await ort.InferenceSession.create(file, { intraOpNumThreads: 1 });
  const feed = t.dtype === 'int64' ? new ort.Tensor('int64', BigInt64Array.from(t.toArray().flat(Infinity as 1) as number[], BigInt), t.shape)
    : new ort.Tensor('float32', t.toFloat32Array(), t.shape);
  const out = await s.run({ [name]: feed });
  await s.release();
  return Object.values(out)[0]!;
}

function maxDiff(got: ort.Tensor, want: Tensor): number {
  assert.deepEqual([...got.dims], want.shape);
  const w = want.toFloat32Array();
  const g = got.data as Float32Array;
  return w.reduce((d, v, i) => Math.max(d, Math.abs(v - g[i]!)), 0);
}

test('clip.exportOnnx(dir): two towers onnxruntime agrees with (≤ 1e-4), the tokenizer, and clip_onnx.json with the zero-shot classes', async () => {
  torch.manualSeed(5);
  const clip = new CLIPModel({
    text_config: { hidden_size: 32, intermediate_size: 64, num_hidden_layers: 1, num_attention_heads: 4, max_position_embeddings: 16, hidden_act: 'quick_gelu', vocab_size: 49408 },
    vision_config: { hidden_size: 32, intermediate_size: 64, num_hidden_layers: 1, num_attention_heads: 4, image_size: 32, patch_size: 8, hidden_act: 'gelu' },
    projection_dim: 16,
  });
  const model = Model.fromNet(clipNet(clip));
  model.setClasses(['cat', 'dog', 'bird']);
  const dir = path.join(tempDir('clip-onnx'), 'out');
  const files = model.exportOnnx(dir);
  assert.deepEqual([files.vision, files.text].map((f) => path.basename(f)), ['vision_model.onnx', 'text_model.onnx']);
  assert.ok(files.tokenizer.length > 0 && files.tokenizer.every((f) => existsSync(f) && path.dirname(f) === dir));
  const json = JSON.parse(readFileSync(files.config, 'utf8')) as Record<string, any>;
  assert.equal(json.projection_dim, 16);
  assert.deepEqual(json.classes, ['cat', 'dog', 'bird']);
  assert.deepEqual(json.templates, ['a photo of a {}.']);
  assert.equal(json.preprocessing.crop_size, 32);
  assert.equal(json.tokenizer.context_length, 16);
  assert.ok(Math.abs(json.logit_scale - Math.exp(clip.logit_scale.item())) < 1e-3);

  const pixels = torch.randn([2, 3, 32, 32]);
  const img = await run(files.vision, 'pixel_values', pixels);
  assert.ok(maxDiff(img, clip.encodeImages(pixels)) <= 1e-4);
  // the text tower on the classes' prompts gives setClasses' class embeddings (one template: its normalised embedding)
  const { inputIds } = clip.tokenize(json.classes.map((c: string) => `a photo of a ${c}.`));
  const txt = await run(files.text, 'input_ids', inputIds);
  assert.ok(maxDiff(txt, model.net!.classEmbeds!) <= 1e-4);
  model.dispose();
});

test('exportOnnx(dir) on a model that is not a CLIP says to use export()', () => {
  assert.throws(() => new Model().exportOnnx('x'), /no weights yet/);
  const config = { backbone: 'resnet18' as const, width: 4, imageSize: 16, stem: 'auto' as const, channels: 3 as const, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] };
  const m = Model.fromNet(new Net('classifier', new Classifier({ name: 'resnet18', inChannels: 3, imageSize: 16, width: 4 }, 2), config, ['a', 'b'], null));
  assert.throws(() => m.exportOnnx('x'), /is a dyad classifier: use model\.export\(\{ format: 'onnx' \}\)/);
  m.dispose();
});
