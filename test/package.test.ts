// dyad as an npm package: `npm pack` the project, install the tarball into a fresh temp project
// (`npm ci --offline` from the local npm cache that `npm ci` filled: no registry access), then
// use it as a user would: `import 'dyad'` and `dyad/torch`, a training step, `Model.load` and `predict`, `npx dyad --help`,
// and a TypeScript consumer type-checked with moduleResolution nodenext and bundler. The addon
// is not recompiled: the project's own build (native/build/Release/dyad.node, same sources, same
// libtorch) is put into the temp cache folder with its record, as a first-import build would
// leave it. Without libtorch, the first import answers with the three ways to get one.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { packageRoot } from '../src/torch/package_root.js';
import { Classifier } from '../src/models/classifier.js';
import { buildBackbone, saveClassifier } from '../src/engine/classify.js';

const root = packageRoot();
let tmp: string;
let consumer: string;
let cache: string;
let packed: { filename: string; files: { path: string }[] };

/** The environment without the variables of the `npm test` that runs this (npm_lifecycle_*, npm_package_*). */
function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('npm_') || k === 'npm_config_cache') env[k] = v;
  return { ...env, ...extra };
}

function run(cmd: string, args: string[], opts: SpawnSyncOptions = {}): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: cleanEnv(), timeout: 180_000, ...opts });
  return { status: r.status, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/**
 * The consumer project: dependencies `dyad` (the tarball) and `@types/node`, and a lock made from
 * the project's own (the versions `npm ci` put in the npm cache), so `npm ci --offline` needs no
 * registry metadata: a fresh machine's cache holds the tarballs `npm ci` fetched, not the
 * registry's version lists that resolving ranges without a lock would need.
 */
function writeConsumer(tarball: string): void {
  type Entry = { version?: string; dev?: boolean; devOptional?: boolean; [k: string]: unknown };
  const lock = JSON.parse(readFileSync(path.join(root, 'package-lock.json'), 'utf8')) as { packages: Record<string, Entry> };
  const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as Record<string, unknown>;
  const spec = `file:${path.relative(consumer, tarball)}`;
  const deps = { dyad: spec, '@types/node': lock.packages['node_modules/@types/node']!.version! };
  const packages: Record<string, unknown> = {
    '': { name: 'consumer', dependencies: deps },
    'node_modules/dyad': { version: pkg.version, resolved: spec, license: pkg.license, dependencies: pkg.dependencies, bin: pkg.bin, engines: pkg.engines },
  };
  for (const [k, v] of Object.entries(lock.packages)) {
    if (!k.startsWith('node_modules/') || (v.dev && !v.devOptional)) continue;
    const { dev: _dev, devOptional: _devOptional, ...entry } = v;
    packages[k] = entry;
  }
  writeFileSync(path.join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module', dependencies: deps }, null, 2));
  writeFileSync(path.join(consumer, 'package-lock.json'), JSON.stringify({ name: 'consumer', lockfileVersion: 3, requires: true, packages }, null, 2));
}

before(() => {
  tmp = mkdtempSync(path.join(tmpdir(), 'dyad-package-'));
  consumer = path.join(tmp, 'consumer');
  cache = path.join(tmp, 'dyad-cache');
  mkdirSync(consumer);
  // dist/ is already built by `npm test` (prepack would rebuild it with tsc).
  const r = run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', tmp], { cwd: root });
  assert.equal(r.status, 0, r.stderr);
  packed = (JSON.parse(r.stdout) as (typeof packed)[])[0]!;
});

after(() => rmSync(tmp, { recursive: true, force: true }));

test('the tarball holds dist/src, the bin, the native sources and assets, and no tests, benchmarks or builds', () => {
  const files = packed.files.map((f) => f.path);
  for (const f of ['package.json', 'README.md', 'bin/dyad.js', 'dist/src/index.js', 'dist/src/index.d.ts', 'dist/src/torch-api.js', 'dist/src/torch-api.d.ts',
    'dist/src/hub/index.js', 'dist/src/cli/standalone.js', 'native/binding.gyp', 'native/find-libtorch.mjs', 'native/build-addon.mjs', 'native/src/ops.cc',
    'assets/clip/bpe_simple_vocab_16e6.txt.gz']) {
    assert.ok(files.includes(f), `${f} is in the tarball`);
  }
  const bad = files.filter((f) => /^(test|bench|examples|src|scripts|dist\/(test|bench|examples))\/|^native\/build\/|\.map$|\.node$/.test(f));
  assert.deepEqual(bad, []);
});

test('the tarball installed in a fresh project (npm ci --offline): import dyad and dyad/torch, a training step, npx dyad --help', () => {
  writeConsumer(path.join(tmp, packed.filename));
  const inst = run('npm', ['ci', '--offline', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: consumer });
  assert.equal(inst.status, 0, `npm ci --offline failed (are dyad's dependencies in the npm cache? run npm ci in the project first):\n${inst.stderr}`);
  const installed = path.join(consumer, 'node_modules', 'dyad');
  assert.ok(existsSync(path.join(installed, 'dist', 'src', 'index.js')));
  assert.ok(!existsSync(path.join(installed, 'native', 'build')), 'no addon comes with the package');

  // The first-import build's result, from the project's own build of the same sources and libtorch.
  const seeded = path.join(cache, 'addon', 'seeded');
  mkdirSync(seeded, { recursive: true });
  copyFileSync(path.join(root, 'native', 'build', 'Release', 'dyad.node'), path.join(seeded, 'dyad.node'));
  const meta = run(process.execPath, ['--input-type=module', '-e',
    `const b = await import(${JSON.stringify(path.join(installed, 'native', 'build-addon.mjs'))});` +
    `const f = await import(${JSON.stringify(path.join(installed, 'native', 'find-libtorch.mjs'))});` +
    `b.writeMeta(${JSON.stringify(path.join(seeded, 'dyad.node'))}, f.describeLibtorch());`]);
  assert.equal(meta.status, 0, meta.stderr);

  writeFileSync(path.join(consumer, 'train.mjs'), `
import * as dyad from 'dyad';
import * as torch from 'dyad/torch';
import { nn, optim } from 'dyad/torch';
torch.manualSeed(0);
const model = new nn.Linear(4, 2);
const opt = new optim.SGD(model.parameters(), { lr: 0.5 });
const x = torch.randn([16, 4]).keep();
const y = torch.randint(0, 2, [16]).keep();
const losses = [];
for (let i = 0; i < 5; i++) {
  losses.push(torch.scope(() => {
    const loss = nn.functional.crossEntropy(model.forward(x), y);
    opt.zeroGrad();
    loss.backward();
    opt.step();
    return loss.item();
  }));
}
const clf = await dyad.Model.load(${JSON.stringify(path.join(tmp, 'clf.safetensors'))});
const [res] = await clf.predict(torch.zeros([1, 16, 16], { dtype: 'uint8' }));
console.log(JSON.stringify({ losses, model: typeof dyad.Model, hub: typeof dyad.resolveModelSource, same: dyad.torch.Tensor === torch.Tensor,
  task: clf.task, names: res.names, top1conf: res.probs.top1conf }));
`);
  // a classifier checkpoint for the consumer's Model.load and predict, written with this checkout's dyad
  {
    const cfg = { backbone: 'resnet18' as const, width: 8, imageSize: 16, stem: 'cifar' as const, channels: 1 as const, mean: [0.5], std: [0.25] };
    const clf = new Classifier(buildBackbone(cfg), 3);
    saveClassifier(path.join(tmp, 'clf.safetensors'), clf, { config: cfg, names: ['a', 'b', 'c'], provenance: { mode: 'supervised', labelFraction: 1, labels: 0, data: 'none' } });
    clf.dispose();
  }
  // DYAD_NO_BUILD=1: a missing or unfit addon fails here instead of compiling for minutes.
  const env = cleanEnv({ DYAD_CACHE: cache, DYAD_NO_BUILD: '1' });
  const r = run(process.execPath, ['train.mjs'], { cwd: consumer, env });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { losses: number[]; model: string; hub: string; same: boolean; task: string; names: string[]; top1conf: number };
  assert.ok(out.losses.at(-1)! < out.losses[0]!, `the loss falls: ${out.losses.join(', ')}`);
  assert.deepEqual([out.model, out.hub, out.same], ['function', 'function', true]);
  assert.equal(out.task, 'classifier');
  assert.deepEqual(out.names, ['a', 'b', 'c']);
  assert.ok(out.top1conf > 0 && out.top1conf <= 1, `top1conf ${out.top1conf}`);

  const help = run('npx', ['--offline', '--no-install', 'dyad', '--help'], { cwd: consumer, env });
  assert.equal(help.status, 0, help.stderr);
  for (const c of ['train', 'download', 'build-native']) assert.match(help.stdout, new RegExp(`\\b${c}\\b`));
  const dl = run('npx', ['--offline', '--no-install', 'dyad', 'download', '--help'], { cwd: consumer, env: cleanEnv({ DYAD_CACHE: path.join(tmp, 'empty'), DYAD_NO_BUILD: '1' }) });
  assert.equal(dl.status, 0, `dyad download needs no addon: ${dl.stderr}`);
});

test('a TypeScript consumer type-checks with moduleResolution nodenext and bundler', () => {
  assert.ok(existsSync(path.join(consumer, 'node_modules', 'dyad')), 'needs the install of the previous test');
  writeFileSync(path.join(consumer, 'consumer.ts'), `
import { Model, DyadError, resolveModelSource, type HubOptions } from 'dyad';
import * as torch from 'dyad/torch';
import { nn, optim, type Tensor } from 'dyad/torch';
const lin: nn.Linear = new nn.Linear(4, 2);
const opt: optim.SGD = new optim.SGD(lin.parameters(), { lr: 0.1 });
const x: Tensor = torch.randn([2, 4]);
const n: number = lin.forward(x).sum().item();
const o: HubOptions = { revision: 'main' };
const p: Promise<string> = resolveModelSource('org/name', o);
const e: DyadError = new DyadError('HUB', 'x');
// @ts-expect-error: a wrong type must be an error, or this check proves nothing
const bad: string = lin.forward(x);
export { Model, opt, n, p, e, bad };
`);
  const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  for (const [resolution, module] of [['nodenext', 'nodenext'], ['bundler', 'esnext']]) {
    writeFileSync(path.join(consumer, `tsconfig.${resolution}.json`), JSON.stringify({
      compilerOptions: { module, moduleResolution: resolution, target: 'es2022', strict: true, noEmit: true, types: ['node'], skipLibCheck: false },
      files: ['consumer.ts'],
    }));
    const r = run(process.execPath, [tsc, '-p', `tsconfig.${resolution}.json`], { cwd: consumer });
    assert.equal(r.status, 0, `${resolution}: ${r.stdout}${r.stderr}`);
  }
});

test('without libtorch, the first import of the installed package lists the three ways to get one', () => {
  const none = path.join(tmp, 'no-libtorch');
  mkdirSync(none);
  const env = cleanEnv({ DYAD_CACHE: path.join(tmp, 'cache-none'), LIBTORCH: path.join(none, 'missing'), LIBTORCH_USE_PYTORCH: '', LIBTORCH_SYSTEM_DIRS: none });
  const r = run(process.execPath, ['--input-type=module', '-e', "import('dyad').then(() => console.log('loaded'), (e) => { console.log(JSON.stringify({ code: e.code, message: e.message })); })"], { cwd: consumer, env });
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { code: string; message: string };
  assert.equal(out.code, 'ADDON');
  assert.match(out.message, /could not be built: dyad could not find libtorch/);
  assert.match(out.message, /apt-get install libtorch-dev/);
  assert.match(out.message, /pip install torch, then LIBTORCH_USE_PYTORCH=1/);
  assert.match(out.message, /official archive .* LIBTORCH=\/path\/to\/libtorch/);
  assert.match(r.stderr, /no libtorch addon is built yet for LIBTORCH=/, 'the reason for the build is said first');
  const cli = run('npx', ['--offline', '--no-install', 'dyad', 'build-native'], { cwd: consumer, env });
  assert.equal(cli.status, 1);
  assert.match(cli.stderr, /dyad: error: dyad could not find libtorch[^]*apt-get install libtorch-dev[^]*LIBTORCH_USE_PYTORCH=1[^]*LIBTORCH=\/path\/to\/libtorch/);
});

test('an addon built for another libtorch is explained before loading, not a dlopen failure', () => {
  const other = path.join(tmp, 'cache-other', 'addon', 'old');
  mkdirSync(other, { recursive: true });
  copyFileSync(path.join(cache, 'addon', 'seeded', 'dyad.node'), path.join(other, 'dyad.node'));
  const rec = JSON.parse(readFileSync(path.join(cache, 'addon', 'seeded', 'dyad.node.json'), 'utf8')) as { libtorch: { fingerprint: { size: number } } };
  rec.libtorch.fingerprint.size += 1;
  writeFileSync(path.join(other, 'dyad.node.json'), JSON.stringify(rec));
  const env = cleanEnv({ DYAD_CACHE: path.dirname(path.dirname(other)), DYAD_NO_BUILD: '1' });
  const r = run(process.execPath, ['--input-type=module', '-e', "import('dyad/torch').then(() => console.log('loaded'), (e) => console.log(e.message))"], { cwd: consumer, env });
  assert.match(r.stdout, /not built for this setup: .*dyad\.node was built against libtorch [\d.]+ in .*has been replaced since.*npx dyad build-native/);
});
