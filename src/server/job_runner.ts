/**
 * Child-process entry of a studio job: `node job_runner.js <job.json> <status.json> -- <dyad argv>`.
 * Runs the `dyad` CLI in this process (stdout/stderr are the job's log) and records how it ended
 * in `<status.json>`, unless the server already wrote it (a cancel). Export jobs list the files
 * they wrote (`dyad: wrote ...` lines) as outputs.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../torch/io.js';

const [, , jobFile, statusFile, sep, ...argv] = process.argv;
if (!jobFile || !statusFile || sep !== '--') {
  console.error('usage: job_runner <job.json> <status.json> -- <dyad arguments>');
  process.exit(2);
}

let lastError: string | null = null;
const origError = console.error.bind(console);
console.error = (...a: unknown[]) => {
  const s = a.map(String).join(' ');
  if (s.startsWith('dyad: error:')) lastError = s.replace(/^dyad: error:\s*/, '');
  origError(...a);
};
const wrote: string[] = [];
const origLog = console.log.bind(console);
console.log = (...a: unknown[]) => {
  const s = a.map(String).join(' ');
  const m = /^dyad: wrote (.+?)(?: and (.+))?$/.exec(s);
  if (m) wrote.push(...[m[1], m[2]].filter((x): x is string => Boolean(x)));
  origLog(...a);
};

function finish(status: 'finished' | 'failed' | 'cancelled', exitCode: number | null, error: string | null): void {
  if (existsSync(statusFile!)) return; // the server recorded a cancel
  const runsRoot = path.dirname(path.dirname(jobFile!));
  const outputs = wrote.map((f) => path.relative(runsRoot, path.resolve(f)).split(path.sep).join('/')).filter((f) => !f.startsWith('..'));
  writeFileAtomic(statusFile!, JSON.stringify({ status, exitCode, error, ended: Date.now(), outputs }) + '\n');
}

process.on('SIGTERM', () => {
  finish('cancelled', null, 'cancelled');
  process.exit(143);
});

try {
  JSON.parse(readFileSync(jobFile, 'utf8'));
} catch {
  /* the server writes the job file right after spawning; not needed to run */
}
const { main } = await import('../cli/index.js');
try {
  await main(['node', 'dyad', ...argv]);
  const code = typeof process.exitCode === 'number' ? process.exitCode : 0;
  finish(code === 0 ? 'finished' : 'failed', code, code === 0 ? null : (lastError ?? `dyad exited with code ${code}`));
  process.exit(code);
} catch (e) {
  finish('failed', 1, (e as Error).message);
  process.exit(1);
}
