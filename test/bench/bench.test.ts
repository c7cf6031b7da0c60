/**
 * The benchmark's machinery (not its timings): the generated traces are valid and replay cleanly, every
 * JavaScript peer reports consistent numbers, and `npm run bench -- --quick` prints the table with every
 * allocator. It runs the built bench (dist/), which `npm test` builds first.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fastest } from '../../bench/bench';
import {
  buildFreeTrace,
  builtinTraces,
  churnTrace,
  growTrace,
  microTraces,
  orderTrace,
  pairsTrace,
  writeTraceText,
} from '../../bench/generate';
import { preloadLibrary, runNativePeer } from '../../bench/peers/native';
import { isSkipped } from '../../bench/peers/types';
import { JS_PEERS, runPeer } from '../../bench/run-peer';
import { Heap } from '../../lib';
import { transparentHugePages } from '../../lib/os';
import { freeAll, loadTrace, OP_FREE, OP_MALLOC, OP_REALLOC, replay, type Trace } from '../../lib/trace';

const root = join(__dirname, '..', '..');
let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'pymalloc-bench-test-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function counts(t: Trace): Record<string, number> {
  const c = { m: 0, f: 0, r: 0 };
  for (let i = 0; i < t.length; i++) {
    if (t.ops[i] === OP_MALLOC) c.m++;
    else if (t.ops[i] === OP_FREE) c.f++;
    else if (t.ops[i] === OP_REALLOC) c.r++;
  }
  return c;
}

describe('generated traces', () => {
  test.each([
    ['churn', () => churnTrace(20_000, 2_000)],
    ['build-free', () => buildFreeTrace(5_000)],
    ['realloc-grow', () => growTrace(1_000)],
    ['pairs-64', () => pairsTrace(64, 1_000)],
    ['free-random', () => orderTrace('random', 1_000, 2)],
  ])('%s round-trips through the text format and replays with check() passing', async (name, make) => {
    const t = make();
    expect(t.name).toBe(name);
    const file = join(dir, `${name}.trace`);
    writeTraceText(t, file);
    const back = await loadTrace(file);
    expect(back.length).toBe(t.length);
    expect(back.objects).toBe(t.objects);
    expect([...back.ops]).toEqual([...t.ops]);
    expect([...back.sizes]).toEqual([...t.sizes]);
    const h = new Heap({ reserve: 2 ** 28 });
    try {
      const ptrs = new Uint32Array(t.objects);
      replay(h, t, ptrs);
      h.check();
      freeAll(h, ptrs);
      h.check();
      expect(h.stats().blocksInUse).toBe(0);
    } finally {
      h.destroy();
    }
  });

  test('the workloads have the shapes their names promise', () => {
    const build = counts(buildFreeTrace(1_000));
    expect(build).toEqual({ m: 1_500, f: 1_500, r: 0 });
    const pairs = pairsTrace(32, 500);
    expect(counts(pairs)).toEqual({ m: 500, f: 500, r: 0 });
    expect(new Set(pairs.sizes.filter((_, i) => pairs.ops[i] === OP_MALLOC))).toEqual(new Set([32]));
    expect(counts(growTrace(500)).r).toBeGreaterThan(500);
    const lifo = orderTrace('lifo', 10, 1);
    expect([...lifo.ids.subarray(10)]).toEqual([9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
    const fifo = orderTrace('fifo', 10, 1);
    expect([...fifo.ids.subarray(10)]).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    // Seeded: the same trace twice.
    expect([...churnTrace(5_000, 500).sizes]).toEqual([...churnTrace(5_000, 500).sizes]);
    expect(builtinTraces(0.001).map((t) => t.name)).toEqual(['churn', 'build-free', 'realloc-grow']);
    expect(microTraces(0.001)).toHaveLength(9);
  });
});

describe('JavaScript peers', () => {
  // @thi.ng/malloc is ES modules only, which jest cannot import here; the bench smoke run below covers it.
  test.each(['pymalloc', 'pymalloc-huge', 'buffer', 'uint8array'] as const)(
    '%s reports a consistent run',
    async (peer) => {
      const t = buildFreeTrace(3_000);
      const outcome = await runPeer(peer, t, 2, 5);
      if (isSkipped(outcome)) {
        // Only the huge-page variant may skip, and only on a kernel without transparent huge pages.
        console.log(`${peer} skipped here: ${outcome.skipped}`);
        expect(peer).toBe('pymalloc-huge');
        const thp = transparentHugePages();
        expect(thp === null || thp.mode === 'never').toBe(true);
        return;
      }
      const r = outcome;
      expect(r.peer).toBe(JS_PEERS[peer]);
      expect(r.ops).toBe(t.length);
      expect(r.nsPerOp).toBeGreaterThan(0);
      expect(r.rssPeak).toBeGreaterThanOrEqual(r.rssEnd);
      expect(r.timeline).toHaveLength(7);
      expect(r.timeline[0][0]).toBe(0);
      expect(r.timeline[6][0]).toBe(t.length);
      expect(r.cappedAt).toBeUndefined();
    },
  );

  test('a cap replays only the first operations', async () => {
    const t = churnTrace(5_000, 500);
    const r = await runPeer('buffer', t, 1, 2, 1_000);
    if (isSkipped(r)) throw new Error(`buffer cannot be skipped: ${r.skipped}`);
    expect(r.ops).toBe(1_000);
    expect(r.cappedAt).toBe(1_000);
  });
});

test('npm run bench -- --quick prints the table with every allocator', () => {
  const out = join(dir, 'results');
  const stdout = execFileSync(
    process.execPath,
    [join(root, 'dist', 'bench', 'bench.js'), '--quick', '--out', out],
    {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const md = readFileSync(join(out, 'bench.md'), 'utf8');
  expect(md).toBe(`<!-- Generated by npm run bench (bench/bench.ts); do not edit. -->\n${stdout}`);
  for (const peer of Object.values(JS_PEERS)) expect(md).toContain(`| ${peer}`);
  expect(md).toContain('| glibc malloc |');
  // The preloaded allocators run where their library is installed, and say why where it is not.
  for (const peer of ['mimalloc', 'jemalloc', 'tcmalloc']) {
    expect(md).toMatch(new RegExp(`\\| ${peer} \\| (\\d|skipped: ${peer} is not installed)`));
  }
  // CPython's pymalloc runs where libpython exists, and says why where it does not.
  expect(md).toMatch(/\| CPython pymalloc \| (\d|skipped: )/);
  expect(md).toContain('| micro-benchmark (ns/op) |');
  for (const t of [
    'churn',
    'build-free',
    'realloc-grow',
    'pairs-16',
    'free-lifo',
    'free-fifo',
    'free-random',
  ])
    expect(md).toContain(`| ${t} |`);
  const json = JSON.parse(readFileSync(join(out, 'bench.json'), 'utf8')) as {
    traces: unknown[][];
    micro: unknown[][];
  };
  expect(json.traces).toHaveLength(3);
  expect(json.micro).toHaveLength(9);
  // One entry per allocator (every peer in PEERS of bench/bench.ts).
  for (const row of [...json.traces, ...json.micro]) expect(row).toHaveLength(10);
  expect(readFileSync(join(out, 'rss.svg'), 'utf8')).toContain('pymalloc (this)');
});

describe("--rounds: the allocators take turns, and each one's fastest run is kept", () => {
  const run = (peer: string, nsPerOp: number) =>
    ({ peer, trace: 't', nsPerOp }) as unknown as Parameters<typeof fastest>[1];
  const skip = (peer: string, why: string) => ({ peer, trace: 't', skipped: why });

  test('fastest() keeps the lower time, a run over a skip, and the first of two skips', () => {
    expect(fastest(undefined, run('a', 5))).toEqual(run('a', 5));
    expect(fastest(run('a', 5), run('a', 4))).toEqual(run('a', 4));
    expect(fastest(run('a', 4), run('a', 5))).toEqual(run('a', 4));
    expect(fastest(skip('a', 'first'), run('a', 9))).toEqual(run('a', 9));
    expect(fastest(run('a', 9), skip('a', 'later'))).toEqual(run('a', 9));
    expect(fastest(skip('a', 'first'), skip('a', 'second'))).toEqual(skip('a', 'first'));
  });

  test('a run with --rounds 2 says so and reports one entry per allocator', () => {
    const file = join(dir, 'rounds.trace');
    writeTraceText(churnTrace(2_000, 200), file);
    const out = join(dir, 'rounds');
    execFileSync(
      process.execPath,
      [join(root, 'dist', 'bench', 'bench.js'), file, '--quick', '--rounds', '2', '--no-micro', '--out', out],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const md = readFileSync(join(out, 'bench.md'), 'utf8');
    expect(md).toContain(
      "in 2 rounds with the allocators taking turns; each allocator's fastest run is shown.",
    );
    const json = JSON.parse(readFileSync(join(out, 'bench.json'), 'utf8')) as {
      rounds: number;
      traces: unknown[][];
    };
    expect(json.rounds).toBe(2);
    expect(json.traces).toHaveLength(1);
    expect(json.traces[0]).toHaveLength(10);
  });
});

/** libm: a real shared library that defines no malloc (found through the compiler, as the harness is built). */
function realLibraryWithoutMalloc(): string {
  const file = execFileSync(process.env.CC ?? 'cc', ['-print-file-name=libm.so.6'], {
    encoding: 'utf8',
  }).trim();
  if (!existsSync(file))
    throw new Error(`this test needs libm.so.6, which the C compiler does not find (${file})`);
  return file;
}

describe('preloaded peers', () => {
  test('a library that is not there is a skip naming what to install, and an override is honoured', () => {
    const saved = process.env.PYMALLOC_BENCH_JEMALLOC;
    try {
      process.env.PYMALLOC_BENCH_JEMALLOC = join(dir, 'no-such-lib.so');
      expect(preloadLibrary('jemalloc')).toEqual({
        skipped: `PYMALLOC_BENCH_JEMALLOC=${join(dir, 'no-such-lib.so')}: no such file`,
      });
      delete process.env.PYMALLOC_BENCH_JEMALLOC;
      const found = preloadLibrary('jemalloc');
      if (typeof found === 'string') expect(found).toMatch(/libjemalloc\.so/);
      else expect(found.skipped).toMatch(/apt-get install libjemalloc2/);
    } finally {
      if (saved === undefined) delete process.env.PYMALLOC_BENCH_JEMALLOC;
      else process.env.PYMALLOC_BENCH_JEMALLOC = saved;
    }
  });

  test('a preload that does not replace malloc is an error, not glibc measured under another name', async () => {
    const saved = process.env.PYMALLOC_BENCH_MIMALLOC;
    try {
      // A real shared library that defines no malloc: the harness reports glibc's.
      process.env.PYMALLOC_BENCH_MIMALLOC = realLibraryWithoutMalloc();
      const t = churnTrace(200, 20);
      await expect(runNativePeer('mimalloc', t, { reps: 1, samples: 2 })).rejects.toThrow(
        /did not replace malloc/,
      );
    } finally {
      if (saved === undefined) delete process.env.PYMALLOC_BENCH_MIMALLOC;
      else process.env.PYMALLOC_BENCH_MIMALLOC = saved;
    }
  });
});
