/**
 * Random augmentations under a fixed seed: pinned outputs and exact replay.
 *
 * The table below was recorded on the code before `RandomAugmentation` existed (each transform
 * with its own forward/lastParams/subset plumbing), so it checks that the base class draws from
 * libtorch's generator in the same order and applies the same ops: the per-sample sums of two
 * consecutive forwards (seed 7, input `torch.rand([6, C, 12, 10])`) and the integer parameters
 * (flags, crop boxes, op order), which come straight from the generator. A change in the order
 * of the draws moves the sums by whole units, far beyond the tolerance, which only absorbs the
 * rounding differences between CPUs (SIMD widths) in the float ops.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as torch from '../src/torch/index.js';
import {
  ColorJitter, GaussianBlur, RandomGrayscale, RandomHorizontalFlip, RandomResizedCrop, RandomRotation, RandomSolarization,
  RandomVerticalFlip, type RandomTransform,
} from '../src/transforms/index.js';

torch.setNumThreads(1);

const CASES: Record<string, () => RandomTransform<object>> = {
  colorJitter: () => new ColorJitter({ brightness: 0.8, contrast: 0.8, saturation: 0.8, hue: 0.2, p: 0.6 }),
  grayscale: () => new RandomGrayscale(0.5),
  solarization: () => new RandomSolarization({ p: 0.5, threshold: 0.4 }),
  gaussianBlur: () => new GaussianBlur({ kernelSize: 5, sigma: [0.3, 1.5], p: 0.5 }),
  resizedCropGrid: () => new RandomResizedCrop({ size: 8, hflip: 0.5, resample: 'grid' }),
  resizedCropLoop: () => new RandomResizedCrop({ size: 8, resample: 'loop' }),
  horizontalFlip: () => new RandomHorizontalFlip(0.5),
  verticalFlip: () => new RandomVerticalFlip(0.5),
  rotation: () => new RandomRotation(40, { p: 0.5 }),
};

/** Parameter fields as one string each: integers exact, float32 draws to 5 decimals. */
function paramStrings(p: object): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(p)) {
    if (v instanceof Float32Array) out[k] = [...v].map((a) => a.toFixed(5)).join(',');
    else if (ArrayBuffer.isView(v) || Array.isArray(v)) out[k] = [...(v as ArrayLike<number>) as number[]].join(',');
  }
  return out;
}

/**
 * Two forwards from seed 7: per-sample sums of y·w (w a ramp over the pixels, so flips and
 * rotations move it), rounded to 1e-3, and the parameters of each.
 */
function run(name: string, c: number): { sums: number[][]; params: Record<string, string>[] } {
  return torch.scope(() => {
    torch.manualSeed(7);
    const x = torch.rand([6, c, 12, 10]);
    const t = CASES[name]!();
    const sums: number[][] = [];
    const params: Record<string, string>[] = [];
    for (let r = 0; r < 2; r++) {
      const y = t.forward(x).to('float64');
      const [h, w] = [y.size(2), y.size(3)];
      const ramp = torch.arange(0, h * w).to('float64').div_(h * w).add_(0.5).view([1, 1, h, w]);
      sums.push([...y.mul(ramp).sum([1, 2, 3]).toFloat64Array()].map((s) => Math.round(s * 1000) / 1000));
      params.push(paramStrings(t.lastParams!));
    }
    return { sums, params };
  });
}

// Recorded before the base class (see the file comment). Keys: `${name}/c${channels}`.
const EXPECTED: Record<string, { sums: number[][]; params: Record<string, string>[] }> = {
  'colorJitter/c1': {"sums":[[88.914,61.342,55.532,62.446,58.157,58.875],[31.497,61.342,55.532,62.446,73.53,62.792]],"params":[{"applied":"1,0,0,0,0,0","brightness":"1.66991,1.00000,1.00000,1.00000,1.00000,1.00000","contrast":"0.76825,1.00000,1.00000,1.00000,1.00000,1.00000","saturation":"0.61424,1.00000,1.00000,1.00000,1.00000,1.00000","hue":"-0.08688,0.00000,0.00000,0.00000,0.00000,0.00000","order":"3,2,1,0"},{"applied":"1,0,0,0,1,1","brightness":"0.53679,1.00000,1.00000,1.00000,1.33228,1.07573","contrast":"0.58788,1.00000,1.00000,1.00000,0.60906,0.77659","saturation":"1.41957,1.00000,1.00000,1.00000,1.51049,0.86883","hue":"0.14171,0.00000,0.00000,0.00000,0.13154,-0.19347","order":"0,2,3,1"}]},
  'colorJitter/c3': {"sums":[[175.097,179.477,182.795,208.825,194.038,53.799],[175.097,130.079,198.045,184.121,185.649,173.696]],"params":[{"applied":"0,0,0,1,1,1","brightness":"1.00000,1.00000,1.00000,1.29125,1.16632,0.30826","contrast":"1.00000,1.00000,1.00000,1.57198,1.51767,0.99682","saturation":"1.00000,1.00000,1.00000,0.30384,1.18609,1.21255","hue":"0.00000,0.00000,0.00000,-0.05836,0.12391,-0.17423","order":"1,0,2,3"},{"applied":"0,1,1,0,0,0","brightness":"1.00000,0.70063,1.26279,1.00000,1.00000,1.00000","contrast":"1.00000,1.11419,0.63958,1.00000,1.00000,1.00000","saturation":"1.00000,1.79791,1.68599,1.00000,1.00000,1.00000","hue":"0.00000,0.12659,0.14095,0.00000,0.00000,0.00000","order":"2,3,0,1"}]},
  'grayscale/c1': {"sums":[[58.224,61.342,55.532,62.446,58.157,58.875],[58.224,61.342,55.532,62.446,58.157,58.875]],"params":[{"applied":"1,0,0,0,0,0"},{"applied":"0,0,1,1,0,0"}]},
  'grayscale/c3': {"sums":[[175.097,179.477,182.795,187.212,187.411,169.135],[179.242,179.477,182.795,184.121,185.649,169.135]],"params":[{"applied":"0,0,0,1,1,1"},{"applied":"1,0,0,0,0,1"}]},
  'solarization/c1': {"sums":[[33.317,61.342,55.532,62.446,58.157,58.875],[58.224,61.342,29.706,29.736,58.157,58.875]],"params":[{"applied":"1,0,0,0,0,0"},{"applied":"0,0,1,1,0,0"}]},
  'solarization/c3': {"sums":[[175.097,179.477,182.795,90.72,98.777,92.291],[96.734,179.477,182.795,184.121,185.649,92.291]],"params":[{"applied":"0,0,0,1,1,1"},{"applied":"1,0,0,0,0,1"}]},
  'gaussianBlur/c1': {"sums":[[57.754,61.342,55.532,62.446,58.157,58.875],[57.82,61.342,55.532,62.446,57.994,58.875]],"params":[{"applied":"1,0,0,0,0,0","sigma":"1.40243,0.00000,0.00000,0.00000,0.00000,0.00000"},{"applied":"1,0,0,0,1,0","sigma":"0.61068,0.00000,0.00000,0.00000,1.30557,0.00000"}]},
  'gaussianBlur/c3': {"sums":[[175.097,179.477,182.795,183.105,184.759,173.752],[175.014,178.603,183.076,184.121,185.649,174.133]],"params":[{"applied":"0,0,0,1,1,1","sigma":"0.00000,0.00000,0.00000,1.11844,1.02474,0.38120"},{"applied":"1,1,1,0,0,1","sigma":"0.53015,1.10914,0.46571,0.00000,0.00000,1.05941"}]},
  'resizedCropGrid/c1': {"sums":[[33.354,30.497,29.287,32.605,30.992,29.62],[32.3,33.105,29.39,33.331,35.586,31.343]],"params":[{"top":"2,0,1,5,0,2","left":"3,1,0,1,0,1","height":"7,11,11,6,12,6","width":"7,9,9,8,9,8","flip":"1,1,0,1,0,0"},{"top":"0,3,1,2,1,0","left":"0,0,0,0,3,5","height":"10,9,11,9,6,4","width":"9,10,10,10,7,4","flip":"1,0,0,1,1,1"}]},
  'resizedCropGrid/c3': {"sums":[[91.332,96.315,92.857,96.107,104.43,90.724],[90.703,102.066,87.367,98.043,98.849,90.598]],"params":[{"top":"4,2,3,1,3,2","left":"0,1,0,1,4,1","height":"8,8,8,10,8,8","width":"6,8,9,8,6,7","flip":"1,1,0,0,0,1"},{"top":"5,4,1,2,3,3","left":"0,0,2,2,1,2","height":"5,6,8,7,9,5","width":"5,7,8,8,8,5","flip":"1,0,0,0,0,0"}]},
  'resizedCropLoop/c1': {"sums":[[33.375,30.943,29.599,32.458,30.998,29.62],[30.239,33.596,28.489,30.789,30.823,31.817]],"params":[{"top":"2,0,1,5,0,2","left":"3,1,0,1,0,1","height":"7,11,11,6,12,6","width":"7,9,9,8,9,8","flip":"0,0,0,0,0,0"},{"top":"3,2,1,4,0,0","left":"0,0,3,6,1,0","height":"9,10,8,5,12,11","width":"10,9,7,4,9,9","flip":"0,0,0,0,0,0"}]},
  'resizedCropLoop/c3': {"sums":[[90.739,96.27,92.559,96.274,104.43,90.972],[91.668,96.462,86.537,101.082,97.976,99.126]],"params":[{"top":"4,2,3,1,3,2","left":"0,1,0,1,4,1","height":"8,8,8,10,8,8","width":"6,8,9,8,6,7","flip":"0,0,0,0,0,0"},{"top":"4,1,0,0,1,6","left":"2,1,2,1,0,6","height":"5,9,9,6,11,4","width":"7,8,7,7,9,4","flip":"0,0,0,0,0,0"}]},
  'horizontalFlip/c1': {"sums":[[58.166,61.342,55.532,62.446,58.157,58.875],[58.224,61.342,55.569,62.229,58.157,58.875]],"params":[{"flip":"1,0,0,0,0,0"},{"flip":"0,0,1,1,0,0"}]},
  'horizontalFlip/c3': {"sums":[[175.097,179.477,182.795,184.349,185.585,173.669],[175.057,179.477,182.795,184.121,185.649,173.669]],"params":[{"flip":"0,0,0,1,1,1"},{"flip":"1,0,0,0,0,1"}]},
  'verticalFlip/c1': {"sums":[[60.48,61.342,55.532,62.446,58.157,58.875],[58.224,61.342,54.631,62.904,58.157,58.875]],"params":[{"flip":"1,0,0,0,0,0"},{"flip":"0,0,1,1,0,0"}]},
  'verticalFlip/c3': {"sums":[[175.097,179.477,182.795,183.041,185.57,177.147],[174.087,179.477,182.795,184.121,185.649,177.147]],"params":[{"flip":"0,0,0,1,1,1"},{"flip":"1,0,0,0,0,1"}]},
  'rotation/c1': {"sums":[[47.239,61.342,55.532,62.446,58.157,58.875],[52.71,61.342,55.532,62.446,49.746,58.875]],"params":[{"angle":"33.49562,0.00000,0.00000,0.00000,0.00000,0.00000"},{"angle":"-19.28816,0.00000,0.00000,0.00000,27.03817,0.00000"}]},
  'rotation/c3': {"sums":[[175.097,179.477,182.795,165.869,172.461,146.321],[148.59,162.32,150.69,184.121,185.649,159.844]],"params":[{"angle":"0.00000,0.00000,0.00000,14.56257,8.31597,-34.58693"},{"angle":"-24.65696,13.94257,-28.95286,0.00000,0.00000,10.62741"}]},
};

describe('random augmentations: pinned outputs under a fixed seed', () => {
  for (const name of Object.keys(CASES)) {
    for (const c of [1, 3]) {
      it(`${name}, ${c} channel(s)`, () => {
        const got = run(name, c);
        if (process.env.DYAD_RECORD) {
          console.log(`  '${name}/c${c}': ${JSON.stringify(got)},`);
          return;
        }
        const want = EXPECTED[`${name}/c${c}`]!;
        assert.deepEqual(got.params, want.params);
        for (let r = 0; r < 2; r++) {
          got.sums[r]!.forEach((s, i) => assert.ok(Math.abs(s - want.sums[r]![i]!) < 2e-3, `forward ${r}, sample ${i}: sum ${s}, recorded ${want.sums[r]![i]}`));
        }
      });
    }
  }
});

describe('random augmentations: replay', () => {
  for (const name of Object.keys(CASES)) {
    it(`${name}: apply(x, lastParams) reproduces forward(x) exactly`, () => torch.scope(() => {
      torch.manualSeed(5);
      const x = torch.rand([7, 3, 12, 10]);
      const t = CASES[name]!();
      const y = t.forward(x);
      assert.ok(t.apply(x, t.lastParams!).equal(y));
      assert.ok(t.forward(x).shape.join() === y.shape.join());
    }));
  }
});
