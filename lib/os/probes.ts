/**
 * Memory probes: how much of the process, and of a reservation, is in RAM right now.
 * Linux reports through /proc; elsewhere `rssBytes` falls back to process.memoryUsage.rss()
 * and `smapsRollup` returns null.
 */
import * as fs from 'node:fs';
import { pageSize, Reservation } from './pages';

/** The resident set size of this process in bytes: /proc/self/statm field 2 × page size. */
export function rssBytes(): number {
  let statm: string;
  try {
    statm = fs.readFileSync('/proc/self/statm', 'latin1');
  } catch {
    return process.memoryUsage.rss();
  }
  const resident = Number(statm.split(' ')[1]);
  return Number.isFinite(resident) ? resident * pageSize() : process.memoryUsage.rss();
}

/** Totals of /proc/self/smaps_rollup, in bytes. */
export interface SmapsRollup {
  rss: number;
  /** Proportional set size; absent on kernels that do not report it. */
  pss?: number;
  anonymous: number;
  /** Pages freed with MADV_FREE that the kernel has not reclaimed yet. */
  lazyFree: number;
  anonHugePages: number;
}

const SMAPS_FIELDS: Record<string, keyof SmapsRollup> = {
  Rss: 'rss',
  Pss: 'pss',
  Anonymous: 'anonymous',
  LazyFree: 'lazyFree',
  AnonHugePages: 'anonHugePages',
};

/** Reads /proc/self/smaps_rollup (Linux 4.14+); null when it is unavailable. */
export function smapsRollup(): SmapsRollup | null {
  let text: string;
  try {
    text = fs.readFileSync('/proc/self/smaps_rollup', 'latin1');
  } catch {
    return null;
  }
  const result: SmapsRollup = { rss: 0, anonymous: 0, lazyFree: 0, anonHugePages: 0 };
  let seen = false;
  for (const line of text.split('\n')) {
    const m = /^(\w+):\s+(\d+) kB$/.exec(line);
    const field = m ? SMAPS_FIELDS[m[1]!] : undefined;
    if (m && field) {
      result[field] = Number(m[2]) * 1024;
      seen = true;
    }
  }
  return seen ? result : null;
}

/** Bytes of [offset, offset + length) of the reservation that are in RAM (mincore). */
export function residentBytes(
  reservation: Reservation,
  offset = 0,
  length: number = reservation?.size - offset,
): number {
  if (!Reservation.isReservation(reservation)) {
    const got = reservation === null ? 'null' : typeof reservation;
    throw Object.assign(
      new TypeError(`pymalloc: residentBytes: reservation must be a Reservation, got ${got}`),
      {
        code: 'ERR_INVALID_ARG_TYPE',
      },
    );
  }
  return reservation.residentBytes(offset, length);
}

/** What the kernel does with transparent huge pages, and their size. */
export interface TransparentHugePages {
  /**
   * /sys/kernel/mm/transparent_hugepage/enabled: 'always', 'madvise' (only for ranges advised MADV_HUGEPAGE, as
   * a heap with `hugePages` advises its arenas) or 'never'.
   */
  mode: 'always' | 'madvise' | 'never';
  /** Bytes of one huge page (hpage_pmd_size): 2 MiB on x86-64. */
  size: number;
}

const THP_DIR = '/sys/kernel/mm/transparent_hugepage';
let thpCache: TransparentHugePages | null | undefined;

/** Parses the kernel's THP settings; null for text that is not theirs. */
export function parseTransparentHugePages(enabled: string, size: string): TransparentHugePages | null {
  const mode = /\[(always|madvise|never)\]/.exec(enabled)?.[1] as TransparentHugePages['mode'] | undefined;
  const bytes = Number(size.trim());
  if (mode === undefined || !/^\d+$/.test(size.trim()) || bytes <= 0 || !Number.isSafeInteger(bytes))
    return null;
  return { mode, size: bytes };
}

/** The kernel's transparent huge pages (read once); null where there are none (not Linux, or a kernel without). */
export function transparentHugePages(): TransparentHugePages | null {
  if (thpCache === undefined) {
    try {
      thpCache = parseTransparentHugePages(
        fs.readFileSync(`${THP_DIR}/enabled`, 'latin1'),
        fs.readFileSync(`${THP_DIR}/hpage_pmd_size`, 'latin1'),
      );
    } catch {
      thpCache = null;
    }
  }
  return thpCache;
}
