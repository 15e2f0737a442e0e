// The environment dyad sets before libtorch loads: OpenBLAS kernels that match the CPU (an old
// OpenBLAS takes new Xeons for a 2004 CPU), and a short OpenMP spin; a user's choice always wins.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { openBLASCoreFor, packageRoot } from '../src/torch/native.js';

const cpu = (vendor: string, flags: string): string =>
  `processor\t: 0\nvendor_id\t: ${vendor}\ncpu family\t: 6\nmodel\t\t: 207\nflags\t\t: ${flags}\n\nprocessor\t: 1\nvendor_id\t: ${vendor}\n`;

test('OpenBLAS kernels by CPU: AVX-512 Intel → SkylakeX, AVX2 Intel → Haswell, otherwise left to OpenBLAS', () => {
  const avx2 = 'fpu sse sse2 ssse3 sse4_1 sse4_2 avx fma avx2 bmi2';
  const avx512 = `${avx2} avx512f avx512dq avx512cd avx512bw avx512vl avx512_vnni avx512_bf16`;
  assert.equal(openBLASCoreFor(cpu('GenuineIntel', avx512)), 'SkylakeX');
  assert.equal(openBLASCoreFor(cpu('GenuineIntel', avx2)), 'Haswell');
  assert.equal(openBLASCoreFor(cpu('GenuineIntel', 'fpu sse sse2 ssse3 avx')), null, 'no AVX2: OpenBLAS knows those CPUs');
  assert.equal(openBLASCoreFor(cpu('AuthenticAMD', avx512)), null, 'AMD: OpenBLAS picks its Zen kernels itself');
  assert.equal(openBLASCoreFor(cpu('GenuineIntel', 'avx512f avx2 fma')), 'Haswell', 'a partial AVX-512 set is not SkylakeX');
  assert.equal(openBLASCoreFor(''), null);
});

test('loading dyad sets OPENBLAS_CORETYPE for this CPU unless the user set it, and GOMP_SPINCOUNT unless a policy was chosen', () => {
  const index = path.join(packageRoot(), 'dist', 'src', 'torch', 'index.js');
  const code = `import('${index}').then((t) => { t.ones([2]).sum().item(); console.log(JSON.stringify({ core: process.env.OPENBLAS_CORETYPE ?? null, spin: process.env.GOMP_SPINCOUNT ?? null })); })`;
  const run = (env: NodeJS.ProcessEnv): { core: string | null; spin: string | null } => {
    const clean = { ...process.env };
    for (const k of ['OPENBLAS_CORETYPE', 'GOMP_SPINCOUNT', 'OMP_WAIT_POLICY']) delete clean[k];
    const r = spawnSync(process.execPath, ['-e', code], { env: { ...clean, ...env }, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout.trim().split('\n').at(-1)!);
  };
  const expected = process.platform === 'linux' && existsSync('/proc/cpuinfo') ? openBLASCoreFor(readFileSync('/proc/cpuinfo', 'utf8')) : null;
  assert.deepEqual(run({}), { core: expected, spin: '10000' });
  assert.deepEqual(run({ OPENBLAS_CORETYPE: 'Haswell', OMP_WAIT_POLICY: 'PASSIVE' }), { core: 'Haswell', spin: null });
});
