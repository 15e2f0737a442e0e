// planUpdate: the decision of an update (what to embed, relabel, delete, keep) on plain objects,
// no files and no table. The same decisions on real files and LanceDB are in search_search.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planUpdate, rowId, type FileStat, type PlannedFile, type StoredRow } from '../src/search/index.js';

/** A file as the sync code hands it over: id from the path, label/split null unless given. */
function file(p: string, stat: FileStat, label: string | null = null, split: string | null = null): PlannedFile {
  return { id: rowId(p), path: p, label, split, stat };
}

function table(rows: Record<string, StoredRow>): Map<string, StoredRow> {
  return new Map(Object.entries(rows).map(([p, r]) => [rowId(p), r]));
}

const row = (size: number, mtime: number, label: string | null = null, split: string | null = null): StoredRow => ({ size, mtime, label, split });

test('an empty table: every readable file is new, in the order given', () => {
  const plan = planUpdate([file('/d/b.png', { size: 10, mtime: 1 }), file('/d/a.png', { size: 20, mtime: 2 }, 'cat', 'train')], new Map());
  assert.deepEqual(plan.embed, [
    { id: rowId('/d/b.png'), path: '/d/b.png', label: null, split: null, size: 10, mtime: 1, isNew: true },
    { id: rowId('/d/a.png'), path: '/d/a.png', label: 'cat', split: 'train', size: 20, mtime: 2, isNew: true },
  ]);
  assert.deepEqual([plan.relabel, plan.remove, plan.unchanged, plan.failed], [[], [], [], []]);
});

test('unchanged, changed size, changed mtime, removed', () => {
  const stored = table({ '/d/same.png': row(10, 1), '/d/bigger.png': row(10, 1), '/d/touched.png': row(10, 1), '/d/deleted.png': row(10, 1) });
  const plan = planUpdate(
    [file('/d/same.png', { size: 10, mtime: 1 }), file('/d/bigger.png', { size: 11, mtime: 1 }), file('/d/touched.png', { size: 10, mtime: 1.5 })],
    stored,
  );
  assert.deepEqual(plan.unchanged, [rowId('/d/same.png')]);
  assert.deepEqual(plan.embed.map((e) => [e.path, e.size, e.mtime, e.isNew]), [['/d/bigger.png', 11, 1, false], ['/d/touched.png', 10, 1.5, false]]);
  assert.deepEqual(plan.remove, [rowId('/d/deleted.png')]);
  assert.deepEqual(plan.relabel, []);
});

test('a file stat says is missing is not kept: its row goes, it is not embedded', () => {
  const stored = table({ '/d/vanished.png': row(5, 5) });
  const plan = planUpdate([file('/d/vanished.png', { missing: true }), file('/d/never.png', { missing: true })], stored);
  assert.deepEqual(plan.remove, [rowId('/d/vanished.png')]);
  assert.deepEqual([plan.embed, plan.unchanged, plan.failed], [[], [], []]);
});

test('label/split-only changes are relabelled, grouped per (label, split), not embedded', () => {
  const stored = table({ '/d/1.png': row(1, 1, 'cat', 'train'), '/d/2.png': row(2, 2, 'cat', null), '/d/3.png': row(3, 3, null, 'val'), '/d/4.png': row(4, 4, 'dog', 'val') });
  const plan = planUpdate(
    [
      file('/d/1.png', { size: 1, mtime: 1 }, 'dog', 'val'),
      file('/d/2.png', { size: 2, mtime: 2 }, 'cat', 'test'),
      file('/d/3.png', { size: 3, mtime: 3 }, 'dog', 'val'),
      file('/d/4.png', { size: 4, mtime: 4 }, 'dog', 'val'),
    ],
    stored,
  );
  assert.deepEqual(plan.relabel, [
    { label: 'dog', split: 'val', ids: [rowId('/d/1.png'), rowId('/d/3.png')] },
    { label: 'cat', split: 'test', ids: [rowId('/d/2.png')] },
  ]);
  assert.deepEqual(plan.unchanged, [rowId('/d/4.png')]);
  assert.deepEqual([plan.embed, plan.remove], [[], []]);
});

test('a changed file with a new label is re-embedded with the new label (no separate relabel)', () => {
  const plan = planUpdate([file('/d/x.png', { size: 9, mtime: 2 }, 'new')], table({ '/d/x.png': row(8, 1, 'old') }));
  assert.deepEqual(plan.embed.map((e) => [e.label, e.isNew]), [['new', false]]);
  assert.deepEqual(plan.relabel, []);
});

test('unreadable files are reported and their rows kept, neither removed nor counted unchanged', () => {
  const stored = table({ '/d/locked.png': row(1, 1) });
  const plan = planUpdate([file('/d/locked.png', { error: 'EACCES' }), file('/d/dir.png', { error: 'not a regular file' })], stored);
  assert.deepEqual(plan.failed, [{ path: '/d/locked.png', error: 'EACCES' }, { path: '/d/dir.png', error: 'not a regular file' }]);
  assert.deepEqual([plan.remove, plan.embed, plan.unchanged], [[], [], []]);
});

test('a file that failed to decode last time (so has no row) is planned again', () => {
  // The last run wrote rows for good.png only; broken.png failed in the embedder and got none.
  const stored = table({ '/d/good.png': row(10, 1) });
  const plan = planUpdate([file('/d/good.png', { size: 10, mtime: 1 }), file('/d/broken.png', { size: 3, mtime: 1 })], stored);
  assert.deepEqual(plan.embed.map((e) => [e.path, e.isNew]), [['/d/broken.png', true]]);
  assert.deepEqual(plan.unchanged, [rowId('/d/good.png')]);
});

test('a rename (same size and mtime, new path) is a new file plus a removed row: no content hash', () => {
  const plan = planUpdate([file('/d/renamed.png', { size: 10, mtime: 1 })], table({ '/d/original.png': row(10, 1) }));
  assert.deepEqual(plan.embed.map((e) => [e.path, e.isNew]), [['/d/renamed.png', true]]);
  assert.deepEqual(plan.remove, [rowId('/d/original.png')]);
});

test('rows of files no longer asked for are removed; nothing asked for empties the table', () => {
  const stored = table({ '/d/a.png': row(1, 1), '/d/b.png': row(2, 2) });
  assert.deepEqual(planUpdate([], stored).remove, [rowId('/d/a.png'), rowId('/d/b.png')]);
  const plan = planUpdate([file('/d/b.png', { size: 2, mtime: 2 })], stored);
  assert.deepEqual(plan.remove, [rowId('/d/a.png')]);
  assert.deepEqual(plan.unchanged, [rowId('/d/b.png')]);
});

test('pure: the inputs are not changed, and the same inputs give the same plan', () => {
  const files = [file('/d/a.png', { size: 1, mtime: 1 }, 'x'), file('/d/b.png', { missing: true }), file('/d/c.png', { size: 3, mtime: 4 })];
  const stored = table({ '/d/a.png': row(1, 1), '/d/b.png': row(2, 2), '/d/c.png': row(3, 3) });
  const before = JSON.stringify([files, [...stored]]);
  const a = planUpdate(files, stored);
  assert.equal(JSON.stringify([files, [...stored]]), before);
  assert.deepEqual(planUpdate(files, stored), a);
  assert.equal(a.embed.length + a.relabel.reduce((n, g) => n + g.ids.length, 0) + a.unchanged.length + a.remove.length, 3);
});
