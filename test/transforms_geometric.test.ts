import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as torch from '../src/torch/index.js';
import {
  CenterCrop, GaussianBlur, RandomHorizontalFlip, RandomResizedCrop, RandomRotation, RandomVerticalFlip, Resize, gaussianKernel1d,
} from '../src/transforms/index.js';

torch.setNumThreads(1);
const F = torch.functional;
const maxDiff = (a: torch.Tensor, b: torch.Tensor): number => torch.scope(() => a.sub(b).abs().max().item());

describe('RandomResizedCrop', () => {
  it('a full-scale square crop at the input size returns the input', () => torch.scope(() => {
    const x = torch.rand([3, 3, 16, 16]);
    const t = new RandomResizedCrop({ size: 16, scale: [1, 1], ratio: [1, 1] });
    assert.ok(maxDiff(t.forward(x), x) < 1e-5);
    const p = t.lastParams!;
    assert.deepEqual([...p.top, ...p.left, ...p.height, ...p.width], [0, 0, 0, 0, 0, 0, 16, 16, 16, 16, 16, 16]);
  }));
  it('equals crop + bilinear resize (alignCorners false), flip fused', () => torch.scope(() => {
    const x = torch.rand([2, 1, 9, 11]);
    const t = new RandomResizedCrop({ size: [6, 8] });
    const y = t.apply(x, { top: Int32Array.from([1, 0]), left: Int32Array.from([2, 3]), height: Int32Array.from([4, 9]), width: Int32Array.from([5, 8]), flip: Uint8Array.from([0, 1]) });
    const ref0 = F.interpolate(x.narrow(0, 0, 1).narrow(2, 1, 4).narrow(3, 2, 5), { size: [6, 8], mode: 'bilinear' });
    const ref1 = F.interpolate(x.narrow(0, 1, 1).narrow(2, 0, 9).narrow(3, 3, 8), { size: [6, 8], mode: 'bilinear' }).flip(3);
    assert.ok(maxDiff(y, torch.cat([ref0, ref1])) < 1e-5);
  }));
  it('boxes stay inside the image with area and ratio in range', () => {
    torch.manualSeed(3);
    const [H, W] = [32, 48];
    const t = new RandomResizedCrop({ size: 8, scale: [0.08, 1], ratio: [3 / 4, 4 / 3] });
    const p = t.sampleParams(3000, [1, 3, H, W]);
    let small = 0;
    for (let i = 0; i < 3000; i++) {
      const [top, left, h, w] = [p.top[i]!, p.left[i]!, p.height[i]!, p.width[i]!];
      assert.ok(top >= 0 && left >= 0 && h >= 1 && w >= 1 && top + h <= H && left + w <= W, `box ${top},${left},${h},${w}`);
      const area = (h * w) / (H * W);
      // Rounding the sides to pixels moves area and ratio slightly out of the nominal range.
      assert.ok(area > 0.06 && area <= 1, `area ${area}`);
      assert.ok(w / h > 0.75 * 0.85 && w / h < (4 / 3) * 1.15, `ratio ${w / h}`);
      if (area < 0.2) small++;
    }
    assert.ok(small > 100, 'small crops occur');
  });
  it('falls back to the centred crop when no try fits', () => {
    const t = new RandomResizedCrop({ size: 4, scale: [1, 1], ratio: [2, 2] });
    const p = t.sampleParams(5, [1, 1, 20, 20]);
    // A 2:1 box of area 400 cannot fit in 20×20: torchvision's fallback is w = 20, h = round(20 / 2).
    assert.deepEqual([p.height[0], p.width[0], p.top[0], p.left[0]], [10, 20, 5, 0]);
  });
  it('antialias: an 8× downscale reads the 8×8 box average', () => torch.scope(() => {
    const x = torch.rand([2, 3, 64, 64]);
    const full = { top: Int32Array.from([0, 0]), left: Int32Array.from([0, 0]), height: Int32Array.from([64, 64]), width: Int32Array.from([64, 64]), flip: new Uint8Array(2) };
    const aa = new RandomResizedCrop({ size: 8 }).apply(x, full);
    assert.ok(maxDiff(aa, F.avgPool2d(x, 8)) < 1e-5);
    const raw = new RandomResizedCrop({ size: 8, antialias: false }).apply(x, full);
    assert.ok(maxDiff(raw, F.avgPool2d(x, 8)) > 0.05, 'plain bilinear aliases');
    // Mixed levels in one batch: sample 0 at 8×, sample 1 at 1× (a small crop).
    const mixed = new RandomResizedCrop({ size: 8 }).apply(x, { ...full, height: Int32Array.from([64, 8]), width: Int32Array.from([64, 8]) });
    assert.ok(maxDiff(mixed.get(0), F.avgPool2d(x, 8).get(0)) < 1e-5);
    assert.ok(maxDiff(mixed.get(1), x.get(1).narrow(1, 0, 8).narrow(2, 0, 8)) < 1e-5);
  }));
  it('the per-sample loop and the batched grid agree', () => torch.scope(() => {
    torch.manualSeed(4);
    const x = torch.rand([5, 3, 20, 24]);
    const grid = new RandomResizedCrop({ size: 16, resample: 'grid', hflip: 0.5, antialias: false });
    const loop = new RandomResizedCrop({ size: 16, resample: 'loop', hflip: 0.5, antialias: false });
    const p = grid.sampleParams(5, x.shape);
    assert.ok(maxDiff(grid.apply(x, p), loop.apply(x, p)) < 1e-5);
    // Downscaling in the loop uses interpolate's antialiasing, exactly torchvision's resized_crop.
    const big = { top: Int32Array.from([0]), left: Int32Array.from([0]), height: Int32Array.from([20]), width: Int32Array.from([24]), flip: new Uint8Array(1) };
    const aa = new RandomResizedCrop({ size: 8, resample: 'loop' }).apply(x.narrow(0, 0, 1), big);
    assert.ok(maxDiff(aa, F.interpolate(x.narrow(0, 0, 1), { size: [8, 8], mode: 'bilinear', antialias: true })) < 1e-6);
  }));
  it('works on 1-channel uint8-derived batches and keeps dtype', () => torch.scope(() => {
    const y = new RandomResizedCrop({ size: 28 }).forward(torch.rand([5, 1, 28, 28]));
    assert.deepEqual(y.shape, [5, 1, 28, 28]);
    assert.equal(y.dtype, 'float32');
    assert.throws(() => new RandomResizedCrop({ size: 8 }).forward(torch.zeros([2, 3, 8, 8], { dtype: 'uint8' })), /toFloat/);
  }));
});

describe('flips and rotation', () => {
  const x = torch.rand([6, 3, 4, 5]).keep();
  it('horizontal and vertical flips flip the chosen samples', () => torch.scope(() => {
    assert.ok(new RandomHorizontalFlip(1).forward(x).equal(x.flip(3)));
    assert.ok(new RandomVerticalFlip(1).forward(x).equal(x.flip(2)));
    assert.ok(new RandomHorizontalFlip(0).forward(x).equal(x));
    torch.manualSeed(5);
    const t = new RandomHorizontalFlip(0.5);
    const y = t.forward(x);
    const flags = t.lastParams!.flip;
    for (let i = 0; i < 6; i++) assert.ok(y.get(i).equal(flags[i] ? x.get(i).flip(2) : x.get(i)));
  }));
  it('rotation by +90° turns the picture counter-clockwise', () => torch.scope(() => {
    // A bright pixel right of centre ends up above the centre.
    const img = torch.zeros([1, 1, 5, 5]);
    img.indexPut_([torch.tensor([0n]), torch.tensor([0n]), torch.tensor([2n]), torch.tensor([4n])], torch.tensor([1]));
    const r = new RandomRotation([90, 90]).forward(img);
    const flat = r.toArray();
    const at = flat.indexOf(Math.max(...flat));
    assert.deepEqual([Math.floor(at / 5), at % 5], [0, 2]);
    assert.ok(Math.abs(flat[at]! - 1) < 1e-5);
    assert.ok(new RandomRotation(0).forward(img).equal(img));
    const p = new RandomRotation(30).sampleParams(1000).angle;
    assert.ok(p.every((a) => a >= -30 && a <= 30) && Math.min(...p) < -25 && Math.max(...p) > 25);
  }));
});

describe('GaussianBlur', () => {
  it('keeps a constant image constant (mean preserved)', () => torch.scope(() => {
    const x = torch.full([3, 3, 10, 12], 0.37);
    const y = new GaussianBlur({ kernelSize: 5, sigma: [0.1, 2] }).forward(x);
    assert.ok(maxDiff(y, x) < 1e-6);
    assert.ok(Math.abs(y.mean().item() - 0.37) < 1e-6);
  }));
  it('blurs a delta into the normalised 2-d Gaussian (separable, per-sample σ)', () => torch.scope(() => {
    const x = torch.zeros([2, 1, 11, 11]);
    x.indexPut_([torch.tensor([0n, 1n]), torch.tensor([0n, 0n]), torch.tensor([5n, 5n]), torch.tensor([5n, 5n])], torch.tensor([1, 1]));
    const b = new GaussianBlur({ kernelSize: 5 });
    const y = b.apply(x, { applied: Uint8Array.from([1, 1]), sigma: Float32Array.from([0.8, 1.5]) });
    for (const [i, s] of [[0, 0.8], [1, 1.5]] as const) {
      const k = gaussianKernel1d(5, s);
      const got = y.get(i).get(0).narrow(0, 3, 5).narrow(1, 3, 5).toArray();
      for (let r = 0; r < 5; r++) for (let c = 0; c < 5; c++) assert.ok(Math.abs(got[r * 5 + c]! - k[r]! * k[c]!) < 1e-6);
    }
    assert.ok(Math.abs(y.sum().item() - 2) < 1e-5, 'mass preserved away from the border');
  }));
  it('leaves unselected samples untouched; sigma stays in range', () => torch.scope(() => {
    torch.manualSeed(7);
    const x = torch.rand([8, 3, 9, 9]);
    const b = new GaussianBlur({ kernelSize: 3, sigma: [0.1, 2], p: 0.5 });
    const y = b.forward(x);
    const { applied, sigma } = b.lastParams!;
    for (let i = 0; i < 8; i++) assert.equal(y.get(i).equal(x.get(i)), !applied[i]);
    const many = b.sampleParams(2000);
    for (let i = 0; i < 2000; i++) if (many.applied[i]) assert.ok(many.sigma[i]! >= 0.1 && many.sigma[i]! <= 2);
    assert.ok(sigma.length === 8);
    assert.throws(() => new GaussianBlur({ kernelSize: 4 }), /odd/);
    assert.throws(() => new GaussianBlur({ kernelSize: 21 }).forward(torch.rand([1, 1, 8, 8])), /smaller kernelSize/);
  }));
});

describe('eval transforms', () => {
  it('Resize (shorter side) and CenterCrop', () => torch.scope(() => {
    const x = torch.rand([2, 3, 20, 30]);
    const r = new Resize(10).forward(x);
    assert.deepEqual(r.shape, [2, 3, 10, 15]);
    const c = new CenterCrop(10).forward(r);
    assert.ok(c.equal(r.narrow(3, 2, 10)), 'offset round((15 − 10) / 2) = 2 (half to even)');
    assert.throws(() => new CenterCrop(40).forward(x), /resize first/);
  }));
});
