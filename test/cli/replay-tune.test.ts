/** `pymalloc replay` and `pymalloc tune`, run in this process through the CLI's own entry point. */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ReplayReport } from '../../lib/cli/replay';
import { recommend, TUNE_GRID, type TuneReport, type TuneRow } from '../../lib/cli/tune';
import { transparentHugePages } from '../../lib/os';
import { classRows } from '../stats-table';
import { runCli } from './run-cli';

const fixtures = join(__dirname, '..', 'fixtures', 'traces');
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'pymalloc-cli-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const run = runCli;

/** A small trace: 3000 objects of mixed sizes, two thirds freed, some reallocated, one large. */
function smallTrace(): string {
  const lines: string[] = [];
  for (let i = 0; i < 3000; i++) lines.push(`m ${i} ${8 + ((i * 37) % 500)}`);
  lines.push('m 9999 100000');
  for (let i = 0; i < 3000; i += 3) lines.push(`r ${i} ${16 + ((i * 11) % 400)}`);
  for (let i = 0; i < 3000; i++) if (i % 3 !== 0) lines.push(`f ${i}`);
  return `${lines.join('\n')}\n`;
}

describe('pymalloc replay', () => {
  test("--stats prints CPython's own per-class table for the regex trace", async () => {
    const { code, stdout, stderr } = await run([
      'replay',
      join(fixtures, 'regex.trace.gz'),
      '--stats',
      '--reps',
      '1',
      '--warm-up',
      '0',
    ]);
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    const cpython = readFileSync(join(fixtures, 'regex.cpython-3.11.stats.txt'), 'utf8');
    expect(classRows(stdout).length).toBeGreaterThan(20);
    expect(classRows(stdout)).toEqual(classRows(cpython));
    expect(stdout).toMatch(/^trace\s+regex\.trace\.gz: 296,763 operations/);
    expect(stdout).toMatch(/time\s+\d+\.\d ns\/op, best of 1/);
    for (const row of ['baseline', 'peak', 'end of trace', 'after free-all']) expect(stdout).toContain(row);
  });

  test('--json reports the memory at every phase and the class table; --plot writes the chart', async () => {
    const file = join(dir, 'small.trace');
    writeFileSync(file, smallTrace());
    const svg = join(dir, 'rss.svg');
    const map = join(dir, 'map.svg');
    const { code, stdout } = await run([
      'replay',
      file,
      '--json',
      '--reps',
      '2',
      '--warm-up',
      '0',
      '--samples',
      '10',
      '--preset',
      'cpython-3.6',
      '--policy',
      'cpython',
      '--plot',
      svg,
      '--map',
      map,
    ]);
    expect(code).toBe(0);
    const r = JSON.parse(stdout) as ReplayReport;
    expect(r.ops).toBe(3000 + 1 + 1000 + 2000);
    expect(r.objects).toBe(3001);
    expect(r.reps).toBe(2);
    expect(r.nsPerOpRuns).toHaveLength(2);
    expect(r.nsPerOp).toBe(Math.min(...r.nsPerOpRuns));
    expect(r.geometry).toEqual({
      preset: 'cpython-3.6',
      alignment: 8,
      threshold: 512,
      mediumThreshold: 512,
      poolSize: 4096,
      arenaSize: 262144,
    });
    expect(r.policy).toBe('cpython');
    // 11 timeline points: the baseline, 10 samples; plus the one after free-all.
    expect(r.timeline).toHaveLength(12);
    expect(r.timeline[10].op).toBe(r.ops);
    // 1000 small blocks and the large one stay live at the end.
    expect(r.stats.blocksInUse).toBe(1001);
    expect(r.classes.reduce((n, c) => n + c.blocksInUse, 0)).toBe(1000);
    expect(r.peak.heapResident).toBeGreaterThanOrEqual(r.end.heapResident);
    expect(r.end.heapResident).toBeGreaterThan(r.afterFree.heapResident);
    expect(r.afterTrim.heapResident).toBeLessThanOrEqual(r.afterFree.heapResident);
    const chart = readFileSync(svg, 'utf8');
    expect(chart.startsWith('<svg')).toBe(true);
    expect(chart).toContain('heap resident');
    // Process RSS and the heap's resident bytes each have a panel, and so a y axis, of their own.
    expect(chart).toContain('process RSS (MiB)');
    expect(chart).toContain('heap resident (MiB)');
    expect(chart.match(/class="mark-line role-mark/g)).toHaveLength(2);
    // The heap map: at the peak, the live pools and the one large block; after free-all, no pool in use.
    const picture = readFileSync(map, 'utf8');
    const peak =
      /at the peak: (\d+) arenas?, (\d+) pools? in use, \d+ empty, \d+ purged, 1 large block\b/.exec(picture);
    expect(peak).not.toBeNull();
    expect(Number(peak![2])).toBeGreaterThan(0);
    expect(picture).toMatch(
      /after free-all: \d+ arenas?, 0 pools in use, \d+ empty, \d+ purged, 0 large blocks/,
    );
    // --json carries the numbers only, not the maps.
    expect(r).not.toHaveProperty('maps');
  });

  test('--json: one second after free-all, with no call, the heap holds at most 2% of its peak (afterIdle)', async () => {
    // 50,000 blocks of 64 bytes live at the end: 3 MiB of pools that free-all empties.
    const file = join(dir, 'idle.trace');
    writeFileSync(file, Array.from({ length: 50_000 }, (_, i) => `m ${i + 1} 64\n`).join(''));
    const args = ['replay', file, '--json', '--reps', '1', '--samples', '5', '--warm-up', '0'];
    const { code, stdout } = await run(args);
    expect(code).toBe(0);
    const r = JSON.parse(stdout) as ReplayReport;
    const grown = r.peak.heapResident - r.baseline.heapResident;
    expect(grown).toBeGreaterThan(0);
    // free-all left most of it (kept for reuse for purgeDelay); the delayed return took it back without a call.
    expect(r.afterFree.heapResident - r.baseline.heapResident).toBeGreaterThan(0.02 * grown);
    expect(r.afterIdle!.heapResident - r.baseline.heapResident).toBeLessThanOrEqual(0.02 * grown);
    // Under 'cpython' nothing goes back by itself.
    const c = JSON.parse((await run([...args, '--policy', 'cpython'])).stdout) as ReplayReport;
    expect(c.afterIdle!.heapResident).toBe(c.afterFree.heapResident);
  });

  test.each([
    [['replay', 'no-such.trace'], /cannot read trace 'no-such\.trace': no such file/],
    [['replay', 'BAD', '--reps', 'x'], /--reps: expected a whole number, got 'x'/],
    [['replay', 'BAD', '--reps', '0'], /--reps must be at least 1/],
    [['replay', 'BAD', '--warm-up', '-1'], /--warm-up: expected a whole number, got '-1'/],
    [['tune', 'BAD', '--warm-up', 'many'], /--warm-up: expected a whole number, got 'many'/],
    [
      ['replay', 'BAD', '--policy', 'sometimes'],
      /--policy must be one of purge, cpython, never, got 'sometimes'/,
    ],
    [['replay', 'BAD', '--pool-size', '3000'], /poolSize must be a power of two, got 3000/],
    [['replay', 'BAD'], /bad\.trace:2: free of ID 7, which is not live/],
  ])('%j is one line and exit status 2', async (args, message) => {
    const bad = join(dir, 'bad.trace');
    writeFileSync(bad, 'm 1 8\nf 7\n');
    const { code, stdout, stderr } = await run(args.map((a) => (a === 'BAD' ? bad : a)));
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toMatch(message);
    expect(stderr.trimEnd().split('\n')).toHaveLength(1);
  });
});

describe('pymalloc replay --huge-pages', () => {
  const thp = transparentHugePages();
  const usable = thp !== null && thp.mode !== 'never' && thp.size === 2 ** 21;

  test('with preset cpython-hugepages the arenas are huge pages where the kernel has them', async () => {
    const file = join(dir, 'small.trace');
    writeFileSync(file, smallTrace());
    const args = [
      'replay',
      file,
      '--json',
      '--reps',
      '1',
      '--samples',
      '5',
      '--warm-up',
      '0',
      '--preset',
      'cpython-hugepages',
    ];
    const { code, stdout } = await run([...args, '--huge-pages']);
    expect(code).toBe(0);
    const r = JSON.parse(stdout) as ReplayReport;
    if (!usable) console.log(`transparent huge pages unusable here (${JSON.stringify(thp)}): normal pages`);
    expect(r.hugePages).toBe(usable);
    expect(r.geometry.arenaSize).toBe(2 ** 21);
    // A huge page is resident whole: the peak is a multiple of 2 MiB of arenas (and some of large spans).
    if (usable) expect(r.peak.heapResident).toBeGreaterThanOrEqual(2 ** 21);
    const plain = JSON.parse((await run(args)).stdout) as ReplayReport;
    expect(plain.hugePages).toBe(false);
    expect(plain.stats).toEqual(r.stats);
  });

  test('arenas smaller than a huge page are one line and exit status 2', async () => {
    const { code, stdout, stderr } = await run(['replay', 'no-such.trace', '--huge-pages']);
    if (!usable) {
      console.log(
        'no usable transparent huge pages here: --huge-pages is a no-op, the missing trace is the error',
      );
      expect(stderr).toMatch(/cannot read trace/);
      return;
    }
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toBe(
      'pymalloc replay: hugePages needs the arena size to be a multiple of the huge page size (2097152), got 1048576: ' +
        "use preset 'cpython-hugepages' or arenaSize 2097152\n",
    );
  });
});

describe('pymalloc tune', () => {
  test('replays under all eight geometries and recommends one of them', async () => {
    const file = join(dir, 'tune.trace');
    writeFileSync(file, smallTrace());
    const { code, stdout } = await run(['tune', file, '--json', '--reps', '1', '--warm-up', '0']);
    expect(code).toBe(0);
    const t = JSON.parse(stdout) as TuneReport;
    expect(t.rows.map((r) => [r.alignment, r.poolSize, r.arenaSize])).toEqual(
      TUNE_GRID.map((g) => [g.alignment, g.poolSize, g.arenaSize]),
    );
    for (const r of t.rows) {
      expect(r.peakHeapResident).toBeGreaterThan(0);
      expect(r.poolHeaders).toBeGreaterThan(0);
      expect(r.nsPerOp).toBeGreaterThan(0);
    }
    // The same blocks need at least as many arenas of 256 KiB as of 1 MiB.
    const arenas = (a: number, pool: number, arena: number) =>
      t.rows.find((r) => r.alignment === a && r.poolSize === pool && r.arenaSize === arena)!.arenas;
    expect(arenas(16, 16384, 262144)).toBeGreaterThanOrEqual(arenas(16, 16384, 1048576));
    expect(arenas(8, 4096, 262144)).toBeGreaterThanOrEqual(arenas(8, 4096, 1048576));
    // Smaller pools carry more headers for the same blocks.
    const h = (pool: number) =>
      t.rows.find((r) => r.alignment === 16 && r.poolSize === pool && r.arenaSize === 1024 * 1024)!
        .poolHeaders;
    expect(h(4096)).toBeGreaterThan(h(16384));
    expect(t.recommended).toBeGreaterThanOrEqual(0);
    expect(t.recommended).toBeLessThan(8);
    expect(t.why).toContain(`alignment ${t.rows[t.recommended].alignment}`);
  });

  test('the table marks the recommendation and explains it', async () => {
    const file = join(dir, 'tune2.trace');
    writeFileSync(file, smallTrace());
    const { code, stdout } = await run(['tune', file, '--reps', '1', '--warm-up', '0']);
    expect(code).toBe(0);
    expect(stdout.split('\n').filter((l) => l.startsWith('* '))).toHaveLength(1);
    expect(stdout).toMatch(/^recommended \(\*\): alignment (8|16), /m);
  });

  const row = (over: Partial<TuneRow>): TuneRow => ({
    alignment: 16,
    poolSize: 16384,
    arenaSize: 1048576,
    quantization: 1000,
    poolHeaders: 1000,
    unusedPools: 10000,
    availableBlocks: 0,
    arenas: 1,
    peakHeapResident: 1_000_000,
    peakRss: 50_000_000,
    nsPerOp: 20,
    ...over,
  });

  test('recommend prefers CPython 3.11 geometry unless another saves 5% memory within 10% of the time', () => {
    expect(recommend([row({}), row({ alignment: 8, peakHeapResident: 970_000 })]).index).toBe(0);
    const saves = recommend([row({}), row({ alignment: 8, peakHeapResident: 900_000, nsPerOp: 21 })]);
    expect(saves.index).toBe(1);
    expect(saves.why).toMatch(/saves 97\.7 KiB of peak resident memory/);
    // Too slow to count, however small.
    expect(recommend([row({}), row({ alignment: 8, peakHeapResident: 500_000, nsPerOp: 30 })]).index).toBe(0);
    // When the default is itself too slow, the fastest of the equally small wins.
    expect(
      recommend([
        row({ nsPerOp: 40 }),
        row({ alignment: 8, nsPerOp: 22 }),
        row({ poolSize: 4096, nsPerOp: 20 }),
      ]).index,
    ).toBe(2);
  });

  test('a missing trace is one line', async () => {
    const { code, stderr } = await run(['tune', join(dir, 'absent.trace')]);
    expect(code).toBe(2);
    expect(stderr).toMatch(/^pymalloc tune: cannot read trace '.*absent\.trace': no such file\n$/);
    expect(existsSync(join(dir, 'absent.trace'))).toBe(false);
  });
});
