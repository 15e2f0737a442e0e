// The launcher (src/distributed/launcher.ts) with a small fake worker script (no process group):
// every rank gets the torchrun environment, output is prefixed [rank r], a worker that dies makes
// the launch fail naming its rank within the grace period, SIGINT reaches the workers, and
// `dyad train --nproc-per-node 2` strips its flags and fails cleanly when the workers fail.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { launch, workerArgv, WorkerFailedError } from '../src/distributed/launcher.js';
import { LaunchError } from '../src/distributed/env.js';
import { tempDir } from './helpers/tmp.js';

const dir = tempDir('launcher');
const worker = path.join(dir, 'worker.mjs');
writeFileSync(worker, `
const mode = process.argv[2];
const r = Number(process.env.RANK);
const keys = ['RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'LOCAL_WORLD_SIZE', 'GROUP_RANK', 'MASTER_ADDR', 'MASTER_PORT', 'OMP_NUM_THREADS'];
const forever = () => setInterval(() => {}, 1000);
if (mode === 'env') {
  console.log(JSON.stringify(Object.fromEntries(keys.map((k) => [k, process.env[k]]))));
  console.error('a line on stderr');
  process.stdout.write('no newline at the end');
} else if (mode === 'die') {
  if (r === 1) setTimeout(() => { console.error('rank 1 fails now'); process.exit(3); }, 300); else forever();
} else if (mode === 'stubborn') {
  process.on('SIGTERM', () => console.log('ignoring SIGTERM'));
  if (r === 0) setTimeout(() => process.kill(process.pid, 'SIGKILL'), 300); else forever();
} else if (mode === 'signal') {
  for (const s of ['SIGINT', 'SIGTERM']) process.on(s, () => { console.log('got ' + s); process.exit(0); });
  console.log('ready');
  forever();
}
`);

/** A Writable that collects what is written to it. */
function sink(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (d: Buffer) => { text += d.toString(); });
  return { stream, text: () => text };
}

test('every rank gets the torchrun environment; output is prefixed with its rank', async () => {
  const out = sink();
  const err = sink();
  const env = { ...process.env };
  delete env.OMP_NUM_THREADS;
  const exits = await launch({ nprocPerNode: 2, nnodes: 2, nodeRank: 1, masterAddr: '127.0.0.1', masterPort: 29999, args: [worker, 'env'], env, stdout: out.stream, stderr: err.stream, forwardSignals: false });
  assert.deepEqual(exits.map((e) => [e.rank, e.code]), [[2, 0], [3, 0]]);
  const threads = String(Math.max(1, Math.floor(os.availableParallelism() / 2)));
  for (const [rank, local] of [[2, 0], [3, 1]]) {
    const line = out.text().split('\n').find((l) => l.startsWith(`[rank ${rank}] {`));
    assert.ok(line, `rank ${rank} printed its env:\n${out.text()}`);
    assert.deepEqual(JSON.parse(line.slice(`[rank ${rank}] `.length)), {
      RANK: String(rank), WORLD_SIZE: '4', LOCAL_RANK: String(local), LOCAL_WORLD_SIZE: '2', GROUP_RANK: '1', MASTER_ADDR: '127.0.0.1', MASTER_PORT: '29999', OMP_NUM_THREADS: threads,
    });
    assert.match(out.text(), new RegExp(`^\\[rank ${rank}\\] no newline at the end$`, 'm'));
    assert.match(err.text(), new RegExp(`^\\[rank ${rank}\\] a line on stderr$`, 'm'));
  }
  // one node without --master-port: a free port is picked; the caller's OMP_NUM_THREADS is kept
  const one = sink();
  await launch({ nprocPerNode: 1, args: [worker, 'env'], env: { ...process.env, OMP_NUM_THREADS: '3' }, stdout: one.stream, stderr: sink().stream, forwardSignals: false });
  const e0 = JSON.parse(one.text().split('\n')[0]!.slice('[rank 0] '.length)) as Record<string, string>;
  assert.ok(Number(e0.MASTER_PORT) > 0 && e0.MASTER_ADDR === '127.0.0.1' && e0.OMP_NUM_THREADS === '3' && e0.WORLD_SIZE === '1', JSON.stringify(e0));
});

test('a worker that exits non-zero stops the others; the launch fails naming its rank and code', async () => {
  const err = sink();
  const t0 = Date.now();
  await assert.rejects(launch({ nprocPerNode: 3, args: [worker, 'die'], stdout: sink().stream, stderr: err.stream, graceMs: 10_000, forwardSignals: false }), (e: unknown) => {
    assert.ok(e instanceof WorkerFailedError && e instanceof LaunchError && e.code === 'LAUNCH');
    assert.match(e.message, /^worker rank 1 \(local rank 1, pid \d+\) exited with code 3; 2 other worker\(s\) were stopped/);
    assert.equal(e.failed?.rank, 1);
    assert.deepEqual(e.exits.filter((x) => x.rank !== 1).map((x) => x.signal), ['SIGTERM', 'SIGTERM']);
    return true;
  });
  assert.ok(Date.now() - t0 < 8000, `stopped in ${Date.now() - t0} ms, without waiting for the 10 s grace period`);
  assert.match(err.text(), /^\[rank 1\] rank 1 fails now$/m);
  assert.match(err.text(), /dyad launcher: worker rank 1 exited with code 3; stopping the other workers/);
});

test('a worker killed by a signal is named; a worker that ignores SIGTERM is killed after the grace period', async () => {
  const out = sink();
  const t0 = Date.now();
  await assert.rejects(launch({ nprocPerNode: 2, args: [worker, 'stubborn'], stdout: out.stream, stderr: sink().stream, graceMs: 700, forwardSignals: false }), (e: unknown) => {
    assert.ok(e instanceof WorkerFailedError);
    assert.match(e.message, /^worker rank 0 \(local rank 0, pid \d+\) was killed by SIGKILL; 1 other worker\(s\) were stopped/);
    assert.equal(e.exits[1]!.signal, 'SIGKILL');
    return true;
  });
  const ms = Date.now() - t0;
  assert.ok(ms >= 1000 && ms < 10_000, `SIGKILL after the grace period: ${ms} ms`);
  assert.match(out.text(), /^\[rank 1\] ignoring SIGTERM$/m);
});

test('SIGINT to the launcher reaches every worker; the launcher exits non-zero', async () => {
  const launcherUrl = pathToFileURL(fileURLToPath(new URL('../src/distributed/launcher.js', import.meta.url))).href;
  const script = path.join(dir, 'launch.mjs');
  writeFileSync(script, `import { launch } from ${JSON.stringify(launcherUrl)};
launch({ nprocPerNode: 2, args: [${JSON.stringify(worker)}, 'signal'], graceMs: 3000 })
  .then(() => process.exit(0), (e) => { console.error('LAUNCH FAILED: ' + e.message); process.exit(e.signal ? 130 : 1); });
`);
  const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
  const code = await new Promise<number | null>((resolve) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (/\[rank 0\] ready/.test(out) && /\[rank 1\] ready/.test(out) && !child.killed) child.kill('SIGINT');
    });
    child.on('close', (c) => resolve(c));
  });
  assert.equal(code, 130, `exit code (stderr: ${err})`);
  assert.match(out, /^\[rank 0\] got SIGINT$/m);
  assert.match(out, /^\[rank 1\] got SIGINT$/m);
  assert.match(err, /LAUNCH FAILED: interrupted by SIGINT: the 2 worker\(s\) were stopped/);
});

test('workerArgv drops the launcher flags and their values; bad launcher options are LaunchErrors', async () => {
  assert.deepEqual(workerArgv(['train', '--nproc-per-node', '2', '--epochs', '3', '--master-port=1234', '--nnodes', '1', '--node-rank=0', '--master-addr', 'h', '--out', 'r']),
    ['train', '--epochs', '3', '--out', 'r']);
  await assert.rejects(launch({ nprocPerNode: 0, args: [] }), /--nproc-per-node must be an integer >= 1, got 0/);
  await assert.rejects(launch({ nprocPerNode: 1, nnodes: 2, args: [] }), /--nnodes 2: pass --master-addr/);
  await assert.rejects(launch({ nprocPerNode: 1, nnodes: 2, nodeRank: 2, masterAddr: 'h', args: [] }), /--node-rank 2 is out of range for --nnodes 2/);
});

test('dyad train --nproc-per-node 2: workers start without the launcher flags; their failure fails the launch, naming the rank', async () => {
  const bin = fileURLToPath(new URL('../../bin/dyad.js', import.meta.url));
  const child = spawn(process.execPath, [bin, 'train', '--nproc-per-node', '2', '--data', path.join(dir, 'missing'), '--epochs', '1', '--out', path.join(dir, 'run')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
  const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
  assert.equal(code, 1);
  // the worker's own error, prefixed; no worker complained about the launcher flags
  assert.match(err, /^\[rank [01]\] dyad: error: /m);
  assert.doesNotMatch(err, /unknown option|nproc-per-node needs/);
  assert.match(err, /^dyad: error: worker rank [01] \(local rank [01], pid \d+\) exited with code 1/m);
});
