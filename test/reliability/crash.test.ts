/**
 * Nothing a JavaScript program does through pymalloc's public API may crash the process, write into another
 * heap or leave it corrupt. Each case here killed the process (SIGSEGV, SIGABRT: see ../shared/repro in the
 * project's history) before the fixes it covers, so each runs in a child process (fixtures/crash-child.js,
 * against the built library in dist/), and the test asserts that the child exited normally before it looks at
 * what the child measured.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

const lib = join(__dirname, '..', '..', 'dist', 'lib');
const child = join(__dirname, 'fixtures', 'crash-child.js');

interface Run {
  status: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  result: Record<string, unknown>;
}

function run(name: string, arg = '', env: NodeJS.ProcessEnv = {}, timeout = 120_000): Run {
  expect(existsSync(join(lib, 'index.js')) ? 'built' : `missing ${lib}: run npm run build:ts`).toBe('built');
  const r = spawnSync(process.execPath, ['--expose-gc', child, lib, name, arg], {
    encoding: 'utf8',
    timeout,
    env: { ...process.env, PYMALLOC: '', ...env },
    maxBuffer: 16 * 1024 * 1024,
  });
  // The process ended by itself, normally: no signal (SIGSEGV, SIGABRT), no C++ terminate, no timeout.
  expect({ case: `${name} ${arg}`, status: r.status, signal: r.signal, error: r.error?.message }).toEqual({
    case: `${name} ${arg}`,
    status: 0,
    signal: null,
    error: undefined,
  });
  const lines = r.stdout.split('\n').filter((l) => l.startsWith('{'));
  expect(lines).toHaveLength(1);
  return { status: r.status, signal: r.signal, stderr: r.stderr, result: JSON.parse(lines[0]!) };
}

describe('views over the whole reservation never fault (the default decommit mode)', () => {
  test.each([
    'indexOf',
    'includes',
    'slice',
    'bufferFrom',
    'structuredClone',
    'postMessage',
    'transfer',
    'json',
    'reduce',
    'everyPage',
    'writeEveryPage',
    'staleLarge',
  ])('%s', (op) => {
    const { result } = run('view', op);
    expect(result).toMatchObject({ op, checked: true });
    if (op === 'transfer') expect(['copied', 'refused']).toContain(result['value']);
    if (op === 'staleLarge') expect(result['value']).toBe(0); // a stale read of returned pages sees zeros
  });
});

describe("ArrayBuffer.prototype.transfer() of the heap's buffer (Node 22 and later)", () => {
  test.each(['dontneed', 'unmap'])(
    '%s: every call throws ERR_PYMALLOC_BUFFER_DETACHED, destroy() works',
    (mode) => {
      const { result } = run('detached', mode);
      if (typeof (ArrayBuffer.prototype as { transfer?: unknown }).transfer !== 'function') {
        console.log(`Node.js ${process.version} has no ArrayBuffer.prototype.transfer: nothing to test here`);
        expect(result).toEqual({ decommit: mode, transfer: `none in Node.js ${process.version}` });
        return;
      }
      const code = 'ERR_PYMALLOC_BUFFER_DETACHED';
      expect(result).toEqual({
        decommit: mode,
        transfer: 'moved',
        movedBytes: 2 ** 32,
        codes: {
          malloc: code,
          mallocLarge: code,
          calloc: code,
          free: code,
          freeLarge: code,
          realloc: code,
          usableSize: code,
          stats: code,
          check: code,
          trim: code,
          inspect: code,
        },
        destroyed: true,
        ...(mode === 'dontneed' ? { first: 7 } : {}),
      });
    },
  );
});

describe('destroy() while a libuv job still holds a view', () => {
  // 'queued': the job waits behind another on the only pool thread while the heap is destroyed and a new one is
  // made; before the fix it wrote its 16 MiB into the new heap's live block (or SIGSEGVed on unmapped pages).
  test.each(['randomFill', 'fsRead', 'deflate', 'randomFill:queued', 'fsRead:queued', 'deflate:queued'])(
    '%s',
    (job) => {
      const { result } = run('async', job, { UV_THREADPOOL_SIZE: '1' });
      // The job's view is not detached (a detached buffer would slow every typed-array access of the process):
      // it still covers its 16 MiB of the destroyed heap's range, which stays mapped and owned by it.
      expect(result).toMatchObject({ outcome: 'ok', overwritten: 0, viewLength: 16 * 2 ** 20 });
      // The destroyed heap's range stays its own while the job can reach it: the new heap lands elsewhere.
      expect(result['sameBase']).toBe(false);
    },
  );
});

test('worker.terminate() inside native calls and during the addon initialisation never aborts', () => {
  const { result } = run('terminate', '40');
  expect(result['rounds']).toBe(40);
});

describe('check(), stats() and inspect() on metadata overwritten through the views', () => {
  test.each(['unmap', 'dontneed'])(
    '2000 hostile words (%s): each call returns or throws ERR_PYMALLOC_CORRUPT',
    (mode) => {
      const { result } = run('corrupt', `${mode}:2000`);
      expect(result['trials']).toBe(2000);
      // Both outcomes happen: some words matter to a walk, some do not.
      expect(result['corrupt']).toBeGreaterThan(100);
      expect(result['returned']).toBeGreaterThan(100);
    },
  );

  test('a default-mode heap with a corrupt usedpools: check() names it, malloc never faults', () => {
    const { result } = run('corrupt-malloc');
    expect(result).toEqual({ checkCode: 'ERR_PYMALLOC_CORRUPT', pointers: 5 });
  });
});

test("'unmap' heaps keep to their share of vm.max_map_count: the process can still map memory", () => {
  const { result, stderr } = run('map-limit');
  const max = result['max'] as number;
  // pymalloc's own splits stay within half of the limit, and the process as a whole well under it.
  expect(result['mapCount'] as number).toBeLessThanOrEqual(max / 2);
  expect(result['maps'] as number).toBeLessThan(max * 0.75);
  expect(result['junk']).toBe(2e6);
  expect(result['warnings']).toEqual(['PYMALLOC_MAP_LIMIT']);
  expect(stderr).toMatch(/reached pymalloc's share of vm.max_map_count/);
});

test('destroyed heaps keep no native memory; dropped ones are unmapped by garbage collection', () => {
  // Under AddressSanitizer (CI's last step), freed C++ memory waits in its quarantine: turn that off here.
  const asan = `${process.env['ASAN_OPTIONS'] ?? ''}:quarantine_size_mb=0`;
  const { result } = run('destroyed', '500', { ASAN_OPTIONS: asan });
  // Before: 135 KiB per destroyed heap, the 128 KiB commit bitmap of a 4 GiB 'unmap' heap freed only at GC. Now
  // only the JavaScript objects remain (8 KiB here; about 33 KiB under AddressSanitizer).
  expect(result['bytesPerHeap'] as number).toBeLessThan(64 * 1024);
  expect(result['liveAfter']).toBe(0);
});

test('heaps dropped without destroy() are released by garbage collection', () => {
  const { result } = run('dropped', '300');
  expect(result['liveAfter']).toBe(0);
});
