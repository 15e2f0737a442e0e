import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { Index, ThumbnailEmbedder } from '../src/search/index.js';

let tmp: string;
let dir: string;
const N = 40;
const embedder = new ThumbnailEmbedder();

before(async () => {
  tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'dyad-index-kill-'));
  dir = path.join(tmp, 'img');
  await fsp.mkdir(dir);
  await Promise.all(
    Array.from({ length: N }, (_, i) => {
      const grid = Buffer.alloc(64);
      for (let j = 0; j < 64; j++) grid[j] = (i * 37 + j * j * 11 + ((i * j) % 7) * 29) & 255;
      return sharp(grid, { raw: { width: 8, height: 8, channels: 1 } }).resize(32, 32, { kernel: 'nearest' }).png().toFile(path.join(dir, `f${String(i).padStart(2, '0')}.png`));
    }),
  );
});
after(async () => {
  await fsp.rm(tmp, { recursive: true, force: true });
});

/** Runs the indexer in a child process with a slow embedder; SIGKILLs it after `killAfter` embedded files. */
async function indexAndKill(db: string, killAfter: number): Promise<{ killed: boolean; seen: number }> {
  const moduleUrl = new URL('../src/search/index.js', import.meta.url).href;
  const script = path.join(tmp, 'child.mjs');
  await fsp.writeFile(
    script,
    `import { Index, ThumbnailEmbedder } from ${JSON.stringify(moduleUrl)};
const [db, dir] = process.argv.slice(2);
const inner = new ThumbnailEmbedder();
const slow = { identity: inner.identity, dim: inner.dim, async embedImages(p) { await new Promise((r) => setTimeout(r, 60)); return inner.embedImages(p); } };
const index = await Index.open({ db, dataset: 'kill', embedder: slow });
await index.update(dir, { batchSize: 2, onProgress: (p) => { if (p.phase === 'embed') process.stdout.write('embedded ' + p.done + '\\n'); } });
process.stdout.write('finished\\n');
`,
  );
  const child = spawn(process.execPath, [script, db, dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let seen = 0;
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    for (const m of chunk.matchAll(/embedded (\d+)/g)) seen = Math.max(seen, Number(m[1]));
    if (seen >= killAfter && child.exitCode === null) child.kill('SIGKILL');
  });
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.on('exit', (c, s) => resolve([c, s])));
  assert.ok(signal === 'SIGKILL' || code === 0, `child failed (${code}): ${stderr}`);
  return { killed: signal === 'SIGKILL', seen };
}

test('indexing killed with SIGKILL midway leaves a readable table; the next update completes it', async () => {
  const db = path.join(tmp, 'db');
  const first = await indexAndKill(db, 10);
  assert.ok(first.killed, 'child was killed before finishing');

  const index = await Index.open({ db, dataset: 'kill', embedder, readOnly: true });
  const partial = await index.count();
  assert.ok(partial >= 8 && partial < N, `partial table holds ${partial} rows`);
  const rows = await index.sql();
  assert.equal(rows.length, partial);
  const hits = await index.similar(rows[0]!.path, { limit: 3, excludeSelf: false });
  assert.equal(hits[0]!.path, rows[0]!.path);
  index.close();

  // Killed again, later on, from where the first run stopped.
  const second = await indexAndKill(db, 6);
  assert.ok(second.killed);

  const w = await Index.open({ db, dataset: 'kill', embedder });
  const before = await w.count();
  assert.ok(before > partial, `second run resumed (${partial} → ${before})`);
  const r = await w.update(dir);
  assert.equal(r.added, N - before);
  assert.equal(r.unchanged, before);
  assert.equal(r.removed, 0);
  assert.equal(r.rows, N);
  const ids = (await w.sql()).map((x) => x.id);
  assert.equal(new Set(ids).size, N, 'no row written twice');
  const again = await w.update(dir);
  assert.equal(again.embedded, 0);
  w.close();
});
