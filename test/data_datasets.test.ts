import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import sharp from 'sharp';
import { folderMaker, tempDir } from './helpers/tmp.js';
import {
  DataFileError, DecodeError, FashionMNIST, ImageFolder, ImageTextPairs, MNIST, Rng, Subset, balancedSubset, parseCsv, randomSplit,
} from '../src/data/index.js';

const tmp = tempDir('datasets');
/** A fresh folder under the test's temp dir. */
const folder = folderMaker(tmp);

/** Writes a small solid-colour image; the format follows the extension. */
async function img(file: string, rgb: [number, number, number] = [200, 40, 40], w = 8, h = 6): Promise<void> {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  await sharp({ create: { width: w, height: h, channels: 3, background: { r: rgb[0], g: rgb[1], b: rgb[2] } } }).toFile(file);
}

function rel(ds: ImageFolder): string[] {
  return ds.paths.map((p) => path.relative(ds.root, p).split(path.sep).join('/'));
}

describe('ImageFolder', () => {
  it('nested class folders: sorted classes, labels, recursive, extension case, hidden skipped', async () => {
    const root = folder('nested');
    await img(path.join(root, 'dog', 'c.PNG'), [0, 0, 255]);
    await img(path.join(root, 'cat', 'sub', 'b.jpg'));
    await img(path.join(root, 'cat', 'a.png'));
    await img(path.join(root, '.hidden', 'x.png'));
    fs.writeFileSync(path.join(root, 'dog', 'notes.txt'), 'not an image');
    const ds = await ImageFolder.open(root, { size: [4, 4] });
    assert.deepEqual(ds.names, ['cat', 'dog']);
    assert.deepEqual(rel(ds), ['cat/a.png', 'cat/sub/b.jpg', 'dog/c.PNG']);
    assert.deepEqual(Array.from(ds.labels), [0, 0, 1]);
    assert.equal(ds.length, 3);
    assert.deepEqual(ds.classCounts(), [2, 1]);
    const s = await ds.get(2);
    assert.deepEqual([s.label, s.index, s.image.height, s.image.width, s.image.channels], [1, 2, 4, 4, 3]);
    assert.equal(s.path, ds.paths[2]);
    assert.ok(s.image.data[2]! > 240 && s.image.data[0]! < 10, 'blue image');
    const batch = await ds.getBatch([2, 0]);
    assert.deepEqual(batch.map((b) => b.index), [2, 0]);
    await assert.rejects(ds.get(3), RangeError);
  });

  it('deterministic, locale-independent order', async () => {
    const root = folder('order');
    const names = ['b10.png', 'b2.png', 'B1.png', 'a b.png', 'é.png', 'Z.png', '_u.png'];
    for (const n of names) await img(path.join(root, 'k', n));
    await img(path.join(root, 'k-x', 'z.png'));
    const a = await ImageFolder.open(root);
    const b = await ImageFolder.open(root);
    assert.deepEqual(a.paths, b.paths);
    // code-unit order: space < uppercase < '_' < lowercase < 'é'; folder 'k' before 'k-x'
    assert.deepEqual(rel(a), ['k/B1.png', 'k/Z.png', 'k/_u.png', 'k/a b.png', 'k/b10.png', 'k/b2.png', 'k/é.png', 'k-x/z.png']);
    assert.deepEqual(a.names, ['k', 'k-x']);
  });

  it('extension filter', async () => {
    const root = folder('ext');
    await img(path.join(root, 'a', '1.png'));
    await img(path.join(root, 'a', '2.jpg'));
    await img(path.join(root, 'b', '3.webp'));
    assert.equal((await ImageFolder.open(root)).length, 3);
    const pngOnly = await ImageFolder.open(root, { extensions: ['PNG', '.webp'] });
    assert.deepEqual(rel(pngOnly), ['a/1.png', 'b/3.webp']);
  });

  it('flat folder is unlabeled', async () => {
    const root = folder('flat');
    await img(path.join(root, '2.png'));
    await img(path.join(root, '1.png'));
    fs.mkdirSync(path.join(root, 'emptysub'));
    const ds = await ImageFolder.open(root);
    assert.deepEqual(ds.names, []);
    assert.deepEqual(Array.from(ds.labels), [-1, -1]);
    assert.deepEqual(rel(ds), ['1.png', '2.png']);
    assert.equal((await ds.get(0)).label, -1);
    await assert.rejects(ImageFolder.open(root, { labels: 'folders' }), /no class subfolders/);
  });

  it('mixed folder: root-level images ignored with a warning; labels: none takes all', async () => {
    const root = folder('mixed');
    await img(path.join(root, 'loose.png'));
    await img(path.join(root, 'cat', 'a.png'));
    await img(path.join(root, 'dog', 'deep', 'b.png'));
    const warnings: string[] = [];
    const ds = await ImageFolder.open(root, { onWarning: (m) => warnings.push(m) });
    assert.deepEqual(rel(ds), ['cat/a.png', 'dog/deep/b.png']);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /ignoring 1 image\(s\) directly in .*loose\.png/);
    const all = await ImageFolder.open(root, { labels: 'none' });
    assert.deepEqual(rel(all), ['cat/a.png', 'dog/deep/b.png', 'loose.png']);
    assert.deepEqual(all.names, []);
  });

  it('empty class folder is an error unless allowEmptyClasses', async () => {
    const root = folder('emptyclass');
    await img(path.join(root, 'a', '1.png'));
    fs.mkdirSync(path.join(root, 'b'));
    await img(path.join(root, 'c', '2.png'));
    await assert.rejects(ImageFolder.open(root), /class folder\(s\) without images .*: b .*allowEmptyClasses/);
    const ds = await ImageFolder.open(root, { allowEmptyClasses: true });
    assert.deepEqual(ds.names, ['a', 'b', 'c']);
    assert.deepEqual(Array.from(ds.labels), [0, 2]);
  });

  it('missing root, file as root, empty folder', async () => {
    const missing = path.join(tmp, 'does-not-exist');
    await assert.rejects(ImageFolder.open(missing), (e: Error) => e.message.includes(missing) && /does not exist/.test(e.message));
    const file = path.join(folder('file'), 'x.png');
    await img(file);
    await assert.rejects(ImageFolder.open(file), /is a file, not a folder/);
    const empty = folder('empty');
    await assert.rejects(ImageFolder.open(empty), /no images found under .*The folder is empty/);
    fs.writeFileSync(path.join(empty, 'a.bmp'), 'x');
    await assert.rejects(ImageFolder.open(empty), /only files with other extensions: \.bmp \(1\)/);
  });

  describe('bad files', () => {
    let root: string;
    before(async () => {
      root = folder('bad');
      await img(path.join(root, 'x', 'a_good.png'));
      const noise = Buffer.alloc(48 * 48 * 3);
      for (let i = 0; i < noise.length; i++) noise[i] = (i * 2654435761) >>> 24;
      const jpg = await sharp(noise, { raw: { width: 48, height: 48, channels: 3 } }).jpeg().toBuffer();
      fs.writeFileSync(path.join(root, 'x', 'b_trunc.jpg'), jpg.subarray(0, jpg.length >> 1));
      fs.writeFileSync(path.join(root, 'x', 'c_empty.png'), Buffer.alloc(0));
      await img(path.join(root, 'y', 'e_good.webp'));
      fs.writeFileSync(path.join(root, 'y', 'd_random.jpg'), Buffer.from('definitely not a jpeg, just some text'));
    });

    it("onError 'fail' (default) throws the first bad file's DecodeError", async () => {
      const ds = await ImageFolder.open(root);
      assert.equal(ds.length, 5);
      await assert.rejects(ds.getBatch([0, 1, 2, 3, 4]), (e: unknown) => e instanceof DecodeError && /b_trunc\.jpg: truncated JPEG/.test(e.message));
      await assert.rejects(ds.get(2), (e: unknown) => e instanceof DecodeError && /c_empty\.png: empty file.*onError: 'skip'/.test(e.message));
      await assert.rejects(ds.validate(), (e: unknown) => e instanceof DecodeError && /b_trunc\.jpg/.test(e.message));
    });

    it("onError 'skip' drops bad files from batches with one warning", async () => {
      const warnings: string[] = [];
      const ds = await ImageFolder.open(root, { onError: 'skip', onWarning: (m) => warnings.push(m) });
      const batch = await ds.getBatch([0, 1, 2, 3, 4]);
      assert.deepEqual(batch.map((s) => s.index), [0, 4]);
      assert.equal(warnings.length, 1);
      assert.match(warnings[0]!, /skipped 3 undecodable image\(s\).*b_trunc\.jpg \(truncated JPEG\).*c_empty\.png \(empty file/);
      assert.match(warnings[0]!, /d_random\.jpg \(not a recognised image format/);
      assert.equal(ds.badFiles.size, 3);
      await ds.getBatch([1, 2, 3, 4]); // known bad files: silent
      assert.equal(warnings.length, 1);
      await assert.rejects(ds.get(1), DecodeError); // nothing to return for one bad file
    });

    it("validate() under 'skip' removes bad files once", async () => {
      const warnings: string[] = [];
      const ds = await ImageFolder.open(root, { onError: 'skip', onWarning: (m) => warnings.push(m), validate: true });
      assert.deepEqual(rel(ds), ['x/a_good.png', 'y/e_good.webp']);
      assert.deepEqual(Array.from(ds.labels), [0, 1]);
      assert.equal(warnings.length, 1);
      assert.match(warnings[0]!, /removed 3 of 5 images/);
      assert.equal((await ds.getBatch([0, 1])).length, 2);
    });
  });
});

// ------------------------------------------------------------------ IDX / MNIST

function idx(type: 'images' | 'labels', data: number[], dims: number[]): Buffer {
  const header = Buffer.alloc(4 + 4 * dims.length);
  header.writeUInt32BE(type === 'images' ? 0x803 : 0x801, 0);
  dims.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([header, Buffer.from(data)]);
}

describe('MNIST / FashionMNIST', () => {
  const pixels = Array.from({ length: 3 * 2 * 2 }, (_, i) => i * 10);
  const labels = [3, 0, 9];

  function writeSplit(root: string, gz: boolean, mutate?: (imgs: Buffer) => Buffer): void {
    const z = (b: Buffer) => (gz ? zlib.gzipSync(b) : b);
    const sfx = gz ? '.gz' : '';
    const imgs = idx('images', pixels, [3, 2, 2]);
    fs.writeFileSync(path.join(root, `train-images-idx3-ubyte${sfx}`), z(mutate ? mutate(imgs) : imgs));
    fs.writeFileSync(path.join(root, `train-labels-idx1-ubyte${sfx}`), z(idx('labels', labels, [3])));
  }

  it('reads tiny IDX files, plain and gzipped, identically', async () => {
    const plain = folder('idx-plain');
    const gz = folder('idx-gz');
    writeSplit(plain, false);
    writeSplit(gz, true);
    const a = await MNIST.open({ root: plain });
    const b = await MNIST.open({ root: gz, train: true });
    for (const ds of [a, b]) {
      assert.ok(ds instanceof MNIST);
      assert.equal(ds.length, 3);
      assert.deepEqual([ds.height, ds.width], [2, 2]);
      assert.deepEqual(Array.from(ds.images), pixels);
      assert.deepEqual(Array.from(ds.labels), labels);
      const s = await ds.get(1);
      assert.deepEqual([s.label, s.index, s.image.channels, s.image.height, s.image.width], [0, 1, 1, 2, 2]);
      assert.deepEqual(Array.from(s.image.data), [40, 50, 60, 70]);
      s.image.data[0] = 255; // a copy: the dataset is untouched
      assert.equal(ds.images[4], 40);
    }
    const rgb = await MNIST.open({ root: plain, channels: 3 });
    assert.deepEqual(Array.from((await rgb.get(0)).image.data.subarray(0, 6)), [0, 0, 0, 10, 10, 10]);
    await assert.rejects(MNIST.open({ root: plain, train: false }), /no test images file .*t10k-images-idx3-ubyte\[\.gz\]/);
  });

  it('rejects truncated, corrupt and mismatched files with clear errors', async () => {
    const trunc = folder('idx-trunc');
    writeSplit(trunc, false, (b) => b.subarray(0, b.length - 1));
    await assert.rejects(MNIST.open({ root: trunc }), /train-images-idx3-ubyte: truncated file, the header says 3×2×2 = 12 values but only 11 bytes follow/);

    const truncGz = folder('idx-trunc-gz');
    writeSplit(truncGz, true);
    const f = path.join(truncGz, 'train-images-idx3-ubyte.gz');
    const full = fs.readFileSync(f);
    fs.writeFileSync(f, full.subarray(0, full.length - 10));
    await assert.rejects(MNIST.open({ root: truncGz }), /train-images-idx3-ubyte\.gz: truncated or corrupt gzip data/);

    const magic = folder('idx-magic');
    writeSplit(magic, false, (b) => {
      const c = Buffer.from(b);
      c[0] = 0x42;
      return c;
    });
    await assert.rejects(MNIST.open({ root: magic }), /bad magic number 0x42000803/);

    const swapped = folder('idx-swapped');
    fs.writeFileSync(path.join(swapped, 'train-images-idx3-ubyte'), idx('labels', labels, [3]));
    fs.writeFileSync(path.join(swapped, 'train-labels-idx1-ubyte'), idx('labels', labels, [3]));
    await assert.rejects(MNIST.open({ root: swapped }), /expected a 3-dimensional array .*swapped/);

    const count = folder('idx-count');
    fs.writeFileSync(path.join(count, 'train-images-idx3-ubyte'), idx('images', pixels, [3, 2, 2]));
    fs.writeFileSync(path.join(count, 'train-labels-idx1-ubyte'), idx('labels', [1, 2], [2]));
    await assert.rejects(MNIST.open({ root: count }), /has 3 images but .* has 2 labels/);

    const badLabel = folder('idx-label');
    fs.writeFileSync(path.join(badLabel, 'train-images-idx3-ubyte'), idx('images', pixels, [3, 2, 2]));
    fs.writeFileSync(path.join(badLabel, 'train-labels-idx1-ubyte'), idx('labels', [1, 12, 2], [3]));
    await assert.rejects(MNIST.open({ root: badLabel }), /label 12 at index 1 is out of range for 10 classes/);

    await assert.rejects(MNIST.open(), /MNIST: pass root/);
    await assert.rejects(MNIST.open({ root: path.join(tmp, 'nowhere') }), /does not exist/);
  });

  it('FashionMNIST from the Debian package: 60000/10000, labels 0..9, 28×28', async (t) => {
    if (!fs.existsSync(FashionMNIST.DEFAULT_ROOT)) return t.skip(`${FashionMNIST.DEFAULT_ROOT} missing (apt-get install dataset-fashion-mnist)`);
    const test = await FashionMNIST.open({ train: false });
    assert.equal(test.length, 10000);
    assert.equal(test.images.length, 10000 * 28 * 28);
    assert.deepEqual(test.names, ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot']);
    const counts = new Array(10).fill(0);
    for (const l of test.labels) counts[l]++;
    assert.deepEqual(counts, new Array(10).fill(1000));
    const s = await test.get(0);
    assert.deepEqual([s.image.height, s.image.width, s.image.channels, s.image.data.length], [28, 28, 1, 784]);
    assert.equal(s.label, 9); // the first test image is an ankle boot
    const train = await FashionMNIST.open({ train: true });
    assert.equal(train.length, 60000);
    assert.ok(train instanceof FashionMNIST);
    assert.ok(train.labels.every((l) => l >= 0 && l < 10));
  });
});

// ------------------------------------------------------------------ image-text pairs

describe('ImageTextPairs', () => {
  let root: string;
  before(async () => {
    root = folder('pairs');
    await img(path.join(root, 'img', 'a.png'), [255, 0, 0]);
    await img(path.join(root, 'img', 'b.jpg'), [0, 255, 0]);
  });

  it('CSV with RFC-4180 quoting, relative paths, extra columns', async () => {
    const csv = '\ufeffid,path,caption\r\n1,img/a.png,"a red square, very ""red"""\r\n2,img/b.jpg,"two\nlines"\r\n\r\n';
    fs.writeFileSync(path.join(root, 'pairs.csv'), csv);
    const ds = await ImageTextPairs.open(path.join(root, 'pairs.csv'), { size: [4, 4] });
    assert.equal(ds.length, 2);
    assert.deepEqual(ds.captions, ['a red square, very "red"', 'two\nlines']);
    assert.equal(ds.paths[0], path.join(root, 'img', 'a.png'));
    const s = await ds.get(0);
    assert.deepEqual([s.caption, s.label, s.index, s.image.height], ['a red square, very "red"', -1, 0, 4]);
    assert.ok(s.image.data[0]! > 240);
    assert.deepEqual(ds.names, []);
  });

  it('JSONL', async () => {
    const file = path.join(root, 'pairs.jsonl');
    fs.writeFileSync(file, '{"path": "img/b.jpg", "caption": "green"}\n\n{"path": "' + path.join(root, 'img', 'a.png').replace(/\\/g, '\\\\') + '", "caption": "red"}\n');
    const ds = await ImageTextPairs.open(file);
    assert.deepEqual(ds.captions, ['green', 'red']);
    const [g, r] = await ds.getBatch([0, 1]);
    assert.ok(g!.image.data[1]! > 200 && r!.image.data[0]! > 200);
  });

  it('malformed rows name the file and line', async () => {
    const jsonl = path.join(root, 'bad.jsonl');
    fs.writeFileSync(jsonl, '{"path": "img/a.png", "caption": "ok"}\n{"path": "img/b.jpg", "caption": "ok"}\n{"path": "img/a.png", "caption": \n');
    await assert.rejects(ImageTextPairs.open(jsonl), (e: unknown) => e instanceof DataFileError && e.line === 3 && e.message.startsWith(`${jsonl}:3: invalid JSON`));
    fs.writeFileSync(jsonl, '{"path": "img/a.png"}\n');
    await assert.rejects(ImageTextPairs.open(jsonl), /bad\.jsonl:1: "caption" must be a string, found no such key/);

    const csv = path.join(root, 'bad.csv');
    fs.writeFileSync(csv, 'path,caption\nimg/a.png,ok\nimg/b.jpg,one,two\n');
    await assert.rejects(ImageTextPairs.open(csv), /bad\.csv:3: expected 2 fields like the header, found 3/);
    fs.writeFileSync(csv, 'path,caption\nimg/a.png,"unterminated\nimg/b.jpg,x\n');
    await assert.rejects(ImageTextPairs.open(csv), /bad\.csv:2: unterminated quoted field/);
    fs.writeFileSync(csv, 'file,text\nimg/a.png,x\n');
    await assert.rejects(ImageTextPairs.open(csv), /bad\.csv:1: header must have columns 'path' and 'caption', found 'file', 'text'/);
    const ok = await ImageTextPairs.open(csv, { columns: { path: 'file', caption: 'text' } });
    assert.equal(ok.length, 1);
    await assert.rejects(ImageTextPairs.open(path.join(root, 'pairs.txt')), /cannot tell the format/);
    await assert.rejects(ImageTextPairs.open(path.join(root, 'missing.csv')), /missing\.csv: file not found/);
  });

  it('parseCsv edge cases', () => {
    assert.deepEqual(parseCsv('a,b\n,\n"",x\r"q""q",\n').map((r) => [r.fields, r.line]), [
      [['a', 'b'], 1], [['', ''], 2], [['', 'x'], 3], [['q"q', ''], 4],
    ]);
    assert.throws(() => parseCsv('a\n"x"y\n', 'f.csv'), /f\.csv:2: unexpected text after a closing quote/);
  });
});

// ------------------------------------------------------------------ subsets

describe('balancedSubset, Subset, randomSplit', () => {
  const labels = [...new Array(100).fill(0), ...new Array(50).fill(1), ...new Array(10).fill(2)];
  const countBy = (idx: number[]) => [0, 1, 2].map((c) => idx.filter((i) => labels[i] === c).length);

  it('per-class counts, sorted, at least one per class', () => {
    const f = balancedSubset(labels, 0.1, 1);
    assert.deepEqual(countBy(f), [10, 5, 1]);
    assert.deepEqual(f, [...f].sort((a, b) => a - b));
    assert.equal(new Set(f).size, f.length);
    assert.deepEqual(countBy(balancedSubset(labels, { perClass: 5 }, 1)), [5, 5, 5]);
    assert.deepEqual(countBy(balancedSubset(labels, { perClass: 20 }, 1)), [20, 20, 10]);
    assert.deepEqual(countBy(balancedSubset(labels, 0.001, 1)), [1, 1, 1]);
    assert.equal(balancedSubset(labels, 1, 1).length, labels.length);
    assert.throws(() => balancedSubset(labels, 0), RangeError);
    assert.throws(() => balancedSubset(labels, { perClass: 0 }), RangeError);
    assert.throws(() => balancedSubset([0, -1], 0.5), /label -1/);
  });

  it('deterministic by seed; another seed gives another subset', () => {
    assert.deepEqual(balancedSubset(labels, 0.2, 7), balancedSubset(labels, 0.2, 7));
    assert.notDeepEqual(balancedSubset(labels, 0.2, 7), balancedSubset(labels, 0.2, 8));
    const a = new Rng(3);
    const b = new Rng(3);
    for (let i = 0; i < 100; i++) assert.equal(a.nextUint32(), b.nextUint32());
    const r = new Rng(-5);
    for (let i = 0; i < 1000; i++) {
      const v = r.int(7);
      assert.ok(Number.isInteger(v) && v >= 0 && v < 7);
      const x = r.next();
      assert.ok(x >= 0 && x < 1);
    }
  });

  it('Subset and randomSplit over a real dataset', async () => {
    const root = folder('split');
    for (let i = 0; i < 5; i++) await img(path.join(root, i < 3 ? 'a' : 'b', `${i}.png`), [i * 50, 0, 0]);
    const ds = await ImageFolder.open(root);
    const sub = new Subset(ds, balancedSubset(ds.labels, { perClass: 1 }, 0));
    assert.equal(sub.length, 2);
    assert.deepEqual(Array.from(sub.labels!), [0, 1]);
    assert.deepEqual(sub.names, ['a', 'b']);
    const s = await sub.get(1);
    assert.equal(s.index, 1);
    assert.equal(s.label, 1);
    assert.deepEqual((await sub.getBatch([1, 0])).map((x) => x.index), [1, 0]);
    assert.throws(() => new Subset(ds, [5]), /out of range/);

    const [train, val] = randomSplit(ds, [0.6, 0.4], 42);
    assert.deepEqual([train!.length, val!.length], [3, 2]);
    const all = [...train!.indices, ...val!.indices].sort();
    assert.deepEqual(all, [0, 1, 2, 3, 4]);
    assert.deepEqual(Array.from(randomSplit(ds, [0.6, 0.4], 42)[0]!.indices), Array.from(train!.indices));
    const [p, q] = randomSplit(ds, [4, 1], 1);
    assert.deepEqual([p!.length, q!.length], [4, 1]);
    assert.throws(() => randomSplit(ds, [2, 2]), /sum to 4, but the dataset has 5/);
    const [x, y] = randomSplit({ length: 25, names: [], get: async () => { throw new Error(); }, getBatch: async () => [] }, [0.9, 0.1]);
    assert.deepEqual([x!.length, y!.length], [23, 2]);
  });
});
