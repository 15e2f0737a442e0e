/**
 * Training progress: a live bar on a TTY (images/s, loss, lr, ETA), plain periodic lines
 * when stdout is not a TTY (CI logs), nothing when silent.
 */
export interface ProgressStats {
  epoch: number;
  epochs: number;
  step: number;
  steps: number;
  loss: number;
  lr: number;
  imgPerS: number;
}

const fmtTime = (s: number): string => {
  if (!Number.isFinite(s)) return '--:--';
  const m = Math.floor(s / 60);
  const h = Math.floor(m / 60);
  const ss = String(Math.floor(s % 60)).padStart(2, '0');
  return h > 0 ? `${h}:${String(m % 60).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
};

export class Progress {
  private lastPrint = 0;
  private readonly tty: boolean;

  constructor(
    private readonly out: NodeJS.WriteStream = process.stdout,
    private readonly opts: { silent?: boolean; intervalS?: number } = {},
  ) {
    this.tty = Boolean(out.isTTY) && !process.env.CI;
  }

  /** One update per step; throttled (10/s on a TTY, every `intervalS` (default 30 s) otherwise). */
  update(s: ProgressStats, etaS: number): void {
    if (this.opts.silent) return;
    const now = Date.now();
    const every = this.tty ? 100 : (this.opts.intervalS ?? 30) * 1000;
    const last = s.step === s.steps;
    if (now - this.lastPrint < every && !last) return;
    this.lastPrint = now;
    const head = `epoch ${s.epoch + 1}/${s.epochs}`;
    const stats = `loss ${s.loss.toFixed(4)}  lr ${s.lr.toExponential(2)}  ${s.imgPerS.toFixed(0)} img/s  eta ${fmtTime(etaS)}`;
    if (this.tty) {
      const width = 24;
      const filled = Math.round((s.step / Math.max(1, s.steps)) * width);
      const bar = '█'.repeat(filled) + '░'.repeat(width - filled);
      this.out.write(`\r${head} ${bar} ${s.step}/${s.steps}  ${stats}\x1b[K`);
      if (last) this.out.write('\n');
    } else {
      this.out.write(`${head} step ${s.step}/${s.steps}  ${stats}\n`);
    }
  }

  /** A line of its own (epoch summaries, evaluation results). */
  log(line: string): void {
    if (this.opts.silent) return;
    this.out.write((this.tty ? '\r\x1b[K' : '') + line + '\n');
  }
}
