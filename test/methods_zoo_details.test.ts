// The papers' details the zoo keeps: DINO's per-parameter gradient clipping (clip_grad 3.0, its
// utils.clip_gradients) and its head's last layer frozen during the first epoch (freeze_last_layer 1),
// checked by hand and through the training loop; BYOL's asymmetric views (blur p 1.0 / 0.1,
// solarization p 0 / 0.2), checked by forcing each view's probabilities to 0 or 1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as torch from '../src/torch/index.js';
import { DINO } from '../src/methods/index.js';
import { createBackbone } from '../src/models/index.js';
import { DINOProjectionHead } from '../src/models/ssl_heads.js';
import { train } from '../src/engine/trainer.js';
import type { TrainData } from '../src/engine/data.js';
import { InMemoryDataset } from '../src/data/index.js';
import { BYOLTransform, Compose, GaussianBlur, RandomSolarization, type Transform } from '../src/transforms/index.js';
import { noiseBytes } from './helpers/rng.js';
import { tempDir } from './helpers/tmp.js';

const backbone = () => createBackbone({ name: 'resnet18', inChannels: 1, imageSize: 16, width: 8 });

test('DINOProjectionHead.cancelLastLayerGradients drops the last layer\'s gradients while epoch < freezeLastLayer', () => {
  const h = new DINOProjectionHead({ inputDim: 8, hiddenDim: 16, bottleneckDim: 4, outputDim: 10, freezeLastLayer: 2 });
  assert.equal(new DINOProjectionHead({ inputDim: 8 }).freezeLastLayer, 0, 'lightly\'s default: never frozen');
  assert.throws(() => new DINOProjectionHead({ inputDim: 8, freezeLastLayer: -1 }), /freezeLastLayer must be a non-negative integer/);
  for (const [epoch, frozen] of [[0, true], [1, true], [2, false]] as const) {
    torch.scope(() => h.forward(torch.randn([5, 8])).square().sum().backward());
    assert.ok(h.last_layer.weight_v.grad !== null);
    h.cancelLastLayerGradients(epoch);
    assert.equal(h.last_layer.weight_v.grad === null, frozen, `epoch ${epoch}`);
    assert.ok(h.layers.parameters().every((p) => p.grad !== null), 'the MLP keeps its gradients');
    for (const p of h.parameters()) p.grad = null;
  }
});

test('DINO.beforeOptimizerStep clips each student gradient to norm 3 on its own (DINO\'s clip_gradients), by hand', () => {
  torch.manualSeed(0);
  const m = new DINO(backbone, { outputDim: 64, hiddenDim: 32, bottleneckDim: 16 });
  assert.equal(m.clipGrad, 3);
  m.train();
  const views = [torch.randn([6, 1, 16, 16]), torch.randn([6, 1, 16, 16])];
  // scale the loss so that some gradients are far above the clip and some stay below it
  torch.scope(() => m.trainingStep(views, { step: 0, totalSteps: 10, epoch: 1 }).mul(1e3).backward());
  const params = m.trainableParameters();
  const before = new Map(params.map(([n, p]) => [n, p.grad!.clone()]));
  m.beforeOptimizerStep({ step: 0, totalSteps: 10, epoch: 1 });
  let clipped = 0;
  let kept = 0;
  for (const [name, p] of params) {
    const g0 = before.get(name)!;
    const n0 = g0.norm().item();
    const expected = n0 > 3 ? g0.mul(3 / (n0 + 1e-6)) : g0;
    assert.ok(p.grad!.allclose(expected, { rtol: 1e-5, atol: 1e-7 }), `${name}: norm ${n0} → ${p.grad!.norm().item()}`);
    if (n0 > 3) clipped++;
    else kept++;
  }
  assert.ok(clipped > 0 && kept > 0, `the check needs both kinds: ${clipped} clipped, ${kept} kept`);
  assert.ok(m.projection_head.last_layer.weight_v.grad !== null, 'after the first epoch the last layer trains');
  m.beforeOptimizerStep({ step: 0, totalSteps: 10, epoch: 0 });
  assert.equal(m.projection_head.last_layer.weight_v.grad, null, 'in epoch 0 the last layer is frozen');
  assert.throws(() => new DINO(backbone, { clipGrad: -1 }), /clipGrad must be ≥ 0/);
});

test('DINO through the loop: the head\'s last layer is unchanged after epoch 1 and trains in epoch 2', async () => {
  const n = 64;
  const images = torch.tensor(noiseBytes(n * 16 * 16, 7), { dtype: 'uint8', shape: [n, 1, 16, 16] });
  const ds = new InMemoryDataset(images, [...Array(n).keys()].map((i) => i % 4), { names: ['a', 'b', 'c', 'd'] });
  const data: TrainData = { name: 'noise', train: ds, names: ds.names, channels: 1, imageSize: 16, mean: [0.5], std: [0.3], knn: null };
  let method = null as DINO | null;
  let start = null as torch.Tensor | null;
  let afterFirst = null as torch.Tensor | null;
  const weightV = (): torch.Tensor => method!.projection_head.last_layer.weight_v.detach().clone();
  const r = await train({ method: 'dino', data: 'noise', imageSize: 16, channels: 1, width: 8, batch: 16, epochs: 2, maxStepsPerEpoch: 2, threads: 1, knnEvery: 0,
    localViews: 0, out: tempDir('dyad-dino-freeze-') }, {
    silent: true, data,
    init: (m) => { method = m as DINO; start = weightV(); },
    onEpoch: (row) => { if (row.epoch === 0) afterFirst = weightV(); },
  });
  assert.ok(r.method === method);
  assert.ok(afterFirst!.equal(start!), 'epoch 1: the last layer is frozen');
  assert.ok(!weightV().equal(start!), 'epoch 2: the last layer trains');
  r.method.dispose();
  ds.dispose();
});

test('BYOLTransform: view 1 always blurred and never solarized, view 2 as set; defaults are the paper\'s', () => {
  const t = new BYOLTransform();
  assert.equal(t.numViews, 2);
  // the defaults: find each view's blur and solarization steps in its (nested) pipeline
  const steps = (x: Transform): Transform[] => (x instanceof Compose ? x.transforms.flatMap(steps) : [x]);
  const probs = t.transforms.map((v) => steps(v).filter((s) => s instanceof GaussianBlur || s instanceof RandomSolarization)
    .map((s) => `${s.constructor.name} ${(s as GaussianBlur).p}`));
  assert.deepEqual(probs, [['GaussianBlur 1'], ['GaussianBlur 0.1', 'RandomSolarization 0.2']]);
  const x = torch.tensor(noiseBytes(4 * 12 * 12, 3), { dtype: 'uint8', shape: [4, 1, 12, 12] }).float().div(255);
  // no crop change, no flip, no jitter, no normalisation: what is left is each view's blur and solarization
  const plain = { inputSize: 12, minScale: 1, hfProb: 0, cjProb: 0, randomGrayScale: 0, normalize: null, kernelSize: 3, sigmas: [1, 1] as [number, number] };
  const blurred = new GaussianBlur({ kernelSize: 3, sigma: [1, 1], p: 1 }).forward(x);
  const solarized = x.neg().add(1).minimum(x);
  const [a, b] = new BYOLTransform({ ...plain, gaussianBlur: [1, 0], solarizationProb: [0, 1] }).forward(x) as [torch.Tensor, torch.Tensor];
  assert.ok(a.allclose(blurred, { atol: 1e-5 }), 'view 1: blurred');
  assert.ok(b.allclose(solarized, { atol: 1e-5 }), 'view 2: solarized, not blurred');
  const [c, d] = new BYOLTransform({ ...plain, gaussianBlur: [0, 1], solarizationProb: [1, 0] }).forward(x) as [torch.Tensor, torch.Tensor];
  assert.ok(c.allclose(solarized, { atol: 1e-5 }));
  assert.ok(d.allclose(blurred, { atol: 1e-5 }));
  assert.throws(() => new BYOLTransform({ solarizationProb: [0, 1.5] }), /probabilities in \[0, 1\]/);
});
