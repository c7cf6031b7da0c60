/**
 * SVG charts through Vega-Lite, rendered headless by Vega's SVG renderer: no browser, no canvas. Line charts
 * (RSS over time and the like) for `pymalloc demo --plot`, `pymalloc replay --plot` and `npm run bench`; and
 * renderVegaLite, which lib/report/heap-map-chart.ts draws the heap map with. Vega and Vega-Lite are optional
 * peer dependencies, loaded by ./vega.ts (through loadVegaLibs) only when a chart is asked for.
 */
import { writeFileSync } from 'node:fs';
import { loadVega } from './vega';

export interface ChartSeries {
  /** Legend label. */
  name: string;
  /** [x, y] points in order of x. */
  points: ReadonlyArray<readonly [number, number]>;
  /** The y-axis title of the panel this series is drawn in (default: the chart's yLabel, one panel). */
  panel?: string;
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

/** Vega and Vega-Lite, loaded on first use (./vega.ts): they are needed only when a chart is asked for. */
function loadVegaLibs(): { vega: typeof import('vega'); vl: typeof import('vega-lite') } {
  const { vega, vegaLite } = loadVega();
  return { vega, vl: vegaLite };
}

/** Compiles a Vega-Lite spec and renders it to an SVG document with Vega's headless SVG renderer. */
export async function renderVegaLite(spec: Record<string, unknown>): Promise<string> {
  const { vega, vl } = loadVegaLibs();
  const full = { $schema: 'https://vega.github.io/schema/vega-lite/v5.json', background: 'white', ...spec };
  // biome-ignore lint/suspicious/noExplicitAny: Vega-Lite's TopLevelSpec type is stricter than this literal.
  const compiled = vl.compile(full as any).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** One panel's layers: the lines of `series` on the y axis `yLabel`, and the markers. */
function panelLayers(
  series: readonly ChartSeries[],
  xLabel: string,
  yLabel: string,
  order: readonly string[],
  markers: LineChart['markers'],
  zero = true,
): unknown[] {
  const values: Array<{ x: number; y: number; series: string }> = [];
  for (const s of series) {
    for (const [x, y] of s.points) {
      if (!Number.isFinite(x) || !Number.isFinite(y)) continue;
      values.push({ x, y, series: s.name });
    }
  }
  const line = {
    data: { values },
    mark: { type: 'line', interpolate: 'step-after', strokeWidth: 1.5 },
    encoding: {
      x: { field: 'x', type: 'quantitative', title: xLabel },
      y: { field: 'y', type: 'quantitative', title: yLabel, scale: { zero } },
      color: { field: 'series', type: 'nominal', title: null, sort: order, scale: { domain: order } },
    },
  };
  const layers: unknown[] = [line];
  if (markers && markers.length > 0) {
    const marks = markers.map((m) => ({ x: m.x, label: m.label }));
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
  return layers;
}

/**
 * Renders a multi-series line chart to an SVG document. Series with a `panel` are drawn in panels of their
 * own, stacked under one another on the same x axis, each with a y axis scaled to what it shows (from its
 * least value, not from zero: so that a small line, or a small change, is not squashed flat by a large one).
 */
export async function renderLineChart(chart: LineChart): Promise<string> {
  if (chart.series.length === 0) throw new Error('renderLineChart: no series to plot');
  const order = chart.series.map((s) => s.name);
  const width = chart.width ?? 640;
  const height = chart.height ?? 320;
  const panels = [...new Set(chart.series.map((s) => s.panel ?? chart.yLabel))];
  if (panels.length === 1) {
    return renderVegaLite({
      title: chart.title,
      width,
      height,
      layer: panelLayers(chart.series, chart.xLabel, panels[0]!, order, chart.markers),
    });
  }
  return renderVegaLite({
    title: chart.title,
    vconcat: panels.map((panel) => ({
      width,
      height: Math.round(height / panels.length),
      layer: panelLayers(
        chart.series.filter((s) => (s.panel ?? chart.yLabel) === panel),
        chart.xLabel,
        panel,
        order,
        chart.markers,
        false,
      ),
    })),
    resolve: { scale: { x: 'shared', color: 'shared' } },
  });
}

/** Renders a chart and writes it to `file`. */
export async function writeLineChart(file: string, chart: LineChart): Promise<void> {
  writeFileSync(file, await renderLineChart(chart));
}
