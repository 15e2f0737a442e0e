// Mixed precision on the CPU: torch.autocast (bfloat16) over libtorch's autocast state, the
// GradScaler's skip/backoff/growth by hand, and a few SimCLR steps with amp 'bf16'.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import * as torch from '../src/torch/index.js';
import { GradScaler } from '../src/optim/grad_scaler.js';
import { SGD } from '../src/optim/index.js';
import { train, withGradScaler } from '../src/engine/trainer.js';
import { optimizerStep } from '../src/engine/step.js';
import { resolveConfig } from '../src/engine/config.js';
import { lcg } from './helpers/rng.js';
import { writeShapeFolder } from './helpers/images.js';
import { tempDir } from './helpers/tmp.js';

const root = tempDir('amp');
const dataDir = path.join(root, 'shapes');
before(async () => { await writeShapeFolder(dataDir, 32, lcg(7)); });

test('autocast cpu bf16: matmul and conv2d give bfloat16 inside, float32 outside; state restored', () => {
  torch.scope(() => {
    const a = torch.randn([4, 8]);
    const b = torch.randn([8, 3]);
    const x = torch.randn([2, 3, 8, 8]);
    const w = torch.randn([4, 3, 3, 3]);
    assert.equal(torch.isAutocastEnabled('cpu'), false);
    const [mm, conv, sm] = torch.autocast({ deviceType: 'cpu', dtype: 'bfloat16' }, () => {
      assert.equal(torch.isAutocastEnabled('cpu'), true);
      // nested disabled region: float32 again, and the outer state comes back after it
      const inner = torch.autocast({ deviceType: 'cpu', enabled: false }, () => a.matmul(b));
      assert.equal(inner.dtype, 'float32');
      assert.equal(torch.isAutocastEnabled('cpu'), true);
      return [a.matmul(b), torch.functional.conv2d(x, w), a.matmul(b).float().softmax(1)];
    });
    assert.equal(mm.dtype, 'bfloat16');
    assert.equal(conv.dtype, 'bfloat16');
    assert.equal(sm.dtype, 'float32');
    // bfloat16 keeps ~3 significant digits of the float32 product
    const ref = a.matmul(b);
    assert.equal(ref.dtype, 'float32');
    assert.ok(mm.float().sub(ref).abs().max().item() < 0.1 * Math.max(1, ref.abs().max().item()));
    assert.equal(torch.isAutocastEnabled('cpu'), false);
    assert.throws(() => torch.autocast({ deviceType: 'cpu' }, () => { throw new Error('boom'); }), /boom/);
    assert.equal(torch.isAutocastEnabled('cpu'), false, 'a throwing region restores the state');
    assert.throws(() => torch.autocast({ deviceType: 'cpu', dtype: 'float16' }, () => 0), /bfloat16 only/);
  });
});

test('GradScaler: scales the loss, skips a step with an inf gradient and halves, grows after growthInterval good steps', () => {
  torch.scope(() => {
    const p = torch.tensor([1, 2, 3]).requiresGrad_();
    const opt = new SGD([p], { lr: 0.1 });
    const scaler = new GradScaler({ initScale: 1024, growthInterval: 3 });
    const loss = p.mul(p).sum();
    const scaled = scaler.scale(loss);
    assert.equal(scaled.item(), 14 * 1024);
    scaled.backward();
    scaler.unscale_(opt);
    assert.deepEqual([...p.grad!.toFloat32Array()], [2, 4, 6], 'unscale_ divides the gradients back');
    assert.equal(scaler.step(opt), true);
    assert.deepEqual([...p.detach().toFloat32Array()].map((v) => Number(v.toFixed(5))), [0.8, 1.6, 2.4]);
    scaler.update();
    opt.zeroGrad();
    // an inf gradient: no step, the scale halves, the growth count restarts
    const before = [...p.detach().toFloat32Array()];
    p.grad = torch.tensor([1, Infinity, 1]);
    assert.equal(scaler.step(opt), false);
    assert.deepEqual([...p.detach().toFloat32Array()], before, 'the skipped step left the weights');
    scaler.update();
    assert.equal(scaler.getScale(), 512);
    // NaN too
    p.grad = torch.tensor([NaN, 0, 0]);
    assert.equal(scaler.step(opt), false);
    scaler.update();
    assert.equal(scaler.getScale(), 256);
    for (let i = 0; i < 2; i++) {
      p.grad = torch.tensor([256, 256, 256]);
      assert.equal(scaler.step(opt), true);
      scaler.update();
      assert.equal(scaler.getScale(), 256, `after ${i + 1} good steps`);
    }
    p.grad = torch.tensor([256, 256, 256]);
    scaler.step(opt);
    scaler.update();
    assert.equal(scaler.getScale(), 512, 'the third good step in a row doubles the scale');
    assert.deepEqual(scaler.stateDict(), { scale: 512, growthFactor: 2, backoffFactor: 0.5, growthInterval: 3, growthTracker: 0 });
    assert.throws(() => { scaler.unscale_(opt); scaler.unscale_(opt); }, /already called/);
    const off = new GradScaler({ enabled: false });
    assert.equal(off.scale(loss), loss);
    assert.equal(off.getScale(), 1);
    assert.deepEqual(new GradScaler().stateDict(), { scale: 65536, growthFactor: 2, backoffFactor: 0.5, growthInterval: 2000, growthTracker: 0 });
  });
});

test('SimCLR with amp bf16 on the CPU: finite losses that go down; fp16 on the CPU is refused', async () => {
  const losses: number[] = [];
  const r = await train({ data: dataDir, imageSize: 16, channels: 1, width: 8, batch: 32, threads: 1, knnEvery: 0, minScale: 0.5, lr: 0.5, epochs: 3,
    method: 'simclr', amp: 'bf16', out: path.join(root, 'bf16') }, { silent: true, onStepEnd: (s) => { losses.push(s.loss); } });
  console.log(`# bf16 step losses ${losses.map((l) => l.toFixed(3)).join(' ')}`);
  assert.equal(r.config.amp, 'bf16');
  assert.ok(losses.length >= 9 && losses.every(Number.isFinite), `losses ${losses}`);
  const mean = (xs: number[]): number => xs.reduce((s, x) => s + x, 0) / xs.length;
  assert.ok(mean(losses.slice(-3)) < mean(losses.slice(0, 3)), `first ${losses.slice(0, 3)} last ${losses.slice(-3)}`);
  // the same first steps in float32: close, not equal (autocast did run the convolutions in bfloat16)
  const fp32: number[] = [];
  await train({ ...r.config, amp: 'none', epochs: 1, maxStepsPerEpoch: 2, out: path.join(root, 'fp32') }, { silent: true, onStepEnd: (s) => { fp32.push(s.loss); } });
  assert.notEqual(fp32[0], losses[0]);
  assert.ok(Math.abs(fp32[0]! - losses[0]!) < 0.05 * fp32[0]!, `fp32 ${fp32[0]} bf16 ${losses[0]}`);
  assert.equal(Object.hasOwn(r.method, 'trainingStep'), false, 'the autocast wrapper is removed after training');
  assert.throws(() => resolveConfig({ amp: 'fp16' }), /needs --device cuda/);
  assert.throws(() => resolveConfig({ amp: 'fp8' as never }), /amp/);
});

test("the trainer's fp16 wiring (withGradScaler): loss value unchanged, unscaled gradients, an overflowing step skipped and the scale halved", () => {
  torch.scope(() => {
    const p = torch.tensor([1, 2, 3]).requiresGrad_();
    const opt = new SGD([p], { lr: 0.1 });
    const scaler = new GradScaler({ initScale: 2 ** 16 });
    let factor = 1;
    const seen: number[][] = [];
    const method = {
      trainingStep: (_b: unknown, _c: unknown) => p.mul(p).sum().mul(factor),
      beforeOptimizerStep: (_c: unknown) => { seen.push([...p.grad!.toFloat32Array()]); },
    };
    const undo = withGradScaler(method, opt, scaler);
    // the loop's step: the value is the loss (not × 65536), clipping sees 2p, and p moves by lr · 2p (unscaled)
    assert.equal(optimizerStep(method.trainingStep(null, null), opt, () => method.beforeOptimizerStep(null)), 14);
    assert.deepEqual(seen, [[2, 4, 6]]);
    assert.deepEqual([...p.detach().toFloat32Array()].map((v) => Number(v.toFixed(5))), [0.8, 1.6, 2.4]);
    assert.equal(scaler.getScale(), 2 ** 16);
    // a finite loss whose scaled gradient overflows float32 (1e35 · 2·p · 65536 > 3.4e38): skipped, scale halved
    factor = 1e35;
    const value = optimizerStep(method.trainingStep(null, null), opt, () => method.beforeOptimizerStep(null));
    assert.ok(Number.isFinite(value) && Math.abs(value / (1e35 * (0.64 + 2.56 + 5.76)) - 1) < 1e-5, `value ${value}`);
    assert.deepEqual([...p.detach().toFloat32Array()].map((v) => Number(v.toFixed(5))), [0.8, 1.6, 2.4], 'no step');
    assert.equal(scaler.getScale(), 2 ** 15);
    undo();
    assert.equal(Object.hasOwn(opt, 'step'), false);
    assert.equal(Object.hasOwn(method, 'trainingStep'), true, "the method's own trainingStep is back");
    assert.equal(optimizerStep(method.trainingStep(null, null), opt) > 1e35, true);
  });
});
