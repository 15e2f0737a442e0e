// DyadError (src/errors.ts): every error class dyad throws on purpose is a DyadError with a stable
// code from the table in src/errors.ts, keeps its own name, fields and message, and keeps `cause`;
// real failures (a missing file, a wrong-shape op in libtorch, a bad option) surface with their code.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import * as dyad from '../src/index.js';
import type { DyadErrorCode } from '../src/index.js';
import * as torchEntry from '../src/torch/index.js';
import { packageRoot } from '../src/torch/native.js';
import { loadTrainData } from '../src/engine/data.js';

const { DyadError, ERROR_CODES, isDyadError } = dyad;
const tmp = mkdtempSync(path.join(tmpdir(), 'dyad-errors-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));

/** Asserts that `e` is a DyadError of class `cls`, named `name`, with `code`. */
function assertDyad(e: unknown, cls: abstract new (...a: never[]) => Error, name: string, code: DyadErrorCode): void {
  assert.ok(e instanceof DyadError, `${String(e)} is not a DyadError`);
  assert.ok(e instanceof Error);
  assert.ok(e instanceof cls, `${String(e)} is not a ${cls.name}`);
  assert.equal(e.name, name);
  assert.equal(e.code, code, e.message);
  assert.ok((ERROR_CODES as readonly string[]).includes(e.code), `${e.code} is not in ERROR_CODES`);
  assert.ok(isDyadError(e, e.code));
}

test('DyadError and its codes are exported from dyad and dyad/torch', () => {
  assert.equal(torchEntry.DyadError, DyadError);
  assert.equal(torchEntry.ERROR_CODES, ERROR_CODES);
  assert.equal(dyad.torch.DyadError, DyadError);
  assert.equal(dyad.TorchError, torchEntry.TorchError);
  assert.equal(new Set(ERROR_CODES).size, ERROR_CODES.length, 'codes are unique');
  for (const c of ERROR_CODES) assert.match(c, /^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$/, `${c} is not SCREAMING_SNAKE_CASE`);
});

test('the code table in src/errors.ts lists every code, in ERROR_CODES order', () => {
  const source = readFileSync(path.join(packageRoot(), 'src', 'errors.ts'), 'utf8');
  const rows = [...source.matchAll(/^ \* \| `([A-Z_]+)`\s*\|/gm)].map((m) => m[1]);
  assert.deepEqual(rows, [...ERROR_CODES]);
});

test('every error class is a DyadError with its code, name and unchanged message', () => {
  const cases: [Error, abstract new (...a: never[]) => Error, string, DyadErrorCode, string][] = [
    [new dyad.TorchError('mat1 and mat2 shapes cannot be multiplied'), dyad.TorchError, 'TorchError', 'TORCH', 'mat1 and mat2 shapes cannot be multiplied'],
    [new dyad.DisposedTensorError('parameter'), dyad.DisposedTensorError, 'DisposedTensorError', 'DISPOSED_TENSOR', 'this parameter was disposed'],
    [new dyad.SafetensorsError('w.safetensors', 'no such file'), dyad.SafetensorsError, 'SafetensorsError', 'SAFETENSORS', 'w.safetensors: no such file'],
    [new dyad.StateDictError('Error(s) in loading state_dict', ['a'], [], []), dyad.StateDictError, 'StateDictError', 'STATE_DICT', 'Error(s) in loading state_dict'],
    [new dyad.DecodeError('x.png', 'truncated', 'truncated PNG', '', 'Re-download it.'), dyad.DecodeError, 'DecodeError', 'DECODE', 'cannot decode x.png: truncated PNG. Re-download it.'],
    [new dyad.DataFileError('pairs.csv', 3, 'no caption', 'Add one.'), dyad.DataFileError, 'DataFileError', 'DATA_FILE', 'pairs.csv:3: no caption. Add one.'],
    [new dyad.DataError('no labels'), dyad.DataError, 'DataError', 'DATA', 'no labels'],
    [new dyad.CLIPConfigError('bad config'), dyad.CLIPConfigError, 'CLIPConfigError', 'CLIP_CONFIG', 'bad config'],
    [new dyad.CLIPError('no weights'), dyad.CLIPError, 'CLIPError', 'CLIP', 'no weights'],
    [new dyad.CLIPTokenizerError('CLIP tokenizer: x'), dyad.CLIPTokenizerError, 'CLIPTokenizerError', 'TOKENIZER', 'CLIP tokenizer: x'],
    [new dyad.CheckpointError('damaged'), dyad.CheckpointError, 'CheckpointError', 'CHECKPOINT', 'damaged'],
    [new dyad.TrainingDivergedError('the loss became NaN'), dyad.TrainingDivergedError, 'TrainingDivergedError', 'TRAINING_DIVERGED', 'the loss became NaN'],
    [new dyad.TaskError('no probs'), dyad.TaskError, 'TaskError', 'TASK', 'no probs'],
    [new dyad.SourceError('a.jpg', 'a.jpg does not exist'), dyad.SourceError, 'SourceError', 'SOURCE', 'a.jpg does not exist'],
    [new dyad.IndexError('TABLE_NOT_FOUND', 'No search index'), dyad.IndexError, 'IndexError', 'TABLE_NOT_FOUND', 'No search index'],
    [new DyadError('ADDON', 'not built'), DyadError, 'DyadError', 'ADDON', 'not built'],
  ];
  for (const [e, cls, name, code, message] of cases) {
    assertDyad(e, cls, name, code);
    assert.ok(e.message.startsWith(message), `${name}: ${e.message}`);
    assert.ok(e.stack?.includes(name), `${name}: the stack names the class`);
  }
  // The subclasses' own fields are kept.
  const d = new dyad.DecodeError('x.png', 'truncated', 'truncated PNG', 'VipsJpeg: premature end', 'Re-download it.');
  assert.deepEqual([d.file, d.reason, d.detail], ['x.png', 'truncated', 'VipsJpeg: premature end']);
  const s = new dyad.StateDictError('m', ['a'], ['b'], [{ key: 'w', expected: [2], got: [3] }]);
  assert.deepEqual([s.missingKeys, s.unexpectedKeys, s.mismatchedKeys[0]!.key], [['a'], ['b'], 'w']);
  assert.equal(new dyad.SourceError('a.jpg', 'm').source, 'a.jpg');
  assert.equal(new dyad.DataFileError('p.csv', 7, 'r', 'f').line, 7);
  // isDyadError narrows by code.
  assert.equal(isDyadError(new dyad.DataError('x'), 'DATA', 'DECODE'), true);
  assert.equal(isDyadError(new dyad.DataError('x'), 'DECODE'), false);
  assert.equal(isDyadError(new Error('x')), false);
});

test('cause is kept', () => {
  const root = Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' });
  const made: Error[] = [
    new DyadError('DATA', 'm', { cause: root }),
    new dyad.DataError('m', { cause: root }),
    new dyad.SourceError('a.jpg', 'm', { cause: root }),
    new dyad.IndexError('DB_UNREADABLE', 'm', { cause: root }),
    new dyad.DecodeError('x.png', 'corrupt', 'corrupt', '', 'fix', { cause: root }),
    new dyad.SafetensorsError('w.safetensors', 'cannot open', { cause: root }),
    new dyad.CheckpointError('m', { cause: root }),
    new dyad.CLIPTokenizerError('m', { cause: root }),
  ];
  for (const e of made) assert.equal(e.cause, root, e.name);
  assert.equal(new dyad.TaskError('m').cause, undefined);
});

test('a missing safetensors file is a SafetensorsError that keeps the ENOENT', () => {
  const file = path.join(tmp, 'missing.safetensors');
  assert.throws(() => torchEntry.loadFile(file), (e: unknown) => {
    assertDyad(e, torchEntry.SafetensorsError, 'SafetensorsError', 'SAFETENSORS');
    assert.match((e as Error).message, /missing\.safetensors: no such file/);
    assert.equal(((e as Error).cause as NodeJS.ErrnoException).code, 'ENOENT');
    return true;
  });
});

test('a wrong-shape matmul through the addon is a TorchError with libtorch\'s shapes', () => {
  const a = torchEntry.ones([2, 3]);
  const b = torchEntry.ones([2, 3]);
  assert.throws(() => a.matmul(b), (e: unknown) => {
    assertDyad(e, torchEntry.TorchError, 'TorchError', 'TORCH');
    assert.match((e as Error).message, /2x3 and 2x3/);
    return true;
  });
  a.dispose();
  assert.throws(() => a.add(1), (e: unknown) => (assertDyad(e, torchEntry.DisposedTensorError, 'DisposedTensorError', 'DISPOSED_TENSOR'), true));
  b.dispose();
});

test('bad options surface as DyadErrors with their layer\'s code', async () => {
  // A device that does not exist, checked by libtorch.
  const t = torchEntry.zeros([1]);
  assert.throws(() => t.to('tpu:9'), (e: unknown) => (assertDyad(e, torchEntry.TorchError, 'TorchError', 'TORCH'), /tpu/.test((e as Error).message)));
  t.dispose();
  // --data mnist without --data-root.
  await assert.rejects(loadTrainData({ data: 'mnist', imageSize: 28, channels: 1, seed: 0, knnBankSize: 10 }),
    (e: unknown) => (assertDyad(e, dyad.DataError, 'DataError', 'DATA'), /--data-root/.test((e as Error).message)));
  // An activation CLIP does not have.
  assert.throws(() => dyad.parseCLIPConfig({ model_type: 'clip', text_config: { hidden_act: 'swish' } }),
    (e: unknown) => (assertDyad(e, dyad.CLIPConfigError, 'CLIPConfigError', 'CLIP_CONFIG'), /hidden_act 'swish'/.test((e as Error).message)));
});

test('missing or broken files surface with their layer\'s code', async () => {
  assert.throws(() => dyad.CLIPTokenizer.fromFile(path.join(tmp, 'no-vocab.json')),
    (e: unknown) => (assertDyad(e, dyad.CLIPTokenizerError, 'CLIPTokenizerError', 'TOKENIZER'), /no such file or folder/.test((e as Error).message)));
  const badJson = path.join(tmp, 'tokenizer.json');
  writeFileSync(badJson, '{ not json');
  assert.throws(() => dyad.CLIPTokenizer.fromFile(badJson), (e: unknown) => {
    assertDyad(e, dyad.CLIPTokenizerError, 'CLIPTokenizerError', 'TOKENIZER');
    assert.ok((e as Error).cause instanceof SyntaxError, 'the JSON parser\'s error is the cause');
    return true;
  });
  assert.throws(() => dyad.loadCheckpoint(path.join(tmp, 'last.safetensors')),
    (e: unknown) => (assertDyad(e, dyad.CheckpointError, 'CheckpointError', 'CHECKPOINT'), /does not exist/.test((e as Error).message)));
  const notImage = path.join(tmp, 'x.png');
  writeFileSync(notImage, 'not an image');
  await assert.rejects(dyad.data.decodeImage(notImage), (e: unknown) => (assertDyad(e, dyad.DecodeError, 'DecodeError', 'DECODE'), true));
});

test('an addon that is not built is a DyadError with code ADDON', () => {
  const native = fileURLToPath(new URL('../src/torch/native.js', import.meta.url));
  const script = `import(${JSON.stringify(native)}).then(() => console.log('loaded'), (e) => console.log(JSON.stringify({ name: e.name, code: e.code, message: e.message })))`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    env: { ...process.env, DYAD_ADDON: path.join(tmp, 'nope', 'dyad.node') }, encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim()) as { name: string; code: string; message: string };
  assert.equal(out.name, 'DyadError');
  assert.equal(out.code, 'ADDON');
  assert.match(out.message, /npm run build:native/);
});
