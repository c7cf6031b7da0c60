/**
 * What the user typed, for every command: UsageError (a mistake, printed as one line), the parsers of numeric
 * options, and the checks of the files and directories that options will write.
 */
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { quote } from '../quote';
import { ChartLibraryError, loadVega } from '../report/vega';

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

/**
 * Checks, before any work, a file an option will write at the end (`--plot rss.svg`): its name ends in `ext`
 * and its directory exists and can be written to, so that a typo costs nothing rather than a whole run.
 */
export function checkOutputFile(option: string, file: string, ext = '.svg'): void {
  if (!file.toLowerCase().endsWith(ext) || basename(file).length <= ext.length)
    throw new UsageError(`${option}: expected a file name ending in ${ext}, got ${quote(file)}`);
  const dir = dirname(resolve(file));
  let isDir = false;
  try {
    isDir = statSync(dir).isDirectory();
  } catch {
    throw new UsageError(`${option}: cannot write ${quote(file)}: no such directory ${quote(dir)}`);
  }
  if (!isDir)
    throw new UsageError(`${option}: cannot write ${quote(file)}: ${quote(dir)} is not a directory`);
  try {
    accessSync(dir, constants.W_OK);
  } catch {
    throw new UsageError(`${option}: cannot write ${quote(file)}: permission denied`);
  }
  if (existsSync(file) && statSync(file).isDirectory())
    throw new UsageError(`${option}: cannot write ${quote(file)}: it is a directory`);
}

/**
 * Checks, before any work, a directory an option will write files into (`--map maps/`): it exists, or can be
 * made in an existing directory that can be written to.
 */
export function checkOutputDir(option: string, dir: string): void {
  if (existsSync(dir)) {
    if (!statSync(dir).isDirectory()) throw new UsageError(`${option}: ${quote(dir)} is not a directory`);
    try {
      accessSync(dir, constants.W_OK);
    } catch {
      throw new UsageError(`${option}: cannot write into ${quote(dir)}: permission denied`);
    }
    return;
  }
  const parent = dirname(resolve(dir));
  if (!existsSync(parent) || !statSync(parent).isDirectory())
    throw new UsageError(`${option}: cannot make ${quote(dir)}: no such directory ${quote(parent)}`);
  try {
    accessSync(parent, constants.W_OK);
  } catch {
    throw new UsageError(`${option}: cannot make ${quote(dir)}: permission denied`);
  }
}

/**
 * Checks, before any work, that the chart libraries an option needs (`--plot`, `--map`) are installed: they are
 * optional peer dependencies, and a run of minutes should not end in their absence.
 */
export function checkChartLibraries(option: string): void {
  try {
    loadVega();
  } catch (err) {
    if (err instanceof ChartLibraryError) throw new UsageError(`${option}: ${err.message}`);
    throw err;
  }
}
