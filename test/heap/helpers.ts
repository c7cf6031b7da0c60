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

/** Deterministic PRNG (mulberry32) for workloads. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Resident bytes of the heap's data region (arenas and spans), leaving out its metadata. */
export function dataResident(h: Heap): number {
  const start = h.meta.dataStart;
  return h.reservation.residentBytes(start, h.geometry.reserve - start);
}
