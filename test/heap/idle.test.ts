/**
 * The idle return (lib/idle.ts, the idleDelay option): a heap whose slow paths go quiet gives back what the
 * 'purge' policy kept (empty pools below its threshold, the arena kept against thrashing, cached large spans)
 * with no call into it; activity postpones it; the timer keeps neither the process nor the heap alive.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { Heap } from '../../lib';
import { resolveHeapOptions } from '../../lib/heap';
import { destroyAll, makeHeap } from './helpers';

afterEach(destroyAll);

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const KiB = 1024;

/** Fills a few pools and a large block, then frees them all: what the purge policy keeps below its threshold. */
function keepSomeFreeMemory(h: Heap): { kept: number; peak: number } {
  const blocks: number[] = [];
  for (let i = 0; i < 20_000; i++) blocks.push(h.malloc(64));
  const large = h.malloc(256 * KiB);
  h.u8.fill(1, large, large + 256 * KiB);
  const peak = h.residentBytes();
  for (const p of blocks) h.free(p);
  h.free(large);
  return { kept: h.residentBytes(), peak };
}

test('an idle heap gives back the free memory the purge policy kept, with no call', async () => {
  const h = makeHeap({ idleDelay: 200 });
  const fresh = h.residentBytes();
  const { kept, peak } = keepSomeFreeMemory(h);
  // 1.25 MiB of empty pools (under the 4 MiB threshold) and the 256 KiB span stay, until the heap is idle.
  expect(kept - fresh).toBeGreaterThan(1024 * KiB);
  await sleep(1000);
  expect(h.residentBytes() - fresh).toBeLessThanOrEqual(0.02 * peak);
  h.check();
  // And it is a heap like any other afterwards.
  const p = h.malloc(64);
  expect(h.u8[p]).toBe(0);
  h.free(p);
  h.check();
});

test('idleDelay 0, and the other policies, keep it: nothing goes back by itself', async () => {
  for (const options of [{ idleDelay: 0 }, { policy: 'cpython' as const }, { policy: 'never' as const }]) {
    const h = makeHeap(options);
    const { kept } = keepSomeFreeMemory(h);
    await sleep(300);
    expect({ options, resident: h.residentBytes() }).toEqual({ options, resident: kept });
  }
  expect(resolveHeapOptions({}).idleDelay).toBe(500);
  expect(resolveHeapOptions({ policy: 'cpython' }).idleDelay).toBe(0);
});

test('activity postpones it: the heap gives back only once its slow paths are quiet', async () => {
  const h = makeHeap({ idleDelay: 1500 });
  const { kept } = keepSomeFreeMemory(h);
  // A pool emptied every 100 ms for 2 s: never quiet for 1.5 s, so nothing goes back meanwhile.
  for (let i = 0; i < 20; i++) {
    const ps: number[] = [];
    for (let k = 0; k < 300; k++) ps.push(h.malloc(496)); // whole pools of the largest small class
    for (const p of ps) h.free(p);
    await sleep(100);
  }
  expect(h.residentBytes()).toBeGreaterThanOrEqual(kept);
  await sleep(2500);
  expect(h.residentBytes()).toBeLessThan(kept / 4);
  h.check();
});

test('bad idleDelay values are refused, naming the option', () => {
  for (const [value, message] of [
    [-1, /idleDelay must be an integer number of milliseconds from 0 to 2147483647, got -1/],
    [1.5, /got 1.5/],
    [2 ** 31, /got 2147483648/],
    ['500', /got 500/],
  ] as const) {
    expect(() => new Heap({ reserve: 64 * 1024 * 1024, idleDelay: value as number })).toThrow(message);
  }
  expect(() => new Heap({ reserve: 64 * 1024 * 1024, policy: 'cpython', idleDelay: 10 })).toThrow(
    /idleDelay needs the 'purge' policy/,
  );
});

test('destroy() cancels the timer', async () => {
  const h = makeHeap({ idleDelay: 50 });
  keepSomeFreeMemory(h);
  h.destroy();
  await sleep(200); // a timer firing on a destroyed heap would throw here (ERR_PYMALLOC_DESTROYED)
  expect(h.isDestroyed).toBe(true);
});

test('the timer keeps neither the process alive nor a dropped heap from being collected', () => {
  const child = join(__dirname, 'fixtures', 'idle-child.js');
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
