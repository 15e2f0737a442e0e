/**
 * Run folders as the studio lists them: every folder under the runs root (one level, or two for
 * `runs/<group>/<run>`) that holds a `config.json` or `metrics.jsonl`, with its method, data,
 * epochs done and planned, best kNN top-1, checkpoints, and a status: `running` (a studio job is
 * training it, or its metrics changed in the last two minutes and it is not done), `finished`
 * (all planned epochs recorded), `failed` or `cancelled` (its studio job), else `stopped`.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';

export type RunStatus = 'running' | 'finished' | 'failed' | 'cancelled' | 'stopped';

export interface RunSummary {
  /** Path relative to the runs root, with `/` separators: the run's id in URLs. */
  name: string;
  method: string | null;
  data: string | null;
  backbone: string | null;
  epochs: number | null;
  epochsDone: number;
  lastLoss: number | null;
  bestKnn: number | null;
  status: RunStatus;
  /** Last change of the run's files (ms since the epoch). */
  updated: number;
  checkpoints: { name: string; size: number; mtime: number }[];
  /** The studio job that trains it, if any. */
  job: string | null;
  error: string | null;
}

export interface MetricRow {
  epoch: number;
  loss: number;
  lr: number;
  img_per_s: number;
  knn_top1?: number;
  [k: string]: unknown;
}

/** The rows of a `metrics.jsonl` text (damaged lines skipped). */
export function parseMetrics(text: string): MetricRow[] {
  return text.split('\n').filter((l) => l.trim()).flatMap((l) => {
    try {
      const r = JSON.parse(l) as MetricRow;
      return r && typeof r === 'object' ? [r] : [];
    } catch {
      return [];
    }
  });
}

async function readJson(file: string): Promise<Record<string, unknown> | null> {
  try {
    const v = JSON.parse(await fsp.readFile(file, 'utf8'));
    return v && typeof v === 'object' ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

export async function readMetrics(dir: string): Promise<MetricRow[]> {
  try {
    return parseMetrics(await fsp.readFile(path.join(dir, 'metrics.jsonl'), 'utf8'));
  } catch {
    return [];
  }
}

const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

/** What a job registry tells about a run folder. */
export interface JobView {
  id: string;
  status: 'running' | 'finished' | 'failed' | 'cancelled';
  error: string | null;
  /** The job's `dyad` arguments: method and data before the run writes its config. */
  argv?: string[];
}

/** The summary of one run folder (`dir` absolute), or null when it is not a run. */
export async function summarizeRun(root: string, dir: string, job?: JobView | null): Promise<RunSummary | null> {
  const config = await readJson(path.join(dir, 'config.json'));
  let entries: import('node:fs').Dirent[];
  try {
    entries = await fsp.readdir(dir, { withFileTypes: true });
  } catch {
    if (!job) return null;
    entries = []; // a job that has not written its folder yet
  }
  const hasMetrics = entries.some((e) => e.name === 'metrics.jsonl');
  if (!config && !hasMetrics && !job) return null;
  const metrics = await readMetrics(dir);
  let updated = 0;
  const checkpoints: RunSummary['checkpoints'] = [];
  for (const e of entries) {
    if (!e.isFile()) continue;
    const st = await fsp.stat(path.join(dir, e.name)).catch(() => null);
    if (!st) continue;
    updated = Math.max(updated, st.mtimeMs);
    if (e.name.endsWith('.safetensors') || e.name.endsWith('.onnx')) checkpoints.push({ name: e.name, size: st.size, mtime: st.mtimeMs });
  }
  const arg = (flag: string): string | null => {
    const i = job?.argv?.indexOf(flag) ?? -1;
    return i >= 0 ? (job!.argv![i + 1] ?? null) : null;
  };
  const epochs = num(config?.epochs) ?? (arg('--epochs') !== null ? Number(arg('--epochs')) : null);
  const knns = metrics.map((m) => num(m.knn_top1)).filter((x): x is number => x !== null);
  const done = epochs !== null && metrics.length >= epochs;
  let status: RunStatus;
  if (job?.status === 'running') status = 'running';
  else if (job?.status === 'failed' || job?.status === 'cancelled') status = done ? 'finished' : job.status;
  else if (done) status = 'finished';
  else if (Date.now() - updated < 120_000 && !job) status = 'running';
  else status = job?.status === 'finished' ? 'finished' : 'stopped';
  return {
    name: path.relative(root, dir).split(path.sep).join('/'),
    method: str(config?.method) ?? (config?.clip ? 'clip' : null) ?? arg('--method') ?? (job?.argv?.[0] === 'train' ? 'simclr' : null),
    data: str(config?.data) ?? arg('--data'),
    backbone: str(config?.backbone) ?? arg('--backbone'),
    epochs,
    epochsDone: metrics.length,
    lastLoss: num(metrics.at(-1)?.loss),
    bestKnn: knns.length ? Math.max(...knns) : null,
    status,
    updated,
    checkpoints: checkpoints.sort((a, b) => a.name.localeCompare(b.name)),
    job: job?.id ?? null,
    error: job?.status === 'failed' ? job.error : job?.status === 'cancelled' ? 'cancelled' : null,
  };
}

/** Run folders under `root` (depth 1 and 2), newest first. `jobOf` maps a run name to its job. */
export async function listRuns(root: string, jobOf: (name: string) => JobView | null = () => null): Promise<RunSummary[]> {
  const out: RunSummary[] = [];
  const visit = async (dir: string, depth: number): Promise<void> => {
    let entries: import('node:fs').Dirent[];
    try {
      entries = await fsp.readdir(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (!e.isDirectory() || e.name.startsWith('.')) continue;
      const sub = path.join(dir, e.name);
      const name = path.relative(root, sub).split(path.sep).join('/');
      const s = await summarizeRun(root, sub, jobOf(name));
      if (s) out.push(s);
      else if (depth < 2) await visit(sub, depth + 1);
    }
  };
  await visit(root, 1);
  return out.sort((a, b) => b.updated - a.updated);
}

/** The run's config.json (null when absent or unreadable). */
export async function readConfig(dir: string): Promise<Record<string, unknown> | null> {
  return readJson(path.join(dir, 'config.json'));
}
