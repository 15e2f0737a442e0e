// The layer rule of DESIGN.md, checked on the import lines of every .ts file under src/: an
// arrow only points down. models/losses/methods never import the engine or the product layer
// (api, search, cli, server); the engine never imports the product layer; torch imports
// nothing above it. A violation is reported with its file and line. Also: one sha256 of files.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileSha256, sha256 } from '../src/torch/io.js';

/** src/ of the source tree (the tests run from dist/test, the sources stay in src/). */
function srcRoot(): string {
  for (let dir = path.dirname(new URL(import.meta.url).pathname); ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'src');
    try {
      if (statSync(path.join(candidate, 'torch')).isDirectory() && statSync(path.join(dir, 'package.json')).isFile()) return candidate;
    } catch { /* keep going up */ }
    if (path.dirname(dir) === dir) throw new Error('cannot find the src/ folder above the test');
  }
}

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? tsFiles(p) : e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [p] : [];
  });
}

/** Layers each layer must not import. */
const PRODUCT = ['api', 'search', 'cli', 'server', 'export'];
const FORBIDDEN: Record<string, string[]> = {
  models: ['engine', ...PRODUCT],
  losses: ['engine', ...PRODUCT],
  methods: ['engine', ...PRODUCT],
  engine: PRODUCT,
};
/** torch may import only torch. */
const TORCH_ONLY = 'torch';

export interface Violation {
  file: string;
  line: number;
  spec: string;
  target: string;
}

/** The relative module specifiers of a file: static imports/exports (multi-line too) and dynamic import('...'), with their line. */
export function importSpecs(source: string): { line: number; spec: string }[] {
  const out: { line: number; spec: string }[] = [];
  const re = /(?:^|\n)\s*(?:import|export)\b[^;'"]*?\bfrom\s*['"]([^'"]+)['"]|(?:^|\n)\s*import\s*['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)/g;
  for (let m = re.exec(source); m !== null; m = re.exec(source)) {
    const spec = (m[1] ?? m[2] ?? m[3])!;
    const at = m.index + m[0].lastIndexOf(spec);
    out.push({ line: source.slice(0, at).split('\n').length, spec });
  }
  return out;
}

/**
 * The top-level part of src/ a specifier of `file` points to: 'foundation' for src/errors.ts (the
 * error base every layer may use: it imports nothing), 'entry' for any other top-level file such as
 * src/index.ts, null outside src/.
 */
function layerOf(src: string, file: string, spec: string): string | null {
  if (!spec.startsWith('.')) return null;
  const rel = path.relative(src, path.resolve(path.dirname(file), spec));
  if (rel.startsWith('..')) return null;
  const parts = rel.split(path.sep);
  if (parts.length === 1) return /^errors\.[jt]s$/.test(parts[0]!) ? 'foundation' : 'entry';
  return parts[0]!;
}

export function violations(src: string): Violation[] {
  const out: Violation[] = [];
  for (const file of tsFiles(src)) {
    const layer = path.relative(src, file).split(path.sep)[0]!;
    const forbidden = FORBIDDEN[layer];
    if (!forbidden && layer !== TORCH_ONLY) continue;
    for (const { line, spec } of importSpecs(readFileSync(file, 'utf8'))) {
      const target = layerOf(src, file, spec);
      if (target === null || target === 'foundation') continue;
      const bad = layer === TORCH_ONLY ? target !== TORCH_ONLY : forbidden!.includes(target) || target === 'entry';
      if (bad) out.push({ file: path.relative(path.dirname(src), file), line, spec, target });
    }
  }
  return out;
}

test('import scanner: static, multi-line, re-exports and dynamic imports, with their lines', () => {
  const src = "import a from './a.js';\nimport {\n  b,\n} from '../b.js';\nexport { c } from \"./c.js\";\nconst d = await import('./d.js');\nimport './side.js';\nimport x from 'node:fs';\n";
  assert.deepEqual(importSpecs(src), [
    { line: 1, spec: './a.js' }, { line: 4, spec: '../b.js' }, { line: 5, spec: './c.js' }, { line: 6, spec: './d.js' }, { line: 7, spec: './side.js' }, { line: 8, spec: 'node:fs' },
  ]);
});

test('the checker finds a planted violation (a model importing the api) with its file and line', () => {
  const root = mkdtempSync(path.join(tmpdir(), 'dyad-layers-'));
  try {
    const src = path.join(root, 'src');
    for (const d of ['torch', 'models', 'api', 'engine']) mkdirSync(path.join(src, d), { recursive: true });
    writeFileSync(path.join(src, 'models', 'm.ts'), "import * as torch from '../torch/index.js';\n\nimport { Results } from '../api/results.js';\n");
    writeFileSync(path.join(src, 'torch', 't.ts'), "import { x } from '../models/m.js';\n");
    writeFileSync(path.join(src, 'engine', 'e.ts'), "import { m } from '../models/m.js';\n");
    assert.deepEqual(violations(src).map((v) => `${v.file}:${v.line} → ${v.target}`).sort(), [
      `${path.join('src', 'models', 'm.ts')}:3 → api`,
      `${path.join('src', 'torch', 't.ts')}:1 → models`,
    ]);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('layers: models/losses/methods import no engine/api/search/cli/server; engine no api/cli/search; torch nothing above it', () => {
  const found = violations(srcRoot());
  assert.deepEqual(found.map((v) => `${v.file}:${v.line} imports ${v.spec} (${v.target})`), []);
});

test('one sha256 of files: fileSha256 streams (files larger than its 4 MiB buffer) and equals sha256 of the bytes', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'dyad-sha-'));
  try {
    const f = path.join(dir, 'w.bin');
    const bytes = Buffer.alloc((1 << 22) * 2 + 12345);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 2654435761) >>> 24;
    writeFileSync(f, bytes);
    const expected = createHash('sha256').update(bytes).digest('hex');
    assert.equal(fileSha256(f), expected);
    assert.equal(sha256([bytes.subarray(0, 10), bytes.subarray(10)]), expected);
    assert.equal(sha256(['ab', 'c']), createHash('sha256').update('abc').digest('hex'));
    assert.throws(() => fileSha256(path.join(dir, 'missing')), /ENOENT/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
