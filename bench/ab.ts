/**
 * Two builds of pymalloc in one process, replaying the same traces turn about: the way to judge a change to the
 * fast paths on a machine whose speed moves by up to 2x between runs (and, within a run, from one second to the
 * next). Separate processes see different moments of that noise, and a 2% change disappears in it; two heaps
 * of two builds replayed alternately, ABBA, see the same moments, and the median of the paired ratios (each
 * round's B time over its A time) shows a change of 2% (the same build against a copy of itself: 1.010).
 *
 *   npm run build:ts && node dist/bench/ab.js OLD NEW [TRACE...] [--rounds N] [--json]
 *     [--old-options JSON] [--new-options JSON]
 *
 * OLD and NEW are package roots, each with its own built dist/ and addon: a `git worktree` of the old commit
 * after `npm run build`, say, against this checkout. Without traces it uses the project's fixtures. Each build
 * warms up on each trace first, as `pymalloc replay` does (WARM_UP_OPS). Reported per trace: each build's best
 * time per operation over the rounds after the first third, the ratio of the bests, and the median paired ratio;
 * then the geometric means. A ratio below 1 means NEW is faster. `--old-options` / `--new-options` give each side's
 * heap options (`new Heap(options)`): OLD and NEW may then be the same root, as in
 * `node dist/bench/ab.js . . --new-options '{"shared":true}'` (a shared heap against a private one).
 */
import { existsSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Heap as HeapClass } from '../lib';
import { WARM_UP_OPS } from '../lib/measure';
import type { Trace } from '../lib/trace';

interface Build {
  root: string;
  Heap: typeof HeapClass;
  loadTrace(path: string): Promise<Trace>;
  replay(heap: HeapClass, trace: Trace, ptrs: Uint32Array): void;
  freeAll(heap: HeapClass, ptrs: Uint32Array): void;
}

interface Args {
  old: string;
  new: string;
  oldOptions: Record<string, unknown>;
  newOptions: Record<string, unknown>;
  traces: string[];
  rounds: number;
  json: boolean;
}

export interface TraceResult {
  trace: string;
  /** Best ns per operation of each build over the rounds after the first third. */
  oldNs: number;
  newNs: number;
  /** newNs / oldNs. */
  bestRatio: number;
  /** The median over those rounds of the round's new time over its old time. */
  pairedRatio: number;
}

function parseArgs(argv: string[]): Args {
  const roots: string[] = [];
  const traces: string[] = [];
  let rounds = 24;
  let json = false;
  const options = { old: {}, new: {} };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--rounds') rounds = Number(argv[++i]);
    else if (arg === '--old-options') options.old = JSON.parse(argv[++i] ?? '');
    else if (arg === '--new-options') options.new = JSON.parse(argv[++i] ?? '');
    else if (arg === '--json') json = true;
    else if (arg.startsWith('--')) throw new Error(`unknown option ${arg}`);
    else if (roots.length < 2) roots.push(arg);
    else traces.push(arg);
  }
  if (roots.length < 2)
    throw new Error('usage: node dist/bench/ab.js OLD NEW [TRACE...] [--rounds N] [--json]');
  if (!Number.isInteger(rounds) || rounds < 3) throw new Error('--rounds must be an integer of at least 3');
  if (traces.length === 0) {
    const dir = join(__dirname, '..', '..', 'test', 'fixtures', 'traces');
    for (const f of readdirSync(dir).sort()) if (f.endsWith('.trace.gz')) traces.push(join(dir, f));
  }
  return {
    old: roots[0]!,
    new: roots[1]!,
    oldOptions: options.old,
    newOptions: options.new,
    traces,
    rounds,
    json,
  };
}

/** Loads the build under package root `root` (its dist/lib). */
function loadBuild(root: string): Build {
  const dir = resolve(root, 'dist', 'lib');
  if (!existsSync(join(dir, 'index.js')))
    throw new Error(`${root}: no dist/lib/index.js (run npm run build there)`);
  const lib = require(join(dir, 'index.js')) as { Heap: typeof HeapClass };
  const trace = require(join(dir, 'trace.js')) as Pick<Build, 'loadTrace' | 'replay' | 'freeAll'>;
  return { root, Heap: lib.Heap, loadTrace: trace.loadTrace, replay: trace.replay, freeAll: trace.freeAll };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function geomean(xs: number[]): number {
  return Math.exp(xs.reduce((a, x) => a + Math.log(x), 0) / xs.length);
}

/** Replays `path` through both builds, `rounds` times each, ABBA. */
export async function compareOnTrace(
  a: Build,
  b: Build,
  path: string,
  rounds: number,
  options: [Record<string, unknown>, Record<string, unknown>] = [{}, {}],
): Promise<TraceResult> {
  const sides = [a, b].map((build, k) => ({
    build,
    trace: undefined as unknown as Trace,
    heap: new build.Heap(options[k]),
  }));
  const times: number[][] = [[], []];
  try {
    for (const s of sides) s.trace = await s.build.loadTrace(path);
    const ptrs = sides.map((s) => new Uint32Array(s.trace.objects));
    const once = (k: number): number => {
      const { build, trace, heap } = sides[k]!;
      const t0 = process.hrtime.bigint();
      build.replay(heap, trace, ptrs[k]!);
      const ns = Number(process.hrtime.bigint() - t0);
      build.freeAll(heap, ptrs[k]!);
      return trace.length === 0 ? 0 : ns / trace.length;
    };
    for (let k = 0; k < 2; k++) {
      const n = sides[k]!.trace.length;
      for (let done = 0; done === 0 || (done < WARM_UP_OPS && n > 0); done += n) once(k);
    }
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 === 0 ? [0, 1] : [1, 0];
      for (const k of order) times[k]!.push(once(k));
    }
  } finally {
    for (const s of sides) s.heap.destroy();
  }
  const skip = Math.floor(rounds / 3);
  const [ta, tb] = [times[0]!.slice(skip), times[1]!.slice(skip)];
  const oldNs = Math.min(...ta);
  const newNs = Math.min(...tb);
  return {
    trace: path.replace(/^.*[\\/]/, ''),
    oldNs,
    newNs,
    bestRatio: newNs / oldNs,
    pairedRatio: median(tb.map((t, i) => t / ta[i]!)),
  };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const a = loadBuild(args.old);
  const b = loadBuild(args.new);
  const results: TraceResult[] = [];
  for (const t of args.traces)
    results.push(await compareOnTrace(a, b, t, args.rounds, [args.oldOptions, args.newOptions]));
  const summary = {
    old: resolve(args.old),
    new: resolve(args.new),
    oldOptions: args.oldOptions,
    newOptions: args.newOptions,
    rounds: args.rounds,
    traces: results,
    geomeanBestRatio: geomean(results.map((r) => r.bestRatio)),
    geomeanPairedRatio: geomean(results.map((r) => r.pairedRatio)),
  };
  if (args.json) {
    process.stdout.write(`${JSON.stringify(summary)}\n`);
    return;
  }
  const rows = results.map((r) =>
    [r.trace, r.oldNs.toFixed(2), r.newNs.toFixed(2), r.bestRatio.toFixed(3), r.pairedRatio.toFixed(3)].join(
      ' | ',
    ),
  );
  process.stdout.write(
    [
      `old: ${summary.old} ${JSON.stringify(args.oldOptions)}`,
      `new: ${summary.new} ${JSON.stringify(args.newOptions)}`,
      `${args.rounds} rounds per trace, ABBA; ns per operation are bests, ratios are new / old`,
      '',
      '| trace | old ns/op | new ns/op | ratio of bests | median paired ratio |',
      '| --- | ---: | ---: | ---: | ---: |',
      ...rows.map((r) => `| ${r} |`),
      `| geometric mean | | | ${summary.geomeanBestRatio.toFixed(3)} | ${summary.geomeanPairedRatio.toFixed(3)} |`,
      '',
    ].join('\n'),
  );
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`ab: ${(err as Error).message}\n`);
    process.exitCode = 1;
  });
}
