/**
 * The reference model for the differential fuzzer: live ID -> requested size, pointer, pattern and what the
 * allocator must have done with it (size class, large or not), plus the checks that compare a heap with it.
 *
 * Every live block holds `pattern(id)`: the bytes of a fixed random table starting at an offset derived from the
 * block's ID, so that writing or checking a block (all of it, even a 4 MiB one) is one native copy or compare.
 */
import { rng } from '../../bench/generate';
import type { Heap } from '../../lib';

/** Deterministic PRNG (mulberry32): the benchmark's own. */
export { rng };

/** The largest block the fuzzer asks for. */
export const MAX_FUZZ_SIZE = 4 * 1024 * 1024;
const PATTERN_SHIFTS = 1 << 16;

/** Random bytes, long enough for a block of MAX_FUZZ_SIZE at any of the 65536 starting offsets. */
export const PATTERN: Uint8Array = (() => {
  const t = new Uint8Array(MAX_FUZZ_SIZE + PATTERN_SHIFTS);
  const words = new Uint32Array(t.buffer);
  const r = rng(0x7a77e2);
  for (let i = 0; i < words.length; i++) words[i] = (r() * 2 ** 32) >>> 0;
  return t;
})();

/** Where in PATTERN the bytes of block `id` start. */
export function patternOffset(id: number): number {
  return (Math.imul(id, 0x9e3779b1) >>> 16) & (PATTERN_SHIFTS - 1);
}

const ZEROS = new Uint8Array(MAX_FUZZ_SIZE);
const CLEAN = new Uint8Array(MAX_FUZZ_SIZE).fill(0xcd);

export interface Block {
  id: number;
  p: number;
  /** Bytes requested. */
  n: number;
  /** Index in Model.ids. */
  index: number;
  /** Size class of the underlying block, or -1 for a large block. */
  cls: number;
  /** For a large block: the size its span records (see Allocator.mallocLarge / realloc). */
  recorded: number;
}

/** Live blocks, by ID, with O(1) random choice and removal. */
export class Model {
  readonly blocks = new Map<number, Block>();
  readonly ids: number[] = [];
  bytes = 0;
  private nextId = 1;

  add(p: number, n: number, cls: number, recorded: number): Block {
    const b: Block = { id: this.nextId++, p, n, index: this.ids.length, cls, recorded };
    this.blocks.set(b.id, b);
    this.ids.push(b.id);
    this.bytes += n;
    return b;
  }

  remove(b: Block): void {
    const last = this.ids.pop()!;
    if (last !== b.id) {
      this.ids[b.index] = last;
      this.blocks.get(last)!.index = b.index;
    }
    this.blocks.delete(b.id);
    this.bytes -= b.n;
  }

  resize(b: Block, p: number, n: number, cls: number, recorded: number): void {
    this.bytes += n - b.n;
    b.p = p;
    b.n = n;
    b.cls = cls;
    b.recorded = recorded;
  }

  pick(r: () => number): Block {
    return this.blocks.get(this.ids[Math.floor(r() * this.ids.length)])!;
  }

  get size(): number {
    return this.ids.length;
  }
}

function firstDifference(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

function expectBytes(h: Heap, p: number, n: number, expected: Uint8Array, what: string): void {
  const actual = h.u8.subarray(p, p + n);
  if (Buffer.compare(actual, expected.subarray(0, n)) !== 0) {
    const i = firstDifference(actual, expected);
    throw new Error(
      `${what}: block 0x${p.toString(16)} (${n} bytes) has 0x${actual[i].toString(16)} at +${i}, expected 0x${expected[i].toString(16)}`,
    );
  }
}

/** Writes block b's pattern over bytes [from, b.n). */
export function writePattern(h: Heap, b: Block, from = 0): void {
  if (from >= b.n) return;
  const o = patternOffset(b.id);
  h.u8.set(PATTERN.subarray(o + from, o + b.n), b.p + from);
}

/** Checks the first `n` bytes of block b (all of them by default) against its pattern. */
export function checkPattern(h: Heap, b: Block, n = b.n): void {
  const o = patternOffset(b.id);
  expectBytes(h, b.p, n, PATTERN.subarray(o, o + n), `data of block #${b.id} lost`);
}

export function checkZero(h: Heap, p: number, n: number): void {
  expectBytes(h, p, n, ZEROS, 'calloc returned memory that is not zero');
}

export function checkClean(h: Heap, p: number, n: number): void {
  expectBytes(h, p, n, CLEAN, 'debug malloc returned memory that is not CLEANBYTE');
}

/** No two live blocks overlap: their [p, p + usableSize(p)) ranges, sorted, are disjoint. */
export function checkNoOverlap(h: Heap, m: Model): void {
  const ranges = m.ids.map((id) => {
    const b = m.blocks.get(id)!;
    const usable = h.usableSize(b.p);
    if (usable < b.n) throw new Error(`usableSize(0x${b.p.toString(16)}) = ${usable} < ${b.n} requested`);
    return [b.p, b.p + usable, id];
  });
  ranges.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < ranges.length; i++) {
    if (ranges[i][0] < ranges[i - 1][1]) {
      throw new Error(
        `blocks #${ranges[i - 1][2]} [0x${ranges[i - 1][0].toString(16)}, 0x${ranges[i - 1][1].toString(16)}) and ` +
          `#${ranges[i][2]} [0x${ranges[i][0].toString(16)}, 0x${ranges[i][1].toString(16)}) overlap`,
      );
    }
  }
}

function expectEqual(actual: unknown, expected: unknown, what: string): void {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${what}: got ${a}, expected ${e}`);
}

/**
 * The heap's own walk (check), its statistics, the C inspector and the model all agree: per class pools and
 * blocks, arenas, free and used pools, large blocks and the bytes they record.
 */
export function checkAgreement(h: Heap, m: Model): void {
  h.check();
  const s = h.stats();
  const c = h.inspect();
  expectEqual(
    c.classes.map((x) => [x.pools, x.blocks]),
    s.classes.map((x) => [x.pools, x.blocksInUse]),
    'inspector vs stats: per-class pools and blocks',
  );
  expectEqual(
    [c.arenas, c.freePools, c.usedPoolsListed + c.fullPools],
    [s.arenas.current, s.pools.unused, s.pools.used],
    'inspector vs stats: arenas, free pools, used pools',
  );
  const perClass = new Array<number>(s.classes.length).fill(0);
  let large = 0;
  let recorded = 0;
  for (const b of m.blocks.values()) {
    if (b.cls < 0) {
      large++;
      recorded += b.recorded;
    } else {
      perClass[b.cls]++;
    }
  }
  expectEqual(
    s.classes.map((x) => x.blocksInUse),
    perClass,
    'stats vs model: blocks in use per class',
  );
  expectEqual([s.large.blocks, s.large.bytesRequested], [large, recorded], 'stats vs model: large blocks');
  expectEqual(s.blocksInUse, m.size, 'stats vs model: blocks in use');
}
