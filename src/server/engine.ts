/**
 * The studio's compute process: everything that embeds, loads a model or crunches vectors runs
 * here, in a child process (`fork`), never on the server's event loop. Requests arrive as IPC
 * messages `{ id, op, args }` and are answered `{ id, result }` or `{ id, error: { message, code } }`
 * (libtorch work is synchronous, so one computes at a time; LanceDB reads overlap).
 *
 * ops: `map` (2-D map of an index), `similarImage` (search by an uploaded image, decoded first by
 * the safe decoder), `text` (search by text with a CLIP index), `duplicates`, `failed` (image
 * files under the dataset's folder that are not in the index, with the decoder's error),
 * `zeroShot` (CLIP probabilities of an image over labels).
 */
import path from 'node:path';
import { decodeImage } from '../data/decode.js';
import { loadEmbedder, type LoadedEmbedder } from '../cli/embedders.js';
import { Index, IndexError, LazyEmbedder, embeddingMap, scanImages, type IndexInfo } from '../search/index.js';
import type { Model } from '../api/model.js';

/** Largest pixel count an uploaded image may decode to (against decompression bombs). */
const MAX_PIXELS = 40_000_000;

interface Open {
  index: Index;
  info: IndexInfo;
  model: LoadedEmbedder | null;
}

const indexes = new Map<string, Open>();

async function openIndex(db: string, table: string): Promise<Open> {
  const key = `${db}\0${table}`;
  const hit = indexes.get(key);
  if (hit) {
    await hit.index.refresh();
    return hit;
  }
  const info = (await Index.list({ db })).find((i) => i.table === table);
  if (!info) throw new IndexError('TABLE_NOT_FOUND', `No index table "${table}" in ${db}.`);
  const o: Open = { index: null as unknown as Index, info, model: null };
  const embedder = new LazyEmbedder({
    identity: info.model,
    dim: info.dim,
    load: async () => {
      if (!info.weights) throw new IndexError('WEIGHTS_NOT_FOUND', `Index "${info.dataset}" does not record the weights it was built with; re-index it with dyad index --weights <model>.`);
      const m = await loadEmbedder(info.weights, { threads: 1 });
      if (m.identity !== info.model) {
        m.dispose?.();
        throw new IndexError('MODEL_MISMATCH', `${info.weights} has changed since index "${info.dataset}" was built; re-index with dyad index --weights ${info.weights}.`);
      }
      return (o.model = m);
    },
  });
  o.index = await Index.open({ db, dataset: info.dataset, table, embedder, readOnly: true });
  indexes.set(key, o);
  return o;
}

/** Decodes untrusted bytes with the safe decoder (throws DecodeError naming the problem). */
async function checkImage(bytes: Uint8Array, name: string): Promise<void> {
  await decodeImage(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), { name, limitInputPixels: MAX_PIXELS, size: 8, fit: 'fill' });
}

function commonDir(paths: string[]): string | null {
  if (paths.length === 0) return null;
  let parts = path.dirname(paths[0]!).split(path.sep);
  for (const p of paths) {
    const q = path.dirname(p).split(path.sep);
    let i = 0;
    while (i < parts.length && i < q.length && parts[i] === q[i]) i++;
    parts = parts.slice(0, i);
  }
  return parts.join(path.sep) || path.sep;
}

const models = new Map<string, Model>();

type Args = Record<string, unknown>;
const ops: Record<string, (a: Args) => Promise<unknown>> = {
  async map(a) {
    const { index } = await openIndex(a.db as string, a.table as string);
    const m = await embeddingMap(index, { method: (a.method as 'pca' | 'umap') ?? 'pca' });
    return m;
  },
  async similarImage(a) {
    const { index } = await openIndex(a.db as string, a.table as string);
    const bytes = a.bytes as Uint8Array;
    await checkImage(bytes, (a.name as string) ?? 'upload');
    return index.similar(bytes, { limit: a.limit as number, ...(a.where ? { where: a.where as string } : {}) });
  },
  async text(a) {
    const { index } = await openIndex(a.db as string, a.table as string);
    return index.searchText(a.text as string, { limit: a.limit as number, ...(a.where ? { where: a.where as string } : {}) });
  },
  async duplicates(a) {
    const { index } = await openIndex(a.db as string, a.table as string);
    return index.duplicates({ threshold: a.threshold as number, ...(a.where ? { where: a.where as string } : {}) });
  },
  async failed(a) {
    const { index } = await openIndex(a.db as string, a.table as string);
    const rows = await index.sql(undefined, { limit: 10_000_000 });
    const root = commonDir(rows.map((r) => r.path));
    if (!root) return { root: null, files: [] };
    const have = new Set(rows.map((r) => r.path));
    const all = await scanImages(root);
    const missing = all.filter((f) => !have.has(f.path)).slice(0, (a.limit as number) ?? 200);
    const files: { path: string; error: string }[] = [];
    for (const f of missing) {
      try {
        await decodeImage(f.path, { limitInputPixels: MAX_PIXELS, size: 8, fit: 'fill' });
        files.push({ path: f.path, error: 'decodes, but is not in the index yet: run dyad index again' });
      } catch (e) {
        files.push({ path: f.path, error: (e as Error).message });
      }
    }
    return { root, files };
  },
  async zeroShot(a) {
    const bytes = a.bytes as Uint8Array;
    await checkImage(bytes, (a.name as string) ?? 'upload');
    const weights = a.model as string;
    let model = models.get(weights);
    if (!model) {
      const { Model } = await import('../api/model.js');
      model = await Model.load(weights, { threads: 1 } as never);
      if (model.task !== 'clip') {
        model.dispose();
        throw new IndexError('BAD_INPUT', `${weights} is a dyad ${model.task}, not a CLIP model: zero-shot needs a CLIP folder (config.json + model.safetensors) or Hub id.`);
      }
      models.set(weights, model);
    }
    const templates = a.templates as string[] | undefined;
    model.setClasses(a.labels as string[], templates && templates.length ? { templates } : {});
    const [r] = await model.predict(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    const probs = Array.from(r!.probs.data);
    return { labels: a.labels, probs };
  },
};

process.on('message', (msg: { id: number; op: string; args: Args }) => {
  void (async () => {
    try {
      const f = ops[msg.op];
      if (!f) throw new Error(`unknown engine op '${msg.op}'`);
      const result = await f(msg.args);
      process.send!({ id: msg.id, result });
    } catch (e) {
      const err = e as Error & { code?: string; name?: string };
      process.send!({ id: msg.id, error: { message: err.message, code: err.code ?? null, name: err.name ?? 'Error' } });
    }
  })();
});
process.on('disconnect', () => process.exit(0));
