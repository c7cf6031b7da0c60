import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderLineChart, writeLineChart } from '../../lib/report/chart';

describe('renderLineChart', () => {
  test('draws one line per series, the legend, the axes and the markers', async () => {
    const svg = await renderLineChart({
      title: 'RSS over time',
      xLabel: 'operations',
      yLabel: 'MiB',
      series: [
        {
          name: 'purge',
          points: [
            [0, 10],
            [1, 200],
            [2, 12],
          ],
        },
        {
          name: 'never',
          points: [
            [0, 10],
            [1, 200],
            [2, 190],
          ],
        },
      ],
      markers: [{ x: 1.5, label: 'free all' }],
    });
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('RSS over time');
    for (const text of ['purge', 'never', 'operations', 'MiB', 'free all']) expect(svg).toContain(text);
    // One line mark per series, one rule and one label per marker.
    expect(svg.match(/class="mark-line role-mark/g)).toHaveLength(2);
    expect(svg.match(/class="mark-rule role-mark/g)).toHaveLength(1);
  });

  test('skips points that are not finite and refuses an empty chart', async () => {
    const svg = await renderLineChart({
      title: 't',
      xLabel: 'x',
      yLabel: 'y',
      series: [
        {
          name: 'a',
          points: [
            [0, 1],
            [1, Number.NaN],
            [2, 3],
          ],
        },
      ],
    });
    expect(svg).not.toContain('NaN');
    await expect(renderLineChart({ title: 't', xLabel: 'x', yLabel: 'y', series: [] })).rejects.toThrow(
      /no series/,
    );
  });

  test('writeLineChart writes the SVG file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pymalloc-chart-'));
    try {
      const file = join(dir, 'c.svg');
      await writeLineChart(file, {
        title: 'T',
        xLabel: 'x',
        yLabel: 'y',
        series: [{ name: 's', points: [[0, 1]] }],
      });
      expect(readFileSync(file, 'utf8')).toMatch(/^<svg[\s\S]*<\/svg>$/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('series with panels are drawn in panels of their own, each y axis scaled to its own values', async () => {
    const svg = await renderLineChart({
      title: 'memory',
      xLabel: 'operations',
      yLabel: 'MiB',
      series: [
        {
          name: 'process RSS',
          panel: 'RSS (MiB)',
          points: [
            [0, 60],
            [1, 66],
            [2, 64],
          ],
        },
        {
          name: 'heap resident',
          panel: 'heap (MiB)',
          points: [
            [0, 0],
            [1, 5],
            [2, 1],
          ],
        },
      ],
      markers: [{ x: 1.5, label: 'free-all' }],
    });
    // One line mark in each panel, both axis titles, a marker rule in each.
    expect(svg.match(/class="mark-line role-mark concat_0/g)).toHaveLength(1);
    expect(svg.match(/class="mark-line role-mark concat_1/g)).toHaveLength(1);
    expect(svg.match(/class="mark-rule role-mark/g)).toHaveLength(2);
    for (const text of ['RSS (MiB)', 'heap (MiB)', 'process RSS', 'heap resident'])
      expect(svg).toContain(text);
    // The RSS panel's axis starts near its values (60), not at 0: it has a tick label of 60 and none of 0...
    const [rssPanel, heapPanel] = svg.split('concat_1');
    const ticks = (part: string) => [...part.matchAll(/role-axis-label[\s\S]*?<\/g>/g)].map((m) => m[0]);
    expect(ticks(rssPanel!).join('')).toMatch(/>60</);
    expect(ticks(rssPanel!).join('')).not.toMatch(/>0</);
    // ...while the heap's own line fills its panel from 0 to 5.
    expect(ticks(heapPanel!).join('')).toMatch(/>0</);
    expect(ticks(heapPanel!).join('')).toMatch(/>5</);
  });
});
