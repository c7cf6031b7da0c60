/**
 * Traces from files nobody checked: the loader streams `.trace` and `.gz` in bounded memory (a decompression
 * bomb is refused at the line limit without growing RSS), holds more than 2^24 distinct IDs, names each limit
 * in one line, and the CLI quotes what the user gave it truncated and escaped, never raw bytes.
 *
 * The cases that could exhaust memory run the built CLI (dist/, `npm run build:ts`) in a child process, which
 * records its own peak RSS (VmHWM) as it exits; a child that dies of a signal fails the test.
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, createWriteStream, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip, gunzipSync, gzipSync } from 'node:zlib';
import fc from 'fast-check';
import type { ReplayReport } from '../../lib/cli/replay';
import { escapeInput, oneLine, QUOTE_MAX, quote } from '../../lib/quote';
import {
  loadTrace,
  MAX_TRACE_BIG_IDS,
  MAX_TRACE_LINE,
  MAX_TRACE_LIVE_BYTES,
  MAX_TRACE_OBJECTS,
  MAX_TRACE_OPERATIONS,
  packedTrace,
  parseTrace,
  type Trace,
  TraceLimitError,
  TraceParser,
  traceLiveBytesPeak,
  traceOperationBudget,
} from '../../lib/trace';
import { IdTable } from '../../lib/trace-ids';
import { runCli } from '../cli/run-cli';

// The os module itself (not an import's copy of its namespace), so that a test can stand in for totalmem().
import os = require('node:os');

const ROOT = join(__dirname, '..', '..');
const BIN = join(ROOT, 'dist', 'lib', 'cli', 'main.js');
const fixtures = join(ROOT, 'test', 'fixtures', 'traces');
const MiB = 2 ** 20;

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'pymalloc-traces-'));
  // Records the child's peak resident set size when it exits, whatever the exit status.
  writeFileSync(
    join(dir, 'hwm.js'),
    "process.on('exit', () => { const m = /VmHWM:\\s+(\\d+) kB/.exec(require('fs').readFileSync('/proc/self/status', 'utf8')); " +
      "require('fs').writeFileSync(process.env.PYMALLOC_TEST_HWM, m ? m[1] : '-1'); });\n",
  );
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface ChildResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Peak RSS of the child, bytes. */
  peakRss: number;
}

/** Runs the built CLI in a child process, optionally writing `feed.data` into the FIFO `feed.file`. */
async function runBin(
  args: string[],
  feed?: { file: string; data: Iterable<Uint8Array> },
): Promise<ChildResult> {
  requireBuilt();
  const hwm = join(dir, `hwm-${process.hrtime.bigint()}`);
  const child = spawn(process.execPath, ['--require', join(dir, 'hwm.js'), BIN, ...args], {
    env: { ...process.env, PYMALLOC_TEST_HWM: hwm },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('latin1').on('data', (s: string) => {
    stdout += s;
  });
  child.stderr!.setEncoding('latin1').on('data', (s: string) => {
    if (stderr.length < 4 * MiB) stderr += s;
  });
  const fed =
    feed === undefined
      ? Promise.resolve()
      : pipeline(Readable.from(feed.data), createWriteStream(feed.file)).catch(
          (err: NodeJS.ErrnoException) => {
            // The child may stop reading (a limit) before the input ends.
            if (err.code !== 'EPIPE') throw err;
          },
        );
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
    child.on('close', (c, s) => resolve([c, s])),
  );
  await fed;
  const kib = Number(await readFile(hwm, 'utf8').catch(() => '-1'));
  return { code, signal, stdout, stderr, peakRss: kib * 1024 };
}

/** One line on stderr, printable ASCII only, of a bounded length. */
function expectOneEscapedLine(stderr: string, maxLength = 320): string {
  // The length first: a failing match would print all of a message that may be megabytes long.
  expect(stderr.length).toBeLessThanOrEqual(maxLength + 1);
  expect(stderr.endsWith('\n')).toBe(true);
  const line = stderr.slice(0, -1);
  expect(line).not.toContain('\n');
  expect(line).toMatch(/^pymalloc: [\x20-\x7e]+$/);
  expect(line.length).toBeLessThanOrEqual(maxLength);
  return line;
}

/**
 * A gzip file of `members` concatenated gzip members, each `member` compressed: gunzip reads them all as one
 * stream, so a small file holds a large decompressed size (here 1 MiB per member).
 */
function writeBomb(file: string, member: Buffer, members: number, prefix = ''): number {
  const one = gzipSync(member, { level: 9 });
  const parts = [gzipSync(prefix), ...Array.from({ length: members }, () => one)];
  writeFileSync(file, Buffer.concat(parts));
  return statSync(file).size;
}

function requireBuilt(): void {
  // The child runs dist/: it must be built from these sources (npm test does it in `pretest`).
  for (const [src, out] of [
    ['lib/trace.ts', 'dist/lib/trace.js'],
    ['lib/trace-ids.ts', 'dist/lib/trace-ids.js'],
    ['lib/quote.ts', 'dist/lib/quote.js'],
    ['lib/cli/replay.ts', 'dist/lib/cli/replay.js'],
    ['lib/cli/main.ts', 'dist/lib/cli/main.js'],
  ]) {
    const built = statSync(join(ROOT, out), { throwIfNoEntry: false });
    if (built === undefined || built.mtimeMs < statSync(join(ROOT, src)).mtimeMs) {
      throw new Error(`${out} is missing or older than ${src}: run 'npm run build:ts' first`);
    }
  }
}

describe('a decompression bomb', () => {
  test.each([
    ['400 MiB of zeros', Buffer.alloc(MiB, 0x30), ''],
    ['one endless line of digits after "m 1 "', Buffer.alloc(MiB, 0x39), 'm 1 '],
    ['an endless comment', Buffer.alloc(MiB, 0x23), 'm 1 8\nf 1\n'],
    ['400 MiB of NUL bytes', Buffer.alloc(MiB, 0), ''],
  ])('%s stops at the line limit, in one line and bounded memory', async (_what, member, prefix) => {
    const file = join(dir, 'bomb.trace.gz');
    const size = writeBomb(file, member, 400, prefix);
    expect(size).toBeLessThan(2 * MiB);
    const r = await runBin(['replay', file, '--reps', '1']);
    expect({ code: r.code, signal: r.signal, stdout: r.stdout }).toEqual({
      code: 2,
      signal: null,
      stdout: '',
    });
    const line = expectOneEscapedLine(r.stderr);
    expect(line).toContain(`longer than ${MAX_TRACE_LINE} bytes`);
    expect(line).toContain('MAX_TRACE_LINE');
    expect(line).toMatch(/bomb\.trace\.gz:\d+: /);
    console.log(`${_what}: ${line}; child peak RSS ${(r.peakRss / MiB).toFixed(1)} MiB`);
    expect(r.peakRss).toBeGreaterThan(0);
    expect(r.peakRss).toBeLessThan(300 * MiB);
  });

  test('a short trace followed by 400 MiB of comments and blank lines replays in bounded memory', async () => {
    const file = join(dir, 'comments.trace.gz');
    const member = Buffer.from('# a comment of a line\n\n   \r\n'.repeat(MiB / 32).padEnd(MiB, '\n'));
    writeBomb(file, member, 400, 'm 1 8\nm 2 100\nf 1\n');
    const r = await runBin(['replay', file, '--reps', '1', '--samples', '1', '--json']);
    expect({ code: r.code, signal: r.signal, stderr: r.stderr }).toEqual({
      code: 0,
      signal: null,
      stderr: '',
    });
    const report = JSON.parse(r.stdout) as ReplayReport;
    expect(report.ops).toBe(3);
    expect(report.objects).toBe(2);
    console.log(`400 MiB of comments: child peak RSS ${(r.peakRss / MiB).toFixed(1)} MiB`);
    expect(r.peakRss).toBeLessThan(300 * MiB);
  });

  test.each([
    ['not gzip at all', Buffer.from('m 1 8\nf 1\n')],
    ['cut short', gzipSync(Buffer.from('m 1 8\nf 1\n'.repeat(10000))).subarray(0, 200)],
    [
      'a valid member followed by garbage',
      Buffer.concat([gzipSync('m 1 8\n'), Buffer.from([0x1f, 0x8b, 1, 2])]),
    ],
  ])('a .gz file %s is one line, exit status 2', async (_what, bytes) => {
    const file = join(dir, 'broken.trace.gz');
    writeFileSync(file, bytes);
    const r = await runCli(['replay', file, '--reps', '1']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(expectOneEscapedLine(r.stderr)).toMatch(
      /cannot read trace '.*broken\.trace\.gz': not valid gzip data/,
    );
  });
});

describe('more than 2^24 distinct IDs', () => {
  /** `m i 16` and `f i` for i in 0..n-1, as bytes, without converting numbers to strings. */
  function* mallocFreeLines(n: number): Generator<Buffer> {
    const digits = [0x30];
    const perChunk = 1 << 16;
    for (let i = 0; i < n; i += perChunk) {
      const m = Math.min(perChunk, n - i);
      const buf = Buffer.allocUnsafe(m * 40);
      let p = 0;
      for (let j = 0; j < m; j++) {
        buf[p++] = 0x6d; // m
        buf[p++] = 0x20;
        for (const d of digits) buf[p++] = d;
        p += buf.write(' 16\nf ', p, 'latin1');
        for (const d of digits) buf[p++] = d;
        buf[p++] = 0x0a;
        let k = digits.length - 1;
        while (k >= 0 && digits[k] === 0x39) digits[k--] = 0x30;
        if (k < 0) digits.unshift(0x31);
        else digits[k]!++;
      }
      yield buf.subarray(0, p);
    }
  }

  test('the CLI replays a trace of 17,000,000 distinct IDs streamed through a named pipe', async () => {
    const n = 17_000_000;
    expect(n).toBeGreaterThan(2 ** 24);
    const t0 = Date.now();
    // A FIFO: the 400 MB of text never lands on disk (a .gz of it would be 83 MB).
    let file = join(dir, 'ids.fifo');
    const made = spawnSync('mkfifo', [file]);
    if (made.status !== 0) {
      console.log(`mkfifo is not available here (${made.error?.message ?? made.stderr}): writing a .gz file`);
      file = join(dir, 'ids.trace.gz');
      await pipeline(Readable.from(mallocFreeLines(n)), createGzip({ level: 1 }), createWriteStream(file));
    }
    const r = await runBin(
      ['replay', file, '--reps', '1', '--samples', '2', '--json'],
      made.status === 0 ? { file, data: mallocFreeLines(n) } : undefined,
    );
    expect({ code: r.code, signal: r.signal, stderr: r.stderr }).toEqual({
      code: 0,
      signal: null,
      stderr: '',
    });
    const report = JSON.parse(r.stdout) as ReplayReport;
    expect(report.objects).toBe(n);
    expect(report.ops).toBe(2 * n);
    expect(report.stats.blocksInUse).toBe(0);
    console.log(
      `17 M distinct IDs: ${((Date.now() - t0) / 1000).toFixed(1)} s, child peak RSS ${(r.peakRss / MiB).toFixed(0)} MiB`,
    );
  });

  test('the ID table holds more than 2^24 IDs that are not small integers (its hash part)', () => {
    const n = 2 ** 24 + 4096;
    const t = new IdTable();
    // Addresses of 16-byte blocks above 2^46, as a recorder keyed by pointers would write them.
    const key = (i: number) => 0x4000_0000_0000 + 16 * i;
    let wrong = 0;
    for (let i = 0; i < n; i++) if (t.get(key(i)) !== -1 || t.add(key(i)) !== i) wrong++;
    expect(wrong).toBe(0);
    expect(t.size).toBe(n);
    expect(t.hashed).toBe(n);
    for (let i = 0; i < n; i += 4099) expect(t.get(key(i))).toBe(i);
    expect(t.get(key(n))).toBe(-1);
    expect(t.get(key(n) + 1)).toBe(-1);
  });

  test('small IDs go to the direct part, others to the hash, and each is found whichever part it is in', () => {
    const t = new IdTable();
    // 100000 enters the hash (far beyond the direct part at first); the direct part then grows past it.
    expect(t.add(100_000)).toBe(0);
    expect(t.add(2 ** 53 - 1)).toBe(1);
    for (let i = 0; i < 200_000; i++) if (i !== 100_000) t.add(i);
    expect(t.size).toBe(200_001);
    expect(t.hashed).toBe(2);
    expect(t.get(100_000)).toBe(0);
    expect(t.get(2 ** 53 - 1)).toBe(1);
    expect(t.get(0)).toBe(2);
    expect(t.get(199_999)).toBe(200_000);
    expect(t.get(200_000)).toBe(-1);
    expect(t.get(2 ** 53 - 2)).toBe(-1);
  });

  test('a trace numbers IDs up to 2^53 - 1 by value and larger ones by their digits', () => {
    const t = parseTrace(
      'm 9007199254740991 8\nm 9007199254740990 8\nm 0009007199254740992 8\nm 18446744073709551615 8\n' +
        'f 9007199254740992\nf 00018446744073709551615\nm 007 1\nf 7\nf 9007199254740991\n',
    );
    expect([...t.ids]).toEqual([0, 1, 2, 3, 2, 3, 4, 4, 0]);
    expect(t.objects).toBe(5);
  });
});

describe('limits', () => {
  test('are exported, with their documented values', () => {
    expect(MAX_TRACE_OPERATIONS).toBe(2 ** 30);
    expect(MAX_TRACE_OBJECTS).toBe(2 ** 30);
    expect(MAX_TRACE_LINE).toBe(4096);
    expect(MAX_TRACE_BIG_IDS).toBe(2 ** 16);
    expect(MAX_TRACE_LIVE_BYTES).toBe(2 ** 32);
  });

  /** The error a parse throws: a TraceLimitError naming the limit, or a failure of the test. */
  function limitError(f: () => unknown): TraceLimitError {
    try {
      f();
    } catch (err) {
      expect(err).toBeInstanceOf(TraceLimitError);
      expect((err as TraceLimitError & { code: string }).code).toBe('ERR_PYMALLOC_TRACE_LIMIT');
      return err as TraceLimitError;
    }
    throw new Error('no limit was reported');
  }

  test('operations: one more than the limit is refused, naming the line and MAX_TRACE_OPERATIONS', () => {
    const text = 'm 1 8\nf 1\n# c\nm 1 8\nf 1\nm 2 3\n';
    expect(parseTrace(text, 't', undefined, { operations: 5 }).length).toBe(5);
    const e = limitError(() => parseTrace(`${text}f 2\n`, 't', undefined, { operations: 5 }));
    expect(e.limit).toBe('MAX_TRACE_OPERATIONS');
    expect(e.message).toBe('t:7: more than 5 operations, the limit MAX_TRACE_OPERATIONS');
    expect(e.line).toBe(7);
  });

  test("by default, operations are held to a quarter of the machine's memory, packed", () => {
    expect(traceOperationBudget()).toBe(Math.min(MAX_TRACE_OPERATIONS, Math.floor(os.totalmem() / 32)));
    const spy = jest.spyOn(os, 'totalmem').mockReturnValue(320);
    try {
      expect(traceOperationBudget()).toBe(10);
      const text = 'm 1 8\nf 1\n'.repeat(5);
      expect(parseTrace(text).length).toBe(10);
      const e = limitError(() => parseTrace(`${text}m 1 8\n`, 't'));
      expect(e.limit).toBe('MAX_TRACE_OPERATIONS');
      expect(e.message).toBe(
        "t:11: more than 10 operations, the limit for this machine's memory (a quarter of it at 8 bytes an " +
          'operation; MAX_TRACE_OPERATIONS is 1073741824)',
      );
      // An explicit limit is not held to the machine's memory.
      expect(parseTrace(`${text}m 1 8\n`, 't', undefined, { operations: 11 }).length).toBe(11);
    } finally {
      spy.mockRestore();
    }
  });

  test('distinct IDs: an ID freed and allocated again counts once; one more than the limit is refused', () => {
    const text = 'm 1 8\nf 1\nm 1 8\nm 2 8\nm 3 8\nf 1\nf 2\nm 2 9\n';
    expect(parseTrace(text, 't', undefined, { objects: 3 }).objects).toBe(3);
    const e = limitError(() => parseTrace(`${text}m 99 1\n`, 't', undefined, { objects: 3 }));
    expect(e.limit).toBe('MAX_TRACE_OBJECTS');
    expect(e.message).toBe('t:9: more than 3 distinct IDs, the limit MAX_TRACE_OBJECTS');
  });

  test('IDs above 2^53 - 1 have a limit of their own', () => {
    const text = 'm 90071992547409920 8\nm 90071992547409921 8\nf 90071992547409920\nm 90071992547409920 1\n';
    expect(parseTrace(text, 't', undefined, { bigIds: 2 }).objects).toBe(2);
    const e = limitError(() => parseTrace(`${text}m 90071992547409922 1\n`, 't', undefined, { bigIds: 2 }));
    expect(e.limit).toBe('MAX_TRACE_BIG_IDS');
    expect(e.message).toBe('t:5: more than 2 distinct IDs above 2^53 - 1, the limit MAX_TRACE_BIG_IDS');
  });

  test('line length: a line of exactly the limit loads, one byte more is refused, however it is chunked', () => {
    const ok = `#${'x'.repeat(MAX_TRACE_LINE - 1)}\nm 1 8\n`;
    expect(parseTrace(ok).length).toBe(1);
    // CR counts: it is part of the line.
    const long = `m 1 8\n#${'x'.repeat(MAX_TRACE_LINE - 1)}\r\n`;
    for (const chunk of [1, 7, 4096, 4097, 1 << 20]) {
      const p = new TraceParser('t');
      const b = Buffer.from(long);
      const e = limitError(() => {
        for (let i = 0; i < b.length; i += chunk) p.push(b.subarray(i, i + chunk));
        p.end();
      });
      expect(e.limit).toBe('MAX_TRACE_LINE');
      expect(e.line).toBe(2);
      expect(e.message).toMatch(
        /^t:2: line longer than 4096 bytes, the limit MAX_TRACE_LINE: '#xxxx+\.\.\.'$/,
      );
      expect(e.message.length).toBeLessThan(150);
    }
    // The last line needs no newline, and is held to the limit too.
    expect(() => parseTrace(`m 1 8\n${'9'.repeat(MAX_TRACE_LINE + 1)}`)).toThrow(/t?:2: line longer than/);
    expect(limitError(() => parseTrace('m 1 8\nm 2 16\n', 't', undefined, { line: 5 })).message).toMatch(
      /^t:2: line longer than 5 bytes, the limit MAX_TRACE_LINE: 'm 2 1/,
    );
  });

  test('loadTrace applies the same limits while streaming a file', async () => {
    const file = join(dir, 'limits.trace.gz');
    writeFileSync(file, gzipSync('m 1 8\nm 2 8\nm 3 8\n'.repeat(3)));
    await expect(loadTrace(file, undefined, { objects: 2 })).rejects.toThrow(
      /limits\.trace\.gz:3: more than 2 distinct IDs, the limit MAX_TRACE_OBJECTS/,
    );
    await expect(loadTrace(file, undefined, { operations: 2 })).rejects.toThrow(
      /limits\.trace\.gz:3: more than 2 operations, the limit MAX_TRACE_OPERATIONS/,
    );
  });

  test('the CLI reports the line limit of a plain .trace file in one line (exit status 2)', async () => {
    const file = join(dir, 'long-line.trace');
    writeFileSync(file, `m 1 8\nm 2 ${'7'.repeat(10 * MiB)}\n`);
    const r = await runCli(['replay', file, '--reps', '1']);
    expect(r.code).toBe(2);
    const line = expectOneEscapedLine(r.stderr);
    expect(line).toMatch(
      /long-line\.trace:2: line longer than 4096 bytes, the limit MAX_TRACE_LINE: 'm 2 7777/,
    );
  });

  describe('heap capacity', () => {
    test('the most bytes a trace holds live at once', () => {
      const t = parseTrace('m 1 100\nm 2 50\nr 1 10\nm 3 200\nf 2\nr 3 4000000000\nf 1\nf 3\n');
      expect(traceLiveBytesPeak(t)).toBe(10 + 4_000_000_000);
      expect(traceLiveBytesPeak(parseTrace(''))).toBe(0);
    });

    test.each([
      [
        'replay',
        'more live at once than a heap can hold',
        'm 1 3000000000\nm 2 3000000000\n',
        /6000000000 bytes/,
      ],
      [
        'tune',
        'more live at once than a heap can hold',
        'm 1 3000000000\nm 2 3000000000\n',
        /6000000000 bytes/,
      ],
      ['replay', 'within 4 GiB, beyond the heap', 'm 1 2147483648\nm 2 2147483647\n', /out of memory/],
      ['tune', 'within 4 GiB, beyond the heap', 'm 1 2147483648\nm 2 2147483647\n', /out of memory/],
    ])(
      '%s: a trace %s is one line naming the limit (exit status 2)',
      async (command, _what, text, detail) => {
        const file = join(dir, 'huge-live.trace');
        writeFileSync(file, text);
        const r = await runCli([command, file, '--reps', '1']);
        expect({ code: r.code, stdout: r.stdout }).toEqual({ code: 2, stdout: '' });
        const line = expectOneEscapedLine(r.stderr, 400);
        expect(line).toMatch(/huge-live\.trace: /);
        expect(line).toContain('MAX_TRACE_LIVE_BYTES');
        expect(line).toMatch(detail);
      },
    );
  });
});

describe('quoting user input', () => {
  test('escapes every byte outside printable ASCII, and the quote and the backslash', () => {
    expect(quote('abc 123')).toBe("'abc 123'");
    expect(quote(Buffer.from([0, 0x1b, 0x7f, 0x80, 0xff, 0x0a, 0x0d, 0x09, 0x5c, 0x27, 0x41]))).toBe(
      "'\\x00\\x1b\\x7f\\x80\\xff\\n\\r\\t\\\\\\'A'",
    );
    expect(quote('caf\u00e9 \u2026 \ud800 \u{1f600}')).toBe("'caf\\xe9 \\u2026 \\ud800 \\ud83d\\ude00'");
    expect(escapeInput("it's")).toBe("it\\'s");
  });

  test('truncates to about 80 characters, keeping both ends (or the start), even for 10 MB', () => {
    const big = `${'a'.repeat(5 * MiB)}${'b'.repeat(5 * MiB)}`;
    const q = escapeInput(big);
    expect(q.length).toBeLessThanOrEqual(QUOTE_MAX);
    expect(q.length).toBeGreaterThan(QUOTE_MAX - 8);
    expect(q).toMatch(/^a+\.\.\.b+$/);
    expect(escapeInput(big, { keep: 'start' })).toMatch(/^a{70,}\.\.\.$/);
    // Escapes are never cut in half.
    const bin = escapeInput(Buffer.alloc(1000, 0xfe));
    expect(bin).toMatch(/^(\\xfe)+\.\.\.(\\xfe)+$/);
    expect(bin.length).toBeLessThanOrEqual(QUOTE_MAX);
    expect(escapeInput('x'.repeat(QUOTE_MAX))).toBe('x'.repeat(QUOTE_MAX));
  });

  test('reads only the ends of a large input, not all of it', () => {
    // Every byte read goes through the proxy: the work is bounded by the quote's length, not the input's.
    const bytes = new Uint8Array(10 * MiB).fill(0x61);
    let reads = 0;
    const counted = new Proxy(bytes, {
      get(target, key) {
        if (typeof key === 'string' && /^\d+$/.test(key)) reads++;
        const v = Reflect.get(target, key);
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
    expect(escapeInput(counted)).toMatch(/^a+\.\.\.a+$/);
    expect(reads).toBeLessThanOrEqual(3 * QUOTE_MAX);
  });

  test('oneLine: the last line of defence escapes and shortens what was not quoted through quote()', () => {
    expect(oneLine("bad value 'x\u001b[2J\ny' here")).toBe("bad value 'x\\x1b[2J\\ny' here");
    const long = oneLine(`got '${'z'.repeat(100_000)}', expected less`);
    expect(long).toMatch(/^got 'z+\.\.\.z+', expected less$/);
    expect(long.length).toBeLessThan(120);
    // Already quoted text is left as it is.
    const q = `got ${quote(Buffer.from([1, 2, 0x5c]))}`;
    expect(oneLine(q)).toBe(q);
    expect(oneLine('x'.repeat(100_000)).length).toBeLessThanOrEqual(1000);
  });

  test('a trace of binary garbage is one escaped line', async () => {
    const file = join(dir, 'garbage.trace');
    let seed = 12345;
    const bytes = Buffer.alloc(1 * MiB);
    for (let i = 0; i < bytes.length; i++) {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      bytes[i] = seed >>> 24;
    }
    writeFileSync(file, bytes);
    const r = await runCli(['replay', file, '--reps', '1']);
    expect(r.code).toBe(2);
    const line = expectOneEscapedLine(r.stderr, 240);
    expect(line).toMatch(/garbage\.trace:\d+: /);
  });

  test('a 10 MB line, and a long operation, are quoted truncated', async () => {
    const file = join(dir, 'ten-mb.trace');
    writeFileSync(file, `${'\u00ff\u0001'.repeat(5 * MiB)}\n`, 'latin1');
    const r = await runCli(['replay', file]);
    expect(r.code).toBe(2);
    expect(expectOneEscapedLine(r.stderr, 240)).toMatch(
      /ten-mb\.trace:1: line longer than 4096 bytes.*'(\\xff\\x01)+/,
    );
    const op = join(dir, 'long-op.trace');
    writeFileSync(op, `m 1 8\n${'q'.repeat(3000)} 1 2\n`);
    const r2 = await runCli(['replay', op]);
    expect(r2.code).toBe(2);
    const line = expectOneEscapedLine(r2.stderr, 240);
    expect(line).toMatch(/long-op\.trace:2: unknown operation 'q+\.\.\.q+' \(expected m, f or r\)$/);
    expect(/'(q+\.\.\.q+)'/.exec(line)![1]!.length).toBeLessThanOrEqual(QUOTE_MAX);
  });

  const EVIL = `\u001b[2J\u0007\u00e9\ud800${'x'.repeat(10_000)}`;
  // A file name fits in a directory entry (255 bytes); a longer one is another error.
  const NAME = `${EVIL.slice(0, 200)}.trace`;
  test.each([
    [['replay', NAME], /cannot read trace '.*': no such file$/],
    [['tune', NAME], /cannot read trace '.*': no such file$/],
    [['replay', `${EVIL}.trace`], /cannot read trace '.*': file name too long$/],
    [['replay', 'TRACE', '--reps', EVIL], /--reps: expected a whole number, got '/],
    [['replay', 'TRACE', '--samples', EVIL], /--samples: expected a whole number, got '/],
    [['replay', 'TRACE', '--pool-size', EVIL], /--pool-size: expected a byte count/],
    [['replay', 'TRACE', '--preset', EVIL], /--preset must be one of/],
    [['tune', 'TRACE', '--policy', EVIL], /--policy must be one of/],
    [['tune', 'TRACE', '--reps', EVIL], /--reps: expected a whole number/],
    [['demo', '--objects', EVIL], /--objects: expected a whole number/],
    [['demo', '--plot', EVIL], /--plot: expected a file name ending in \.svg/],
    [['pages', '--size', EVIL], /--size: expected a byte count/],
    [['pages', '--mode', EVIL], /--mode: expected 'unmap' or 'dontneed'/],
    [['record', '--', EVIL], /must be a python3 interpreter/],
    [[EVIL], /unknown command '/],
    [['replay', `--${EVIL}`], /unknown option '/],
  ])('%j: the value is escaped and truncated, in one line', async (args, message) => {
    const trace = join(dir, 'ok.trace');
    writeFileSync(trace, 'm 1 8\nf 1\n');
    const r = await runCli(args.map((a) => (a === 'TRACE' ? trace : a)));
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    const line = expectOneEscapedLine(r.stderr);
    expect(line).toMatch(message);
    expect(line).not.toContain('x'.repeat(QUOTE_MAX));
    expect(line).toContain('\\x1b[2J\\x07\\xe9\\ud800x');
  });

  test('an unreadable trace is one line (when this process cannot read a file it made unreadable)', async () => {
    const file = join(dir, 'secret.trace');
    writeFileSync(file, 'm 1 8\n');
    chmodSync(file, 0);
    let readable = true;
    try {
      await readFile(file);
    } catch {
      readable = false;
    }
    if (readable) {
      console.log('running as a user who reads any file (root): the permission case cannot happen here');
      return;
    }
    const r = await runCli(['replay', file]);
    expect(r.code).toBe(2);
    expect(expectOneEscapedLine(r.stderr)).toMatch(/cannot read trace '.*secret\.trace': permission denied$/);
  });

  test('a directory is one line', async () => {
    const r = await runCli(['replay', dir]);
    expect(r.code).toBe(2);
    expect(expectOneEscapedLine(r.stderr)).toMatch(/cannot read trace '.*': it is a directory$/);
  });
});

describe('streaming reads what parsing in memory reads', () => {
  /**
   * The format's rules, written plainly (a string per line, a Map of IDs): the reference the byte parser is
   * compared with. Returns the operations, or the number of the first bad line.
   */
  function reference(
    text: string,
  ): { ops: number[]; ids: number[]; sizes: number[]; objects: number } | number {
    const ops: number[] = [];
    const ids: number[] = [];
    const sizes: number[] = [];
    const dense = new Map<string, number>();
    const live = new Set<number>();
    const lines = text.split('\n');
    for (let i = 0; i < lines.length; i++) {
      const tok = lines[i]!.split(/[ \t\r]+/).filter((s) => s !== '');
      if (tok.length === 0 || tok[0]!.startsWith('#')) continue;
      const code = ['m', 'f', 'r'].indexOf(tok[0]!);
      if (code < 0 || tok.length !== (code === 1 ? 2 : 3) || !/^\d+$/.test(tok[1]!)) return i + 1;
      if (code !== 1 && (!/^\d+$/.test(tok[2]!) || BigInt(tok[2]!) >= 2n ** 32n)) return i + 1;
      const key = BigInt(tok[1]!).toString();
      let id = dense.get(key);
      if (code === 0) {
        if (id !== undefined && live.has(id)) return i + 1;
        if (id === undefined) {
          id = dense.size;
          dense.set(key, id);
        }
        live.add(id);
      } else {
        if (id === undefined || !live.has(id)) return i + 1;
        if (code === 1) live.delete(id);
      }
      ops.push(code);
      ids.push(id);
      sizes.push(code === 1 ? 0 : Number(tok[2]));
    }
    return { ops, ids, sizes, objects: dense.size };
  }

  function chunked(bytes: Uint8Array, cuts: number[]): Trace {
    const p = new TraceParser('t');
    let at = 0;
    for (const c of [...cuts.map((x) => Math.floor(x * bytes.length))].sort((a, b) => a - b)) {
      p.push(bytes.subarray(at, Math.max(at, c)));
      at = Math.max(at, c);
    }
    p.push(bytes.subarray(at));
    return p.end();
  }

  function errorLine(f: () => unknown): number | undefined {
    try {
      f();
      return undefined;
    } catch (err) {
      const m = /^t:(\d+): /.exec((err as Error).message);
      if (!m) throw err;
      return Number(m[1]);
    }
  }

  /** Random traces, mostly valid, in every formatting the format allows, with now and then a bad line. */
  const traceText = fc
    .array(
      fc.record({
        kind: fc.constantFrom('m', 'm', 'm', 'f', 'f', 'r', '#', '', 'bad'),
        pick: fc.nat(),
        id: fc.oneof(fc.nat(40), fc.nat(), fc.constant(2 ** 53 - 1), fc.bigInt(2n ** 53n, 2n ** 70n)),
        size: fc.oneof(fc.nat(2000), fc.constant(2 ** 32 - 1), fc.constant(2 ** 32)),
        sep: fc.constantFrom(' ', ' ', '\t', '  ', ' \t '),
        lead: fc.constantFrom('', '', ' ', '\t'),
        zeros: fc.constantFrom('', '', '0', '000'),
        end: fc.constantFrom('\n', '\n', '\r\n', ' \n', '\t\r\n'),
        junk: fc.constantFrom('x 1 2', 'm 1', 'f', 'm a 2', 'm 1 2 3', 'mm 1 2', 'f -1', '\u00ff\u0000'),
      }),
      { maxLength: 60 },
    )
    .map((rows) => {
      const liveIds: string[] = [];
      let text = '';
      for (const r of rows) {
        const s = r.sep;
        if (r.kind === '#') text += `${r.lead}# comment ${r.pick}${r.end}`;
        else if (r.kind === '') text += `${r.lead}${r.end}`;
        else if (r.kind === 'bad') text += `${r.junk}${r.end}`;
        else if (r.kind === 'm') {
          const id = String(r.id);
          text += `${r.lead}m${s}${r.zeros}${id}${s}${r.size}${r.end}`;
          liveIds.push(id);
        } else {
          // f and r mostly name a live ID (then they are valid); sometimes any ID.
          const id =
            liveIds.length > 0 && r.pick % 5 !== 0 ? liveIds[r.pick % liveIds.length]! : String(r.id);
          if (r.kind === 'f') {
            text += `${r.lead}f${s}${r.zeros}${id}${r.end}`;
            const at = liveIds.indexOf(id);
            if (at >= 0) liveIds.splice(at, 1);
          } else text += `${r.lead}r${s}${id}${s}${r.size}${r.end}`;
        }
      }
      return text;
    });

  test('random traces, cut into random chunks, read as the format says (or fail at the same line)', () => {
    fc.assert(
      fc.property(
        traceText,
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 8 }),
        (text, cuts) => {
          const bytes = Buffer.from(text, 'latin1');
          const want = reference(text);
          const whole = errorLine(() => parseTrace(bytes, 't'));
          const parts = errorLine(() => chunked(bytes, cuts));
          if (typeof want === 'number') {
            expect(whole).toBe(want);
            expect(parts).toBe(want);
            return;
          }
          expect(whole).toBeUndefined();
          for (const t of [parseTrace(bytes, 't'), chunked(bytes, cuts)]) {
            expect({ ops: [...t.ops], ids: [...t.ids], sizes: [...t.sizes], objects: t.objects }).toEqual(
              want,
            );
            expect(t.length).toBe(want.ops.length);
            const packed = packedTrace(t);
            for (let i = 0; i < t.length; i++) {
              expect(packed[2 * i]).toBe(((want.ids[i]! << 2) | want.ops[i]!) >>> 0);
              expect(packed[2 * i + 1]).toBe(want.sizes[i]);
            }
          }
        },
      ),
      { numRuns: 400 },
    );
  });

  test('every cut of a small trace, one byte at a time or two chunks, reads the same', () => {
    const text =
      '# head\r\nm 12 8\n\tm 9007199254740993 100\r\n\nr 12 5000\nf 9007199254740993\nf 12\nm 12 0';
    const want = parseTrace(text, 't');
    const bytes = Buffer.from(text);
    for (let cut = 0; cut <= bytes.length; cut++) {
      const t = chunked(bytes, [cut / bytes.length]);
      expect([...packedTrace(t)]).toEqual([...packedTrace(want)]);
    }
    const p = new TraceParser('t');
    for (const b of bytes) p.push(Uint8Array.of(b));
    expect([...packedTrace(p.end())]).toEqual([...packedTrace(want)]);
  });

  test('the regex fixture streamed from its .gz, and as a plain file, equals the reference reading', async () => {
    const gz = join(fixtures, 'regex.trace.gz');
    const text = gunzipSync(await readFile(gz));
    const want = reference(text.toString('latin1'));
    if (typeof want === 'number') throw new Error(`the fixture is malformed at line ${want}`);
    const plain = join(dir, 'regex.trace');
    writeFileSync(plain, text);
    const seen: number[] = [];
    for (const t of [await loadTrace(gz, (done, total) => seen.push(done / total)), await loadTrace(plain)]) {
      expect(t.length).toBe(want.ops.length);
      expect(t.objects).toBe(want.objects);
      const packed = packedTrace(t);
      let same = true;
      for (let i = 0; i < t.length && same; i++) {
        same =
          packed[2 * i] === ((want.ids[i]! << 2) | want.ops[i]!) >>> 0 && packed[2 * i + 1] === want.sizes[i];
      }
      expect(same).toBe(true);
    }
    expect(seen.length).toBeGreaterThan(2);
    expect(seen[seen.length - 1]).toBe(1);
  });
});
