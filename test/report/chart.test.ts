import { renderLineChart } from '../../lib/report/chart';
test('chart', async () => {
  const s = await renderLineChart({ title: 'T', xLabel: 'x', yLabel: 'y', series: [{ name: 'a', points: [[0, 1], [1, 2]] }], markers: [{ x: 0.5, label: 'free' }] });
  expect(s.startsWith('<svg')).toBe(true);
  expect(s).toContain('free');
});
