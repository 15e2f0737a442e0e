// Backbones, heads and the MoCo momentum update: shapes, names, and the EMA math.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as torch from '../src/torch/index.js';
import * as nn from '../src/nn/index.js';
import { ResNet, VisionTransformer, SimCLRProjectionHead, MoCoProjectionHead, createBackbone, vitTiny } from '../src/models/index.js';
import { updateMomentum, cosineSchedule, createMethod, MoCoV2, SimCLR } from '../src/methods/index.js';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { resolveConfig } from '../src/engine/config.js';
import { buildMethod, loadMethod, modelConfig } from '../src/engine/trainer.js';
import { saveCheckpoint } from '../src/engine/checkpoint.js';
import { tempDir } from './helpers/tmp.js';

test('ResNet-18/34/50 with every stem: pooled features and featureDim', () => {
  torch.manualSeed(0);
  const cases: [18 | 34 | 50, 'cifar' | 'imagenet' | 'cifar-stride2', number, number, number][] = [
    [18, 'cifar', 8, 1, 28], [34, 'cifar', 4, 3, 16], [50, 'imagenet', 4, 3, 64], [18, 'imagenet', 8, 5, 32], [18, 'cifar-stride2', 8, 1, 28],
  ];
  for (const [depth, stem, width, inChannels, size] of cases) {
    const net = new ResNet({ depth, stem, width, inChannels });
    const expected = width * 8 * (depth === 50 ? 4 : 1);
    assert.equal(net.featureDim, expected);
    const y = torch.noGrad(() => net.eval().forward(torch.randn([2, inChannels, size, size])));
    assert.deepEqual(y.shape, [2, expected], `resnet${depth} ${stem}`);
  }
  assert.throws(() => new ResNet({ depth: 18, inChannels: 1 }).forward(torch.randn([1, 3, 32, 32])), /expected input \[N, 1, H, W\]/);
  assert.throws(() => new ResNet({ depth: 101 as 18 }), /depth must be 18, 34 or 50/);
  assert.throws(() => new ResNet({ stem: 'tiny' as 'cifar' }), /stem must be one of 'imagenet', 'cifar', 'cifar-stride2', got 'tiny'/);
});

test('ResNet feature pooling: the last N stages, each pooled to a G×G grid, concatenated (featureStages / featureGrid)', () => {
  torch.manualSeed(0);
  const x = torch.randn([2, 1, 28, 28]);
  const plain = new ResNet({ depth: 18, stem: 'cifar-stride2', width: 4, inChannels: 1 }).eval();
  const grid = new ResNet({ depth: 18, stem: 'cifar-stride2', width: 4, inChannels: 1, featureStages: 2, featureGrid: 2 }).eval();
  torch.noGrad(() => grid.loadStateDict(plain.stateDict()));
  // layer4 is 32 channels at 2×2, layer3 16 channels at 4×4: 16·4 + 32·4
  assert.equal(plain.featureDim, 32);
  assert.equal(grid.featureDim, 16 * 4 + 32 * 4);
  torch.noGrad(() => {
    const maps = plain.stages(x);
    assert.deepEqual(maps.map((m) => m.shape), [[2, 4, 14, 14], [2, 8, 7, 7], [2, 16, 4, 4], [2, 32, 2, 2]]);
    const f = grid.forward(x);
    assert.deepEqual(f.shape, [2, grid.featureDim]);
    // layer3's 4×4 map pooled 2×2 by hand, then layer4's 2×2 map as it is, channel-major
    const l3 = maps[2]!.reshape([2, 16, 2, 2, 2, 2]).mean([3, 5]).flatten(1);
    const expected = torch.cat([l3, maps[3]!.flatten(1)], 1);
    assert.ok(f.allclose(expected, { atol: 1e-5 }), 'grid features = the stages\' maps average-pooled to 2×2');
    // the mean over a stage's grid cells is its global pool: the default features
    const last = f.narrow(1, 64, 128).reshape([2, 32, 4]).mean(2);
    assert.ok(last.allclose(plain.forward(x), { atol: 1e-5 }));
  });
  assert.throws(() => new ResNet({ featureStages: 5 }), /featureStages must be 1, 2, 3 or 4/);
  assert.throws(() => new ResNet({ featureGrid: 0 }), /featureGrid must be a positive integer/);
  assert.throws(() => createBackbone({ name: 'vit-tiny', inChannels: 1, imageSize: 28, featureGrid: 2 }), /vit-tiny: featureStages \/ featureGrid pool a ResNet's conv maps/);
});

test("ResNet stems: 'cifar' keeps the input resolution into layer1, 'cifar-stride2' halves it, 'imagenet' quarters it", () => {
  torch.manualSeed(0);
  const x = torch.randn([1, 1, 32, 32]);
  for (const [stem, side] of [['cifar', 32], ['cifar-stride2', 16], ['imagenet', 8]] as const) {
    const net = new ResNet({ depth: 18, stem, width: 4, inChannels: 1 }).eval();
    const h = torch.noGrad(() => {
      let y = net.bn1.forward(net.conv1.forward(x)).relu_();
      if (net.maxpool) y = net.maxpool.forward(y);
      return net.layer1.forward(y);
    });
    assert.deepEqual(h.shape, [1, 4, side, side], stem);
    assert.deepEqual(net.conv1.weight.shape, stem === 'imagenet' ? [4, 1, 7, 7] : [4, 1, 3, 3], stem);
  }
});

test('ResNet parameter names follow torchvision', () => {
  const names = new ResNet({ depth: 18 }).namedParameters().map(([n]) => n);
  for (const n of ['conv1.weight', 'bn1.weight', 'layer1.0.conv1.weight', 'layer2.0.downsample.0.weight', 'layer2.0.downsample.1.bias', 'layer4.1.bn2.weight']) {
    assert.ok(names.includes(n), n);
  }
  const r50 = new ResNet({ depth: 50 }).namedParameters().map(([n]) => n);
  assert.ok(r50.includes('layer3.5.conv3.weight'));
  // torchvision's ResNet-18 without fc has 11,176,512 parameters
  const count = new ResNet({ depth: 18 }).parameters().reduce((s, p) => s + p.numel(), 0);
  assert.equal(count, 11_176_512);
});

test('ViT returns the class token features; HF CLIP names; any patch and image size', () => {
  torch.manualSeed(0);
  const vit = new VisionTransformer({ imageSize: 16, patchSize: 4, inChannels: 1, dim: 32, depth: 2, heads: 4 });
  const y = torch.noGrad(() => vit.forward(torch.randn([3, 1, 16, 16])));
  assert.deepEqual(y.shape, [3, 32]);
  assert.equal(vit.featureDim, 32);
  const names = vit.namedParameters().map(([n]) => n);
  for (const n of ['embeddings.class_embedding', 'embeddings.patch_embedding.weight', 'embeddings.position_embedding.weight', 'pre_layrnorm.weight',
    'encoder.layers.1.self_attn.q_proj.weight', 'encoder.layers.0.mlp.fc2.bias', 'encoder.layers.0.layer_norm2.weight', 'post_layernorm.bias']) {
    assert.ok(names.includes(n), n);
  }
  assert.deepEqual(vit.embeddings.position_embedding.weight.shape, [17, 32]);
  assert.equal(vitTiny({ imageSize: 32, patchSize: 8 }).featureDim, 192);
  assert.throws(() => new VisionTransformer({ imageSize: 30, patchSize: 4 }), /not a multiple of patchSize/);
  assert.equal(createBackbone({ name: 'vit-small', inChannels: 3, imageSize: 32 }).featureDim, 384);
});

test('projection heads: SimCLR (BN, no bias before BN) and MoCo (no BN), paper output size', () => {
  const h = new SimCLRProjectionHead({ inputDim: 64, hiddenDim: 32 });
  assert.deepEqual(h.namedParameters().map(([n, p]) => `${n}:${p.shape}`), ['layers.0.weight:32,64', 'layers.1.weight:32', 'layers.1.bias:32', 'layers.3.weight:128,32', 'layers.3.bias:128']);
  assert.deepEqual(h.forward(torch.randn([4, 64])).shape, [4, 128]);
  const h3 = new SimCLRProjectionHead({ inputDim: 8, hiddenDim: 8, outputDim: 16, numLayers: 3 });
  assert.equal(h3.outputDim, 16);
  const m = new MoCoProjectionHead({ inputDim: 16, hiddenDim: 8, outputDim: 4 });
  assert.ok(!m.namedModules().some(([, mod]) => mod instanceof nn.BatchNorm1d));
  assert.deepEqual(m.forward(torch.randn([2, 16])).shape, [2, 4]);
});

test('EMA update: θ_k ← m·θ_k + (1 − m)·θ_q, and the cosine momentum schedule', () => {
  const q = new nn.Linear(2, 1);
  const k = new nn.Linear(2, 1);
  torch.noGrad(() => {
    q.weight.copy_(torch.tensor([[1, 2]]));
    k.weight.copy_(torch.tensor([[3, 5]]));
  });
  updateMomentum(q, k, 0.9);
  const w = k.weight.toArray();
  assert.ok(Math.abs(w[0]! - (0.9 * 3 + 0.1 * 1)) < 1e-6 && Math.abs(w[1]! - (0.9 * 5 + 0.1 * 2)) < 1e-6);
  assert.ok(Math.abs(cosineSchedule(0, 100, 0.99, 1) - 0.99) < 1e-12);
  assert.ok(cosineSchedule(50, 100, 0.99, 1) > 0.99 && cosineSchedule(50, 100, 0.99, 1) < 1);
  assert.ok(Math.abs(cosineSchedule(99, 100, 0.99, 1) - 1) < 1e-9);
});

test('MoCo v2: momentum encoder starts equal and frozen, moves towards the query encoder after a step', () => {
  torch.manualSeed(0);
  const moco = new MoCoV2(() => new ResNet({ depth: 18, stem: 'cifar', width: 4, inChannels: 1 }), { memoryBankSize: 16, hiddenDim: 16, outputDim: 8 });
  const q0 = (moco.backbone as ResNet).conv1.weight.clone();
  assert.ok((moco.backbone_momentum as ResNet).conv1.weight.equal(q0));
  assert.ok(moco.backbone_momentum.parameters().every((p) => !p.requiresGrad));
  assert.ok(moco.trainableParameters().every(([n]) => !n.includes('momentum')));
  const x = torch.randn([8, 1, 16, 16]);
  const loss = moco.trainingStep([x, x.flip(3)], { step: 0, totalSteps: 10, epoch: 0 });
  loss.backward();
  torch.noGrad(() => { for (const p of moco.parameters()) if (p.grad) p.sub_(p.grad, { alpha: 0.1 }); });
  const before = (moco.backbone_momentum as ResNet).conv1.weight.clone();
  moco.afterStep({ step: 0, totalSteps: 10, epoch: 0 });
  const m = moco.currentMomentum;
  const expected = before.mul(m).add((moco.backbone as ResNet).conv1.weight.mul(1 - m));
  assert.ok((moco.backbone_momentum as ResNet).conv1.weight.allclose(expected, { atol: 1e-6 }));
  assert.equal(moco.criterion.memoryBank!.pointer, 8); // the 8 keys were enqueued
  // SimCLR: both views through the network, scalar loss
  const s = new SimCLR(new ResNet({ depth: 18, stem: 'cifar', width: 4, inChannels: 1 }), { hiddenDim: 16 });
  assert.deepEqual(s.trainingStep([x, x], { step: 0, totalSteps: 1, epoch: 0 }).shape, []);
});

test('SimCLR concatViews: one batch of 2N (BN over both views) or one per view, selectable from the spec', async () => {
  const spec = { method: 'simclr' as const, backbone: { name: 'resnet18' as const, inChannels: 1, imageSize: 16, width: 4, stem: 'cifar' as const } };
  torch.manualSeed(3);
  const joint = createMethod(spec) as SimCLR;
  const perView = createMethod({ ...spec, concatViews: false }) as SimCLR;
  assert.equal(joint.concatViews, true);
  assert.equal(perView.concatViews, false);
  torch.scope(() => perView.loadStateDict(joint.stateDict()));
  joint.train();
  perView.train();
  torch.scope(() => {
    const x0 = torch.randn([6, 1, 16, 16]);
    const x1 = torch.randn([6, 1, 16, 16]).add(1); // a shifted view: per-view BN statistics differ
    const ctx = { step: 0, epoch: 0, totalSteps: 1 } as never;
    const lj = joint.trainingStep([x0, x1], ctx).item();
    const lp = perView.trainingStep([x0, x1], ctx).item();
    const byHand = perView.criterion.forward(perView.project(x0), perView.project(x1)).item();
    assert.ok(Math.abs(lp - byHand) < 1e-5, `per view ${lp} = loss of separately projected views ${byHand}`);
    assert.ok(Math.abs(lj - lp) > 1e-4, `batch-norm over 2N (${lj}) differs from per-view batch norm (${lp})`);
  });
  joint.dispose();
  perView.dispose();
});

test('SimCLR multi-crop: local views add the mean NT-Xent over every pair that holds a global view', () => {
  const spec = { method: 'simclr' as const, backbone: { name: 'resnet18' as const, inChannels: 1, imageSize: 16, width: 4, stem: 'cifar' as const } };
  torch.manualSeed(5);
  const m = createMethod({ ...spec, concatViews: false }) as SimCLR;
  const joint = createMethod(spec) as SimCLR;
  torch.scope(() => joint.loadStateDict(m.stateDict()));
  m.train();
  joint.train();
  torch.scope(() => {
    const g0 = torch.randn([6, 1, 16, 16]);
    const g1 = torch.randn([6, 1, 16, 16]);
    const l0 = torch.randn([6, 1, 8, 8]);
    const l1 = torch.randn([6, 1, 8, 8]);
    const ctx = { step: 0, epoch: 0, totalSteps: 1 } as never;
    const loss = m.trainingStep([g0, g1, l0, l1], ctx).item();
    const [z0, z1, y0, y1] = [g0, g1, l0, l1].map((x) => m.project(x)) as [torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor];
    const pair = (a: torch.Tensor, b: torch.Tensor): number => m.criterion.forward(a, b).item();
    const byHand = (pair(z0, z1) + pair(z0, y0) + pair(z1, y0) + pair(z0, y1) + pair(z1, y1)) / 5;
    assert.ok(Math.abs(loss - byHand) < 1e-5, `multi-crop loss ${loss} = mean of the 5 pair losses ${byHand}`);
    assert.ok(Math.abs(loss - pair(z0, z1)) > 1e-4, 'the local views change the loss');
    const lj = joint.trainingStep([g0, g1, l0, l1], ctx);
    assert.deepEqual(lj.shape, []);
    assert.ok(Number.isFinite(lj.item()), 'one batch for the globals, one for the locals');
    assert.throws(() => m.trainingStep([g0], ctx), /expected 2 global views/);
  });
  assert.throws(() => resolveConfig({ method: 'moco', localViews: 2 }), /localViews \(multi-crop\) is a SimCLR option/);
  assert.throws(() => resolveConfig({ localViews: 2, localMinScale: 0.5, localMaxScale: 0.2 }), /localMinScale/);
  m.dispose();
  joint.dispose();
});

test('SimCLR headLayers: 2 (v1) or 3 (v2) Linear layers from the spec and the train config; others rejected', async () => {
  const linears = (m: SimCLR): number => m.projection_head.layers.children().filter((c) => c instanceof nn.Linear).length;
  const spec = { method: 'simclr' as const, backbone: { name: 'resnet18' as const, inChannels: 1, imageSize: 16, width: 4, stem: 'cifar' as const } };
  const v1 = createMethod(spec) as SimCLR;
  const v2 = createMethod({ ...spec, headLayers: 3 }) as SimCLR;
  assert.equal(linears(v1), 2);
  assert.equal(linears(v2), 3);
  const fromConfig = buildMethod(resolveConfig({ headLayers: 3, width: 4, channels: 1, imageSize: 16 })) as SimCLR;
  assert.equal(linears(fromConfig), 3);
  assert.throws(() => resolveConfig({ headLayers: 4 as never }), /headLayers must be 2 or 3, got 4/);
  assert.equal(linears(buildMethod(resolveConfig({ width: 4, channels: 1, imageSize: 16 })) as SimCLR), 3, 'the train config defaults to SimCLR v2\'s head');
  for (const m of [v1, v2, fromConfig]) m.dispose();
});

test('train config featureStages / featureGrid: the backbone returns grid-pooled features, the head takes them, a checkpoint rebuilds them', () => {
  const dir = tempDir('grid-ck');
  try {
    const c = resolveConfig({ featureStages: 2, featureGrid: 2, width: 4, channels: 1, imageSize: 16, stem: 'cifar' });
    const m = buildMethod(c) as SimCLR;
    assert.equal(m.backbone.featureDim, (16 + 32) * 4, 'stages 3 and 4 (16 and 32 channels at width 4), 2×2 each');
    torch.scope(() => {
      m.eval();
      const x = torch.randn([3, 1, 16, 16]);
      assert.deepEqual(m.embed(x).shape, [3, 192]);
      const file = path.join(dir, 'grid.safetensors');
      saveCheckpoint(file, { model: m, meta: { task: 'embedder', config: modelConfig(c, { channels: 1, imageSize: 16, mean: [0.5], std: [0.5], names: [] }), epoch: 1, step: 1 } });
      const { method } = loadMethod(file);
      method.eval();
      assert.ok(method.embed(x).allclose(m.embed(x), { atol: 1e-6 }), 'the loaded embedder pools the same way');
      method.dispose();
    });
    assert.throws(() => resolveConfig({ featureGrid: 0 }), /featureGrid must be an integer ≥ 1/);
    m.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an embedder checkpoint written before headLayers existed (no headLayers in its config) loads with the 2-layer head it was trained with', async () => {
  const dir = tempDir('old-ck');
  try {
    const c = resolveConfig({ headLayers: 2, width: 4, channels: 1, imageSize: 16 });
    const old = buildMethod(c) as SimCLR;
    const { headLayers: _dropped, ...config } = modelConfig(c, { channels: 1, imageSize: 16, mean: [0.5], std: [0.5], names: [] });
    const file = path.join(dir, 'old.safetensors');
    saveCheckpoint(file, { model: old, meta: { task: 'embedder', config, epoch: 1, step: 1 } });
    const { method, config: loaded } = loadMethod(file);
    assert.equal(loaded.headLayers, 2);
    assert.equal((method as SimCLR).projection_head.layers.children().filter((m) => m instanceof nn.Linear).length, 2);
    method.dispose();
    old.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
