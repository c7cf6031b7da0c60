/**
 * The picture of a heap map (lib/heap-map.ts) as an SVG document, drawn with Vega-Lite's rect marks (a heat map)
 * and rendered by Vega like the line charts of chart.ts: every arena a row, every pool a cell coloured by its
 * state (and, for a used pool, by how full it is); then the large blocks (and cached large spans) in address
 * order, each as many cells as the pools its pages would make, in rows as wide as an arena. Several maps (the peak and after free-all, say) are panels
 * stacked under one another with one legend.
 */
import { writeFileSync } from 'node:fs';
import { countPools, type HeapMap, type PoolCell } from '../heap-map';
import { renderVegaLite } from './chart';
import { human } from './format';

/** The legend's entries in order, with their colours: blues for used pools (darker = fuller). */
export const MAP_CATEGORIES: ReadonlyArray<readonly [string, string]> = [
  ['used <25%', '#9ecae1'],
  ['used 25-50%', '#4292c6'],
  ['used 50-75%', '#2171b5'],
  ['used >=75%', '#08519c'],
  ['full', '#08306b'],
  ['empty (resident)', '#fd8d3c'],
  ['purged (given back)', '#d9d9d9'],
  ['never carved', '#f7f7f7'],
  ['large block', '#807dba'],
  ['cached large span', '#dadaeb'],
];

/** The rows the large spans take at most (past that, a cell stands for several pools' worth of pages). */
const MAX_SPAN_ROWS = 16;

export interface MapPanel {
  /** What the map shows, e.g. 'at the peak'. */
  title: string;
  map: HeapMap;
}

/** The legend category of a pool. */
export function poolCategory(p: PoolCell): string {
  switch (p.state) {
    case 'full':
      return 'full';
    case 'empty':
      return 'empty (resident)';
    case 'purged':
      return 'purged (given back)';
    case 'fresh':
      return 'never carved';
    default:
      return p.fill < 0.25
        ? 'used <25%'
        : p.fill < 0.5
          ? 'used 25-50%'
          : p.fill < 0.75
            ? 'used 50-75%'
            : 'used >=75%';
  }
}

interface Cell {
  row: string;
  order: number;
  col: number;
  category: string;
}

/** One panel's cells: arenas in address order, then the large spans. */
function cells(map: HeapMap): Cell[] {
  const out: Cell[] = [];
  let order = 0;
  for (const a of map.arenas) {
    // Labelled by where the arena lies in the reservation (rows are in address order).
    const row = `arena at 0x${a.address.toString(16)}`;
    a.pools.forEach((p, col) => {
      out.push({ row, order, col, category: poolCategory(p) });
    });
    order++;
  }
  // The large spans, in address order, one after the other in rows as wide as an arena: each covers as many
  // cells as the pools its bytes would make (at least one), or 1/k of that when they would need more than
  // MAX_SPAN_ROWS rows (a cell shared by a large block and a cached span is drawn as the large block).
  const units = map.spans.map((s) => Math.max(1, Math.ceil(s.bytes / map.poolSize)));
  const need = units.reduce((n, u) => n + u, 0);
  const k = Math.max(1, Math.ceil(need / (MAX_SPAN_ROWS * map.poolsPerArena)));
  const label = (r: number) => (k === 1 ? `large ${r + 1}` : `large ${r + 1} (1 cell: ${k} pools)`);
  const spanCells: string[] = [];
  let start = 0;
  map.spans.forEach((s, i) => {
    const end = start + units[i]!;
    const category = s.kind === 'large' ? 'large block' : 'cached large span';
    for (let c = Math.floor(start / k); c <= Math.floor((end - 1) / k); c++) {
      if (spanCells[c] !== 'large block') spanCells[c] = category;
    }
    start = end;
  });
  spanCells.forEach((category, c) => {
    const r = Math.floor(c / map.poolsPerArena);
    out.push({ row: label(r), order: order + r, col: c % map.poolsPerArena, category });
  });
  return out;
}

/** The caption of a panel: its title and the counts of its pools. */
export function panelCaption(panel: MapPanel): string {
  const c = countPools(panel.map);
  const arenas = panel.map.arenas.length;
  const large = panel.map.spans.filter((s) => s.kind === 'large').length;
  return (
    `${panel.title}: ${arenas} arena${arenas === 1 ? '' : 's'}, ${c.used + c.full} pool${c.used + c.full === 1 ? '' : 's'} in use, ` +
    `${c.empty} empty, ${c.purged} purged, ${large} large block${large === 1 ? '' : 's'}`
  );
}

/** Renders the panels to one SVG document. */
export async function renderHeapMap(title: string, panels: readonly MapPanel[]): Promise<string> {
  if (panels.length === 0) throw new Error('renderHeapMap: no map to draw');
  const poolsPerArena = Math.max(...panels.map((p) => p.map.poolsPerArena));
  const xStep = Math.max(2, Math.min(12, Math.floor(720 / poolsPerArena)));
  const domain = MAP_CATEGORIES.map(([c]) => c);
  const range = MAP_CATEGORIES.map(([, colour]) => colour);
  const specs = panels.map((panel) => {
    const values = cells(panel.map);
    const rows = new Set(values.map((v) => v.row)).size;
    const yStep = rows === 0 ? 10 : Math.max(1, Math.min(12, Math.floor(720 / rows)));
    const labelled = yStep >= 8;
    return {
      title: {
        text: panelCaption(panel),
        subtitle:
          `rows: arenas of ${human(panel.map.arenaSize)} in address order` +
          (panel.map.spans.length > 0 ? ', then the large blocks' : ''),
        fontSize: 12,
        anchor: 'start',
      },
      data: { values },
      width: { step: xStep },
      height: rows === 0 ? 20 : { step: yStep },
      mark: {
        type: 'rect',
        // No accessibility label per cell: tens of thousands of them would make the file megabytes long.
        aria: false,
        ...(xStep >= 6 && yStep >= 6 ? { stroke: 'white', strokeWidth: 0.5 } : {}),
      },
      encoding: {
        x: {
          field: 'col',
          type: 'ordinal',
          title: `pool (${human(panel.map.poolSize)} each) in address order`,
          scale: { domain: Array.from({ length: poolsPerArena }, (_, i) => i), paddingInner: 0 },
          axis: {
            values: Array.from({ length: Math.ceil(poolsPerArena / 8) }, (_, i) => i * 8),
            labelAngle: 0,
          },
        },
        y: {
          field: 'row',
          type: 'ordinal',
          title: null,
          sort: { field: 'order', op: 'min' },
          scale: { paddingInner: 0 },
          axis: labelled ? { labelFontSize: Math.min(10, yStep) } : { labels: false, ticks: false },
        },
        color: {
          field: 'category',
          type: 'nominal',
          title: 'pool',
          scale: { domain, range },
          legend: { orient: 'right', symbolStrokeColor: '#999', symbolStrokeWidth: 0.5 },
        },
      },
    };
  });
  return renderVegaLite({
    title: { text: title, anchor: 'start' },
    vconcat: specs,
    spacing: 24,
    resolve: { scale: { color: 'shared' }, legend: { color: 'shared' } },
  });
}

/** Renders the panels and writes the SVG document to `file`. */
export async function writeHeapMap(file: string, title: string, panels: readonly MapPanel[]): Promise<void> {
  writeFileSync(file, await renderHeapMap(title, panels));
}
