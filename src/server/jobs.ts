/**
 * Studio jobs: `dyad train` (and `dyad export`) runs started from the UI, each in its own child
 * process (`job_runner.ts`, which runs the CLI in-process), never on the server's event loop.
 *
 * The registry lives on disk under `<runs>/.jobs/` so it outlives a page reload and a server
 * restart: `<id>.json` (what was asked, written once by the server), `<id>.log` (the child's
 * stdout and stderr), `<id>.status.json` (how it ended, written by the runner; or by the server
 * when it cancels). A job whose file says nothing about its end and whose process is gone failed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, openSync, closeSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { writeFileAtomic } from '../torch/io.js';

export type JobKind = 'train' | 'export';
export type JobStatus = 'running' | 'finished' | 'failed' | 'cancelled';

export interface JobSpec {
  id: string;
  kind: JobKind;
  /** The `dyad` arguments (after the program name). */
  argv: string[];
  /** The run folder it writes, relative to the runs root. */
  run: string;
  pid: number;
  started: number;
}

export interface JobEnd {
  status: Exclude<JobStatus, 'running'>;
  exitCode: number | null;
  error: string | null;
  ended: number;
  /** Files the job wrote that can be downloaded (export), relative to the runs root. */
  outputs?: string[];
}

export interface JobState extends JobSpec {
  status: JobStatus;
  exitCode: number | null;
  error: string | null;
  ended: number | null;
  outputs: string[];
  /** The latest progress line of the log ("epoch 3/10 step 20/20 loss ..."), if any. */
  progress: string | null;
}

const RUNNER = fileURLToPath(new URL('./job_runner.js', import.meta.url));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The message of a failed job: its last `dyad: error:` line, else its last non-empty log line. */
export function errorFromLog(log: string): string | null {
  const lines = log.split('\n').map((l) => l.trim()).filter(Boolean);
  const err = lines.filter((l) => l.startsWith('dyad: error:')).at(-1);
  if (err) return err.replace(/^dyad: error:\s*/, '');
  return lines.at(-1) ?? null;
}

export class Jobs {
  readonly dir: string;
  readonly #children = new Map<string, ChildProcess>();

  constructor(readonly runsRoot: string) {
    this.dir = path.join(runsRoot, '.jobs');
  }

  #file(id: string, ext: string): string {
    return path.join(this.dir, `${id}${ext}`);
  }

  /** Starts `dyad <argv>` in a child process; returns its state. */
  async start(kind: JobKind, argv: string[], run: string): Promise<JobState> {
    mkdirSync(this.dir, { recursive: true });
    const id = `${new Date().toISOString().replace(/[-:T]/g, '').slice(0, 14)}-${randomBytes(3).toString('hex')}`;
    const log = openSync(this.#file(id, '.log'), 'a');
    let child: ChildProcess;
    try {
      child = spawn(process.execPath, [RUNNER, this.#file(id, '.json'), this.#file(id, '.status.json'), '--', ...argv], {
        stdio: ['ignore', log, log],
        detached: true, // its own process group: cancel stops the job and anything it started
        env: { ...process.env, CI: '1' }, // plain progress lines in the log, not a TTY bar
      });
    } finally {
      closeSync(log);
    }
    const spec: JobSpec = { id, kind, argv, run, pid: child.pid ?? -1, started: Date.now() };
    writeFileAtomic(this.#file(id, '.json'), JSON.stringify(spec, null, 2) + '\n');
    this.#children.set(id, child);
    child.on('exit', (code, signal) => {
      this.#children.delete(id);
      if (!existsSync(this.#file(id, '.status.json'))) {
        void this.#endWithoutStatus(id, code, signal);
      }
    });
    return (await this.get(id))!;
  }

  async #endWithoutStatus(id: string, code: number | null, signal: NodeJS.Signals | null): Promise<void> {
    const log = await fsp.readFile(this.#file(id, '.log'), 'utf8').catch(() => '');
    const end: JobEnd = {
      status: code === 0 ? 'finished' : 'failed',
      exitCode: code,
      error: code === 0 ? null : (errorFromLog(log) ?? `the job process ended ${signal ? `by ${signal}` : `with code ${code}`}`),
      ended: Date.now(),
    };
    if (!existsSync(this.#file(id, '.status.json'))) writeFileAtomic(this.#file(id, '.status.json'), JSON.stringify(end) + '\n');
  }

  /** The state of a job, or null when there is no such job. */
  async get(id: string): Promise<JobState | null> {
    if (!/^[0-9a-f-]{8,40}$/.test(id)) return null;
    let spec: JobSpec;
    try {
      spec = JSON.parse(await fsp.readFile(this.#file(id, '.json'), 'utf8')) as JobSpec;
    } catch {
      return null;
    }
    let end: JobEnd | null = null;
    try {
      end = JSON.parse(await fsp.readFile(this.#file(id, '.status.json'), 'utf8')) as JobEnd;
    } catch {
      /* still running, or gone without a word */
    }
    const log = await fsp.readFile(this.#file(id, '.log'), 'utf8').catch(() => '');
    if (!end && !this.#children.has(id) && !alive(spec.pid)) {
      end = { status: 'failed', exitCode: null, error: errorFromLog(log) ?? 'the job process is gone without a status (killed?)', ended: Date.now() };
    }
    const progress = log.split('\n').filter((l) => /^epoch \d+\/\d+/.test(l)).at(-1) ?? null;
    return {
      ...spec,
      status: end?.status ?? 'running',
      exitCode: end?.exitCode ?? null,
      error: end?.error ?? null,
      ended: end?.ended ?? null,
      outputs: end?.outputs ?? [],
      progress,
    };
  }

  /** The last `bytes` of a job's log. */
  async log(id: string, bytes = 20_000): Promise<string> {
    const text = await fsp.readFile(this.#file(id, '.log'), 'utf8').catch(() => '');
    return text.length > bytes ? text.slice(-bytes) : text;
  }

  /** Every job, newest first. */
  async list(): Promise<JobState[]> {
    let names: string[];
    try {
      names = await fsp.readdir(this.dir);
    } catch {
      return [];
    }
    const ids = names.filter((n) => n.endsWith('.json') && !n.endsWith('.status.json')).map((n) => n.slice(0, -5));
    const out = (await Promise.all(ids.map((id) => this.get(id)))).filter((j): j is JobState => j !== null);
    return out.sort((a, b) => b.started - a.started);
  }

  /** Stops a running job (SIGTERM to its process group, SIGKILL after 3 s) and records it cancelled. */
  async cancel(id: string): Promise<JobState | null> {
    const job = await this.get(id);
    if (!job || job.status !== 'running') return job;
    const end: JobEnd = { status: 'cancelled', exitCode: null, error: 'cancelled from the studio', ended: Date.now() };
    writeFileAtomic(this.#file(id, '.status.json'), JSON.stringify(end) + '\n');
    const kill = (sig: NodeJS.Signals) => {
      try {
        process.kill(-job.pid, sig);
      } catch {
        try { process.kill(job.pid, sig); } catch { /* already gone */ }
      }
    };
    kill('SIGTERM');
    const t0 = Date.now();
    while (alive(job.pid) && Date.now() - t0 < 3000) await new Promise((r) => setTimeout(r, 100));
    if (alive(job.pid)) kill('SIGKILL');
    return this.get(id);
  }

  /** Stops every job this server started (tests; `dyad serve` leaves jobs running on exit). */
  async stopAll(): Promise<void> {
    await Promise.all([...this.#children.keys()].map((id) => this.cancel(id)));
  }
}
