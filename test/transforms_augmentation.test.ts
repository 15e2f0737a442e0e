/** `RandomAugmentation`: the plumbing every random augmentation shares (flags, lastParams, subsets, checks). */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as torch from '../src/torch/index.js';
import {
  GaussianBlur, RandomAugmentation, RandomGrayscale, RandomHorizontalFlip, RandomResizedCrop, RandomSolarization, selectRows,
  type Selection,
} from '../src/transforms/index.js';

torch.setNumThreads(1);

interface ShiftParams { applied: Uint8Array; shift: Float32Array }

/** Adds a per-sample shift; records what the base class hands to `applyTo`. */
class RandomShift extends RandomAugmentation<ShiftParams> {
  calls: { n: number; on: number[] | null; owned: boolean; shifts: number[] }[] = [];
  constructor(p: number) {
    super('RandomShift', { p });
  }
  protected generateParams(n: number, applied: Uint8Array | null): ShiftParams {
    return { applied: applied!, shift: Float32Array.from({ length: n }, (_, i) => 10 * (i + 1)) };
  }
  protected paramsLength(p: ShiftParams): number {
    return p.applied.length;
  }
  protected override appliedTo(p: ShiftParams): Uint8Array {
    return p.applied;
  }
  protected applyTo(x: Tensor, p: ShiftParams, sel: Selection): Tensor {
    const shifts = selectRows(p.shift, sel.on);
    this.calls.push({ n: x.size(0), on: sel.on && [...sel.on], owned: sel.owned, shifts: [...shifts] });
    return x.add(torch.tensor(shifts, { shape: [shifts.length, 1, 1, 1] }));
  }
}
type Tensor = torch.Tensor;

describe('RandomAugmentation', () => {
  it('draws the flags as torch.rand([N]) < p, then the transform parameters', () => {
    torch.manualSeed(4);
    const u = torch.rand([8]).toFloat32Array();
    torch.manualSeed(4);
    const p = new RandomShift(0.5).sampleParams(8);
    assert.deepEqual([...p.applied], [...u].map((v) => (v < 0.5 ? 1 : 0)));
  });

  it('applies to the selected samples only, leaving the others bit-exact', () => torch.scope(() => {
    const x = torch.rand([4, 3, 2, 2]);
    const t = new RandomShift(1);
    const y = t.apply(x, { applied: Uint8Array.from([0, 1, 0, 1]), shift: Float32Array.from([1, 2, 3, 4]) });
    assert.deepEqual(t.calls, [{ n: 2, on: [0, 1, 0, 1], owned: true, shifts: [2, 4] }]);
    assert.ok(y.get(0).equal(x.get(0)) && y.get(2).equal(x.get(2)));
    assert.ok(y.get(1).equal(x.get(1).add(2)) && y.get(3).equal(x.get(3).add(4)));
    assert.ok(x.equal(x.clone()), 'the input is not modified');
  }));

  it('runs the whole batch without a gather when every sample is selected, and aliases the input when none is', () => torch.scope(() => {
    const x = torch.rand([3, 1, 2, 2]);
    const t = new RandomShift(1);
    const all = t.apply(x, { applied: Uint8Array.from([1, 1, 1]), shift: Float32Array.from([1, 2, 3]) });
    assert.deepEqual(t.calls, [{ n: 3, on: null, owned: false, shifts: [1, 2, 3] }]);
    assert.ok(all.sub(x).view([3, 4]).select(1, 0).equal(torch.tensor([1, 2, 3])));
    const none = t.apply(x, { applied: new Uint8Array(3), shift: new Float32Array(3) });
    assert.equal(t.calls.length, 1, 'applyTo is not called');
    assert.notEqual(none, x);
    assert.ok(none.equal(x));
  }));

  it('forward records lastParams, and replaying them gives the same output', () => torch.scope(() => {
    torch.manualSeed(9);
    const x = torch.rand([16, 3, 4, 4]);
    const t = new RandomShift(0.5);
    const y = t.forward(x);
    const k = t.lastParams!.applied.reduce((a, b) => a + b, 0);
    assert.ok(k > 0 && k < 16, `${k} of 16 selected`);
    assert.ok(t.apply(x, t.lastParams!).equal(y));
  }));

  it('checks the batch, the probability and the parameters\' length, naming the transform', () => torch.scope(() => {
    assert.throws(() => new RandomShift(1.5), /RandomShift\.p: probability must be in \[0, 1\]/);
    assert.throws(() => new RandomHorizontalFlip(-0.1), /RandomHorizontalFlip\.p/);
    assert.throws(() => new RandomShift(1).forward(torch.rand([3, 4, 4])), /RandomShift: expected a batch \[N, C, H, W\]/);
    assert.throws(() => new RandomShift(1).forward(torch.rand([1, 2, 4, 4])), /RandomShift: expected 1 or 3 channels/);
    const x = torch.rand([3, 3, 4, 4]);
    for (const t of [new RandomGrayscale(1), new RandomSolarization(), new RandomHorizontalFlip(), new GaussianBlur({ kernelSize: 3 })]) {
      const name = t.constructor.name;
      const short = (t.sampleParams(2) as unknown) as never;
      assert.throws(() => t.apply(x, short), new RegExp(`${name}\\.apply: params are for 2 samples, the batch has 3`));
    }
  }));

  it('a transform that draws no flags (the crop) has p = 1 and spends no draw on them', () => {
    torch.manualSeed(2);
    const a = new RandomResizedCrop({ size: 4 }).sampleParams(5, [5, 1, 16, 16]);
    torch.manualSeed(2);
    torch.rand([5, 10, 2], { dtype: 'float64' });
    const after = torch.rand([5, 2], { dtype: 'float64' });
    assert.equal(new RandomResizedCrop({ size: 4 }).p, 1);
    // The offsets come from the second draw: top = floor(u · (H − h + 1)).
    const u = after.select(1, 0).toFloat64Array();
    for (let i = 0; i < 5; i++) if (a.height[i]! < 16) assert.equal(a.top[i], Math.floor(u[i]! * (16 - a.height[i]! + 1)));
  });
});
