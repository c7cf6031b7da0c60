/**
 * `pymalloc record`: runs a Python script in an embedded CPython whose object allocator is wrapped, and writes
 * the trace. Run through the CLI's own entry point in this process; the recorder is a child process.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Heap } from '../../lib';
import { scriptOf } from '../../lib/cli/record';
import { libpython } from '../../lib/tools/cbuild';
import { freeAll, loadTrace, OP_FREE, OP_MALLOC, OP_REALLOC, replay, type Trace } from '../../lib/trace';
import { runCli } from '../cli/run-cli';
import { embedMissing } from './embed-missing';

const reason = embedMissing();
if (reason) console.warn(`record tests skipped: ${reason}`);
const withPython = reason ? test.skip : test;

const run = runCli;

const SCRIPT = `
import sys
keep = []
for i in range(5000):
    obj = {'n': i, 's': str(i) * (i % 9), 't': (i, i * 2)}
    if i % 3 == 0:
        keep.append(obj)
del obj
text = ''
for i in range(300):
    text += chr(65 + i % 26) * (i % 40)
items = []
for i in range(2000):
    items.append(i)
del keep[::2]
sys.exit(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
`;

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'pymalloc-record-'));
  writeFileSync(join(dir, 'work.py'), SCRIPT);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function count(trace: Trace, op: number): number {
  let n = 0;
  for (let i = 0; i < trace.length; i++) if (trace.ops[i] === op) n++;
  return n;
}

withPython('records a script: a consistent trace with mallocs, frees and reallocs that replays', async () => {
  const out = join(dir, 'work.trace.gz');
  const { code, stderr } = await run(['record', '--out', out, '--', 'python3', join(dir, 'work.py')]);
  expect(code).toBe(0);
  const summary = stderr.trim().split('\n').at(-1)!;
  expect(summary).toMatch(
    /^pymalloc record: \d+ operations \(\d+ malloc, \d+ free, \d+ realloc; \d+ blocks live/,
  );
  const trace = await loadTrace(out); // throws on any f/r of an ID that is not live
  expect(count(trace, OP_MALLOC)).toBeGreaterThan(5000);
  expect(count(trace, OP_FREE)).toBeGreaterThan(1000);
  expect(count(trace, OP_REALLOC)).toBeGreaterThan(10);
  expect(summary).toContain(`${trace.length} operations`);

  const heap = new Heap();
  try {
    const ptrs = new Uint32Array(trace.objects);
    replay(heap, trace, ptrs);
    heap.check();
    freeAll(heap, ptrs);
    heap.check();
    expect(heap.stats().blocksInUse).toBe(0);
  } finally {
    heap.destroy();
  }
});

withPython(
  'the first line names the Python version and the script; the exit status passes through',
  async () => {
    const out = join(dir, 'exit.trace');
    const { code } = await run(['record', '--out', out, '--', 'python3', join(dir, 'work.py'), '7']);
    expect(code).toBe(7);
    const text = readFileSync(out, 'latin1');
    const py = libpython();
    expect(text.split('\n')[0]).toBe(
      `# recorded by pymalloc record: python ${py.version}, script ${join(dir, 'work.py')}`,
    );
    expect(text.trimEnd().split('\n').at(-1)).toMatch(/^# end: \d+ operations/);
  },
);

test('record rejects a program that is not a python3 interpreter, in one line, with status 2', async () => {
  const { code, stdout, stderr } = await run(['record', '--out', join(dir, 'x.trace'), '--', 'node', 'x.js']);
  expect(code).toBe(2);
  expect(stdout).toBe('');
  const lines = stderr.trimEnd().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^pymalloc record: .*python3 interpreter.*not 'node'$/);
});

test('record without a command is a usage error', async () => {
  const { code, stderr } = await run(['record']);
  expect(code).toBe(2);
  expect(stderr).toMatch(/command/);
});

test('scriptOf finds the script among python options', () => {
  expect(scriptOf(['bench.py', '-v'])).toBe('bench.py');
  expect(scriptOf(['-X', 'dev', '-W', 'error', 'a.py'])).toBe('a.py');
  expect(scriptOf(['-u', '-m', 'json.tool', 'x'])).toBe('json.tool');
  expect(scriptOf(['-c', 'pass'])).toBe('-c');
  expect(scriptOf([])).toBeUndefined();
});
