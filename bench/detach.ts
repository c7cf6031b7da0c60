/**
 * What one detached ArrayBuffer costs the rest of a process: V8 assumes no ArrayBuffer is ever detached until the
 * first one is (a process-wide "protector"), and from then on checks for it on every typed-array access. This
 * measures a loop over a Uint32Array and a replay of a trace through a Heap, each before and after one event, in a
 * child process per run, the modes taking turns:
 *   control   nothing happens between the two measurements;
 *   destroy   another heap is made and destroyed (which detached its ArrayBuffer until it stopped doing so);
 *   transfer  an unrelated ArrayBuffer is detached (structuredClone with a transfer list, as postMessage does).
 * Reported per mode: the median over the runs of (time after) / (time before), for the loop and for the replay.
 *
 *   npm run build:ts && node dist/bench/detach.js [TRACE] [--runs N] [--json]
 *
 * Without a trace it uses test/fixtures/traces/regex.trace.gz.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { Heap } from '../lib';
import { freeAll, loadTrace, replay } from '../lib/trace';

export const MODES = ['control', 'destroy', 'transfer'] as const;
type Mode = (typeof MODES)[number];

interface ChildResult {
  mode: Mode;
  loop: [number, number];
  replay: [number, number];
}

function sumStrided(a: Uint32Array): number {
  let s = 0;
  const mask = a.length - 1;
  for (let i = 0; i < a.length; i++) s = (s + a[(i * 7) & mask]!) | 0;
  return s;
}

/** One child's run: both measurements before and after the mode's event, best of many repetitions each. */
async function child(mode: Mode, tracePath: string): Promise<ChildResult> {
  const trace = await loadTrace(tracePath);
  const heap = new Heap();
  const ptrs = new Uint32Array(trace.objects);
  const a = new Uint32Array(1 << 20);
  for (let i = 0; i < a.length; i++) a[i] = i;
  let sink = 0;
  const loop = (n: number) => {
    let best = Number.POSITIVE_INFINITY;
    for (let r = 0; r < n; r++) {
      const t0 = process.hrtime.bigint();
      sink ^= sumStrided(a);
      best = Math.min(best, Number(process.hrtime.bigint() - t0) / a.length);
    }
    return best;
  };
  const replays = (n: number) => {
    let best = Number.POSITIVE_INFINITY;
    for (let r = 0; r < n; r++) {
      const t0 = process.hrtime.bigint();
      replay(heap, trace, ptrs);
      best = Math.min(best, Number(process.hrtime.bigint() - t0) / trace.length);
      freeAll(heap, ptrs);
    }
    return best;
  };
  loop(30);
  replays(40);
  const before: [number, number] = [loop(40), replays(30)];
  if (mode === 'destroy') new Heap({ reserve: 64 * 2 ** 20 }).destroy();
  else if (mode === 'transfer') {
    const b = new ArrayBuffer(2 ** 20);
    structuredClone(b, { transfer: [b] });
  }
  loop(10);
  replays(10);
  const after: [number, number] = [loop(40), replays(30)];
  heap.destroy();
  if (sink === 0.5) process.stderr.write(''); // keeps the loop's result alive
  return { mode, loop: [before[0], after[0]], replay: [before[1], after[1]] };
}

function median(xs: number[]): number {
  const s = [...xs].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export interface ModeSummary {
  mode: Mode;
  runs: number;
  /** Median over the runs of the loop's time after the event over its time before. */
  loopRatio: number;
  /** The same for the replay. */
  replayRatio: number;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv[0] === '--child') {
    process.stdout.write(`${JSON.stringify(await child(argv[1] as Mode, argv[2]!))}\n`);
    return;
  }
  let runs = 6;
  let json = false;
  let tracePath = join(__dirname, '..', '..', 'test', 'fixtures', 'traces', 'regex.trace.gz');
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--runs') runs = Number(argv[++i]);
    else if (arg === '--json') json = true;
    else if (arg.startsWith('--')) throw new Error(`unknown option ${arg}`);
    else tracePath = arg;
  }
  if (!Number.isInteger(runs) || runs < 1) throw new Error('--runs must be a positive integer');
  const results: ChildResult[] = [];
  for (let r = 0; r < runs; r++) {
    for (const mode of r % 2 === 0 ? MODES : [...MODES].reverse()) {
      const out = execFileSync(process.execPath, [__filename, '--child', mode, tracePath], {
        encoding: 'utf8',
      });
      results.push(JSON.parse(out) as ChildResult);
    }
  }
  const summary: ModeSummary[] = MODES.map((mode) => {
    const mine = results.filter((x) => x.mode === mode);
    return {
      mode,
      runs: mine.length,
      loopRatio: median(mine.map((x) => x.loop[1] / x.loop[0])),
      replayRatio: median(mine.map((x) => x.replay[1] / x.replay[0])),
    };
  });
  if (json) {
    process.stdout.write(`${JSON.stringify({ trace: tracePath, summary, results })}\n`);
    return;
  }
  process.stdout.write(
    [
      `${runs} runs per mode, each a process of its own, the modes taking turns; ratios are after / before`,
      '',
      '| mode | typed-array loop | replay |',
      '| --- | ---: | ---: |',
      ...summary.map((s) => `| ${s.mode} | ${s.loopRatio.toFixed(3)} | ${s.replayRatio.toFixed(3)} |`),
      '',
    ].join('\n'),
  );
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`detach: ${(err as Error).message}\n`);
    process.exitCode = 1;
  });
}
