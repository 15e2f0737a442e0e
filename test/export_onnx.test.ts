// ONNX export (src/export/onnx/) checked with onnxruntime-node: each architecture dyad trains is
// exported, run by onnxruntime on the same inputs as dyad, and compared (max abs diff ≤ 1e-4 in
// fp32, ≤ 1e-2 with half weights), at a batch size other than the traced one. Small widths and
// images keep it fast.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import ort from 'onnxruntime-node';

import * as torch from '../src/torch/index.js';
import type { Tensor } from '../src/torch/index.js';
import * as nn from '../src/nn/index.js';
import { ResNet, VisionTransformer, TorchvisionResNet, SimCLRProjectionHead, MoCoProjectionHead, type ResNetStem } from '../src/models/index.js';
import { Classifier } from '../src/models/classifier.js';
import { CLIPModel } from '../src/models/clip/index.js';
import { exportOnnx, exportClipOnnx, decodeModel, ExportError } from '../src/export/index.js';
import { saveClassifier } from '../src/engine/classify.js';
import { packageRoot } from '../src/torch/native.js';

const dir = mkdtempSync(path.join(tmpdir(), 'dyad-onnx-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
torch.setNumThreads(1);

async function run(bytes: Uint8Array, feeds: Record<string, Tensor>): Promise<Record<string, ort.Tensor>> {
  const s = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1 });
  const f: Record<string, ort.Tensor> = {};
  for (const [k, t] of Object.entries(feeds)) {
    f[k] = t.dtype === 'int64' ? new ort.Tensor('int64', BigInt64Array.from(t.toArray().flat(Infinity as 1) as number[], BigInt), t.shape)
      : new ort.Tensor('float32', t.toFloat32Array(), t.shape);
  }
  const out = await s.run(f);
  await s.release();
  return out;
}

function maxDiff(got: ort.Tensor, want: Tensor): number {
  assert.deepEqual([...got.dims], want.shape);
  const w = want.toFloat32Array();
  const g = got.data as Float32Array;
  let d = 0;
  for (let i = 0; i < w.length; i++) d = Math.max(d, Math.abs(w[i]! - g[i]!));
  return d;
}

/** Exports `m` traced at batch 2, runs a batch of 3 in onnxruntime and in dyad, returns the max abs diff. */
async function check(m: nn.Module, shape: [number, number, number], o: { half?: boolean | 'weights'; out?: string } = {}): Promise<number> {
  torch.manualSeed(1);
  const bytes = exportOnnx(m, { inputShape: [2, ...shape], half: o.half });
  m.eval();
  const x = torch.randn([3, ...shape]);
  const want = torch.noGrad(() => {
    const y = m.forward(x);
    return m instanceof Classifier || m instanceof TorchvisionResNet ? y.softmax(-1) : y;
  });
  const r = await run(bytes, { images: x });
  const d = maxDiff(r[o.out ?? (m instanceof Classifier || m instanceof TorchvisionResNet ? 'probs' : 'features')]!, want);
  x.dispose();
  want.dispose();
  return d;
}

/** BatchNorm statistics away from 0/1, so that eval mode is really exercised. */
function randomizeBN(m: nn.Module): void {
  torch.noGrad(() => {
    for (const b of m.modules()) {
      if (b instanceof nn.BatchNorm2d) {
        b.running_mean!.uniform_(-0.2, 0.2);
        b.running_var!.uniform_(0.5, 1.5);
        b.weight!.uniform_(0.5, 1.5);
        b.bias!.uniform_(-0.2, 0.2);
      }
    }
  });
}

const resnets: [string, ConstructorParameters<typeof ResNet>[0], [number, number, number]][] = [];
for (const stem of ['imagenet', 'cifar', 'cifar-stride2'] as ResNetStem[]) resnets.push([`resnet18 ${stem}`, { depth: 18, width: 8, stem }, [3, stem === 'imagenet' ? 64 : 32, stem === 'imagenet' ? 64 : 32]]);
resnets.push(['resnet34 cifar, 1 channel', { depth: 34, width: 4, stem: 'cifar', inChannels: 1 }, [1, 28, 28]]);
resnets.push(['resnet50 cifar-stride2', { depth: 50, width: 4, stem: 'cifar-stride2' }, [3, 32, 32]]);
resnets.push(['resnet18 featureStages 2 / featureGrid 2', { depth: 18, width: 8, stem: 'cifar', featureStages: 2, featureGrid: 2 }, [3, 32, 32]]);
resnets.push(['resnet18 featureStages 4 / featureGrid 3 (uneven bins)', { depth: 18, width: 8, stem: 'cifar-stride2', featureStages: 4, featureGrid: 3 }, [3, 40, 40]]);

for (const [name, opts, shape] of resnets) {
  test(`ONNX ${name}: onnxruntime matches dyad (≤ 1e-4) at another batch size`, async () => {
    const m = new ResNet(opts);
    randomizeBN(m);
    const d = await check(m, shape);
    assert.ok(d <= 1e-4, `max abs diff ${d}`);
    m.dispose();
  });
}

test('ONNX ViT (gelu and quick_gelu) matches dyad (≤ 1e-4)', async () => {
  for (const activation of ['gelu', 'quick_gelu', 'gelu_new'] as const) {
    const m = new VisionTransformer({ imageSize: 32, patchSize: 8, dim: 32, depth: 2, heads: 4, activation });
    const d = await check(m, [3, 32, 32]);
    assert.ok(d <= 1e-4, `${activation}: max abs diff ${d}`);
    m.dispose();
  }
});

test('ONNX backbone + SimCLR / MoCo projection heads (Linear, BatchNorm1d, ReLU) match dyad (≤ 1e-4)', async () => {
  for (const Head of [SimCLRProjectionHead, MoCoProjectionHead]) {
    const bb = new ResNet({ depth: 18, width: 8, stem: 'cifar' });
    const m = new nn.Sequential(bb, new Head({ inputDim: bb.featureDim, hiddenDim: 32, outputDim: 16 }));
    randomizeBN(m);
    torch.noGrad(() => { for (const b of m.modules()) if (b instanceof nn.BatchNorm1d) { b.running_mean!.uniform_(-0.2, 0.2); b.running_var!.uniform_(0.5, 1.5); } });
    const d = await check(m, [3, 32, 32]);
    assert.ok(d <= 1e-4, `${Head.name}: max abs diff ${d}`);
    m.dispose();
  }
});

test('ONNX classifiers output probabilities (softmax included) matching dyad: ResNet and ViT backbones, torchvision ResNet', async () => {
  const cases: [nn.Module, [number, number, number]][] = [
    [new Classifier({ name: 'resnet18', inChannels: 3, imageSize: 32, width: 8 }, 5), [3, 32, 32]],
    [new Classifier({ name: 'vit-tiny', inChannels: 1, imageSize: 28, width: 24, patchSize: 7 }, 4), [1, 28, 28]],
    [new TorchvisionResNet('resnet18', { width: 8, numClasses: 7 }), [3, 64, 64]],
  ];
  for (const [m, shape] of cases) {
    randomizeBN(m);
    const d = await check(m, shape);
    assert.ok(d <= 1e-4, `${m.constructor.name}: max abs diff ${d}`);
    m.dispose();
  }
});

test('--half: float16 weights and compute (or weights only), half the file, outputs within 1e-2', async () => {
  const m = new Classifier({ name: 'resnet18', inChannels: 3, imageSize: 32, width: 16 }, 10);
  randomizeBN(m);
  const full = exportOnnx(m, { inputShape: [1, 3, 32, 32] }).byteLength;
  for (const half of [true, 'weights'] as const) {
    const bytes = exportOnnx(m, { inputShape: [1, 3, 32, 32], half });
    assert.ok(bytes.byteLength < 0.55 * full, `half ${bytes.byteLength} vs full ${full} bytes`);
    const graph = (decodeModel(bytes) as { graph: { node: { op_type: string; attribute?: { name: string; i?: number }[] }[]; initializer: { data_type: number }[] } }).graph;
    assert.ok(graph.initializer.filter((i) => i.data_type === 10).length >= 60, 'float16 initializers');
    const casts = graph.node.filter((n) => n.op_type === 'Cast').length;
    // compute: one Cast in (to float16) and one out; weights: a Cast per weight
    if (half === true) assert.equal(casts, 2);
    else assert.ok(casts >= 60);
    const d = await check(m, [3, 32, 32], { half });
    assert.ok(d <= 1e-2, `half ${half}: max abs diff ${d}`);
  }
  const v = new VisionTransformer({ imageSize: 32, patchSize: 8, dim: 32, depth: 2, heads: 4 });
  const dv = await check(v, [3, 32, 32], { half: true });
  assert.ok(dv <= 1e-2, `ViT max abs diff ${dv}`);
  m.dispose();
  v.dispose();
});

test('metadata_props, opset 17, a dynamic batch axis and initializers named as the state dict', () => {
  const m = new Classifier({ name: 'resnet18', inChannels: 3, imageSize: 32, width: 8 }, 3);
  const bytes = exportOnnx(m, { inputShape: [1, 3, 32, 32], metadata: { mean: [0.5, 0.4, 0.3], std: [0.2, 0.2, 0.2], names: ['cat', 'dog', 'eel'] } });
  const model = decodeModel(bytes) as { ir_version: number; opset_import: { version: number }[]; metadata_props: { key: string; value: string }[];
    graph: { input: { name: string; type: { tensor_type: { shape: { dim: { dim_param?: string; dim_value?: number }[] } } } }[]; initializer: { name: string }[] } };
  assert.equal(model.ir_version, 8);
  assert.equal(model.opset_import[0]!.version, 17);
  const meta = Object.fromEntries(model.metadata_props.map((p) => [p.key, p.value]));
  assert.deepEqual(JSON.parse(meta.names!), ['cat', 'dog', 'eel']);
  assert.deepEqual(JSON.parse(meta.mean!), [0.5, 0.4, 0.3]);
  assert.equal(meta.task, 'classify');
  assert.equal(meta.producer, 'dyad');
  const dims = model.graph.input[0]!.type.tensor_type.shape.dim;
  assert.equal(dims[0]!.dim_param, 'batch');
  assert.deepEqual(dims.slice(1).map((d) => d.dim_value), [3, 32, 32]);
  const names = new Set(model.graph.initializer.map((i) => i.name));
  for (const k of ['backbone.conv1.weight', 'backbone.layer1.0.bn1.running_var', 'head.weight', 'head.bias']) assert.ok(names.has(k), k);
  m.dispose();
});

test('a module or op with no lowering is an ExportError naming it; only opset 17', () => {
  class Custom extends nn.Module { forward(x: Tensor): Tensor { return x; } }
  const seq = new nn.Sequential(new nn.Conv2d(3, 4, 3), new nn.GroupNorm(2, 4));
  assert.throws(() => exportOnnx(seq, { inputShape: [1, 3, 8, 8] }), (e: unknown) => e instanceof ExportError && e.code === 'EXPORT' && /no lowering for module GroupNorm \(at '1'\)/.test(e.message));
  assert.throws(() => exportOnnx(new Custom(), { inputShape: [1, 3, 8, 8] }), /no lowering for module Custom/);
  const bn = new nn.Sequential(new nn.BatchNorm2d(3, { trackRunningStats: false }));
  assert.throws(() => exportOnnx(bn, { inputShape: [1, 3, 8, 8] }), /no running statistics/);
  assert.throws(() => exportOnnx(new nn.Sequential(new nn.ReLU()), { inputShape: [1, 3, 8, 8], opset: 13 }), /opset 13 is not supported/);
  // the training flags are restored after an export
  const m = new ResNet({ depth: 18, width: 4, stem: 'cifar' });
  exportOnnx(m, { inputShape: [1, 3, 16, 16] });
  assert.equal(m.training, true);
  assert.equal(m.bn1.training, true);
  m.dispose();
});

test('CLIP: image and text towers as two files match encodeImages / encodeText (≤ 1e-4), any batch and sequence length', async () => {
  torch.manualSeed(3);
  const clip = new CLIPModel({
    text_config: { hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 4, max_position_embeddings: 16, hidden_act: 'quick_gelu', vocab_size: 49408 },
    vision_config: { hidden_size: 48, intermediate_size: 80, num_hidden_layers: 2, num_attention_heads: 4, image_size: 32, patch_size: 8, hidden_act: 'gelu' },
    projection_dim: 24,
  });
  const files = exportClipOnnx(clip, path.join(dir, 'clip'));
  const pixels = torch.randn([3, 3, 32, 32]);
  const img = await run(readFileSync(files.vision), { pixel_values: pixels });
  const dImg = maxDiff(img.image_embeds!, clip.encodeImages(pixels));
  assert.ok(dImg <= 1e-4, `image max abs diff ${dImg}`);
  const { inputIds } = clip.tokenize(['a photo of a cat', 'a dog', 'a very long caption about a small bird on a branch']);
  for (const ids of [inputIds, inputIds.narrow(0, 0, 2)]) {
    const txt = await run(readFileSync(files.text), { input_ids: ids });
    const d = maxDiff(txt.text_embeds!, clip.encodeText(ids));
    assert.ok(d <= 1e-4, `text max abs diff ${d} (ids [${ids.shape}])`);
  }
  // float16 compute: within 1e-2
  const half = path.join(dir, 'clip-half');
  exportClipOnnx(clip, half, { half: true });
  const dh = maxDiff((await run(readFileSync(path.join(half, 'vision_model.onnx')), { pixel_values: pixels })).image_embeds!, clip.encodeImages(pixels));
  const th = maxDiff((await run(readFileSync(path.join(half, 'text_model.onnx')), { input_ids: inputIds })).text_embeds!, clip.encodeText(inputIds));
  assert.ok(dh <= 1e-2 && th <= 1e-2, `half: image ${dh}, text ${th}`);
  // dyad export on an HF folder writes the same two files
  const folder = path.join(dir, 'clip-hf');
  clip.savePretrained(folder);
  const out = path.join(dir, 'clip-cli');
  const r = spawnSync(process.execPath, [path.join(packageRoot(), 'bin/dyad.js'), 'export', '--weights', folder, '--out', out], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  for (const f of ['vision_model.onnx', 'text_model.onnx']) assert.deepEqual(readFileSync(path.join(out, f)), readFileSync(path.join(dir, 'clip', f)), f);
  clip.dispose();
});

test('dyad export --weights W --format onnx --imgsz N writes a classifier with its names, mean and std', async () => {
  const m = new Classifier({ name: 'resnet18', inChannels: 3, imageSize: 32, width: 8 }, 3);
  randomizeBN(m);
  const weights = path.join(dir, 'clf.safetensors');
  const config = { backbone: 'resnet18' as const, width: 8, imageSize: 32, stem: 'auto' as const, channels: 3 as const, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] };
  saveClassifier(weights, m, { config, names: ['a', 'b', 'c'], provenance: { mode: 'supervised', labelFraction: 1, labels: 3, data: 'x' } });
  const out = path.join(dir, 'clf.onnx');
  const r = spawnSync(process.execPath, [path.join(packageRoot(), 'bin/dyad.js'), 'export', '--weights', weights, '--format', 'onnx', '--out', out, '--imgsz', '40'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.ok(statSync(out).size > 100_000);
  const meta = Object.fromEntries((decodeModel(readFileSync(out)) as { metadata_props: { key: string; value: string }[] }).metadata_props.map((p) => [p.key, p.value]));
  assert.deepEqual(JSON.parse(meta.names!), ['a', 'b', 'c']);
  assert.equal(meta.image_size, '40');
  assert.deepEqual(JSON.parse(meta.std!), [0.25, 0.25, 0.25]);
  m.eval();
  const x = torch.randn([2, 3, 40, 40]);
  const got = await run(readFileSync(out), { images: x });
  const d = maxDiff(got.probs!, torch.noGrad(() => m.forward(x).softmax(-1)));
  assert.ok(d <= 1e-4, `max abs diff ${d}`);
  const bad = spawnSync(process.execPath, [path.join(packageRoot(), 'bin/dyad.js'), 'export', '--weights', weights, '--format', 'tflite'], { encoding: 'utf8' });
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /--format: only 'onnx' is supported/);
  m.dispose();
});
