// The engine's one loop (`fit`) on a tiny regression method: steps and epochs, callbacks in
// order, the NaN stop before any weight changes, resume to identical weights, run-folder files,
// and the option merger every schema uses.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import * as torch from '../src/torch/index.js';
import type { Tensor } from '../src/torch/index.js';
import * as nn from '../src/nn/index.js';
import { SGD } from '../src/optim/index.js';
import { LinearWarmupCosine } from '../src/optim/lr_scheduler.js';
import { Method, type StepContext } from '../src/methods/method.js';
import { fit, TrainingDivergedError, type EpochRow, type StepInput } from '../src/engine/loop.js';
import { loadCheckpoint } from '../src/engine/checkpoint.js';
import { lenient, mergeOptions } from '../src/engine/options.js';
import { GradScaler } from '../src/optim/grad_scaler.js';
import { withGradScaler } from '../src/engine/trainer.js';
import { tempDir } from './helpers/tmp.js';

const root = tempDir('loop');

interface Batch { x: Tensor; y: Tensor }

/** Least squares y ≈ x·w as a Method<Batch>; `afterStep` counts its calls. */
class Regression extends Method<Batch> {
  readonly methodName = 'regression';
  fc = new nn.Linear(4, 1);
  afterSteps = 0;
  poison = -1;
  trainingStep(b: Batch, ctx: StepContext): Tensor {
    const loss = this.fc.forward(b.x).sub(b.y).pow(2).mean();
    return ctx.step === this.poison ? loss.mul(Number.NaN) : loss;
  }
  override afterStep(): void {
    this.afterSteps++;
  }
  forward(x: Tensor): Tensor {
    return this.fc.forward(x);
  }
}

/** 8 batches of 16 rows per epoch, a function of (seed, epoch, i) only, so a resumed run sees the same data. */
function* batches(epoch: number): Iterable<StepInput<Batch>> {
  for (let i = 0; i < 8; i++) {
    yield {
      size: 16,
      batch: () => {
        const g = torch.scope(() => {
          torch.manualSeed(1000 * epoch + i);
          return torch.randn([16, 4]);
        });
        return { x: g, y: g.matmul(torch.tensor([1, -2, 3, 0.5], { shape: [4, 1] })) };
      },
    };
  }
}

function setup(seed = 0): { method: Regression; optimizer: SGD; scheduler: LinearWarmupCosine } {
  torch.manualSeed(seed);
  const method = new Regression();
  const optimizer = new SGD(method.parameters(), { lr: 0.05, momentum: 0.9 });
  const scheduler = new LinearWarmupCosine(optimizer, { warmupSteps: 2, totalSteps: 24 });
  return { method, optimizer, scheduler };
}

const weights = (m: nn.Module): number[] => torch.scope(() => [...m.parameters()].flatMap((p) => p.toArray() as number[]));

test('fit: steps, epochs, callbacks in order, loss falls, and the loop keeps no tensor', async () => {
  const { method, optimizer, scheduler } = setup();
  const events: string[] = [];
  const before = torch.memory().count;
  const r = await fit<Batch, EpochRow & { probe?: number }>({
    method, optimizer, scheduler, epochs: 3, stepsPerEpoch: 8, batches,
    evaluate: (epoch) => {
      assert.equal(method.training, false, 'evaluate runs in eval mode');
      return { probe: epoch * 10 };
    },
    callbacks: [{
      onStepEnd: (s) => events.push(`step ${s.epoch}:${s.step}:${s.stepInEpoch}/${s.stepsPerEpoch}`),
      onEpochEnd: (row) => events.push(`epoch ${row.epoch} probe ${row.probe}`),
    }],
  });
  assert.equal(r.steps, 24);
  assert.equal(method.afterSteps, 24);
  assert.equal(r.metrics.length, 3);
  assert.deepEqual(r.metrics.map((m) => m.probe), [0, 10, 20]);
  assert.equal(events.length, 27);
  assert.equal(events[0], 'step 0:0:1/8');
  assert.equal(events[8], 'epoch 0 probe 0');
  assert.equal(events[9], 'step 1:8:1/8');
  assert.ok(r.metrics[2]!.loss < r.metrics[0]!.loss / 5, `loss ${r.metrics[0]!.loss} → ${r.metrics[2]!.loss}`);
  assert.equal(method.training, true);
  optimizer.dispose(); // its momentum buffers are the only tensors a step leaves behind
  assert.equal(torch.memory().count, before, 'live tensors after fit');
  method.dispose();
});

test('fit: totalSteps cuts the last epoch, and small batches are skipped', async () => {
  const { method, optimizer } = setup();
  const sizes: number[] = [];
  const r = await fit<Batch, EpochRow>({
    method, optimizer, epochs: 3, stepsPerEpoch: 8, totalSteps: 19, minBatch: 2,
    *batches(epoch) {
      for (const b of batches(epoch)) {
        yield { size: 1, batch: () => assert.fail('a batch smaller than minBatch must not be built') };
        yield b;
      }
    },
    callbacks: [{ onStepEnd: (s) => sizes.push(s.stepsPerEpoch) }],
  });
  assert.equal(r.steps, 19);
  assert.deepEqual(r.metrics.map((m) => m.epoch), [0, 1, 2]);
  assert.equal(sizes.filter((n) => n === 3).length, 3, 'the last epoch has 3 steps');
  method.dispose();
});

test('fit: a NaN loss stops before the step, with the last checkpoint named', async () => {
  const { method, optimizer, scheduler } = setup();
  method.poison = 11;
  const dir = path.join(root, 'nan');
  let wBefore: number[] = [];
  await assert.rejects(fit<Batch, EpochRow>({
    method, optimizer, scheduler, epochs: 3, stepsPerEpoch: 8, batches, divergenceHint: 'Lower --lr.',
    run: { dir, task: 'embedder', config: { what: 'test' }, columns: ['epoch', 'loss'], score: (row) => -row.loss },
    callbacks: [{ onStepEnd: (s) => { if (s.step === 10) wBefore = weights(method); } }],
  }), (e: unknown) => {
    assert.ok(e instanceof TrainingDivergedError);
    assert.match((e as Error).message, /the loss became NaN at epoch 2, step 4: training stopped\. The last good checkpoint is kept in .*last\.safetensors\. Lower --lr\./);
    return true;
  });
  assert.deepEqual(weights(method), wBefore, 'the NaN step changed no weight');
  assert.equal(method.afterSteps, 11);
  method.dispose();
});

test('fit: run folder files, best by score, and a resumed run ends with identical weights', async () => {
  const run = (dir: string) => ({ dir, task: 'embedder' as const, config: { recipe: 'regression' }, columns: ['epoch', 'loss', 'lr'] as ('epoch' | 'loss' | 'lr')[],
    score: (row: EpochRow) => (row.epoch === 1 ? 1 : 0) });
  const full = setup();
  const checkpoints: string[] = [];
  await fit<Batch, EpochRow>({ ...full, epochs: 3, stepsPerEpoch: 8, batches, run: run(path.join(root, 'full')),
    callbacks: [{ onCheckpoint: (c) => checkpoints.push(`${c.kind}@${c.epoch}`) }] });
  assert.deepEqual(checkpoints, ['last@0', 'best@0', 'last@1', 'best@1', 'last@2']);
  const dir = path.join(root, 'full');
  for (const f of ['config.json', 'metrics.jsonl', 'results.csv', 'last.safetensors', 'best.safetensors']) assert.ok(existsSync(path.join(dir, f)), f);
  assert.equal(readFileSync(path.join(dir, 'results.csv'), 'utf8').split('\n')[0], 'epoch,loss,lr');
  const best = loadCheckpoint(path.join(dir, 'best.safetensors'));
  assert.equal(best.meta.epoch, 1);
  assert.deepEqual(best.meta.config, { recipe: 'regression' });

  // stop after 2 epochs, then resume from last.safetensors with fresh objects
  const partDir = path.join(root, 'part');
  const a = setup();
  await fit<Batch, EpochRow>({ ...a, epochs: 3, stepsPerEpoch: 8, batches, run: run(partDir),
    callbacks: [{ onEpochEnd: (row) => { if (row.epoch === 1) throw new Error('killed'); } }] }).catch((e: Error) => assert.equal(e.message, 'killed'));
  const b = setup(99); // other initial weights: the checkpoint must replace them
  const r = await fit<Batch, EpochRow>({ ...b, epochs: 3, stepsPerEpoch: 8, batches, run: run(partDir), resume: loadCheckpoint(path.join(partDir, 'last.safetensors')) });
  assert.equal(r.steps, 8, 'only the third epoch ran');
  assert.deepEqual(r.metrics.map((m) => m.epoch), [0, 1, 2]);
  assert.deepEqual(weights(b.method), weights(full.method));
  for (const m of [full.method, a.method, b.method]) m.dispose();
});

test("fit: an fp16 run's GradScaler state is in every checkpoint and a resumed run scales as the uninterrupted one", async () => {
  const run = (dir: string) => ({ dir, task: 'embedder' as const, config: { recipe: 'regression' }, columns: ['epoch', 'loss'] as ('epoch' | 'loss')[], score: () => null });
  // every gradient is finite: the scale doubles after each 3 good steps (24 steps: 1024 → 2^18, tracker 0)
  const scaled = (seed: number) => {
    const s = setup(seed);
    const gradScaler = new GradScaler({ initScale: 1024, growthInterval: 3 });
    withGradScaler(s.method, s.optimizer, gradScaler);
    return { ...s, gradScaler };
  };
  const full = scaled(0);
  await fit<Batch, EpochRow>({ ...full, epochs: 3, stepsPerEpoch: 8, batches, run: run(path.join(root, 'scaler-full')) });
  assert.deepEqual({ ...full.gradScaler.stateDict() }, { scale: 1024 * 2 ** 8, growthFactor: 2, backoffFactor: 0.5, growthInterval: 3, growthTracker: 0 });
  const dir = path.join(root, 'scaler-part');
  const a = scaled(0);
  await fit<Batch, EpochRow>({ ...a, epochs: 3, stepsPerEpoch: 8, batches, run: run(dir),
    callbacks: [{ onEpochEnd: (row) => { if (row.epoch === 0) throw new Error('killed'); } }] }).catch((e: Error) => assert.equal(e.message, 'killed'));
  const ck = loadCheckpoint(path.join(dir, 'last.safetensors'));
  // 8 good steps: two doublings, 2 steps towards the third
  assert.deepEqual(ck.meta.extra?.gradScaler, { scale: 4096, growthFactor: 2, backoffFactor: 0.5, growthInterval: 3, growthTracker: 2 });
  const b = scaled(99);
  await fit<Batch, EpochRow>({ ...b, epochs: 3, stepsPerEpoch: 8, batches, run: run(dir), resume: ck });
  assert.deepEqual(b.gradScaler.stateDict(), full.gradScaler.stateDict());
  assert.deepEqual(weights(b.method), weights(full.method));
  for (const m of [full.method, a.method, b.method]) m.dispose();
});

test('mergeOptions: right-most defined wins, unknown keys named, lenient parts filtered', () => {
  const defaults = { lr: 0.1, epochs: 10, out: 'runs/x' };
  assert.deepEqual(mergeOptions('demo', defaults, [{ lr: 0.5 }, { lr: undefined, epochs: 2 }]), { lr: 0.5, epochs: 2, out: 'runs/x' });
  assert.throws(() => mergeOptions('demo', defaults, [{ epocs: 2 }]), /unknown demo option 'epocs'\. Known options: epochs, lr, out/);
  assert.deepEqual(mergeOptions('demo', defaults, [lenient({ epocs: 2, lr: 1 })]), { lr: 1, epochs: 10, out: 'runs/x' });
  assert.deepEqual(mergeOptions('demo', {}, [{ extra: 1 }], { extraKeys: ['extra'] }), { extra: 1 });
  assert.deepEqual(defaults, { lr: 0.1, epochs: 10, out: 'runs/x' }, 'defaults are not modified');
});
