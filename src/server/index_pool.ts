/**
 * The indexes the server reads itself: listing, SQL rows, row lookups and search by a stored
 * vector are LanceDB calls (asynchronous, off the event loop). They are opened read-only with an
 * embedder that refuses to load: whatever must embed goes to the compute process (engine.ts).
 */
import { Index, IndexError, LazyEmbedder, type IndexInfo } from '../search/index.js';

export class IndexPool {
  readonly #open = new Map<string, Promise<Index>>();
  readonly #paths = new Map<string, string>();

  constructor(readonly db: string) {}

  async list(): Promise<IndexInfo[]> {
    try {
      return await Index.list({ db: this.db });
    } catch (e) {
      if (e instanceof IndexError && e.code === 'TABLE_NOT_FOUND') return [];
      throw e;
    }
  }

  open(table: string): Promise<Index> {
    let p = this.#open.get(table);
    if (!p) {
      p = (async () => {
        const info = (await this.list()).find((i) => i.table === table);
        if (!info) throw new IndexError('TABLE_NOT_FOUND', `No index table "${table}" in ${this.db}.`);
        const embedder = new LazyEmbedder({
          identity: info.model,
          dim: info.dim,
          load: async () => {
            throw new IndexError('BAD_INPUT', 'the studio server does not embed on its event loop (internal: route this query to the compute process)');
          },
        });
        return Index.open({ db: this.db, dataset: info.dataset, table, embedder, readOnly: true, readConsistencyInterval: 2 });
      })();
      p.catch(() => this.#open.delete(table));
      this.#open.set(table, p);
    }
    return p;
  }

  /** The file of a row id (cached). */
  async pathOf(index: Index, id: string): Promise<string | null> {
    const key = `${index.tableName}/${id}`;
    const hit = this.#paths.get(key);
    if (hit) return hit;
    const rows = await index.sql(`id = '${id.replace(/'/g, "''")}'`, { limit: 1 });
    const p = rows[0]?.path ?? null;
    if (p) {
      if (this.#paths.size > 200_000) this.#paths.clear();
      this.#paths.set(key, p);
    }
    return p;
  }

  close(): void {
    for (const p of this.#open.values()) void p.then((ix) => ix.close()).catch(() => undefined);
    this.#open.clear();
  }
}
