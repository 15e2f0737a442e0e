// TorchScript models through the Model facade (src/api/torchscript.ts, src/models/torchscript.ts,
// `dyad train --backbone-from`): torchvision resnet18s traced by Debian's /usr/bin/python3 inside
// the test (fc = Identity: an embedder; fc = 4 classes: a classifier) load with Model.load('x.pt'),
// embed and predict as PyTorch does on the same pixels, probe and fine-tune (a step changes the
// TorchScript weights; the saved classifier reloads from the .pt plus its weights), and encode a
// SimCLR run whose best.safetensors loads and embeds. A missing or changed .pt, a torch.save zip
// and a truncated archive give errors that name the file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';

import * as torch from '../src/torch/index.js';
import { Model } from '../src/api/model.js';
import { resolveConfig } from '../src/engine/config.js';
import { BackboneEmbedder } from '../src/api/torchscript.js';
import { ScriptModule, TorchScriptError } from '../src/nn/index.js';
import { Classifier } from '../src/models/classifier.js';
import { tempDir } from './helpers/tmp.js';
import { mulberry32 } from './helpers/rng.js';
import { writeShapeFolder } from './helpers/images.js';

const PY = '/usr/bin/python3';
const skip = !(existsSync(PY) && spawnSync(PY, ['-c', 'import torch, torchvision'], { encoding: 'utf8' }).status === 0) && 'no /usr/bin/python3 with torch and torchvision (scripts/setup.sh installs them)';
const CLI = path.resolve('bin/dyad.js');
const S = 32; // imgsz of every model here: small and fast
const dir = tempDir('ts-model');
const NAMES = ['hstripes', 'vstripes', 'blob', 'diagonal'];

const PY_MAKE = String.raw`
import sys, json, numpy as np, torch, torchvision
torch.set_num_threads(1)
d = sys.argv[1]
def make(seed, fc):
    torch.manual_seed(seed)
    m = torchvision.models.resnet18(num_classes=4)
    if fc is None: m.fc = torch.nn.Identity()
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.2, 0.2); mod.running_var.uniform_(0.5, 1.5)
    return m.eval()
px = np.load(d + '/pixels.npy')                      # [N, 3, S, S] uint8, the PNGs' pixels
mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1); std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
x = (torch.from_numpy(px).float() / 255 - mean) / std
emb, clf = make(0, None), make(1, 4)
for name, m in (('emb', emb), ('clf', clf)):
    t = torch.jit.trace(m, torch.randn(1, 3, ${S}, ${S}))
    t.save(d + '/' + name + '.pt')
    with torch.no_grad(): y = t(x)
    np.save(d + '/' + name + '_out.npy', y.numpy())
    np.save(d + '/' + name + '_norm.npy', torch.nn.functional.normalize(y, dim=1).numpy())
    np.save(d + '/' + name + '_probs.npy', y.softmax(1).numpy())
torch.save(emb.state_dict(), d + '/state_dict.pt')
torch.jit.trace(torch.nn.Conv2d(3, 4, 3).eval(), torch.randn(1, 3, 8, 8)).save(d + '/fmap.pt')   # a feature map, not features
`;

let made = false;
/** The test's files: images, their pixels, and the traced models with PyTorch's outputs on them. */
async function fixtures(): Promise<{ images: string[]; data: string }> {
  const images = Array.from({ length: 6 }, (_, i) => path.join(dir, 'img', `${i}.png`));
  const data = path.join(dir, 'shapes');
  if (!made) {
    mkdirSync(path.join(dir, 'img'), { recursive: true });
    const rng = mulberry32(7);
    const px = new Uint8Array(images.length * 3 * S * S);
    for (let i = 0; i < images.length; i++) {
      const hwc = Buffer.alloc(S * S * 3);
      for (let k = 0; k < hwc.length; k++) hwc[k] = Math.floor(rng() * 256);
      await sharp(hwc, { raw: { width: S, height: S, channels: 3 } }).png().toFile(images[i]!);
      for (let c = 0; c < 3; c++) for (let p = 0; p < S * S; p++) px[i * 3 * S * S + c * S * S + p] = hwc[p * 3 + c]!;
    }
    torch.scope(() => torch.saveNpy(torch.fromBytes(px, 'uint8', [images.length, 3, S, S]), path.join(dir, 'pixels.npy')));
    writeFileSync(path.join(dir, 'make.py'), PY_MAKE);
    const r = spawnSync(PY, [path.join(dir, 'make.py'), dir], { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '1' } });
    assert.equal(r.status, 0, r.stderr);
    await writeShapeFolder(data, 6, mulberry32(3));
    made = true;
  }
  return { images, data };
}
const f = (name: string): string => path.join(dir, name);

function maxDiff(rows: Float32Array[], npy: string): number {
  return torch.scope(() => {
    const ref = torch.loadNpy(npy);
    const got = torch.tensor(Float32Array.from(rows.flatMap((r) => [...r])), { shape: [rows.length, rows[0]!.length] });
    assert.deepEqual(got.shape, ref.shape);
    return got.sub(ref).abs().max().item();
  });
}

test('Model.load(model.pt): a traced embedder embeds as PyTorch does; a classifier with names predicts its softmax', { skip }, async () => {
  const { images } = await fixtures();
  const emb = await Model.load(f('emb.pt'), { imgsz: S });
  assert.equal(emb.task, 'embedder');
  assert.equal(emb.dim, 512);
  assert.equal(emb.config!.backbone, 'torchscript');
  assert.equal(emb.config!.backboneFrom, f('emb.pt'));
  assert.deepEqual(emb.config!.mean, [0.485, 0.456, 0.406]);
  const d = maxDiff(await emb.embed(images), f('emb_norm.npy'));
  assert.ok(d <= 1e-4, `embed: max abs diff ${d}`);
  await assert.rejects(emb.predict(images[0]!).then((r) => r[0]!.probs), /is an embedder/);
  // other statistics (the output size given: no probe forward)
  const custom = await Model.load(f('emb.pt'), { imgsz: S, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], featureDim: 512 });
  assert.deepEqual(custom.config!.std, [0.5, 0.5, 0.5]);
  assert.ok(maxDiff(await custom.embed(images), f('emb_norm.npy')) > 1e-3);
  custom.dispose();
  // save → reload: the .pt again, then the saved weights
  emb.save(f('emb.safetensors'));
  emb.dispose();
  const again = await Model.load(f('emb.safetensors'));
  assert.equal(again.task, 'embedder');
  assert.ok(again.net!.module instanceof BackboneEmbedder);
  assert.ok(maxDiff(await again.embed(images), f('emb_norm.npy')) <= 1e-4);
  again.dispose();

  const clf = await Model.load(f('clf.pt'), { imgsz: S, names: NAMES });
  assert.equal(clf.task, 'classifier');
  assert.deepEqual(clf.names, NAMES);
  const rs = await clf.predict(images);
  const probs = rs.map((r) => r.probs!.data);
  assert.ok(maxDiff(probs, f('clf_probs.npy')) <= 1e-4, 'probs = PyTorch softmax');
  const ref = torch.scope(() => torch.loadNpy(f('clf_out.npy')).argmax(1).toInt32Array());
  assert.deepEqual(rs.map((r) => r.probs!.top1), [...ref]);
  assert.equal(rs[0]!.names[rs[0]!.probs!.top1], NAMES[ref[0]!]);
  clf.dispose();
  // names from a sidecar (Ultralytics' dict form); the wrong number of names is an error naming the file
  writeFileSync(f('clf.pt.json'), JSON.stringify({ names: Object.fromEntries(NAMES.map((n, i) => [String(i), n])), imgsz: S }));
  const side = await Model.load(f('clf.pt'));
  assert.equal(side.task, 'classifier');
  assert.deepEqual(side.names, NAMES);
  assert.equal(side.config!.imageSize, S);
  side.dispose();
  // or classes.txt beside it (one name a line), with a JSON sidecar that gives only the size
  mkdirSync(f('sub'));
  copyFileSync(f('clf.pt'), f('sub/clf.pt'));
  writeFileSync(f('sub/clf.pt.json'), JSON.stringify({ imgsz: S }));
  writeFileSync(f('sub/classes.txt'), 'w\nx\ny\nz\n');
  const txt = await Model.load(f('sub/clf.pt'));
  assert.deepEqual([txt.task, txt.names, txt.config!.imageSize], ['classifier', ['w', 'x', 'y', 'z'], S]);
  txt.dispose();
  await assert.rejects(Model.load(f('clf.pt'), { names: ['a', 'b'] }), (e: unknown) => e instanceof TorchScriptError && e.message.includes(f('clf.pt')) && /2 class names for a model with 4 outputs/.test(e.message));
});

test('linearProbe and finetune on a TorchScript backbone: a step changes its weights; the saved classifier reloads and predicts the same', { skip }, async () => {
  const { images, data } = await fixtures();
  const emb = await Model.load(f('emb.pt'), { imgsz: S });
  const probe = await emb.linearProbe({ data, silent: true, lrs: [0.01], weightDecays: [0], out: f('probe.safetensors') });
  assert.equal(probe.task, 'classifier');
  assert.deepEqual(probe.names, [...NAMES].sort());
  const probeRe = await Model.load(f('probe.safetensors'));
  assert.deepEqual((await probeRe.predict(images)).map((r) => r.probs!.top1), (await probe.predict(images)).map((r) => r.probs!.top1));
  probeRe.dispose();

  const ft = await emb.finetune({ data, epochs: 1, minSteps: 2, maxSteps: 2, batch: 8, lr: 1, silent: true, out: f('ft.safetensors') });
  assert.equal(ft.task, 'classifier');
  const original = ScriptModule.load(f('emb.pt'));
  torch.scope(() => {
    const tuned = ft.net!.classifier!.backbone.stateDict();
    const w0 = original.stateDict().get('layer1.0.conv1.weight')!;
    assert.ok(tuned.get('layer1.0.conv1.weight')!.sub(w0).abs().max().item() > 1e-7, 'fine-tuning changed the TorchScript weights');
    // the loaded embedder's own backbone is untouched (fine-tuning trained a copy)
    assert.equal(emb.net!.backbone.stateDict().get('layer1.0.conv1.weight')!.sub(w0).abs().max().item(), 0);
  });
  original.dispose();
  const before = (await ft.predict(images)).map((r) => r.probs!.data);
  const re = await Model.load(f('ft.safetensors'));
  assert.equal(re.config!.backbone, 'torchscript');
  const after = (await re.predict(images)).map((r) => r.probs!.data);
  const d = Math.max(...before.flatMap((r, i) => [...r].map((v, j) => Math.abs(v - after[i]![j]!))));
  assert.ok(d <= 1e-6, `reloaded classifier: max abs diff ${d}`);
  for (const m of [emb, probe, ft, re]) m.dispose();
});

test('dyad train --method simclr --backbone-from model.pt: the run\'s best.safetensors loads and embeds; a moved or changed .pt is an error naming it', { skip }, async () => {
  const { images, data } = await fixtures();
  copyFileSync(f('emb.pt'), f('ssl.pt'));
  const out = f('run');
  const r = spawnSync(process.execPath, [CLI, 'train', '--method', 'simclr', '--backbone-from', f('ssl.pt'), '--data', data, '--epochs', '1', '--batch', '8',
    '--image-size', String(S), '--max-steps-per-epoch', '2', '--knn-every', '0', '--threads', '1', '--out', out], { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '1' } });
  assert.equal(r.status, 0, r.stderr + r.stdout);
  const config = JSON.parse(readFileSync(path.join(out, 'config.json'), 'utf8')) as Record<string, unknown>;
  assert.equal(config.backbone, 'torchscript');
  assert.equal(config.backboneFrom, f('ssl.pt'));
  assert.match(String(config.backboneSha256), /^[0-9a-f]{64}$/);
  const best = path.join(out, 'best.safetensors');
  const m = await Model.load(best);
  assert.equal(m.task, 'embedder');
  assert.equal(m.dim, 512);
  const v = await m.embed(images);
  assert.equal(v.length, images.length);
  assert.ok(v.every((row) => Math.abs(Math.hypot(...row) - 1) < 1e-4));
  // SimCLR trained the TorchScript encoder (its convolutions too, with channels-last inputs): its embeddings moved away from the .pt's
  assert.ok(maxDiff(v, f('emb_norm.npy')) > 1e-4);
  const original = ScriptModule.load(f('emb.pt'));
  torch.scope(() => {
    const w = m.net!.backbone.stateDict().get('layer2.0.conv1.weight')!;
    assert.ok(w.sub(original.stateDict().get('layer2.0.conv1.weight')!).abs().max().item() > 1e-6, 'conv weights trained');
  });
  original.dispose();
  m.dispose();

  renameSync(f('ssl.pt'), f('ssl.moved'));
  await assert.rejects(Model.load(best), (e: unknown) => e instanceof Error && e.message.includes(best) && e.message.includes(f('ssl.pt')) && /is missing.*Put the \.pt file back/.test(e.message));
  copyFileSync(f('clf.pt'), f('ssl.pt'));
  await assert.rejects(Model.load(best), (e: unknown) => e instanceof Error && e.message.includes(f('ssl.pt')) && /changed since this model was built on it/.test(e.message));
  renameSync(f('ssl.moved'), f('ssl.pt'));
  (await Model.load(best)).dispose();
});

test('wrong files: a torch.save zip, a truncated archive, a feature map, a wrong input size, a missing --backbone-from', { skip }, async () => {
  await fixtures();
  // a torch.save zip is not TorchScript: Model.load reads it as a torchvision state dict (and says so when it is not one)
  assert.equal((await import('../src/nn/index.js')).isTorchScriptFile(f('state_dict.pt')), false);
  await assert.rejects(Model.load(f('state_dict.pt')), (e: unknown) => e instanceof Error && e.message.startsWith(`${f('state_dict.pt')} is not a torchvision resnet18 state dict`) && /fc\.weight.*TorchScript/.test(e.message));
  const bytes = readFileSync(f('emb.pt'));
  writeFileSync(f('truncated.pt'), bytes.subarray(0, bytes.length >> 1));
  await assert.rejects(Model.load(f('truncated.pt')), (e: unknown) => e instanceof Error && e.message.startsWith(f('truncated.pt')) && /truncated/.test(e.message));
  // the wrong input size: the error names the file, libtorch's reason and the options that fix it
  await assert.rejects(Model.load(f('emb.pt'), { imgsz: S, channels: 1 }), (e: unknown) => e instanceof TorchScriptError && e.message.startsWith(f('emb.pt'))
    && /\{ imgsz, channels \}/.test(e.message) && /channels/.test(e.message.split('libtorch:')[1]!));
  await assert.rejects(Model.load(f('fmap.pt'), { imgsz: S }), (e: unknown) => e instanceof TorchScriptError && e.message.startsWith(f('fmap.pt'))
    && /returns \[1, 4, 30, 30\].*not features \[N, D\]/.test(e.message));
  // --backbone-from a missing file or a state dict: named before any data is read
  assert.throws(() => resolveConfig({ backboneFrom: f('nope.pt') }), (e: unknown) => e instanceof TorchScriptError && /--backbone-from .*nope\.pt: no such file/.test((e as Error).message));
  assert.throws(() => resolveConfig({ backboneFrom: f('state_dict.pt') }), /state_dict\.pt is not a TorchScript archive.*torch\.jit\.trace/);
  const c = resolveConfig({ backboneFrom: path.relative(process.cwd(), f('emb.pt')) });
  assert.deepEqual([c.backbone, c.backboneFrom, c.channels], ['torchscript', f('emb.pt'), 3]);
});

test('a parent\'s to() leaves a ScriptModule\'s parameters its own tensors: channels-last is skipped, a dtype change refused', { skip }, async () => {
  await fixtures();
  const sm = ScriptModule.load(f('emb.pt'), { featureDim: 512 });
  const clf = new Classifier(sm, 2);
  clf.to({ memoryFormat: 'channelsLast' });
  torch.scope(() => {
    const x = torch.randn([1, 3, S, S]);
    const y0 = torch.noGrad(() => sm.forward(x));
    const w = sm.namedParameters().find(([n]) => n === 'layer1.0.conv1.weight')![1];
    torch.noGrad(() => w.zero_());
    assert.ok(torch.noGrad(() => sm.forward(x)).sub(y0).abs().max().item() > 1e-4, 'the TorchScript forward sees a change made through the dyad parameter');
  });
  assert.throws(() => clf.to('float64'), (e: unknown) => e instanceof TorchScriptError && /stay float32 on cpu/.test((e as Error).message));
  clf.dispose();
});
