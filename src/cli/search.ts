/**
 * `dyad index`, `dyad search`, `dyad sql`, `dyad dedup`: the LanceDB embedding index from the
 * command line.
 *
 *   dyad index --weights runs/x/best.safetensors --data photos/        # embeds new/changed files only
 *   dyad search photos/cat.jpg --limit 5 --where "label = 'cat'"       # the model is found from the index
 *   dyad search --text "a red shoe"                                    # CLIP models only
 *   dyad sql --where "split = 'val'" --json
 *   dyad dedup --threshold 0.95 --out dedup-report/                    # duplicates.json + duplicates.html
 *
 * `index` records the weights file (absolute path) in the table, so the query commands need no
 * `--weights`: they load the recorded checkpoint when (and only when) a query must be embedded,
 * and refuse it if it is gone or no longer holds the model the index was built with. `--weights`
 * picks the model explicitly; an index built with another model is refused. `sql`, `dedup`, and
 * `search` by an indexed file use stored vectors and never load a model.
 *
 * The index module (LanceDB) and the model (libtorch) are imported when a command runs, so
 * `dyad --help` stays fast.
 */
import path from 'node:path';
import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import type { Embedder } from '../search/embedder.js';
import type { FileEntry, Index as IndexT, IndexInfo, SearchHit, UpdateProgress } from '../search/index.js';
import { intArg, floatArg } from './args.js';

export const DEFAULT_DB = '.dyad/db';

export { registerEmbedderLoader, loadEmbedder, type EmbedderLoader, type LoadedEmbedder } from './embedders.js';
import { loadEmbedder, type LoadedEmbedder } from './embedders.js';

const lib = () => import('../search/index.js');

/** Folder names that mark a split when they are the first level under the data root. */
const SPLITS: Record<string, string> = { train: 'train', val: 'val', valid: 'val', validation: 'val', test: 'test' };

/**
 * Label and split of an image from where it lies under `root`: a first-level `train/`, `val/`
 * (`valid/`, `validation/`) or `test/` folder is the split; the next folder (the first level
 * without a split) is the label (ImageFolder layout). Images with no class folder above them
 * have a null label.
 *
 *   root/cat/1.jpg → (cat, null)   root/train/cat/1.jpg → (cat, train)   root/val/2.jpg → (null, val)
 */
export function labelAndSplit(root: string, file: string): { label: string | null; split: string | null } {
  const dirs = path.relative(root, file).split(path.sep).slice(0, -1);
  let split: string | null = null;
  if (dirs.length > 0 && SPLITS[dirs[0]!.toLowerCase()] !== undefined) split = SPLITS[dirs.shift()!.toLowerCase()]!;
  return { label: dirs[0] ?? null, split };
}

function short(identity: string): string {
  const s = identity.replace(/^dyad:/, '');
  return s.length > 12 ? `${s.slice(0, 12)}…` : s;
}

function describe(i: IndexInfo): string {
  return `"${i.dataset}" (${i.rows} rows, model ${short(i.model)}, weights ${i.weights ?? 'not recorded'})`;
}

function indexHint(db: string, dataset?: string): string {
  return `dyad index --weights <model> --data <folder>${dataset ? ` --dataset ${dataset}` : ''}${db !== DEFAULT_DB ? ` --db ${db}` : ''}`;
}

/** Picks the table a query command means from --db, --dataset and (the identity of) --weights. */
export async function chooseTable(o: { db: string; dataset?: string; weights?: string }, identity?: string): Promise<IndexInfo> {
  const { Index, IndexError } = await lib();
  let infos: IndexInfo[];
  try {
    infos = await Index.list({ db: o.db });
  } catch (e) {
    if (e instanceof IndexError && e.code === 'TABLE_NOT_FOUND') {
      throw new IndexError('TABLE_NOT_FOUND', `No search index at ${o.db}: the folder does not exist. Run ${indexHint(o.db, o.dataset)} first, or point --db at the database it wrote.`, { cause: e });
    }
    throw e;
  }
  if (infos.length === 0) throw new IndexError('TABLE_NOT_FOUND', `No search index in ${o.db} (it holds no dyad index). Run ${indexHint(o.db, o.dataset)} first.`);
  let cands = o.dataset !== undefined ? infos.filter((i) => i.dataset === o.dataset) : infos;
  if (cands.length === 0) {
    throw new IndexError(
      'TABLE_NOT_FOUND',
      `No index of dataset "${o.dataset}" in ${o.db}; it holds ${infos.map(describe).join(', ')}. Run ${indexHint(o.db, o.dataset)} first, or pick one of those with --dataset.`,
    );
  }
  if (identity !== undefined) {
    const same = cands.filter((i) => i.model === identity);
    if (same.length === 0) {
      const what = o.dataset !== undefined ? `Index "${o.dataset}" in ${o.db} was built with` : `The indexes in ${o.db} were built with`;
      throw new IndexError(
        'MODEL_MISMATCH',
        `${what} ${cands.map((i) => `model ${short(i.model)} (${i.weights ?? 'weights not recorded'})`).join(', ')}; --weights ${o.weights} is model ${short(identity)}. ` +
          `Search with the model the index was built with (leave out --weights to use the recorded one), or index with this model first: dyad index --weights ${o.weights} --data <folder>${o.dataset ? ` --dataset ${o.dataset}` : ''}.`,
      );
    }
    cands = same;
  }
  if (cands.length > 1) {
    const datasets = new Set(cands.map((i) => i.dataset));
    throw new IndexError(
      'BAD_INPUT',
      datasets.size > 1
        ? `${o.db} holds several indexes: ${cands.map(describe).join(', ')}. Choose one with --dataset <name>.`
        : `Dataset "${cands[0]!.dataset}" in ${o.db} was indexed with ${cands.length} models: ${cands.map(describe).join(', ')}. Choose one with --weights <file>.`,
    );
  }
  return cands[0]!;
}

/**
 * Opens the index a query command means, read-only. With `--weights`, that model (loaded now)
 * must be the one the index was built with. Without, the recorded weights are loaded lazily,
 * when a query must be embedded, and refused when gone or changed.
 */
export async function openForQuery(o: { db: string; dataset?: string; weights?: string; threads?: number }): Promise<{ index: IndexT; info: IndexInfo; dispose: () => void }> {
  const { Index, IndexError, LazyEmbedder } = await lib();
  let model: LoadedEmbedder | null = null;
  let embedder: Embedder;
  let info: IndexInfo;
  if (o.weights !== undefined) {
    model = await loadEmbedder(o.weights, { threads: o.threads });
    try {
      info = await chooseTable(o, model.identity);
    } catch (e) {
      model.dispose?.();
      throw e;
    }
    embedder = model;
  } else {
    info = await chooseTable(o);
    const { dataset, model: identity, weights } = info;
    const reindex = (w: string) => `dyad index --weights ${w} --data <folder> --dataset ${dataset}${o.db !== DEFAULT_DB ? ` --db ${o.db}` : ''}`;
    const lazy = new LazyEmbedder({
      identity,
      dim: info.dim,
      load: async () => {
        if (weights === null) {
          throw new IndexError('WEIGHTS_NOT_FOUND', `Index "${dataset}" does not record the weights it was built with (model ${short(identity)}), and this query must be embedded. Pass --weights <that checkpoint>.`);
        }
        if (!existsSync(weights)) {
          throw new IndexError(
            'WEIGHTS_NOT_FOUND',
            `Index "${dataset}" was built with ${weights}, which is gone, and this query must be embedded. Pass --weights <a copy of that checkpoint>, or re-index with a model you have: ${reindex('<file>')}.`,
          );
        }
        const m = await loadEmbedder(weights, { threads: o.threads });
        if (m.identity !== identity) {
          m.dispose?.();
          throw new IndexError(
            'MODEL_MISMATCH',
            `${weights} has changed since index "${dataset}" was built: it now holds model ${short(m.identity)}, the index holds vectors of model ${short(identity)}. ` +
              `Pass --weights <the original checkpoint>, or re-index with the new one: ${reindex(weights)}.`,
          );
        }
        return (model = m);
      },
    });
    embedder = lazy;
  }
  let index: IndexT;
  try {
    index = await Index.open({ db: o.db, dataset: info.dataset, table: info.table, embedder, readOnly: true });
  } catch (e) {
    model?.dispose?.();
    throw e;
  }
  return {
    index,
    info,
    dispose: () => {
      index.close();
      model?.dispose?.();
    },
  };
}

/** A path as the user would type it: relative to the working directory when inside it. */
function shown(p: string): string {
  const r = path.relative(process.cwd(), p);
  return r && !r.startsWith('..') && !path.isAbsolute(r) ? r : p;
}

function hitsTable(hits: SearchHit[]): string {
  const lw = Math.max(5, ...hits.map((h) => (h.label ?? '-').length));
  const sw = Math.max(5, ...hits.map((h) => (h.split ?? '-').length));
  const lines = [`rank  score    ${'label'.padEnd(lw)}  ${'split'.padEnd(sw)}  path`];
  hits.forEach((h, i) => lines.push(`${String(i + 1).padStart(4)}  ${h.score.toFixed(4).padStart(7)}  ${(h.label ?? '-').padEnd(lw)}  ${(h.split ?? '-').padEnd(sw)}  ${shown(h.path)}`));
  return lines.join('\n');
}

/** Progress of `update` on stderr: one line per batch when not a terminal, one rewritten line on a terminal. */
function progressPrinter(dataset: string, batch: number, stream: NodeJS.WriteStream = process.stderr): (p: UpdateProgress) => void {
  const tty = Boolean(stream.isTTY);
  let t0 = 0;
  let open = false;
  const line = (s: string, final = true) => {
    if (tty) {
      stream.write(`\r\x1b[K${s}${final ? '\n' : ''}`);
      open = !final;
    } else stream.write(`${s}\n`);
  };
  return (p) => {
    if (p.phase === 'stat' && p.done === p.total) line(`index ${dataset}: ${p.total} image files`);
    else if (p.phase === 'remove' && p.total > 0 && p.done === p.total) line(`index ${dataset}: removed ${p.total} rows of files that are gone`);
    else if (p.phase === 'embed') {
      if (p.done === 0) {
        t0 = performance.now();
        line(p.total === 0 ? `index ${dataset}: nothing new to embed` : `index ${dataset}: embedding ${p.total} new or changed files, ${batch} per batch`);
      } else {
        const rate = p.done / Math.max(1e-3, (performance.now() - t0) / 1000);
        line(`index ${dataset}: embedded ${p.done}/${p.total} (${Math.round((100 * p.done) / p.total)}%, ${rate.toFixed(1)} img/s)`, p.done === p.total);
      }
    } else if (p.phase === 'optimize' && p.done === 0) line(`index ${dataset}: optimizing the table`);
    else if (p.phase === 'done' && open) stream.write('\n');
  };
}

interface CommonQuery {
  db: string;
  dataset?: string;
  weights?: string;
  threads?: number;
  json?: boolean;
}

function queryOptions(c: Command): Command {
  return c
    .option('--db <dir>', 'database folder (or s3://bucket/path)', DEFAULT_DB)
    .option('--dataset <name>', 'which indexed dataset (needed when the database holds several)')
    .option('--weights <file>', 'the model to search with (default: the weights recorded by dyad index)')
    .option('--json', 'print JSON');
}

export function registerSearchCommands(p: Command): void {
  p.command('index')
    .description('build or update the search index of a folder of images: embeds new and changed files, removes rows of deleted ones')
    .requiredOption('--weights <file>', 'the model to embed with (a dyad checkpoint)')
    .requiredOption('--data <dir>', 'folder of images; class subfolders become labels, first-level train/ val/ test/ folders splits')
    .option('--db <dir>', 'database folder (created when missing) or s3://bucket/path', DEFAULT_DB)
    .option('--dataset <name>', 'name of the dataset in the database (default: the --data folder name)')
    .option('--batch <n>', 'images embedded and committed per batch', intArg('--batch', 1), 64)
    .option('--threads <n>', 'libtorch threads (default: all cores)', intArg('--threads', 1))
    .action(async (o: { weights: string; data: string; db: string; dataset?: string; batch: number; threads?: number }) => {
      const { Index, scanImages } = await lib();
      const root = path.resolve(o.data);
      let files: FileEntry[];
      try {
        files = await scanImages(root);
      } catch (e) {
        throw new Error(`--data ${o.data}: ${(e as Error).message}`, { cause: e });
      }
      if (files.length === 0) {
        const { imageExtensions } = await import('../data/files.js');
        throw new Error(`--data ${o.data} holds no images (looked for ${imageExtensions().join(' ')}, recursively). Pass a folder of images.`);
      }
      const entries = files.map((f) => ({ path: f.path, ...labelAndSplit(root, f.path) }));
      const dataset = o.dataset ?? path.basename(root);
      const model = await loadEmbedder(o.weights, { batch: o.batch, threads: o.threads });
      let index: IndexT | null = null;
      try {
        index = await Index.open({ db: o.db, dataset, embedder: model, weights: o.weights });
        const others = (await Index.list({ db: o.db })).filter((i) => i.dataset === dataset && i.table !== index!.tableName);
        if (others.length > 0) {
          process.stderr.write(`note: dataset "${dataset}" also has an index built with ${others.map((i) => `model ${short(i.model)} (${i.weights ?? 'weights not recorded'})`).join(', ')}; ` +
            `this model gets its own table, and queries pick one with --weights.\n`);
        }
        const r = await index.update(entries, { batchSize: o.batch, onProgress: progressPrinter(dataset, o.batch) });
        for (const f of r.failed.slice(0, 20)) process.stderr.write(`warning: skipped ${f.path}: ${f.error}\n`);
        if (r.failed.length > 20) process.stderr.write(`warning: ... and ${r.failed.length - 20} more files skipped\n`);
        console.log(JSON.stringify({
          added: r.added, updated: r.updated, removed: r.removed, unchanged: r.unchanged, embedded: r.embedded, failed: r.failed.length,
          rows: r.rows, dataset, table: index.tableName, db: o.db,
        }));
      } finally {
        index?.close();
        model.dispose?.();
      }
    });

  queryOptions(p.command('search'))
    .description('find the indexed images most similar to an image (or, with a CLIP model, to a text)')
    .argument('[image]', 'an image file (indexed or not) or an indexed row id')
    .option('--text <query>', 'search by text instead of an image (needs a CLIP model)')
    .option('--limit <n>', 'number of results', intArg('--limit', 1), 10)
    .option('--where <sql>', `SQL filter applied before the vector search, e.g. "label = 'cat' AND split = 'val'"`)
    .option('--include-self', 'keep the query image in the results when it is itself indexed')
    .option('--exact', 'exact (flat) search even when the table has an ANN index')
    .option('--threads <n>', 'libtorch threads (default: all cores)', intArg('--threads', 1))
    .action(async (image: string | undefined, o: CommonQuery & { text?: string; limit: number; where?: string; includeSelf?: boolean; exact?: boolean }) => {
      if (image === undefined && o.text === undefined) throw new Error('search needs a query: an image file (dyad search photo.jpg) or --text "..." (CLIP models).');
      if (image !== undefined && o.text !== undefined) throw new Error('search takes an image or --text, not both.');
      const q = await openForQuery(o);
      try {
        const opts = { limit: o.limit, where: o.where, exact: o.exact };
        const hits = o.text !== undefined ? await q.index.searchText(o.text, opts) : await q.index.similar(image!, { ...opts, excludeSelf: !o.includeSelf });
        if (o.json) console.log(JSON.stringify(hits));
        else {
          console.log(hitsTable(hits));
          process.stderr.write(`${hits.length} result(s) from index "${q.info.dataset}" (${q.info.rows} rows, model ${short(q.info.model)})\n`);
        }
      } finally {
        q.dispose();
      }
    });

  queryOptions(p.command('sql'))
    .description('list indexed images matching an SQL filter over id, path, label, split, size, mtime')
    .option('--where <sql>', `SQL filter, e.g. "label = 'cat' AND split = 'val'" (default: every row)`)
    .option('--limit <n>', 'at most this many rows', intArg('--limit', 1))
    .action(async (o: CommonQuery & { where?: string; limit?: number }) => {
      const q = await openForQuery(o);
      try {
        const rows = await q.index.sql(o.where, { limit: o.limit });
        if (o.json) console.log(JSON.stringify(rows));
        else {
          for (const r of rows) console.log(`${r.id}  ${r.label ?? '-'}  ${r.split ?? '-'}  ${shown(r.path)}`);
          process.stderr.write(`${rows.length} row(s) of index "${q.info.dataset}"\n`);
        }
      } finally {
        q.dispose();
      }
    });

  queryOptions(p.command('dedup'))
    .description('find groups of near-duplicate images and write a report (duplicates.json and an HTML contact sheet)')
    .option('--threshold <x>', 'cosine similarity at or above which two images are duplicates', floatArg('--threshold'), 0.95)
    .option('--where <sql>', 'only look at rows matching this SQL filter')
    .option('--out <dir>', 'report folder', 'dedup-report')
    .action(async (o: CommonQuery & { threshold: number; where?: string; out: string }) => {
      const { writeDuplicatesReport } = await lib();
      const q = await openForQuery(o);
      try {
        const groups = await q.index.duplicates({ threshold: o.threshold, where: o.where });
        const report = await writeDuplicatesReport(groups, o.out, { threshold: o.threshold, title: `Near-duplicates in ${q.info.dataset}` });
        const files = groups.reduce((s, g) => s + g.size, 0);
        if (o.json) console.log(JSON.stringify({ threshold: o.threshold, groups: groups.length, files, json: report.json, html: report.html, items: groups }));
        else console.log(`${groups.length} group(s) of near-duplicates, ${files} files (cosine similarity ≥ ${o.threshold}); wrote ${shown(report.json)} and ${shown(report.html)}`);
      } finally {
        q.dispose();
      }
    });
}
