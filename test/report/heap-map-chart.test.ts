/** The heap map's picture: one cell per pool coloured by state and fill, large blocks after the arenas. */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Heap } from '../../lib';
import { type HeapMap, heapMap, type PoolCell } from '../../lib/heap-map';
import {
  MAP_CATEGORIES,
  panelCaption,
  poolCategory,
  renderHeapMap,
  writeHeapMap,
} from '../../lib/report/heap-map-chart';
import { cellCount, USED_CATEGORIES } from './map-cells';

const free = { sizeClass: null, blockSize: null, blocksInUse: 0, blocks: 0, fill: 0 };
function used(blocksInUse: number, blocks: number): PoolCell {
  return {
    state: blocksInUse === blocks ? 'full' : 'used',
    sizeClass: 3,
    blockSize: 64,
    blocksInUse,
    blocks,
    fill: blocksInUse / blocks,
  };
}

/** Two arenas of 4 pools and three large spans, written by hand. */
const MAP: HeapMap = {
  poolSize: 16384,
  arenaSize: 65536,
  poolsPerArena: 4,
  arenas: [
    { index: 1, address: 0x100000, pools: [used(10, 100), used(30, 100), used(60, 100), used(100, 100)] },
    {
      index: 0,
      address: 0x110000,
      pools: [
        used(80, 100),
        { state: 'empty', ...free },
        { state: 'purged', ...free },
        { state: 'fresh', ...free },
      ],
    },
  ],
  spans: [
    { kind: 'large', address: 0x200000, bytes: 3 * 16384, requested: 40000 },
    { kind: 'cached', address: 0x20c000, bytes: 4096, requested: null },
    { kind: 'large', address: 0x20d000, bytes: 2 * 16384, requested: 32768 },
  ],
};

/** SVG text escapes < and >. */
function escaped(text: string): string {
  return text.replace('<', '&lt;').replace('>', '&gt;');
}

const cells = (svg: string, category: string) => cellCount(svg, category);

test('each pool is one cell of its category; large spans follow as wide as the pools they would make', async () => {
  const svg = await renderHeapMap('test map', [{ title: 'now', map: MAP }]);
  expect(svg.startsWith('<svg')).toBe(true);
  expect(cells(svg, 'used <25%')).toBe(1);
  expect(cells(svg, 'used 25-50%')).toBe(1);
  expect(cells(svg, 'used 50-75%')).toBe(1);
  expect(cells(svg, 'used >=75%')).toBe(1);
  expect(cells(svg, 'full')).toBe(1);
  expect(cells(svg, 'empty (resident)')).toBe(1);
  expect(cells(svg, 'purged (given back)')).toBe(1);
  expect(cells(svg, 'never carved')).toBe(1);
  // 3 pools' worth, then one cell for a span smaller than a pool, then 2: 6 cells, in rows of 4.
  expect(cells(svg, 'large block')).toBe(5);
  expect(cells(svg, 'cached large span')).toBe(1);
  expect(svg).toContain('>large 1<');
  expect(svg).toContain('>large 2<');
  // Rows are named by address, in address order; the legend lists every category with its colour.
  expect(svg.indexOf('arena at 0x100000')).toBeLessThan(svg.indexOf('arena at 0x110000'));
  for (const [category, colour] of MAP_CATEGORIES) {
    expect(svg).toContain(escaped(category));
    expect(svg.toLowerCase()).toContain(colour);
  }
  expect(svg).toContain('now: 2 arenas, 5 pools in use, 1 empty, 1 purged, 2 large blocks');
});

test('a pool is binned by its fill; the caption counts in the singular', () => {
  expect(poolCategory(used(24, 100))).toBe('used <25%');
  expect(poolCategory(used(25, 100))).toBe('used 25-50%');
  expect(poolCategory(used(74, 100))).toBe('used 50-75%');
  expect(poolCategory(used(99, 100))).toBe('used >=75%');
  expect(poolCategory(used(100, 100))).toBe('full');
  const one: HeapMap = { ...MAP, arenas: [MAP.arenas[1]!], spans: [MAP.spans[0]!] };
  expect(panelCaption({ title: 't', map: one })).toBe(
    't: 1 arena, 1 pool in use, 1 empty, 1 purged, 1 large block',
  );
});

test('many large spans are squashed into at most 16 rows, the label saying how many pools a cell holds', async () => {
  const spans = Array.from({ length: 200 }, (_, i) => ({
    kind: 'large' as const,
    address: 0x400000 + i * 65536,
    bytes: 65536,
    requested: 65536,
  }));
  const svg = await renderHeapMap('many', [{ title: 'now', map: { ...MAP, spans } }]);
  // 200 spans of 4 pools each = 800 pools' worth; 16 rows of 4 cells hold 64, so a cell stands for 13 pools,
  // and the 800 take ceil(800 / 13) = 62 cells: 16 rows, the last one half full.
  // (Axis labels are cut to fit: 'large 1 (1 cell: 13 …'.)
  expect(svg).toMatch(/>large 1 \(1 cell: 13 /);
  expect(svg).toMatch(/>large 16 \(1 cell: 13 /);
  expect(svg).not.toContain('large 17 ');
  expect(cells(svg, 'large block')).toBe(62);
  await expect(renderHeapMap('none', [])).rejects.toThrow(/no map/);
});

test('a real heap: two panels, the second after the survivors were freed, written to a file', async () => {
  const heap = new Heap({ reserve: 256 * 2 ** 20, policy: 'purge' });
  const dir = mkdtempSync(join(tmpdir(), 'pymalloc-map-'));
  try {
    const ptrs: number[] = [];
    for (let i = 0; i < 20000; i++) ptrs.push(heap.malloc(16 + ((i * 37) % 496)));
    const big = heap.malloc(200_000);
    const before = heapMap(heap);
    const usedBefore = heap.stats().pools.used;
    for (const p of ptrs) heap.free(p);
    heap.free(big);
    heap.trim();
    const after = heapMap(heap);
    const file = join(dir, 'map.svg');
    await writeHeapMap(file, 'real', [
      { title: 'built', map: before },
      { title: 'freed', map: after },
    ]);
    const svg = readFileSync(file, 'utf8');
    expect(svg).toContain(panelCaption({ title: 'built', map: before }));
    expect(svg).toContain(panelCaption({ title: 'freed', map: after }));
    const inUse = (panel: number) => USED_CATEGORIES.reduce((n, c) => n + cellCount(svg, c, panel), 0);
    expect(inUse(0)).toBe(usedBefore);
    expect(inUse(1)).toBe(0);
    // The large block: its pages, in pools' worth.
    const { pageSize, poolSize } = heap.geometry;
    expect(cellCount(svg, 'large block', 0)).toBe(
      Math.ceil((Math.ceil(200_000 / pageSize) * pageSize) / poolSize),
    );
    expect(cellCount(svg, 'large block', 1)).toBe(0);
    // No accessibility label per cell (the file would grow by megabytes on a big heap).
    expect(svg).not.toContain('aria-roledescription="rect mark"');
    heap.check();
  } finally {
    heap.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
});
