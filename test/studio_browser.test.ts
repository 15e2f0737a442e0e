// dyad studio in a real browser: Debian's Chromium (headless, playwright-core) against a real
// `createStudio` server on a temp folder. The test trains a tiny run from the train form and
// watches its curve gain points over SSE, cancels it and sees the job stop, indexes a synthetic
// image folder with the run's checkpoint, then checks the map canvas is drawn, a click on a
// point shows neighbour thumbnails, an image upload returns matches, duplicates and failed files
// render, the zero-shot page gives probabilities with a tiny random CLIP, and a finished run can
// be compared and exported. A screenshot of each page goes to $DYAD_STUDIO_SHOTS (default
// <tmp>/shots, printed).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync, readFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { chromium, type Browser, type Page } from 'playwright-core';
import { tempDir } from './helpers/tmp.js';
import { mulberry32 } from './helpers/rng.js';
import { writeShapeFolder } from './helpers/images.js';
import { createStudio, type Studio } from '../src/server/app.js';
import { CLIPModel } from '../src/models/clip/model.js';
import * as torch from '../src/torch/index.js';
import { packageRoot } from '../src/torch/native.js';

const CHROMIUM = '/usr/bin/chromium';
const root = tempDir('studio');
const shots = process.env.DYAD_STUDIO_SHOTS ?? path.join(root, 'shots');
const data = path.join(root, 'shapes');
const runs = path.join(root, 'runs');
const db = path.join(root, 'db');
const clipDir = path.join(root, 'tiny-clip');
const DYAD = path.join(packageRoot(), 'bin', 'dyad.js');
let studio: Studio;
let browser: Browser;
let page: Page;

const alive = (pid: number) => { try { process.kill(pid, 0); return true; } catch { return false; } };
const shot = async (name: string) => {
  mkdirSync(shots, { recursive: true });
  await page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
};
const points = async () => Number((await page.getAttribute('#app', 'data-points')) ?? 0);
async function until<T>(f: () => Promise<T>, ok: (v: T) => boolean, ms: number, what: string): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = await f();
    if (ok(v)) return v;
    if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${what} (last: ${JSON.stringify(v)})`);
    await new Promise((r) => setTimeout(r, 150));
  }
}
const TRAIN = { method: 'simclr', data, batch: '16', backbone: 'resnet18', width: '4', 'image-size': '16', 'max-steps-per-epoch': '1', threads: '1', cache: 'true', 'knn-every': '1' };

before(async () => {
  await writeShapeFolder(data, 10, mulberry32(5));
  writeFileSync(path.join(data, 'blob', 'broken.png'), Buffer.from('\x89PNG\r\n\x1a\n this file is cut short'));
  // an exact copy, so the duplicates view has a group
  writeFileSync(path.join(data, 'blob', 'copy-of-0.png'), readFileSync(path.join(data, 'blob', '0.png')));
  torch.manualSeed(1);
  const clip = new CLIPModel({ projection_dim: 8, text_config: { hidden_size: 16, intermediate_size: 32, num_hidden_layers: 1, num_attention_heads: 2, max_position_embeddings: 16 },
    vision_config: { hidden_size: 16, intermediate_size: 32, num_hidden_layers: 1, num_attention_heads: 2, image_size: 16, patch_size: 8 } });
  clip.savePretrained(clipDir);
  clip.dispose();
  studio = await createStudio({ runs, db, port: 0, clip: clipDir });
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--use-gl=angle', '--use-angle=swiftshader', '--enable-unsafe-swiftshader', '--ignore-gpu-blocklist'] });
  page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
  console.log(`# studio screenshots: ${shots}`);
});

after(async () => {
  await browser?.close();
  await studio?.close({ stopJobs: true });
});

const go = async (hash: string) => {
  await page.goto(`${studio.url}#${hash}`);
  await page.waitForSelector('#app[data-ready="1"]', { timeout: 30_000 });
};

test('train from the form: the run is listed, its curve gains points while the job runs, cancel stops the job', { skip: !existsSync(CHROMIUM) && `no ${CHROMIUM}` }, async () => {
  await go('/train');
  await page.fill('input[name="run"]', 'ui-run');
  await page.click('details summary');
  for (const [k, v] of Object.entries({ ...TRAIN, epochs: '400' })) {
    const sel = `[name="${k}"]`;
    if ((await page.$eval(sel, (e) => e.tagName)) === 'SELECT') await page.selectOption(sel, v);
    else await page.fill(sel, v);
  }
  await shot('train');
  await page.click('#start');
  await page.waitForURL(/#\/run\/ui-run$/);
  await page.waitForSelector('#app[data-ready="1"]');
  const first = await until(points, (n) => n >= 2, 60_000, 'two epochs on the curve');
  const later = await until(points, (n) => n > first + 1, 30_000, 'the curve to gain points');
  assert.ok(later > first);
  assert.ok(await page.isVisible('.pill.running'));
  await page.waitForTimeout(300);
  await shot('run-live');

  await go('/runs');
  const row = await page.textContent('tr[data-run="ui-run"]');
  assert.match(row ?? '', /simclr/);
  assert.match(row ?? '', /running/);
  await shot('runs');

  await go('/run/ui-run');
  const jobs = await (await fetch(`${studio.url}api/jobs`)).json() as { id: string; pid: number; run: string }[];
  const job = jobs.find((j) => j.run === 'ui-run')!;
  assert.ok(alive(job.pid));
  await page.click('#cancel');
  await page.waitForSelector('.pill.cancelled', { timeout: 10_000 });
  await until(async () => alive(job.pid), (a) => !a, 10_000, 'the job process to end');
  const n = (readFileSync(path.join(runs, 'ui-run', 'metrics.jsonl'), 'utf8').match(/\n/g) ?? []).length;
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal((readFileSync(path.join(runs, 'ui-run', 'metrics.jsonl'), 'utf8').match(/\n/g) ?? []).length, n, 'no epochs after the cancel');
  assert.ok(n < 400);
});

test('a short run finishes; compare two runs; export ONNX and download it', { skip: !existsSync(CHROMIUM) && `no ${CHROMIUM}` }, async () => {
  const r = await fetch(`${studio.url}api/jobs/train`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ run: 'short', options: { ...TRAIN, epochs: '6' } }) });
  assert.equal(r.status, 200, await r.clone().text());
  await go('/run/short');
  await page.waitForSelector('.pill.finished', { timeout: 60_000 });
  assert.equal(await points(), 6);
  await page.waitForTimeout(600); // the page reloads itself when the job ends
  await go('/run/short');
  await page.waitForSelector('#export-onnx:enabled');
  await page.click('#export-onnx');
  const link = await page.waitForSelector('#export-out a.btn', { timeout: 60_000 });
  const href = await link.getAttribute('href');
  const onnx = await fetch(new URL(href!, studio.url));
  assert.equal(onnx.status, 200);
  assert.ok((await onnx.arrayBuffer()).byteLength > 10_000);
  await shot('run-finished');
  // a job that fails shows its error on the run page
  const bad = await fetch(`${studio.url}api/jobs/train`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ run: 'broken', options: { ...TRAIN, data: path.join(root, 'no-such-folder'), epochs: '2' } }) });
  assert.equal(bad.status, 200);
  await go('/run/broken');
  const err = await page.waitForSelector('.error', { timeout: 60_000 });
  assert.match((await err.textContent())!, /no-such-folder/);
  assert.ok(await page.isVisible('.pill.failed'));
  await shot('run-failed');
  await go('/compare/ui-run,short');
  assert.equal(await page.locator('.uplot').count(), 4);
  await shot('compare');
});

test('explore: map drawn, hover thumbnail, click shows neighbours, upload search, SQL filter, duplicates, failed files', { skip: !existsSync(CHROMIUM) && `no ${CHROMIUM}` }, async () => {
  execFileSync(process.execPath, [DYAD, 'index', '--weights', path.join(runs, 'short', 'best.safetensors'), '--data', data, '--db', db, '--threads', '1'], { stdio: 'pipe', env: { ...process.env, CI: '1' } });
  await go('/explore');
  await page.waitForSelector('#map[data-drawn]', { timeout: 60_000 });
  await page.waitForTimeout(500);
  const png = await page.locator('#map canvas').screenshot();
  const { data: px, info } = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  let lit = 0;
  for (let i = 0; i < px.length; i += info.channels) if (Math.abs(px[i]! - 9) + Math.abs(px[i + 1]! - 12) + Math.abs(px[i + 2]! - 18) > 60) lit++;
  assert.ok(lit > 200, `${lit} coloured pixels on the map`);

  const box = (await page.locator('#map canvas').boundingBox())!;
  const at = async (i: number) => { const [x, y] = await page.evaluate(`window.__dyadMap.screen(${i})`) as [number, number]; return { x: box.x + x, y: box.y + y }; };
  const p = await at(3);
  await page.mouse.move(p.x, p.y);
  await page.waitForSelector('.tip img', { state: 'visible', timeout: 5000 });
  await page.mouse.click(p.x, p.y);
  await page.waitForSelector('#results .thumb.hit img', { timeout: 20_000 });
  await page.waitForFunction("[...document.querySelectorAll('#results .thumb.hit img')].every((i) => i.complete && i.naturalWidth > 0)");
  assert.ok(await page.locator('#results .thumb.hit').count() >= 5);
  await shot('explore-map');

  await page.setInputFiles('#upload', path.join(data, 'vstripes', '3.png'));
  await page.waitForSelector('#side-results h2:has-text("matches for 3.png")', { timeout: 30_000 });
  const labels = await page.locator('#results .thumb.hit .l').allTextContents();
  assert.ok(labels.length > 0);
  assert.ok(labels.includes('vstripes'), labels.join(','));

  await page.fill('#where', "label = 'blob'");
  await page.press('#where', 'Enter');
  await page.waitForSelector('#filter-status:has-text("rows match")');
  assert.match((await page.textContent('#filter-status'))!, /^11 of 41 rows match/);

  await page.fill('#where', '');
  await page.click('button[data-tab="Duplicates"]');
  await page.waitForSelector('#dups .group', { timeout: 30_000 });
  assert.ok(await page.locator('#dups .group').count() >= 1);
  await shot('explore-duplicates');
  await page.click('button[data-tab="Failed files"]');
  await page.waitForSelector('#failed', { timeout: 30_000 });
  assert.match((await page.textContent('#failed'))!, /broken\.png/);
  await shot('explore-failed');
});

test('zero-shot playground: a tiny random CLIP gives one probability per label, summing to 1', { skip: !existsSync(CHROMIUM) && `no ${CHROMIUM}` }, async () => {
  await go('/zeroshot');
  await page.fill('#zs-labels', 'stripes, blob, diagonal line');
  await page.fill('#zs-templates', 'a photo of a {}.\na drawing of a {}.');
  await page.setInputFiles('#zs-file', path.join(data, 'blob', '1.png'));
  await page.waitForSelector('#zs-out .bar', { timeout: 60_000 });
  const vals = (await page.locator('#zs-out .bar .num').allTextContents()).map((s) => parseFloat(s));
  assert.equal(vals.length, 3);
  assert.ok(Math.abs(vals.reduce((a, b) => a + b, 0) - 100) < 0.5, vals.join(','));
  await shot('zeroshot');
});
