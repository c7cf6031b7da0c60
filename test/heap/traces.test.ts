import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { freeAll, loadTrace, packedTrace, parseTrace, replay } from '../../lib/trace';
import { classRows, mediumRows } from '../stats-table';
import { destroyAll, makeHeap } from './helpers';

afterEach(destroyAll);

const fixtures = join(__dirname, '..', 'fixtures', 'traces');

const counters = (t: string) =>
  t.split('\n').filter((l) => l.startsWith('# arenas') || l.startsWith('# bytes in'));

describe.each(['regex', 'compileall'])('the %s trace (recorded from CPython 3.11)', (name) => {
  const cpython = () => readFileSync(join(fixtures, `${name}.cpython-3.11.stats.txt`), 'utf8');

  test("replays with heap.check() passing and prints CPython's own class table", async () => {
    const trace = await loadTrace(join(fixtures, `${name}.trace.gz`));
    const h = makeHeap({ reserve: 2 ** 32 });
    const ptrs = new Uint32Array(trace.objects);
    replay(h, trace, ptrs);
    h.check();
    const ours = h.debugStats();
    expect(classRows(ours).length).toBeGreaterThan(20);
    expect(classRows(ours)).toEqual(classRows(cpython()));
    expect(ours.split('\n')[0]).toBe(cpython().split('\n')[0]);
    // The requests of 513..1024 bytes that CPython sent to the system malloc are in medium pools here.
    const medium = mediumRows(ours);
    expect(medium.length).toBeGreaterThan(0);
    for (const row of medium) {
      const [cls, size] = row.trim().split(/\s+/).map(Number);
      expect(size).toBe((cls + 1) * 16);
      expect(size).toBeGreaterThan(512);
      expect(size).toBeLessThanOrEqual(1024);
    }
    freeAll(h, ptrs);
    h.check();
    expect(h.stats().blocksInUse).toBe(0);
  });

  test("without medium classes, CPython's table and its arena counters, and no medium table", async () => {
    const trace = await loadTrace(join(fixtures, `${name}.trace.gz`));
    // purgeDelay 0: arenas go back the moment they are free, as in CPython (the default keeps them for reuse for
    // 250 ms, so its "arenas reclaimed" depends on how long the replay takes).
    const h = makeHeap({ reserve: 2 ** 32, mediumThreshold: 512, purgeDelay: 0 });
    const ptrs = new Uint32Array(trace.objects);
    replay(h, trace, ptrs);
    h.check();
    const ours = h.debugStats();
    expect(classRows(ours)).toEqual(classRows(cpython()));
    expect(mediumRows(ours)).toEqual([]);
    expect(ours).not.toContain('Medium block threshold');
    // The arena counters and the bytes in blocks read the same way too: no medium pool takes arena space.
    expect(counters(cpython())).toHaveLength(6);
    expect(counters(ours).filter((l) => !l.includes('arena map'))).toEqual(counters(cpython()));
    freeAll(h, ptrs);
    h.check();
  });
});

describe('trace parsing', () => {
  test('reads the three operations', () => {
    const t = parseTrace('m 7 10\nm 9 600\nr 7 20\nf 9\nf 7\n');
    expect(t.length).toBe(5);
    expect([...t.ops]).toEqual([0, 0, 2, 1, 1]);
    expect([...t.ids]).toEqual([0, 1, 0, 1, 0]);
    expect([...t.sizes]).toEqual([10, 600, 20, 0, 0]);
    expect(t.objects).toBe(2);
  });

  test('replays any range of operations, packed once per trace', () => {
    const t = parseTrace('m 1 10\nm 2 600\nr 1 3000\nf 2\nm 3 0\nf 1\n', 'ranges');
    const h = makeHeap();
    const ptrs = new Uint32Array(t.objects);
    replay(h, t, ptrs, 0, 2);
    expect(h.usableSize(ptrs[0]!)).toBe(16);
    expect(h.usableSize(ptrs[1]!)).toBe(608);
    replay(h, t, ptrs, 2, 4);
    expect(ptrs[1]).toBe(0);
    expect(h.usableSize(ptrs[0]!)).toBe(h.geometry.pageSize);
    replay(h, t, ptrs, 4);
    expect(ptrs[0]).toBe(0);
    expect(ptrs[2]).not.toBe(0);
    h.check();
    expect(packedTrace(t)).toBe(packedTrace(t));
    expect(Array.from(packedTrace(t).subarray(0, 6))).toEqual([0, 10, (1 << 2) | 0, 600, 2, 3000]);
  });

  test('refuses to replay a trace with more objects than an operation word can number', () => {
    const huge = {
      name: 'huge',
      length: 0,
      ops: new Uint8Array(0),
      ids: new Uint32Array(0),
      sizes: new Uint32Array(0),
      objects: 2 ** 30 + 1,
    };
    expect(() => replay(makeHeap(), huge, new Uint32Array(1))).toThrow(
      /huge: 1073741825 objects is more than a replay can number/,
    );
  });

  test('accepts comments, blank lines, CRLF, tabs, bytes and IDs beyond 2^53', () => {
    const text =
      '# a comment\r\n\r\n  m\t12345678901234567890 8\r\nm 3 0\n   \nr 12345678901234567890 900\n# x\nf 3\n';
    for (const input of [text, Buffer.from(text, 'latin1')]) {
      const t = parseTrace(input, 't');
      expect([...t.ops]).toEqual([0, 0, 2, 1]);
      expect([...t.ids]).toEqual([0, 1, 0, 1]);
      expect([...t.sizes]).toEqual([8, 0, 900, 0]);
      expect(t.objects).toBe(2);
    }
  });

  test('reports progress up to the whole text', () => {
    const lines: string[] = [];
    for (let i = 0; i < 70000; i++) lines.push(`m ${i} 8`);
    const text = lines.join('\n');
    const seen: number[] = [];
    const t = parseTrace(text, 't', (done, total) => {
      expect(total).toBe(text.length);
      seen.push(done);
    });
    expect(t.length).toBe(70000);
    expect(seen.length).toBeGreaterThanOrEqual(2);
    expect(seen[seen.length - 1]).toBe(text.length);
  });

  test.each([
    ['x 1 2', /:1: unknown operation 'x'/],
    ['m 1', /:1: 'm' needs an ID and a size/],
    ['m 1 2\nf', /:2: 'f' needs an ID/],
    ['m 1 2\nf 2', /:2: free of ID 2, which is not live/],
    ['m 1 2\nf 1\nf 1', /:3: free of ID 1, which is not live/],
    ['r 5 10', /:1: realloc of ID 5, which is not live/],
    ['m 1 -3', /:1: size must be a decimal number/],
    ['m a 3', /:1: ID must be a decimal number/],
    ['m 1 2 3', /:1: too many fields/],
    ['m 1 2\nm 1 3', /:2: malloc of ID 1, which is already live/],
    ['m 1 4294967296', /:1: size must be a decimal number below 2\^32, got '4294967296'/],
    ['mm 1 2', /:1: unknown operation 'mm'/],
    ['# ok\n\nm 1 2\nf 1 2', /:4: too many fields: 'f 1 2'/],
  ])('names the line of a malformed trace: %j', (text, message) => {
    expect(() => parseTrace(text, 't')).toThrow(message);
  });
});
