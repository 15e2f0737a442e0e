import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as torch from '../src/torch/index.js';
import {
  ColorJitter, Normalize, RandomGrayscale, RandomSolarization, adjustBrightness, adjustContrast, adjustHue, adjustSaturation,
  hsvToRgb, rgbToGrayscale, rgbToHsv, toFloat,
} from '../src/transforms/index.js';

torch.setNumThreads(1);

const maxDiff = (a: torch.Tensor, b: torch.Tensor): number => torch.scope(() => a.sub(b).abs().max().item());
/** One image [1, 3, 1, k] from k RGB pixels. */
const pixels = (...px: [number, number, number][]): torch.Tensor =>
  torch.tensor([[0, 1, 2].map((c) => [px.map((p) => p[c]!)])]);

describe('colour ops: identities', () => {
  const x = torch.rand([3, 3, 6, 5]).keep();
  it('brightness factor 1 is the identity', () => torch.scope(() => {
    assert.ok(adjustBrightness(x, 1).equal(x));
  }));
  it('contrast factor 1 is the identity', () => torch.scope(() => {
    assert.ok(maxDiff(adjustContrast(x, 1), x) < 1e-7);
  }));
  it('saturation factor 1 is the identity', () => torch.scope(() => {
    assert.ok(maxDiff(adjustSaturation(x, 1), x) < 1e-7);
  }));
  it('hue shift 0 is the identity (RGB → HSV → RGB round trip)', () => torch.scope(() => {
    assert.ok(maxDiff(adjustHue(x, 0), x) < 1e-5);
    assert.ok(maxDiff(hsvToRgb(rgbToHsv(x)), x) < 1e-5);
    assert.ok(maxDiff(adjustHue(x, 1), x) < 1e-5, 'a full turn');
  }));
  it('ColorJitter with identity factors returns the input', () => torch.scope(() => {
    const cj = new ColorJitter({ brightness: 0.5, contrast: 0.5, saturation: 0.5, hue: 0.1 });
    const ones = new Float32Array(3).fill(1);
    const y = cj.apply(x, { applied: new Uint8Array([1, 1, 1]), brightness: ones, contrast: ones, saturation: ones, hue: new Float32Array(3), order: [3, 2, 1, 0] });
    assert.ok(maxDiff(y, x) < 1e-5);
  }));
});

describe('colour ops: known values', () => {
  it('grayscale uses the ITU-R 601-2 luma weights', () => torch.scope(() => {
    const g = rgbToGrayscale(pixels([1, 0.5, 0.25], [0, 0, 1])).toArray();
    assert.ok(Math.abs(g[0]! - (0.299 + 0.587 * 0.5 + 0.114 * 0.25)) < 1e-6);
    assert.ok(Math.abs(g[1]! - 0.114) < 1e-6);
  }));
  it('RGB → HSV of known colours', () => torch.scope(() => {
    const hsv = rgbToHsv(pixels([1, 0.5, 0], [0, 0, 0.5], [0.4, 0.4, 0.4])).toArray(); // [h0 h1 h2, s.., v..]
    const [h, s, v] = [hsv.slice(0, 3), hsv.slice(3, 6), hsv.slice(6, 9)];
    assert.ok(Math.abs(h[0]! - 30 / 360) < 1e-6 && Math.abs(s[0]! - 1) < 1e-6 && Math.abs(v[0]! - 1) < 1e-6);
    assert.ok(Math.abs(h[1]! - 240 / 360) < 1e-6 && Math.abs(v[1]! - 0.5) < 1e-6);
    assert.ok(h[2] === 0 && s[2] === 0, 'gray has hue 0 and saturation 0');
  }));
  it('hue rotates red to green (1/3 turn) and to cyan (1/2 turn)', () => torch.scope(() => {
    const red = pixels([1, 0, 0]);
    assert.ok(maxDiff(adjustHue(red, 1 / 3), pixels([0, 1, 0])) < 1e-5);
    assert.ok(maxDiff(adjustHue(red, 0.5), pixels([0, 1, 1])) < 1e-5);
    assert.ok(maxDiff(adjustHue(red, -1 / 3), pixels([0, 0, 1])) < 1e-5);
  }));
  it('per-sample factors broadcast over the batch', () => torch.scope(() => {
    const x = torch.full([2, 3, 2, 2], 0.5);
    const y = adjustBrightness(x, torch.tensor([0.5, 4], { shape: [2, 1, 1, 1] }));
    assert.deepEqual([y.get(0).mean().item(), y.get(1).mean().item()], [0.25, 1]);
  }));
  it('contrast blends with the per-image mean luma; saturation 0 gives gray', () => torch.scope(() => {
    const x = pixels([1, 0, 0], [0, 1, 0]);
    const m = (0.299 + 0.587) / 2;
    assert.ok(maxDiff(adjustContrast(x, 0), torch.full([1, 3, 1, 2], m)) < 1e-6);
    const g = adjustSaturation(x, 0);
    assert.ok(maxDiff(g, pixels([0.299, 0.299, 0.299], [0.587, 0.587, 0.587])) < 1e-6);
  }));
  it('solarization inverts values at or above the threshold', () => torch.scope(() => {
    const s = new RandomSolarization({ threshold: 0.5, p: 1 });
    const y = s.forward(torch.tensor([0.2, 0.5, 0.8], { shape: [1, 1, 1, 3] })).toArray();
    assert.ok(Math.abs(y[0]! - 0.2) < 1e-7 && Math.abs(y[1]! - 0.5) < 1e-7 && Math.abs(y[2]! - 0.2) < 1e-7);
    assert.ok(new RandomSolarization({ p: 0 }).forward(torch.ones([2, 1, 2, 2])).equal(torch.ones([2, 1, 2, 2])));
  }));
  it('normalize computes (x − mean) / std per channel', () => torch.scope(() => {
    const y = new Normalize({ mean: [0.5, 0.25, 0], std: [0.25, 0.5, 2] }).forward(torch.ones([1, 3, 1, 1])).toArray();
    [2, 1.5, 0.5].forEach((v, i) => assert.ok(Math.abs(y[i]! - v) < 1e-6));
    const g = new Normalize({ mean: [0.5], std: [0.5] }).forward(torch.zeros([1, 1, 1, 1])).item();
    assert.ok(Math.abs(g + 1) < 1e-6);
    assert.throws(() => new Normalize({ mean: [0.1, 0.2], std: [1, 1] }).forward(torch.zeros([1, 3, 1, 1])), /1 or 3 values/);
  }));
  it('toFloat maps uint8 to [0, 1]', () => torch.scope(() => {
    const y = toFloat(torch.tensor(new Uint8Array([0, 51, 255]), { shape: [1, 1, 1, 3] }));
    assert.equal(y.dtype, 'float32');
    assert.deepEqual(y.toArray().map((v) => Math.round(v * 1000) / 1000), [0, 0.2, 1]);
  }));
});

describe('colour ops on 1-channel images', () => {
  const x = torch.rand([4, 1, 5, 5]).keep();
  it('saturation and hue are identities, not errors', () => torch.scope(() => {
    assert.ok(adjustSaturation(x, 0).equal(x));
    assert.ok(adjustHue(x, 0.3).equal(x));
    const cj = new ColorJitter({ saturation: 0.8, hue: 0.2 });
    assert.ok(cj.forward(x).equal(x));
  }));
  it('grayscale is an identity', () => torch.scope(() => {
    assert.ok(new RandomGrayscale(1).forward(x).equal(x));
  }));
  it('brightness and contrast still apply', () => torch.scope(() => {
    const y = new ColorJitter({ brightness: 0.5, contrast: 0.5 }).forward(x);
    assert.deepEqual(y.shape, [4, 1, 5, 5]);
    assert.ok(!y.equal(x));
  }));
});

describe('random parameters', () => {
  it('ColorJitter factors stay in torchvision ranges; skipped samples get identity factors', () => {
    torch.manualSeed(1);
    const cj = new ColorJitter({ brightness: 0.8, contrast: 0.4, saturation: 1.5, hue: 0.2, p: 0.8 });
    const p = cj.sampleParams(4000);
    let applied = 0;
    for (let i = 0; i < 4000; i++) {
      if (p.applied[i]) {
        applied++;
        assert.ok(p.brightness[i]! >= 0.2 - 1e-6 && p.brightness[i]! <= 1.8 + 1e-6);
        assert.ok(p.contrast[i]! >= 0.6 - 1e-6 && p.contrast[i]! <= 1.4 + 1e-6);
        assert.ok(p.saturation[i]! >= 0 && p.saturation[i]! <= 2.5 + 1e-6, 'saturation clamps its lower bound at 0');
        assert.ok(Math.abs(p.hue[i]!) <= 0.2 + 1e-6);
      } else {
        assert.deepEqual([p.brightness[i], p.contrast[i], p.saturation[i], p.hue[i]], [1, 1, 1, 0]);
      }
    }
    assert.ok(applied > 3000 && applied < 3400, `applied ${applied}/4000 with p = 0.8`);
    assert.deepEqual([...p.order].sort(), [0, 1, 2, 3]);
    const minB = Math.min(...p.brightness);
    assert.ok(minB < 0.25, 'the range is covered');
  });
  it('forward records lastParams; grayscale flags follow p', () => {
    torch.manualSeed(2);
    const g = new RandomGrayscale(0.3);
    torch.scope(() => {
      const x = torch.rand([500, 3, 2, 2]);
      const y = g.forward(x);
      const flags = g.lastParams!.applied;
      const n = flags.reduce((a, b) => a + b, 0);
      assert.ok(n > 110 && n < 190, `grayscale ${n}/500`);
      const i = flags.indexOf(1);
      const j = flags.indexOf(0);
      const yi = y.get(i);
      assert.ok(maxDiff(yi.get(0), yi.get(2)) === 0, 'a gray sample has equal channels');
      assert.ok(y.get(j).equal(x.get(j)), 'an untouched sample is unchanged');
    });
  });
  it('rejects out-of-range options', () => {
    assert.throws(() => new ColorJitter({ hue: 0.7 }), /hue/);
    assert.throws(() => new ColorJitter({ brightness: -1 }), /brightness/);
    assert.throws(() => new RandomGrayscale(1.5), /probability/);
  });
});
