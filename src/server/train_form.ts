/**
 * The train form of the studio is `dyad train` itself: its options are read from the CLI's
 * commander definition (flag, help, default, choices), sent to the page, and the page's answers
 * are turned back into `dyad train` arguments here, refusing unknown options and bad choices.
 */
import type { Command, Option } from 'commander';
import { program } from '../cli/index.js';

export interface FormField {
  /** Option name as in the CLI without dashes (`image-size`). */
  name: string;
  /** 'flag': a switch (`--resume`, or `--no-x` turning a default-on thing off); 'choice'; 'value'. */
  kind: 'flag' | 'choice' | 'value';
  help: string;
  default: string | boolean | number | null;
  choices: string[] | null;
  /** `--no-x`: the flag turns something off. */
  negate: boolean;
}

/** Options the studio sets itself or that make no sense from the UI. */
const RESERVED = new Set(['out', 'help']);

let cached: FormField[] | null = null;

function trainCommand(): Command {
  const c = program().commands.find((x) => x.name() === 'train');
  if (!c) throw new Error('the dyad CLI has no train command');
  return c;
}

/** The fields of the train form: every `dyad train` option but --out. */
export function trainFields(): FormField[] {
  if (cached) return cached;
  const opts = (trainCommand() as unknown as { options: Option[] }).options;
  cached = opts
    .filter((o) => o.long && !RESERVED.has(o.long.replace(/^--(no-)?/, '')))
    .map((o) => {
      const name = o.long!.replace(/^--/, '');
      const isFlag = !o.required && !o.optional;
      const d = o.defaultValue as unknown;
      return {
        name,
        kind: isFlag ? 'flag' : o.argChoices ? 'choice' : 'value',
        help: o.description,
        default: isFlag ? false : typeof d === 'string' || typeof d === 'number' ? d : null,
        choices: o.argChoices ? [...o.argChoices] : null,
        negate: o.negate,
      } satisfies FormField;
    });
  return cached;
}

/** A run name under the runs root: one or two folder levels of `[A-Za-z0-9._-]`, not starting with a dot. */
export const RUN_NAME = '^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}(/[A-Za-z0-9_][A-Za-z0-9._-]{0,63})?$';

/**
 * `dyad train` arguments from the form's values (option name → string/number/boolean); throws a
 * message naming the bad option. `out` is the run folder.
 */
export function trainArgv(values: Record<string, unknown>, out: string): string[] {
  const fields = new Map(trainFields().map((f) => [f.name, f]));
  const argv = ['train'];
  for (const [name, v] of Object.entries(values)) {
    const f = fields.get(name);
    if (!f) throw new Error(`unknown train option '${name}'; the form's options are those of dyad train --help`);
    if (v === null || v === undefined || v === '') continue;
    if (f.kind === 'flag') {
      if (typeof v !== 'boolean') throw new Error(`option '${name}' is a switch: give true or false`);
      if (v) argv.push(`--${name}`);
      continue;
    }
    if (typeof v !== 'string' && typeof v !== 'number') throw new Error(`option '${name}' takes a value (a string or number)`);
    const s = String(v).trim();
    if (s.startsWith('-') && !/^-?\d/.test(s)) throw new Error(`option '${name}': a value cannot start with '-'`);
    if (f.choices && !f.choices.includes(s)) throw new Error(`option '${name}' must be one of ${f.choices.join(', ')}, got '${s}'`);
    argv.push(`--${name}`, s);
  }
  argv.push('--out', out);
  return argv;
}
