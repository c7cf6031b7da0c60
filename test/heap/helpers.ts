import { Heap, type HeapOptions } from '../../lib';

/** Heaps made by a test file, destroyed after it. A small reservation keeps tests light. */
const made: Heap[] = [];

export function makeHeap(options: HeapOptions = {}): Heap {
  const h = new Heap({ reserve: 256 * 1024 * 1024, ...options });
  made.push(h);
  return h;
}

export function destroyAll(): void {
  for (const h of made.splice(0)) h.destroy();
}

/** Expects fn to throw an error whose code is `code`, and the heap to pass check() afterwards. */
export function expectCode(h: Heap, fn: () => unknown, code: string, message?: RegExp): void {
  let thrown: unknown;
  try {
    fn();
  } catch (err) {
    thrown = err;
  }
  expect(thrown).toBeInstanceOf(Error);
  expect((thrown as { code?: string }).code).toBe(code);
  if (message) expect((thrown as Error).message).toMatch(message);
  if (!h.isDestroyed) h.check();
}

/** Deterministic PRNG (mulberry32) for workloads: the benchmark's own. */
export { rng } from '../../bench/generate';

/** Resident bytes of the heap's data region (arenas and spans), leaving out its metadata. */
export function dataResident(h: Heap): number {
  const start = h.meta.dataStart;
  return h.reservation.residentBytes(start, h.geometry.reserve - start);
}
