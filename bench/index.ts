/**
 * `npm run bench -- NAME [--flags]`: dyad's benchmarks. Each prints JSON lines and, where a
 * PyTorch/torchvision reference exists, runs it in the same session and prints the ratio
 * (the machines are shared and noisy: only same-session ratios mean anything).
 */

type Bench = (args: Record<string, string | boolean | undefined>) => Promise<void>;
const benches: Record<string, () => Promise<Bench>> = {
  matmul: async () => (await import('./matmul.js')).main,
  'train-step': async () => (await import('./train_step.js')).main,
  knn: async () => (await import('./knn.js')).main,
  augment: async () => (await import('./augment.js')).main,
  loader: async () => (await import('./loader.js')).main,
  search: async () => (await import('./search.js')).main,
  map: async () => (await import('./map.js')).main,
  clip: async () => (await import('./clip.js')).main,
  'label-efficiency': async () => (await import('./label_efficiency.js')).main,
  methods: async () => (await import('./methods.js')).main,
  soak: async () => (await import('./soak.js')).main,
  ddp: async () => (await import('./ddp.js')).main,
};

const [name, ...rest] = process.argv.slice(2);
if (!name || !(name in benches)) {
  console.error(`usage: npm run bench -- <${Object.keys(benches).join('|')}> [--flags]`);
  process.exit(2);
}
/** `--key value`, `--key=value`, or a bare `--flag` (true). */
const values: Record<string, string | boolean> = {};
for (let i = 0; i < rest.length; i++) {
  const a = rest[i]!;
  if (!a.startsWith('--')) continue;
  const eq = a.indexOf('=');
  if (eq > 0) values[a.slice(2, eq)] = a.slice(eq + 1);
  else if (i + 1 < rest.length && !rest[i + 1]!.startsWith('--')) values[a.slice(2)] = rest[++i]!;
  else values[a.slice(2)] = true;
}
const run = await benches[name]!();
await run(values as Record<string, string | boolean | undefined>);
