/**
 * The server's side of the compute process (`engine.ts`): forks it on first use, matches answers
 * to requests by id, and starts a new one on the next request when it dies.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ENGINE = fileURLToPath(new URL('./engine.js', import.meta.url));

/** An error the engine reported; `code` is the DyadError code when there was one. */
export class EngineError extends Error {
  constructor(message: string, readonly code: string | null, readonly kind: string) {
    super(message);
    this.name = 'EngineError';
  }
}

export class EngineClient {
  #child: ChildProcess | null = null;
  #next = 1;
  readonly #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

  #start(): ChildProcess {
    const child = fork(ENGINE, [], { serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env: { ...process.env, CI: '1' } });
    child.on('message', (m: { id: number; result?: unknown; error?: { message: string; code: string | null; name: string } }) => {
      const p = this.#pending.get(m.id);
      if (!p) return;
      this.#pending.delete(m.id);
      if (m.error) p.reject(new EngineError(m.error.message, m.error.code, m.error.name));
      else p.resolve(m.result);
    });
    child.on('exit', (code, signal) => {
      if (this.#child === child) this.#child = null;
      for (const [id, p] of this.#pending) {
        p.reject(new EngineError(`the studio's compute process ended (${signal ?? `code ${code}`}) while working on this request`, 'ENGINE_DIED', 'Error'));
        this.#pending.delete(id);
      }
    });
    return child;
  }

  call<T>(op: string, args: Record<string, unknown>): Promise<T> {
    const child = (this.#child ??= this.#start());
    const id = this.#next++;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      child.send({ id, op, args });
    });
  }

  close(): void {
    const c = this.#child;
    this.#child = null;
    if (c && c.exitCode === null) c.kill();
  }
}
