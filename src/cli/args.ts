/** Option parsers shared by the commands; each message names the flag. */
import { InvalidArgumentError } from 'commander';

/** Parses an integer option, with a message naming the flag. */
export function intArg(name: string, min = 0): (v: string) => number {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer ≥ ${min}, got '${v}'`);
    return n;
  };
}
export function floatArg(name: string): (v: string) => number {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isFinite(n)) throw new InvalidArgumentError(`${name} must be a number, got '${v}'`);
    return n;
  };
}

/** `--feature-stages`: how many of a ResNet's last stages to pool, 1 to 4. */
export function stagesArg(v: string): number {
  const n = intArg('--feature-stages', 1)(v);
  if (n > 4) throw new InvalidArgumentError(`--feature-stages counts a ResNet's last stages: 1, 2, 3 or 4, got '${v}'`);
  return n;
}
