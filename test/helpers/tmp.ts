/** Temporary folders for tests, removed when the test process exits. */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const made: string[] = [];
process.on('exit', () => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

/** A fresh folder under the OS temp dir, named `dyad-<prefix>-XXXXXX`. Set DYAD_KEEP_TEST_DIRS=1 to keep it. */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), `dyad-${prefix}-`));
  if (!process.env.DYAD_KEEP_TEST_DIRS) made.push(dir);
  return dir;
}

/** `folder(name)` makes a fresh numbered subfolder `<n>-<name>` of `root`. */
export function folderMaker(root: string): (name: string) => string {
  let n = 0;
  return (name) => {
    const d = path.join(root, `${n++}-${name}`);
    mkdirSync(d, { recursive: true });
    return d;
  };
}
