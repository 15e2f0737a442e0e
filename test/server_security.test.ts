// dyad studio's guards against a real server on 127.0.0.1 (and one bound to 0.0.0.0): files only
// from under the runs root (each traversal variant: `..`, percent- and double-encoded, absolute,
// backslash, symlink out), the upload cap, JSON body validation, no stack traces in errors, the
// token on a non-loopback host, and the Host check against DNS rebinding.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { tempDir } from './helpers/tmp.js';
import { createStudio, type Studio } from '../src/server/app.js';
import { fullyDecode, isLoopbackHost, resolveUnder } from '../src/server/security.js';

const root = tempDir('studio-sec');
const runs = path.join(root, 'runs');
const SECRET = 'TOP-SECRET-CONTENT';
mkdirSync(path.join(runs, 'r1'), { recursive: true });
writeFileSync(path.join(root, 'secret.txt'), SECRET);
writeFileSync(path.join(runs, 'r1', 'config.json'), JSON.stringify({ method: 'simclr', data: 'x', epochs: 2 }));
writeFileSync(path.join(runs, 'r1', 'metrics.jsonl'), '{"epoch":0,"loss":5,"lr":0.1,"img_per_s":10,"time_s":1}\n');
writeFileSync(path.join(runs, 'r1', 'best.safetensors'), 'WEIGHTS');
symlinkSync(path.join(root, 'secret.txt'), path.join(runs, 'r1', 'link.safetensors'));
symlinkSync(root, path.join(runs, 'up'));
symlinkSync(path.join(runs, 'r1', 'best.safetensors'), path.join(runs, 'r1', 'inside.safetensors'));

const studios: Studio[] = [];
after(async () => {
  for (const s of studios) await s.close();
});

/** A raw request: the path is sent exactly as given (no URL normalisation). */
function raw(port: number, method: string, p: string, o: { headers?: Record<string, string>; body?: Buffer | string } = {}): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: p, headers: o.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(chunks).toString('utf8'), headers: res.headers }));
    });
    req.on('error', reject);
    if (o.body !== undefined) req.write(o.body);
    req.end();
  });
}

function multipart(fields: Record<string, string>, file: Buffer, name = 'x.png'): { body: Buffer; headers: Record<string, string> } {
  const b = '----dyadtest' + Math.random().toString(16).slice(2);
  const parts: Buffer[] = [];
  for (const [k, v] of Object.entries(fields)) parts.push(Buffer.from(`--${b}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`));
  parts.push(Buffer.from(`--${b}\r\nContent-Disposition: form-data; name="file"; filename="${name}"\r\nContent-Type: image/png\r\n\r\n`), file, Buffer.from(`\r\n--${b}--\r\n`));
  const body = Buffer.concat(parts);
  return { body, headers: { 'content-type': `multipart/form-data; boundary=${b}`, 'content-length': String(body.length) } };
}

const port = (s: Studio) => Number(new URL(s.url).port);
const noStack = (body: string) => assert.doesNotMatch(body, /\n\s+at |\.js:\d+:\d+|node:internal/, `a stack trace leaked: ${body}`);

test('helpers: loopback hosts, repeated decoding, resolveUnder refuses what leaves the root', async () => {
  for (const h of ['127.0.0.1', 'localhost', '::1', '[::1]', '127.1.2.3']) assert.ok(isLoopbackHost(h), h);
  for (const h of ['0.0.0.0', '192.168.1.4', 'example.com', '::']) assert.ok(!isLoopbackHost(h), h);
  assert.equal(fullyDecode('%252e%252e'), '..');
  assert.equal(fullyDecode('%E0%A4%A'), null);
  assert.equal(await resolveUnder(runs, 'r1/best.safetensors'), path.join(runs, 'r1', 'best.safetensors'));
  for (const bad of ['../secret.txt', '%2e%2e/secret.txt', '%252e%252e/secret.txt', '/etc/passwd', 'r1/link.safetensors', 'up/secret.txt', '..\\secret.txt', 'r1/\0x', '']) {
    assert.equal(await resolveUnder(runs, bad), null, bad);
  }
});

test('files: served from under the runs root only; every traversal variant is 403/404 and leaks nothing', async () => {
  const s = await createStudio({ runs, db: path.join(root, 'db'), port: 0 });
  studios.push(s);
  const ok = await raw(port(s), 'GET', '/api/files/runs/r1/best.safetensors');
  assert.equal(ok.status, 200);
  assert.equal(ok.body, 'WEIGHTS');
  assert.equal((await raw(port(s), 'GET', '/api/files/runs/r1/inside.safetensors')).body, 'WEIGHTS', 'a symlink inside the root is fine');
  const variants = [
    '/api/files/runs/../secret.txt',
    '/api/files/runs/../../secret.txt',
    '/api/files/runs/%2e%2e/secret.txt',
    '/api/files/runs/%2E%2E%2Fsecret.txt',
    '/api/files/runs/r1/%2e%2e/%2e%2e/secret.txt',
    '/api/files/runs/%252e%252e/secret.txt',
    '/api/files/runs/%25252e%25252e/secret.txt',
    '/api/files/runs/..%2fsecret.txt',
    '/api/files/runs/..%5csecret.txt',
    '/api/files/runs/%2fetc%2fpasswd',
    '/api/files/runs//etc/passwd',
    `/api/files/runs/${encodeURIComponent(path.join(root, 'secret.txt'))}`,
    '/api/files/runs/r1/link.safetensors',
    '/api/files/runs/up/secret.txt',
    '/api/files/runs/%c0%ae%c0%ae/secret.txt',
    '/api/files/runs/r1/best.safetensors%00.txt',
    '/api/files/runs/.jobs/x.json',
  ];
  for (const v of variants) {
    const r = await raw(port(s), 'GET', v);
    assert.ok(r.status === 403 || r.status === 404 || r.status === 400, `${v}: ${r.status}`);
    assert.ok(!r.body.includes(SECRET) && !r.body.includes('root:'), `${v} leaked the file`);
    noStack(r.body);
  }
});

test('uploads: over the cap is 413; bytes that are not an image are refused by the safe decoder (400 DECODE)', async () => {
  const s = await createStudio({ runs, db: path.join(root, 'db'), port: 0, uploadLimit: 2000, clip: path.join(root, 'no-clip') });
  studios.push(s);
  const big = multipart({ labels: 'a,b' }, Buffer.alloc(50_000, 7));
  const r = await raw(port(s), 'POST', '/api/zeroshot', { headers: big.headers, body: big.body });
  assert.equal(r.status, 413, r.body);
  assert.match(JSON.parse(r.body).error, /limit is 2000 bytes/);
  const junk = multipart({ labels: 'a,b' }, Buffer.from('this is not an image at all'));
  const d = await raw(port(s), 'POST', '/api/zeroshot', { headers: junk.headers, body: junk.body });
  assert.equal(d.status, 400, d.body);
  assert.equal(JSON.parse(d.body).code, 'DECODE');
  noStack(d.body);
});

test('JSON bodies: malformed JSON, schema violations and unknown train options are 400 without a stack', async () => {
  const s = await createStudio({ runs, db: path.join(root, 'db'), port: 0 });
  studios.push(s);
  const post = (body: string) => raw(port(s), 'POST', '/api/jobs/train', { headers: { 'content-type': 'application/json' }, body });
  const cases: [string, RegExp][] = [
    ['{"run": "x", "options": {', /JSON/i],
    ['{"options": {}}', /run/],
    ['{"run": "../evil", "options": {}}', /run/],
    ['{"run": "ok", "options": {}, "extra": 1}', /additional/i],
    ['{"run": "ok", "options": {"epochs": {"$gt": 1}}}', /options/],
    ['{"run": "ok", "options": {"rm-rf": true}}', /unknown train option 'rm-rf'/],
    ['{"run": "ok", "options": {"method": "nonsense"}}', /must be one of/],
    ['{"run": "ok", "options": {"data": "--resume"}}', /cannot start with '-'/],
  ];
  for (const [body, re] of cases) {
    const r = await post(body);
    assert.equal(r.status, 400, `${body}: ${r.status} ${r.body}`);
    assert.match(JSON.parse(r.body).error, re, body);
    noStack(r.body);
  }
  const nf = await raw(port(s), 'GET', '/api/index/nosuch/rows');
  assert.equal(nf.status, 404);
  noStack(nf.body);
});

test('a non-loopback host needs the token on every /api call; loopback refuses foreign Host headers', async () => {
  const s = await createStudio({ runs, db: path.join(root, 'db'), host: '0.0.0.0', port: 0 });
  studios.push(s);
  assert.match(s.token ?? '', /^[0-9a-f]{32}$/);
  for (const p of ['/api/runs', '/api/health', '/api/files/runs/r1/best.safetensors', '/api/jobs']) {
    assert.equal((await raw(port(s), 'GET', p)).status, 401, p);
    assert.equal((await raw(port(s), 'GET', p, { headers: { authorization: 'Bearer wrong' } })).status, 401, p);
  }
  assert.equal((await raw(port(s), 'POST', '/api/jobs/train', { headers: { 'content-type': 'application/json' }, body: '{}' })).status, 401);
  const okH = await raw(port(s), 'GET', '/api/runs', { headers: { authorization: `Bearer ${s.token}` } });
  assert.equal(okH.status, 200);
  assert.equal(JSON.parse(okH.body)[0].name, 'r1');
  assert.equal((await raw(port(s), 'GET', `/api/runs?token=${s.token}`)).status, 200);
  assert.equal((await raw(port(s), 'GET', '/api/runs', { headers: { 'x-dyad-token': s.token! } })).status, 200);

  const l = await createStudio({ runs, db: path.join(root, 'db'), port: 0 });
  studios.push(l);
  assert.equal(l.token, null);
  assert.equal((await raw(port(l), 'GET', '/api/runs')).status, 200);
  assert.equal((await raw(port(l), 'GET', '/api/runs', { headers: { host: 'evil.example:80' } })).status, 403);
});

test('thumbnails: WebP made by sharp, cached on disk (a second request reads the cache), a broken file is refused', async () => {
  const { Thumbnails } = await import('../src/server/thumbs.js');
  const sharp = (await import('sharp')).default;
  const dir = path.join(root, 'thumbs');
  const img = path.join(root, 'pic.png');
  await sharp({ create: { width: 300, height: 200, channels: 3, background: { r: 200, g: 40, b: 90 } } }).png().toFile(img);
  const t = new Thumbnails(dir);
  const a = await t.get(img, 128);
  assert.equal(a.subarray(0, 4).toString(), 'RIFF');
  assert.equal(a.subarray(8, 12).toString(), 'WEBP');
  const meta = await sharp(a).metadata();
  assert.deepEqual([meta.width, meta.height], [128, 85]);
  const { readdirSync, writeFileSync: wf } = await import('node:fs');
  const cached = readdirSync(dir).filter((f) => f.endsWith('.webp'));
  assert.equal(cached.length, 1);
  wf(path.join(dir, cached[0]!), Buffer.from('from-cache'));
  assert.equal((await t.get(img, 128)).toString(), 'from-cache', 'the second request is served from the cache');
  const broken = path.join(root, 'broken.png');
  writeFileSync(broken, Buffer.from('\x89PNG\r\n\x1a\nnot really'));
  await assert.rejects(t.get(broken, 128));
});
