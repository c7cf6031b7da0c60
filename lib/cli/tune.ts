/**
 * `pymalloc tune TRACE`: the profiler Vladimir Marangozov asked for in 2002. It replays a trace under a grid of
 * geometries (alignment 8 or 16 × pools of 4 or 16 KiB × arenas of 256 KiB or 1 MiB) and reports, for each,
 * the bytes lost to quantization, pool headers and unused pools at the heap's peak, the peak resident memory and
 * the time per operation; then recommends one and says why.
 */
import type { Command } from 'commander';
import type { HeapOptions, ReturnPolicy } from '..';
import { type ReplayMeasurement, sampleReplayAsync, timeReplaysAsync, WARM_UP_OPS } from '../measure';
import { human, textTable, wrap } from '../report/format';
import type { Trace } from '../trace';
import { POLICIES } from './heap-options';
import { startProgress } from './progress';
import { checkHeapOptions, loadTraceForCli, withinHeapCapacity } from './replay';
import { escapeInput, parseCount, quote, UsageError } from './usage';

const KiB = 1024;
const MiB = 1024 * 1024;

/** The grid, CPython 3.11's geometry first. */
export const TUNE_GRID: ReadonlyArray<Required<Pick<HeapOptions, 'alignment' | 'poolSize' | 'arenaSize'>>> = [
  16, 8,
].flatMap((alignment) =>
  [16 * KiB, 4 * KiB].flatMap((poolSize) =>
    [MiB, 256 * KiB].map((arenaSize) => ({ alignment, poolSize, arenaSize })),
  ),
);

export interface TuneRow {
  alignment: number;
  poolSize: number;
  arenaSize: number;
  /** At the heap's peak (the sample with the most arenas): bytes lost to rounding requests up to their class. */
  quantization: number;
  poolHeaders: number;
  /** Bytes of free pools in live arenas (committed or not). */
  unusedPools: number;
  /** Bytes of free blocks in used pools. */
  availableBlocks: number;
  /** Arenas at the peak. */
  arenas: number;
  /** The highest resident bytes of the heap, and of the process, over the replay. */
  peakHeapResident: number;
  peakRss: number;
  nsPerOp: number;
}

export interface TuneReport {
  trace: string;
  ops: number;
  policy: ReturnPolicy;
  reps: number;
  rows: TuneRow[];
  /** Index into rows. */
  recommended: number;
  why: string;
}

/** Within this factor of the fastest geometry's time, memory decides. */
const TIME_SLACK = 1.1;
/** Within this factor of the least peak resident memory, geometries count as equal on memory. */
const MEMORY_SLACK = 1.05;

export function tuneRow(g: (typeof TUNE_GRID)[number], m: ReplayMeasurement): TuneRow {
  const b = m.statsAtPeak.bytes;
  return {
    ...g,
    quantization: b.quantization,
    poolHeaders: b.poolHeaders,
    unusedPools: b.unusedPools,
    availableBlocks: b.availableBlocks,
    arenas: m.statsAtPeak.arenas.current,
    peakHeapResident: m.peak.heapResident,
    peakRss: m.peak.rss,
    nsPerOp: m.nsPerOp,
  };
}

function label(r: Pick<TuneRow, 'alignment' | 'poolSize' | 'arenaSize'>): string {
  return `alignment ${r.alignment}, ${human(r.poolSize)} pools, ${human(r.arenaSize)} arenas`;
}

/**
 * Picks a geometry: the candidates are those within 10% of the fastest time; of them, those within 5% of the
 * least peak resident memory are as good as each other, and CPython 3.11's geometry (the first row) is
 * preferred among those, then the fastest. The reason names the figures that decided.
 */
export function recommend(rows: TuneRow[]): { index: number; why: string } {
  const fastest = Math.min(...rows.map((r) => r.nsPerOp));
  const candidates = rows.map((_, i) => i).filter((i) => rows[i].nsPerOp <= fastest * TIME_SLACK);
  const least = Math.min(...candidates.map((i) => rows[i].peakHeapResident));
  const good = candidates.filter((i) => rows[i].peakHeapResident <= least * MEMORY_SLACK);
  const index = good.includes(0) ? 0 : good.reduce((a, i) => (rows[i].nsPerOp < rows[a].nsPerOp ? i : a));
  const r = rows[index];
  const base = rows[0];
  const lost = (x: TuneRow) => x.quantization + x.poolHeaders + x.unusedPools;
  const slack = (f: number) => `${Math.round((f - 1) * 100)}%`;
  const parts = [
    `${label(r)}: its peak resident memory (${human(r.peakHeapResident)}) is within ${slack(MEMORY_SLACK)} of ` +
      `the least (${human(least)}) among the geometries within ${slack(TIME_SLACK)} of the fastest time ` +
      `(${fastest.toFixed(1)} ns/op); at the peak it loses ${human(r.quantization)} to quantization, ` +
      `${human(r.poolHeaders)} to pool headers and ${human(r.unusedPools)} to unused pools.`,
  ];
  if (index === 0) {
    parts.push(
      "It is CPython 3.11's own geometry: no other saves enough memory or time on this trace to beat it.",
    );
  } else {
    const saved = base.peakHeapResident - r.peakHeapResident;
    parts.push(
      `Against CPython 3.11's geometry (${label(base)}) it ${saved >= 0 ? 'saves' : 'costs'} ` +
        `${human(Math.abs(saved))} of peak resident memory (overhead ${human(lost(r))} vs ${human(lost(base))}) ` +
        `at ${r.nsPerOp.toFixed(1)} vs ${base.nsPerOp.toFixed(1)} ns/op.`,
    );
  }
  return { index, why: parts.join(' ') };
}

export async function runTune(
  trace: Trace,
  options: {
    policy: ReturnPolicy;
    reps: number;
    /** Operations of untimed warm-up replays per geometry (measure.ts's WARM_UP_OPS by default). */
    warmUpOps?: number;
    /** Called after each geometry's timed replays, then after each geometry's sampled replay. */
    onTimed?: (geometries: number) => void;
    onSampled?: (geometries: number) => void;
  },
): Promise<TuneReport> {
  // Every geometry's timed replays first, its heap kept alive until all are timed: destroying an 'unmap' heap
  // detaches its buffer, which would slow every typed-array access of the geometries timed after it.
  const timed = [];
  for (const [i, g] of TUNE_GRID.entries()) {
    timed.push(
      await timeReplaysAsync(
        trace,
        { ...g, policy: options.policy },
        options.reps,
        undefined,
        options.warmUpOps,
      ),
    );
    options.onTimed?.(i + 1);
  }
  for (const t of timed) t.heap.destroy();
  const rows: TuneRow[] = [];
  for (const [i, g] of TUNE_GRID.entries()) {
    const heap = { ...g, policy: options.policy };
    const m = await sampleReplayAsync(trace, timed[i]!.runs, { heap, samples: 100 });
    options.onSampled?.(i + 1);
    rows.push(tuneRow(g, m));
  }
  const { index, why } = recommend(rows);
  return {
    trace: trace.name.replace(/^.*[\\/]/, ''),
    ops: trace.length,
    policy: options.policy,
    reps: options.reps,
    rows,
    recommended: index,
    why,
  };
}

/** A geometry in the table's first column: alignment/pool/arena, e.g. 16/16K/1M. */
function shortGeometry(r: Pick<TuneRow, 'alignment' | 'poolSize' | 'arenaSize'>): string {
  const size = (b: number) => (b >= MiB ? `${b / MiB}M` : `${b / KiB}K`);
  return `${r.alignment}/${size(r.poolSize)}/${size(r.arenaSize)}`;
}

export function formatTuneReport(t: TuneReport): string {
  const rows = t.rows.map((r, i) => [
    `${i === t.recommended ? '* ' : '  '}${shortGeometry(r)}`,
    human(r.quantization),
    human(r.poolHeaders),
    human(r.unusedPools),
    String(r.arenas),
    human(r.peakHeapResident),
    human(r.peakRss),
    r.nsPerOp.toFixed(1),
  ]);
  return [
    ...wrap(
      `trace ${escapeInput(t.trace)}: ${t.ops.toLocaleString('en-US')} operations, policy ${t.policy}, best of ${t.reps}`,
    ),
    ...wrap(
      'geometry is alignment/pool size/arena size. Bytes lost to quantization, pool headers and unused ' +
        "pools are counted at the heap's peak (when it held the most arenas).",
      80,
      0,
    ),
    '',
    textTable(
      ['  geometry', 'quantiz.', 'headers', 'unused', 'arenas', 'peak heap', 'peak RSS', 'ns/op'],
      rows,
    ),
    '',
    ...wrap(`recommended (*): ${t.why}`),
  ].join('\n');
}

interface TuneFlags {
  reps: string;
  warmUp: string;
  policy: string;
  json?: boolean;
}

export function registerTuneCommand(program: Command): void {
  program
    .command('tune')
    .summary('recommend a geometry for a trace')
    .description(
      'Replays a trace under alignment 8 or 16 × pools of 4 or 16 KiB × arenas of 256 KiB or 1 MiB and reports ' +
        'for each the bytes lost to quantization, pool headers and unused pools, the peak resident memory and ' +
        'the time per operation; then recommends a geometry and says why.',
    )
    .argument('<trace>', 'trace file (.trace or .trace.gz)')
    .option('--reps <n>', 'timed replays per geometry; the best is reported', '3')
    .option(
      '--warm-up <ops>',
      'operations the untimed warm-up replays run at least, per geometry (at least one replay)',
      String(WARM_UP_OPS),
    )
    .option('--policy <policy>', `return policy for every run: ${POLICIES.join(', ')}`, 'purge')
    .option('--json', 'print one JSON object instead of the table')
    .addHelpText(
      'after',
      '\nExamples:\n  $ pymalloc tune compileall.trace.gz\n  $ pymalloc tune regex.trace.gz --reps 5 --json | jq .why\n',
    )
    .action(async (file: string, flags: TuneFlags) => {
      const reps = parseCount(flags.reps, '--reps');
      if (reps < 1) throw new UsageError('--reps must be at least 1');
      const warmUpOps = parseCount(flags.warmUp, '--warm-up');
      if (!(POLICIES as readonly string[]).includes(flags.policy)) {
        throw new UsageError(`--policy must be one of ${POLICIES.join(', ')}, got ${quote(flags.policy)}`);
      }
      for (const g of TUNE_GRID) checkHeapOptions(g);
      const trace = await loadTraceForCli(file);
      const grid = TUNE_GRID.length;
      let bar = startProgress('timing', grid, 'geometries');
      const report = await withinHeapCapacity(trace, () =>
        runTune(trace, {
          policy: flags.policy as ReturnPolicy,
          reps,
          warmUpOps,
          onTimed: (d) => {
            bar.update(d);
            if (d === grid) {
              bar.stop();
              bar = startProgress('sampling', grid, 'geometries');
            }
          },
          onSampled: (d) => bar.update(d),
        }),
      ).finally(() => bar.stop());
      process.stdout.write(flags.json ? `${JSON.stringify(report)}\n` : `${formatTuneReport(report)}\n`);
    });
}
