// readDistributedEnv (src/distributed/env.ts): the torchrun-style variables become a typed
// DistributedEnv; a missing or invalid one is a LaunchError (code LAUNCH) naming the variable and the fix.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hasDistributedEnv, LaunchError, parseTcpInit, readDistributedEnv } from '../src/distributed/env.js';
import { isDyadError } from '../src/errors.js';

const throwsNaming = (env: Record<string, string>, re: RegExp): void => {
  assert.throws(() => readDistributedEnv(env), (e: unknown) => {
    assert.ok(e instanceof LaunchError && isDyadError(e, 'LAUNCH'), `a LaunchError, got ${String(e)}`);
    assert.match(e.message, re);
    assert.match(e.message, /nproc-per-node|tcp:\/\/|file:\/\/|MASTER_ADDR=127/, 'the message says how to fix it');
    return true;
  });
};

test('no WORLD_SIZE and no RANK: a single-process run (null)', () => {
  assert.equal(readDistributedEnv({}), null);
  assert.equal(readDistributedEnv({ MASTER_ADDR: 'x', LOCAL_RANK: '0' }), null);
  assert.equal(hasDistributedEnv({ WORLD_SIZE: '' }), false);
  assert.equal(hasDistributedEnv({ RANK: '0' }), true);
});

test('torchrun\'s variables', () => {
  const env = { RANK: '3', WORLD_SIZE: '4', LOCAL_RANK: '1', LOCAL_WORLD_SIZE: '2', GROUP_RANK: '1', MASTER_ADDR: '10.0.0.1', MASTER_PORT: '29500' };
  assert.deepEqual(readDistributedEnv(env), { rank: 3, worldSize: 4, localRank: 1, localWorldSize: 2, nodeRank: 1, masterAddr: '10.0.0.1', masterPort: 29500, initMethod: 'env://' });
  // Kubernetes PyTorchJob: one process per pod, no LOCAL_* variables
  assert.deepEqual(readDistributedEnv({ RANK: '1', WORLD_SIZE: '2', MASTER_ADDR: 'job-master-0', MASTER_PORT: '23456' }),
    { rank: 1, worldSize: 2, localRank: 0, localWorldSize: 1, masterAddr: 'job-master-0', masterPort: 23456, initMethod: 'env://' });
  // one process: no rendezvous needed
  assert.deepEqual(readDistributedEnv({ RANK: '0', WORLD_SIZE: '1' }), { rank: 0, worldSize: 1, localRank: 0, localWorldSize: 1, initMethod: 'env://' });
});

test('DYAD_DIST_INIT: tcp:// and file:// rendezvous without MASTER_*', () => {
  const tcp = readDistributedEnv({ RANK: '0', WORLD_SIZE: '2', DYAD_DIST_INIT: 'tcp://127.0.0.1:23456' })!;
  assert.equal(tcp.initMethod, 'tcp://127.0.0.1:23456');
  assert.equal(tcp.masterAddr, '127.0.0.1');
  assert.equal(tcp.masterPort, 23456);
  const file = readDistributedEnv({ RANK: '1', WORLD_SIZE: '2', DYAD_DIST_INIT: 'file:///shared/rdv' })!;
  assert.equal(file.initMethod, 'file:///shared/rdv');
  assert.equal(file.masterAddr, undefined);
  assert.deepEqual(parseTcpInit('tcp://[::1]:80'), { host: '::1', port: 80 });
});

test('missing and invalid values name the variable and the fix', () => {
  throwsNaming({ WORLD_SIZE: '2', MASTER_ADDR: 'a', MASTER_PORT: '1' }, /^RANK is not set/);
  throwsNaming({ RANK: '0', MASTER_ADDR: 'a', MASTER_PORT: '1' }, /^WORLD_SIZE is not set/);
  throwsNaming({ RANK: '2', WORLD_SIZE: '2', MASTER_ADDR: 'a', MASTER_PORT: '1' }, /RANK=2 is out of range for WORLD_SIZE=2/);
  throwsNaming({ RANK: '-1', WORLD_SIZE: '2' }, /RANK="-1" is not an integer >= 0/);
  throwsNaming({ RANK: '0', WORLD_SIZE: 'two' }, /WORLD_SIZE="two" is not an integer >= 1/);
  throwsNaming({ RANK: '0', WORLD_SIZE: '0' }, /WORLD_SIZE="0" is not an integer >= 1/);
  throwsNaming({ RANK: '0', WORLD_SIZE: '2', MASTER_PORT: '29500' }, /^MASTER_ADDR is not set/);
  throwsNaming({ RANK: '0', WORLD_SIZE: '2', MASTER_ADDR: 'h' }, /^MASTER_PORT is not set/);
  throwsNaming({ RANK: '0', WORLD_SIZE: '2', MASTER_ADDR: 'h', MASTER_PORT: '70000' }, /MASTER_PORT="70000" is not a port/);
  throwsNaming({ RANK: '0', WORLD_SIZE: '4', LOCAL_RANK: '2', LOCAL_WORLD_SIZE: '2', MASTER_ADDR: 'h', MASTER_PORT: '1' }, /LOCAL_RANK=2 is out of range for LOCAL_WORLD_SIZE=2/);
  throwsNaming({ RANK: '0', WORLD_SIZE: '2', DYAD_DIST_INIT: 'tcp://host' }, /DYAD_DIST_INIT="tcp:\/\/host": a tcp init method reads tcp:\/\/HOST:PORT/);
  throwsNaming({ RANK: '0', WORLD_SIZE: '2', DYAD_DIST_INIT: 'nfs://x' }, /DYAD_DIST_INIT="nfs:\/\/x": use env:\/\//);
});
