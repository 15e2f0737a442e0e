// CLIPModel (src/models/clip/): HF layout and loading, forward semantics, preprocessing,
// zero-shot, and text search through the index. A tiny random CLIP is written in HF layout
// (config.json, model.safetensors with HF key names, vocab.json + merges.txt) by the test itself.
// Where Debian's /usr/bin/python3 has torch (and PIL), the outputs are checked against a plain
// PyTorch transcription of HF's modeling_clip.py / CLIPImageProcessor run on the same files.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import * as torch from '../src/torch/index.js';
import type { Tensor } from '../src/torch/index.js';
import { saveFile, loadFile } from '../src/torch/safetensors.js';
import * as nn from '../src/nn/index.js';
import {
  CLIPModel, CLIPImageProcessor, bytesToUnicode, resizeOutputSize, IMAGENET_TEMPLATES,
} from '../src/models/clip/index.js';
import { decodeImage } from '../src/data/decode.js';
import { Probs, Results, TaskError } from '../src/api/results.js';
import { CLIPEmbedder } from '../src/api/clip_embedder.js';
import { zeroShot } from '../src/api/clip.js';
import { Model } from '../src/api/model.js';
import { Index } from '../src/search/index.js';

const F = torch.functional;
let tmp: string;

const TEXT = { hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 4, max_position_embeddings: 16, hidden_act: 'quick_gelu', layer_norm_eps: 1e-5 };
const VISION = { hidden_size: 48, intermediate_size: 80, num_hidden_layers: 2, num_attention_heads: 4, image_size: 32, patch_size: 8, num_channels: 3, hidden_act: 'gelu', layer_norm_eps: 1e-5 };
const PROJ = 24;

/** A tiny HF-style BPE vocabulary: 512 byte symbols, a few merges, then bos and eos (eos the largest id, as OpenAI's). */
function tinyVocab(): { vocab: Record<string, number>; merges: [string, string][] } {
  const base = bytesToUnicode().map(([, c]) => c);
  const symbols = [...base, ...base.map((c) => c + '</w>')];
  const merges: [string, string][] = [['c', 'a'], ['ca', 't</w>'], ['d', 'o'], ['do', 'g</w>'], ['r', 'e'], ['re', 'd</w>']];
  for (const [a, b] of merges) symbols.push(a + b);
  symbols.push('<|startoftext|>', '<|endoftext|>');
  return { vocab: Object.fromEntries(symbols.map((s, i) => [s, i])), merges };
}

/** HF's state-dict keys and shapes of a CLIPModel, written out independently of dyad's modules. */
function hfShapes(vocab: number): [string, number[]][] {
  const out: [string, number[]][] = [];
  const tower = (p: string, d: number, m: number, n: number): void => {
    for (let i = 0; i < n; i++) {
      const l = `${p}.encoder.layers.${i}`;
      for (const k of ['k_proj', 'v_proj', 'q_proj', 'out_proj']) out.push([`${l}.self_attn.${k}.weight`, [d, d]], [`${l}.self_attn.${k}.bias`, [d]]);
      out.push([`${l}.layer_norm1.weight`, [d]], [`${l}.layer_norm1.bias`, [d]]);
      out.push([`${l}.mlp.fc1.weight`, [m, d]], [`${l}.mlp.fc1.bias`, [m]], [`${l}.mlp.fc2.weight`, [d, m]], [`${l}.mlp.fc2.bias`, [d]]);
      out.push([`${l}.layer_norm2.weight`, [d]], [`${l}.layer_norm2.bias`, [d]]);
    }
  };
  const t = TEXT.hidden_size, v = VISION.hidden_size, P = (VISION.image_size / VISION.patch_size) ** 2 + 1;
  out.push(['text_model.embeddings.token_embedding.weight', [vocab, t]], ['text_model.embeddings.position_embedding.weight', [TEXT.max_position_embeddings, t]]);
  tower('text_model', t, TEXT.intermediate_size, TEXT.num_hidden_layers);
  out.push(['text_model.final_layer_norm.weight', [t]], ['text_model.final_layer_norm.bias', [t]]);
  out.push(['vision_model.embeddings.class_embedding', [v]], ['vision_model.embeddings.patch_embedding.weight', [v, 3, VISION.patch_size, VISION.patch_size]],
    ['vision_model.embeddings.position_embedding.weight', [P, v]], ['vision_model.pre_layrnorm.weight', [v]], ['vision_model.pre_layrnorm.bias', [v]]);
  tower('vision_model', v, VISION.intermediate_size, VISION.num_hidden_layers);
  out.push(['vision_model.post_layernorm.weight', [v]], ['vision_model.post_layernorm.bias', [v]]);
  out.push(['visual_projection.weight', [PROJ, v]], ['text_projection.weight', [PROJ, t]], ['logit_scale', []]);
  return out;
}

/** Writes a random tiny CLIP checkpoint in HF layout; returns its folder. */
function writeTinyClip(dir: string, o: { eos?: number; extra?: Record<string, Tensor>; drop?: string[]; positionIds?: boolean } = {}): string {
  mkdirSync(dir, { recursive: true });
  const { vocab, merges } = tinyVocab();
  const V = Object.keys(vocab).length;
  writeFileSync(path.join(dir, 'vocab.json'), JSON.stringify(vocab));
  writeFileSync(path.join(dir, 'merges.txt'), '#version: 0.2\n' + merges.map((m) => m.join(' ')).join('\n') + '\n');
  const config = {
    architectures: ['CLIPModel'], model_type: 'clip', projection_dim: PROJ, logit_scale_init_value: 2.6592,
    text_config: { ...TEXT, vocab_size: V, bos_token_id: V - 2, eos_token_id: o.eos ?? 2, pad_token_id: 1 }, text_config_dict: null,
    vision_config: VISION, vision_config_dict: null,
  };
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config, null, 2));
  torch.scope(() => {
    const sd = new Map<string, Tensor>();
    for (const [k, s] of hfShapes(V)) {
      if (o.drop?.includes(k)) continue;
      const scale = k === 'logit_scale' ? 0 : k.endsWith('layer_norm1.weight') || k.endsWith('layer_norm2.weight') || k.endsWith('norm.weight') || k.endsWith('layrnorm.weight') ? 0.2 : 0.3;
      sd.set(k, k === 'logit_scale' ? torch.tensor(2.6592).view([]) : torch.randn(s).mul(scale).add(k.includes('norm') && k.endsWith('weight') ? 1 : 0));
    }
    if (o.positionIds !== false) {
      sd.set('text_model.embeddings.position_ids', torch.arange(TEXT.max_position_embeddings).view(1, -1));
      sd.set('vision_model.embeddings.position_ids', torch.arange((VISION.image_size / VISION.patch_size) ** 2 + 1).view(1, -1));
    }
    for (const [k, t] of Object.entries(o.extra ?? {})) sd.set(k, t);
    saveFile(sd, path.join(dir, 'model.safetensors'), { format: 'pt' });
  });
  return dir;
}

const PY = '/usr/bin/python3';
const hasTorchPy = existsSync(PY) && spawnSync(PY, ['-c', 'import torch, PIL'], { encoding: 'utf8' }).status === 0;

// A plain-PyTorch transcription of HF transformers' modeling_clip.py (CLIPModel.forward with
// eager attention) reading the same safetensors files; prints JSON.
const PY_MODEL = String.raw`
import json, sys, struct, numpy as np, torch, torch.nn.functional as F
torch.set_num_threads(1)
def load(p):
    b = open(p, 'rb').read(); n = struct.unpack('<Q', b[:8])[0]; h = json.loads(b[8:8 + n]); base = 8 + n; out = {}
    dt = {'F32': np.float32, 'I64': np.int64, 'F64': np.float64}
    for k, v in h.items():
        if k == '__metadata__': continue
        s, e = v['data_offsets']
        out[k] = torch.from_numpy(np.frombuffer(b[base + s:base + e], dtype=dt[v['dtype']]).reshape(v['shape']).copy())
    return out
d = sys.argv[1]; W = load(d + '/model.safetensors'); X = load(sys.argv[2]); cfg = json.load(open(d + '/config.json'))
tc, vc = cfg['text_config'], cfg['vision_config']
ACT = {'quick_gelu': lambda x: x * torch.sigmoid(1.702 * x), 'gelu': F.gelu}
def ln(x, p, eps): return F.layer_norm(x, (x.shape[-1],), W[p + '.weight'], W[p + '.bias'], eps)
def lin(x, p): return F.linear(x, W[p + '.weight'], W.get(p + '.bias'))
def attn(x, p, heads, mask):
    b, l, d = x.shape; hd = d // heads
    q = lin(x, p + '.q_proj') * hd ** -0.5; k = lin(x, p + '.k_proj'); v = lin(x, p + '.v_proj')
    sh = lambda t: t.view(b, l, heads, hd).transpose(1, 2).reshape(b * heads, l, hd)
    q, k, v = sh(q), sh(k), sh(v)
    w = torch.bmm(q, k.transpose(1, 2))
    if mask is not None: w = (w.view(b, heads, l, l) + mask).view(b * heads, l, l)
    o = torch.bmm(F.softmax(w, -1), v).view(b, heads, l, hd).transpose(1, 2).reshape(b, l, d)
    return lin(o, p + '.out_proj')
def encoder(x, p, c, mask):
    for i in range(c['num_hidden_layers']):
        q = f'{p}.layers.{i}'
        x = x + attn(ln(x, q + '.layer_norm1', c['layer_norm_eps']), q + '.self_attn', c['num_attention_heads'], mask)
        x = x + lin(ACT[c['hidden_act']](lin(ln(x, q + '.layer_norm2', c['layer_norm_eps']), q + '.mlp.fc1')), q + '.mlp.fc2')
    return x
ids = X['input_ids']; n, l = ids.shape
h = F.embedding(ids, W['text_model.embeddings.token_embedding.weight']) + W['text_model.embeddings.position_embedding.weight'][:l]
causal = torch.full((l, l), float('-inf')).triu(1)[None, None]
h = ln(encoder(h, 'text_model.encoder', tc, causal), 'text_model.final_layer_norm', tc['layer_norm_eps'])
eos = tc['eos_token_id']
idx = ids.to(torch.int).argmax(-1) if eos == 2 else (ids.to(torch.int) == eos).int().argmax(-1)
text = F.linear(h[torch.arange(n), idx], W['text_projection.weight'])
px = X['pixel_values']
pe = F.conv2d(px, W['vision_model.embeddings.patch_embedding.weight'], stride=vc['patch_size']).flatten(2).transpose(1, 2)
x = torch.cat([W['vision_model.embeddings.class_embedding'].expand(px.shape[0], 1, -1), pe], 1) + W['vision_model.embeddings.position_embedding.weight'][None]
x = encoder(ln(x, 'vision_model.pre_layrnorm', vc['layer_norm_eps']), 'vision_model.encoder', vc, None)
img = F.linear(ln(x[:, 0], 'vision_model.post_layernorm', vc['layer_norm_eps']), W['visual_projection.weight'])
lpt = F.normalize(text, dim=-1) @ F.normalize(img, dim=-1).t() * W['logit_scale'].exp()
print(json.dumps({'text': text.flatten().tolist(), 'image': img.flatten().tolist(), 'logits_per_image': lpt.t().flatten().tolist()}))
`;

// HF CLIPImageProcessor's steps with PIL: convert RGB, resize the shortest edge (bicubic),
// centre crop ((h - crop) // 2), rescale, normalise.
const PY_PREPROCESS = String.raw`
import sys, json, numpy as np
from PIL import Image
size, crop = int(sys.argv[2]), int(sys.argv[3])
mean = np.array([0.48145466, 0.4578275, 0.40821073]); std = np.array([0.26862954, 0.26130258, 0.27577711])
im = Image.open(sys.argv[1]).convert('RGB'); w, h = im.size
short, long = (w, h) if w <= h else (h, w)
ns, nl = size, int(size * long / short)
ow, oh = (ns, nl) if w <= h else (nl, ns)
im = im.resize((ow, oh), resample=Image.BICUBIC)
a = np.asarray(im).astype(np.float64)
top, left = (oh - crop) // 2, (ow - crop) // 2
a = a[top:top + crop, left:left + crop] * (1 / 255)
a = (a - mean) / std
print(json.dumps(a.transpose(2, 0, 1).flatten().tolist()))
`;

function runPy(script: string, args: string[]): unknown {
  const file = path.join(tmp, `ref_${Math.random().toString(36).slice(2)}.py`);
  writeFileSync(file, script);
  const r = spawnSync(PY, [file, ...args], { encoding: 'utf8', maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`python reference failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

let hfDir: string;
let model: CLIPModel;

before(() => {
  torch.manualSeed(7);
  tmp = mkdtempSync(path.join(tmpdir(), 'dyad-clip-'));
  hfDir = writeTinyClip(path.join(tmp, 'hf'));
  model = CLIPModel.fromPretrained(hfDir);
});
after(() => {
  model.dispose();
  rmSync(tmp, { recursive: true, force: true });
});

test('fromPretrained: HF names 1:1, config sizes, tokenizer from the folder, eval mode', () => {
  const V = Object.keys(tinyVocab().vocab).length;
  const expected = hfShapes(V);
  const sd = torch.scope(() => new Map([...model.stateDict()].map(([k, t]) => [k, t.shape])));
  assert.deepEqual([...sd.keys()].sort(), expected.map(([k]) => k).sort());
  for (const [k, s] of expected) assert.deepEqual(sd.get(k), s, k);
  assert.equal(model.training, false);
  assert.equal(model.projectionDim, PROJ);
  assert.equal(model.contextLength, 16);
  assert.equal(model.tokenizer.vocabSize, V);
  assert.deepEqual(model.tokenizer.encode('cat', { pad: false }), [V - 2, 512 + 1, V - 1]);
  // the weights are the file's
  const { tensors } = loadFile(path.join(hfDir, 'model.safetensors'));
  torch.scope(() => {
    const own = model.stateDict();
    for (const [k, t] of tensors) if (!k.endsWith('position_ids')) assert.ok(own.get(k)!.equal(t), k);
  });
  for (const t of tensors.values()) t.dispose();
});

test('fromPretrained: strict keys (missing and unexpected are errors, listed), position_ids ignored, clear file errors', () => {
  const missing = writeTinyClip(path.join(tmp, 'missing'), { drop: ['text_projection.weight', 'vision_model.pre_layrnorm.bias'] });
  assert.throws(() => CLIPModel.fromPretrained(missing), (e: Error) => {
    assert.ok(e instanceof nn.StateDictError, e.message);
    assert.deepEqual([...e.missingKeys].sort(), ['text_projection.weight', 'vision_model.pre_layrnorm.bias']);
    assert.match(e.message, /missing[\\/]model\.safetensors/);
    assert.match(e.message, /Missing key\(s\).*"text_projection\.weight"/);
    return true;
  });
  const unexpected = writeTinyClip(path.join(tmp, 'unexpected'), { extra: { 'text_model.encoder.layers.2.mlp.fc1.weight': torch.zeros([2, 2]).keep() } });
  assert.throws(() => CLIPModel.fromPretrained(unexpected), (e: Error) =>
    e instanceof nn.StateDictError && e.unexpectedKeys.length === 1 && /Unexpected key\(s\).*layers\.2\.mlp\.fc1\.weight/.test(e.message));
  // non-strict loads the rest
  const m = CLIPModel.fromPretrained(missing, { strict: false });
  m.dispose();
  // checkpoints without position_ids (newer HF) load too
  const noPos = writeTinyClip(path.join(tmp, 'nopos'), { positionIds: false });
  CLIPModel.fromPretrained(noPos).dispose();
  // a shape mismatch names both shapes
  const cfgFile = path.join(noPos, 'config.json');
  const cfg = JSON.parse(readFileSync(cfgFile, 'utf8'));
  cfg.projection_dim = 16;
  writeFileSync(cfgFile, JSON.stringify(cfg));
  assert.throws(() => CLIPModel.fromPretrained(noPos), /size mismatch for visual_projection\.weight.*\[24, 48\].*\[16, 48\]/);
  // folder problems
  assert.throws(() => CLIPModel.fromPretrained(path.join(tmp, 'nope')), /does not exist.*huggingface-cli download/);
  const noWeights = path.join(tmp, 'noweights');
  mkdirSync(noWeights);
  writeFileSync(path.join(noWeights, 'config.json'), JSON.stringify({ model_type: 'clip' }));
  writeFileSync(path.join(noWeights, 'pytorch_model.bin'), 'x');
  assert.throws(() => CLIPModel.fromPretrained(noWeights), /noweights\/pytorch_model\.bin: not a torch\.save file/);
  writeFileSync(path.join(noWeights, 'config.json'), JSON.stringify({ model_type: 'bert' }));
  assert.throws(() => CLIPModel.fromPretrained(noWeights), /model_type 'bert' is not 'clip'/);
});

test('forward: shapes, logitsPerImage = logitsPerText.T = exp(t)·cos, features match getImage/TextFeatures', () => {
  torch.scope(() => torch.noGrad(() => {
    const { inputIds } = model.tokenize(['a red cat', 'a dog', 'cat cat cat dog']);
    const px = torch.randn([2, 3, 32, 32]);
    const out = model.forward({ inputIds, pixelValues: px });
    assert.deepEqual(out.logitsPerImage.shape, [2, 3]);
    assert.deepEqual(out.logitsPerText.shape, [3, 2]);
    assert.ok(out.logitsPerImage.equal(out.logitsPerText.t()));
    const img = model.getImageFeatures(px);
    const txt = model.getTextFeatures(inputIds);
    assert.deepEqual(img.shape, [2, PROJ]);
    assert.deepEqual(txt.shape, [3, PROJ]);
    const manual = F.normalize(img, { dim: -1 }).matmul(F.normalize(txt, { dim: -1 }).t()).mul(Math.exp(2.6592));
    assert.ok(manual.allclose(out.logitsPerImage, { atol: 1e-4, rtol: 1e-4 }));
    assert.ok(out.imageEmbeds.norm(2, -1).allclose(torch.ones([2]), { atol: 1e-5 }));
  }));
});

test('matches a plain-PyTorch transcription of HF CLIPModel on the same files (quick_gelu text, gelu vision)', { skip: !hasTorchPy && 'no /usr/bin/python3 with torch' }, () => {
  const inputs = path.join(tmp, 'inputs.safetensors');
  const { ids, px } = torch.scope(() => {
    const { inputIds } = model.tokenize(['a red cat', 'do re', 'cat', 'the quick brown fox jumps'], { pad: true });
    const p = torch.randn([3, 3, 32, 32]);
    saveFile({ input_ids: inputIds, pixel_values: p }, inputs);
    return { ids: inputIds, px: p };
  });
  const ref = runPy(PY_MODEL, [hfDir, inputs]) as { text: number[]; image: number[]; logits_per_image: number[] };
  torch.scope(() => torch.noGrad(() => {
    const out = model.forward({ inputIds: ids, pixelValues: px });
    assert.ok(maxAbsDiff(model.getTextFeatures(ids).toFloat32Array(), ref.text) < 1e-4);
    assert.ok(maxAbsDiff(model.getImageFeatures(px).toFloat32Array(), ref.image) < 1e-4);
    assert.ok(maxAbsDiff(out.logitsPerImage.toFloat32Array(), ref.logits_per_image) < 1e-3);
  }));
  ids.dispose();
  px.dispose();
});

test('causal mask: tokens after position i do not change the output at positions ≤ i', () => {
  torch.scope(() => torch.noGrad(() => {
    const a = torch.tensor(BigInt64Array.from([518n, 100n, 200n, 300n, 400n, 150n, 519n]), { shape: [1, 7] });
    const b = torch.tensor(BigInt64Array.from([518n, 100n, 200n, 300n, 17n, 18n, 19n]), { shape: [1, 7] });
    const ha = model.text_model.forward(a).lastHiddenState;
    const hb = model.text_model.forward(b).lastHiddenState;
    assert.ok(ha.narrow(1, 0, 4).allclose(hb.narrow(1, 0, 4), { atol: 1e-6 }));
    assert.ok(!ha.narrow(1, 4, 1).allclose(hb.narrow(1, 4, 1), { atol: 1e-3 }));
    // and a shorter sequence gives the same prefix
    const hc = model.text_model.forward(a.narrow(1, 0, 4)).lastHiddenState;
    assert.ok(hc.allclose(ha.narrow(1, 0, 4), { atol: 1e-5 }));
  }));
});

test('eos pooling: legacy argmax (eos_token_id 2) and first-eos; padding length and pad id do not matter', () => {
  const V = model.tokenizer.vocabSize;
  const eos = V - 1;
  torch.scope(() => torch.noGrad(() => {
    const ids77 = model.tokenize(['a red cat', 'dog'], { pad: true }).inputIds; // padded with 0 to 16
    const idsShort = model.tokenize(['a red cat', 'dog']).inputIds; // padded to the longest
    const idsEosPad = ids77.maskedFill(ids77.eq(0), eos); // HF pads with <|endoftext|>
    const f77 = model.getTextFeatures(ids77);
    assert.ok(f77.allclose(model.getTextFeatures(idsShort), { atol: 1e-5 }));
    assert.ok(f77.allclose(model.getTextFeatures(idsEosPad), { atol: 1e-5 }));
    // pooled at the eos position: compare with the hidden state there
    const out = model.text_model.forward(ids77);
    const flat = ids77.toArray();
    const pos = [0, 1].map((r) => flat.slice(r * 16, (r + 1) * 16).indexOf(eos));
    assert.deepEqual(pos, [model.tokenizer.encode('a red cat', { pad: false }).length - 1, model.tokenizer.encode('dog', { pad: false }).length - 1]);
    assert.deepEqual(model.text_model.eosPositions(ids77).toArray(), pos);
    for (let r = 0; r < 2; r++) assert.ok(out.pooledOutput.get(r).equal(out.lastHiddenState.get(r).get(pos[r]!)));
    // an attention mask over right padding changes nothing either
    const { inputIds, attentionMask } = model.tokenize(['a red cat', 'dog'], { pad: true });
    assert.ok(model.getTextFeatures(inputIds, attentionMask).allclose(f77, { atol: 1e-5 }));
  }));
  // a config with the real eos id pools at the FIRST eos (not the largest id)
  const dir = writeTinyClip(path.join(tmp, 'eos'), { eos: 515 });
  const m = CLIPModel.fromPretrained(dir);
  torch.scope(() => {
    const ids = torch.tensor(BigInt64Array.from([518n, 515n, 519n, 519n, 515n, 519n]), { shape: [2, 3] });
    assert.deepEqual(m.text_model.eosPositions(ids).toArray(), [1, 1]);
    assert.deepEqual(model.text_model.eosPositions(ids).toArray(), [2, 0]); // legacy: argmax of ids (first of the largest)
  });
  m.dispose();
});

test('pooled fast paths (last layer on the pooled rows only, text cut after the last eos) equal the full forward', () => {
  torch.scope(() => torch.noGrad(() => {
    const { inputIds, attentionMask } = model.tokenize(['a red cat', 'dog', 'a cat and a dog and a red dog'], { pad: true });
    const full = model.text_model.forward(inputIds).pooledOutput;
    assert.ok(model.text_model.pooled(inputIds).allclose(full, { atol: 1e-5 }));
    assert.ok(model.text_model.pooled(inputIds, attentionMask).allclose(model.text_model.forward(inputIds, attentionMask).pooledOutput, { atol: 1e-5 }));
    const px = torch.randn([3, 3, 32, 32]);
    const vm = model.vision_model as unknown as { forwardTokens(x: Tensor): Tensor; post_layernorm: nn.LayerNorm; forward(x: Tensor): Tensor };
    const viaTokens = vm.post_layernorm.forward(vm.forwardTokens(px).select(1, 0));
    assert.ok(vm.forward(px).allclose(viaTokens, { atol: 1e-5 }));
  }));
  // gradients flow through the fast paths (training uses them)
  torch.scope(() => {
    const px = torch.randn([2, 3, 32, 32]);
    model.getImageFeatures(px).sum().add(model.getTextFeatures(model.tokenize(['a cat', 'a dog']).inputIds).sum()).backward();
    for (const [k, p] of model.namedParameters()) {
      if (k === 'logit_scale') continue;
      assert.ok(p.grad !== null, `no gradient for ${k}`);
    }
    model.zeroGrad();
  });
});

test('activation comes from the config: quick_gelu and gelu differ', () => {
  const cfg = { projection_dim: 8, text_config: { hidden_size: 16, intermediate_size: 32, num_hidden_layers: 1, num_attention_heads: 2, max_position_embeddings: 8 },
    vision_config: { hidden_size: 16, intermediate_size: 32, num_hidden_layers: 1, num_attention_heads: 2, image_size: 16, patch_size: 8 } };
  torch.manualSeed(1);
  const q = new CLIPModel(cfg).eval();
  const g = new CLIPModel({ ...cfg, vision_config: { ...cfg.vision_config, hidden_act: 'gelu' } }).eval();
  torch.scope(() => torch.noGrad(() => {
    g.loadStateDict(q.stateDict());
    const px = torch.randn([1, 3, 16, 16]);
    assert.equal((q.vision_model as unknown as { config: { activation: string } }).config.activation, 'quick_gelu');
    assert.ok(!q.getImageFeatures(px).allclose(g.getImageFeatures(px), { atol: 1e-4 }));
  }));
  assert.throws(() => new CLIPModel({ ...cfg, vision_config: { ...cfg.vision_config, hidden_act: 'swish' } }), /hidden_act 'swish' is not supported/);
  q.dispose();
  g.dispose();
});

test('preprocessing: shortest side 224 bicubic, centre crop, CLIP mean/std (against PIL as HF does it); preprocessor_config.json values', { skip: !hasTorchPy && 'no /usr/bin/python3 with PIL' }, async () => {
  assert.deepEqual(resizeOutputSize(480, 640, 224), [224, 298]);
  assert.deepEqual(resizeOutputSize(640, 480, 224), [298, 224]);
  const file = path.join(tmp, 'photo.png');
  // smooth gradients plus a few edges, 150×260 (upscale one way, not the other)
  const W = 260, H = 150;
  const raw = Buffer.alloc(W * H * 3);
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) {
    const i = (y * W + x) * 3;
    raw[i] = (x * 255) / W;
    raw[i + 1] = (y * 255) / H;
    raw[i + 2] = ((x >> 4) + (y >> 4)) % 2 ? 230 : 30;
  }
  await sharp(raw, { raw: { width: W, height: H, channels: 3 } }).png().toFile(file);
  const p = new CLIPImageProcessor();
  const img = await decodeImage(file);
  const ours = torch.scope(() => {
    const t = p.preprocess([img]);
    assert.deepEqual(t.shape, [1, 3, 224, 224]);
    return t.toFloat32Array();
  });
  const ref = runPy(PY_PREPROCESS, [file, '224', '224']) as number[];
  // PIL resamples in fixed point; one 8-bit level is 1/255/0.26 ≈ 0.015 after normalising
  let mean = 0;
  for (let i = 0; i < ref.length; i++) mean += Math.abs(ours[i]! - ref[i]!);
  mean /= ref.length;
  assert.ok(mean < 0.01, `mean |diff| ${mean}`);
  assert.ok(maxAbsDiff(ours, ref) < 0.2, `max |diff| ${maxAbsDiff(ours, ref)}`);
  // preprocessor_config.json: sizes and mean/std from the checkpoint
  const q = CLIPImageProcessor.fromHF({ size: { shortest_edge: 64 }, crop_size: { height: 48, width: 48 }, image_mean: [0.5, 0.5, 0.5], image_std: [0.5, 0.5, 0.5], resample: 3 });
  assert.equal(q.config.size, 64);
  assert.equal(q.config.cropSize, 48);
  torch.scope(() => {
    const t = q.preprocess([{ data: new Uint8Array(100 * 80 * 3).fill(255), width: 100, height: 80, channels: 3 }]);
    assert.deepEqual(t.shape, [1, 3, 48, 48]);
    assert.ok(t.allclose(torch.ones([1, 3, 48, 48]), { atol: 1e-5 }));
  });
});

test('zero-shot: Results/Probs shape as predict, prompt ensembling = mean of normalised prompt embeddings', async () => {
  const labels = ['cat', 'dog', 'red'];
  const templates = ['a photo of a {}.', 'a {} here', 'itap of a {}'];
  // ensembling by hand
  torch.scope(() => {
    const ens = model.classEmbeddings(labels, templates);
    assert.deepEqual(ens.shape, [3, PROJ]);
    const manual = torch.stack(labels.map((l) => F.normalize(model.encodeText(templates.map((t) => t.replace('{}', l))).mean(0), { dim: 0 })));
    assert.ok(ens.allclose(manual, { atol: 1e-5 }));
  });
  const a = path.join(tmp, 'a.png');
  await sharp({ create: { width: 40, height: 56, channels: 3, background: '#c03020' } }).png().toFile(a);
  const results = await zeroShot(model, [a, torch.scope(() => torch.rand([2, 3, 32, 32]).keep())], labels, { templates });
  assert.equal(results.length, 3);
  const r = results[0]!;
  assert.ok(r instanceof Results);
  assert.ok(r.probs instanceof Probs);
  assert.deepEqual(r.names, labels);
  assert.deepEqual(r.origShape, [56, 40]);
  assert.equal(r.path, a);
  assert.equal(r.probs.data.length, 3);
  assert.ok(Math.abs(r.probs.data.reduce((x, y) => x + y, 0) - 1) < 1e-5);
  assert.ok(r.probs.top1 >= 0 && r.probs.top1 < 3);
  assert.equal(r.probs.top1conf, Math.max(...r.probs.data));
  assert.equal(r.embedding!.length, PROJ);
  assert.equal(results[1]!.path, '<tensor 0>');
  // the probabilities are softmax(exp(t)·cos(image, class))
  const img = await decodeImage(a);
  torch.scope(() => {
    const e = model.encodeImages(model.processor.preprocess([img]));
    const p = e.matmul(model.classEmbeddings(labels, templates).t()).mul(Math.exp(2.6592)).softmax(-1);
    assert.ok(maxAbsDiff(p.toFloat32Array(), r.probs.data) < 1e-5);
  });
  assert.equal(IMAGENET_TEMPLATES.length, 80);
  await assert.rejects(zeroShot(model, a, []), /non-empty list of labels/);
  assert.throws(() => model.classEmbeddings(['x'], ['no placeholder']), /has no \{\}/);
});

test('savePretrained → fromPretrained round trip (HF folder), identity names the weights', () => {
  const out = path.join(tmp, 'saved');
  model.savePretrained(out);
  for (const f of ['config.json', 'model.safetensors', 'preprocessor_config.json', 'vocab.json', 'merges.txt']) assert.ok(existsSync(path.join(out, f)), f);
  const m = CLIPModel.fromPretrained(out);
  torch.scope(() => {
    const a = model.stateDict();
    for (const [k, t] of m.stateDict()) assert.ok(t.equal(a.get(k)!), k);
  });
  assert.equal(m.tokenizer.vocabSize, model.tokenizer.vocabSize);
  assert.match(m.identity, /^clip:[0-9a-f]{64}$/);
  assert.equal(m.identity, CLIPModel.fromPretrained(out).identity);
  assert.notEqual(m.identity, model.identity); // different files, although the same values
  m.dispose();
});

test('a folder with only pytorch_model.bin (torch.save by PyTorch) loads the same weights as model.safetensors', { skip: !hasTorchPy && 'no /usr/bin/python3 with torch' }, () => {
  const out = path.join(tmp, 'saved');
  const bin = path.join(tmp, 'bin-only');
  mkdirSync(bin, { recursive: true });
  for (const f of ['config.json', 'preprocessor_config.json', 'vocab.json', 'merges.txt']) writeFileSync(path.join(bin, f), readFileSync(path.join(out, f)));
  // PyTorch reads the safetensors file by hand (8-byte header length, JSON header, raw data) and torch.saves the state dict
  const py = `import json, struct, sys, collections, numpy as np, torch
raw = open(sys.argv[1], 'rb').read()
n = struct.unpack('<Q', raw[:8])[0]
head = json.loads(raw[8:8 + n])
sd = collections.OrderedDict()
for k, v in head.items():
    if k == '__metadata__': continue
    a, b = v['data_offsets']
    sd[k] = torch.from_numpy(np.frombuffer(raw[8 + n + a:8 + n + b], dtype={'F32': np.float32, 'I64': np.int64}[v['dtype']]).reshape(v['shape']).copy())
torch.save(sd, sys.argv[2])`;
  const r = spawnSync(PY, ['-c', py, path.join(out, 'model.safetensors'), path.join(bin, 'pytorch_model.bin')], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const m = CLIPModel.fromPretrained(bin);
  torch.scope(() => {
    const a = model.stateDict();
    for (const [k, t] of m.stateDict()) assert.ok(t.equal(a.get(k)!), k);
  });
  assert.deepEqual(m.weightsFiles, [path.join(bin, 'pytorch_model.bin')]);
  m.dispose();
});

test('CLIPEmbedder: index.searchText ranks images by text similarity', async () => {
  const imgDir = path.join(tmp, 'imgs');
  mkdirSync(imgDir);
  const colours = ['#ff0000', '#00ff00', '#0000ff', '#ffff00', '#ffffff', '#000000'];
  const files = await Promise.all(colours.map(async (c, i) => {
    const f = path.join(imgDir, `c${i}.png`);
    await sharp({ create: { width: 48, height: 40, channels: 3, background: c } }).png().toFile(f);
    return f;
  }));
  const embedder = new CLIPEmbedder(model);
  assert.equal(embedder.dim, PROJ);
  assert.equal(embedder.identity, model.identity);
  const vecs = await embedder.embedImages(files);
  assert.equal(vecs.length, 6);
  const [tv] = await embedder.embedText(['a red cat']);
  assert.equal(tv!.length, PROJ);
  const index = await Index.open({ db: path.join(tmp, 'db'), dataset: 'colours', embedder });
  try {
    await index.update(imgDir);
    const hits = await index.searchText('a red cat', { limit: 6 });
    assert.equal(hits.length, 6);
    // the ranking is the cosine ranking of the CLIP vectors
    const dot = (a: Float32Array, b: Float32Array): number => a.reduce((s, v, i) => s + v * b[i]!, 0);
    const expected = files.map((f, i) => ({ f, s: dot(vecs[i]!, tv!) })).sort((a, b) => b.s - a.s).map((x) => path.resolve(x.f));
    assert.deepEqual(hits.map((h) => h.path), expected);
    assert.ok(Math.abs(hits[0]!.score - dot(vecs.find((_, i) => path.resolve(files[i]!) === hits[0]!.path)!, tv!)) < 1e-4);
  } finally {
    index.close();
  }
});

test('Model.load on a CLIP folder: task clip, embed = CLIP image embeddings, setClasses → predict = zeroShot, val, save keeps the classes', async () => {
  const dir = path.join(tmp, 'task');
  mkdirSync(dir);
  // solid colours: the predictor's resizing (CLIP's processor) and the validator's (loadEvalData) give the same pixels
  const colours: Record<string, string> = { red: '#e02020', green: '#20d040', blue: '#2040e0' };
  const files: string[] = [];
  for (const [name, hex] of Object.entries(colours)) {
    mkdirSync(path.join(dir, 'val', name), { recursive: true });
    for (let k = 0; k < 2; k++) {
      const f = path.join(dir, 'val', name, `${k}.png`);
      await sharp({ create: { width: 40 + 8 * k, height: 36, channels: 3, background: hex } }).png().toFile(f);
      files.push(f);
    }
  }
  const m = await Model.load(hfDir);
  try {
    assert.equal(m.task, 'clip');
    assert.equal(m.dim, PROJ);
    assert.equal(m.identity, model.identity);
    // embed: the L2-normalised image embeddings of the processor's pixels
    const vecs = await m.embed(files.slice(0, 2));
    const imgs = await Promise.all(files.slice(0, 2).map((f) => decodeImage(f)));
    torch.scope(() => assert.ok(maxAbsDiff(model.encodeImages(model.processor.preprocess(imgs)).toFloat32Array(), [...vecs[0]!, ...vecs[1]!]) < 1e-5));
    // without classes: embeddings, and probs says how to get them
    const [plain] = await m.predict(files[0]!);
    assert.equal(plain!.embedding!.length, PROJ);
    assert.throws(() => plain!.probs, (e: Error) => e instanceof TaskError && /setClasses/.test(e.message));
    assert.throws(() => m.requireClassifier(), /setClasses/);
    // with classes: the same answers as the zeroShot shortcut on the same CLIPModel
    const labels = ['red', 'green', 'blue'];
    const templates = ['a photo of a {}.', 'a {} thing'];
    assert.equal(m.setClasses(labels, { templates }), m);
    assert.deepEqual(m.names, labels);
    const rs = await m.predict(files);
    const ref = await zeroShot(model, files, labels, { templates });
    assert.equal(rs.length, 6);
    for (let i = 0; i < rs.length; i++) {
      assert.deepEqual(rs[i]!.names, labels);
      assert.equal(rs[i]!.probs.top1, ref[i]!.probs.top1);
      assert.ok(maxAbsDiff(rs[i]!.probs.data, ref[i]!.probs.data) < 1e-5);
      assert.equal(rs[i]!.embedding, null); // only when asked
    }
    // val: zero-shot top-1 over the class folders, as predict's answers
    const v = await m.val({ data: dir });
    assert.equal(v.method, 'zero-shot');
    assert.equal(v.split, 'val');
    assert.equal(v.n, 6);
    const expected = rs.filter((r, i) => r.names[r.probs.top1] === path.basename(path.dirname(files[i]!))).length / 6;
    assert.ok(Math.abs(v.top1 - expected) < 1e-9, `val top1 ${v.top1}, predict ${expected}`);
    // a model without classes is validated with the data's class names as labels
    const fresh = await Model.load(hfDir);
    const v2 = await fresh.val({ data: dir });
    assert.deepEqual(v2.names, ['blue', 'green', 'red']);
    fresh.dispose();
    // save → load: an HF folder (this model has its own tokenizer) that keeps the classes and templates
    assert.throws(() => m.save(path.join(tmp, 'zs.safetensors')), /its own tokenizer .*Save it to a folder/);
    const file = path.join(tmp, 'zs');
    m.save(file);
    assert.equal(m.weights, file);
    const back = await Model.load(file);
    assert.equal(back.task, 'clip');
    assert.deepEqual(back.names, labels);
    const rs2 = await back.predict(files);
    for (let i = 0; i < rs.length; i++) assert.ok(maxAbsDiff(rs2[i]!.probs.data, rs[i]!.probs.data) < 1e-5);
    back.dispose();
    assert.throws(() => m.setClasses([]), /non-empty list of labels/);
  } finally {
    m.dispose();
  }
});
