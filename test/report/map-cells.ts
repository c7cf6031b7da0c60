/** Counts the cells of a heap map's SVG (lib/report/heap-map-chart.ts) by category, from their colours. */
import { MAP_CATEGORIES } from '../../lib/report/heap-map-chart';

/** The cells of `category` in `svg`, or in its panel `panel` (0-based) when given. */
export function cellCount(svg: string, category: string, panel?: number): number {
  const colour = MAP_CATEGORIES.find(([c]) => c === category)?.[1];
  if (colour === undefined) throw new Error(`no map category ${category}`);
  // The legend's symbols (one of each colour) come after every panel's cells.
  let marks = svg.slice(0, svg.indexOf('role-legend'));
  if (panel !== undefined) {
    const start = marks.indexOf(`concat_${panel}_marks`);
    const end = marks.indexOf(`concat_${panel + 1}_marks`);
    if (start < 0) throw new Error(`no panel ${panel}`);
    marks = marks.slice(start, end < 0 ? undefined : end);
  }
  return marks.split(`fill="${colour}"`).length - 1;
}

/** The categories of used pools, emptiest first. */
export const USED_CATEGORIES = ['used <25%', 'used 25-50%', 'used 50-75%', 'used >=75%', 'full'];

/** Every pool cell (not the large spans') of a panel. */
export function poolCells(svg: string, panel?: number): number {
  return [...USED_CATEGORIES, 'empty (resident)', 'purged (given back)', 'never carved'].reduce(
    (n, c) => n + cellCount(svg, c, panel),
    0,
  );
}
