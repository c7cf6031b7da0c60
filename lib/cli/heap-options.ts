/**
 * The heap options shared by `pymalloc replay`, `pymalloc tune` and others: geometry, return policy, decommit
 * mode, purge delay, huge pages and debug hooks, as command-line flags. Values are checked here so that a mistake is one clear line.
 */
import type { Command } from 'commander';
import type { GeometryPreset, HeapOptions, ReturnPolicy } from '..';
import { GEOMETRY_PRESETS } from '../geometry';
import { DEFAULT_PURGE_DELAY } from '../heap';
import type { DecommitMode } from '../os';
import { quote } from '../quote';
import { parseBytes, parseCount, UsageError } from './usage';

export const PRESETS: readonly GeometryPreset[] = GEOMETRY_PRESETS;
export const POLICIES: readonly ReturnPolicy[] = ['purge', 'cpython', 'never'];
const MODES: readonly DecommitMode[] = ['dontneed', 'unmap'];

export interface HeapFlags {
  preset?: string;
  alignment?: string;
  threshold?: string;
  mediumThreshold?: string;
  poolSize?: string;
  arenaSize?: string;
  policy?: string;
  decommit?: string;
  purgeDelay?: string;
  hugePages?: boolean;
  debug?: boolean;
  shared?: boolean;
}

/** Adds the geometry flags (and, unless `geometryOnly`, the policy, decommit and debug flags) to `cmd`. */
export function addHeapFlags(cmd: Command, geometryOnly = false): Command {
  cmd
    .option('--preset <name>', `geometry preset: ${PRESETS.join(', ')} (default cpython-3.11)`)
    .option('--alignment <bytes>', 'block alignment and size-class spacing: 8 or 16, …')
    .option('--threshold <bytes>', "CPython's small-request threshold: its size classes (at most 512)")
    .option(
      '--medium-threshold <bytes>',
      'largest request served from pools, with medium classes above --threshold (at most 1024; equal to --threshold for none)',
    )
    .option('--pool-size <bytes>', 'pool size, e.g. 4k or 16k')
    .option('--arena-size <bytes>', 'arena size, e.g. 256k or 1m');
  if (!geometryOnly) {
    cmd
      .option('--policy <policy>', `what freed memory does: ${POLICIES.join(', ')} (default purge)`)
      .option('--decommit <mode>', 'how pages go back: dontneed or unmap (default dontneed)')
      .option(
        '--purge-delay <ms>',
        `with --policy purge: how long free memory stays for reuse before it goes back (default ${DEFAULT_PURGE_DELAY}; 0: at once)`,
      )
      .option(
        '--huge-pages',
        'back each arena with a transparent huge page (arenas of 2 MiB: with --preset cpython-hugepages)',
      )
      .option('--debug', "CPython's debug hooks (guard bytes, fills, checks)")
      .option('--shared', 'a heap that worker threads can share (its single-thread speed, for comparison)');
  }
  return cmd;
}

function oneOf<T extends string>(value: string, allowed: readonly T[], what: string): T {
  if (!(allowed as readonly string[]).includes(value)) {
    throw new UsageError(`${what} must be one of ${allowed.join(', ')}, got ${quote(value)}`);
  }
  return value as T;
}

/** HeapOptions from the parsed flags; throws UsageError naming a bad value. */
export function heapOptionsFrom(flags: HeapFlags): HeapOptions {
  const o: HeapOptions = {};
  if (flags.preset !== undefined) o.preset = oneOf(flags.preset, PRESETS, '--preset');
  if (flags.alignment !== undefined) o.alignment = parseCount(flags.alignment, '--alignment');
  if (flags.threshold !== undefined) o.threshold = parseCount(flags.threshold, '--threshold');
  if (flags.mediumThreshold !== undefined)
    o.mediumThreshold = parseCount(flags.mediumThreshold, '--medium-threshold');
  if (flags.poolSize !== undefined) o.poolSize = parseBytes(flags.poolSize, '--pool-size');
  if (flags.arenaSize !== undefined) o.arenaSize = parseBytes(flags.arenaSize, '--arena-size');
  if (flags.policy !== undefined) o.policy = oneOf(flags.policy, POLICIES, '--policy');
  if (flags.decommit !== undefined) o.decommit = oneOf(flags.decommit, MODES, '--decommit');
  if (flags.purgeDelay !== undefined) o.purgeDelay = parseCount(flags.purgeDelay, '--purge-delay');
  if (flags.hugePages) o.hugePages = true;
  if (flags.debug) o.debug = true;
  if (flags.shared) o.shared = true;
  return o;
}
