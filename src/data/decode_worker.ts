/**
 * The `DataLoader`'s decode worker (a `worker_threads` Worker): decodes the files of one batch
 * with sharp, brings them to the batch shape and packs them into one NCHW uint8 buffer, which
 * it transfers back without copying. This keeps sharp's per-image JavaScript work (building
 * the pipeline, about 0.2 ms an image) and the HWC→CHW transpose off the main thread, so a
 * training step that blocks the main thread does not stall decoding.
 *
 * Files that fail are only reported by position: the main thread hands them to the dataset's
 * own `getBatch`, which applies its bad-file policy (throw or skip, warnings, `badFiles`).
 * This module must not import the tensor layer (no libtorch in the worker).
 */
import { parentPort } from 'node:worker_threads';
import { commonShape, packNCHW, prepareImage, type ImageTarget } from './batch_images.js';
import { decodeImage, type DecodeOptions } from './decode.js';
import type { Sample } from './types.js';

/** A batch to decode. */
export interface DecodeRequest {
  type: 'decode';
  id: number;
  paths: string[];
  /** Dataset indices, for error messages. */
  indices: number[];
  decode: DecodeOptions;
  target: ImageTarget;
}

/** The answer to a `DecodeRequest`. */
export interface DecodeReply {
  id: number;
  /** Positions (in the request) decoded, in order; their images fill `data`. */
  ok: number[];
  /** Positions that failed to decode. */
  failed: number[];
  /** NCHW pixels of the `ok` images. */
  data?: ArrayBuffer;
  /** `[n, c, h, w]` of `data`. */
  shape?: [number, number, number, number];
  /** Set when the batch as a whole failed (e.g. images of different sizes). */
  error?: string;
}

async function handle(req: DecodeRequest): Promise<DecodeReply> {
  const settled = await Promise.allSettled(req.paths.map(async (p) => prepareImage(await decodeImage(p, req.decode), req.target)));
  const ok: number[] = [];
  const failed: number[] = [];
  const samples: Sample[] = [];
  settled.forEach((r, k) => {
    if (r.status === 'fulfilled') {
      ok.push(k);
      samples.push({ image: r.value, label: -1, index: req.indices[k]!, path: req.paths[k]! });
    } else failed.push(k);
  });
  if (samples.length === 0) return { id: req.id, ok, failed };
  const [h, w, c] = commonShape(samples);
  const data = packNCHW(samples.map((s) => s.image), [h, w, c]);
  const buf = data.buffer.byteLength === data.byteLength ? data.buffer : data.slice().buffer;
  return { id: req.id, ok, failed, data: buf as ArrayBuffer, shape: [samples.length, c, h, w] };
}

const port = parentPort;
if (port) {
  let pending = 0;
  let closing = false;
  port.on('message', (m: DecodeRequest | { type: 'close' }) => {
    if (m.type === 'close') {
      closing = true;
      if (pending === 0) port.close();
      return;
    }
    pending++;
    handle(m)
      .then(
        (reply) => port.postMessage(reply, reply.data ? [reply.data] : []),
        (e: unknown) => port.postMessage({ id: m.id, ok: [], failed: [], error: e instanceof Error ? e.message : String(e) } satisfies DecodeReply),
      )
      .finally(() => {
        pending--;
        if (closing && pending === 0) port.close();
      });
  });
}
