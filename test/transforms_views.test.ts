import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as torch from '../src/torch/index.js';
import {
  CenterCrop, Compose, DINOTransform, EvalTransform, MoCoV2Transform, MultiViewTransform, Normalize, RandomHorizontalFlip, SimCLRTransform,
  ToFloat, simclrKernelSize, simclrView,
} from '../src/transforms/index.js';

torch.setNumThreads(1);

const u8 = (shape: number[]): torch.Tensor => torch.randint(0, 256, shape, { dtype: 'uint8' });

describe('multi-view transforms', () => {
  it('SimCLRTransform makes two normalised float views from uint8 batches (1 and 3 channels)', () => torch.scope(() => {
    const t = new SimCLRTransform({ inputSize: 28, gaussianBlur: 0.5 });
    for (const c of [1, 3]) {
      const views = t.forward(u8([4, c, 28, 28]));
      assert.equal(views.length, 2);
      for (const v of views) {
        assert.deepEqual(v.shape, [4, c, 28, 28]);
        assert.equal(v.dtype, 'float32');
        assert.ok(v.min().item() < 0, 'normalised');
      }
    }
    const big = new SimCLRTransform({ inputSize: 32, normalize: null }).forward(u8([3, 3, 48, 40]));
    assert.deepEqual(big[0]!.shape, [3, 3, 32, 32]);
    assert.ok(big[0]!.min().item() >= 0 && big[0]!.max().item() <= 1, 'without normalisation the views stay in [0, 1]');
  }));
  it('the same seed gives the same views; a different seed differs', () => torch.scope(() => {
    const x = u8([6, 3, 24, 24]);
    const t = new SimCLRTransform({ inputSize: 16 });
    torch.manualSeed(11);
    const a = t.forward(x);
    torch.manualSeed(11);
    const b = t.forward(x);
    torch.manualSeed(12);
    const c = t.forward(x);
    assert.ok(a[0]!.equal(b[0]!) && a[1]!.equal(b[1]!));
    assert.ok(!a[0]!.equal(c[0]!));
    assert.ok(!a[0]!.equal(a[1]!), 'the two views differ');
  }));
  it('MoCoV2Transform uses scale [0.2, 1] and jitter (0.4, 0.4, 0.4, 0.1)', () => {
    const t = new MoCoV2Transform({ inputSize: 32 });
    const steps = (t.transforms[0] as Compose).transforms as unknown as Record<string, unknown>[];
    assert.deepEqual(steps[0]!.scale, [0.2, 1]);
    const cj = steps.find((s) => s.constructor.name === 'ColorJitter')!;
    assert.deepEqual(cj.brightness, [0.6, 1.4]);
    assert.deepEqual(cj.hue, [-0.1, 0.1]);
    assert.equal(cj.p, 0.8);
  });
  it('DINOTransform makes 2 global and N local views', () => torch.scope(() => {
    const t = new DINOTransform({ globalCropSize: 32, localCropSize: 16, nLocalViews: 3 });
    const views = t.forward(u8([2, 3, 40, 40]));
    assert.deepEqual(views.map((v) => v.shape[2]), [32, 32, 16, 16, 16]);
    const names = (i: number): string[] => (t.transforms[i] as Compose).transforms.map((s) => s.constructor.name);
    assert.ok(names(1).includes('RandomSolarization') && !names(0).includes('RandomSolarization'));
    assert.equal(((t.transforms[0] as Compose).transforms.find((s) => s.constructor.name === 'GaussianBlur') as unknown as { p: number }).p, 1);
  }));
  it('SimCLRTransform with nLocalViews adds small multi-crop views after the two global ones', () => torch.scope(() => {
    const t = new SimCLRTransform({ inputSize: 28, minScale: 0.2, gaussianBlur: 0, nLocalViews: 3 });
    const views = t.forward(u8([4, 1, 28, 28]));
    assert.deepEqual(views.map((v) => v.shape), [[4, 1, 28, 28], [4, 1, 28, 28], [4, 1, 12, 12], [4, 1, 12, 12], [4, 1, 12, 12]], 'local side defaults to 96/224 of the input');
    const crop = (i: number): Record<string, unknown> => (t.transforms[i] as Compose).transforms[0] as unknown as Record<string, unknown>;
    assert.deepEqual(crop(0).scale, [0.2, 1]);
    assert.deepEqual(crop(2).scale, [0.05, 0.2], 'local crop scale defaults to [0.05, minScale]');
    const custom = new SimCLRTransform({ inputSize: 28, nLocalViews: 1, localCropSize: 14, localCropScale: [0.1, 0.3] });
    assert.deepEqual(custom.forward(u8([2, 1, 28, 28]))[2]!.shape, [2, 1, 14, 14]);
    assert.deepEqual(((custom.transforms[2] as Compose).transforms[0] as unknown as Record<string, unknown>).scale, [0.1, 0.3]);
    assert.throws(() => new SimCLRTransform({ nLocalViews: 2, localCropScale: [0.5, 0.2] }), /localCropScale/);
    assert.throws(() => new SimCLRTransform({ nLocalViews: -1 }), /nLocalViews/);
  }));
  it('MultiViewTransform applies each transform to the same batch', () => torch.scope(() => {
    const x = torch.rand([2, 1, 4, 4]);
    const [a, b] = new MultiViewTransform([new ToFloat(), new RandomHorizontalFlip(1)]).forward(x);
    assert.ok(a!.equal(x) && b!.equal(x.flip(3)));
  }));
  it('EvalTransform resizes, centre-crops and normalises deterministically', () => torch.scope(() => {
    const x = u8([2, 3, 30, 40]);
    const t = new EvalTransform({ size: 24, resize: 28 });
    const y = t.forward(x);
    assert.deepEqual(y.shape, [2, 3, 24, 24]);
    assert.ok(y.equal(t.forward(x)));
  }));
  it('large batches run in slices with the same result as one pass (deterministic steps)', () => torch.scope(() => {
    const x = torch.rand([7, 3, 10, 10]);
    const steps = [new CenterCrop(6), new Normalize({ mean: [0.5], std: [0.2] })];
    const whole = new Compose(steps).forward(x);
    const sliced = new Compose(steps, { maxChunkBytes: 2 * 3 * 10 * 10 * 4 }).forward(x); // 2 samples per slice
    assert.ok(whole.equal(sliced));
    const mv = new MultiViewTransform([new Compose(steps)], { maxChunkBytes: 1 });
    assert.ok(mv.forward(x)[0]!.equal(whole));
    torch.manualSeed(9);
    const a = new SimCLRTransform({ inputSize: 8, maxChunkBytes: 3 * 3 * 10 * 10 * 4 }).forward(x);
    torch.manualSeed(9);
    const b = new SimCLRTransform({ inputSize: 8, maxChunkBytes: 3 * 3 * 10 * 10 * 4 }).forward(x);
    assert.deepEqual(a[0]!.shape, [7, 3, 8, 8]);
    assert.ok(a[0]!.equal(b[0]!) && a[1]!.equal(b[1]!));
  }));
  it('SimCLR blur kernel is about 10% of the size and odd', () => {
    assert.deepEqual([28, 32, 96, 224].map(simclrKernelSize), [3, 3, 9, 23]);
  });
  it('keeps the live tensor count flat over many calls inside scopes', () => {
    const x = u8([8, 3, 20, 20]).keep();
    const t = new SimCLRTransform({ inputSize: 16 });
    const d = simclrView({ inputSize: 12 });
    torch.scope(() => void t.forward(x));
    const before = torch.memory().count;
    for (let i = 0; i < 200; i++) {
      torch.scope(() => {
        const [a, b] = t.forward(x);
        d.forward(a!);
        assert.ok(b);
      });
    }
    assert.equal(torch.memory().count, before);
    x.dispose();
  });
});
