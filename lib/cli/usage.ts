import { quote } from '../quote';

export { escapeInput, oneLine, quote } from '../quote';

/**
 * An error caused by what the user typed: the CLI prints its message alone, without a stack trace. A message
 * that repeats what the user typed quotes it through `quote` (truncated, escaped).
 */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Parses a non-negative integer option such as `--size 1073741824`, `--size 1g` or `--size 512MiB`. */
export function parseBytes(text: string, what: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?\s*$/i.exec(text);
  if (!m)
    throw new UsageError(`${what}: expected a byte count such as 1048576, 512k or 1GiB, got ${quote(text)}`);
  const unit = (m[2] ?? '').toLowerCase();
  const scale =
    unit === 'k' ? 2 ** 10 : unit === 'm' ? 2 ** 20 : unit === 'g' ? 2 ** 30 : unit === 't' ? 2 ** 40 : 1;
  const value = Number(m[1]) * scale;
  if (!Number.isSafeInteger(value))
    throw new UsageError(`${what}: ${quote(text)} is not a whole number of bytes`);
  return value;
}

/** Parses a positive integer option such as `--reps 3`. */
export function parseCount(text: string, what: string): number {
  if (!/^\s*\d+\s*$/.test(text)) throw new UsageError(`${what}: expected a whole number, got ${quote(text)}`);
  const value = Number(text);
  if (!Number.isSafeInteger(value)) throw new UsageError(`${what}: ${quote(text)} is too large`);
  return value;
}
