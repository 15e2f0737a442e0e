/**
 * dyad studio's HTTP server (Fastify): the JSON API under `/api/` and the prebuilt frontend
 * (`dist/web/`, built by Vite from `web/`).
 *
 * Security (see security.ts): bound to 127.0.0.1 by default; bound elsewhere, every `/api/` call
 * needs the token (`Authorization: Bearer`, `x-dyad-token`, or `?token=` for EventSource and
 * images); bound to loopback, a request whose Host is not loopback is refused (DNS rebinding).
 * Files are named relative to a root and resolved by `resolveUnder`; images of an index are
 * named by row id, never by path. Uploads are capped (`uploadLimit`) and decoded by the safe
 * decoder in the compute process. JSON bodies have schemas. Errors are `{ error, code }`, never a
 * stack. Training, export, embedding and maps run in child processes (jobs.ts, engine.ts).
 */
import { existsSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import multipart from '@fastify/multipart';
import fastifyStatic from '@fastify/static';
import { isLoopbackHost, newToken, resolveUnder, tokenMatches } from './security.js';
import { listRuns, readConfig, readMetrics, summarizeRun, type JobView } from './runs.js';
import { Jobs, type JobState } from './jobs.js';
import { RUN_NAME, trainArgv, trainFields } from './train_form.js';
import { EngineClient, EngineError } from './engine_client.js';
import { Thumbnails, THUMB_SIDES } from './thumbs.js';
import { IndexPool } from './index_pool.js';

export interface StudioOptions {
  runs: string;
  db: string;
  host?: string;
  port?: number;
  /** Required on /api calls when set; always set (generated when absent) for a non-loopback host. */
  token?: string | null;
  /** Upload size cap in bytes (default 20 MB). */
  uploadLimit?: number;
  /** Default CLIP model (folder or Hub id) for zero-shot and text search. */
  clip?: string | null;
  /** Thumbnail cache folder (default `<db>/../studio-cache`). */
  cacheDir?: string;
  /** Folder of the built frontend (default dist/web of the package). */
  webRoot?: string;
  logger?: boolean;
}

export interface Studio {
  app: FastifyInstance;
  url: string;
  token: string | null;
  jobs: Jobs;
  close(options?: { stopJobs?: boolean }): Promise<void>;
}

const WEB_ROOT = fileURLToPath(new URL('../../web/', import.meta.url));

/** An HTTP error with a status and a message for the user. */
export class HttpError extends Error {
  constructor(readonly statusCode: number, message: string, readonly code = 'BAD_REQUEST') {
    super(message);
  }
}

const STATUS_OF_CODE: Record<string, number> = {
  DECODE: 400, SOURCE: 400, BAD_INPUT: 400, TABLE_NOT_FOUND: 404, MODEL_MISMATCH: 409, WEIGHTS_NOT_FOUND: 409, DIM_MISMATCH: 409,
};

function runName(q: unknown): string {
  const name = (q as { name?: unknown }).name;
  if (typeof name !== 'string' || !new RegExp(RUN_NAME).test(name)) throw new HttpError(400, 'name: a run folder under the runs root (letters, digits, . _ -; one or two levels)');
  return name;
}

export async function createStudio(o: StudioOptions): Promise<Studio> {
  const host = o.host ?? '127.0.0.1';
  const loopback = isLoopbackHost(host);
  const token = o.token ?? (loopback ? null : newToken());
  const runsRoot = path.resolve(o.runs);
  await fsp.mkdir(runsRoot, { recursive: true });
  const db = path.resolve(o.db);
  const uploadLimit = o.uploadLimit ?? 20 * 1024 * 1024;
  const jobs = new Jobs(runsRoot);
  const engine = new EngineClient();
  const thumbs = new Thumbnails(o.cacheDir ?? path.join(path.dirname(db), 'studio-cache'));
  const pool = new IndexPool(db);
  const webRoot = o.webRoot ?? WEB_ROOT;

  const app = Fastify({
    logger: o.logger ?? false, bodyLimit: 1024 * 1024, trustProxy: false, forceCloseConnections: true,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allowUnionTypes: true } },
  });
  await app.register(multipart, { limits: { fileSize: uploadLimit, files: 1, fields: 16, fieldSize: 64 * 1024, parts: 20 } });

  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, _req, reply) => {
    let status = err.statusCode ?? (err instanceof EngineError && err.code ? STATUS_OF_CODE[err.code] : undefined) ?? STATUS_OF_CODE[err.code ?? ''] ?? 500;
    if (err.code === 'FST_REQ_FILE_TOO_LARGE' || err.code === 'FST_FILES_LIMIT') status = 413;
    const message = status === 413 ? `upload too large: the limit is ${uploadLimit} bytes (dyad serve --upload-limit)` : err.message || 'internal error';
    void reply.status(status).type('application/json').send({ error: message.split('\n    at ')[0], code: err.code ?? null });
  });

  // guards: Host header on loopback, token on /api
  app.addHook('onRequest', async (req, reply) => {
    if (loopback) {
      const h = (req.headers.host ?? '').replace(/:\d+$/, '');
      if (!isLoopbackHost(h)) return reply.status(403).send({ error: `Host ${h || '(none)'} refused: the studio is bound to ${host}`, code: 'FORBIDDEN' });
    }
    if (token && req.url.startsWith('/api/')) {
      const auth = req.headers.authorization?.replace(/^Bearer\s+/i, '');
      const given = auth ?? (req.headers['x-dyad-token'] as string | undefined) ?? ((req.query as Record<string, string> | undefined)?.token);
      if (!tokenMatches(given, token)) return reply.status(401).send({ error: 'missing or wrong token: use the URL printed by dyad serve (…/?token=…)', code: 'UNAUTHORIZED' });
    }
  });

  const jobViews = async (): Promise<Map<string, JobView>> => {
    const m = new Map<string, JobView>();
    for (const j of (await jobs.list()).filter((x) => x.kind === 'train').reverse()) m.set(j.run, { id: j.id, status: j.status, error: j.error, argv: j.argv });
    return m;
  };

  app.get('/api/health', async () => ({ ok: true }));
  app.get('/api/config', async () => ({ runs: runsRoot, db, clip: o.clip ?? null, uploadLimit, token: Boolean(token) }));

  // ---- runs
  app.get('/api/runs', async () => {
    const views = await jobViews();
    return listRuns(runsRoot, (n) => views.get(n) ?? null);
  });
  app.get('/api/run', async (req) => {
    const name = runName(req.query);
    const dir = path.join(runsRoot, ...name.split('/'));
    const summary = await summarizeRun(runsRoot, dir, (await jobViews()).get(name) ?? null);
    if (!summary) throw new HttpError(404, `no run ${name} under ${runsRoot}`, 'NOT_FOUND');
    return { summary, config: await readConfig(dir), metrics: await readMetrics(dir) };
  });
  app.get('/api/run/stream', async (req, reply) => {
    const name = runName(req.query);
    const dir = path.join(runsRoot, ...name.split('/'));
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    let sent = 0;
    let lastStatus = '';
    let closed = false;
    const send = (event: string, data: unknown) => res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    const tick = async () => {
      if (closed) return;
      const rows = await readMetrics(dir);
      if (rows.length < sent) sent = 0; // the run was restarted
      if (rows.length > sent) {
        send('metrics', { from: sent, rows: rows.slice(sent) });
        sent = rows.length;
      }
      const view = (await jobViews()).get(name) ?? null;
      const s = await summarizeRun(runsRoot, dir, view);
      const job = view ? await jobs.get(view.id) : null;
      const status = JSON.stringify({ status: s?.status ?? 'stopped', progress: job?.progress ?? null, error: s?.error ?? null });
      if (status !== lastStatus) {
        res.write(`event: status\ndata: ${status}\n\n`);
        lastStatus = status;
      }
    };
    await tick();
    const timer = setInterval(() => void tick().catch(() => undefined), 500);
    const ping = setInterval(() => res.write(': ping\n\n'), 15_000);
    req.raw.on('close', () => {
      closed = true;
      clearInterval(timer);
      clearInterval(ping);
    });
  });

  // files of the runs root (checkpoints, exports, config): /api/files/runs/<relative path>
  app.get('/api/files/runs/*', async (req, reply) => {
    const rel = (req.params as { '*': string })['*'];
    const file = await resolveUnder(runsRoot, rel);
    if (!file) throw new HttpError(404, 'no such file under the runs folder', 'NOT_FOUND');
    const st = await fsp.stat(file);
    if (!st.isFile()) throw new HttpError(404, 'not a file', 'NOT_FOUND');
    if (path.basename(file).startsWith('.') || file.includes(`${path.sep}.jobs${path.sep}`)) throw new HttpError(403, 'hidden files are not served', 'FORBIDDEN');
    const { createReadStream } = await import('node:fs');
    void reply.header('content-type', 'application/octet-stream').header('content-length', st.size)
      .header('content-disposition', `attachment; filename="${path.basename(file).replace(/[^A-Za-z0-9._-]/g, '_')}"`);
    return reply.send(createReadStream(file));
  });

  // ---- jobs
  app.get('/api/train/fields', async () => trainFields());
  app.post('/api/jobs/train', {
    schema: {
      body: {
        type: 'object', required: ['run', 'options'], additionalProperties: false,
        properties: {
          run: { type: 'string', pattern: RUN_NAME },
          options: { type: 'object', maxProperties: 80, additionalProperties: { type: ['string', 'number', 'boolean', 'null'] } },
        },
      },
    },
  }, async (req) => {
    const { run, options } = req.body as { run: string; options: Record<string, unknown> };
    let argv: string[];
    try {
      argv = trainArgv(options, path.join(runsRoot, ...run.split('/')));
    } catch (e) {
      throw new HttpError(400, (e as Error).message);
    }
    const running = (await jobs.list()).find((j) => j.run === run && j.status === 'running');
    if (running) throw new HttpError(409, `run ${run} is already being trained by job ${running.id}`, 'CONFLICT');
    return jobs.start('train', argv, run);
  });
  app.post('/api/jobs/export', {
    schema: {
      body: {
        type: 'object', required: ['run', 'checkpoint'], additionalProperties: false,
        properties: {
          run: { type: 'string', pattern: RUN_NAME },
          checkpoint: { type: 'string', pattern: '^[A-Za-z0-9_][A-Za-z0-9._-]*\\.safetensors$' },
          format: { type: 'string', enum: ['onnx'] },
          half: { type: 'boolean' },
        },
      },
    },
  }, async (req) => {
    const b = req.body as { run: string; checkpoint: string; half?: boolean };
    const weights = await resolveUnder(runsRoot, `${b.run}/${b.checkpoint}`);
    if (!weights) throw new HttpError(404, `no checkpoint ${b.checkpoint} in run ${b.run}`, 'NOT_FOUND');
    const out = path.join(runsRoot, ...b.run.split('/'), 'export', b.checkpoint.replace(/\.safetensors$/, b.half ? '-fp16.onnx' : '.onnx'));
    await fsp.mkdir(path.dirname(out), { recursive: true });
    return jobs.start('export', ['export', '--weights', weights, '--format', 'onnx', '--out', out, ...(b.half ? ['--half'] : [])], b.run);
  });
  app.get('/api/jobs', async () => jobs.list());
  const jobId = (p: unknown): string => {
    const id = (p as { id: string }).id;
    if (!/^[0-9a-f-]{8,40}$/.test(id)) throw new HttpError(404, 'no such job', 'NOT_FOUND');
    return id;
  };
  app.get('/api/jobs/:id', async (req) => {
    const j = await jobs.get(jobId(req.params));
    if (!j) throw new HttpError(404, 'no such job', 'NOT_FOUND');
    return { ...j, log: await jobs.log(j.id) };
  });
  app.post('/api/jobs/:id/cancel', async (req) => {
    const j = await jobs.cancel(jobId(req.params));
    if (!j) throw new HttpError(404, 'no such job', 'NOT_FOUND');
    return j;
  });

  // ---- indexes
  const table = (p: unknown): string => {
    const t = (p as { table: string }).table;
    if (!/^[A-Za-z0-9_-]{1,100}$/.test(t)) throw new HttpError(404, 'no such index table', 'NOT_FOUND');
    return t;
  };
  const limitOf = (q: unknown, d: number, max: number): number => {
    const v = Number((q as { limit?: string }).limit ?? d);
    if (!Number.isInteger(v) || v < 1 || v > max) throw new HttpError(400, `limit must be an integer in 1..${max}`);
    return v;
  };
  const whereOf = (q: unknown): string | undefined => {
    const w = (q as { where?: string }).where;
    if (w === undefined || w.trim() === '') return undefined;
    if (w.length > 2000) throw new HttpError(400, 'where: at most 2000 characters');
    return w;
  };
  const badSql = (e: unknown): never => {
    if (e instanceof HttpError) throw e;
    const err = e as Error & { code?: string };
    if (err.code && STATUS_OF_CODE[err.code]) throw e;
    throw new HttpError(400, `SQL filter refused: ${(err.message ?? String(e)).split('\n')[0]}`);
  };
  app.get('/api/indexes', async () => pool.list());
  app.get('/api/index/:table/rows', async (req) => {
    const ix = await pool.open(table(req.params));
    const where = whereOf(req.query);
    const limit = limitOf(req.query, 200, 5000);
    const offset = Number((req.query as { offset?: string }).offset ?? 0) || 0;
    try {
      const [rows, total] = await Promise.all([ix.sql(where, { limit, offset }), ix.count(where)]);
      return { total, rows };
    } catch (e) {
      return badSql(e);
    }
  });
  app.get('/api/index/:table/ids', async (req) => {
    const ix = await pool.open(table(req.params));
    const where = whereOf(req.query);
    try {
      const rows = await ix.sql(where, { limit: 5_000_000 });
      return { total: rows.length, ids: rows.map((r) => r.id) };
    } catch (e) {
      return badSql(e);
    }
  });
  app.get('/api/index/:table/similar/:id', async (req) => {
    const ix = await pool.open(table(req.params));
    const id = (req.params as { id: string }).id;
    if (!/^[0-9a-f]{8,64}$/.test(id)) throw new HttpError(404, 'no such row', 'NOT_FOUND');
    const row = await ix.get(id);
    if (!row) throw new HttpError(404, 'no such row', 'NOT_FOUND');
    try {
      const hits = await ix.search(row.vector, { limit: limitOf(req.query, 24, 500) + 1, where: whereOf(req.query) });
      return { query: { id: row.id, path: row.path, label: row.label, split: row.split }, hits: hits.filter((h) => h.id !== id).slice(0, limitOf(req.query, 24, 500)) };
    } catch (e) {
      return badSql(e);
    }
  });
  app.get('/api/index/:table/map', async (req) => {
    const t = table(req.params);
    const method = (req.query as { method?: string }).method ?? 'pca';
    if (method !== 'pca' && method !== 'umap') throw new HttpError(400, "method: 'pca' or 'umap'");
    const m = await engine.call<{ method: string; ids: string[]; x: Float32Array; y: Float32Array; labels: (string | null)[]; splits: (string | null)[] }>('map', { db, table: t, method });
    return { method: m.method, ids: m.ids, x: Array.from(m.x, (v) => Math.round(v * 1e5) / 1e5), y: Array.from(m.y, (v) => Math.round(v * 1e5) / 1e5), labels: m.labels, splits: m.splits };
  });
  const readUpload = async (req: FastifyRequest): Promise<{ bytes: Buffer; name: string; fields: Record<string, string> }> => {
    if (!req.isMultipart()) throw new HttpError(415, 'send the image as multipart/form-data (field "file")', 'UNSUPPORTED_MEDIA_TYPE');
    let bytes: Buffer | null = null;
    let name = 'upload';
    const fields: Record<string, string> = {};
    for await (const part of req.parts()) {
      if (part.type === 'file') {
        if (bytes) throw new HttpError(400, 'send one image');
        bytes = await part.toBuffer();
        name = part.filename.replace(/[^\w.-]/g, '_').slice(0, 100) || 'upload';
      } else fields[part.fieldname] = String(part.value);
    }
    if (!bytes || bytes.length === 0) throw new HttpError(400, 'no image in the upload (field "file")');
    return { bytes, name, fields };
  };
  app.post('/api/index/:table/search-image', async (req) => {
    const t = table(req.params);
    const { bytes, name, fields } = await readUpload(req);
    const limit = limitOf({ limit: fields.limit }, 24, 500);
    return { hits: await engine.call('similarImage', { db, table: t, bytes, name, limit, where: whereOf(fields) }) };
  });
  app.post('/api/index/:table/search-text', {
    schema: {
      body: {
        type: 'object', required: ['text'], additionalProperties: false,
        properties: { text: { type: 'string', minLength: 1, maxLength: 1000 }, limit: { type: 'integer', minimum: 1, maximum: 500 }, where: { type: 'string', maxLength: 2000 } },
      },
    },
  }, async (req) => {
    const b = req.body as { text: string; limit?: number; where?: string };
    return { hits: await engine.call('text', { db, table: table(req.params), text: b.text, limit: b.limit ?? 24, where: whereOf(b) }) };
  });
  app.get('/api/index/:table/duplicates', async (req) => {
    const th = Number((req.query as { threshold?: string }).threshold ?? 0.95);
    if (!(th > -1 && th <= 1)) throw new HttpError(400, 'threshold: a cosine similarity in (-1, 1]');
    return { groups: await engine.call('duplicates', { db, table: table(req.params), threshold: th, where: whereOf(req.query) }) };
  });
  app.get('/api/index/:table/failed', async (req) => engine.call('failed', { db, table: table(req.params), limit: 200 }));
  const rowFile = async (req: FastifyRequest): Promise<string> => {
    const ix = await pool.open(table(req.params));
    const id = (req.params as { id: string }).id;
    const p = /^[0-9a-f]{8,64}$/.test(id) ? await pool.pathOf(ix, id) : null;
    if (!p || !existsSync(p)) throw new HttpError(404, 'no such image', 'NOT_FOUND');
    return p;
  };
  app.get('/api/index/:table/thumb/:id', async (req, reply: FastifyReply) => {
    const side = Number((req.query as { size?: string }).size ?? 128);
    if (!(THUMB_SIDES as readonly number[]).includes(side)) throw new HttpError(400, `size: one of ${THUMB_SIDES.join(', ')}`);
    const buf = await thumbs.get(await rowFile(req), side);
    return reply.header('content-type', 'image/webp').header('cache-control', 'private, max-age=3600').send(buf);
  });

  // ---- zero-shot
  app.post('/api/zeroshot', async (req) => {
    const { bytes, name, fields } = await readUpload(req);
    const labels = (fields.labels ?? '').split(/[,\n]/).map((s) => s.trim()).filter(Boolean);
    if (labels.length < 2 || labels.length > 100) throw new HttpError(400, 'labels: between 2 and 100, separated by commas');
    const templates = (fields.templates ?? '').split('\n').map((s) => s.trim()).filter(Boolean);
    if (templates.some((t) => !t.includes('{}'))) throw new HttpError(400, "templates: each needs a {} where the label goes, e.g. 'a photo of a {}.'");
    const model = (fields.model ?? '').trim() || o.clip;
    if (!model) throw new HttpError(400, 'no CLIP model: start dyad serve with --clip <folder or Hub id>, or type one in the model box');
    return engine.call('zeroShot', { model, bytes, name, labels, templates });
  });

  app.all('/api/*', async () => {
    throw new HttpError(404, 'no such API route', 'NOT_FOUND');
  });

  // ---- the frontend
  if (existsSync(path.join(webRoot, 'index.html'))) {
    await app.register(fastifyStatic, { root: webRoot, index: ['index.html'], wildcard: false, dotfiles: 'deny' });
    app.setNotFoundHandler((req, reply) => {
      if (req.method === 'GET' && !req.url.startsWith('/api/')) return reply.sendFile('index.html');
      return reply.status(404).send({ error: 'not found', code: 'NOT_FOUND' });
    });
  } else {
    app.get('/', async (_req, reply) => reply.type('text/html').send('<!doctype html><p>dyad studio: the frontend is not built. Run <code>npm run build:web</code>.</p>'));
  }

  const address = await app.listen({ host, port: o.port ?? 7860 });
  const u = new URL(address);
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${u.port}/`;
  return {
    app,
    url,
    token,
    jobs,
    async close(opts = {}) {
      if (opts.stopJobs) await jobs.stopAll();
      engine.close();
      await app.close();
      pool.close();
    },
  };
}

export type { JobState };
