// data/files.ts: the one list of image extensions and the one directory walker, on real folders
// (real files written with sharp, real symbolic links), and the three callers agreeing on them.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { ImageFolder, comparePaths, extensionSet, imageExtensions, isImageFile, supportedFormats, walkImages } from '../src/data/index.js';
import { globImages } from '../src/data/sources.js';
import { scanImages } from '../src/search/index.js';
import { folderMaker, tempDir } from './helpers/tmp.js';

const tmp = tempDir('files');
/** A fresh folder under the test's temp dir. */
const folder = folderMaker(tmp);

async function img(file: string): Promise<void> {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  await sharp({ create: { width: 4, height: 4, channels: 3, background: { r: 10, g: 20, b: 30 } } }).png().toFile(file);
}

/** A tree exercising order, nesting, case, hidden entries and non-images. */
async function tree(): Promise<string> {
  const root = folder('tree');
  for (const f of ['a-b/x.png', 'a/x.png', 'a/b/c.jpg', 'B.PNG', 'a.webp', 'z/deep/er/y.tiff', '.hidden/h.png', 'a/.h.png']) {
    await img(path.join(root, f));
  }
  fs.writeFileSync(path.join(root, 'a', 'notes.txt'), 'text');
  fs.writeFileSync(path.join(root, 'logo.svg'), '<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"/>');
  fs.mkdirSync(path.join(root, 'empty'));
  return root;
}

const TREE_ORDER = ['B.PNG', 'a/b/c.jpg', 'a/x.png', 'a-b/x.png', 'a.webp', 'z/deep/er/y.tiff'];

describe('image extensions', () => {
  it('are the raster formats sharp decodes, lower case with the dot, one list', () => {
    const exts = imageExtensions();
    for (const e of ['.jpg', '.jpeg', '.png', '.webp', '.gif', '.tif', '.tiff']) assert.ok(exts.includes(e), e);
    assert.ok(!exts.includes('.svg'), 'SVG is vector art, not a dataset image');
    assert.ok(!exts.includes('.heic'), 'HEIC is not in the format table (the prebuilt libvips reads only AVIF of HEIF)');
    assert.equal(exts.includes('.avif'), supportedFormats().includes('AVIF'));
    for (const e of exts) assert.match(e, /^\.[a-z0-9]+$/);
    assert.deepEqual(supportedFormats().slice(0, 5), ['JPEG', 'PNG', 'WebP', 'GIF', 'TIFF']);
  });

  it('isImageFile and extensionSet: case-insensitive, with or without the dot', () => {
    assert.equal(isImageFile('photos/Cat.JPG'), true);
    assert.equal(isImageFile('a.tar.png'), true);
    assert.equal(isImageFile('logo.svg'), false);
    assert.equal(isImageFile('notes.txt'), false);
    assert.equal(isImageFile('png'), false, 'a name without an extension');
    assert.equal(isImageFile('x.SVG', ['svg']), true);
    assert.deepEqual([...extensionSet(['PNG', '.Jpg', ' webp '])], ['.png', '.jpg', '.webp']);
    assert.throws(() => extensionSet([]), /extensions must not be empty/);
  });
});

describe('comparePaths', () => {
  it('orders segment by segment by code units, no locale', () => {
    const paths = ['a.webp', 'a-b/x.png', 'a/x.png', 'B.PNG', 'a/b/c.jpg', 'z/deep/er/y.tiff'];
    assert.deepEqual([...paths].sort(comparePaths), TREE_ORDER);
    assert.ok(comparePaths('a/x', 'a-b/x') < 0, 'folder a before folder a-b ("/" > "-" as a character)');
    assert.ok(comparePaths('Z.png', 'a.png') < 0, 'upper case first');
    assert.equal(comparePaths('a\\b', 'a/b'), 0, 'both separators');
  });
});

describe('walkImages', () => {
  it('lists images recursively in comparePaths order; hidden entries and other files skipped', async () => {
    const root = await tree();
    const others: string[] = [];
    const dirs: string[] = [];
    const got = await walkImages(root, { onOther: (r) => others.push(r), onDirectory: (r) => dirs.push(r) });
    assert.deepEqual(got, TREE_ORDER);
    assert.deepEqual(got, [...got].sort(comparePaths));
    assert.deepEqual(others, ['a/notes.txt', 'logo.svg']);
    assert.deepEqual(dirs, ['a', 'a/b', 'a-b', 'empty', 'z', 'z/deep', 'z/deep/er']);
  });

  it('options: not recursive, hidden entries, other extensions', async () => {
    const root = await tree();
    assert.deepEqual(await walkImages(root, { recursive: false }), ['B.PNG', 'a.webp']);
    const hidden = await walkImages(root, { hidden: true });
    assert.ok(hidden.includes('.hidden/h.png') && hidden.includes('a/.h.png'));
    assert.equal(hidden.length, TREE_ORDER.length + 2);
    assert.deepEqual(await walkImages(root, { extensions: ['svg', 'TXT'] }), ['a/notes.txt', 'logo.svg']);
  });

  it('follows links to files and folders, lists a folder reached twice once, skips dangling links', async () => {
    const root = folder('links');
    await img(path.join(root, 'real', 'p.png'));
    const outside = folder('outside');
    await img(path.join(outside, 'o.png'));
    fs.symlinkSync(path.join(root, 'real', 'p.png'), path.join(root, 'alias.png'));
    fs.symlinkSync(outside, path.join(root, 'ext'));
    fs.symlinkSync(root, path.join(root, 'real', 'loop')); // a cycle back to the root
    fs.symlinkSync(path.join(root, 'gone.png'), path.join(root, 'dangling.png'));
    const got = await walkImages(root);
    assert.deepEqual(got, ['alias.png', 'ext/o.png', 'real/p.png']);
  });

  it('errors name the folder and the fix', async () => {
    const missing = path.join(tmp, 'no-such-folder');
    await assert.rejects(walkImages(missing), (e: Error) => e.message.includes(missing) && /ENOENT.*Pass an existing folder/.test(e.message));
    const file = path.join(folder('file'), 'a.png');
    await img(file);
    await assert.rejects(walkImages(file), /a\.png is not a folder\. Pass a folder of images/);
  });
});

describe('the callers share it', () => {
  it('ImageFolder, a folder glob and the search index list the same files in the same order', async () => {
    const root = await tree();
    const abs = TREE_ORDER.map((r) => path.join(root, ...r.split('/')));
    const ds = await ImageFolder.open(root, { labels: 'none' });
    assert.deepEqual(ds.paths, abs);
    assert.deepEqual(await globImages(path.join(root, '**', '*')), abs);
    assert.deepEqual(await globImages(path.join(root, '*')), [path.join(root, 'B.PNG'), path.join(root, 'a.webp')]);
    assert.deepEqual((await scanImages(root)).map((f) => f.path), abs);
    const labelled = await scanImages(root, { labelFromFolder: true });
    assert.deepEqual(labelled.map((f) => f.label), [path.basename(root), 'b', 'a', 'a-b', path.basename(root), 'er']);
  });

  it('ImageFolder classes: every first-level folder, counted non-images in the error', async () => {
    const root = folder('classes');
    await img(path.join(root, 'cat', 'deep', 'a.png'));
    fs.mkdirSync(path.join(root, 'dog'));
    await assert.rejects(ImageFolder.open(root), /class folder\(s\) without images.*dog/);
    const ds = await ImageFolder.open(root, { allowEmptyClasses: true });
    assert.deepEqual(ds.names, ['cat', 'dog']);
    const none = folder('none');
    fs.writeFileSync(path.join(none, 'a.txt'), '');
    fs.writeFileSync(path.join(none, 'b.txt'), '');
    fs.writeFileSync(path.join(none, 'c'), '');
    await assert.rejects(ImageFolder.open(none), /Found only files with other extensions: \.txt \(2\), \(none\) \(1\)/);
  });
});
