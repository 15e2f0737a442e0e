// CLIP BPE tokenizer (src/models/clip/tokenizer.ts) against an independent Python reference.
//
// test/fixtures/clip_tokenizer_expected.json holds ids computed by
// test/fixtures/clip_tokenizer_reference.py, a standard-library re-implementation of OpenAI's
// simple_tokenizer.py (ftfy replaced by NFC, \p{L}/\p{N} expanded from unicodedata). Regenerate:
//   /usr/bin/python3 test/fixtures/clip_tokenizer_reference.py > test/fixtures/clip_tokenizer_expected.json
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync, gunzipSync } from 'node:zlib';

import {
  CLIPTokenizer,
  CLIP_BPE_FILE,
  bytesToUnicode,
  cleanText,
  htmlUnescape,
  packageAssetDir,
} from '../src/models/clip/tokenizer.js';

interface Case {
  text: string;
  cleaned: string;
  ids: number[];
  clip_tokenize?: number[];
}
const fixture = JSON.parse(
  readFileSync(new URL('../../test/fixtures/clip_tokenizer_expected.json', import.meta.url), 'utf8'),
) as { cases: Case[]; vocab_size: number };

const tok = CLIPTokenizer.default();

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'dyad-clip-tok-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('default tokenizer: OpenAI vocabulary', () => {
  assert.equal(tok.vocabSize, 49408);
  assert.equal(fixture.vocab_size, 49408);
  assert.equal(tok.bosTokenId, 49406);
  assert.equal(tok.eosTokenId, 49407);
  assert.equal(tok.padId, 0);
  assert.equal(tok.contextLength, 77);
  assert.equal(tok.idToToken(0), '!');
  assert.equal(tok.idToToken(256), '!</w>');
  assert.equal(tok.tokenToId('<|endoftext|>'), 49407);
  assert.equal(bytesToUnicode().length, 256);
});

test('"a photo of a cat"', () => {
  const ids = tok.encode('a photo of a cat');
  assert.equal(ids.length, 77);
  assert.deepEqual(ids.slice(0, 7), [49406, 320, 1125, 539, 320, 2368, 49407]);
  assert.deepEqual(ids.slice(7), new Array(70).fill(0));
  assert.deepEqual(tok.encode('a photo of a cat', { pad: false }), [49406, 320, 1125, 539, 320, 2368, 49407]);
});

test(`reference fixture: ${fixture.cases.length} strings match the Python re-implementation`, () => {
  assert.ok(fixture.cases.length >= 30);
  for (const c of fixture.cases) {
    assert.equal(cleanText(c.text), c.cleaned, `cleanText(${JSON.stringify(c.text)})`);
    assert.deepEqual(tok.encode(c.text, { pad: false, truncate: false, contextLength: 1000 }), c.ids, `ids of ${JSON.stringify(c.text)}`);
    const padded = tok.encode(c.text);
    const expected = c.clip_tokenize ?? [...c.ids, ...new Array(Math.max(0, 77 - c.ids.length)).fill(0)];
    assert.deepEqual(padded, expected, `clip.tokenize of ${JSON.stringify(c.text)}`);
  }
  assert.ok(fixture.cases.some((c) => c.clip_tokenize), 'the fixture has a case longer than 77 tokens');
});

test('HTML unescape follows Python html.unescape', () => {
  assert.equal(htmlUnescape('&amp;amp;'), '&amp;');
  assert.equal(htmlUnescape(htmlUnescape('&amp;amp;')), '&');
  assert.equal(htmlUnescape('&notit; &copy2021 &#x41;&#66;&#0;&#x80;&#11;'), '\u00acit; \u00a92021 AB\ufffd\u20ac');
  assert.equal(htmlUnescape('&nosuch; & plain'), '&nosuch; & plain');
});

test('round trip: decode(encode(s)) is the cleaned lower-case text', () => {
  const plain = [
    'a photo of a cat',
    'The Quick Brown Fox Jumps Over The Lazy Dog',
    '  A   PICTURE of   many\tthings ',
    'supercalifragilisticexpialidocious words are long',
  ];
  for (const s of plain) assert.equal(tok.decode(tok.encode(s)), cleanText(s));
  assert.equal(tok.decode(tok.encode('  A   PICTURE of   many\tthings ')), 'a picture of many things');
  // With punctuation and digits CLIP inserts word breaks; the characters still round-trip.
  for (const s of ['Hello, world! It costs $3.50.', "don't panic (it's fine)", 'caf\u00e9 \u65e5\u672c \u{1F600}']) {
    assert.equal(tok.decode(tok.encode(s)).replaceAll(' ', ''), cleanText(s).replaceAll(' ', ''));
  }
  // Typed arrays and padding with other ids decode the same.
  const { ids } = tok.encodeBatch(['a photo of a cat'], { padId: tok.eosTokenId });
  assert.equal(tok.decode(ids), 'a photo of a cat');
  assert.equal(tok.decode(Int32Array.from(tok.encode('a cat'))), 'a cat');
  assert.throws(() => tok.decode([49408]), /49408.*not in the vocabulary/);
});

test('truncation keeps <|endoftext|> last; truncate: false throws', () => {
  const long = 'a photo of a ' + 'very '.repeat(100) + 'large cat';
  const ids = tok.encode(long);
  assert.equal(ids.length, 77);
  assert.equal(ids[0], 49406);
  assert.equal(ids[76], 49407);
  assert.equal(ids.filter((x) => x === 49407).length, 1);
  assert.deepEqual(tok.encode(long, { contextLength: 5 }), [49406, 320, 1125, 539, 49407]);
  assert.deepEqual(tok.encode('a photo of a cat', { contextLength: 2 }), [49406, 49407]);
  assert.throws(() => tok.encode(long, { truncate: false }), /108 tokens long.*context length 77.*truncate/);
  // Exactly 77 tokens fits without truncation.
  const fits = 'a '.repeat(75);
  assert.equal(tok.encode(fits, { truncate: false }).at(-1), 49407);
  assert.throws(() => tok.encode('a '.repeat(76), { truncate: false }), /78 tokens long/);
  assert.throws(() => tok.encode('x', { contextLength: 1 }), /contextLength 1/);
});

test('padding: pad id 0 by default, eos (HF style) on request, none with pad: false', () => {
  assert.deepEqual(tok.encode('a cat', { padId: 49407 }).slice(0, 6), [49406, 320, 2368, 49407, 49407, 49407]);
  assert.equal(tok.encode('a cat', { padId: 49407 }).length, 77);
  const hf = CLIPTokenizer.default({ padId: 49407 });
  assert.equal(hf.encode('a cat')[76], 49407);
  assert.deepEqual(tok.encode('a cat', { pad: false }), [49406, 320, 2368, 49407]);
  assert.throws(() => tok.encode('a cat', { padId: -1 }), /padId -1/);
});

test('encodeBatch: [n, 77] int64 ids and attention mask', () => {
  const texts = ['a photo of a cat', 'a dog', '', 'a photo of a ' + 'very '.repeat(100) + 'large cat'];
  const { ids, shape, attentionMask } = tok.encodeBatch(texts);
  assert.deepEqual(shape, [4, 77]);
  assert.ok(ids instanceof BigInt64Array);
  assert.ok(attentionMask instanceof BigInt64Array);
  assert.equal(ids.length, 4 * 77);
  texts.forEach((t, i) => {
    const row = Array.from(ids.subarray(i * 77, (i + 1) * 77), Number);
    assert.deepEqual(row, tok.encode(t));
    const unpadded = tok.encode(t, { pad: false });
    const mask = Array.from(attentionMask.subarray(i * 77, (i + 1) * 77), Number);
    assert.deepEqual(mask, [...new Array(unpadded.length).fill(1), ...new Array(77 - unpadded.length).fill(0)]);
  });
  assert.deepEqual(Array.from(ids.subarray(2 * 77, 2 * 77 + 3), Number), [49406, 49407, 0]);
  // HF-style eos padding: the mask still marks only real tokens.
  const hf = tok.encodeBatch(['a dog'], { padId: 49407 });
  assert.equal(hf.attentionMask.reduce((a, b) => a + b, 0n), 4n);
  // pad: false pads to the longest row.
  const short = tok.encodeBatch(['a dog', 'a photo of a cat'], { pad: false });
  assert.deepEqual(short.shape, [2, 7]);
  assert.deepEqual(Array.from(short.ids, Number), [49406, 320, 1929, 49407, 0, 0, 0, 49406, 320, 1125, 539, 320, 2368, 49407]);
  assert.deepEqual(Array.from(short.attentionMask, Number), [1, 1, 1, 1, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1]);
  assert.deepEqual(tok.encodeBatch([]).shape, [0, 77]);
});

test('the per-word BPE cache is used', () => {
  const t = CLIPTokenizer.default();
  assert.equal(t.cacheSize, 0);
  t.encode('a photo of a cat');
  assert.equal(t.cacheSize, 4); // a, photo, of, cat
  t.encode('a photo of a cat');
  assert.equal(t.cacheSize, 4);
  t.encode('a cat and a dog');
  assert.equal(t.cacheSize, 6);
  t.clearCache();
  assert.equal(t.cacheSize, 0);
  const small = CLIPTokenizer.default({ cacheCapacity: 3 });
  small.encode('one two three four five');
  assert.ok(small.cacheSize <= 3);
  assert.deepEqual(small.encode('one two three four five'), t.encode('one two three four five'));
});

/** A tiny HF-style vocabulary: the 512 byte symbols, a few merges, the special tokens. */
function tinyVocab(): { vocab: Record<string, number>; merges: Array<[string, string]> } {
  const base = bytesToUnicode().map(([, c]) => c);
  const symbols = [...base, ...base.map((c) => c + '</w>')];
  const merges: Array<[string, string]> = [
    ['c', 'a'],
    ['ca', 't</w>'],
    ['d', 'o'],
    ['do', 'g</w>'],
    ['a', 't</w>'],
    ['h', 'i</w>'],
  ];
  for (const [a, b] of merges) symbols.push(a + b);
  symbols.push('<|startoftext|>', '<|endoftext|>');
  return { vocab: Object.fromEntries(symbols.map((s, i) => [s, i])), merges };
}

test('HF formats: vocab.json + merges.txt and tokenizer.json load and agree', (t) => {
  const dir = tempDir(t);
  const { vocab, merges } = tinyVocab();
  const hfDir = join(dir, 'hf');
  const jsonDir = join(dir, 'json');
  mkdirs(hfDir, jsonDir);
  writeFileSync(join(hfDir, 'vocab.json'), JSON.stringify(vocab));
  writeFileSync(join(hfDir, 'merges.txt'), '#version: 0.2\n' + merges.map((m) => m.join(' ')).join('\n') + '\n');
  const tokenizerJson = {
    version: '1.0',
    added_tokens: [
      { id: vocab['<|startoftext|>'], content: '<|startoftext|>', special: true },
      { id: vocab['<|endoftext|>'], content: '<|endoftext|>', special: true },
    ],
    model: {
      type: 'BPE',
      unk_token: '<|endoftext|>',
      end_of_word_suffix: '</w>',
      vocab,
      // Mixed string and array merges, both accepted.
      merges: merges.map((m, i) => (i % 2 ? m.join(' ') : m)),
    },
  };
  writeFileSync(join(jsonDir, 'tokenizer.json'), JSON.stringify(tokenizerJson));

  const loaders = [
    CLIPTokenizer.fromFile(hfDir),
    CLIPTokenizer.fromFile(join(hfDir, 'vocab.json')),
    CLIPTokenizer.fromFile(join(hfDir, 'merges.txt')),
    CLIPTokenizer.fromFile(jsonDir),
    CLIPTokenizer.fromFile(join(jsonDir, 'tokenizer.json')),
  ];
  const v = (s: string) => vocab[s]!;
  // 'cat' → c a t</w> → ca t</w> → cat</w>; 'cats' has no merges past 'ca': ca t s</w>.
  const text = 'A cat, a DOG!';
  const reference = [v('<|startoftext|>'), v('a</w>'), v('cat</w>'), v(',</w>'), v('a</w>'), v('dog</w>'), v('!</w>'), v('<|endoftext|>')];
  for (const l of loaders) {
    assert.equal(l.vocabSize, 514 + merges.length);
    assert.equal(l.bosTokenId, v('<|startoftext|>'));
    assert.equal(l.eosTokenId, v('<|endoftext|>'));
    assert.deepEqual(l.encode(text, { pad: false }), reference);
    assert.deepEqual(l.encode('cats', { pad: false }).slice(1, -1), [v('ca'), v('t'), v('s</w>')]);
    assert.equal(l.decode(l.encode(text)), 'a cat , a dog !');
  }
  const batches = loaders.map((l) => Array.from(l.encodeBatch(['cat dog', 'a']).ids));
  for (const b of batches) assert.deepEqual(b, batches[0]);
});

test('the OpenAI file loads from a folder and un-gzipped, with the same ids', (t) => {
  const dir = tempDir(t);
  copyFileSync(join(packageAssetDir(), CLIP_BPE_FILE), join(dir, CLIP_BPE_FILE));
  const plain = join(dir, 'plain', 'bpe_simple_vocab_16e6.txt');
  mkdirs(join(dir, 'plain'));
  writeFileSync(plain, gunzipSync(readFileSync(join(packageAssetDir(), CLIP_BPE_FILE))));
  for (const p of [dir, plain]) {
    const other = CLIPTokenizer.fromFile(p);
    assert.equal(other.vocabSize, 49408);
    assert.deepEqual(other.encode('Hello, world! a photo of a cat'), tok.encode('Hello, world! a photo of a cat'));
  }
});

test('errors name the file and the problem', (t) => {
  const dir = tempDir(t);
  assert.throws(() => CLIPTokenizer.fromFile(join(dir, 'nope.txt.gz')), /nope\.txt\.gz: no such file/);
  assert.throws(() => CLIPTokenizer.fromFile(dir), /holds no tokenizer files/);

  // HF merges.txt with a line that is not two symbols.
  const { vocab, merges } = tinyVocab();
  const bad = join(dir, 'bad');
  mkdirs(bad);
  writeFileSync(join(bad, 'vocab.json'), JSON.stringify(vocab));
  writeFileSync(join(bad, 'merges.txt'), '#version: 0.2\nc a\nthis has three\n');
  assert.throws(() => CLIPTokenizer.fromFile(bad), /malformed merges in .*merges\.txt, line 3/);
  // A merge whose symbols are not in the vocabulary.
  writeFileSync(join(bad, 'merges.txt'), 'c a\nzz qq\n');
  assert.throws(() => CLIPTokenizer.fromFile(bad), /malformed merges .*merge 2 .*"zz".*not in the vocabulary/);
  // Broken JSON and wrong types.
  writeFileSync(join(bad, 'vocab.json'), '{"a": ');
  assert.throws(() => CLIPTokenizer.fromFile(bad), /vocab\.json is not valid JSON/);
  writeFileSync(join(bad, 'vocab.json'), JSON.stringify({ a: 'x' }));
  assert.throws(() => CLIPTokenizer.fromFile(bad), /vocab\.json.*"a" to "x"/);
  // No special tokens.
  writeFileSync(join(bad, 'vocab.json'), JSON.stringify({ c: 0, a: 1, ca: 2 }));
  writeFileSync(join(bad, 'merges.txt'), 'c a\n');
  assert.throws(() => CLIPTokenizer.fromFile(bad), /no <\|startoftext\|> token/);
  // tokenizer.json with a malformed merge.
  const tj = join(dir, 'tj', 'tokenizer.json');
  mkdirs(join(dir, 'tj'));
  writeFileSync(tj, JSON.stringify({ model: { type: 'BPE', vocab, merges: [...merges, ['a']] } }));
  assert.throws(() => CLIPTokenizer.fromFile(tj), /malformed merges in .*tokenizer\.json, model\.merges\[6\]/);
  writeFileSync(tj, JSON.stringify({ model: { type: 'WordPiece', vocab } }));
  assert.throws(() => CLIPTokenizer.fromFile(tj), /WordPiece model; CLIP needs BPE/);

  // OpenAI file: truncated gzip, too few merges, a malformed line.
  const gz = readFileSync(join(packageAssetDir(), CLIP_BPE_FILE));
  const cut = join(dir, 'cut.txt.gz');
  writeFileSync(cut, gz.subarray(0, 1000));
  assert.throws(() => CLIPTokenizer.fromFile(cut), /cut\.txt\.gz is not a valid gzip file/);
  const lines = gunzipSync(gz).toString('utf8').split('\n');
  const short = join(dir, 'short.txt.gz');
  writeFileSync(short, gzipSync(lines.slice(0, 1000).join('\n')));
  assert.throws(() => CLIPTokenizer.fromFile(short), /short\.txt\.gz has 999 merges.*48894.*truncated/);
  const mangled = lines.slice();
  mangled[5] = 'one two three';
  const badLine = join(dir, 'badline.txt.gz');
  writeFileSync(badLine, gzipSync(mangled.join('\n')));
  assert.throws(() => CLIPTokenizer.fromFile(badLine), /malformed merges in .*badline\.txt\.gz, line 6/);
  const binary = join(dir, 'binary.txt');
  writeFileSync(binary, Buffer.from([0xff, 0xfe, 0x00, 0x80]));
  assert.throws(() => CLIPTokenizer.fromFile(binary), /binary\.txt is not UTF-8 text/);
});

function mkdirs(...dirs: string[]): void {
  for (const d of dirs) mkdirSync(d, { recursive: true });
}
