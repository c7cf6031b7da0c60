/**
 * bench/ab.ts, the in-process comparison of two builds (its machinery, not its timings): two package roots load
 * as two separate builds, both replay every trace the same number of rounds, and the ratios are the ones their
 * times give; a root without a build is a clear error.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = join(__dirname, '..', '..');
const AB = join(root, 'dist', 'bench', 'ab.js');
const TRACE = join(root, 'test', 'fixtures', 'traces', 'regex.trace.gz');
let dir: string;
let copy: string;

beforeAll(() => {
  if (!existsSync(AB)) throw new Error(`${AB} is missing: run npm run build:ts first`);
  dir = mkdtempSync(join(tmpdir(), 'pymalloc-ab-test-'));
  // A second package root: the same build, copied, so that it loads as other modules than this checkout's.
  copy = join(dir, 'other');
  cpSync(join(root, 'dist'), join(copy, 'dist'), { recursive: true });
  cpSync(join(root, 'package.json'), join(copy, 'package.json'));
  for (const d of ['build', 'build-cmake', 'prebuilds', 'node_modules'])
    if (existsSync(join(root, d))) symlinkSync(join(root, d), join(copy, d));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test('compares two builds on a trace, turn about, and reports consistent ratios', () => {
  const out = execFileSync(process.execPath, [AB, root, copy, TRACE, '--rounds', '6', '--json'], {
    encoding: 'utf8',
  });
  const r = JSON.parse(out) as {
    old: string;
    new: string;
    rounds: number;
    traces: Array<{ trace: string; oldNs: number; newNs: number; bestRatio: number; pairedRatio: number }>;
    geomeanBestRatio: number;
    geomeanPairedRatio: number;
  };
  expect(r.old).toBe(root);
  expect(r.new).toBe(copy);
  expect(r.rounds).toBe(6);
  expect(r.traces.map((t) => t.trace)).toEqual(['regex.trace.gz']);
  const [t] = r.traces;
  expect(t!.oldNs).toBeGreaterThan(0);
  expect(t!.newNs).toBeGreaterThan(0);
  expect(t!.bestRatio).toBeCloseTo(t!.newNs / t!.oldNs, 10);
  expect(t!.pairedRatio).toBeGreaterThan(0);
  expect(r.geomeanBestRatio).toBeCloseTo(t!.bestRatio, 10);
  expect(r.geomeanPairedRatio).toBeCloseTo(t!.pairedRatio, 10);
});

test('the table names both builds and every trace', () => {
  const out = execFileSync(process.execPath, [AB, root, copy, TRACE, '--rounds', '3'], { encoding: 'utf8' });
  expect(out).toContain(`old: ${root}`);
  expect(out).toContain(`new: ${copy}`);
  expect(out).toMatch(/^\| regex\.trace\.gz \| [\d.]+ \| [\d.]+ \| [\d.]+ \| [\d.]+ \|$/m);
  expect(out).toMatch(/^\| geometric mean \| \| \| [\d.]+ \| [\d.]+ \|$/m);
});

test('a root without a build, and bad options, are clear errors', () => {
  const noBuild = spawnSync(process.execPath, [AB, root, dir, TRACE], { encoding: 'utf8' });
  expect(noBuild.status).toBe(1);
  expect(noBuild.stderr).toBe(`ab: ${dir}: no dist/lib/index.js (run npm run build there)\n`);
  const rounds = spawnSync(process.execPath, [AB, root, copy, '--rounds', '2'], { encoding: 'utf8' });
  expect(rounds.status).toBe(1);
  expect(rounds.stderr).toBe('ab: --rounds must be an integer of at least 3\n');
  const usage = spawnSync(process.execPath, [AB, root], { encoding: 'utf8' });
  expect(usage.stderr).toBe('ab: usage: node dist/bench/ab.js OLD NEW [TRACE...] [--rounds N] [--json]\n');
});
