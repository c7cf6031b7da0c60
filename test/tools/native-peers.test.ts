/**
 * The benchmark's native peers: CPython's own pymalloc (libpython, before Py_Initialize) and glibc malloc,
 * replaying traces in a C harness built on demand. No timing assertions: only that the numbers are sane and
 * that CPython, fed the fixture trace, prints the committed per-class table.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cpythonStats, runNativePeer } from '../../bench/peers/native';
import { isSkipped, type PeerOutcome, type PeerRun } from '../../bench/peers/types';
import { CBuildError, findCompiler, libpython } from '../../lib/tools/cbuild';
import { loadTrace, parseTrace, type Trace } from '../../lib/trace';
import { classRows } from '../stats-table';

const fixtures = join(__dirname, '..', 'fixtures', 'traces');

/** Why a peer cannot be built here, or undefined when it can. Checked visibly, never silently. */
function missing(needsPython: boolean): string | undefined {
  try {
    findCompiler();
    if (needsPython) {
      const py = libpython();
      const minor = Number(py.version.split('.')[1]);
      if (minor > 11) return `libpython ${py.version} cannot be driven before Py_Initialize (3.8-3.11 can)`;
    }
    return undefined;
  } catch (err) {
    if (err instanceof CBuildError) return err.message;
    throw err;
  }
}

const noCompiler = missing(false);
const noPython = missing(true);
if (noCompiler) console.warn(`native peer tests skipped: ${noCompiler}`);
else if (noPython) console.warn(`CPython peer tests skipped: ${noPython}`);
const withCompiler = noCompiler ? test.skip : test;
const withPython = noPython ? test.skip : test;

/** A small deterministic trace: objects of all sizes, frees and reallocs, and some left live at the end. */
function smallTrace(): Trace {
  const lines: string[] = [];
  let seed = 12345;
  const rand = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  const live: number[] = [];
  let next = 0;
  for (let i = 0; i < 20000; i++) {
    const r = rand(10);
    if (r < 5 || live.length === 0) {
      const size = rand(8) === 0 ? 513 + rand(20000) : rand(513);
      lines.push(`m ${next} ${size}`);
      live.push(next++);
    } else if (r < 8) {
      const k = rand(live.length);
      lines.push(`f ${live[k]}`);
      live[k] = live[live.length - 1]!;
      live.pop();
    } else {
      lines.push(`r ${live[rand(live.length)]} ${rand(2000)}`);
    }
  }
  return parseTrace(lines.join('\n'), 'small.trace');
}

function expectSane(o: PeerOutcome, trace: Trace, peer: string): PeerRun {
  if (isSkipped(o)) throw new Error(`${peer} skipped unexpectedly: ${o.skipped}`);
  expect(o.peer).toBe(peer);
  expect(o.trace).toBe('small.trace');
  expect(o.ops).toBe(trace.length);
  expect(o.nsPerOp).toBeGreaterThan(0);
  expect(Number.isFinite(o.nsPerOp)).toBe(true);
  for (const v of [o.rssBaseline, o.rssPeak, o.rssEnd, o.rssAfterFree]) expect(v).toBeGreaterThan(0);
  expect(o.rssPeak).toBeGreaterThanOrEqual(o.rssEnd);
  expect(o.rssAfterFree).toBeLessThanOrEqual(o.rssPeak);
  expect(o.timeline.length).toBeGreaterThan(2);
  expect(o.timeline.length).toBeLessThanOrEqual(20 + 2);
  expect(o.timeline[0]![0]).toBe(0);
  expect(o.timeline.at(-1)![0]).toBe(trace.length);
  for (const [i, rss] of o.timeline) {
    expect(i).toBeGreaterThanOrEqual(0);
    expect(i).toBeLessThanOrEqual(trace.length);
    expect(rss).toBeGreaterThan(0);
  }
  return o;
}

withPython("cpythonStats on regex.trace.gz prints CPython 3.11's committed class table", async () => {
  const stats = await cpythonStats(await loadTrace(join(fixtures, 'regex.trace.gz')));
  if (typeof stats !== 'string') throw new Error(`skipped unexpectedly: ${stats.skipped}`);
  const reference = readFileSync(join(fixtures, 'regex.cpython-3.11.stats.txt'), 'utf8');
  expect(stats.split('\n')[0]).toBe(reference.split('\n')[0]);
  expect(classRows(stats).length).toBeGreaterThan(20);
  expect(classRows(stats)).toEqual(classRows(reference));
});

withPython('runNativePeer cpython on a small trace returns sane numbers', async () => {
  const trace = smallTrace();
  expectSane(await runNativePeer('cpython', trace, { reps: 2, samples: 20 }), trace, 'CPython pymalloc');
});

withCompiler('runNativePeer glibc on a small trace returns sane numbers', async () => {
  const trace = smallTrace();
  expectSane(await runNativePeer('glibc', trace, { reps: 2, samples: 20 }), trace, 'glibc malloc');
});

withCompiler('an empty trace replays too', async () => {
  const trace = parseTrace('', 'empty.trace');
  const o = await runNativePeer('glibc', trace, { reps: 1, samples: 5 });
  if (isSkipped(o)) throw new Error(o.skipped);
  expect(o.ops).toBe(0);
  expect(o.nsPerOp).toBe(0);
});

test('without python3-config the CPython peer is skipped, saying what to install', async () => {
  const saved = process.env['PYTHON_CONFIG'];
  process.env['PYTHON_CONFIG'] = 'no-such-python3-config';
  try {
    const o = await runNativePeer('cpython', smallTrace(), { reps: 1 });
    expect(isSkipped(o)).toBe(true);
    expect((o as { skipped: string }).skipped).toMatch(/no-such-python3-config was not found.*python3-dev/);
    const s = await cpythonStats(smallTrace());
    expect(typeof s === 'string' ? s : s.skipped).toMatch(/python3-dev/);
  } finally {
    if (saved === undefined) delete process.env['PYTHON_CONFIG'];
    else process.env['PYTHON_CONFIG'] = saved;
  }
});
