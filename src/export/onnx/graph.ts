/**
 * `OnnxGraph`: builds an ONNX graph (opset 17) node by node, as the lowerings in ./lower.ts
 * describe each module. Every value carries its static shape (`'batch'` for the dynamic batch
 * axis), so a lowering knows the sizes it needs (a pooling grid, a reshape) without running the
 * model. Parameters become initializers under their state-dict names. `half: 'weights'` stores
 * them as float16, each followed by a Cast back to float32 (runtimes fold it at load time);
 * `half: 'compute'` (what `half: true` means) runs the whole graph in float16: weights and
 * constants are float16, the float32 input is cast once at the start and the output back at the
 * end, so callers still pass and read float32.
 */
import type { Tensor } from '../../torch/index.js';
import * as torch from '../../torch/index.js';
import { DyadError } from '../../errors.js';
import { ATTR, ONNX_DTYPE, type OnnxDType } from './proto.js';

/** A model, a module or an op that has no ONNX lowering (the message names it and the fix). */
export class ExportError extends DyadError<'EXPORT'> {
  constructor(message: string) {
    super('EXPORT', message);
    this.name = 'ExportError';
  }
}

export type Dim = number | string;
/** A value in the graph: its name and static shape. */
export interface Val {
  name: string;
  shape: Dim[];
  dtype?: OnnxDType;
}

type AttrValue = number | string | number[] | { floats: number[] } | { float: number };
type Attrs = Record<string, AttrValue | undefined>;

function attr(name: string, v: AttrValue): Record<string, unknown> {
  if (typeof v === 'string') return { name, type: ATTR.STRING, s: Buffer.from(v) };
  if (typeof v === 'number') return Number.isInteger(v) ? { name, type: ATTR.INT, i: v } : { name, type: ATTR.FLOAT, f: v };
  if (Array.isArray(v)) return { name, type: ATTR.INTS, ints: v };
  if ('floats' in v) return { name, type: ATTR.FLOATS, floats: v.floats };
  return { name, type: ATTR.FLOAT, f: v.float };
}

export class OnnxGraph {
  readonly nodes: Record<string, unknown>[] = [];
  readonly initializers: Record<string, unknown>[] = [];
  private readonly names = new Set<string>();
  private readonly params = new Map<Tensor, string>();
  private counter = 0;

  readonly half: false | 'weights' | 'compute';
  constructor(o: { half?: boolean | 'weights' | 'compute' }) {
    this.half = o.half === true ? 'compute' : (o.half || false);
  }

  /** The float type the graph computes in. */
  get floatType(): OnnxDType {
    return this.half === 'compute' ? 'float16' : 'float32';
  }

  /** A float32 graph input in the compute type (a Cast when computing in float16). */
  fromFloat32(v: Val): Val {
    return this.half === 'compute' ? this.op('Cast', [v], { to: ONNX_DTYPE.float16 }, v.shape) : v;
  }

  /** A compute-type value as float32 (for a graph output). */
  toFloat32(v: Val): Val {
    return this.half === 'compute' ? this.op('Cast', [v], { to: ONNX_DTYPE.float32 }, v.shape) : v;
  }

  /** A fresh value name. */
  fresh(hint: string): string {
    let n = hint;
    while (this.names.has(n)) n = `${hint}_${this.counter++}`;
    this.names.add(n);
    return n;
  }

  /** Adds a node; returns its outputs (`shapes` gives each output's shape). */
  node(opType: string, inputs: (Val | string)[], attrs: Attrs, shapes: Dim[][], o: { dtype?: OnnxDType } = {}): Val[] {
    const outs = shapes.map((shape) => ({ name: this.fresh(`${opType.toLowerCase()}_${this.counter++}`), shape, dtype: o.dtype }));
    this.nodes.push({
      op_type: opType,
      name: `${opType}_${this.nodes.length}`,
      input: inputs.map((v) => (typeof v === 'string' ? v : v.name)),
      output: outs.map((v) => v.name),
      attribute: Object.entries(attrs).filter(([, v]) => v !== undefined).map(([k, v]) => attr(k, v!)),
    });
    return outs;
  }

  /** One-output node. */
  op(opType: string, inputs: (Val | string)[], attrs: Attrs, shape: Dim[], o: { dtype?: OnnxDType } = {}): Val {
    return this.node(opType, inputs, attrs, [shape], o)[0]!;
  }

  private addInitializer(name: string, dtype: OnnxDType, dims: number[], raw: Uint8Array): void {
    this.initializers.push({ name, data_type: ONNX_DTYPE[dtype], dims, raw_data: Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength) });
  }

  /**
   * A float weight as an initializer named `name` (each tensor once), in float16 with `half`
   * (then cast back to float32 in the graph for `half: 'weights'`).
   */
  param(t: Tensor, name: string): Val {
    const hit = this.params.get(t);
    if (hit) return { name: hit, shape: t.shape };
    const stored = this.fresh(name);
    const dtype = this.half ? 'float16' : 'float32';
    const raw = torch.scope(() => t.detach().contiguous().to(dtype).toBytes());
    this.addInitializer(stored, dtype, t.shape, raw);
    let out = stored;
    if (this.half === 'weights') out = this.op('Cast', [stored], { to: ONNX_DTYPE.float32 }, t.shape).name;
    this.params.set(t, out);
    return { name: out, shape: t.shape };
  }

  /** A derived weight (a transposed matrix, a reshaped embedding) made by `make` from `t`, stored once. */
  derived(t: Tensor, name: string, make: (t: Tensor) => Tensor): Val {
    return torch.scope(() => this.param(make(t), name));
  }

  /** A float constant, in the compute type. */
  constF(values: number[], shape: number[], hint = 'const'): Val {
    const name = this.fresh(hint);
    const f32 = Float32Array.from(values);
    const raw = this.floatType === 'float16' ? torch.scope(() => torch.frombuffer(f32).to('float16').toBytes()) : new Uint8Array(f32.buffer);
    this.addInitializer(name, this.floatType, shape, raw);
    return { name, shape };
  }

  /** An int64 constant (shapes, axes, indices). */
  constI(values: number[], shape: number[] = [values.length], hint = 'const'): Val {
    const name = this.fresh(hint);
    this.addInitializer(name, 'int64', shape, new Uint8Array(BigInt64Array.from(values.map(BigInt)).buffer));
    return { name, shape, dtype: 'int64' };
  }
}

/** A shape's known size at `i` (negative counts from the end), or an ExportError. */
export function staticDim(v: Val, i: number, what: string): number {
  const d = v.shape[i < 0 ? v.shape.length + i : i];
  if (typeof d !== 'number') throw new ExportError(`${what} needs a static size for axis ${i} of a [${v.shape.join(', ')}] value`);
  return d;
}
