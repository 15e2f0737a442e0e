/**
 * Models from the Hugging Face Hub, into the cache layout Python's huggingface_hub shares:
 * `hubDownload` (one file), `snapshotDownload` (what a model needs), `resolveModelSource`
 * (a local path or `hf://org/name@rev` / `org/name` → a local path).
 */
export { HubError, RepoCache, hubCacheDir, repoFolderName, isCommit } from './cache.js';
export { hubDownload, cachedHubFile, fileMetadata, hubEndpoint, hubOffline, hubToken, normalizeEtag, sha256File, type HubOptions } from './download.js';
export { snapshotDownload, resolveModelSource, localOrHub, localOrCachedHub, parseHubId, selectFiles, globToRegExp, MODEL_FILE_PATTERNS, type SnapshotOptions, type HubId } from './snapshot.js';
