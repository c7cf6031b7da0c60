/**
 * What `pymalloc demo` prints, in 80 columns: two tables (phase × policy → this process's RSS; and the heap's
 * resident bytes, with the bytes in use, which all policies share), a few sentences on what each policy did and
 * where the limit is, and the last line `returned X% of freed memory to the OS`; the chart of RSS over the run
 * for `--plot`, and the panels of each policy's heap map for `--map`.
 */
import type { ReturnPolicy } from '../core';
import type { LineChart } from '../report/chart';
import { wrap } from '../report/format';
import type { MapPanel } from '../report/heap-map-chart';
import type { DemoReport, FragmentationRecord, PhaseId, PhaseRecord, PolicyRun } from './demo';

const MiB = 2 ** 20;

const POLICY_TITLES: Record<ReturnPolicy, string> = {
  never: 'never (Python 2.4)',
  cpython: 'cpython (2.5+)',
  purge: 'purge (default)',
};

function mib(bytes: number | null | undefined): string {
  return bytes === null || bytes === undefined ? '-' : (bytes / MiB).toFixed(1);
}

function count(n: number): string {
  return n.toLocaleString('en-US');
}

/** `1 arena`, `42 arenas`. */
function arenas(n: number): string {
  return `${count(n)} arena${n === 1 ? '' : 's'}`;
}

function phase(run: PolicyRun, id: PhaseId): PhaseRecord | undefined {
  return run.phases.find((p) => p.phase === id);
}

interface Row {
  label: string;
  /** Per run: [RSS, heap resident] cells. */
  cells: Array<[string, string]>;
  inUse: string;
}

function rows(report: DemoReport): Row[] {
  const { runs } = report;
  const fromPhase = (label: string, id: PhaseId): Row => ({
    label,
    cells: runs.map((r) => {
      const p = phase(r, id);
      return [mib(p?.rssBytes), mib(p?.residentBytes)];
    }),
    inUse: mib(runs.map((r) => phase(r, id)).find((p) => p)?.bytesInUse),
  });
  const objects = `${count(report.objects)} objects`;
  return [
    fromPhase('baseline', 'baseline'),
    fromPhase(`built (${objects})`, 'built'),
    fromPhase('freed them all', 'freed'),
    fromPhase('simulator running: this process', 'simulator'),
    {
      label: 'simulator running: the simulator',
      cells: runs.map((r) => [mib(r.simulator.peakRssBytes), mib(r.simulator.heapResidentBytes)]),
      inUse: '-',
    },
    {
      label: 'simulator running: both processes',
      cells: runs.map((r) => [mib(r.simulator.parentRssBytes + r.simulator.peakRssBytes), '-']),
      inUse: '-',
    },
    fromPhase(`built again, kept every ${report.keepOneIn}th object`, 'spread'),
    fromPhase('  then heap.trim() (purge only)', 'spread-trimmed'),
    fromPhase(`built again, kept 1 run of ${report.runLength} in ${report.keepOneIn}`, 'clustered'),
    fromPhase('  then heap.trim() (purge only)', 'clustered-trimmed'),
  ];
}

/** The two tables, in MiB: this process's RSS under each policy, then the heap's resident bytes. */
export function formatDemoTable(report: DemoReport): string {
  const body = rows(report);
  const labelWidth = Math.max(20, ...body.map((r) => r.label.length));
  const cellWidth = 8;
  const line = (label: string, cells: readonly string[]) =>
    [label.padEnd(labelWidth), ...cells.map((c) => c.padStart(cellWidth))].join('  ').trimEnd();
  const policies = report.runs.map((r) => r.policy);
  const rss = [
    line('process RSS, MiB', policies),
    ...body.map((r) =>
      line(
        r.label,
        r.cells.map(([cell]) => cell),
      ),
    ),
  ];
  const heap = [
    line('heap resident, MiB', [...policies, 'in use']),
    ...body
      .filter((r) => r.cells.some(([, cell]) => cell !== '-'))
      .map((r) => line(r.label, [...r.cells.map(([, cell]) => cell), r.inUse])),
  ];
  return [...rss, '', ...heap].join('\n');
}

/** Word-wraps a paragraph to 80 columns (see lib/report/format.ts). */
export { wrap };

function fragmentationParagraph(
  report: DemoReport,
  pattern: FragmentationRecord['pattern'],
): string | undefined {
  const get = (policy: ReturnPolicy) =>
    report.runs.find((r) => r.policy === policy)?.fragmentation.find((f) => f.pattern === pattern);
  const cp = get('cpython');
  const pu = get('purge');
  const never = get('never');
  if (!cp || !pu || !never) return undefined;
  const what =
    pattern === 'spread'
      ? `Kept every ${report.keepOneIn}th object`
      : `Kept 1 run of ${report.runLength} consecutive objects in ${report.keepOneIn}`;
  const cpython =
    cp.arenasAfter === cp.arenasBefore
      ? `every arena held a survivor, so cpython gave back none of its ${arenas(cp.arenasBefore)}`
      : `cpython gave back the ${count(cp.arenasBefore - cp.arenasAfter)} of ${arenas(cp.arenasBefore)} ` +
        `left wholly empty`;
  const trim =
    pu.trimmedBytes === null
      ? ''
      : ` (by itself, ${report.purgeDelayMs} ms after they were freed, then ` +
        `${mib(pu.trimmedBytes)} MiB through heap.trim())`;
  return (
    `${what} (${count(cp.survivors)} objects, ${mib(cp.survivingBytes)} MiB): never kept all ` +
    `${arenas(never.arenasAfter)}; ${cpython}; purge also gave back ${count(pu.poolsPurged)} empty pools ` +
    `(${mib(pu.poolsPurged * report.poolSize)} MiB) inside the ${arenas(pu.arenasAfter)} still live${trim}. ` +
    `The other ${count(pu.poolsUsed)} pools (${mib(pu.poolsUsed * report.poolSize)} MiB) each hold a survivor: ` +
    'an allocator that cannot move objects cannot give those back.'
  );
}

/** The paragraphs under the table: what each policy did after the full free and after each fragmentation. */
export function explainDemo(report: DemoReport): string[] {
  const run = (p: ReturnPolicy) => report.runs.find((r) => r.policy === p);
  const never = run('never');
  const cpython = run('cpython');
  const purge = run('purge');
  if (!never || !cpython || !purge) return [];
  const built = phase(never, 'built')?.arenas ?? 0;
  const keptCpython = phase(cpython, 'freed')?.arenas ?? 0;
  const keptPurge = phase(purge, 'freed')?.arenas ?? 0;
  const allBut = (n: number) => (n === 0 ? 'all' : n === 1 ? 'all but one' : `all but ${count(n)}`);
  const kept =
    keptCpython === keptPurge
      ? `cpython and purge each gave back ${allBut(keptCpython)}`
      : `cpython gave back ${allBut(keptCpython)}, purge ${allBut(keptPurge)}`;
  const guard =
    keptCpython !== 1
      ? ''
      : keptPurge === 0
        ? ' (cpython keeps one arena against thrashing; purge gives that one back too once its delay has passed)'
        : ' (one arena is kept against thrashing)';
  const paragraphs = [
    `After the full free: never kept all ${arenas(built)}, so this process and the simulator needed ` +
      `${mib(never.simulator.parentRssBytes + never.simulator.peakRssBytes)} MiB together (what starved ` +
      `Evan Jones's simulator); ${kept}${guard}.`,
    fragmentationParagraph(report, 'spread'),
    fragmentationParagraph(report, 'clustered'),
  ];
  return paragraphs.flatMap((p) => (p === undefined ? [] : wrap(p)));
}

/** The text `pymalloc demo` prints, ending with `returned X% of freed memory to the OS`. */
export function formatDemoReport(report: DemoReport): string {
  const mean = (report.requestedBytes / report.objects).toFixed(0);
  const intro =
    `Each policy in its own heap: ${count(report.objects)} small objects (16-512 bytes, mean ${mean}), ` +
    `${mib(report.requestedBytes)} MiB per build, in ${report.poolSize / 1024} KiB pools and ` +
    `${report.arenaSize / MiB} MiB arenas. RSS: this process (statm); heap: the heap's resident bytes (mincore); ` +
    'in use: the bytes of the live blocks (heap.stats()).';
  return [
    ...wrap(intro),
    '',
    formatDemoTable(report),
    '',
    ...explainDemo(report),
    '',
    `returned ${report.returnedPercent.toFixed(1)}% of freed memory to the OS`,
  ].join('\n');
}

/** The chart for --plot: this process's RSS under each policy, and the simulator's, over the run. */
export function demoChart(report: DemoReport): LineChart {
  const series = report.runs.map((r) => ({ name: POLICY_TITLES[r.policy], points: r.samples }));
  const def = report.runs.find((r) => r.policy === report.defaultPolicy);
  if (def && def.simulatorSamples.length > 0) {
    series.push({ name: 'simulator (child)', points: def.simulatorSamples });
  }
  return {
    title: `pymalloc demo: RSS under each return policy (${mib(report.requestedBytes)} MiB of small objects)`,
    xLabel: 'MiB allocated and freed so far',
    yLabel: 'RSS (MiB)',
    series,
    width: 720,
    height: 340,
    markers: report.markers,
  };
}

/** The heap map of one policy's run for `--map`: a panel per fragmentation pattern; none without maps. */
export function demoMapPanels(report: DemoReport, run: PolicyRun): { title: string; panels: MapPanel[] } {
  const panels: MapPanel[] = run.maps
    ? [
        { title: `kept every ${report.keepOneIn}th object`, map: run.maps.spread },
        { title: `kept 1 run of ${report.runLength} in ${report.keepOneIn}`, map: run.maps.clustered },
      ]
    : [];
  const trimmed = run.policy === 'purge' ? ', after heap.trim()' : '';
  return {
    title: `pymalloc demo: the heap under ${POLICY_TITLES[run.policy]} after fragmentation${trimmed}`,
    panels,
  };
}
