/**
 * `pymalloc pages`: shows that decommitted pages really go back to the OS. It reserves address space,
 * commits and touches `--size` bytes in 1 MiB steps, decommits them, and reports RSS (statm) and the
 * resident bytes of the range (mincore) after each phase, then the share of the touched memory returned:
 * (rssTouched - rssAfter) / (rssTouched - rssBaseline).
 */
import type { Command } from 'commander';
import { type DecommitMode, nativeBuild, pageSize, Reservation, rssBytes } from '../os';
import { collectGarbage } from '../report/gc';
import { startProgress } from './progress';
import { parseBytes, quote, UsageError } from './usage';

const MiB = 2 ** 20;
const GiB = 2 ** 30;
const STEP = MiB;
const WARM_UP_SIZE = 4 * MiB;
/** The reservation is twice the committed size (at least 1 GiB) and at most 4 GiB. */
const MAX_SIZE = 2 * GiB;

export type PagesPhaseName = 'baseline' | 'reserved' | 'committed+touched' | 'decommitted';

export interface PagesPhase {
  phase: PagesPhaseName;
  /** Resident set size of the process, bytes. */
  rssBytes: number;
  /** Bytes of the reservation in RAM (mincore); null before the reservation exists. */
  residentBytes: number | null;
}

export interface PagesReport {
  /** Bytes committed and touched. */
  size: number;
  reservationSize: number;
  pageSize: number;
  mode: DecommitMode;
  nativeBuild: string;
  phases: PagesPhase[];
  /** (rssTouched - rssAfter) / (rssTouched - rssBaseline) × 100, one decimal. */
  returnedPercent: number;
}

export interface PagesOptions {
  /** Bytes to commit and touch: a multiple of the page size from 1 MiB to 2 GiB. */
  size: number;
  /** @defaultValue 'dontneed', the mode a Heap uses by default */
  mode?: DecommitMode;
  /** Called after each 1 MiB step with the bytes touched so far. */
  onProgress?: (touched: number) => void;
}

/**
 * Reserves, commits and touches `size` bytes in 1 MiB steps, decommits them, and releases the reservation;
 * `record` is called after each phase while the reservation is live.
 */
function exercise(
  size: number,
  mode: DecommitMode,
  record: (phase: PagesPhaseName, reservation: Reservation) => void,
  onProgress?: (touched: number) => void,
): number {
  const page = pageSize();
  // 'unmap' needs a PROT_NONE reservation; 'dontneed' is a read-write one, as a heap of that mode has.
  const reservation = Reservation.create(
    Math.max(GiB, 2 * size),
    page,
    mode === 'unmap' ? 'none' : 'readwrite',
  );
  try {
    record('reserved', reservation);
    const bytes = new Uint8Array(reservation.buffer, 0, size);
    for (let offset = 0; offset < size; offset += STEP) {
      const length = Math.min(STEP, size - offset);
      reservation.commit(offset, length);
      for (let p = offset; p < offset + length; p += page) bytes[p] = 1;
      onProgress?.(offset + length);
    }
    record('committed+touched', reservation);
    reservation.decommit(0, size, mode);
    record('decommitted', reservation);
  } finally {
    reservation.release();
  }
  return reservation.size;
}

/** Runs the experiment in this process and returns the numbers. */
export function measurePages(options: PagesOptions): PagesReport {
  const { size, mode = 'dontneed', onProgress } = options;
  const page = pageSize();
  if (!Number.isSafeInteger(size) || size < MiB || size > MAX_SIZE || size % page !== 0) {
    throw new RangeError(
      `size must be a multiple of the page size (${page}) from 1 MiB to 2 GiB, got ${size}`,
    );
  }
  const phases: PagesPhase[] = [];
  const record = (phase: PagesPhaseName, reservation?: Reservation): void => {
    // JavaScript garbage first, at every phase: a collection between two of them moved RSS by megabytes (once
    // "returned 103.2%", the process smaller after the decommit than at the baseline).
    collectGarbage();
    phases.push({
      phase,
      rssBytes: rssBytes(),
      residentBytes: reservation ? reservation.residentBytes(0, size) : null,
    });
  };
  // A small dry run first, so that one-time costs (compiled code, buffers) land in the baseline.
  exercise(WARM_UP_SIZE, mode, () => rssBytes());
  record('baseline');
  const reservationSize = exercise(size, mode, record, onProgress);
  const [baseline, , touched, after] = phases.map((p) => p.rssBytes) as [number, number, number, number];
  const grown = touched - baseline;
  const returnedPercent = grown > 0 ? Math.round(((touched - after) / grown) * 1000) / 10 : 0;
  return {
    size,
    reservationSize,
    pageSize: page,
    mode,
    nativeBuild: nativeBuild().kind,
    phases,
    returnedPercent,
  };
}

function mib(bytes: number | null): string {
  return bytes === null ? '-' : `${(bytes / MiB).toFixed(1)} MiB`;
}

/** The human-readable table, ending with the line `returned X% of committed memory to the OS`. */
export function formatPagesReport(report: PagesReport): string {
  const rows = [['phase', 'RSS', 'resident in range']];
  for (const p of report.phases) rows.push([p.phase, mib(p.rssBytes), mib(p.residentBytes)]);
  const widths = [0, 1, 2].map((c) => Math.max(...rows.map((r) => r[c]!.length)));
  const lines = rows.map(
    (r) => `${r[0]!.padEnd(widths[0]!)}  ${r[1]!.padStart(widths[1]!)}  ${r[2]!.padStart(widths[2]!)}`,
  );
  return [
    `committed and touched ${mib(report.size)} of a ${mib(report.reservationSize)} reservation`,
    `decommit mode '${report.mode}', ${report.nativeBuild} build`,
    ...lines,
    `returned ${report.returnedPercent.toFixed(1)}% of committed memory to the OS`,
  ].join('\n');
}

function parseMode(text: string): DecommitMode {
  if (text !== 'unmap' && text !== 'dontneed') {
    throw new UsageError(`--mode: expected 'unmap' or 'dontneed', got ${quote(text)}`);
  }
  return text;
}

function parseSize(text: string): number {
  const size = parseBytes(text, '--size');
  const page = pageSize();
  if (size < MiB || size > MAX_SIZE || size % page !== 0) {
    throw new UsageError(
      `--size: expected a multiple of the page size (${page}) from 1MiB to 2GiB, got ${quote(text)}`,
    );
  }
  return size;
}

export function registerPagesCommand(program: Command): void {
  program
    .command('pages')
    .summary('show that decommitted pages go back to the OS')
    .description('Commits, touches and decommits memory, and shows that its pages go back to the OS.')
    .option(
      '--size <bytes>',
      'bytes to commit and touch (the reservation is twice that, at least 1 GiB)',
      '512MiB',
    )
    .option(
      '--mode <mode>',
      "decommit mode: 'dontneed' (madvise, what a Heap uses by default) or 'unmap' (fresh PROT_NONE pages)",
      'dontneed',
    )
    .option('--json', 'print one JSON object instead of the table')
    .addHelpText(
      'after',
      '\nExample:\n  $ pymalloc pages --size 256MiB\n  $ pymalloc pages --json --mode unmap | jq .returnedPercent\n',
    )
    .action((opts: { size: string; mode: string; json?: boolean }) => {
      const size = parseSize(opts.size);
      const mode = parseMode(opts.mode);
      const bar = startProgress('touching', Math.ceil(size / MiB), 'MiB');
      let report: PagesReport;
      try {
        report = measurePages({ size, mode, onProgress: (touched) => bar.update(Math.ceil(touched / MiB)) });
      } finally {
        bar.stop();
      }
      process.stdout.write(opts.json ? `${JSON.stringify(report)}\n` : `${formatPagesReport(report)}\n`);
    });
}
