// An exported classifier in the browser: Debian's Chromium (headless, driven by playwright-core
// with executablePath /usr/bin/chromium) loads onnxruntime-web (wasm) and the model from a
// 127.0.0.1 server this test starts, reads a real PNG written by the test with a canvas,
// normalises it with the mean/std of the export, and its top-1 class and probabilities must be
// dyad's (`Model.predict` on the same file).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { chromium } from 'playwright-core';

import * as torch from '../src/torch/index.js';
import * as nn from '../src/nn/index.js';
import { Classifier } from '../src/models/classifier.js';
import { Model } from '../src/api/index.js';
import { Net } from '../src/api/net.js';
import { exportNetOnnx } from '../src/export/index.js';
import { packageRoot } from '../src/torch/native.js';

const CHROMIUM = '/usr/bin/chromium';
const dir = mkdtempSync(path.join(tmpdir(), 'dyad-onnx-web-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

const PAGE = `<!doctype html><html><body><img id="img" src="/image.png"><script type="module">
import * as ort from '/ort/ort.wasm.min.mjs';
ort.env.wasm.wasmPaths = '/ort/';
ort.env.wasm.numThreads = 1;
window.classify = async (model) => {
  const meta = await (await fetch('/meta.json')).json();
  const img = document.getElementById('img');
  await img.decode();
  const s = meta.image_size;
  const canvas = document.createElement('canvas');
  canvas.width = s; canvas.height = s;
  const ctx = canvas.getContext('2d');
  ctx.drawImage(img, 0, 0, s, s);
  const rgba = ctx.getImageData(0, 0, s, s).data;
  const x = new Float32Array(3 * s * s);
  for (let c = 0; c < 3; c++) for (let i = 0; i < s * s; i++) x[c * s * s + i] = (rgba[4 * i + c] / 255 - meta.mean[c]) / meta.std[c];
  const session = await ort.InferenceSession.create(model, { executionProviders: ['wasm'] });
  const out = await session.run({ images: new ort.Tensor('float32', x, [1, 3, s, s]) });
  const probs = Array.from(out.probs.data);
  return { probs, top1: probs.indexOf(Math.max(...probs)), backend: 'wasm' };
};
window.ready = true;
</script></body></html>`;

test('exported classifiers (ResNet and ViT backbones) run in Chromium with onnxruntime-web (wasm): top1 and probabilities equal dyad\'s on a real image', { skip: !existsSync(CHROMIUM) && `no ${CHROMIUM} (apt-get install chromium)` }, async () => {
  torch.manualSeed(0);
  const size = 32;
  const names = ['circle', 'square', 'stripes', 'noise', 'blank'];
  const stats = { mean: [0.49, 0.48, 0.45], std: [0.25, 0.24, 0.26] };
  const models = (['resnet18', 'vit-tiny'] as const).map((backbone) => {
    const width = backbone === 'resnet18' ? 8 : 24;
    const clf = new Classifier({ name: backbone, inChannels: 3, imageSize: size, width }, names.length);
    torch.noGrad(() => {
      for (const b of clf.modules()) if (b instanceof nn.BatchNorm2d) { b.running_mean!.uniform_(-0.1, 0.1); b.running_var!.uniform_(0.5, 1.5); }
      clf.head.weight.mul_(20); // confident, well-separated probabilities
    });
    const config = { backbone, width, imageSize: size, stem: 'auto' as const, channels: 3 as const, ...stats };
    const net = new Net('classifier', clf, config, names, null);
    return { backbone, model: Model.fromNet(net), onnx: exportNetOnnx(net) };
  });

  // a real PNG: a red disc on a blue/green gradient
  const px = Buffer.alloc(size * size * 3);
  for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) {
    const i = 3 * (y * size + x), disc = (x - 12) ** 2 + (y - 18) ** 2 < 64;
    px[i] = disc ? 220 : 20; px[i + 1] = disc ? 30 : (x * 8) & 255; px[i + 2] = disc ? 40 : 255 - y * 6;
  }
  const image = path.join(dir, 'image.png');
  await sharp(px, { raw: { width: size, height: size, channels: 3 } }).png().toFile(image);

  const ortDir = path.join(packageRoot(), 'node_modules', 'onnxruntime-web', 'dist');
  const files: Record<string, [string, Buffer | string]> = {
    '/': ['text/html', PAGE],
    '/image.png': ['image/png', readFileSync(image)],
    '/resnet18.onnx': ['application/octet-stream', Buffer.from(models[0]!.onnx)],
    '/vit-tiny.onnx': ['application/octet-stream', Buffer.from(models[1]!.onnx)],
    '/meta.json': ['application/json', JSON.stringify({ image_size: size, ...stats })],
  };
  const server = http.createServer((req, res) => {
    const url = (req.url ?? '/').split('?')[0]!;
    let hit = files[url];
    if (!hit && url.startsWith('/ort/') && /^[\w.-]+$/.test(url.slice(5)) && existsSync(path.join(ortDir, url.slice(5)))) {
      hit = [url.endsWith('.wasm') ? 'application/wasm' : 'text/javascript', readFileSync(path.join(ortDir, url.slice(5)))];
    }
    if (!hit) { res.writeHead(404).end(); return; }
    res.writeHead(200, { 'content-type': hit[0] }).end(hit[1]);
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const port = (server.address() as AddressInfo).port;
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
  try {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`http://127.0.0.1:${port}/`);
    await page.waitForFunction('window.ready === true', undefined, { timeout: 30_000 });
    for (const { backbone, model } of models) {
      const [r] = await model.predict(image);
      const want = r!.probs!;
      const got = await page.evaluate(`window.classify('/${backbone}.onnx')`) as { probs: number[]; top1: number };
      assert.deepEqual(errors, []);
      assert.equal(got.top1, want.top1, `${backbone}: browser top1 ${names[got.top1]} vs dyad ${names[want.top1]}`);
      let d = 0;
      for (let i = 0; i < names.length; i++) d = Math.max(d, Math.abs(got.probs[i]! - want.data[i]!));
      assert.ok(d <= 1e-4, `${backbone}: max abs diff of the probabilities ${d}`);
    }
  } finally {
    await browser.close();
    server.close();
    for (const { model } of models) model.dispose();
  }
});
