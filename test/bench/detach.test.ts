/**
 * bench/detach.ts (its machinery, not its timings): every mode runs in a child process of its own and reports
 * positive before/after times, and the summary's ratios are the medians of those.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { churnTrace, writeTraceText } from '../../bench/generate';

const root = join(__dirname, '..', '..');
const SCRIPT = join(root, 'dist', 'bench', 'detach.js');
let dir: string;
beforeAll(() => {
  if (!existsSync(SCRIPT)) throw new Error(`${SCRIPT} is missing: run npm run build:ts first`);
  dir = mkdtempSync(join(tmpdir(), 'pymalloc-detach-test-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test('each mode runs once per run in a process of its own, and the ratios follow from the times', () => {
  const file = join(dir, 'small.trace');
  writeTraceText(churnTrace(2_000, 200), file);
  const out = execFileSync(process.execPath, [SCRIPT, file, '--runs', '1', '--json'], { encoding: 'utf8' });
  const r = JSON.parse(out) as {
    summary: Array<{ mode: string; runs: number; loopRatio: number; replayRatio: number }>;
    results: Array<{ mode: string; loop: [number, number]; replay: [number, number] }>;
  };
  expect(r.summary.map((s) => [s.mode, s.runs])).toEqual([
    ['control', 1],
    ['destroy', 1],
    ['transfer', 1],
  ]);
  for (const x of r.results) {
    for (const t of [...x.loop, ...x.replay]) expect(t).toBeGreaterThan(0);
    const s = r.summary.find((m) => m.mode === x.mode)!;
    expect(s.loopRatio).toBeCloseTo(x.loop[1] / x.loop[0], 10);
    expect(s.replayRatio).toBeCloseTo(x.replay[1] / x.replay[0], 10);
  }
});
