/**
 * A restricted unpickler: Python's pickle virtual machine (protocols 0–5, the opcodes of
 * CPython's Lib/pickletools.py) that builds plain values (None → null, bool, int → number or
 * bigint, float, str, bytes → Uint8Array, list and tuple → arrays, dict → Map) and resolves
 * every GLOBAL through the caller's `findClass`, which returns a vetted function or throws.
 * Nothing in the file can name code to run: there is no import, no attribute lookup, no
 * `__reduce__` call outside the allow-list (PyTorch's `torch.load(weights_only=True)` does the
 * same with its `_weights_only_unpickler`). `INST`, `OBJ`, `NEWOBJ`, `NEWOBJ_EX` and the
 * extension registry are refused; `BUILD` only sets state the allowed object accepts.
 */

/** A global that the caller allows: `call` is what REDUCE applies to it. */
export interface PyGlobal {
  readonly module: string;
  readonly name: string;
  call(args: unknown[]): unknown;
  /** What BUILD does with a state on an object this global made (absent: BUILD is refused). */
  build?(obj: unknown, state: unknown): unknown;
}

export interface UnpickleHooks {
  /** Returns the allowed global or throws an error naming `module.name`. */
  findClass(module: string, name: string): PyGlobal;
  /** The object a persistent id stands for (torch: a storage). Absent: PERSID is refused. */
  persistentLoad?(pid: unknown): unknown;
  /** Throws the caller's error (it names the file). */
  fail(detail: string): never;
}


/** Which allowed global made an object (for BUILD). */
const madeBy = new WeakMap<object, PyGlobal>();

/** Runs the pickle program in `data` from `start`; returns the value at STOP and the offset after it. */
export function unpickle(data: Uint8Array, hooks: UnpickleHooks, start = 0): { value: unknown; end: number } {
  const fail: (detail: string) => never = hooks.fail;
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let p = start;
  let stack: unknown[] = [];
  const metastack: unknown[][] = [];
  const memo = new Map<number, unknown>();
  const need = (n: number): number => {
    if (p + n > data.length) fail(`pickle data ends early at byte ${p} (wanted ${n} more): the file is truncated`);
    const at = p;
    p += n;
    return at;
  };
  const u8 = (): number => data[need(1)]!;
  const u16 = (): number => dv.getUint16(need(2), true);
  const u32 = (): number => dv.getUint32(need(4), true);
  const u64 = (): number => {
    const v = dv.getBigUint64(need(8), true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail(`pickle length ${v} is too large`);
    return Number(v);
  };
  const bytes = (n: number): Uint8Array => data.subarray(need(n), p);
  const utf8 = (n: number): string => Buffer.from(bytes(n)).toString('utf8');
  const line = (): string => {
    const end = data.indexOf(0x0a, p);
    if (end < 0) fail(`pickle data ends inside a text line at byte ${p}: the file is truncated`);
    const s = Buffer.from(data.subarray(p, end)).toString('latin1');
    p = end + 1;
    return s;
  };
  const pop = (): unknown => {
    if (stack.length === 0) fail(`pickle stack underflow at byte ${p - 1}: the data is malformed`);
    return stack.pop();
  };
  const top = (): unknown => {
    if (stack.length === 0) fail(`pickle stack underflow at byte ${p - 1}: the data is malformed`);
    return stack[stack.length - 1];
  };
  const popMark = (): unknown[] => {
    const items = stack;
    const prev = metastack.pop();
    if (prev === undefined) fail(`pickle MARK missing at byte ${p - 1}: the data is malformed`);
    stack = prev;
    return items;
  };
  const getMemo = (i: number): unknown => {
    if (!memo.has(i)) fail(`pickle memo key ${i} is not defined: the data is malformed`);
    return memo.get(i);
  };
  const long = (b: Uint8Array): number | bigint => {
    if (b.length === 0) return 0;
    let v = 0n;
    for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
    if (b[b.length - 1]! & 0x80) v -= 1n << BigInt(8 * b.length);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  };
  const setItems = (d: unknown, items: unknown[]): void => {
    if (!(d instanceof Map)) fail('pickle SETITEM(S) on something that is not a dict: the data is malformed or hostile');
    for (let i = 0; i + 1 < items.length; i += 2) (d as Map<unknown, unknown>).set(items[i], items[i + 1]);
  };
  const appendItems = (l: unknown, items: unknown[]): void => {
    if (!Array.isArray(l)) fail('pickle APPEND(S) on something that is not a list: the data is malformed or hostile');
    (l as unknown[]).push(...items);
  };
  const global = (module: string, name: string): PyGlobal => hooks.findClass(module, name);
  const refuse = (op: string): never => fail(`pickle opcode ${op} (builds an arbitrary object) is refused: only tensors, storages and plain containers are loaded`);

  for (;;) {
    const op = u8();
    switch (op) {
      case 0x80: u8(); break; // PROTO
      case 0x95: u64(); break; // FRAME
      case 0x2e: return { value: pop(), end: p }; // STOP
      case 0x28: metastack.push(stack); stack = []; break; // MARK
      case 0x30: pop(); break; // POP
      case 0x31: popMark(); break; // POP_MARK
      case 0x32: stack.push(top()); break; // DUP
      case 0x4e: stack.push(null); break; // NONE
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x89: stack.push(false); break; // NEWFALSE
      case 0x4a: stack.push(dv.getInt32(need(4), true)); break; // BININT
      case 0x4b: stack.push(u8()); break; // BININT1
      case 0x4d: stack.push(u16()); break; // BININT2
      case 0x8a: stack.push(long(bytes(u8()))); break; // LONG1
      case 0x8b: stack.push(long(bytes(u32()))); break; // LONG4
      case 0x49: { // INT (text; 00/01 are False/True)
        const s = line();
        stack.push(s === '00' ? false : s === '01' ? true : Number(s));
        break;
      }
      case 0x4c: stack.push(Number(line().replace(/L$/, ''))); break; // LONG (text)
      case 0x46: stack.push(Number(line())); break; // FLOAT (text)
      case 0x47: stack.push(dv.getFloat64(need(8), false)); break; // BINFLOAT (big-endian)
      case 0x58: stack.push(utf8(u32())); break; // BINUNICODE
      case 0x8c: stack.push(utf8(u8())); break; // SHORT_BINUNICODE
      case 0x8d: stack.push(utf8(u64())); break; // BINUNICODE8
      case 0x56: stack.push(line()); break; // UNICODE (raw-unicode-escape; ASCII in practice)
      case 0x54: stack.push(Buffer.from(bytes(u32())).toString('latin1')); break; // BINSTRING
      case 0x55: stack.push(Buffer.from(bytes(u8())).toString('latin1')); break; // SHORT_BINSTRING
      case 0x53: stack.push(line().replace(/^(['"])(.*)\1$/, '$2')); break; // STRING
      case 0x42: stack.push(bytes(u32()).slice()); break; // BINBYTES
      case 0x43: stack.push(bytes(u8()).slice()); break; // SHORT_BINBYTES
      case 0x8e: stack.push(bytes(u64()).slice()); break; // BINBYTES8
      case 0x96: stack.push(bytes(u64()).slice()); break; // BYTEARRAY8
      case 0x7d: stack.push(new Map()); break; // EMPTY_DICT
      case 0x5d: stack.push([]); break; // EMPTY_LIST
      case 0x29: stack.push([]); break; // EMPTY_TUPLE
      case 0x8f: stack.push(new Set()); break; // EMPTY_SET
      case 0x64: { const d = new Map(); setItems(d, popMark()); stack.push(d); break; } // DICT (popMark before push: it swaps the stack)
      case 0x6c: { const l = popMark(); stack.push(l); break; } // LIST
      case 0x74: { const t = popMark(); stack.push(t); break; } // TUPLE
      case 0x91: { const s = new Set(popMark()); stack.push(s); break; } // FROZENSET
      case 0x85: stack.push([pop()]); break; // TUPLE1
      case 0x86: { const b = pop(); stack.push([pop(), b]); break; } // TUPLE2
      case 0x87: { const c = pop(), b = pop(); stack.push([pop(), b, c]); break; } // TUPLE3
      case 0x73: { const v = pop(), k = pop(); setItems(top(), [k, v]); break; } // SETITEM
      case 0x75: { const items = popMark(); setItems(top(), items); break; } // SETITEMS
      case 0x61: { const v = pop(); appendItems(top(), [v]); break; } // APPEND
      case 0x65: { const items = popMark(); appendItems(top(), items); break; } // APPENDS
      case 0x90: { // ADDITEMS
        const items = popMark(); const s = top();
        if (!(s instanceof Set)) fail('pickle ADDITEMS on something that is not a set');
        for (const x of items) (s as Set<unknown>).add(x);
        break;
      }
      case 0x70: memo.set(Number(line()), top()); break; // PUT
      case 0x71: memo.set(u8(), top()); break; // BINPUT
      case 0x72: memo.set(u32(), top()); break; // LONG_BINPUT
      case 0x94: memo.set(memo.size, top()); break; // MEMOIZE
      case 0x67: stack.push(getMemo(Number(line()))); break; // GET
      case 0x68: stack.push(getMemo(u8())); break; // BINGET
      case 0x6a: stack.push(getMemo(u32())); break; // LONG_BINGET
      case 0x63: { const module = line(); stack.push(global(module, line())); break; } // GLOBAL
      case 0x93: { // STACK_GLOBAL
        const name = pop(), module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') fail('pickle STACK_GLOBAL with non-string names: the data is malformed');
        stack.push(global(module as string, name as string));
        break;
      }
      case 0x52: { // REDUCE
        const args = pop(), fn = pop();
        if (!isGlobal(fn)) fail('pickle REDUCE on something that is not an allowed global: the data is malformed or hostile');
        if (!Array.isArray(args)) fail(`pickle REDUCE of ${fn.module}.${fn.name} without an argument tuple`);
        const out = fn.call(args);
        if (out !== null && typeof out === 'object') madeBy.set(out, fn);
        stack.push(out);
        break;
      }
      case 0x62: { // BUILD
        const state = pop(), obj = top();
        const maker = obj !== null && typeof obj === 'object' ? madeBy.get(obj) : undefined;
        if (maker?.build === undefined) fail(`pickle BUILD (sets an object's state) on ${maker ? `${maker.module}.${maker.name}` : 'a plain value'} is refused`);
        stack[stack.length - 1] = maker.build(obj, state);
        break;
      }
      case 0x51: { // BINPERSID
        const pid = pop();
        if (!hooks.persistentLoad) fail('pickle persistent ids are not allowed here');
        stack.push(hooks.persistentLoad(pid));
        break;
      }
      case 0x50: { // PERSID
        const pid = line();
        if (!hooks.persistentLoad) fail('pickle persistent ids are not allowed here');
        stack.push(hooks.persistentLoad(pid));
        break;
      }
      case 0x69: { const module = line(); const name = line(); hooks.findClass(module, name); refuse('INST'); break; } // INST
      case 0x6f: refuse('OBJ'); break;
      case 0x81: { pop(); const cls = pop(); refuse(`NEWOBJ${isGlobal(cls) ? ` of ${cls.module}.${cls.name}` : ''}`); break; }
      case 0x92: { pop(); pop(); const cls = pop(); refuse(`NEWOBJ_EX${isGlobal(cls) ? ` of ${cls.module}.${cls.name}` : ''}`); break; }
      case 0x82: case 0x83: case 0x84: refuse('EXT (the copyreg extension registry)'); break;
      case 0x97: case 0x98: refuse('NEXT_BUFFER/READONLY_BUFFER (out-of-band buffers)'); break;
      default:
        fail(`unknown pickle opcode 0x${op.toString(16).padStart(2, '0')} at byte ${p - 1}: not a pickle, or a damaged one`);
    }
  }
}

export function isGlobal(v: unknown): v is PyGlobal {
  return typeof v === 'object' && v !== null && typeof (v as PyGlobal).call === 'function' && typeof (v as PyGlobal).module === 'string';
}
