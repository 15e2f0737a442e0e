// The Hub client (src/hub/) against a local server on 127.0.0.1 that speaks the Hub's URL layout:
// /api/models/{id}/revision/{rev}, HEAD and GET /{id}/resolve/{rev}/{file} (ETag, X-Repo-Commit,
// LFS files by a 302 to /lfs/{sha256} with X-Linked-Etag / X-Linked-Size), Range requests, and
// a 401 for a gated repository without the token. It serves a tiny random CLIP-style folder the
// test writes (config, tokenizer, preprocessor, safetensors) plus files dyad must not fetch.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type Server, type IncomingMessage } from 'node:http';
import { mkdtempSync, rmSync, readFileSync, existsSync, lstatSync, readlinkSync, readdirSync, writeFileSync, mkdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { spawn } from 'node:child_process';
import { packageRoot } from '../src/torch/package_root.js';
import path from 'node:path';
import {
  hubDownload, snapshotDownload, resolveModelSource, parseHubId, hubCacheDir, selectFiles, HubError, repoFolderName,
} from '../src/hub/index.js';

interface Repo { gated?: boolean; commits: Record<string, Record<string, Buffer>>; refs: Record<string, string> }
interface Hit { method: string; url: string; auth?: string; range?: string }

const C1 = 'a'.repeat(40);
const C2 = 'b'.repeat(40);
let tmp: string;
let server: Server;
let base: string;
const hits: Hit[] = [];
/** Test switches: cut the next LFS body after this many bytes; serve flipped bytes for LFS files. */
const faults = { cutAfter: 0, corrupt: false };

const gitSha1 = (b: Buffer) => createHash('sha1').update(`blob ${b.length}\0`).update(b).digest('hex');
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const isLfs = (f: string) => f.endsWith('.safetensors');

/** A safetensors file of one random F32 tensor (n values). */
function safetensors(n: number, seed: number): Buffer {
  const header = Buffer.from(JSON.stringify({ w: { dtype: 'F32', shape: [n], data_offsets: [0, 4 * n] } }));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(header.length));
  const data = Buffer.alloc(4 * n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    data.writeFloatLE((s / 2 ** 32) - 0.5, 4 * i);
  }
  return Buffer.concat([len, header, data]);
}

function clipFolder(hidden: number): Record<string, Buffer> {
  const json = (o: unknown) => Buffer.from(JSON.stringify(o, null, 2));
  return {
    'config.json': json({ model_type: 'clip', projection_dim: 24, text_config: { hidden_size: hidden }, vision_config: { hidden_size: 48, image_size: 32, patch_size: 8 } }),
    'preprocessor_config.json': json({ crop_size: 32, size: { shortest_edge: 32 }, image_mean: [0.5, 0.5, 0.5], image_std: [0.5, 0.5, 0.5] }),
    'tokenizer.json': json({ model: { type: 'BPE' } }),
    'vocab.json': json({ '<|startoftext|>': 0, '<|endoftext|>': 1 }),
    'merges.txt': Buffer.from('#version: 0.2\nc a\n'),
    'model.safetensors': safetensors(60_000, hidden),
    'pytorch_model.bin': Buffer.alloc(1000, 1),
    'onnx/model.onnx': Buffer.alloc(1000, 2),
    'README.md': Buffer.from('# tiny clip\n'),
  };
}

const repos: Record<string, Repo> = {};

function lookup(id: string, rev: string): [string, Record<string, Buffer>] | null {
  const repo = repos[id];
  if (!repo) return null;
  const commit = repo.refs[rev] ?? (repo.commits[rev] ? rev : null);
  return commit ? [commit, repo.commits[commit]!] : null;
}

function handle(req: IncomingMessage, res: import('node:http').ServerResponse): void {
  const url = decodeURIComponent(req.url ?? '');
  hits.push({ method: req.method ?? '', url, auth: req.headers.authorization, range: req.headers.range });
  const deny = (id: string) => repos[id]?.gated && req.headers.authorization !== 'Bearer hf_secret';
  let m = /^\/api\/models\/([^/]+\/[^/]+)\/revision\/(.+)$/.exec(url);
  if (m) {
    if (deny(m[1]!)) return void res.writeHead(401, { 'x-error-code': 'GatedRepo' }).end();
    const found = lookup(m[1]!, m[2]!);
    if (!found) return void res.writeHead(404, { 'x-error-code': repos[m[1]!] ? 'RevisionNotFound' : 'RepoNotFound' }).end();
    res.writeHead(200, { 'content-type': 'application/json' });
    return void res.end(JSON.stringify({ id: m[1], sha: found[0], siblings: Object.keys(found[1]).map((rfilename) => ({ rfilename })) }));
  }
  m = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url);
  if (m) {
    if (deny(m[1]!)) return void res.writeHead(401, { 'x-error-code': 'GatedRepo' }).end();
    const found = lookup(m[1]!, m[2]!);
    const body = found?.[1][m[3]!];
    if (!found || !body) return void res.writeHead(404, { 'x-error-code': found ? 'EntryNotFound' : 'RepoNotFound' }).end();
    if (isLfs(m[3]!)) {
      return void res.writeHead(302, {
        location: `${base}/lfs/${sha256(body)}`, 'x-linked-etag': `"${sha256(body)}"`, 'x-linked-size': String(body.length), 'x-repo-commit': found[0], 'content-length': '0',
      }).end();
    }
    res.writeHead(200, { etag: `"${gitSha1(body)}"`, 'x-repo-commit': found[0], 'content-length': String(body.length) });
    return void res.end(req.method === 'HEAD' ? undefined : body);
  }
  m = /^\/lfs\/([0-9a-f]{64})$/.exec(url);
  if (m) {
    let body: Buffer | undefined;
    for (const r of Object.values(repos)) for (const files of Object.values(r.commits)) for (const b of Object.values(files)) if (sha256(b) === m[1]) body = b;
    if (!body) return void res.writeHead(404).end();
    if (faults.corrupt) body = Buffer.from(body.map((x, i) => (i === 100 ? x ^ 0xff : x)));
    let start = 0;
    const r = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (r) start = Number(r[1]);
    const part = body.subarray(start);
    res.writeHead(r ? 206 : 200, { 'content-length': String(part.length), ...(r ? { 'content-range': `bytes ${start}-${body.length - 1}/${body.length}` } : {}) });
    if (faults.cutAfter > 0) {
      const n = faults.cutAfter;
      faults.cutAfter = 0;
      res.write(part.subarray(0, n), () => setTimeout(() => res.socket?.destroy(), 20));
      return;
    }
    return void res.end(part);
  }
  if (url.startsWith('/hang/')) return; // never answers: the client's timeout must end the wait
  res.writeHead(404).end();
}

async function startServer(port = 0): Promise<void> {
  server = createServer(handle);
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  const addr = server.address() as import('node:net').AddressInfo;
  base = `http://127.0.0.1:${addr.port}`;
  process.env.HF_ENDPOINT = base;
}

async function stopServer(): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
}

const snapshotNames = (dir: string) => {
  const out: string[] = [];
  const walk = (d: string, p: string) => { for (const e of readdirSync(d)) statSync(path.join(d, e)).isDirectory() ? walk(path.join(d, e), `${p}${e}/`) : out.push(p + e); };
  walk(dir, '');
  return out.sort();
};

before(async () => {
  tmp = mkdtempSync(path.join(tmpdir(), 'dyad-hub-'));
  process.env.HF_HUB_CACHE = path.join(tmp, 'hub');
  delete process.env.HF_TOKEN;
  delete process.env.HF_HUB_OFFLINE;
  process.env.HF_HOME = path.join(tmp, 'hf-home');
  repos['tiny/clip'] = { commits: { [C1]: clipFolder(32), [C2]: clipFolder(40) }, refs: { main: C2, v1: C1 } };
  repos['tiny/gated'] = { gated: true, commits: { [C1]: clipFolder(32) }, refs: { main: C1 } };
  const a = safetensors(3000, 7);
  const b = safetensors(3000, 8);
  repos['tiny/sharded'] = {
    commits: {
      [C1]: {
        'config.json': Buffer.from('{}'),
        'model.safetensors.index.json': Buffer.from(JSON.stringify({ metadata: {}, weight_map: { 'a.w': 'model-00001-of-00002.safetensors', 'b.w': 'model-00002-of-00002.safetensors' } })),
        'model-00001-of-00002.safetensors': a,
        'model-00002-of-00002.safetensors': b,
        'old/model.safetensors': safetensors(10, 9),
      },
    },
    refs: { main: C1 },
  };
  await startServer();
});

after(async () => {
  if (server.listening) await stopServer();
  rmSync(tmp, { recursive: true, force: true });
});

test('hub ids: hf://org/name@rev/file and bare org/name@rev parse; paths and weight files do not', () => {
  assert.deepEqual(parseHubId('hf://openai/clip-vit-base-patch32'), { repoId: 'openai/clip-vit-base-patch32' });
  assert.deepEqual(parseHubId('hf://org/name@v1.0/sub/model.safetensors'), { repoId: 'org/name', revision: 'v1.0', file: 'sub/model.safetensors' });
  assert.deepEqual(parseHubId('hf://org/name@refs%2Fpr%2F1'), { repoId: 'org/name', revision: 'refs/pr/1' });
  assert.deepEqual(parseHubId('org/name@main'), { repoId: 'org/name' , revision: 'main' });
  assert.equal(parseHubId('org/name', false), null);
  assert.equal(parseHubId('runs/best.safetensors'), null);
  assert.equal(parseHubId('./runs/best'), null);
  assert.equal(parseHubId('a/b/c'), null);
  assert.equal(repoFolderName('openai/clip-vit-base-patch32'), 'models--openai--clip-vit-base-patch32');
  const saved = { ...process.env };
  try {
    delete process.env.HF_HUB_CACHE;
    process.env.HF_HOME = '/x/hf';
    assert.equal(hubCacheDir(), '/x/hf/hub');
    delete process.env.HF_HOME;
    process.env.XDG_CACHE_HOME = '/x/cache';
    assert.equal(hubCacheDir(), '/x/cache/huggingface/hub');
  } finally {
    Object.assign(process.env, saved);
  }
  assert.deepEqual(selectFiles(['config.json', 'model.safetensors', 'pytorch_model.bin', 'onnx/model.onnx', 'README.md', 'tokenizer.json']),
    ['config.json', 'model.safetensors', 'tokenizer.json']);
});

test('first download: only the needed files, HF cache layout (blobs by etag, relative symlinks, refs)', async () => {
  hits.length = 0;
  const dir = await snapshotDownload('tiny/clip');
  const repoDir = path.join(tmp, 'hub', 'models--tiny--clip');
  assert.equal(dir, path.join(repoDir, 'snapshots', C2));
  assert.deepEqual(snapshotNames(dir), ['config.json', 'merges.txt', 'model.safetensors', 'preprocessor_config.json', 'tokenizer.json', 'vocab.json']);
  const files = clipFolder(40);
  for (const f of snapshotNames(dir)) assert.deepEqual(readFileSync(path.join(dir, f)), files[f], f);
  const link = path.join(dir, 'model.safetensors');
  assert.ok(lstatSync(link).isSymbolicLink());
  assert.equal(readlinkSync(link), `../../blobs/${sha256(files['model.safetensors']!)}`);
  assert.equal(readlinkSync(path.join(dir, 'config.json')), `../../blobs/${gitSha1(files['config.json']!)}`);
  assert.equal(readFileSync(path.join(repoDir, 'refs', 'main'), 'utf8'), C2);
  assert.ok(!hits.some((h) => /pytorch_model|onnx|README/.test(h.url)), 'unneeded files are not requested');
  assert.ok(hits.some((h) => h.url.startsWith('/lfs/')), 'the LFS file came through the redirect');
  assert.ok(!hits.some((h) => h.auth), 'no token was sent when none is set');
});

test('cache hit with the server stopped, offline mode, and a clear error when a file is absent offline', async () => {
  await stopServer();
  try {
    const dir = await snapshotDownload('tiny/clip');
    assert.equal(dir, path.join(tmp, 'hub', 'models--tiny--clip', 'snapshots', C2));
    assert.equal(await resolveModelSource('hf://tiny/clip'), dir);
    assert.equal(await hubDownload('tiny/clip', 'config.json'), path.join(dir, 'config.json'));
    process.env.HF_HUB_OFFLINE = '1';
    assert.equal(await resolveModelSource('tiny/clip'), dir);
    await assert.rejects(hubDownload('tiny/clip', 'pytorch_model.bin'), (e: unknown) => {
      assert.ok(e instanceof HubError);
      assert.equal((e as HubError).code, 'HUB');
      assert.match((e as Error).message, /pytorch_model\.bin of tiny\/clip .*not in the cache.*HF_HUB_OFFLINE=1/);
      return true;
    });
    await assert.rejects(snapshotDownload('tiny/never'), /tiny\/never .*not in the cache.*HF_HUB_OFFLINE=1/);
  } finally {
    delete process.env.HF_HUB_OFFLINE;
    await startServer(Number(new URL(base).port));
  }
});

test('revisions: a tag and a commit resolve to their snapshot; refs record the tag', async () => {
  const dir = await resolveModelSource('tiny/clip@v1');
  assert.equal(path.basename(dir), C1);
  assert.equal(JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8')).text_config.hidden_size, 32);
  assert.equal(readFileSync(path.join(tmp, 'hub', 'models--tiny--clip', 'refs', 'v1'), 'utf8'), C1);
  hits.length = 0;
  const f = await hubDownload('tiny/clip', 'config.json', { revision: C1 });
  assert.equal(f, path.join(dir, 'config.json'));
  assert.equal(hits.length, 0, 'a cached file at a commit needs no request');
  await assert.rejects(snapshotDownload('tiny/clip', { revision: 'nope' }), /revision 'nope' does not exist in tiny\/clip/);
});

test('a gated repository: 401 without HF_TOKEN names the fix; with it the token is sent as Bearer', async () => {
  await assert.rejects(snapshotDownload('tiny/gated'), (e: unknown) => {
    assert.ok(e instanceof HubError);
    assert.equal((e as HubError).status, 401);
    assert.match((e as Error).message, /tiny\/gated is gated or private.*HF_TOKEN/);
    return true;
  });
  process.env.HF_TOKEN = 'hf_secret';
  try {
    hits.length = 0;
    const dir = await snapshotDownload('tiny/gated');
    assert.ok(existsSync(path.join(dir, 'model.safetensors')));
    const hub = hits.filter((h) => !h.url.startsWith('/lfs/'));
    assert.ok(hub.length > 0 && hub.every((h) => h.auth === 'Bearer hf_secret'), 'every Hub request carries the token');
  } finally {
    delete process.env.HF_TOKEN;
  }
  // huggingface-cli login's token file is read too.
  mkdirSync(process.env.HF_HOME!, { recursive: true });
  writeFileSync(path.join(process.env.HF_HOME!, 'token'), 'hf_secret\n');
  try {
    hits.length = 0;
    await hubDownload('tiny/gated', 'config.json', { force: true });
    assert.equal(hits[0]?.auth, 'Bearer hf_secret');
  } finally {
    rmSync(path.join(process.env.HF_HOME!, 'token'));
  }
});

test('a connection cut mid-file is resumed with a Range request', async () => {
  const cache = path.join(tmp, 'hub-resume');
  faults.cutAfter = 50_000;
  hits.length = 0;
  const f = await hubDownload('tiny/clip', 'model.safetensors', { cacheDir: cache });
  assert.deepEqual(readFileSync(f), clipFolder(40)['model.safetensors']);
  const lfs = hits.filter((h) => h.url.startsWith('/lfs/'));
  assert.equal(lfs.length, 2, 'one cut request, one resumed');
  assert.equal(lfs[0]!.range, undefined);
  assert.match(lfs[1]!.range ?? '', /^bytes=\d+-$/);
  assert.ok(Number(/\d+/.exec(lfs[1]!.range!)![0]) >= 40_000, `resumed from the bytes kept: ${lfs[1]!.range}`);
  assert.ok(!readdirSync(path.join(cache, 'models--tiny--clip', 'blobs')).some((b) => b.endsWith('.incomplete')));
});

test('a corrupted download is detected by its sha256 etag and not kept', async () => {
  const cache = path.join(tmp, 'hub-corrupt');
  faults.corrupt = true;
  try {
    await assert.rejects(hubDownload('tiny/clip', 'model.safetensors', { cacheDir: cache }), (e: unknown) => {
      assert.ok(e instanceof HubError);
      assert.match((e as Error).message, /model\.safetensors of tiny\/clip is corrupted: its sha256 is [0-9a-f]{64}, the Hub says [0-9a-f]{64}/);
      return true;
    });
  } finally {
    faults.corrupt = false;
  }
  const blobs = path.join(cache, 'models--tiny--clip', 'blobs');
  assert.deepEqual(readdirSync(blobs), [], 'neither the blob nor the partial file is kept');
  assert.ok(!existsSync(path.join(cache, 'models--tiny--clip', 'snapshots', C2, 'model.safetensors')));
  const f = await hubDownload('tiny/clip', 'model.safetensors', { cacheDir: cache });
  assert.equal(sha256(readFileSync(f)), sha256(clipFolder(40)['model.safetensors']!));
});

test('a sharded checkpoint: the index and exactly the shards it names', async () => {
  hits.length = 0;
  const dir = await snapshotDownload('tiny/sharded');
  assert.deepEqual(snapshotNames(dir), ['config.json', 'model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors', 'model.safetensors.index.json']);
  assert.ok(!hits.some((h) => h.url.includes('old/model.safetensors')));
});

test('resolveModelSource: a local path is returned untouched, without any request', async () => {
  hits.length = 0;
  const local = path.join(tmp, 'tiny', 'clip');
  mkdirSync(local, { recursive: true });
  const cwd = process.cwd();
  process.chdir(tmp);
  try {
    assert.equal(await resolveModelSource('tiny/clip'), 'tiny/clip', 'an existing relative folder wins over the Hub id');
  } finally {
    process.chdir(cwd);
  }
  assert.equal(await resolveModelSource(local), local);
  await assert.rejects(resolveModelSource('runs/missing.safetensors'), /neither a local file or folder nor a Hub id/);
  assert.equal(hits.length, 0);
});

test('a Hub that does not answer ends in a HubError after the timeout, not a hang', async () => {
  const t0 = Date.now();
  await assert.rejects(hubDownload('org/name', 'config.json', { endpoint: `${base}/hang`, timeout: 0.5, cacheDir: path.join(tmp, 'hub-hang') }),
    (e: unknown) => (assert.ok(e instanceof HubError), assert.match((e as Error).message, /cannot reach .*\/hang for config\.json of org\/name/), true));
  assert.ok(Date.now() - t0 < 5000, `took ${Date.now() - t0} ms`);
});

test('dyad download ID prints the snapshot folder, and runs without the libtorch addon', async () => {
  const bin = path.join(packageRoot(), 'bin', 'dyad.js');
  const env = { ...process.env, HF_ENDPOINT: base, HF_HUB_CACHE: path.join(tmp, 'hub-cli'), DYAD_ADDON: path.join(tmp, 'no-addon.node') };
  const out = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const c = spawn(process.execPath, [bin, 'download', 'tiny/clip@v1', '--include', 'config.json'], { env });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d) => (stdout += d));
    c.stderr.on('data', (d) => (stderr += d));
    c.on('close', (code) => resolve({ code, stdout, stderr }));
  });
  assert.equal(out.code, 0, out.stderr);
  const dir = path.join(tmp, 'hub-cli', 'models--tiny--clip', 'snapshots', C1);
  assert.equal(out.stdout.trim(), dir);
  assert.deepEqual(snapshotNames(dir), ['config.json']);
});

test('Model.load(hf://…) and CLIPModel.download fetch a real tiny CLIP; fromPretrained(id) then reads it from the cache with the Hub stopped', async () => {
  const torch = await import('../src/torch/index.js');
  const { CLIPModel } = await import('../src/models/clip/model.js');
  const { Model } = await import('../src/api/model.js');
  const src = path.join(tmp, 'real-clip-src');
  torch.manualSeed(0);
  const text = { hidden_size: 16, intermediate_size: 32, num_hidden_layers: 1, num_attention_heads: 2, max_position_embeddings: 16, hidden_act: 'quick_gelu' };
  const vision = { hidden_size: 16, intermediate_size: 32, num_hidden_layers: 1, num_attention_heads: 2, image_size: 16, patch_size: 8, num_channels: 3, hidden_act: 'quick_gelu' };
  const made = new CLIPModel({ text_config: text, vision_config: vision, projection_dim: 8 });
  made.savePretrained(src);
  repos['tiny/real-clip'] = { commits: { [C1]: Object.fromEntries(readdirSync(src).map((f) => [f, readFileSync(path.join(src, f))])) }, refs: { main: C1 } };
  const cache = path.join(tmp, 'hub-real');
  process.env.HF_HUB_CACHE = cache;
  try {
    assert.throws(() => CLIPModel.fromPretrained('tiny/real-clip'), (e: unknown) => e instanceof HubError && /not in the Hugging Face cache[\s\S]*npx dyad download tiny\/real-clip/.test((e as Error).message));
    const model = await Model.load('hf://tiny/real-clip');
    assert.equal(model.task, 'clip');
    const same = (a: import('../src/nn/index.js').Module, b: import('../src/nn/index.js').Module): void => torch.scope(() => {
      const sb = b.stateDict();
      for (const [k, t] of a.stateDict()) assert.ok(t.equal(sb.get(k)!), k);
    });
    same(model.net!.clip!, made);
    const [v] = await model.embed([torch.zeros([3, 16, 16], { dtype: 'uint8' })]);
    assert.equal(v!.length, 8);
    model.dispose();
    await stopServer();
    const fromCache = CLIPModel.fromPretrained('tiny/real-clip'); // the cache alone, no server
    same(fromCache, made);
    fromCache.dispose();
    const again = await CLIPModel.download('hf://tiny/real-clip', { offline: true });
    same(again, made);
    again.dispose();
  } finally {
    made.dispose();
    process.env.HF_HUB_CACHE = path.join(tmp, 'hub');
    if (!server.listening) await startServer();
  }
});
