/**
 * Option merging, in one place (Ultralytics' `get_cfg`): option objects are merged right-most
 * wins, an `undefined` value never overrides, and a key outside the schema is an error that
 * names the options it knows (a typo must not be silently ignored). Each schema (training
 * config, CLIP training config, `Model` method arguments, probe and fit options) then runs its
 * own validator on the merged object.
 */

/** A part whose keys outside the schema are dropped silently (checkpoint configs, overrides meant for other methods). */
export class Lenient {
  constructor(readonly args: object | null | undefined) {}
}

/** Marks `args` as lenient for `mergeOptions`. */
export const lenient = (args: object | null | undefined): Lenient => new Lenient(args);

/**
 * Merges `parts` over `defaults` (right-most defined value wins). `what` names the schema in
 * errors ("unknown training option 'epocs'. Known options: ..."); the known keys are the
 * defaults' keys plus `extraKeys` (options without a default).
 */
export function mergeOptions<T extends object>(what: string, defaults: T, parts: (Lenient | object | null | undefined)[],
  opts: { extraKeys?: readonly string[] } = {}): T {
  const known = new Set([...Object.keys(defaults), ...(opts.extraKeys ?? [])]);
  const out = { ...defaults } as Record<string, unknown>;
  for (const part of parts) {
    const isLenient = part instanceof Lenient;
    const args = part instanceof Lenient ? part.args : part;
    if (!args) continue;
    for (const [k, v] of Object.entries(args)) {
      if (v === undefined) continue;
      if (!known.has(k)) {
        if (isLenient) continue;
        throw new TypeError(`unknown ${what} option '${k}'. Known options: ${[...known].sort().join(', ')}`);
      }
      out[k] = v;
    }
  }
  return out as T;
}

/** The entries of `o` whose value is defined (so that spreading it never overrides a default with `undefined`). */
export function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** The entries of `o` named in `keys` and defined. */
export function pickDefined<T extends object>(o: object, keys: Iterable<string>): Partial<T> {
  const k = new Set(keys);
  return Object.fromEntries(Object.entries(o).filter(([name, v]) => k.has(name) && v !== undefined)) as Partial<T>;
}

/** Validation helpers for the schemas' validators: each throws a RangeError/TypeError naming the option. */
export const check = {
  oneOf(what: string, value: unknown, allowed: readonly string[]): void {
    if (!allowed.includes(String(value))) throw new TypeError(`unknown ${what} '${String(value)}': use one of ${allowed.join(', ')}`);
  },
  int(what: string, value: unknown, min = 1): void {
    if (!Number.isInteger(value) || (value as number) < min) throw new RangeError(`${what} must be an integer ≥ ${min}, got ${String(value)}`);
  },
  positive(what: string, value: unknown): void {
    if (!((value as number) > 0)) throw new RangeError(`${what} must be positive, got ${String(value)}`);
  },
};
