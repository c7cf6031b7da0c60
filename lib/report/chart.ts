/**
 * SVG line charts (RSS over time and the like) through Vega-Lite, rendered headless by Vega's SVG renderer:
 * no browser, no canvas. Used by `pymalloc demo --plot`, `pymalloc replay --plot` and `npm run bench`.
 *
 * Vega and Vega-Lite are optional peer dependencies, loaded by ./vega.ts only when a chart is asked for.
 */
import { writeFileSync } from 'node:fs';
import { loadVega } from './vega';

export interface ChartSeries {
  /** Legend label. */
  name: string;
  /** [x, y] points in order of x. */
  points: ReadonlyArray<readonly [number, number]>;
}

export interface LineChart {
  title: string;
  xLabel: string;
  yLabel: string;
  series: ChartSeries[];
  /** Plot area in pixels. @defaultValue 640 × 320 */
  width?: number;
  height?: number;
  /** Optional vertical rules with labels, e.g. phase boundaries. */
  markers?: ReadonlyArray<{ x: number; label: string }>;
}

/** Renders a multi-series line chart to an SVG document. */
export async function renderLineChart(chart: LineChart): Promise<string> {
  if (chart.series.length === 0) throw new Error('renderLineChart: no series to plot');
  const { vega, vegaLite: vl } = loadVega();
  const values: Array<{ x: number; y: number; series: string }> = [];
  for (const s of chart.series) {
    for (const [x, y] of s.points) {
      if (!Number.isFinite(x) || !Number.isFinite(y)) continue;
      values.push({ x, y, series: s.name });
    }
  }
  const line = {
    data: { values },
    mark: { type: 'line', interpolate: 'step-after', strokeWidth: 1.5 },
    encoding: {
      x: { field: 'x', type: 'quantitative', title: chart.xLabel },
      y: { field: 'y', type: 'quantitative', title: chart.yLabel },
      color: {
        field: 'series',
        type: 'nominal',
        title: null,
        sort: chart.series.map((s) => s.name),
      },
    },
  };
  const layers: unknown[] = [line];
  if (chart.markers && chart.markers.length > 0) {
    const marks = chart.markers.map((m) => ({ x: m.x, label: m.label }));
    layers.push(
      {
        data: { values: marks },
        mark: { type: 'rule', strokeDash: [4, 4], color: '#888' },
        encoding: { x: { field: 'x', type: 'quantitative' } },
      },
      {
        data: { values: marks },
        mark: { type: 'text', align: 'left', baseline: 'top', dx: 3, dy: 3, color: '#555', fontSize: 10 },
        encoding: { x: { field: 'x', type: 'quantitative' }, y: { value: 0 }, text: { field: 'label' } },
      },
    );
  }
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: chart.title,
    width: chart.width ?? 640,
    height: chart.height ?? 320,
    background: 'white',
    layer: layers,
  };
  // biome-ignore lint/suspicious/noExplicitAny: Vega-Lite's TopLevelSpec type is stricter than this literal.
  const compiled = vl.compile(spec as any).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Renders a chart and writes it to `file`. */
export async function writeLineChart(file: string, chart: LineChart): Promise<void> {
  writeFileSync(file, await renderLineChart(chart));
}
