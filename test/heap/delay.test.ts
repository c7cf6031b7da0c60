/**
 * The delayed return (lib/delay.ts, the purgeDelay option): under the 'purge' policy, memory that becomes free
 * stays committed for reuse and goes back to the OS by itself once the delay has passed — with no call into the
 * heap, while the heap stays busy, and within a long synchronous job too; purgeDelay 0 gives it back at once;
 * the timer keeps neither the process nor the heap alive.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { Heap } from '../../lib';
import { DEFAULT_PURGE_DELAY, resolveHeapOptions } from '../../lib/heap';
import { dataResident, destroyAll, makeHeap } from './helpers';

afterEach(destroyAll);

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const KiB = 1024;
const MiB = 1024 * KiB;

/** Fills 6 MiB of pools and a large block, then frees them all; returns the data region's resident peak. */
function buildAndFree(h: Heap): number {
  const blocks: number[] = [];
  for (let i = 0; i < 100_000; i++) blocks.push(h.malloc(64));
  const large = h.malloc(256 * KiB);
  h.u8.fill(1, large, large + 256 * KiB);
  const peak = dataResident(h);
  for (const p of blocks) h.free(p);
  h.free(large);
  return peak;
}

/** Empties and refills one pool of the largest small class, `times` times: slow paths that free memory. */
function churnPool(h: Heap, times: number): void {
  for (let t = 0; t < times; t++) {
    const ps: number[] = [];
    for (let k = 0; k < 32; k++) ps.push(h.malloc(496)); // one 16 KiB pool holds 32 of them
    for (const p of ps) h.free(p);
  }
}

test('freed memory stays for reuse, then goes back by itself once the delay has passed', async () => {
  const h = makeHeap({ purgeDelay: 1000 });
  const peak = buildAndFree(h);
  // Wholly free arenas and empty pools are kept for reuse, nothing decommitted yet.
  expect(h.stats().arenas.current).toBeGreaterThanOrEqual(6);
  expect(dataResident(h)).toBeGreaterThan(0.9 * peak);
  // Reused within the delay: the same arenas serve a second build, no new one is made.
  const before = h.stats().arenas.allocatedTotal;
  buildAndFree(h);
  expect(h.stats().arenas.allocatedTotal).toBe(before);
  await sleep(1600);
  expect(dataResident(h)).toBeLessThanOrEqual(0.02 * peak);
  expect(h.stats().arenas.current).toBe(0);
  h.check();
  // And it is a heap like any other afterwards.
  const p = h.malloc(64);
  expect(h.u8[p]).toBe(0);
  h.free(p);
  h.check();
});

test('a busy heap gives it back too: the delay runs from the first free, not from the last', async () => {
  const h = makeHeap({ purgeDelay: 200 });
  const peak = buildAndFree(h);
  // A pool emptied every 20 ms for a whole second: the heap is never quiet.
  let low = Number.POSITIVE_INFINITY;
  for (let i = 0; i < 50; i++) {
    churnPool(h, 1);
    await sleep(20);
    low = Math.min(low, dataResident(h));
  }
  expect(low).toBeLessThanOrEqual(0.02 * peak);
  h.check();
});

test('a long synchronous job, in which no timer can run, is held to the deadline by its own frees', async () => {
  const h = makeHeap({ purgeDelay: 100 });
  const peak = buildAndFree(h);
  const start = Date.now();
  // No await: only the slow paths' frees past the deadline can give the memory back. They give back the free
  // arenas and empty pools, and keep what the job would fault in again: the arena kept against thrashing (the
  // one the job is using) and the cached large span.
  while (Date.now() - start < 400) churnPool(h, 10);
  expect(h.stats().arenas.current).toBe(1);
  expect(dataResident(h)).toBeLessThanOrEqual(MiB + 256 * KiB + 64 * KiB);
  h.check();
  // Once the job lets the event loop run, the timer gives back the rest.
  await sleep(400);
  expect(dataResident(h)).toBeLessThanOrEqual(0.02 * peak);
});

test('trim() still gives everything back at once, and the deadline starts again from the next free', async () => {
  const h = makeHeap({ purgeDelay: 60_000 });
  const peak = buildAndFree(h);
  expect(dataResident(h)).toBeGreaterThan(0.9 * peak);
  expect(h.trim()).toBeGreaterThan(0.9 * peak);
  expect(dataResident(h)).toBeLessThanOrEqual(0.02 * peak);
  h.check();
});

test('purgeDelay 0 gives wholly free arenas back at once; the other policies keep memory, with no timer', async () => {
  const now = makeHeap({ purgeDelay: 0 });
  const peak = buildAndFree(now);
  // The arena kept against thrashing and the span cache stay (1 MiB each at most); every other arena went.
  expect(now.stats().arenas.current).toBeLessThanOrEqual(1);
  expect(dataResident(now)).toBeLessThan(peak / 2);
  for (const options of [{ purgeDelay: 0 }, { policy: 'cpython' as const }, { policy: 'never' as const }]) {
    const h = makeHeap(options);
    buildAndFree(h);
    const kept = dataResident(h);
    await sleep(300);
    expect({ options, resident: dataResident(h) }).toEqual({ options, resident: kept });
  }
  expect(resolveHeapOptions({}).purgeDelay).toBe(DEFAULT_PURGE_DELAY);
  expect(resolveHeapOptions({ policy: 'cpython' }).purgeDelay).toBe(0);
  expect(resolveHeapOptions({ policy: 'never' }).purgeDelay).toBe(0);
});

test('the default heap is back at its floor within a second of freeing everything', async () => {
  const h = makeHeap();
  const peak = buildAndFree(h);
  await sleep(DEFAULT_PURGE_DELAY + 500);
  expect(dataResident(h)).toBeLessThanOrEqual(0.02 * peak);
  expect(DEFAULT_PURGE_DELAY + 500).toBeLessThanOrEqual(1000);
});

test('bad purgeDelay values are refused, naming the option', () => {
  for (const [value, message] of [
    [-1, /purgeDelay must be an integer number of milliseconds from 0 to 2147483647, got -1/],
    [1.5, /got 1.5/],
    [2 ** 31, /got 2147483648/],
    ['500', /got 500/],
  ] as const) {
    expect(() => new Heap({ reserve: 64 * MiB, purgeDelay: value as number })).toThrow(message);
  }
  expect(() => new Heap({ reserve: 64 * MiB, policy: 'cpython', purgeDelay: 10 })).toThrow(
    /purgeDelay needs the 'purge' policy/,
  );
});

test('destroy() cancels the timer', async () => {
  const h = makeHeap({ purgeDelay: 50 });
  buildAndFree(h);
  h.destroy();
  await sleep(200); // a timer firing on a destroyed heap would throw here (ERR_PYMALLOC_DESTROYED)
  expect(h.isDestroyed).toBe(true);
});

test('the timer keeps neither the process alive nor a dropped heap from being collected', () => {
  const child = join(__dirname, 'fixtures', 'delay-child.js');
  const lib = join(__dirname, '..', '..', 'dist', 'lib');
  const r = spawnSync(process.execPath, ['--expose-gc', child, lib], { encoding: 'utf8', timeout: 30_000 });
  expect({ status: r.status, signal: r.signal, stderr: r.stderr }).toEqual({
    status: 0,
    signal: null,
    stderr: '',
  });
  // The child armed a 60 s timer and ended at once; its dropped heap was collected first.
  expect(JSON.parse(r.stdout)).toEqual({ collected: true });
});

test.each(['arenas', 'cache'])(
  'the timer survives a heap whose metadata the program overwrote (%s): a warning, not a crash or a hang',
  (what) => {
    const child = join(__dirname, 'fixtures', 'delay-corrupt-child.js');
    const lib = join(__dirname, '..', '..', 'dist', 'lib');
    const r = spawnSync(process.execPath, [child, lib, what], { encoding: 'utf8', timeout: 30_000 });
    expect({ status: r.status, signal: r.signal }).toEqual({ status: 0, signal: null });
    expect(JSON.parse(r.stdout)).toEqual({
      alive: true,
      warnings: ['PYMALLOC_PURGE_FAILED'],
      trim: 'ERR_PYMALLOC_CORRUPT',
    });
    expect(r.stderr).toMatch(/pymalloc: the delayed return failed: .*corrupt.*heap\.check\(\)/);
  },
);
