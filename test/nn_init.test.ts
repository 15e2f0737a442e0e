// nn.init and the layers' default initialisation: statistics in PyTorch's ranges.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as torch from '../src/torch/index.js';
import * as nn from '../src/nn/index.js';

const { init } = nn;
const stats = (t: torch.Tensor): { mean: number; std: number; min: number; max: number } =>
  torch.scope(() => ({ mean: t.mean().item(), std: t.std().item(), min: t.min().item(), max: t.max().item() }));
const near = (a: number, b: number, rel: number, what: string): void =>
  assert.ok(Math.abs(a - b) <= rel * Math.abs(b), `${what}: ${a} vs ${b}`);

test('calculateGain and fans', () => {
  assert.equal(init.calculateGain('linear'), 1);
  assert.equal(init.calculateGain('conv2d'), 1);
  assert.equal(init.calculateGain('sigmoid'), 1);
  assert.equal(init.calculateGain('tanh'), 5 / 3);
  assert.equal(init.calculateGain('relu'), Math.SQRT2);
  assert.equal(init.calculateGain('selu'), 0.75);
  near(init.calculateGain('leaky_relu'), Math.sqrt(2 / (1 + 0.01 ** 2)), 1e-12, 'leaky default slope');
  near(init.calculateGain('leaky_relu', Math.sqrt(5)), Math.sqrt(1 / 3), 1e-12, 'a=√5');
  assert.throws(() => init.calculateGain('swish' as never), /unsupported/);
  assert.deepEqual(init.calculateFanInAndFanOut(torch.empty([16, 8, 3, 3])), [72, 144]);
  assert.throws(() => init.calculateFanInAndFanOut(torch.empty([5])), /fewer than 2/);
});

test('Linear(1000, 1000) default init: weight std ≈ 1/√(3·1000), bias within ±1/√1000', () => {
  torch.manualSeed(0);
  const fc = torch.scope(() => new nn.Linear(1000, 1000));
  const w = stats(fc.weight);
  near(w.std, 1 / Math.sqrt(3000), 0.01, 'weight std');
  assert.ok(Math.abs(w.mean) < 1e-3);
  assert.ok(w.max <= 1 / Math.sqrt(1000) && w.min >= -1 / Math.sqrt(1000));
  assert.ok(w.max > 0.99 / Math.sqrt(1000), 'uniform reaches its bound');
  const b = stats(fc.bias!);
  assert.ok(b.max <= 1 / Math.sqrt(1000) && b.min >= -1 / Math.sqrt(1000));
  near(b.std, 1 / Math.sqrt(3000), 0.1, 'bias std');
  // Conv2d(64, 128, 3): fan_in = 64·9
  const conv = torch.scope(() => new nn.Conv2d(64, 128, 3));
  near(stats(conv.weight).std, 1 / Math.sqrt(3 * 576), 0.02, 'conv weight std');
  assert.ok(stats(conv.bias!).max <= 1 / Math.sqrt(576));
  fc.dispose();
  conv.dispose();
});

test('kaiming, xavier, normal, uniform, constant', () => {
  torch.manualSeed(1);
  const w = torch.empty([512, 256]);
  near(stats(init.kaimingNormal_(w)).std, Math.SQRT2 / Math.sqrt(256), 0.02, 'kaiming normal fan_in');
  near(stats(init.kaimingNormal_(w, { mode: 'fan_out', nonlinearity: 'relu' })).std, Math.SQRT2 / Math.sqrt(512), 0.02, 'kaiming normal fan_out');
  const ku = stats(init.kaimingUniform_(w, { nonlinearity: 'tanh' }));
  const bound = (5 / 3) * Math.sqrt(3 / 256);
  assert.ok(ku.max <= bound && ku.min >= -bound && ku.max > 0.98 * bound);
  const xu = stats(init.xavierUniform_(w, { gain: 2 }));
  const xb = 2 * Math.sqrt(6 / (256 + 512));
  assert.ok(xu.max <= xb && xu.max > 0.98 * xb);
  near(stats(init.xavierNormal_(w)).std, Math.sqrt(2 / 768), 0.02, 'xavier normal');
  const n = stats(init.normal_(w, { mean: 3, std: 0.5 }));
  near(n.mean, 3, 0.01, 'normal mean');
  near(n.std, 0.5, 0.02, 'normal std');
  const u = stats(init.uniform_(w, { a: -2, b: -1 }));
  assert.ok(u.min >= -2 && u.max <= -1);
  near(u.mean, -1.5, 0.01, 'uniform mean');
  assert.equal(stats(init.constant_(w, 0.25)).std, 0);
  assert.equal(init.ones_(w).sum().item(), 512 * 256);
  assert.equal(init.zeros_(w).abs().sum().item(), 0);
  // works on parameters that require grad (no autograd error) and returns them
  const p = new nn.Parameter(torch.empty([3, 3]));
  assert.equal(init.kaimingUniform_(p), p);
  assert.ok(p.requiresGrad && p.isLeaf && p.grad === null);
});

test('truncNormal_ stays in [a, b] with the truncated distribution moments', () => {
  torch.manualSeed(2);
  const t = torch.empty([50000]);
  const s = stats(init.truncNormal_(t));
  assert.ok(s.min >= -2 && s.max <= 2);
  // N(0,1) truncated to [-2, 2]: variance 1 − 2·2·φ(2)/(Φ(2) − Φ(−2)) = 0.7737
  near(s.std, Math.sqrt(0.77371), 0.01, 'std');
  assert.ok(Math.abs(s.mean) < 0.01);
  // ViT-style: std 0.02 is barely truncated by [-2, 2]
  near(stats(init.truncNormal_(t, { std: 0.02 })).std, 0.02, 0.01, 'std 0.02');
  // a one-sided tail interval: N(0,1) on [1, 3] has mean (φ(1) − φ(3)) / (Φ(3) − Φ(1)) = 1.5100
  const tail = stats(init.truncNormal_(t, { a: 1, b: 3 }));
  assert.ok(tail.min >= 1 && tail.max <= 3);
  near(tail.mean, 1.51, 0.01, 'tail mean');
});

test('Embedding and normalisation layers start as PyTorch', () => {
  torch.manualSeed(3);
  const e = torch.scope(() => new nn.Embedding(1000, 64));
  near(stats(e.weight).std, 1, 0.02, 'embedding N(0,1)');
  const bn = new nn.BatchNorm2d(4);
  assert.deepEqual(bn.weight!.toArray(), [1, 1, 1, 1]);
  assert.deepEqual(bn.bias!.toArray(), [0, 0, 0, 0]);
  assert.deepEqual(bn.running_var!.toArray(), [1, 1, 1, 1]);
  const ln = new nn.LayerNorm(3);
  assert.deepEqual(ln.weight!.toArray(), [1, 1, 1]);
  assert.deepEqual(ln.bias!.toArray(), [0, 0, 0]);
});
