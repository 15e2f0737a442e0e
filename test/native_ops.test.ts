// The typed native boundary (src/torch/native_ops.ts) against the addon it describes: the op
// names equal the loaded addon's `opNames` both ways, the core names equal its other exports,
// and each op's readers match the `a.<reader>(i)` calls of its line in native/src/ops.cc.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';

import { N, packageRoot } from '../src/torch/native.js';
import {
  NATIVE_ARG_KINDS, NATIVE_CORE_NAMES, NATIVE_OP_NAMES, NATIVE_OP_SIGNATURES, NATIVE_RETURN_KINDS, type NativeOpName,
} from '../src/torch/native_ops.js';

/** Names in `a` that are not in `b`. */
const missingFrom = (a: Iterable<string>, b: Iterable<string>): string[] => {
  const s = new Set(b);
  return [...a].filter((x) => !s.has(x));
};

test("NATIVE_OP_NAMES equals the addon's opNames, both ways", () => {
  const addon = [...N.opNames];
  assert.equal(new Set(addon).size, addon.length, 'the addon lists an op twice');
  const untyped = missingFrom(addon, NATIVE_OP_NAMES);
  const gone = missingFrom(NATIVE_OP_NAMES, addon);
  assert.deepEqual(untyped, [], `ops in the addon without a signature in NATIVE_OP_SIGNATURES: ${untyped.join(', ')}`);
  assert.deepEqual(gone, [], `signatures in NATIVE_OP_SIGNATURES for ops the addon does not have: ${gone.join(', ')}`);
  assert.equal(NATIVE_OP_NAMES.length, addon.length);
});

test('NATIVE_CORE_NAMES equals the addon\'s other exports, and every name is a function', () => {
  const ops = new Set<string>(N.opNames);
  const core = Object.keys(N).filter((k) => k !== 'opNames' && !ops.has(k));
  const untyped = missingFrom(core, NATIVE_CORE_NAMES);
  const gone = missingFrom(NATIVE_CORE_NAMES, core);
  assert.deepEqual(untyped, [], `core exports of the addon missing from NativeCore: ${untyped.join(', ')}`);
  assert.deepEqual(gone, [], `NativeCore functions the addon does not export: ${gone.join(', ')}`);
  const overlap = NATIVE_CORE_NAMES.filter((n) => ops.has(n));
  assert.deepEqual(overlap, [], `names both core and op: ${overlap.join(', ')}`);
  const table = N as unknown as Record<string, unknown>;
  for (const name of [...NATIVE_CORE_NAMES, ...NATIVE_OP_NAMES]) assert.equal(typeof table[name], 'function', name);
});

/** Parses `'t, ts, s -> T'` into readers and result. */
function parse(sig: string): { readers: string[]; result: string } {
  const m = /^(.+) -> (.+)$/.exec(sig);
  assert.ok(m, `malformed signature '${sig}'`);
  return { readers: m[1]!.split(', '), result: m[2]! };
}

test('every signature uses known readers and results', () => {
  for (const name of NATIVE_OP_NAMES) {
    const { readers, result } = parse(NATIVE_OP_SIGNATURES[name]);
    for (const r of readers) assert.ok((NATIVE_ARG_KINDS as readonly string[]).includes(r), `${name}: unknown reader '${r}'`);
    assert.ok((NATIVE_RETURN_KINDS as readonly string[]).includes(result), `${name}: unknown result '${result}'`);
  }
});

/**
 * The readers each op's line in ops.cc calls, by argument position (helpers such as `sumOp(a)`
 * are followed into their bodies), mapped to this file's reader names: `opts(i)` is the dtype at i
 * and the device at i+1, a reader guarded by `a.has(i)` accepts null, a position read both as
 * `x` and `ox` on two branches is `x`, and lerp's `a.raw(2).IsNumber() ? a.s(2) : a.t(2)` is `tn`.
 */
function opsCcReaders(): Map<string, { readers: string[]; inPlace: boolean }> {
  const src = readFileSync(path.join(packageRoot(), 'native', 'src', 'ops.cc'), 'utf8');
  const helpers = new Map<string, string>();
  for (const m of src.matchAll(/^at::Tensor (\w+)\(Args& a\) \{\n([\s\S]*?)^\}/gm)) helpers.set(m[1]!, m[2]!);
  const out = new Map<string, { readers: string[]; inPlace: boolean }>();
  for (const m of src.matchAll(/^\s*(OPV?)\("(\w+)", (.*)\),$/gm)) {
    let body = m[3]!;
    for (const [h, hb] of helpers) if (body.includes(`${h}(a)`)) body = hb;
    const at = new Map<number, Set<string>>();
    const add = (i: number, r: string): void => void (at.get(i) ?? at.set(i, new Set()).get(i)!).add(r);
    for (const [, r, i] of body.matchAll(/a\.(\w+)\((\d+)\)/g)) {
      if (r === 'opts') {
        add(Number(i), 'odt');
        add(Number(i) + 1, 'odev');
      } else add(Number(i), r!);
    }
    const readers: string[] = [];
    for (let i = 0; i < at.size; i++) {
      const rs = at.get(i);
      assert.ok(rs, `${m[2]}: no reader for argument ${i} in ops.cc`);
      const has = rs.delete('has');
      for (const r of [...rs]) if (rs.has(`o${r}`)) rs.delete(`o${r}`); // norm: a.s(1) or a.os(1), so a number
      let r: string;
      if (rs.has('raw') && rs.has('s') && rs.has('t')) r = 'tn';
      else {
        assert.equal(rs.size, 1, `${m[2]}: argument ${i} read as ${[...rs].join(' and ')}`);
        r = [...rs][0]!;
      }
      if (r === 'mf') r = 'omf'; // Args::mf checks a.has(i) itself
      if (has && !r.startsWith('o')) r = `o${r}`;
      readers.push(r);
    }
    out.set(m[2]!, { readers, inPlace: m[1] === 'OPV' });
  }
  return out;
}

test("each signature's readers match its line in native/src/ops.cc", () => {
  const cc = opsCcReaders();
  assert.deepEqual(missingFrom(cc.keys(), NATIVE_OP_NAMES), [], 'ops.cc lines without a signature');
  assert.deepEqual([...cc.keys()], NATIVE_OP_NAMES, 'NATIVE_OP_SIGNATURES is in ops.cc order');
  const wrong: string[] = [];
  for (const name of NATIVE_OP_NAMES) {
    const { readers, result } = parse(NATIVE_OP_SIGNATURES[name as NativeOpName]);
    const c = cc.get(name)!;
    if (readers.join(', ') !== c.readers.join(', ')) wrong.push(`${name}: typed '${readers.join(', ')}', ops.cc reads '${c.readers.join(', ')}'`);
    if (c.inPlace !== (result === 'void')) wrong.push(`${name}: ${c.inPlace ? 'an OPV (in place) returns void' : `an OP returns a value, typed ${result}`}`);
  }
  assert.deepEqual(wrong, []);
});

test('typed calls reach the addon: omitted trailing options, tuples, lists, void', () => {
  const h = N.arange(0, 6, 1, 'float32');
  const m = N.view(h, [2, 3]);
  const s = N.sum(m, null, false, null);
  assert.equal(N.item(s), 15);
  const z = N.zeros([2]);
  assert.deepEqual(N.info(z), [[2], 'float32', 'cpu']);
  const [values, indices] = N.maxDim(m, 1, false);
  assert.deepEqual(N.info(indices)[0], [2]);
  const parts = N.chunk(h, 3, 0);
  assert.equal(parts.length, 3);
  assert.equal(N.add_(z, 1, 1), undefined);
  for (const x of [h, m, s, z, values, indices, ...parts]) N.free(x);
});
