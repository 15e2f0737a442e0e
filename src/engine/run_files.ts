/**
 * A run folder's per-epoch metrics: `metrics.jsonl` (one JSON object per epoch) and
 * `results.csv` (fixed columns), both rewritten atomically after every epoch, so a kill leaves
 * whole files. Used by every trainer.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../torch/io.js';

export function writeRunResults<T extends object>(dir: string, rows: T[], columns: (keyof T)[]): void {
  writeFileAtomic(path.join(dir, 'metrics.jsonl'), rows.map((r) => JSON.stringify(r) + '\n').join(''));
  const cell = (r: T, k: keyof T): string => (r[k] === undefined ? '' : String(r[k]));
  const csv = [columns.join(','), ...rows.map((r) => columns.map((k) => cell(r, k)).join(','))].join('\n') + '\n';
  writeFileAtomic(path.join(dir, 'results.csv'), csv);
}

/** The epochs recorded in `dir/metrics.jsonl` (a damaged line is skipped). */
export function readRunMetrics<T>(dir: string): T[] {
  const f = path.join(dir, 'metrics.jsonl');
  if (!existsSync(f)) return [];
  return readFileSync(f, 'utf8').split('\n').filter((l) => l.trim()).flatMap((l) => {
    try { return [JSON.parse(l) as T]; } catch { return []; }
  });
}
