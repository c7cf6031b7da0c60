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
});
