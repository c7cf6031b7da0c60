/**
 * `npm run bench`: the same traces, in one run, through this allocator (default, and with 2 MiB arenas on transparent
 * huge pages where the kernel has them) and its peers — CPython's real pymalloc
 * glibc malloc, and mimalloc, jemalloc and tcmalloc preloaded into glibc's harness (C harnesses), Buffer.allocUnsafe and new Uint8Array (what a Node user would otherwise do),
 * and @thi.ng/malloc (capped: its free is O(live blocks)) — plus micro-benchmarks. Every allocator runs each
 * trace in a process of its own.
 *
 *   npm run bench [-- TRACE...] [--reps N] [--rounds N] [--samples N] [--out DIR] [--no-micro] [--thing-cap N] [--quick]
 *   (--quick: one replay, 10 samples and no idle second: a check that everything runs, not a measurement)
 *
 * --rounds N (default 3): every allocator runs each trace N times, the allocators taking turns (in order, then in
 * reverse order, ...), and the table keeps each one's fastest run. This VM's speed moves by up to 2x from one
 * process to the next; one run per allocator compared each with a different moment of that noise (CPython's
 * pymalloc measured 10-34 ns per operation on `regex` in runs a few minutes apart). The micro-benchmarks and
 * --quick run once.
 *
 * --quick shrinks the built-in traces a hundredfold and replays once: a smoke run, not a measurement.
 *
 * Without trace arguments it runs on built-in generated traces; trace files given as arguments are used
 * instead. Prints a markdown table and writes DIR/bench.json, DIR/bench.md and DIR/rss.svg (RSS over time per
 * allocator for the first trace). DIR defaults to bench/results.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { startProgress } from '../lib/cli/progress';
import { IDLE_MS } from '../lib/measure';
import { writeLineChart } from '../lib/report/chart';
import { markdownTable } from '../lib/report/format';
import { loadTrace, type Trace } from '../lib/trace';
import { builtinTraces, microTraces, writeTraceText } from './generate';
import { NATIVE_PEER_NAMES, type NativePeer, runNativePeer } from './peers/native';
import { isSkipped, type PeerOutcome, type PeerRun } from './peers/types';
import { JS_PEERS, type JsPeer } from './run-peer';

const MiB = 2 ** 20;
const PEERS: Array<{ kind: 'js'; id: JsPeer } | { kind: 'native'; id: NativePeer }> = [
  { kind: 'js', id: 'pymalloc' },
  { kind: 'js', id: 'pymalloc-huge' },
  { kind: 'native', id: 'cpython' },
  { kind: 'native', id: 'glibc' },
  { kind: 'native', id: 'mimalloc' },
  { kind: 'native', id: 'jemalloc' },
  { kind: 'native', id: 'tcmalloc' },
  { kind: 'js', id: 'buffer' },
  { kind: 'js', id: 'uint8array' },
  { kind: 'js', id: 'thing' },
];
const CPYTHON = NATIVE_PEER_NAMES.cpython;
const OURS = JS_PEERS.pymalloc;

interface Options {
  files: string[];
  reps: number;
  samples: number;
  out: string;
  micro: boolean;
  thingCap: number;
  quick: boolean;
  /** Runs of every allocator on each trace, taking turns; the fastest is kept. */
  rounds: number;
  /** Milliseconds of idle after free-all before the "after idle" reading (0 with --quick). */
  idleMs: number;
}

function parseArgs(argv: string[]): Options {
  const o: Options = {
    files: [],
    reps: 5,
    samples: 100,
    out: join(__dirname, '..', '..', 'bench', 'results'),
    micro: true,
    thingCap: 20_000,
    quick: false,
    rounds: 3,
    idleMs: IDLE_MS,
  };
  const num = (flag: string, v: string | undefined): number => {
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < 1)
      throw new Error(`${flag} needs a positive whole number, got '${v}'`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--reps') o.reps = num(a, argv[++i]);
    else if (a === '--rounds') o.rounds = num(a, argv[++i]);
    else if (a === '--samples') o.samples = num(a, argv[++i]);
    else if (a === '--thing-cap') o.thingCap = num(a, argv[++i]);
    else if (a === '--out') o.out = resolve(argv[++i] ?? '.');
    else if (a === '--no-micro') o.micro = false;
    else if (a === '--quick') {
      o.quick = true;
      o.reps = 1;
      o.samples = 10;
      o.idleMs = 0;
      o.rounds = 1;
    } else if (a.startsWith('--')) throw new Error(`unknown option ${a}`);
    else o.files.push(a);
  }
  return o;
}

interface Job {
  trace: Trace;
  /** A file the JavaScript children can load. */
  file: string;
  micro: boolean;
}

function runJs(
  peer: JsPeer,
  job: Job,
  o: Options,
  reps: number,
  samples: number,
  idleMs: number,
): PeerOutcome {
  const script = join(__dirname, 'run-peer.js');
  const args = ['--expose-gc', script, peer, job.file, String(reps), String(samples), String(idleMs)];
  if (peer === 'thing') args.push(String(o.thingCap));
  try {
    const out = execFileSync(process.execPath, args, {
      encoding: 'utf8',
      maxBuffer: 64 * MiB,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const run = JSON.parse(out) as PeerRun;
    return { ...run, trace: basename(job.trace.name) };
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    return {
      peer: JS_PEERS[peer],
      trace: basename(job.trace.name),
      skipped: `failed: ${(e.stderr || e.message).trim()}`,
    };
  }
}

function fmtNs(ns: number): string {
  return ns >= 100 ? ns.toFixed(0) : ns.toFixed(1);
}

function growth(r: PeerRun): { peak: number; after: number; returned: number | undefined } {
  const peak = r.rssPeak - r.rssBaseline;
  const after = r.rssAfterFree - r.rssBaseline;
  // What went back by the end: after the idle second (an allocator that returns memory after a delay gets the
  // credit only once it has). RSS can end a little above its peak (the collector's own pages): that returned
  // nothing, not a negative share.
  const returned = Math.max(0, (100 * (r.rssPeak - r.rssAfterIdle)) / peak);
  return { peak, after, returned: peak > MiB ? returned : undefined };
}

/**
 * The area under the RSS curve above the baseline, in MiB·s: over the sampled replay, its operations spread at the
 * measured time per operation, then over the second of idle after free-all. An allocator that is fast because it
 * keeps its memory shows it here, however it does on ns/op.
 */
function rssTimeArea(r: PeerRun): number {
  let area = 0;
  const tl = r.timeline;
  for (let i = 1; i < tl.length; i++) {
    const [op0, rss0] = tl[i - 1]!;
    const [op1, rss1] = tl[i]!;
    const seconds = ((op1 - op0) * r.nsPerOp) / 1e9;
    area += ((rss0 + rss1) / 2 - r.rssBaseline) * seconds;
  }
  area += ((r.rssAfterFree + r.rssAfterIdle) / 2 - r.rssBaseline) * (r.idleMs / 1000);
  return Math.max(0, area) / MiB;
}

function mibCell(bytes: number): string {
  return (bytes / MiB).toFixed(1);
}

function traceTable(results: PeerOutcome[][]): string {
  const rows: string[][] = [];
  for (const outcomes of results) {
    const cpython = outcomes.find((o) => o.peer === CPYTHON && !isSkipped(o)) as PeerRun | undefined;
    for (const o of outcomes) {
      if (isSkipped(o)) {
        rows.push([o.trace, o.peer, `skipped: ${o.skipped.split('\n')[0]}`, '', '', '', '', '', '']);
        continue;
      }
      const g = growth(o);
      // A capped run replayed only the start of the trace: its time is not comparable with a whole replay.
      const ratio = o.cappedAt ? '–' : cpython ? (o.nsPerOp / cpython.nsPerOp).toFixed(2) : 'n/a';
      rows.push([
        o.trace,
        o.cappedAt ? `${o.peer} (first ${o.cappedAt.toLocaleString('en-US')} ops)` : o.peer,
        fmtNs(o.nsPerOp),
        ratio,
        mibCell(g.peak),
        mibCell(g.after),
        mibCell(o.rssAfterIdle - o.rssBaseline),
        rssTimeArea(o).toFixed(2),
        g.returned === undefined ? '–' : `${g.returned.toFixed(0)}%`,
      ]);
    }
  }
  return markdownTable(
    [
      'trace',
      'allocator',
      'ns/op',
      '× CPython',
      'RSS peak (MiB)',
      'after free-all (MiB)',
      'after 1 s idle (MiB)',
      'RSS×time (MiB·s)',
      'returned',
    ],
    rows,
    [false, false, true, true, true, true, true, true, true],
  );
}

function microTable(results: PeerOutcome[][]): string {
  const peers = PEERS.map((p) => (p.kind === 'js' ? JS_PEERS[p.id] : NATIVE_PEER_NAMES[p.id]));
  const rows = results.map((outcomes) => {
    const ns = (peer: string) => {
      const o = outcomes.find((x) => x.peer === peer);
      return o && !isSkipped(o) ? o.nsPerOp : undefined;
    };
    const ours = ns(OURS);
    const cp = ns(CPYTHON);
    return [
      basename(outcomes[0]?.trace ?? ''),
      ...peers.map((p) => {
        const v = ns(p);
        return v === undefined ? '–' : fmtNs(v);
      }),
      ours !== undefined && cp !== undefined ? (ours / cp).toFixed(2) : 'n/a',
    ];
  });
  return markdownTable(['micro-benchmark (ns/op)', ...peers, 'pymalloc ÷ CPython'], rows);
}

/** The faster of two runs of one allocator (a run over a skipped one; the first of two skipped). */
export function fastest(a: PeerOutcome | undefined, b: PeerOutcome): PeerOutcome {
  if (a === undefined || (isSkipped(a) && !isSkipped(b))) return b;
  if (isSkipped(b) || isSkipped(a)) return a;
  return b.nsPerOp < a.nsPerOp ? b : a;
}

function geomean(xs: number[]): number {
  return Math.exp(xs.reduce((s, x) => s + Math.log(x), 0) / xs.length);
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const tmp = mkdtempSync(join(tmpdir(), 'pymalloc-bench-'));
  try {
    const jobs: Job[] = [];
    if (o.files.length > 0) {
      for (const f of o.files) jobs.push({ trace: await loadTrace(f), file: resolve(f), micro: false });
    } else {
      for (const t of builtinTraces(o.quick ? 0.01 : 1)) {
        const file = join(tmp, `${t.name}.trace`);
        writeTraceText(t, file);
        jobs.push({ trace: t, file, micro: false });
      }
    }
    if (o.micro) {
      for (const t of microTraces(o.quick ? 0.01 : 1)) {
        const file = join(tmp, `${t.name}.trace`);
        writeTraceText(t, file);
        jobs.push({ trace: t, file, micro: true });
      }
    }
    const cpu = cpus()[0]?.model ?? 'unknown CPU';
    const machine = `${cpu} (${cpus().length} cores), Linux, Node ${process.version}`;
    const roundsOf = (job: Job) => (job.micro ? 1 : o.rounds);
    process.stderr.write(
      `${machine}; best of ${o.reps}, ${o.rounds} rounds; ${jobs.length} traces × ${PEERS.length} allocators\n`,
    );
    const totalRuns = jobs.reduce((n, job) => n + roundsOf(job) * PEERS.length, 0);
    const bar = startProgress('benchmarking', totalRuns, 'runs');
    const traceResults: PeerOutcome[][] = [];
    const microResults: PeerOutcome[][] = [];
    let done = 0;
    try {
      for (const job of jobs) {
        const outcomes: Array<PeerOutcome | undefined> = PEERS.map(() => undefined);
        const samples = job.micro ? 4 : o.samples;
        // The micro-benchmarks' table has their times only: no idle second for them.
        const idleMs = job.micro ? 0 : o.idleMs;
        for (let round = 0; round < roundsOf(job); round++) {
          const order = PEERS.map((_, i) => (round % 2 === 0 ? i : PEERS.length - 1 - i));
          for (const i of order) {
            const p = PEERS[i]!;
            const outcome =
              p.kind === 'js'
                ? runJs(p.id, job, o, o.reps, samples, idleMs)
                : await runNativePeer(p.id, job.trace, { reps: o.reps, samples, idleMs });
            outcomes[i] = fastest(outcomes[i], outcome);
            bar.update(++done);
          }
        }
        (job.micro ? microResults : traceResults).push(outcomes as PeerOutcome[]);
      }
    } finally {
      bar.stop();
    }

    // This allocator's time over CPython's, per trace where both ran.
    const ratiosOf = (peer: string) =>
      traceResults
        .map((outs) => {
          const ours = outs.find((x) => x.peer === peer);
          const cp = outs.find((x) => x.peer === CPYTHON);
          return ours && cp && !isSkipped(ours) && !isSkipped(cp) ? ours.nsPerOp / cp.nsPerOp : undefined;
        })
        .filter((x): x is number => x !== undefined);
    const ratios = ratiosOf(OURS);
    const hugeRatios = ratiosOf(JS_PEERS['pymalloc-huge']);
    const lines = [
      `Measured on ${machine}; best of ${o.reps} replays per allocator and trace, each allocator in a process of its own` +
        (o.rounds > 1
          ? `, in ${o.rounds} rounds with the allocators taking turns; each allocator's fastest run is shown.`
          : '.'),
      'RSS columns are growth above the process baseline; "after 1 s idle" is one second after free-all with no call; ' +
        '"RSS×time" is the area under that growth over one replay at the measured speed and that second; ' +
        '"returned" is the share of the peak gone one second after freeing every block.',
      '',
      traceTable(traceResults),
    ];
    if (ratios.length > 0) {
      lines.push(
        '',
        `pymalloc (this) ÷ CPython pymalloc, geometric mean over the traces: ${geomean(ratios).toFixed(2)}`,
      );
    }
    if (hugeRatios.length > 0) {
      lines.push(
        '',
        `pymalloc (this, huge pages) ÷ CPython pymalloc, geometric mean over the traces: ${geomean(hugeRatios).toFixed(2)}`,
      );
    }
    if (microResults.length > 0) lines.push('', microTable(microResults));
    const markdown = `${lines.join('\n')}\n`;
    process.stdout.write(markdown);

    mkdirSync(o.out, { recursive: true });
    writeFileSync(
      join(o.out, 'bench.md'),
      `<!-- Generated by npm run bench (bench/bench.ts); do not edit. -->\n${markdown}`,
    );
    writeFileSync(
      join(o.out, 'bench.json'),
      `${JSON.stringify(
        {
          generatedBy: 'npm run bench (bench/bench.ts)',
          machine,
          reps: o.reps,
          rounds: o.rounds,
          traces: traceResults,
          micro: microResults,
          ratioToCpython: ratios.length > 0 ? geomean(ratios) : null,
          hugePagesRatioToCpython: hugeRatios.length > 0 ? geomean(hugeRatios) : null,
        },
        null,
        1,
      )}\n`,
    );
    const first = traceResults[0];
    if (first) {
      const runs = first.filter((x): x is PeerRun => !isSkipped(x) && x.cappedAt === undefined);
      const ops = runs[0]?.ops ?? 1;
      await writeLineChart(join(o.out, 'rss.svg'), {
        title: `RSS above baseline while replaying ${basename(first[0].trace)}`,
        xLabel: 'operations',
        yLabel: 'MiB',
        series: runs.map((r) => ({
          name: r.peer,
          points: r.timeline.map(([op, rss], i) => [
            i === r.timeline.length - 1 ? ops * 1.02 : op,
            (rss - r.rssBaseline) / MiB,
          ]),
        })),
        markers: [{ x: ops, label: 'free-all' }],
      });
    }
    process.stderr.write(`wrote ${join(o.out, 'bench.md')}, bench.json and rss.svg\n`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`bench: ${(err as Error).message}\n`);
    process.exitCode = 1;
  });
}
