// Module mechanics: registration and PyTorch names, state dicts, modes, dtype moves, freezing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as torch from '../src/torch/index.js';
import * as nn from '../src/nn/index.js';
import type { Tensor } from '../src/torch/index.js';

class Block extends nn.Module {
  conv1 = new nn.Conv2d(2, 2, 3, { padding: 1, bias: false });
  bn1 = new nn.BatchNorm2d(2);
  forward(x: Tensor): Tensor {
    return this.bn1.forward(this.conv1.forward(x)).relu();
  }
}
class Net extends nn.Module {
  stem = new nn.Conv2d(1, 2, 3, { padding: 1 });
  layers = new nn.Sequential(new Block(), new Block());
  heads: nn.ModuleList<nn.Linear>;
  scale: nn.Parameter;
  constructor() {
    super();
    this.heads = new nn.ModuleList([new nn.Linear(2, 3), new nn.Linear(2, 4)]);
    this.scale = new nn.Parameter(torch.ones([1]));
    this.registerBuffer('counter', torch.zeros([1]), { persistent: false });
  }
  forward(x: Tensor): Tensor {
    const f = this.layers.forward(this.stem.forward(x)).mean([2, 3]);
    return this.heads.get(0).forward(f).mul(this.scale);
  }
}

const NET_PARAMS = [
  'scale',
  'stem.weight', 'stem.bias',
  'layers.0.conv1.weight', 'layers.0.bn1.weight', 'layers.0.bn1.bias',
  'layers.1.conv1.weight', 'layers.1.bn1.weight', 'layers.1.bn1.bias',
  'heads.0.weight', 'heads.0.bias', 'heads.1.weight', 'heads.1.bias',
];
const bnState = (p: string): string[] => [`${p}.weight`, `${p}.bias`, `${p}.running_mean`, `${p}.running_var`, `${p}.num_batches_tracked`];
const NET_STATE = [
  'scale', 'stem.weight', 'stem.bias',
  'layers.0.conv1.weight', ...bnState('layers.0.bn1'),
  'layers.1.conv1.weight', ...bnState('layers.1.bn1'),
  'heads.0.weight', 'heads.0.bias', 'heads.1.weight', 'heads.1.bias',
];

test('nested modules have PyTorch dotted names', () => {
  const net = new Net();
  // PyTorch order: a module's own parameters first, then its children's, depth first
  assert.deepEqual(net.namedParameters().map(([n]) => n), NET_PARAMS);
  assert.equal(net.parameters().length, NET_PARAMS.length);
  assert.ok(net.parameters().every((p) => p instanceof nn.Parameter && p.requiresGrad));
  assert.deepEqual(net.namedBuffers().map(([n]) => n), [
    'counter',
    'layers.0.bn1.running_mean', 'layers.0.bn1.running_var', 'layers.0.bn1.num_batches_tracked',
    'layers.1.bn1.running_mean', 'layers.1.bn1.running_var', 'layers.1.bn1.num_batches_tracked',
  ]);
  assert.deepEqual(net.namedChildren().map(([n]) => n), ['stem', 'layers', 'heads']);
  assert.deepEqual(net.namedModules().map(([n]) => n), [
    '', 'stem', 'layers', 'layers.0', 'layers.0.conv1', 'layers.0.bn1', 'layers.1', 'layers.1.conv1', 'layers.1.bn1',
    'heads', 'heads.0', 'heads.1',
  ]);
  assert.equal(net.getSubmodule('layers.1.bn1'), (net.layers.get(1) as Block).bn1);
  assert.throws(() => net.getSubmodule('layers.2'), /no submodule '2'/);
  assert.deepEqual(net.namedParameters({ recurse: false }).map(([n]) => n), ['scale']);
  // a shared parameter/module is listed once
  class Tied extends nn.Module {
    a = new nn.Linear(2, 2);
    b = this.a;
    forward(x: Tensor): Tensor { return this.b.forward(this.a.forward(x)); }
  }
  const tied = new Tied();
  assert.deepEqual(tied.namedParameters().map(([n]) => n), ['a.weight', 'a.bias']);
  assert.deepEqual([...tied.stateDict().keys()], ['a.weight', 'a.bias', 'b.weight', 'b.bias']);
});

test('discovery follows reassignment, null and deletion; #private fields and arrays are not registered', () => {
  class M extends nn.Module {
    fc: nn.Linear | null = new nn.Linear(2, 2);
    other = new nn.Linear(2, 1);
    list = [new nn.Linear(2, 2)]; // a plain array: not registered, as in PyTorch
    #teacher = new nn.Linear(2, 2);
    notState = torch.zeros([3]); // a plain tensor property: not state
    forward(x: Tensor): Tensor { return this.#teacher.forward(x); }
  }
  const m = new M();
  assert.deepEqual(m.namedParameters().map(([n]) => n), ['fc.weight', 'fc.bias', 'other.weight', 'other.bias']);
  m.fc = new nn.Linear(2, 5);
  assert.deepEqual(m.getSubmodule('fc').parameters()[0]!.shape, [5, 2]);
  m.fc = null;
  assert.deepEqual(m.namedParameters().map(([n]) => n), ['other.weight', 'other.bias']);
  delete (m as { other?: unknown }).other;
  assert.deepEqual(m.namedParameters(), []);
  assert.throws(() => m.registerParameter('forward', null), /clashes/);
  assert.throws(() => m.registerParameter('a.b', null), /can't contain/);
  assert.throws(() => m.registerParameter('w', torch.ones([1]) as nn.Parameter), /nn.Parameter/);
  // a parameter slot assigned a plain tensor is an error that says how to fix it
  const lin = new nn.Linear(2, 2);
  (lin as { weight: unknown }).weight = torch.ones([2, 2]);
  assert.throws(() => lin.parameters(), /new nn.Parameter/);
});

test('a buffer reassigned inside a scope survives it, and the old one is freed', () => {
  class Queue extends nn.Module {
    declare queue: Tensor;
    constructor() {
      super();
      this.registerBuffer('queue', torch.zeros([4]));
    }
    forward(x: Tensor): Tensor {
      this.queue = torch.cat([x, this.queue.narrow(0, 0, 4 - x.size(0))]);
      return this.queue;
    }
  }
  const q = new Queue();
  const first = q.queue;
  const count = torch.memory().count;
  for (let i = 1; i <= 3; i++) torch.scope(() => void q.forward(torch.full([1], i)));
  assert.deepEqual(q.queue.toArray(), [3, 2, 1, 0]);
  assert.ok(first.isDisposed, 'the replaced buffer was disposed');
  assert.equal(torch.memory().count, count, 'no leak across steps');
  assert.deepEqual(q.namedBuffers().map(([n]) => n), ['queue']);
  assert.throws(() => { (q as { queue: unknown }).queue = 3; }, /cannot assign number to buffer 'queue'/);
  q.dispose();
  assert.ok(q.queue.isDisposed);
});

test('Sequential and ModuleList: indexing, iteration, named children', () => {
  const a = new nn.Linear(2, 3), r = new nn.ReLU(), b = new nn.Linear(3, 1);
  const seq = new nn.Sequential(a, r, b);
  assert.equal(seq.length, 3);
  assert.equal(seq.get(0), a);
  assert.equal(seq.get(-1), b);
  assert.equal(seq[1], r);
  assert.deepEqual([...seq], [a, r, b]);
  assert.deepEqual(seq.namedChildren().map(([n]) => n), ['0', '1', '2']);
  assert.throws(() => seq.get(3), /out of range/);
  const x = torch.randn([4, 2]);
  assert.ok(seq.forward(x).allclose(b.forward(a.forward(x).relu())));
  const named = new nn.Sequential(new Map<string, nn.Module>([['fc', new nn.Linear(2, 2)], ['act', new nn.GELU()]]));
  assert.deepEqual([...named.stateDict().keys()], ['fc.weight', 'fc.bias']);
  const list = new nn.ModuleList<nn.Linear>();
  list.append(new nn.Linear(1, 1)).extend([new nn.Linear(1, 2)]);
  assert.deepEqual(list.namedParameters().map(([n]) => n), ['0.weight', '0.bias', '1.weight', '1.bias']);
  assert.throws(() => list.forward(), /no forward/);
});

test('stateDict has parameters and persistent buffers under PyTorch names; loadStateDict round-trips', () => {
  torch.manualSeed(7);
  const a = new Net();
  // a training step changes the running statistics
  a.forward(torch.randn([3, 1, 5, 5]));
  const sd = a.stateDict();
  assert.deepEqual([...sd.keys()], NET_STATE);
  assert.equal(sd.get('layers.0.bn1.num_batches_tracked')!.dtype, 'int64');
  assert.equal(sd.get('layers.0.bn1.num_batches_tracked')!.item(), 1);
  assert.ok(!sd.has('counter'), 'non-persistent buffers are left out');
  assert.ok(!(sd.get('stem.weight') instanceof nn.Parameter) && !sd.get('stem.weight')!.requiresGrad, 'values are detached');
  const b = new Net();
  const res = b.loadStateDict(sd);
  assert.deepEqual(res, { missingKeys: [], unexpectedKeys: [] });
  for (const [k, t] of b.stateDict()) assert.ok(t.equal(sd.get(k)!), k);
  a.eval();
  b.eval();
  const x = torch.randn([2, 1, 5, 5]);
  assert.ok(a.forward(x).equal(b.forward(x)));
  // loading copies: changing the source afterwards does not change b
  torch.noGrad(() => a.stem.weight.add_(1));
  assert.ok(!a.stem.weight.equal(b.stem.weight));
  // a plain record works too, and parameters stay leaves that require grad
  const rec = Object.fromEntries(a.stateDict());
  b.loadStateDict(rec);
  assert.ok(a.stem.weight.equal(b.stem.weight));
  assert.ok(b.stem.weight.requiresGrad && b.stem.weight.isLeaf);
  torch.disposeAll(sd);
});

test('strict loading lists missing, unexpected and mis-shaped keys; non-strict loads what matches', () => {
  const net = new Net();
  const sd = net.stateDict();
  sd.delete('stem.bias');
  sd.delete('heads.1.weight');
  sd.set('extra.weight', torch.ones([2]));
  sd.set('heads.0.weight', torch.ones([5, 2]));
  let err: nn.StateDictError | undefined;
  try {
    new Net().loadStateDict(sd);
  } catch (e) {
    err = e as nn.StateDictError;
  }
  assert.ok(err instanceof nn.StateDictError);
  assert.match(err.message, /Error\(s\) in loading state_dict for Net/);
  assert.match(err.message, /Missing key\(s\) in state_dict: "stem.bias", "heads.1.weight"\./);
  assert.match(err.message, /Unexpected key\(s\) in state_dict: "extra.weight"\./);
  assert.match(err.message, /size mismatch for heads.0.weight: copying a param with shape \[5, 2\] from checkpoint, the shape in current model is \[3, 2\]/);
  assert.deepEqual(err.missingKeys, ['stem.bias', 'heads.1.weight']);
  assert.deepEqual(err.unexpectedKeys, ['extra.weight']);
  assert.deepEqual(err.mismatchedKeys, [{ key: 'heads.0.weight', expected: [3, 2], got: [5, 2] }]);

  // a mismatched shape is an error even when not strict, and nothing is copied
  const target = new Net();
  const before = target.stem.weight.clone();
  assert.throws(() => target.loadStateDict(sd, { strict: false }), /size mismatch/);
  assert.ok(target.stem.weight.equal(before));

  sd.set('heads.0.weight', torch.zeros([3, 2]));
  const res = target.loadStateDict(sd, { strict: false });
  assert.deepEqual(res, { missingKeys: ['stem.bias', 'heads.1.weight'], unexpectedKeys: ['extra.weight'] });
  assert.ok(target.stem.weight.equal(net.stem.weight));
  assert.equal(target.heads.get(0).weight.abs().sum().item(), 0);
  assert.ok(!target.heads.get(1).weight.equal(net.heads.get(1).weight), 'missing keys keep their values');

  // num_batches_tracked may be absent (old checkpoints), as PyTorch tolerates
  const bn = new nn.BatchNorm2d(2);
  const bsd = bn.stateDict();
  bsd.delete('num_batches_tracked');
  assert.deepEqual(new nn.BatchNorm2d(2).loadStateDict(bsd), { missingKeys: [], unexpectedKeys: [] });
});

test('train()/eval() propagate; apply visits every module', () => {
  const net = new Net();
  assert.ok(net.modules().every((m) => m.training));
  assert.equal(net.eval(), net);
  assert.ok(net.modules().every((m) => !m.training));
  net.train();
  assert.ok(net.modules().every((m) => m.training));
  net.layers.train(false);
  assert.equal(net.training, true);
  assert.equal((net.layers.get(0) as Block).bn1.training, false);
  const seen: string[] = [];
  net.apply((m) => seen.push(m.constructor.name));
  assert.equal(seen.length, net.modules().length);
  assert.equal(seen.at(-1), 'Net');
  // re-initialise every Linear the PyTorch way
  net.apply((m) => {
    if (m instanceof nn.Linear) nn.init.zeros_(m.weight);
  });
  assert.equal(net.heads.get(1).weight.abs().sum().item(), 0);
});

test('zeroGrad clears gradients; requiresGrad_(false) freezes', () => {
  const net = new Net();
  const x = torch.randn([2, 1, 4, 4]);
  net.forward(x).sum().backward();
  assert.ok(net.stem.weight.grad !== null);
  net.zeroGrad({ setToNone: false });
  assert.equal(net.stem.weight.grad!.abs().sum().item(), 0);
  net.zeroGrad();
  assert.ok(net.parameters().every((p) => p.grad === null));
  net.stem.requiresGrad_(false);
  net.forward(x).sum().backward();
  assert.equal(net.stem.weight.grad, null);
  assert.equal(net.stem.bias!.grad, null);
  assert.ok(net.heads.get(0).weight.grad !== null);
  assert.ok(net.getSubmodule('layers.0.conv1').parameters()[0]!.grad !== null);
});

test('to(dtype) casts floating-point state in place and keeps parameter identity', () => {
  const net = new Net();
  const w = net.stem.weight;
  const x = torch.randn([2, 1, 4, 4]);
  net.forward(x).sum().backward();
  assert.equal(net.to('float64'), net);
  assert.equal(net.stem.weight, w, 'same Parameter object');
  assert.equal(w.dtype, 'float64');
  assert.ok(w.requiresGrad && w.isLeaf);
  assert.equal(w.grad!.dtype, 'float64');
  const bn = (net.layers.get(0) as Block).bn1;
  assert.equal(bn.running_mean!.dtype, 'float64');
  assert.equal(bn.num_batches_tracked!.dtype, 'int64', 'integer buffers keep their dtype');
  const y = net.forward(x.double());
  assert.equal(y.dtype, 'float64');
  y.sum().backward();
  net.float();
  assert.equal(w.dtype, 'float32');
  assert.deepEqual(net.to({ device: 'cpu' }).stem.weight.device, 'cpu');
  const lin = new nn.Linear(2, 2, { dtype: 'float64' });
  assert.equal(lin.weight.dtype, 'float64');
});

test('toString prints a PyTorch-style tree', () => {
  const seq = new nn.Sequential(new nn.Conv2d(3, 8, 3, { stride: 2, padding: 1 }), new nn.BatchNorm2d(8), new nn.ReLU());
  assert.equal(String(seq), [
    'Sequential(',
    '  (0): Conv2d(3, 8, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1))',
    '  (1): BatchNorm2d(8, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)',
    '  (2): ReLU()',
    ')',
  ].join('\n'));
});

test('dispose frees every parameter and buffer', () => {
  const before = torch.memory().count;
  const net = torch.scope(() => new Net()); // the scope frees the temporaries that built it
  assert.equal(torch.memory().count - before, NET_PARAMS.length + 7);
  net.dispose();
  assert.equal(torch.memory().count, before);
});
