/**
 * `torch.load` without Python: reads files written by PyTorch's `torch.save` (`.pth`, `.pt`,
 * `pytorch_model.bin`) into dyad tensors, with `weights_only=True` semantics.
 *
 * - Zip format (PyTorch ≥ 1.6): `<prefix>/data.pkl` (the pickled object; storages appear as
 *   persistent ids `('storage', torch.FloatStorage, key, location, numel)`), `<prefix>/data/<key>`
 *   (each storage's raw little-endian bytes), `<prefix>/byteorder` (absent or `little`).
 * - Legacy format (`_use_new_zipfile_serialization=False`): five pickles and raw data back to
 *   back: magic number, protocol version 1001, sys info, the object, the storage keys, then per
 *   key an int64 element count and the bytes.
 *
 * The unpickler (./pickle.ts) allows only what a state dict needs: `collections.OrderedDict`,
 * `torch._utils._rebuild_tensor_v2`, `_rebuild_parameter`, `_rebuild_parameter_with_state`,
 * the typed storage classes (`torch.FloatStorage`, ..., `torch.UntypedStorage`) and
 * `_codecs.encode` (protocol 2's bytes). Any other global (a module class, `os.system`, ...)
 * is a `TorchLoadError` naming it; nothing is executed.
 */
import fs from 'node:fs';
import { Tensor } from './tensor.js';
import { fromBytes } from './creation.js';
import { itemSize, type DType } from './dtype.js';
import { DyadError } from './errors.js';
import { unpickle, type PyGlobal } from './pickle.js';
import { fileSource, isZip, readZipDirectory, readZipEntry, type ZipSource } from './zip.js';

/** A `torch.save` file is malformed, truncated, or holds a global that is not allowed. */
export class TorchLoadError extends DyadError<'TORCH_LOAD'> {
  constructor(readonly file: string, detail: string, options?: { cause?: unknown }) {
    super('TORCH_LOAD', `${file}: ${detail}`, options);
    this.name = 'TorchLoadError';
  }
}

/** What `load` returns: Python values as JS (dict → Map, list/tuple → array, tensor → Tensor). */
export type PyValue = null | boolean | number | bigint | string | Uint8Array | Tensor | PyValue[] | Map<PyValue, PyValue> | Set<PyValue>;

const STORAGE_DTYPES: Readonly<Record<string, DType>> = {
  FloatStorage: 'float32', DoubleStorage: 'float64', HalfStorage: 'float16', BFloat16Storage: 'bfloat16',
  LongStorage: 'int64', IntStorage: 'int32', ShortStorage: 'int16', CharStorage: 'int8', ByteStorage: 'uint8',
  BoolStorage: 'bool', UntypedStorage: 'uint8',
};

interface StorageType { storageDtype: DType; name: string }
interface Storage { dtype: DType; key: string; bytes: Uint8Array | null }
/** A tensor whose storage may not be read yet (legacy format). */
class PendingTensor {
  constructor(readonly storage: Storage, readonly offset: number, readonly size: number[], readonly stride: number[]) {}
}

function loadError(file: string): (detail: string) => never {
  return (detail) => { throw new TorchLoadError(file, detail); };
}

const HINT = 'torch.load here reads state dicts (weights_only=True): save model.state_dict(), not the model object';

/** The allow-list of globals, as PyTorch's weights_only unpickler. */
function findClass(file: string, module: string, name: string): PyGlobal {
  const g = (call: (a: unknown[]) => unknown, build?: PyGlobal['build']): PyGlobal => ({ module, name, call, build });
  const fail: (d: string) => never = loadError(file);
  const full = `${module}.${name}`;
  const ints = (v: unknown, what: string): number[] => {
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'number' && Number.isInteger(x) && x >= 0)) fail(`${full}: ${what} is not a tuple of non-negative ints`);
    return v as number[];
  };
  switch (full) {
    case 'collections.OrderedDict':
      return g((a) => {
        const m = new Map<unknown, unknown>();
        if (a.length > 0 && Array.isArray(a[0])) for (const kv of a[0] as unknown[]) if (Array.isArray(kv)) m.set(kv[0], kv[1]);
        return m;
      }, (obj) => obj); // state: {'_metadata': ...} (module versions); dropped
    case 'torch._utils._rebuild_tensor_v2':
    case 'torch._utils._rebuild_tensor':
      return g((a) => {
        const st = a[0] as Storage;
        if (!(typeof st === 'object' && st !== null && 'key' in st)) fail(`${full}: the first argument is not a storage`);
        const offset = a[1];
        if (typeof offset !== 'number' || !Number.isInteger(offset) || offset < 0) fail(`${full}: bad storage offset`);
        return new PendingTensor(st, offset as number, ints(a[2], 'size'), ints(a[3], 'stride'));
      });
    case 'torch._utils._rebuild_parameter':
    case 'torch._utils._rebuild_parameter_with_state':
      return g((a) => a[0]);
    case '_codecs.encode':
      return g((a) => Uint8Array.from(String(a[0]), (c) => c.charCodeAt(0) & 0xff));
    default:
      if (module === 'torch' && name in STORAGE_DTYPES) {
        const t: StorageType = { storageDtype: STORAGE_DTYPES[name]!, name };
        return Object.assign(g(() => fail(`${full} cannot be called`)), t);
      }
      if (/^(os|posix|nt|subprocess|builtins|__builtin__|sys|shutil|socket|importlib|runpy|pty|code|pickle)$/.test(module.split('.')[0]!)) {
        return fail(`refused to load the global ${full}: the file tries to run code (a hostile or unsafe pickle); nothing was executed`);
      }
      return fail(`refused to load the global ${full}: it is not a tensor, storage or plain container. ${HINT}`);
  }
}

/**
 * Materializes pending tensors (once storages have their bytes) and converts containers. Each
 * container is converted once (a memo by identity), so shared and cyclic references, which a
 * pickle can build with its memo, cost linear time and no endless recursion.
 */
function finish(v: unknown, file: string, seen = new Map<unknown, PyValue>()): PyValue {
  if (v === null || typeof v !== 'object' || v instanceof Uint8Array) return v as PyValue;
  const hit = seen.get(v);
  if (hit !== undefined) return hit;
  if (v instanceof PendingTensor) {
    const t = materialize(v, file);
    seen.set(v, t);
    return t;
  }
  if (Array.isArray(v)) {
    const out: PyValue[] = [];
    seen.set(v, out);
    for (const x of v) out.push(finish(x, file, seen));
    return out;
  }
  if (v instanceof Map) {
    const m = new Map<PyValue, PyValue>();
    seen.set(v, m);
    for (const [k, x] of v) m.set(k as PyValue, finish(x, file, seen));
    return m;
  }
  if (v instanceof Set) {
    const out = new Set<PyValue>();
    seen.set(v, out);
    for (const x of v) out.add(finish(x, file, seen));
    return out;
  }
  if ('storageDtype' in v) return `torch.${(v as StorageType).name}`;
  if ('key' in v) throw new TorchLoadError(file, 'a bare storage (not inside a tensor) is not supported; save tensors');
  return v as PyValue;
}

function materialize(p: PendingTensor, file: string): Tensor {
  const { storage, offset, size, stride } = p;
  if (storage.bytes === null) throw new TorchLoadError(file, `storage '${storage.key}' has no data: the file is truncated`);
  if (size.length !== stride.length) throw new TorchLoadError(file, `tensor of size [${size}] has stride [${stride}] of another rank`);
  const es = itemSize[storage.dtype];
  const numel = size.reduce((a, b) => a * b, 1);
  const storageNumel = storage.bytes.byteLength / es;
  const last = numel === 0 ? offset : offset + size.reduce((a, s, i) => a + (s - 1) * stride[i]!, 0);
  if (numel > 0 && last >= storageNumel) {
    throw new TorchLoadError(file, `tensor [${size}] at offset ${offset} reads past its storage '${storage.key}' of ${storageNumel} elements: the file is damaged`);
  }
  let contiguous = true;
  for (let i = size.length - 1, want = 1; i >= 0; i--) {
    if (size[i]! !== 1 && stride[i]! !== want) contiguous = false;
    want *= size[i]!;
  }
  let bytes: Uint8Array;
  if (contiguous) bytes = storage.bytes.subarray(offset * es, (offset + numel) * es);
  else {
    bytes = new Uint8Array(numel * es);
    const idx = new Array<number>(size.length).fill(0);
    for (let n = 0; n < numel; n++) {
      let src = offset;
      for (let d = 0; d < size.length; d++) src += idx[d]! * stride[d]!;
      bytes.set(storage.bytes.subarray(src * es, src * es + es), n * es);
      for (let d = size.length - 1; d >= 0; d--) { if (++idx[d]! < size[d]!) break; idx[d] = 0; }
    }
  }
  return fromBytes(bytes, storage.dtype, size);
}

/** Parses a storage persistent id: ('storage', storage_type, key, location, numel[, view_metadata]). */
function storageFrom(pid: unknown, file: string, storages: Map<string, Storage>): Storage {
  const fail: (d: string) => never = loadError(file);
  if (!Array.isArray(pid) || pid[0] !== 'storage' || pid.length < 5) fail(`unknown persistent id ${JSON.stringify(String(pid))}: not a torch storage`);
  const type = (pid as unknown[])[1] as StorageType;
  if (typeof type !== 'object' || type === null || !('storageDtype' in type)) fail('a storage of an unknown type');
  const key = String((pid as unknown[])[2]);
  if (pid.length > 5 && pid[5] !== null) fail(`storage '${key}' is a view of another storage (legacy format); re-save the file with a recent PyTorch`);
  let s = storages.get(key);
  if (!s) storages.set(key, (s = { dtype: type.storageDtype, key, bytes: null }));
  return s;
}

/**
 * Reads a file written by `torch.save`. A state dict comes back as a `Map<string, Tensor>`.
 * Zip archives are read by offset (only the pickle and the storages), so files over 2 GB load.
 */
export function load(path: string): PyValue {
  const cannot = (cause: unknown): never => {
    throw new TorchLoadError(path, `cannot read the file (${(cause as NodeJS.ErrnoException).code ?? (cause as Error).message})`, { cause });
  };
  let fd = -1;
  try {
    fd = fs.openSync(path, 'r');
  } catch (cause) {
    cannot(cause);
  }
  try {
    const src = fileSource(fd);
    if (isZip(src.read(0, 4))) return loadZip(src, path);
  } finally {
    fs.closeSync(fd);
  }
  let buf: Buffer = Buffer.alloc(0);
  try {
    buf = fs.readFileSync(path);
  } catch (cause) {
    cannot(cause);
  }
  if (buf.length > 0 && buf[0] === 0x80) return loadLegacy(buf, path, hooksFor(path, new Map()));
  return loadError(path)('not a torch.save file (neither a ZIP archive nor a pickle). A safetensors file loads with loadFile; a TorchScript model with nn.ScriptModule.load');
}

interface Hooks { findClass(m: string, n: string): PyGlobal; persistentLoad(pid: unknown): unknown; fail(d: string): never; storages: Map<string, Storage> }

function hooksFor(path: string, storages: Map<string, Storage>): Hooks {
  return {
    findClass: (m, n) => findClass(path, m, n),
    persistentLoad: (pid) => storageFrom(pid, path, storages),
    fail: loadError(path),
    storages,
  };
}

function loadZip(src: ZipSource, path: string): PyValue {
  const hooks = hooksFor(path, new Map());
  const fail: (d: string) => never = hooks.fail;
  const entries = readZipDirectory(src, fail);
  if ([...entries.keys()].some((n) => n.endsWith('/constants.pkl'))) {
    fail('this is a TorchScript archive (torch.jit.save), not a torch.save file: load it with nn.ScriptModule.load');
  }
  const pkl = [...entries.keys()].find((n) => n === 'data.pkl' || n.endsWith('/data.pkl'));
  if (pkl === undefined) fail('a ZIP archive without data.pkl: not a torch.save file');
  const prefix = pkl.slice(0, pkl.length - 'data.pkl'.length);
  const order = entries.get(`${prefix}byteorder`);
  if (order && readZipEntry(src, order, fail).toString() !== 'little') fail('big-endian torch.save files are not supported');
  const { value } = unpickle(readZipEntry(src, entries.get(pkl)!, fail), hooks);
  for (const s of hooks.storages.values()) {
    const e = entries.get(`${prefix}data/${s.key}`);
    if (!e) fail(`storage data '${prefix}data/${s.key}' is missing from the archive: the file is truncated`);
    s.bytes = readZipEntry(src, e, fail);
  }
  return finish(value, path);
}

function loadLegacy(buf: Buffer, path: string, hooks: Hooks): PyValue {
  const storages = hooks.storages;
  const fail: (d: string) => never = hooks.fail;
  const plain = { ...hooks, persistentLoad: undefined };
  const magic = unpickle(buf, plain);
  if (magic.value !== 0x1950a86a20f9469cfc6cn) fail('a pickle, but not a torch.save file (no PyTorch magic number)');
  const proto = unpickle(buf, plain, magic.end);
  if (proto.value !== 1001) fail(`legacy torch.save protocol ${String(proto.value)} is not supported (1001 expected)`);
  const sys = unpickle(buf, plain, proto.end);
  if (sys.value instanceof Map && sys.value.get('little_endian') === false) fail('big-endian torch.save files are not supported');
  const obj = unpickle(buf, hooks, sys.end);
  const keys = unpickle(buf, plain, obj.end);
  if (!Array.isArray(keys.value)) fail('legacy storage key list is malformed');
  let p = keys.end;
  for (const k of keys.value as unknown[]) {
    const s = storages.get(String(k));
    if (p + 8 > buf.length) fail(`storage '${String(k)}' is missing: the file is truncated`);
    const n = Number(buf.readBigInt64LE(p));
    p += 8;
    const es = itemSize[s?.dtype ?? 'uint8'];
    if (p + n * es > buf.length) fail(`storage '${String(k)}' (${n} elements) runs past the end of the file: the file is truncated`);
    if (s) s.bytes = buf.subarray(p, p + n * es);
    p += n * es;
  }
  return finish(obj.value, path);
}

/**
 * The state dict in a `torch.save` file, as a `Map<string, Tensor>`: the object itself when it
 * is a dict of tensors, else its `key` entry (default: the first of `state_dict`, `model`,
 * `module`, `net` that is one). Non-tensor entries are dropped.
 */
export function loadStateDict(path: string, o: { key?: string } = {}): Map<string, Tensor> {
  const obj = load(path);
  const isTensorDict = (v: PyValue | undefined): v is Map<PyValue, PyValue> =>
    v instanceof Map && v.size > 0 && [...v.values()].some((x) => x instanceof Tensor);
  let sd: PyValue | undefined = obj;
  if (o.key !== undefined || !isTensorDict(obj)) {
    const root = obj instanceof Map ? obj : new Map();
    sd = o.key !== undefined ? root.get(o.key) : ['state_dict', 'model', 'module', 'net'].map((k) => root.get(k)).find(isTensorDict);
    if (!isTensorDict(sd)) {
      throw new TorchLoadError(path, o.key !== undefined ? `has no state dict under '${o.key}'` : `holds no state dict (a dict of tensors, or one under 'state_dict'/'model'); top-level keys: ${[...root.keys()].map(String).join(', ') || '(none)'}`);
    }
  }
  const out = new Map<string, Tensor>();
  for (const [k, v] of sd as Map<PyValue, PyValue>) if (v instanceof Tensor) out.set(String(k), v);
  return out;
}
