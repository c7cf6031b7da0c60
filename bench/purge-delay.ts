/**
 * How the delayed return's purgeDelay trades time for memory, the measurement behind its default: a trace is
 * replayed in bursts (each replay followed by a free-all) with an idle gap between bursts, as a server handles
 * requests; for each delay and each gap it reports the time per operation (the replays and free-alls of every
 * burst but the first, which only warms up) and the heap's mean resident memory over the whole run (the area
 * under its residentBytes() curve divided by the run's length, sampled every 5 ms in the gaps and at both ends
 * of every burst), and the minor page faults per burst (getrusage), which the machine's noise does not move. A
 * delay shorter than the gap gives the memory back in every gap, so every burst faults it in
 * again; a longer one keeps it, at the cost of holding it through the gaps.
 *
 *   npm run build:ts && node dist/bench/purge-delay.js [TRACE...] [--bursts N] [--delays 0,10,...] [--gaps 0,20,...] [--json]
 *
 * Without traces it uses the project's fixtures (test/fixtures/traces/*.trace.gz). Every delay runs in the same
 * process, one after the other for each gap, after a warm-up on the trace.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Heap } from '../lib';
import { freeAll, loadTrace, replay, type Trace } from '../lib/trace';

const MiB = 2 ** 20;

interface Args {
  traces: string[];
  bursts: number;
  delays: number[];
  gaps: number[];
  json: boolean;
}

function parseArgs(argv: string[]): Args {
  const a: Args = {
    traces: [],
    bursts: 8,
    delays: [0, 10, 50, 100, 250, 500, 1000],
    gaps: [0, 20, 100, 400],
    json: false,
  };
  const list = (s: string | undefined, what: string): number[] => {
    const v = (s ?? '').split(',').map(Number);
    if (v.length === 0 || v.some((x) => !Number.isSafeInteger(x) || x < 0)) {
      throw new Error(`${what} must be a comma-separated list of whole milliseconds`);
    }
    return v;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--bursts') a.bursts = Number(argv[++i]);
    else if (arg === '--delays') a.delays = list(argv[++i], '--delays');
    else if (arg === '--gaps') a.gaps = list(argv[++i], '--gaps');
    else if (arg === '--json') a.json = true;
    else a.traces.push(arg);
  }
  if (!Number.isInteger(a.bursts) || a.bursts < 2)
    throw new Error('--bursts must be an integer of at least 2');
  if (a.traces.length === 0) {
    const dir = join(__dirname, '..', '..', 'test', 'fixtures', 'traces');
    for (const f of readdirSync(dir).sort()) if (f.endsWith('.trace.gz')) a.traces.push(join(dir, f));
  }
  return a;
}

interface Cell {
  trace: string;
  delay: number;
  gap: number;
  nsPerOp: number;
  /** Minor page faults per burst (replay and free-all), from getrusage: what the returns cost, without the noise. */
  faultsPerBurst: number;
  meanResidentMiB: number;
  peakResidentMiB: number;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** One run: `bursts` replays of the trace on one heap with `gap` ms between them. */
async function run(trace: Trace, delay: number, gap: number, bursts: number): Promise<Cell> {
  const heap = new Heap({ purgeDelay: delay });
  const ptrs = new Uint32Array(trace.objects);
  let area = 0; // MiB·ms
  let peak = 0;
  let lastT = performance.now();
  let lastR = heap.residentBytes() / MiB;
  const sample = () => {
    const t = performance.now();
    const r = heap.residentBytes() / MiB;
    area += ((lastR + r) / 2) * (t - lastT);
    peak = Math.max(peak, r);
    lastT = t;
    lastR = r;
  };
  const start = lastT;
  let timedNs = 0;
  let faults = 0;
  for (let b = 0; b < bursts; b++) {
    sample();
    const f0 = process.resourceUsage().minorPageFault;
    const t0 = process.hrtime.bigint();
    replay(heap, trace, ptrs);
    freeAll(heap, ptrs);
    const ns = Number(process.hrtime.bigint() - t0);
    if (b > 0) {
      timedNs += ns;
      faults += process.resourceUsage().minorPageFault - f0;
    }
    sample();
    const end = performance.now() + gap;
    while (performance.now() < end) {
      await sleep(Math.min(5, Math.max(0, end - performance.now())));
      sample();
    }
  }
  const total = performance.now() - start;
  heap.destroy();
  return {
    trace: trace.name.replace(/^.*\//, ''),
    delay,
    gap,
    nsPerOp: timedNs / ((bursts - 1) * (trace.length + trace.objects)),
    faultsPerBurst: faults / (bursts - 1),
    meanResidentMiB: area / total,
    peakResidentMiB: peak,
  };
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  const cells: Cell[] = [];
  for (const file of a.traces) {
    const trace = await loadTrace(file);
    // Warm the JIT up on this trace before anything is timed.
    await run(trace, 0, 0, 3);
    for (const gap of a.gaps)
      for (const delay of a.delays) cells.push(await run(trace, delay, gap, a.bursts));
  }
  if (a.json) {
    process.stdout.write(`${JSON.stringify(cells, null, 2)}\n`);
    return;
  }
  for (const file of a.traces) {
    const name = file.replace(/^.*\//, '');
    const mine = cells.filter((c) => c.trace === name);
    console.log(
      `\n${name}: ns per operation (replay + free-all) / page faults per burst / mean heap resident MiB, ` +
        `${a.bursts} bursts\n`,
    );
    console.log(`| purgeDelay | ${a.gaps.map((g) => `gap ${g} ms`).join(' | ')} |`);
    console.log(`| ---: | ${a.gaps.map(() => '---:').join(' | ')} |`);
    for (const delay of a.delays) {
      const row = a.gaps.map((gap) => {
        const c = mine.find((x) => x.delay === delay && x.gap === gap)!;
        return `${c.nsPerOp.toFixed(1)} / ${Math.round(c.faultsPerBurst)} / ${c.meanResidentMiB.toFixed(2)}`;
      });
      console.log(`| ${delay} ms | ${row.join(' | ')} |`);
    }
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
