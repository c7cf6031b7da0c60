/**
 * The demo's wait for the delayed return (settle() in lib/demo/demo.ts): it measures what the heap gave back by
 * itself, so it waits for the heap's timer even when a loaded machine runs that timer late, and not forever.
 */

import { Heap } from '../../lib';
import { settle } from '../../lib/demo/demo';

/** A heap whose delayed return is still pending until `clearAfterMs` (never when omitted). */
function lateHeap(purgeDelay: number, clearAfterMs?: number): { purgeDelay: number; purgeDeadline: number } {
  const heap = { purgeDelay, purgeDeadline: 1 };
  if (clearAfterMs !== undefined) setTimeout(() => (heap.purgeDeadline = 0), clearAfterMs);
  return heap;
}

test('waits past the delay until a late timer has given the memory back', async () => {
  const heap = lateHeap(20, 400);
  let samples = 0;
  const start = Date.now();
  await settle(heap, () => samples++);
  expect(heap.purgeDeadline).toBe(0);
  expect(Date.now() - start).toBeGreaterThanOrEqual(395);
  expect(samples).toBeGreaterThan(2);
});

test('waits at most the limit for a timer that never runs', async () => {
  const start = Date.now();
  await settle(lateHeap(20), () => {}, 200);
  const waited = Date.now() - start;
  expect(waited).toBeGreaterThanOrEqual(20 + 50 + 200 - 5);
  expect(waited).toBeLessThan(2_000);
});

test('does not wait when the heap returns memory at once', async () => {
  const start = Date.now();
  await settle(lateHeap(0), () => {});
  expect(Date.now() - start).toBeLessThan(20);
});

test('on a real heap, ends with nothing pending and the freed pages gone', async () => {
  const heap = new Heap({ purgeDelay: 30 });
  try {
    const ps: number[] = [];
    for (let i = 0; i < 50_000; i++) ps.push(heap.malloc(64));
    for (const p of ps) heap.u8.fill(1, p, p + 64);
    for (const p of ps) heap.free(p);
    expect(heap.purgeDeadline).not.toBe(0);
    await settle(heap, () => {});
    expect(heap.purgeDeadline).toBe(0);
    expect(heap.stats().arenas.current).toBe(0);
  } finally {
    heap.destroy();
  }
});
