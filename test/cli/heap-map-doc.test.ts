/**
 * docs/heap-map.md: its shell examples run (with `pymalloc` the built binary, in a scratch directory) and write
 * what the page says they write; the picture it shows is a heap map of the demo under the cpython policy.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cellCount, USED_CATEGORIES } from '../report/map-cells';

const ROOT = join(__dirname, '..', '..');
const BIN = join(ROOT, 'dist', 'lib', 'cli', 'main.js');
const PAGE = readFileSync(join(ROOT, 'docs', 'heap-map.md'), 'utf8');

/** The page's fenced blocks tagged sh. */
function shellBlocks(markdown: string): string[] {
  return [...markdown.matchAll(/^```sh\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
}

let dir: string;
beforeAll(() => {
  if (!existsSync(BIN)) throw new Error(`${BIN} is missing: run npm run build:ts first`);
  dir = mkdtempSync(join(tmpdir(), 'pymalloc-heap-map-doc-'));
  const shim = join(dir, 'bin', 'pymalloc');
  spawnSync('mkdir', ['-p', join(dir, 'bin'), join(dir, 'work')]);
  writeFileSync(shim, `#!/bin/sh\nexec "${process.execPath}" "${BIN}" "$@"\n`);
  chmodSync(shim, 0o755);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test('the page has its two examples', () => {
  expect(shellBlocks(PAGE)).toHaveLength(2);
});

test.each(shellBlocks(PAGE).map((b, i) => [i + 1, b]))(
  'example %i runs and writes its files',
  (_i, block) => {
    const work = join(dir, 'work');
    const r = spawnSync('bash', ['-euo', 'pipefail', '-c', block as string], {
      cwd: work,
      encoding: 'utf8',
      env: { ...process.env, PATH: `${join(dir, 'bin')}:${process.env['PATH']}` },
      timeout: 300_000,
    });
    expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: '' });
    // Every SVG file the example names exists and is a heap map or a chart.
    for (const [, name] of (block as string).matchAll(/(\S+\.svg)/g)) {
      expect(readFileSync(join(work, name!), 'utf8').startsWith('<svg')).toBe(true);
    }
    if ((block as string).includes('--map maps')) {
      for (const policy of ['never', 'cpython', 'purge'])
        expect(readFileSync(join(work, 'maps', `${policy}.svg`), 'utf8')).toContain(
          `the heap under ${policy}`,
        );
    }
    if ((block as string).includes('tiny-map.svg')) {
      const map = readFileSync(join(work, 'tiny-map.svg'), 'utf8');
      // At the peak: 1 arena, the 64-byte pool and the 700-byte pool in use, the large block.
      expect(map).toContain('at the peak: 1 arena, 2 pools in use');
      expect(map).toContain('after free-all: 1 arena, 0 pools in use');
      expect(cellCount(map, 'large block', 0)).toBeGreaterThan(0);
    }
  },
  300_000,
);

test('the picture is the demo heap under cpython after both patterns, as the page says', () => {
  const svg = readFileSync(join(ROOT, 'docs', 'heap-map.svg'), 'utf8');
  expect(PAGE).toContain('![The heap under the cpython policy after fragmentation](heap-map.svg)');
  expect(svg).toContain('pymalloc demo: the heap under cpython (2.5+) after fragmentation');
  expect(svg).toMatch(/kept every 64th object: \d+ arenas/);
  expect(svg).toMatch(/kept 1 run of 512 in 64: \d+ arenas/);
  // The page's reading of it: survivors in pools, empty pools resident (orange), none purged.
  for (const panel of [0, 1]) {
    expect(USED_CATEGORIES.reduce((n, c) => n + cellCount(svg, c, panel), 0)).toBeGreaterThan(0);
    expect(cellCount(svg, 'empty (resident)', panel)).toBeGreaterThan(0);
    expect(cellCount(svg, 'purged (given back)', panel)).toBe(0);
  }
});
