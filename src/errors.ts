/**
 * `DyadError`: the one base of every error dyad throws on purpose. Each layer subclasses it (the
 * class keeps its own name and fields, so `instanceof TorchError` still works) and every
 * instance carries a stable `code`, for callers (the CLI, the server, a user's retry logic)
 * that branch on the kind of failure without matching messages. Messages name the thing that
 * is wrong and the fix; `cause` keeps the underlying error (an errno, sharp's, libtorch's).
 *
 * Codes are SCREAMING_SNAKE_CASE, unique across the package, and never renamed once released.
 * One code per class, except the search layer's `IndexError` and `DistributedError`, whose codes name the failure.
 *
 * | code                | class                 | layer            | raised when                                           |
 * | ------------------- | --------------------- | ---------------- | ----------------------------------------------------- |
 * | `ADDON`             | DyadError             | torch/native     | the libtorch addon is not built or does not load      |
 * | `TORCH`             | TorchError            | torch            | libtorch rejects an op (its message: shapes, dtypes)  |
 * | `DISPOSED_TENSOR`   | DisposedTensorError   | torch            | a tensor is used after dispose() or its scope ended   |
 * | `SAFETENSORS`       | SafetensorsError      | torch            | a safetensors file is missing, malformed or unwritable|
 * | `TORCH_LOAD`        | TorchLoadError        | torch            | a torch.save file is malformed or holds a refused global |
 * | `TORCHSCRIPT`       | TorchScriptError      | torch            | a TorchScript file cannot be loaded or called         |
 * | `STATE_DICT`        | StateDictError        | nn               | loadStateDict: missing/unexpected keys, wrong shapes  |
 * | `DECODE`            | DecodeError           | data             | an image file or buffer cannot be decoded             |
 * | `DATA_FILE`         | DataFileError         | data             | a CSV/JSONL pair list has a malformed line            |
 * | `DATA`              | DataError             | data             | a dataset is missing, empty, unlabelled or mismatched |
 * | `CLIP_CONFIG`       | CLIPConfigError       | models/clip      | a CLIP config is invalid or does not fit its parts    |
 * | `CLIP`              | CLIPError             | models/clip      | CLIP weights or a CLIP call do not fit the model      |
 * | `TOKENIZER`         | CLIPTokenizerError    | models/clip      | tokenizer files are missing, unreadable or invalid    |
 * | `CHECKPOINT`        | CheckpointError       | engine           | a checkpoint is missing, damaged or not dyad's        |
 * | `TRAINING_DIVERGED` | TrainingDivergedError | engine           | the loss became NaN/inf during training               |
 * | `EXPORT`            | ExportError           | export           | a model has a module or op with no ONNX lowering      |
 * | `TASK`              | TaskError             | api              | a model is asked for what its task does not give      |
 * | `SOURCE`            | SourceError           | api              | an image source (file, folder, URL) cannot be read    |
 * | `TABLE_NOT_FOUND`   | IndexError            | search           | no index table for this dataset: run `dyad index`     |
 * | `MODEL_MISMATCH`    | IndexError            | search           | the table was built with another model                |
 * | `DIM_MISMATCH`      | IndexError            | search           | the embedding width differs from the table's          |
 * | `DB_UNREADABLE`     | IndexError            | search           | the database folder cannot be read or written         |
 * | `BAD_QUERY`         | IndexError            | search           | a query (image, row, vector, limit) is invalid        |
 * | `BAD_FILTER`        | IndexError            | search           | a filter expression is invalid                        |
 * | `NO_TEXT_TOWER`     | IndexError            | search           | text search with a model that has no text encoder     |
 * | `EMBEDDER_FAILED`   | IndexError            | search           | the embedder returned no or malformed vectors         |
 * | `WEIGHTS_NOT_FOUND` | IndexError            | search           | the weights an index was built with cannot be found   |
 * | `BAD_INPUT`         | IndexError            | search           | another invalid argument (embedder, dataset, mode)    |
 * | `HUB`               | HubError              | hub              | a Hub download fails, or a file is absent offline     |
 * | `LAUNCH`            | LaunchError           | distributed      | the RANK/WORLD_SIZE/MASTER_* env is invalid, or a launched worker failed |
 * | `DIST_UNAVAILABLE`  | DistributedError      | distributed      | the addon has no c10d/Gloo (or the backend is absent) |
 * | `DIST_INIT`         | DistributedError      | distributed      | initProcessGroup: bad options, or rendezvous failed   |
 * | `DIST_NOT_INITIALIZED` | DistributedError   | distributed      | a collective before initProcessGroup                  |
 * | `DIST_TIMEOUT`      | DistributedError      | distributed      | a collective or rendezvous ran past its timeout       |
 * | `DIST_PEER_LOST`    | DistributedError      | distributed      | a peer process closed its connection (it died)        |
 * | `DIST_UNSUPPORTED`  | DistributedError      | distributed      | the backend has no such collective (Gloo reduceScatter)|
 * | `DIST_FAILED`       | DistributedError      | distributed      | another collective failure (the backend's message)    |
 *
 * This file imports nothing, so every layer (the tensor layer first) can build on it.
 */

/** Every code in the table above, in its order. */
export const ERROR_CODES = [
  'ADDON', 'TORCH', 'DISPOSED_TENSOR', 'SAFETENSORS', 'TORCH_LOAD', 'TORCHSCRIPT', 'STATE_DICT', 'DECODE', 'DATA_FILE', 'DATA', 'CLIP_CONFIG', 'CLIP',
  'TOKENIZER', 'CHECKPOINT', 'TRAINING_DIVERGED', 'EXPORT', 'TASK', 'SOURCE',
  'TABLE_NOT_FOUND', 'MODEL_MISMATCH', 'DIM_MISMATCH', 'DB_UNREADABLE', 'BAD_QUERY', 'BAD_FILTER', 'NO_TEXT_TOWER',
  'EMBEDDER_FAILED', 'WEIGHTS_NOT_FOUND', 'BAD_INPUT', 'HUB', 'LAUNCH',
  'DIST_UNAVAILABLE', 'DIST_INIT', 'DIST_NOT_INITIALIZED', 'DIST_TIMEOUT', 'DIST_PEER_LOST', 'DIST_UNSUPPORTED', 'DIST_FAILED',
] as const;

export type DyadErrorCode = (typeof ERROR_CODES)[number];

/** The base of dyad's errors: `code` is stable (see the table above), `cause` the underlying error. */
export class DyadError<C extends DyadErrorCode = DyadErrorCode> extends Error {
  readonly code: C;
  constructor(code: C, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DyadError';
    this.code = code;
  }
}

/** True for a `DyadError`, optionally of one of the given codes. */
export function isDyadError<C extends DyadErrorCode>(e: unknown, ...codes: C[]): e is DyadError<C> {
  return e instanceof DyadError && (codes.length === 0 || (codes as DyadErrorCode[]).includes(e.code));
}
