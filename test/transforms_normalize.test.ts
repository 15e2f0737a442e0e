/** `normalize`: the one per-channel normalisation (training views, evaluation batches, CLIP) and the dataset statistics. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as torch from '../src/torch/index.js';
import {
  FMNIST_STATS, IMAGENET_STATS, LUMA_WEIGHTS, MNIST_STATS, Normalize, channelStats, normalize, toFloat,
} from '../src/transforms/index.js';
import { CLIPImageProcessor } from '../src/models/clip/preprocess.js';

torch.setNumThreads(1);

/** Every uint8 value, as a [1, C, 16, 16] batch (the same values in each channel, shifted). */
function allBytes(c: number): torch.Tensor {
  return torch.scope(() => torch.stack(Array.from({ length: c }, (_, k) => torch.arange(0, 256).add(40 * k).remainder(256)), 0)
    .to('uint8').view([1, c, 16, 16]));
}
const chan = (v: readonly number[]): torch.Tensor => torch.tensor([...v], { shape: [1, v.length, 1, 1] });

describe('normalize', () => {
  it('uint8: (x / 255 − mean) / std in float32, as torchvision (ToTensor then Normalize)', () => torch.scope(() => {
    const x = allBytes(3);
    const y = normalize(x, IMAGENET_STATS);
    assert.equal(y.dtype, 'float32');
    const ref = x.to('float32').div(255).sub(chan(IMAGENET_STATS.mean)).div(chan(IMAGENET_STATS.std));
    assert.ok(y.equal(ref), 'bit-identical to the two-step formula');
  }));

  it('normalize(u8) equals normalize(toFloat(u8)) and the Normalize transform, bit for bit', () => torch.scope(() => {
    for (const [c, s] of [[3, IMAGENET_STATS], [1, FMNIST_STATS], [1, MNIST_STATS]] as const) {
      const x = allBytes(c);
      const y = normalize(x, s);
      assert.ok(y.equal(normalize(toFloat(x), s)));
      assert.ok(y.equal(new Normalize(s).forward(toFloat(x))));
    }
  }));

  it('float input is taken as in [0, 1], keeps its dtype, and is not modified', () => torch.scope(() => {
    const x = torch.rand([2, 3, 4, 4], { dtype: 'float64' });
    const before = x.clone();
    const y = normalize(x, { mean: [0.5], std: [0.25] });
    assert.equal(y.dtype, 'float64');
    assert.ok(x.equal(before));
    assert.ok(y.sub(x.sub(0.5).mul(4)).abs().max().item() < 1e-12);
  }));

  it('rescale multiplies instead of dividing by 255 (CLIP\'s rescale_factor), for any dtype', () => torch.scope(() => {
    const x = allBytes(3);
    const s = { mean: [0.48145466, 0.4578275, 0.40821073], std: [0.26862954, 0.26130258, 0.27577711] };
    const y = normalize(x, s, { rescale: 1 / 255 });
    const ref = x.to('float32').mul(1 / 255).sub(chan(s.mean)).div(chan(s.std));
    assert.ok(y.equal(ref));
    assert.ok(normalize(x.to('float32'), s, { rescale: 1 / 255 }).equal(ref), 'float input (after a resize) too');
    assert.ok(!y.equal(normalize(x, s)), 'x · (1/255) and x / 255 differ in float32 for some bytes');
    assert.ok(normalize(x, null, { rescale: 2 }).equal(x.to('float32').mul(2)), 'null stats: only the conversion');
  }));

  it('CLIPImageProcessor.normalizeBatch is normalize with the processor\'s stats and rescale', () => torch.scope(() => {
    const proc = new CLIPImageProcessor({ size: 16, cropSize: 16 });
    const x = allBytes(3);
    const c = proc.config;
    assert.ok(proc.normalizeBatch(x).equal(normalize(x, c, { rescale: c.rescaleFactor })));
  }));

  it('1 value for every channel; 3-value statistics on 1 channel use the luma-weighted average', () => torch.scope(() => {
    assert.deepEqual(channelStats({ mean: [0.5], std: [0.2] }, 3), { mean: [0.5, 0.5, 0.5], std: [0.2, 0.2, 0.2] });
    const g = channelStats(IMAGENET_STATS, 1);
    const dot = (v: number[]): number => v.reduce((a, b, i) => a + b * LUMA_WEIGHTS[i]!, 0);
    assert.deepEqual(g, { mean: [dot(IMAGENET_STATS.mean)], std: [dot(IMAGENET_STATS.std)] });
    const y = normalize(torch.full([1, 1, 2, 2], 0.5), IMAGENET_STATS);
    assert.ok(Math.abs(y.max().item() - (0.5 - g.mean[0]!) / g.std[0]!) < 1e-6);
  }));

  it('errors name the caller and the fix', () => torch.scope(() => {
    assert.throws(() => normalize(torch.rand([1, 3, 2, 2]), { mean: [0.1, 0.2], std: [1, 1] }), /normalize: 2 mean\/std values for a 3-channel batch; pass 1 or 3 values/);
    assert.throws(() => normalize(torch.rand([1, 1, 2, 2]), { mean: [0.1], std: [0] }), /normalize: std must be positive/);
    assert.throws(() => normalize(torch.rand([1, 1, 2, 2]), { mean: [0.1, 0.2], std: [1] }), /same number of values/);
    assert.throws(() => normalize(torch.rand([3, 2, 2]), IMAGENET_STATS, { who: 'embed' }), /embed: expected a batch \[N, C, H, W\]/);
  }));

  it('the dataset statistics', () => {
    assert.deepEqual(IMAGENET_STATS, { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] });
    assert.deepEqual(MNIST_STATS, { mean: [0.1307], std: [0.3081] });
    assert.deepEqual(FMNIST_STATS, { mean: [0.286], std: [0.353] });
  });
});
