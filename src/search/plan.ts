/**
 * The decision of an update, as a pure function: given the files asked for (with what `stat`
 * found) and the rows the table holds, which files to embed, which rows to relabel or delete,
 * and which are unchanged. No I/O; `sync.ts` does the stat before and the writes after.
 *
 * A file is identified by its row id (sha256 of its absolute path), and counts as changed when
 * its size or mtime differs from the row's. There is no content hash: a renamed or moved file is
 * a new file (embedded) plus a gone one (deleted), and a copy is embedded again.
 */

/** What `stat` found for a file: its size and mtime, nothing there, or an error to report. */
export type FileStat = { size: number; mtime: number } | { missing: true } | { error: string };

/** A file the update is asked to index, after `stat`. */
export interface PlannedFile {
  /** Row id: `rowId(path)`. */
  id: string;
  /** Absolute path. */
  path: string;
  label: string | null;
  split: string | null;
  stat: FileStat;
}

/** What the table holds for a row (the columns the decision looks at). */
export interface StoredRow {
  size: number;
  mtime: number;
  label: string | null;
  split: string | null;
}

/** A file to embed and write, with the row's columns but the vector and model. */
export interface PlannedEmbed {
  id: string;
  path: string;
  label: string | null;
  split: string | null;
  size: number;
  mtime: number;
  /** True when the table has no row of it (appended); false when its row is replaced. */
  isNew: boolean;
}

export interface UpdatePlan {
  /** New files, and files whose size or mtime changed; in the order given. */
  embed: PlannedEmbed[];
  /** Rows whose file is unchanged but whose label or split is not what was asked; one group per (label, split). */
  relabel: { label: string | null; split: string | null; ids: string[] }[];
  /** Row ids to delete: files gone from disk, or no longer asked for. */
  remove: string[];
  /** Ids of files whose row already matches (size, mtime, label, split). */
  unchanged: string[];
  /** Files `stat` could not read; their rows, if any, are kept as they are. */
  failed: { path: string; error: string }[];
}

/**
 * Plans an update of a table holding `stored` (row id → row) to the files `files`.
 *
 * - no row → embed (`isNew`); a row with another size or mtime → embed (replace);
 * - same size and mtime, other label/split → relabel, no embedding;
 * - all the same → unchanged;
 * - `stat` says missing → not asked for: its row, if any, is removed;
 * - `stat` failed → reported in `failed`, its row kept;
 * - rows of files not in `files` → removed.
 *
 * A file that failed to decode in an earlier run has no row, so it is planned for embedding again.
 * Ids should be unique in `files` (`sync.ts` deduplicates by path, the last entry wins).
 */
export function planUpdate(files: readonly PlannedFile[], stored: ReadonlyMap<string, StoredRow>): UpdatePlan {
  const plan: UpdatePlan = { embed: [], relabel: [], remove: [], unchanged: [], failed: [] };
  const present = new Set<string>();
  const relabel = new Map<string, UpdatePlan['relabel'][number]>();
  for (const f of files) {
    const s = f.stat;
    if ('missing' in s) continue;
    present.add(f.id);
    if ('error' in s) {
      plan.failed.push({ path: f.path, error: s.error });
      continue; // unreadable now: keep whatever row it has
    }
    const old = stored.get(f.id);
    if (!old || old.size !== s.size || old.mtime !== s.mtime) {
      plan.embed.push({ id: f.id, path: f.path, label: f.label, split: f.split, size: s.size, mtime: s.mtime, isNew: !old });
    } else if (old.label !== f.label || old.split !== f.split) {
      const key = JSON.stringify([f.label, f.split]);
      let g = relabel.get(key);
      if (!g) relabel.set(key, (g = { label: f.label, split: f.split, ids: [] }));
      g.ids.push(f.id);
    } else {
      plan.unchanged.push(f.id);
    }
  }
  plan.relabel = [...relabel.values()];
  for (const id of stored.keys()) if (!present.has(id)) plan.remove.push(id);
  return plan;
}
