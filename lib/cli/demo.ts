/**
 * `pymalloc demo` (`npm start`): the PyCon 2005 story on real OS pages — build a big structure of small objects,
 * free it, run a simulator beside it, then fragment it — under the 'never', 'cpython' and 'purge' policies
 * (lib/demo/). Exits 1 when the default policy gave back less than 95% of the freed memory after the full free.
 * `--plot` draws RSS over the run; `--map DIR` writes one heap map per policy into DIR (never.svg, cpython.svg,
 * purge.svg), each with a panel per fragmentation pattern.
 */

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { DEFAULT_OBJECTS, type DemoReport, MAX_OBJECTS, MIN_OBJECTS, runDemo } from '../demo/demo';
import { demoChart, demoMapPanels, formatDemoReport } from '../demo/report';
import { writeLineChart } from '../report/chart';
import { wrap } from '../report/format';
import { writeHeapMap } from '../report/heap-map-chart';
import { startProgress } from './progress';
import { checkChartLibraries, checkOutputDir, checkOutputFile, parseCount, quote, UsageError } from './usage';

/** The least share of the freed memory the default policy must give back. */
export const MIN_RETURNED_PERCENT = 95;

export interface DemoCliOptions {
  objects: string;
  json?: boolean;
  plot?: string;
  map?: string;
}

function parseObjects(text: string): number {
  const n = parseCount(text, '--objects');
  if (n < MIN_OBJECTS || n > MAX_OBJECTS) {
    throw new UsageError(
      `--objects: expected a whole number from ${MIN_OBJECTS} to ${MAX_OBJECTS} (fewer make too few arenas ` +
        `for the ${MIN_RETURNED_PERCENT}% verdict), got ${quote(text)}`,
    );
  }
  return n;
}

/** Runs the demo and prints it; returns the exit status. */
export async function runDemoCommand(options: DemoCliOptions): Promise<number> {
  const objects = parseObjects(options.objects);
  if (options.plot !== undefined) checkOutputFile('--plot', options.plot);
  if (options.plot !== undefined) checkChartLibraries('--plot');
  if (options.map !== undefined) checkChartLibraries('--map');
  if (options.map !== undefined) checkOutputDir('--map', options.map);
  const report: DemoReport = await runDemo({
    objects,
    progress: (label, totalMiB) => startProgress(label, totalMiB, 'MiB'),
    maps: options.map !== undefined,
  });
  if (options.plot !== undefined) await writeLineChart(options.plot, demoChart(report));
  if (options.map !== undefined) {
    mkdirSync(options.map, { recursive: true });
    for (const run of report.runs) {
      const file = join(options.map, `${run.policy}.svg`);
      const { title, panels } = demoMapPanels(report, run);
      await writeHeapMap(file, title, panels);
    }
  }
  // The maps are pictures, not numbers: --json leaves them out.
  const numbers = { ...report, runs: report.runs.map(({ maps: _maps, ...run }) => run) };
  process.stdout.write(options.json ? `${JSON.stringify(numbers)}\n` : `${formatDemoReport(report)}\n`);
  if (report.returnedPercent < MIN_RETURNED_PERCENT) {
    process.stderr.write(
      `pymalloc demo: the ${report.defaultPolicy} policy gave back only ${report.returnedPercent.toFixed(1)}% ` +
        `of the freed memory to the OS (at least ${MIN_RETURNED_PERCENT}% expected; the heap itself gave back ` +
        `${report.runs.find((r) => r.policy === report.defaultPolicy)!.heapReturnedPercent.toFixed(1)}% of its ` +
        `resident memory)\n`,
    );
    return 1;
  }
  return 0;
}

const paragraph = (text: string) => wrap(text, 80, 0).join('\n');
const HELP = `
${paragraph(
  `Each policy runs in its own heap, one after the other: build ${DEFAULT_OBJECTS.toLocaleString('en-US')} ` +
    'objects of 16-512 bytes (about 256 MiB), free them all, run a simulator process that allocates as much, ' +
    'then build again and keep one object in 64 (every 64th, then one run of 512 in 64) to show what ' +
    'fragmentation pins.',
)}
  never     nothing goes back to the OS (Python 2.4)
  cpython   wholly empty arenas go back (Python 2.5 and later)
  purge     the default: also the empty pools inside live arenas

${paragraph(
  "The last line is 'returned X% of freed memory to the OS' for the default policy after the full free: " +
    '(RSS built - RSS freed) / (RSS built - RSS baseline). The exit status is 1 when that is below ' +
    `${MIN_RETURNED_PERCENT}%. Fewer than ${MIN_OBJECTS.toLocaleString('en-US')} objects make too few arenas ` +
    'for that verdict.',
)}

${paragraph(
  "--map DIR writes DIR/never.svg, DIR/cpython.svg and DIR/purge.svg: each policy's heap map (every arena " +
    'a row, every pool a cell) after each fragmentation, where the survivors pin pools and arenas.',
)}

Example:
  $ pymalloc demo
  $ pymalloc demo --objects 500000 --plot rss.svg --map maps
  $ pymalloc demo --json | jq .returnedPercent
`;

export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .summary('the PyCon 2005 story under three policies')
    .description(
      'The PyCon 2005 story: build, free, run a simulator and fragment, under three return policies.',
    )
    .option('--objects <n>', `objects per build (${MIN_OBJECTS} to ${MAX_OBJECTS})`, String(DEFAULT_OBJECTS))
    .option('--json', 'print every number as one JSON object instead of the table')
    .option('--plot <file.svg>', 'write an SVG chart of RSS over the run for the three policies')
    .option(
      '--map <dir>',
      "write each policy's heap map after fragmentation: DIR/never.svg, cpython.svg, purge.svg",
    )
    .addHelpText('after', HELP)
    .action(async (options: DemoCliOptions) => {
      const status = await runDemoCommand(options);
      if (status !== 0) process.exitCode = status;
    });
}
