/** The package root, found without loading the addon (the CLI's build-native needs it first). */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DyadError } from '../errors.js';

/** The package root: the nearest folder above this file that holds package.json and native/. */
export function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(path.join(dir, 'package.json')) && existsSync(path.join(dir, 'native'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new DyadError('ADDON', 'dyad: cannot find the package root (package.json with native/) above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
}
