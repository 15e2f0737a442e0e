// Gradients of every differentiable op family against central finite differences (float64).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as torch from '../src/torch/index.js';
import { gradcheck } from '../src/torch/autograd.js';

const F = torch.functional;
torch.manualSeed(0);
const leaf = (shape: number[], opts: { positive?: boolean } = {}): torch.Tensor => {
  const t = torch.randn(shape, { dtype: 'float64' });
  const r = opts.positive ? t.abs().add(0.5) : t;
  return r.detach().requiresGrad_(true).keep();
};
const check = (name: string, fn: (...xs: torch.Tensor[]) => torch.Tensor, inputs: torch.Tensor[]): void => {
  const worst = gradcheck(fn, inputs);
  assert.ok(worst < 1e-4, `${name}: worst |diff| ${worst}`);
};

test('elementwise ops', () => {
  const a = leaf([3, 4]);
  const b = leaf([3, 4]);
  const p = leaf([3, 4], { positive: true });
  check('add', (x, y) => x.add(y, { alpha: 2 }), [a, b]);
  check('sub', (x, y) => x.sub(y), [a, b]);
  check('mul', (x, y) => x.mul(y), [a, b]);
  check('div', (x, y) => x.div(y), [a, p]);
  check('pow', (x) => x.pow(3), [a]);
  check('pow tensor', (x, y) => x.pow(y), [p, b]);
  for (const op of ['exp', 'tanh', 'sigmoid', 'sin', 'cos', 'erf', 'neg', 'square'] as const) check(op, (x) => x[op](), [a]);
  for (const op of ['log', 'sqrt', 'rsqrt', 'log1p', 'reciprocal'] as const) check(op, (x) => x[op](), [p]);
  check('abs', (x) => x.abs(), [p]);
  check('maximum', (x, y) => x.maximum(y), [a, b]);
  check('clamp', (x) => x.clamp({ min: -0.5, max: 0.5 }), [a]);
  check('lerp', (x, y) => x.lerp(y, 0.3), [a, b]);
  check('where', (x, y) => torch.where(x.detach().gt(0), x, y), [a, b]);
  check('maskedFill', (x) => x.maskedFill(x.detach().lt(0), 0), [a]);
});

test('reductions', () => {
  const a = leaf([3, 5]);
  check('sum', (x) => x.sum(), [a]);
  check('sum dim', (x) => x.sum(1, { keepdim: true }), [a]);
  check('mean', (x) => x.mean([0, 1]), [a]);
  check('var', (x) => x.var(1), [a]);
  check('std', (x) => x.std(0, { unbiased: false }), [a]);
  check('logsumexp', (x) => x.logsumexp(1), [a]);
  check('norm', (x) => x.norm(2, 1), [a]);
  check('max', (x) => x.max(), [a]);
  check('amax', (x) => x.amax(1), [a]);
  check('maxDim', (x) => x.maxDim(0).values, [a]);
  check('cumsum', (x) => x.cumsum(1), [a]);
  check('prod', (x) => x.prod(), [leaf([4], { positive: true })]);
});

test('matrix products', () => {
  const a = leaf([3, 4]);
  const b = leaf([4, 2]);
  check('matmul', (x, y) => x.matmul(y), [a, b]);
  check('mm', (x, y) => x.mm(y), [a, b]);
  check('bmm', (x, y) => x.bmm(y), [leaf([2, 3, 4]), leaf([2, 4, 2])]);
  check('einsum', (x, y) => torch.einsum('ij,jk->ik', x, y), [a, b]);
  check('outer', (x, y) => x.outer(y), [leaf([3]), leaf([2])]);
});

test('shape and indexing ops', () => {
  const a = leaf([2, 3, 4]);
  check('view', (x) => x.view(6, 4), [a]);
  check('reshape', (x) => x.reshape([4, 6]), [a]);
  check('permute', (x) => x.permute(2, 0, 1), [a]);
  check('transpose', (x) => x.transpose(0, 2), [a]);
  check('flatten', (x) => x.flatten(1), [a]);
  check('squeeze/unsqueeze', (x) => x.unsqueeze(1).squeeze(1), [a]);
  check('cat', (x, y) => torch.cat([x, y], 1), [a, leaf([2, 2, 4])]);
  check('stack', (x, y) => torch.stack([x, y], 0), [a, leaf([2, 3, 4])]);
  check('split', (x) => x.split([1, 3], 2)[1]!, [a]);
  check('chunk', (x) => x.chunk(2, 2)[0]!, [a]);
  check('narrow', (x) => x.narrow(2, 1, 2), [a]);
  check('slice', (x) => x.slice(2, 0, 4, 2), [a]);
  check('select', (x) => x.select(1, 2), [a]);
  const idx = torch.tensor(new BigInt64Array([2n, 0n])).keep();
  check('indexSelect', (x) => x.indexSelect(2, idx), [a]);
  check('index', (x) => x.index([null, idx]), [a]);
  const gidx = torch.randint(0, 4, [2, 3, 4]).keep();
  check('gather', (x) => x.gather(2, gidx), [a]);
  check('scatterAdd', (x, s) => x.scatterAdd(2, gidx, s), [a, leaf([2, 3, 4])]);
  check('expand', (x) => x.expand(3, 2, 4), [leaf([1, 2, 4])]);
  check('repeat', (x) => x.repeat(2, 1), [leaf([2, 3])]);
  check('flip', (x) => x.flip([0, 1]), [leaf([2, 3])]);
  check('topk', (x) => x.topk(2, { dim: 1 }).values, [leaf([3, 5])]);
  check('sort', (x) => x.sort({ dim: 1, descending: true }).values, [leaf([3, 5])]);
  check('contiguous', (x) => x.t().contiguous(), [leaf([3, 2])]);
});

test('nn functional', () => {
  check('conv2d', (x, w, b) => F.conv2d(x, w, b, { stride: 2, padding: 1 }), [leaf([2, 2, 5, 5]), leaf([3, 2, 3, 3]), leaf([3])]);
  check('conv2d groups', (x, w) => F.conv2d(x, w, null, { groups: 2, padding: 'same' }), [leaf([1, 4, 4, 4]), leaf([4, 2, 3, 3])]);
  check('convTranspose2d', (x, w, b) => F.convTranspose2d(x, w, b, { stride: 2, padding: 1, outputPadding: 1 }), [leaf([1, 2, 3, 3]), leaf([2, 3, 3, 3]), leaf([3])]);
  check('linear', (x, w, b) => F.linear(x, w, b), [leaf([4, 3]), leaf([2, 3]), leaf([2])]);
  const rm = torch.zeros([3], { dtype: 'float64' }).keep();
  const rv = torch.ones([3], { dtype: 'float64' }).keep();
  check('batchNorm train', (x, w, b) => F.batchNorm(x, rm, rv, { weight: w, bias: b, training: true }), [leaf([4, 3, 2, 2]), leaf([3]), leaf([3])]);
  check('layerNorm', (x, w, b) => F.layerNorm(x, [4], { weight: w, bias: b }), [leaf([3, 4]), leaf([4]), leaf([4])]);
  check('groupNorm', (x, w, b) => F.groupNorm(x, 2, { weight: w, bias: b }), [leaf([2, 4, 3]), leaf([4]), leaf([4])]);
  const a = leaf([3, 5]);
  check('relu', (x) => F.relu(x), [a]);
  check('gelu', (x) => F.gelu(x), [a]);
  check('gelu tanh', (x) => F.gelu(x, { approximate: 'tanh' }), [a]);
  check('quickGelu', (x) => F.quickGelu(x), [a]);
  check('silu', (x) => F.silu(x), [a]);
  check('softmax', (x) => F.softmax(x, 1), [a]);
  check('logSoftmax', (x) => F.logSoftmax(x, 0), [a]);
  const target = torch.tensor(new BigInt64Array([0n, 4n, 2n])).keep();
  check('crossEntropy', (x) => F.crossEntropy(x, target), [a]);
  check('crossEntropy smoothing', (x) => F.crossEntropy(x, target, { labelSmoothing: 0.1 }), [a]);
  check('mseLoss', (x, y) => F.mseLoss(x, y), [a, leaf([3, 5])]);
  const img = leaf([1, 2, 4, 4]);
  check('maxPool2d', (x) => F.maxPool2d(x, 2), [img]);
  check('avgPool2d', (x) => F.avgPool2d(x, 2, { stride: 1 }), [img]);
  check('adaptiveAvgPool2d', (x) => F.adaptiveAvgPool2d(x, 1), [img]);
  check('interpolate bilinear', (x) => F.interpolate(x, { size: [6, 5], mode: 'bilinear' }), [img]);
  check('interpolate nearest', (x) => F.interpolate(x, { scaleFactor: 2 }), [img]);
  const theta = torch.tensor([[[0.9, 0.1, 0.05], [-0.1, 0.8, 0.0]]], { dtype: 'float64' }).keep();
  const grid = F.affineGrid(theta, [1, 2, 3, 3]).keep();
  check('gridSample', (x) => F.gridSample(x, grid), [img]);
  check('affineGrid', (t) => F.affineGrid(t, [1, 1, 3, 3]), [leaf([1, 2, 3])]);
  const ids = torch.tensor(new BigInt64Array([1n, 3n, 1n])).keep();
  check('embedding', (w) => F.embedding(ids, w), [leaf([4, 3])]);
  check('normalize', (x) => F.normalize(x), [a]);
  check('cosineSimilarity', (x, y) => F.cosineSimilarity(x, y), [a, leaf([3, 5])]);
  check('pad constant', (x) => F.pad(x, [1, 2, 0, 1], { value: 0.5 }), [img]);
  check('pad reflect', (x) => F.pad(x, [1, 1, 1, 1], { mode: 'reflect' }), [img]);
});

test('backward with a gradient argument and retainGraph', () => {
  const x = torch.tensor([1, 2, 3], { dtype: 'float64', requiresGrad: true });
  const y = x.mul(x);
  y.backward(torch.tensor([1, 0.5, 2], { dtype: 'float64' }), { retainGraph: true });
  assert.deepEqual(x.grad!.toArray(), [2, 2, 12]);
  y.backward(torch.tensor([1, 1, 1], { dtype: 'float64' }));
  assert.deepEqual(x.grad!.toArray(), [4, 6, 18]); // gradients accumulate, as in PyTorch
  assert.throws(() => y.backward(torch.onesLike(y)), /backward through the graph a second time/);
  const z = torch.noGrad(() => x.mul(2));
  assert.equal(z.requiresGrad, false);
  assert.equal(torch.enableGrad(() => torch.noGrad(() => torch.isGradEnabled())), false);
  assert.equal(x.detach().requiresGrad, false);
});

test('gradcheck itself catches a wrong gradient', () => {
  // x * detach(x) has autograd gradient x, while the true derivative of x² is 2x.
  assert.throws(() => gradcheck((x) => x.mul(x.detach()), [leaf([3])]), /gradcheck: input 0/);
});
