/**
 * Memory scopes. JS's garbage collector cannot see native tensor memory, so every tensor is
 * owned: `scope(fn)` frees each tensor created while `fn` runs, except the tensors that `fn`
 * returns (found in arrays, plain objects, Maps and Sets), which move to the enclosing scope.
 * The napi finalizer on each handle is only the safety net (as TorchSharp's DisposeScope).
 */

/** What a scope can own: tensors, and anything else with the same contract. */
export interface Owned {
  /** Set by `keep()`: no scope disposes it any more. */
  _kept: boolean;
  readonly isDisposed: boolean;
  dispose(): void;
}

const stack: Owned[][] = [];

/** Registers a newly created object with the innermost scope, if any. */
export function track(o: Owned): void {
  const top = stack[stack.length - 1];
  if (top !== undefined) top.push(o);
}

/** Number of scopes currently open (0 outside any scope). */
export function scopeDepth(): number {
  return stack.length;
}

function collect(value: unknown, out: Set<Owned>, seen: Set<unknown>): void {
  if (value === null || typeof value !== 'object' || seen.has(value)) return;
  seen.add(value);
  if ('_kept' in value && 'dispose' in value) {
    out.add(value as Owned);
    return;
  }
  if (Array.isArray(value)) for (const v of value) collect(v, out, seen);
  else if (value instanceof Map) for (const v of value.values()) collect(v, out, seen);
  else if (value instanceof Set) for (const v of value) collect(v, out, seen);
  else if (Object.getPrototypeOf(value) === Object.prototype) for (const v of Object.values(value)) collect(v, out, seen);
}

/**
 * Runs `fn` and frees every tensor it created, except those it returns.
 * @example const loss = torch.scope(() => x.matmul(w).relu().mean());
 */
export function scope<T>(fn: () => T): T {
  const owned: Owned[] = [];
  stack.push(owned);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    stack.pop();
    for (const o of owned) if (!o._kept) o.dispose();
    throw e;
  }
  stack.pop();
  if (result instanceof Promise) {
    for (const o of owned) if (!o._kept) o.dispose();
    throw new TypeError('torch.scope(fn): fn returned a Promise. Scopes are synchronous; open one scope per synchronous step instead.');
  }
  const keep = new Set<Owned>();
  collect(result, keep, new Set());
  const outer = stack[stack.length - 1];
  for (const o of owned) {
    if (keep.has(o)) {
      if (outer !== undefined) outer.push(o);
    } else if (!o._kept) {
      o.dispose();
    }
  }
  return result;
}

/** Frees every tensor found in `value` (arrays, objects, Maps, Sets), except those in `except`. */
export function disposeAll(value: unknown, except: unknown = undefined): void {
  const all = new Set<Owned>();
  collect(value, all, new Set());
  const keep = new Set<Owned>();
  collect(except, keep, new Set());
  for (const o of all) if (!keep.has(o)) o.dispose();
}
