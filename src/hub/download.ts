/**
 * `hubDownload`: one file of a Hugging Face Hub model repository into the HF cache (cache.ts),
 * following huggingface_hub's `hf_hub_download`:
 *
 * 1. HEAD `{endpoint}/{repo}/resolve/{revision}/{file}` (relative redirects followed, an LFS
 *    redirect to another host or path is not): `X-Repo-Commit` gives the commit,
 *    `X-Linked-Etag` (LFS: the sha256) or `ETag` the blob name, `Location` where the bytes are.
 * 2. snapshots/{commit}/{file} present: done. blobs/{etag} present: link it. Otherwise GET the
 *    bytes into blobs/{etag}.incomplete, resuming from its size with `Range: bytes=N-` (after a
 *    cut connection, up to 5 tries, and across runs); check an LFS file's sha256 against its
 *    etag; rename into blobs/{etag}; link the snapshot file; write refs/{revision}.
 *
 * `HF_ENDPOINT` (default https://huggingface.co), `HF_TOKEN` (else the file $HF_HOME/token that
 * `huggingface-cli login` writes) sent as `Authorization: Bearer` to the endpoint's host only,
 * `HF_HUB_OFFLINE=1` (cache only), `HF_HUB_ETAG_TIMEOUT` / `HF_HUB_DOWNLOAD_TIMEOUT` (seconds,
 * default 10: the HEAD, and the longest wait for bytes). When the Hub cannot be reached, a
 * cached copy of the revision is used, as huggingface_hub does.
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, openSync, closeSync, writeSync, renameSync, rmSync, statSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { HubError, RepoCache, hubCacheDir, isCommit } from './cache.js';

export interface HubOptions {
  /** Branch, tag or commit (default `main`). */
  revision?: string;
  /** The cache root (default {@link hubCacheDir}). */
  cacheDir?: string;
  /** Default `$HF_ENDPOINT`, else https://huggingface.co. */
  endpoint?: string;
  /** Default `$HF_TOKEN`, else $HF_HOME/token; `false` sends none. */
  token?: string | false;
  /** Cache only (default `HF_HUB_OFFLINE=1`). */
  offline?: boolean;
  /** Seconds to wait for the HEAD and for each chunk of bytes (default 10). */
  timeout?: number;
  /** Draw a progress bar on stderr (default: when stderr is a TTY). */
  progress?: boolean;
  /** Re-download even if cached. */
  force?: boolean;
}

const truthy = (v: string | undefined): boolean => v !== undefined && ['1', 'true', 'yes', 'on'].includes(v.toLowerCase());

export function hubEndpoint(o: HubOptions = {}): string {
  return (o.endpoint ?? process.env.HF_ENDPOINT ?? 'https://huggingface.co').replace(/\/+$/, '');
}

export function hubOffline(o: HubOptions = {}): boolean {
  return o.offline ?? (truthy(process.env.HF_HUB_OFFLINE) || truthy(process.env.TRANSFORMERS_OFFLINE));
}

export function hubToken(o: HubOptions = {}): string | null {
  if (o.token === false) return null;
  if (o.token) return o.token;
  if (process.env.HF_TOKEN) return process.env.HF_TOKEN;
  const home = process.env.HF_HOME ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'huggingface');
  const file = process.env.HF_TOKEN_PATH ?? path.join(home, 'token');
  try {
    return readFileSync(file, 'utf8').trim() || null;
  } catch {
    return null;
  }
}

/** `a/b c` → `a/b%20c`: each path segment encoded, slashes kept. */
export function quotePath(p: string): string {
  return p.split('/').map(encodeURIComponent).join('/');
}

/** An etag without quotes and the weak `W/` prefix. */
export function normalizeEtag(etag: string | null): string | null {
  return etag === null ? null : etag.replace(/^W\//, '').replace(/^"|"$/g, '');
}

/** Headers for a request to `url`: the token only to the endpoint's own host. */
function headers(url: string, o: HubOptions, extra: Record<string, string> = {}): Record<string, string> {
  const h: Record<string, string> = { 'user-agent': 'dyad; node', 'accept-encoding': 'identity', ...extra };
  const token = hubToken(o);
  if (token && new URL(url).origin === new URL(hubEndpoint(o)).origin) h.authorization = `Bearer ${token}`;
  return h;
}

function seconds(o: HubOptions, env: string): number {
  return (o.timeout ?? (Number(process.env[env]) || 10)) * 1000;
}

/** A network failure (no answer), as opposed to an HTTP error status. */
class Unreachable extends Error {}

/** An HTTP answer that is an error, as a HubError naming the repo, the file and the fix. */
export function httpError(res: Response, repoId: string, what: string, revision: string): HubError {
  const code = res.headers.get('x-error-code');
  const s = res.status;
  let msg: string;
  if (s === 401 || s === 403 || code === 'GatedRepo') {
    msg = `${repoId} is gated or private (HTTP ${s}): accept its terms on the Hub and set HF_TOKEN to an access token (https://huggingface.co/settings/tokens)`;
  } else if (code === 'RevisionNotFound') msg = `revision '${revision}' does not exist in ${repoId}`;
  else if (code === 'EntryNotFound') msg = `${what} is not in ${repoId} at revision '${revision}'`;
  else if (s === 404 || code === 'RepoNotFound') msg = `${repoId} was not found on the Hub (HTTP ${s}) when fetching ${what}: check the id, or set HF_TOKEN for a private repository`;
  else msg = `the Hub answered HTTP ${s} for ${what} of ${repoId}`;
  return new HubError(`hub: ${msg}`, { status: s });
}

/** fetch with a timeout; network failures become Unreachable. */
async function request(url: string, init: RequestInit, ms: number): Promise<Response> {
  try {
    return await fetch(url, { ...init, signal: AbortSignal.timeout(ms) });
  } catch (e) {
    throw new Unreachable(`${url}: ${(e as Error).message}${(e as Error & { cause?: Error }).cause ? ` (${(e as Error & { cause: Error }).cause.message})` : ''}`);
  }
}

interface FileMeta { commit: string; etag: string; size: number | null; url: string }

/** HEAD of a file: its commit, etag, size and download URL (huggingface_hub's `get_hf_file_metadata`). */
export async function fileMetadata(repoId: string, file: string, o: HubOptions = {}): Promise<FileMeta> {
  const revision = o.revision ?? 'main';
  let url = `${hubEndpoint(o)}/${repoId}/resolve/${encodeURIComponent(revision)}/${quotePath(file)}`;
  for (let hop = 0; hop < 6; hop++) {
    const res = await request(url, { method: 'HEAD', redirect: 'manual', headers: headers(url, o) }, seconds(o, 'HF_HUB_ETAG_TIMEOUT'));
    const location = res.headers.get('location');
    if (res.status >= 300 && res.status < 400 && location) {
      // A relative redirect (a renamed repo) is followed; one to another host or an LFS path is where the bytes are.
      if (!/^[a-z]+:\/\//i.test(location) && !res.headers.get('x-linked-etag')) {
        url = new URL(location, url).toString();
        continue;
      }
    } else if (!res.ok) throw httpError(res, repoId, file, revision);
    const commit = res.headers.get('x-repo-commit');
    const etag = normalizeEtag(res.headers.get('x-linked-etag') ?? res.headers.get('etag'));
    if (!commit || !etag) throw new HubError(`hub: ${url} did not answer with X-Repo-Commit and ETag: is ${hubEndpoint(o)} a Hugging Face Hub endpoint?`);
    const size = Number(res.headers.get('x-linked-size') ?? res.headers.get('content-length'));
    return { commit, etag, size: Number.isFinite(size) && size > 0 ? size : null, url: location ? new URL(location, url).toString() : url };
  }
  throw new HubError(`hub: too many redirects for ${file} of ${repoId}`);
}

/** A progress bar on stderr, redrawn in place; silent when off. */
function progressBar(label: string, total: number | null, on: boolean) {
  let last = 0;
  const t0 = Date.now();
  const mb = (n: number) => (n / 1e6).toFixed(1);
  const draw = (done: number, final: boolean) => {
    if (!on || (!final && Date.now() - last < 100)) return;
    last = Date.now();
    const frac = total ? Math.min(1, done / total) : 0;
    const bar = total ? `[${'#'.repeat(Math.round(frac * 24)).padEnd(24, '-')}] ` : '';
    const rate = done / Math.max(0.001, (Date.now() - t0) / 1000);
    process.stderr.write(`\r${label} ${bar}${mb(done)}${total ? `/${mb(total)}` : ''} MB ${mb(rate)} MB/s\x1b[K${final ? '\n' : ''}`);
  };
  return { draw };
}

/** sha256 of a file, hex. */
export async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** GETs `url` into `part`, appending from its current size (Range); resolves when complete. */
async function fetchInto(url: string, part: string, meta: FileMeta, o: HubOptions, label: string, repoId: string, revision: string): Promise<void> {
  const have = existsSync(part) ? statSync(part).size : 0;
  if (meta.size !== null && have === meta.size) return;
  const ctl = new AbortController();
  const idle = seconds(o, 'HF_HUB_DOWNLOAD_TIMEOUT');
  let timer = setTimeout(() => ctl.abort(new Error(`no bytes for ${idle / 1000} s`)), idle);
  let res: Response;
  try {
    res = await fetch(url, { headers: headers(url, o, have > 0 ? { range: `bytes=${have}-` } : {}), signal: ctl.signal });
  } catch (e) {
    clearTimeout(timer);
    throw new Unreachable(`${url}: ${(e as Error).message}`);
  }
  if (res.status === 416 && meta.size !== null && have >= meta.size) return clearTimeout(timer);
  if (!res.ok) {
    clearTimeout(timer);
    throw httpError(res, repoId, label, revision);
  }
  // A server that ignores Range answers 200 with the whole file: start over.
  let offset = res.status === 206 ? have : 0;
  const fd = openSync(part, offset > 0 ? 'a' : 'w');
  const bar = progressBar(label, meta.size, o.progress ?? Boolean(process.stderr.isTTY));
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      clearTimeout(timer);
      timer = setTimeout(() => ctl.abort(new Error(`no bytes for ${idle / 1000} s`)), idle);
      writeSync(fd, chunk);
      offset += chunk.length;
      bar.draw(offset, false);
    }
  } catch (e) {
    throw new Unreachable(`${url}: the connection broke after ${offset} bytes (${(e as Error).message})`);
  } finally {
    clearTimeout(timer);
    closeSync(fd);
  }
  bar.draw(offset, true);
  if (meta.size !== null && offset < meta.size) throw new Unreachable(`${url}: the connection closed after ${offset} of ${meta.size} bytes`);
}

/** The cached copy of a file for a revision, or null. */
export function cachedHubFile(repoId: string, file: string, o: HubOptions = {}): string | null {
  const cache = new RepoCache(repoId, o.cacheDir ?? hubCacheDir());
  const commit = cache.commitFor(o.revision ?? 'main');
  return commit === null ? null : cache.cachedFile(commit, file);
}

/**
 * Downloads `file` of model repository `repoId` (once) and returns its path in the cache
 * (snapshots/{commit}/{file}).
 */
export async function hubDownload(repoId: string, file: string, o: HubOptions = {}): Promise<string> {
  const revision = o.revision ?? 'main';
  const cache = new RepoCache(repoId, o.cacheDir ?? hubCacheDir());
  if (hubOffline(o)) {
    const hit = cachedHubFile(repoId, file, o);
    if (hit) return hit;
    throw new HubError(`hub: ${file} of ${repoId} (revision '${revision}') is not in the cache ${cache.dir}, and HF_HUB_OFFLINE=1 forbids downloading it: ` +
      'unset HF_HUB_OFFLINE once to download it, or copy a Hugging Face cache there');
  }
  if (!o.force && isCommit(revision)) {
    const hit = cache.cachedFile(revision, file);
    if (hit) return hit;
  }
  let meta: FileMeta;
  try {
    meta = await fileMetadata(repoId, file, o);
  } catch (e) {
    if (!(e instanceof Unreachable)) throw e;
    const hit = cachedHubFile(repoId, file, o);
    if (hit) return hit;
    throw new HubError(`hub: cannot reach ${hubEndpoint(o)} for ${file} of ${repoId}, and it is not in the cache: ${e.message}`, { cause: e });
  }
  cache.writeRef(revision, meta.commit);
  if (!o.force) {
    const hit = cache.cachedFile(meta.commit, file);
    if (hit) return hit;
  }
  const blob = cache.blobPath(meta.etag);
  if (o.force || !existsSync(blob)) {
    mkdirSync(path.dirname(blob), { recursive: true });
    const part = `${blob}.incomplete`;
    if (o.force) rmSync(part, { force: true });
    for (let attempt = 1; ; attempt++) {
      try {
        await fetchInto(meta.url, part, meta, o, `${repoId}/${file}`, repoId, revision);
        break;
      } catch (e) {
        if (!(e instanceof Unreachable) || attempt >= 5) {
          throw e instanceof Unreachable
            ? new HubError(`hub: downloading ${file} of ${repoId} failed: ${e.message}. Run again to resume (the partial file ${part} is kept)`, { cause: e })
            : e;
        }
        await new Promise((r) => setTimeout(r, 200 * attempt));
      }
    }
    if (/^[0-9a-f]{64}$/.test(meta.etag)) {
      const got = await sha256File(part);
      if (got !== meta.etag) {
        rmSync(part, { force: true });
        throw new HubError(`hub: ${file} of ${repoId} is corrupted: its sha256 is ${got}, the Hub says ${meta.etag}. The bad download was deleted; run again`);
      }
    }
    renameSync(part, blob);
  }
  return cache.linkPointer(meta.commit, file, meta.etag);
}
