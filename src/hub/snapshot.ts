/**
 * `snapshotDownload`: the files of a model repository that dyad needs, into one snapshot folder
 * of the HF cache (huggingface_hub's `snapshot_download` with `allow_patterns`), and
 * `resolveModelSource`: a local path or a Hub id (`hf://org/name@rev`, `org/name@rev`) → a
 * local folder or file. Nothing is downloaded unless a Hub id is named.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { HubError, RepoCache, hubCacheDir } from './cache.js';
import { hubDownload, hubEndpoint, hubOffline, hubToken, httpError, type HubOptions } from './download.js';

/**
 * The files dyad loads by default: configs, tokenizer and preprocessor files, and the root
 * safetensors (a sharded checkpoint's index and only the shards it names).
 */
export const MODEL_FILE_PATTERNS = [
  'config.json', 'generation_config.json', 'preprocessor_config.json', 'processor_config.json',
  'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'added_tokens.json', 'vocab.json', 'merges.txt', 'vocab.txt',
  '*.safetensors', '*.safetensors.index.json',
];

export interface SnapshotOptions extends HubOptions {
  /** Glob patterns (`*` within a path segment, `**` across) of the files to fetch; default {@link MODEL_FILE_PATTERNS}. */
  include?: string[];
}

/** A glob (`*`, `?`, `**`) as a RegExp over '/'-separated paths. */
export function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*' && glob[i + 1] === '*') {
      re += '.*';
      i++;
      if (glob[i + 1] === '/') i++;
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/**
 * The files to fetch out of a repository's file list: those matching `include`, and of the
 * safetensors, when an index (`*.safetensors.index.json`) is among them, only the index
 * (the shards are added once it is read, see {@link snapshotDownload}).
 */
export function selectFiles(files: string[], include: string[] = MODEL_FILE_PATTERNS): string[] {
  const res = include.map(globToRegExp);
  const chosen = files.filter((f) => res.some((r) => r.test(f)));
  const indexed = chosen.some((f) => f.endsWith('.safetensors.index.json'));
  return indexed ? chosen.filter((f) => !f.endsWith('.safetensors')) : chosen;
}

interface RepoInfo { sha: string; siblings: { rfilename: string }[] }

async function repoInfo(repoId: string, o: HubOptions): Promise<RepoInfo> {
  const revision = o.revision ?? 'main';
  const url = `${hubEndpoint(o)}/api/models/${repoId}/revision/${encodeURIComponent(revision)}`;
  const token = hubToken(o);
  let res: Response;
  try {
    res = await fetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {}, signal: AbortSignal.timeout((o.timeout ?? 10) * 1000) });
  } catch (e) {
    throw Object.assign(new HubError(`hub: cannot reach ${hubEndpoint(o)} for ${repoId}: ${(e as Error).message}`, { cause: e }), { unreachable: true });
  }
  if (!res.ok) throw httpError(res, repoId, 'the file list', revision);
  const info = (await res.json()) as RepoInfo;
  if (typeof info.sha !== 'string' || !Array.isArray(info.siblings)) throw new HubError(`hub: ${url} did not answer with a model's sha and siblings`);
  return info;
}

/** The cached snapshot folder of a revision when it holds the wanted files, else null. */
function cachedSnapshot(cache: RepoCache, revision: string, include: string[] | undefined): string | null {
  const commit = cache.commitFor(revision);
  if (commit === null) return null;
  const files = cache.snapshotFiles(commit);
  return selectFiles(files, include).length > 0 ? cache.snapshotDir(commit) : null;
}

/**
 * Downloads the needed files of `repoId` at `revision` (once) and returns the snapshot folder
 * (snapshots/{commit}). Offline (HF_HUB_OFFLINE=1) it returns the cached snapshot or throws.
 */
export async function snapshotDownload(repoId: string, o: SnapshotOptions = {}): Promise<string> {
  const revision = o.revision ?? 'main';
  const cache = new RepoCache(repoId, o.cacheDir ?? hubCacheDir());
  if (hubOffline(o)) {
    const dir = cachedSnapshot(cache, revision, o.include);
    if (dir) return dir;
    throw new HubError(`hub: ${repoId} (revision '${revision}') is not in the cache ${cache.dir}, and HF_HUB_OFFLINE=1 forbids downloading it: ` +
      'unset HF_HUB_OFFLINE once to download it, or copy a Hugging Face cache there');
  }
  let info: RepoInfo;
  try {
    info = await repoInfo(repoId, o);
  } catch (e) {
    const dir = (e as { unreachable?: boolean }).unreachable ? cachedSnapshot(cache, revision, o.include) : null;
    if (dir) return dir;
    throw e;
  }
  cache.writeRef(revision, info.sha);
  const files = info.siblings.map((s) => s.rfilename);
  const wanted = selectFiles(files, o.include);
  if (wanted.length === 0) throw new HubError(`hub: ${repoId} has no files matching ${(o.include ?? MODEL_FILE_PATTERNS).join(', ')} at revision '${revision}'`);
  const at = { ...o, revision: info.sha };
  for (const f of wanted) {
    const local = await hubDownload(repoId, f, at);
    if (f.endsWith('.safetensors.index.json')) {
      const index = JSON.parse(readFileSync(local, 'utf8')) as { weight_map?: Record<string, string> };
      const dir = f.includes('/') ? f.slice(0, f.lastIndexOf('/') + 1) : '';
      for (const shard of new Set(Object.values(index.weight_map ?? {}))) await hubDownload(repoId, dir + shard, at);
    }
  }
  return cache.snapshotDir(info.sha);
}

/** A parsed Hub id: `hf://org/name@rev/path/in/repo` or `org/name@rev`. */
export interface HubId { repoId: string; revision?: string; file?: string }

/**
 * Parses `hf://org/name[@rev][/file]` (always a Hub id) or a bare `org/name[@rev]` (a Hub id
 * only when `bare` is true, and not when it ends like a weights or config file); null when the
 * string is not one.
 */
export function parseHubId(s: string, bare = true): HubId | null {
  const seg = '[A-Za-z0-9][A-Za-z0-9._-]*';
  // In a hf:// URL a revision with slashes is percent-encoded (hf://org/name@refs%2Fpr%2F1/file).
  const m = new RegExp(`^hf://(${seg}/${seg})(?:@([^/]+))?(?:/(.+))?$`).exec(s);
  if (m) return { repoId: m[1]!, ...(m[2] ? { revision: decodeURIComponent(m[2]) } : {}), ...(m[3] ? { file: m[3] } : {}) };
  if (!bare) return null;
  const b = new RegExp(`^(${seg}/${seg})(?:@(.+))?$`).exec(s);
  if (!b || /\.(safetensors|json|pt|pth|bin|ckpt|onnx|npy|txt)$/i.test(b[1]!)) return null;
  return { repoId: b[1]!, ...(b[2] ? { revision: b[2] } : {}) };
}

/**
 * A model source as a local path: an existing file or folder is returned as is; `hf://org/name`
 * (with `@rev` and a file path optional) or a bare `org/name[@rev]` that is not a local path is
 * fetched from the Hub (only what dyad needs) and its snapshot folder (or file) returned.
 */
export async function resolveModelSource(idOrPath: string, o: SnapshotOptions = {}): Promise<string> {
  if (!idOrPath.startsWith('hf://') && existsSync(idOrPath)) return idOrPath;
  const id = parseHubId(idOrPath);
  if (id === null) {
    throw new HubError(`hub: ${idOrPath} is neither a local file or folder nor a Hub id (hf://org/name[@revision] or org/name[@revision])`);
  }
  const opts = { ...o, revision: o.revision ?? id.revision };
  if (id.file) return hubDownload(id.repoId, id.file, opts);
  return snapshotDownload(id.repoId, opts);
}

/**
 * `idOrPath` if it is a local path or not a Hub id; else the Hub id resolved (downloaded once,
 * cached): how `Model.load`, `CLIPModel.download` and the CLI's `--weights` / `--model` take
 * `hf://org/name[@rev]` and bare `org/name[@rev]` ids. A path that exists always wins.
 */
export async function localOrHub(idOrPath: string, o: SnapshotOptions = {}): Promise<string> {
  if (!idOrPath.startsWith('hf://') && (existsSync(idOrPath) || parseHubId(idOrPath) === null)) return idOrPath;
  return resolveModelSource(idOrPath, o);
}

/**
 * The synchronous variant for constructors that cannot wait (`CLIPModel.fromPretrained`): a
 * local path, or a Hub id already in the Hugging Face cache (filled by dyad or by Python's
 * huggingface_hub); a Hub id that is not cached is a HubError that says how to fetch it.
 */
export function localOrCachedHub(idOrPath: string, o: Pick<SnapshotOptions, 'revision' | 'cacheDir'> = {}): string {
  if (!idOrPath.startsWith('hf://') && (existsSync(idOrPath) || parseHubId(idOrPath) === null)) return idOrPath;
  const id = parseHubId(idOrPath)!;
  const revision = o.revision ?? id.revision ?? 'main';
  const cache = new RepoCache(id.repoId, o.cacheDir ?? hubCacheDir());
  const commit = cache.commitFor(revision);
  const dir = commit === null ? null : cache.snapshotDir(commit);
  const target = dir === null ? null : id.file ? path.join(dir, ...id.file.split('/')) : dir;
  if (target === null || !existsSync(target)) {
    throw new HubError(`${idOrPath} is not a local path, and the Hub model ${id.repoId}@${revision} is not in the Hugging Face cache (${cache.dir}). ` +
      `Download it first: \`npx dyad download ${id.repoId}${id.revision ? ` --revision ${id.revision}` : ''}\`, or \`await CLIPModel.download('${id.repoId}')\`, or \`await Model.load('hf://${id.repoId}')\``);
  }
  return target;
}
