/**
 * `pymalloc replay TRACE`: replays an allocation trace through a heap N times and reports the best time per
 * operation and the memory at the baseline, the peak, the end of the trace and after freeing every block still
 * live; `--stats` adds CPython's per-class table at the end of the trace, `--json` prints one object, `--plot`
 * writes the memory over the replay as an SVG chart (process RSS and the heap's resident bytes in panels of
 * their own), `--map` the heap map at the peak and after free-all (two panels of one SVG).
 */
import type { Command } from 'commander';
import type { HeapOptions } from '..';
import { resolveGeometry } from '../geometry';
import { checkHeapOptions as checkOptions } from '../heap';
import { type ReplayMeasurement, sampleReplayAsync, timeReplaysAsync, WARM_UP_OPS } from '../measure';
import { pageSize } from '../os';
import { writeLineChart } from '../report/chart';
import { human, mib, textTable, wrap } from '../report/format';
import { writeHeapMap } from '../report/heap-map-chart';
import { loadTrace, MAX_TRACE_LIVE_BYTES, type Trace, TraceError, traceLiveBytesPeak } from '../trace';
import { addHeapFlags, type HeapFlags, heapOptionsFrom } from './heap-options';
import { startProgress } from './progress';
import { checkChartLibraries, checkOutputFile, escapeInput, parseCount, quote, UsageError } from './usage';

/** Why a trace file cannot be read, by error code. */
const READ_ERRORS: Record<string, string> = {
  ENOENT: 'no such file',
  ENOTDIR: 'a part of the path is not a directory',
  EISDIR: 'it is a directory',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  ENAMETOOLONG: 'file name too long',
  ELOOP: 'too many symbolic links',
  ENXIO: 'no such device or address',
  EIO: 'input/output error',
  Z_DATA_ERROR: 'not valid gzip data',
  Z_BUF_ERROR: 'not valid gzip data',
};

/**
 * Loads a trace for the CLI: a missing or unreadable file, invalid gzip data, a malformed line or a trace beyond
 * a limit is the user's mistake, one line (UsageError).
 */
export async function loadTraceForCli(file: string, progress = true): Promise<Trace> {
  const bar = startProgress('loading', 100, '%', progress);
  let trace: Trace;
  try {
    trace = await loadTrace(file, (done, total) => bar.update(total > 0 ? (100 * done) / total : 0));
  } catch (err) {
    if (err instanceof TraceError) throw new UsageError(err.message);
    const why = READ_ERRORS[(err as NodeJS.ErrnoException).code ?? ''];
    if (why !== undefined) throw new UsageError(`cannot read trace ${quote(file)}: ${why}`);
    throw err;
  } finally {
    bar.stop();
  }
  if (trace.length === 0)
    throw new UsageError(`${quote(file)} is an empty trace: it has no m, f or r line to replay`);
  return trace;
}

/**
 * Runs `replayIt` (replays of `trace`), first checking that the trace's live bytes can fit a heap at all: a trace
 * that holds more than MAX_TRACE_LIVE_BYTES live at once, or that runs a heap out of memory, is one line.
 */
export async function withinHeapCapacity<T>(trace: Trace, replayIt: () => T | Promise<T>): Promise<T> {
  const name = escapeInput(trace.name);
  const peak = traceLiveBytesPeak(trace);
  if (peak > MAX_TRACE_LIVE_BYTES) {
    throw new UsageError(
      `${name}: the trace holds up to ${peak} bytes live at once, more than a heap can hold ` +
        `(${MAX_TRACE_LIVE_BYTES} bytes, the limit MAX_TRACE_LIVE_BYTES)`,
    );
  }
  try {
    return await replayIt();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ERR_PYMALLOC_NOMEM') throw err;
    throw new UsageError(
      `${name}: the trace does not fit a heap (at most ${MAX_TRACE_LIVE_BYTES} bytes, the limit ` +
        `MAX_TRACE_LIVE_BYTES, less the heap's own metadata): ${(err as Error).message.replace(/^pymalloc: /, '')}`,
    );
  }
}

/** Checks heap options as `new Heap` would on this machine, turning a bad one into one line. */
export function checkHeapOptions(options: HeapOptions): void {
  try {
    checkOptions(options);
  } catch (err) {
    throw new UsageError((err as Error).message.replace(/^pymalloc: (new Heap: )?/, ''));
  }
}

/** What `--json` prints. */
export interface ReplayReport
  extends Omit<ReplayMeasurement, 'statsAtPeak' | 'statsAtEnd' | 'debugStats' | 'maps'> {
  geometry: {
    preset: string;
    alignment: number;
    threshold: number;
    mediumThreshold: number;
    poolSize: number;
    arenaSize: number;
  };
  policy: string;
  decommit: string;
  debug: boolean;
  /** Per size class at the end of the trace (classes with pools only). */
  classes: ReplayMeasurement['statsAtEnd']['classes'];
  /** heap.stats() at the end of the trace. */
  stats: ReplayMeasurement['statsAtEnd'];
}

export function replayReport(m: ReplayMeasurement, options: HeapOptions): ReplayReport {
  const g = resolveGeometry(options, pageSize());
  const { statsAtPeak: _peak, statsAtEnd, debugStats: _text, maps: _maps, ...rest } = m;
  return {
    ...rest,
    geometry: {
      preset: g.preset,
      alignment: g.alignment,
      threshold: g.threshold,
      mediumThreshold: g.mediumThreshold,
      poolSize: g.poolSize,
      arenaSize: g.arenaSize,
    },
    policy: options.policy ?? 'purge',
    decommit: options.decommit ?? 'dontneed',
    debug: options.debug ?? false,
    classes: statsAtEnd.classes.filter((c) => c.pools > 0),
    stats: statsAtEnd,
  };
}

export function formatReplayReport(r: ReplayReport): string {
  const g = r.geometry;
  const field = (name: string, text: string) => wrap(`${name.padEnd(10)} ${text}`, 80, 11);
  const lines = [
    ...field(
      'trace',
      `${escapeInput(r.trace)}: ${r.ops.toLocaleString('en-US')} operations, ${r.objects.toLocaleString('en-US')} objects`,
    ),
    ...field(
      'geometry',
      `${g.preset}: alignment ${g.alignment}, threshold ${g.threshold} (medium ${g.mediumThreshold}), pools ${human(g.poolSize)}, arenas ${human(g.arenaSize)}`,
    ),
    ...field(
      'policy',
      `${r.policy} (decommit ${r.decommit})${r.hugePages ? ', arenas on huge pages' : ''}${r.debug ? ', debug hooks on' : ''}`,
    ),
    ...field(
      'time',
      `${r.nsPerOp.toFixed(1)} ns/op, best of ${r.reps} (${((r.nsPerOp * r.ops) / 1e6).toFixed(1)} ms per replay)`,
    ),
    '',
    textTable(
      ['', 'process RSS', 'heap resident', 'bytes in use'],
      [
        ['baseline', mib(r.baseline.rss), mib(r.baseline.heapResident), ''],
        ['peak', mib(r.peak.rss), mib(r.peak.heapResident), ''],
        ['end of trace', mib(r.end.rss), mib(r.end.heapResident), mib(r.stats.bytesInUse)],
        ['after free-all', mib(r.afterFree.rss), mib(r.afterFree.heapResident), mib(0)],
        ...(r.afterIdle === undefined
          ? []
          : [['after 1 s idle', mib(r.afterIdle.rss), mib(r.afterIdle.heapResident), mib(0)]]),
        ['after trim()', mib(r.afterTrim.rss), mib(r.afterTrim.heapResident), mib(0)],
      ],
    ),
  ];
  const grown = r.peak.heapResident - r.baseline.heapResident;
  if (grown > 0) {
    const pct = (p: { heapResident: number }) =>
      ((100 * (r.peak.heapResident - p.heapResident)) / grown).toFixed(1);
    lines.push('', `returned ${pct(r.afterFree)}% of the heap's peak resident memory after free-all`);
    if (r.afterIdle !== undefined) lines.push(`and ${pct(r.afterIdle)}% one second later, with no call`);
  }
  return lines.join('\n');
}

/** The chart of `--plot`: process RSS and the heap's resident bytes, each in a panel with its own y axis. */
export function replayChart(m: ReplayMeasurement, policy: string) {
  const rssPanel = 'process RSS (MiB)';
  const heapPanel = 'heap resident (MiB)';
  return {
    title: `Memory while replaying ${escapeInput(m.trace)} (${policy})`,
    xLabel: 'operations',
    yLabel: 'MiB',
    series: [
      {
        name: 'process RSS',
        panel: rssPanel,
        points: m.timeline.map((s, i) => [plotX(m, i), s.rss / 2 ** 20] as const),
      },
      {
        name: 'heap resident',
        panel: heapPanel,
        points: m.timeline.map((s, i) => [plotX(m, i), s.heapResident / 2 ** 20] as const),
      },
    ],
    markers: [{ x: m.ops, label: 'free-all' }],
  };
}

interface ReplayFlags extends HeapFlags {
  reps: string;
  warmUp: string;
  stats?: boolean;
  json?: boolean;
  plot?: string;
  map?: string;
  samples: string;
}

export function registerReplayCommand(program: Command): void {
  const cmd = program
    .command('replay')
    .summary('replay a trace: time, memory, heap map, stats')
    .description(
      'Replays an allocation trace (m ID SIZE / f ID / r ID SIZE lines, .gz read transparently) through a heap ' +
        'REPS times and reports the best time per operation and RSS at the baseline, the peak, the end of the ' +
        'trace and after freeing every block still live.',
    )
    .argument('<trace>', 'trace file (.trace or .trace.gz)')
    .option('--reps <n>', 'timed replays; the best is reported', '5')
    .option(
      '--warm-up <ops>',
      'operations the untimed warm-up replays run at least (at least one replay)',
      String(WARM_UP_OPS),
    )
    .option('--stats', "print CPython's per-class table (heap.debugStats()) at the end of the trace")
    .option('--json', 'print one JSON object instead of the report')
    .option('--plot <file.svg>', 'write an SVG chart of process RSS and heap resident memory over the replay')
    .option(
      '--map <file.svg>',
      'write an SVG heap map (every arena a row, every pool a cell) at the peak and after free-all',
    )
    .option('--samples <n>', 'memory samples taken during the sampled replay', '200');
  addHeapFlags(cmd)
    .addHelpText(
      'after',
      '\nExamples:\n  $ pymalloc replay regex.trace.gz --stats\n' +
        '  $ pymalloc replay regex.trace.gz --preset cpython-3.6 --policy never --json |\n' +
        '      jq .nsPerOp\n' +
        '  $ pymalloc replay regex.trace.gz --plot regex-rss.svg --map regex-map.svg\n' +
        '\nThe heap map has two panels: at the peak (the sample where the heap held the\n' +
        'most arenas) and after every block still live at the end of the trace was freed.\n',
    )
    .action(async (file: string, flags: ReplayFlags) => {
      const reps = parseCount(flags.reps, '--reps');
      const warmUp = parseCount(flags.warmUp, '--warm-up');
      const samples = parseCount(flags.samples, '--samples');
      if (reps < 1) throw new UsageError('--reps must be at least 1');
      if (samples < 1) throw new UsageError('--samples must be at least 1');
      let done = 0;
      const options = heapOptionsFrom(flags);
      checkHeapOptions(options);
      if (flags.plot !== undefined) checkOutputFile('--plot', flags.plot);
      if (flags.map !== undefined) checkOutputFile('--map', flags.map);
      if (flags.plot !== undefined) checkChartLibraries('--plot');
      if (flags.map !== undefined) checkChartLibraries('--map');
      const trace = await loadTraceForCli(file);
      const m = await withinHeapCapacity(trace, async () => {
        let bar = startProgress('timing', reps, 'reps');
        let runs: number[];
        try {
          const timed = await timeReplaysAsync(trace, options, reps, () => bar.update(++done), warmUp);
          runs = timed.runs;
          timed.heap.destroy();
        } finally {
          bar.stop();
        }
        const sampleCount = Math.min(samples, trace.length);
        bar = startProgress('sampling', sampleCount, 'samples');
        try {
          return await sampleReplayAsync(trace, runs, {
            heap: options,
            samples,
            debugStats: flags.stats === true,
            heapMap: flags.map !== undefined,
            onProgress: (s) => bar.update(s),
          });
        } finally {
          bar.stop();
        }
      });
      const report = replayReport(m, options);
      if (flags.json) {
        process.stdout.write(
          `${JSON.stringify(flags.stats ? { ...report, debugStats: m.debugStats } : report)}\n`,
        );
      } else {
        process.stdout.write(`${formatReplayReport(report)}\n`);
        if (flags.stats) process.stdout.write(`\n${m.debugStats}`);
      }
      if (flags.plot !== undefined) {
        await writeLineChart(flags.plot, replayChart(m, report.policy));
      }
      if (flags.map !== undefined && m.maps) {
        await writeHeapMap(flags.map, `Heap map of ${escapeInput(m.trace)} (${report.policy})`, [
          { title: 'at the peak', map: m.maps.peak },
          { title: 'after free-all', map: m.maps.afterFree },
        ]);
      }
    });
}

/** The x of sample i: the last sample (after free-all) is drawn a little past the end of the trace. */
function plotX(m: ReplayMeasurement, i: number): number {
  return i === m.timeline.length - 1 ? m.ops * 1.02 : m.timeline[i].op;
}
