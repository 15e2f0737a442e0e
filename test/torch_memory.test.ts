// Memory ownership: scopes free what they do not return, and a long training loop keeps
// the live tensor count flat.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as torch from '../src/torch/index.js';
import * as nn from '../src/nn/index.js';
import { SGD } from '../src/optim/index.js';

const F = torch.functional;

test('scope frees intermediates, keeps returned tensors, nests, and frees on exceptions', () => {
  const before = torch.memory().count;
  const [a, b] = torch.scope(() => {
    const x = torch.randn([4, 4]);
    const y = x.mul(2).add(1);
    const inner = torch.scope(() => y.relu().sum(0));
    return [inner, x.mean()];
  });
  assert.equal(torch.memory().count - before, 2);
  assert.equal(a!.shape[0], 4);
  assert.throws(() => torch.scope(() => {
    torch.ones([100]);
    throw new Error('boom');
  }), /boom/);
  assert.equal(torch.memory().count - before, 2);
  a!.dispose();
  b!.dispose();
  assert.equal(torch.memory().count, before);
  // `using` frees at the end of the block
  {
    using t = torch.ones([8]);
    assert.equal(torch.memory().count, before + 1);
    void t;
  }
  assert.equal(torch.memory().count, before);
  assert.throws(() => torch.scope(() => Promise.resolve(1)), /returned a Promise/);
});

test('memory() reports bytes of live tensors', () => {
  const before = torch.memory();
  const t = torch.zeros([256, 256]);
  assert.equal(torch.memory().bytes - before.bytes, 256 * 256 * 4);
  t.dispose();
  assert.equal(torch.memory().bytes, before.bytes);
});

test('memory() counts a storage once however many views hold it', () => {
  const before = torch.memory();
  const t = torch.zeros([64, 64]);
  const views = [t.view([4096]), t.transpose(0, 1), t.narrow(0, 0, 8)];
  assert.equal(torch.memory().count - before.count, 4);
  assert.equal(torch.memory().bytes - before.bytes, 64 * 64 * 4, 'views add no bytes');
  t.dispose();
  assert.equal(torch.memory().bytes - before.bytes, 64 * 64 * 4, 'the views still hold the storage');
  views[0]!.dispose();
  views[1]!.dispose();
  assert.equal(torch.memory().bytes - before.bytes, 64 * 64 * 4);
  views[2]!.dispose();
  assert.equal(torch.memory().bytes, before.bytes, 'the last view gives the bytes back');
  const c = torch.zeros([64, 64]).contiguous();
  const copy = c.clone();
  assert.equal(torch.memory().bytes - before.bytes, 2 * 64 * 64 * 4, 'a copy is its own storage');
  c.dispose();
  copy.dispose();
});

test('3000 training steps keep the live tensor count flat', () => {
  torch.manualSeed(1);
  // a 2-layer MLP on a toy regression, written with functional ops and a manual SGD step
  const w1 = torch.randn([16, 8]).mul(0.3).requiresGrad_().keep();
  const b1 = torch.zeros([16], { requiresGrad: true }).keep();
  const w2 = torch.randn([1, 16]).mul(0.3).requiresGrad_().keep();
  const b2 = torch.zeros([1], { requiresGrad: true }).keep();
  const params = [w1, b1, w2, b2];
  const x = torch.randn([64, 8]).keep();
  const y = x.sum(1, { keepdim: true }).sin().keep();
  const counts: number[] = [];
  let first = 0;
  let last = 0;
  for (let step = 0; step < 3000; step++) {
    const loss = torch.scope(() => {
      const h = F.linear(x, w1, b1).relu();
      const l = F.mseLoss(F.linear(h, w2, b2), y);
      l.backward();
      torch.noGrad(() => {
        for (const p of params) {
          p.sub_(p.grad!, { alpha: 0.05 });
          p.grad = null;
        }
      });
      return l.item();
    });
    if (step === 0) first = loss;
    last = loss;
    if (step % 500 === 0) counts.push(torch.memory().count);
  }
  assert.ok(last < first * 0.5, `loss fell from ${first} to ${last}`);
  assert.ok(counts.every((c) => c === counts[0]), `live tensors stayed flat: ${counts.join(', ')}`);
});

/** Resident set size in MB (/proc/self/status VmRSS; process.memoryUsage() elsewhere). */
function rssMB(): number {
  const m = process.platform === 'linux' ? /^VmRSS:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8')) : null;
  return m ? Number(m[1]) / 1024 : process.memoryUsage().rss / 2 ** 20;
}

test('training steps in a loop that never yields to the event loop keep RSS flat, not only the tensor count', () => {
  // Disposed tensors must leave nothing for Node to finalize later: Node runs Node-API
  // finalizers in its setImmediate phase, which a synchronous loop (or one that only awaits
  // promises, as a training loop over an in-memory DataLoader does) never reaches. With handles
  // that kept a finalizer after dispose(), this loop grew by ~20 KB a step (≈ 30 MB here).
  torch.manualSeed(2);
  // small and deep: many tensors a step (what leaked was per tensor), little arithmetic
  const blocks = Array.from({ length: 8 }, () => [new nn.Linear(16, 16), new nn.BatchNorm1d(16), new nn.ReLU()]).flat();
  const model = torch.scope(() => new nn.Sequential(...blocks, new nn.Linear(16, 4)));
  const opt = new SGD(model.parameters(), { lr: 0.01, momentum: 0.9, weightDecay: 5e-4 });
  const x = torch.randn([16, 16]).keep();
  const y = torch.randn([16, 4]).keep();
  const step = (): void => torch.scope(() => {
    const loss = nn.functional.mseLoss(model.forward(x), y);
    loss.backward();
    opt.step();
    opt.zeroGrad();
  });
  for (let i = 0; i < 300; i++) step(); // optimizer state, allocator and V8 heap warmed up
  const count0 = torch.memory().count;
  const rss0 = rssMB();
  const steps = 1500;
  for (let i = 0; i < steps; i++) step();
  const grown = rssMB() - rss0;
  assert.equal(torch.memory().count, count0, 'the live tensor count is flat');
  assert.ok(grown < 10, `RSS grew by ${grown.toFixed(1)} MB over ${steps} steps (${((grown * 1024 * 1024) / steps).toFixed(0)} bytes a step)`);
  model.dispose();
  opt.dispose();
  x.dispose();
  y.dispose();
});

test('the CPU caching allocator reuses a freed large block without page faults, and emptyCache() releases it', () => {
  torch.emptyCache();
  assert.equal(torch.memory().cachedBytes, 0);
  const shape = [32, 50, 3072]; // 19.7 MB, as a ViT-B/32 MLP activation at batch 32
  // Small allocations between the large ones, as a Node process always has: with glibc alone the
  // freed block is not reused and each new one page-faults in fresh memory (4,800 faults).
  const small: torch.Tensor[] = [];
  torch.ones(shape).dispose();
  const cached = torch.memory().cachedBytes;
  assert.ok(cached >= 32 * 50 * 3072 * 4, `a freed 19.7 MB block is kept (cachedBytes ${cached})`);
  const faults0 = process.resourceUsage().minorPageFault;
  for (let i = 0; i < 5; i++) {
    const t = torch.ones(shape);
    small.push(torch.ones([16]));
    assert.equal(torch.memory().cachedBytes, 0, 'the cached block is handed out again');
    t.dispose();
  }
  const faults = process.resourceUsage().minorPageFault - faults0;
  assert.ok(faults < 1000, `5 reuses of a 4,800-page block page-faulted ${faults} times`);
  for (const s of small) s.dispose();
  torch.emptyCache();
  assert.equal(torch.memory().cachedBytes, 0);
  // small blocks are never cached
  torch.ones([1000]).dispose();
  assert.equal(torch.memory().cachedBytes, 0);
});

test('DYAD_CPU_CACHING_ALLOCATOR=0 keeps libtorch\'s own allocator', async () => {
  const { spawnSync } = await import('node:child_process');
  const index = new URL('../src/torch/index.js', import.meta.url).pathname;
  const code = `import('${index}').then((t) => { t.ones([1024, 1024]).dispose(); console.log(t.memory().cachedBytes); })`;
  for (const [v, expectCached] of [['0', false], ['1', true]] as const) {
    const r = spawnSync(process.execPath, ['-e', code], { env: { ...process.env, DYAD_CPU_CACHING_ALLOCATOR: v }, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(Number(r.stdout.trim()) > 0, expectCached, `DYAD_CPU_CACHING_ALLOCATOR=${v}: cachedBytes ${r.stdout.trim()}`);
  }
});
