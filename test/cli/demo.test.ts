/**
 * `pymalloc demo`, run as the built CLI (it forks dist/lib/demo/simulator.js, so `npm run build:ts` first) with a
 * small object count: the JSON's structure and what really happened to the memory under each policy.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DemoReport, PhaseId, PolicyRun } from '../../lib/demo/demo';
import { formatDemoReport, wrap } from '../../lib/demo/report';
import { cellCount, poolCells, USED_CATEGORIES } from '../report/map-cells';

const ROOT = join(__dirname, '..', '..');
const BIN = join(ROOT, 'dist', 'lib', 'cli', 'main.js');
const MiB = 2 ** 20;
/** About 95 MiB per build, the least the CLI accepts (MIN_OBJECTS): the test covers the verdict's tightest case. */
const OBJECTS = 1_000_000;

/** Fails clearly when dist/ is missing or older than the sources the demo runs. */
function checkBuilt(): void {
  const pairs: Array<[string, string]> = [
    ['lib/demo/demo.ts', 'dist/lib/demo/demo.js'],
    ['lib/demo/simulator.ts', 'dist/lib/demo/simulator.js'],
    ['lib/demo/mix.ts', 'dist/lib/demo/mix.js'],
    ['lib/demo/report.ts', 'dist/lib/demo/report.js'],
    ['lib/cli/demo.ts', 'dist/lib/cli/demo.js'],
  ];
  for (const [src, out] of pairs) {
    const built = join(ROOT, out);
    if (!existsSync(built) || statSync(built).mtimeMs < statSync(join(ROOT, src)).mtimeMs) {
      throw new Error(`${out} is missing or older than ${src}: run npm run build:ts first`);
    }
  }
}

let dir: string;
let report: DemoReport;
let svg: string;
let maps: Record<string, string>;
let stderr: string;

beforeAll(() => {
  checkBuilt();
  dir = mkdtempSync(join(tmpdir(), 'pymalloc-demo-'));
  const plot = join(dir, 'rss.svg');
  const mapDir = join(dir, 'maps');
  const r = spawnSync(
    process.execPath,
    [BIN, 'demo', '--objects', String(OBJECTS), '--json', '--plot', plot, '--map', mapDir],
    {
      encoding: 'utf8',
      timeout: 120_000,
    },
  );
  stderr = r.stderr;
  if (r.status !== 0) throw new Error(`demo exited with ${r.status}: ${r.stderr}`);
  report = JSON.parse(r.stdout) as DemoReport;
  svg = readFileSync(plot, 'utf8');
  maps = Object.fromEntries(
    ['never', 'cpython', 'purge'].map((p) => [p, readFileSync(join(mapDir, `${p}.svg`), 'utf8')]),
  );
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function run(policy: string): PolicyRun {
  const found = report.runs.find((r) => r.policy === policy);
  if (!found) throw new Error(`no run for ${policy}`);
  return found;
}

function at(policy: string, phase: PhaseId) {
  const found = run(policy).phases.find((p) => p.phase === phase);
  if (!found) throw new Error(`no phase ${phase} for ${policy}`);
  return found;
}

test('the JSON has every number, one run per policy', () => {
  expect(stderr).toBe('');
  expect(report.objects).toBe(OBJECTS);
  expect(report.runs.map((r) => r.policy)).toEqual(['never', 'cpython', 'purge']);
  expect(report.defaultPolicy).toBe('purge');
  expect(report.keepOneIn).toBe(64);
  // The mix's mean is about 100 bytes.
  expect(report.requestedBytes / OBJECTS).toBeGreaterThan(80);
  expect(report.requestedBytes / OBJECTS).toBeLessThan(120);
  for (const r of report.runs) {
    expect(r.phases.map((p) => p.phase)).toEqual(
      expect.arrayContaining(['baseline', 'built', 'freed', 'simulator', 'spread', 'clustered', 'destroyed']),
    );
    for (const p of r.phases) {
      expect(p.rssBytes).toBeGreaterThan(0);
      if (p.phase !== 'destroyed') expect(p.residentBytes).toEqual(expect.any(Number));
    }
    expect(r.samples.length).toBeGreaterThan(100);
    expect(r.fragmentation.map((f) => f.pattern)).toEqual(['spread', 'clustered']);
  }
  expect(typeof report.returnedPercent).toBe('number');
  expect(report.returnedPercent).toBe(run('purge').returnedPercent);
});

test('the default policy returned at least 95% of the freed memory after the full free', () => {
  expect(report.returnedPercent).toBeGreaterThanOrEqual(95);
  // The heap itself keeps at most the one arena it keeps against thrashing.
  expect(at('purge', 'freed').arenas).toBeLessThanOrEqual(1);
  expect(at('purge', 'freed').residentBytes!).toBeLessThanOrEqual(2 * MiB);
  expect(at('purge', 'freed').bytesInUse).toBe(0);
});

test('never keeps everything; cpython gives back all but one arena', () => {
  const built = at('never', 'built');
  expect(built.bytesInUse!).toBeGreaterThanOrEqual(report.requestedBytes);
  expect(built.residentBytes!).toBeGreaterThanOrEqual(report.requestedBytes);
  expect(at('never', 'freed').residentBytes).toBe(built.residentBytes);
  expect(at('never', 'freed').arenas).toBe(built.arenas);
  expect(at('cpython', 'freed').arenas).toBeLessThanOrEqual(1);
  expect(run('cpython').heapReturnedPercent).toBeGreaterThanOrEqual(95);
});

test('the simulator reported its RSS while this process stayed near its baseline', () => {
  for (const r of report.runs) {
    const sim = r.simulator;
    expect(sim.objects).toBe(OBJECTS);
    expect(sim.bytes).toBeGreaterThan(0.9 * report.requestedBytes);
    expect(sim.peakRssBytes - sim.baselineRssBytes).toBeGreaterThanOrEqual(sim.bytes);
    expect(sim.heapResidentBytes).toBeGreaterThanOrEqual(sim.bytes);
    expect(r.simulatorSamples.length).toBeGreaterThan(10);
  }
  // Under purge this process is back near its baseline while the simulator runs; under never it is not.
  const grown = (policy: string) => run(policy).simulator.parentRssBytes - at(policy, 'baseline').rssBytes;
  expect(grown('purge')).toBeLessThan(0.1 * report.requestedBytes);
  expect(grown('never')).toBeGreaterThan(0.9 * report.requestedBytes);
});

test('after fragmentation: never >= cpython >= purge in resident bytes, with the same bytes in use', () => {
  for (const pattern of ['spread', 'clustered'] as const) {
    const resident = (policy: string) => at(policy, pattern).residentBytes!;
    expect(resident('never')).toBeGreaterThanOrEqual(resident('cpython'));
    expect(resident('cpython')).toBeGreaterThanOrEqual(resident('purge'));
    const inUse = report.runs.map((r) => at(r.policy, pattern).bytesInUse);
    expect(new Set(inUse).size).toBe(1);
    // One object in 64 survives (give or take the last run of the clustered pattern).
    const frag = run('purge').fragmentation.find((f) => f.pattern === pattern)!;
    if (pattern === 'spread') expect(frag.survivors).toBe(Math.ceil(OBJECTS / 64));
    else expect(Math.abs(frag.survivors - OBJECTS / 64)).toBeLessThanOrEqual(report.runLength);
    expect(at('purge', pattern).bytesInUse!).toBeLessThan(report.requestedBytes / 32);
  }
  // Survivors allocated together leave whole arenas empty (cpython) and many empty pools in the rest (purge).
  expect(at('cpython', 'clustered').residentBytes!).toBeLessThan(
    0.9 * at('never', 'clustered').residentBytes!,
  );
  expect(at('purge', 'clustered').residentBytes!).toBeLessThan(
    0.5 * at('cpython', 'clustered').residentBytes!,
  );
  // Spread survivors pin every arena, and so every policy but purge keeps all of them.
  const spread = run('cpython').fragmentation[0]!;
  expect(spread.arenasAfter).toBe(spread.arenasBefore);
  // heap.trim() runs under purge only, and gives back what is left below the threshold.
  expect(at('purge', 'clustered-trimmed').residentBytes!).toBeLessThanOrEqual(
    at('purge', 'clustered').residentBytes!,
  );
  expect(run('cpython').phases.some((p) => p.phase === 'clustered-trimmed')).toBe(false);
  expect(run('purge').fragmentation[1]!.trimmedBytes).toEqual(expect.any(Number));
});

test('destroying a heap gives back every resident page it held', () => {
  // Measured against the phase just before destroy() rather than against the run's baseline: the process RSS
  // also holds what V8 grew meanwhile (JIT code, the simulator's IPC), which is not the allocator's to return.
  for (const r of report.runs) {
    const destroyed = r.phases.findIndex((p) => p.phase === 'destroyed');
    expect(destroyed).toBe(r.phases.length - 1);
    const before = r.phases[destroyed - 1]!;
    expect(before.residentBytes!).toBeGreaterThan(0.05 * report.requestedBytes);
    // (Less 1 MiB: what V8 itself allocates between the two readings; it was 0.08 MiB short of 90% once in CI.)
    expect(before.rssBytes - r.phases[destroyed]!.rssBytes).toBeGreaterThanOrEqual(
      0.9 * before.residentBytes! - 2 ** 20,
    );
    expect(r.phases[destroyed]!.residentBytes).toBeNull();
  }
});

test('--plot writes an SVG of the three policies and the simulator', () => {
  expect(svg.startsWith('<svg')).toBe(true);
  for (const name of ['never (Python 2.4)', 'cpython (2.5+)', 'purge (default)', 'simulator (child)']) {
    expect(svg).toContain(name);
  }
});

test('--map writes each policy its heap map after both fragmentations, and --json leaves the maps out', () => {
  for (const r of report.runs) expect(r).not.toHaveProperty('maps');
  for (const [policy, map] of Object.entries(maps)) {
    expect(map.startsWith('<svg')).toBe(true);
    expect(map).toContain(`the heap under ${policy}`);
    expect(map).toContain('kept every 64th object: ');
    expect(map).toContain('kept 1 run of 512 in 64: ');
    // Each panel: one cell per pool of every arena alive after its pattern (64 pools of 16 KiB a 1 MiB
    // arena), the used ones (by fill) and the purged ones as many as heap.stats() counted then.
    run(policy).fragmentation.forEach((f, panel) => {
      const cells = (category: string) => cellCount(map, category, panel);
      expect(poolCells(map, panel)).toBe(f.arenasAfter * 64);
      expect(USED_CATEGORIES.reduce((n, c) => n + cells(c), 0)).toBe(f.poolsUsed);
      expect(cells('purged (given back)')).toBe(f.poolsPurged);
      expect(cells('empty (resident)') + cells('purged (given back)') + cells('never carved')).toBe(
        f.poolsUnused,
      );
    });
  }
  // Under never, nothing is purged.
  expect(cellCount(maps['never']!, 'purged (given back)')).toBe(0);
  const purge = run('purge').fragmentation[0]!;
  expect(maps['purge']).toContain(
    `kept every 64th object: ${purge.arenasAfter} arenas, ${purge.poolsUsed} pools in use`,
  );
});

test('the report ends with the returned line and fits in 80 columns', () => {
  const text = formatDemoReport(report);
  const lines = text.split('\n');
  expect(lines[lines.length - 1]).toBe(
    `returned ${report.returnedPercent.toFixed(1)}% of freed memory to the OS`,
  );
  for (const line of lines) expect(line.length).toBeLessThanOrEqual(80);
  expect(text).toContain('kept every 64th object');
  expect(text).toContain('simulator running: both processes');
});

test('wrap keeps words whole and indents continuation lines', () => {
  expect(wrap('aaa bbb ccc', 7)).toEqual(['aaa bbb', '  ccc']);
  expect(wrap('one', 100)).toEqual(['one']);
  // A number stays with its unit.
  expect(wrap('gave back 2.5 MiB through trim', 14)).toEqual(['gave back', '  2.5 MiB', '  through trim']);
});
