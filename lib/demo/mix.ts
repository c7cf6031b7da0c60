/**
 * The demo's workload: a deterministic, CPython-like mix of small-object sizes. Shared by the demo's parent
 * process and its simulator child so that both allocate the same kind (and amount) of memory.
 *
 * The weights follow what a CPython 3.11 program allocates through pymalloc: mostly 16–128 bytes (ints and
 * floats in 32-byte blocks, short strings, tuples, list and dict headers with their GC header), fewer 129–512
 * bytes (small dicts' key tables, list item arrays, frames). A request's size is uniform inside its band.
 */

/** One band of the mix: `weight` parts of the requests are uniform in [min, max] bytes. */
export interface SizeBand {
  readonly weight: number;
  readonly min: number;
  readonly max: number;
}

export const SIZE_MIX: readonly SizeBand[] = [
  { weight: 20, min: 16, max: 32 },
  { weight: 35, min: 33, max: 64 },
  { weight: 25, min: 65, max: 128 },
  { weight: 12, min: 129, max: 256 },
  { weight: 8, min: 257, max: 512 },
];

const TOTAL_WEIGHT = SIZE_MIX.reduce((sum, b) => sum + b.weight, 0);

/** The mean request of the mix, in bytes (about 100). */
export const MEAN_SIZE = SIZE_MIX.reduce(
  (sum, b) => sum + (b.weight / TOTAL_WEIGHT) * ((b.min + b.max) / 2),
  0,
);

/** mulberry32: a small, fast, seedable generator of uniform numbers in [0, 1). */
export function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `count` request sizes drawn from the mix with the given seed; the same seed gives the same sizes. */
export function objectSizes(count: number, seed: number): Uint16Array {
  const next = random(seed);
  const cumulative: number[] = [];
  let acc = 0;
  for (const band of SIZE_MIX) {
    acc += band.weight / TOTAL_WEIGHT;
    cumulative.push(acc);
  }
  const last = SIZE_MIX.length - 1;
  const sizes = new Uint16Array(count);
  for (let i = 0; i < count; i++) {
    const u = next();
    let k = 0;
    while (k < last && cumulative[k]! <= u) k++;
    const band = SIZE_MIX[k]!;
    sizes[i] = band.min + Math.floor(next() * (band.max - band.min + 1));
  }
  return sizes;
}

/** The sum of `sizes`. */
export function totalBytes(sizes: Uint16Array): number {
  let sum = 0;
  for (let i = 0; i < sizes.length; i++) sum += sizes[i]!;
  return sum;
}
