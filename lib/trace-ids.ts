/**
 * The trace parser's ID table: a trace's IDs, integers from 0 to 2^53 - 1, to dense object numbers 0, 1, 2, …
 * in order of first appearance. A JavaScript Map stops at 2^24 entries; this table holds as many IDs as its
 * typed arrays can index (more than MAX_TRACE_OBJECTS, 2^30). It has two parts:
 *
 * - direct: an ID below the direct part's length is its index (a recorder's IDs count up from 0: every ID that
 *   `pymalloc record` writes lands here, one array access per lookup). The part grows only while it stays
 *   within about twice the number of IDs held, so it costs at most about 8 bytes per ID.
 * - hash: any other ID, in an open-addressing table over typed arrays (linear probing, at most 3/4 full): the
 *   key (a float64 holds every integer up to 2^53 exactly) and the dense number + 1 (0 marks an empty slot),
 *   12 bytes a slot, 16 to 32 bytes per ID. Its hash is seeded at random, so that no file can be made to
 *   collide on purpose.
 *
 * An ID is in one part only: an ID hashed while it was beyond the direct part stays hashed when the direct part
 * later grows past it, so a lookup that misses in the direct part looks in the hash too (when it holds any).
 */

/** The direct part never grows beyond this many entries (a 2^31-entry Uint32Array is 8 GiB). */
const DIRECT_MAX = 2 ** 31;
/** IDs below this always go to the direct part (256 KiB of it at most), whatever the number of IDs. */
const DIRECT_SLACK = 2 ** 16;
const HASH_MIN = 1024;
/** The hash part's most slots: 2^31 slots, 3/4 full, hold more than 2^30 IDs. */
const HASH_MAX = 2 ** 31;
/** Math.imul read once: a global's property is a slow lookup where globals are intercepted (a vm context). */
const imul = Math.imul;

export class IdTable {
  /** IDs held. */
  size = 0;
  /** IDs held in the hash part. */
  hashed = 0;
  /** Dense number + 1 by ID; 0: not here. */
  private direct = new Uint32Array(1024);
  private keys = new Float64Array(0);
  /** Dense number + 1 by slot; 0: an empty slot. */
  private vals = new Uint32Array(0);
  private mask = -1;
  private readonly seed = (Math.random() * 2 ** 32) | 0;
  /** Where the last lookup that missed in the hash stopped: `add` of that key inserts there. */
  private missKey = -1;
  private missSlot = 0;

  /** The dense number of `key` (an integer from 0 to 2^53 - 1), or -1 if it is not in the table. */
  get(key: number): number {
    if (key < this.direct.length) {
      const v = this.direct[key];
      if (v !== 0) return v - 1;
    }
    return this.hashed === 0 ? -1 : this.hashGet(key);
  }

  /**
   * Adds `key`, which must not be in the table, as `dense` (by default the number of keys before it: a caller
   * numbering other IDs too passes its own count); returns `dense`.
   */
  add(key: number, dense = this.size): number {
    if (key < this.direct.length || this.growDirect(key)) this.direct[key] = dense + 1;
    else this.hashAdd(key, dense);
    this.size++;
    return dense;
  }

  private growDirect(key: number): boolean {
    if (key >= DIRECT_MAX) return false;
    let length = this.direct.length;
    while (length <= key) length *= 2;
    if (length > 2 * (this.size + 1) + DIRECT_SLACK) return false;
    const grown = new Uint32Array(length);
    grown.set(this.direct);
    this.direct = grown;
    return true;
  }

  private slotOf(key: number): number {
    // The key's two 32-bit halves, mixed (MurmurHash3's finaliser) with the seed.
    let h = (key >>> 0) ^ imul((key / 4294967296) >>> 0, 0x9e3779b1) ^ this.seed;
    h ^= h >>> 16;
    h = imul(h, 0x85ebca6b);
    h ^= h >>> 13;
    h = imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
    return h & this.mask;
  }

  private hashGet(key: number): number {
    const keys = this.keys;
    const vals = this.vals;
    const mask = this.mask;
    for (let s = this.slotOf(key); ; s = (s + 1) & mask) {
      const v = vals[s];
      if (v === 0) {
        this.missKey = key;
        this.missSlot = s;
        return -1;
      }
      if (keys[s] === key) return v - 1;
    }
  }

  private hashAdd(key: number, dense: number): void {
    if (4 * (this.hashed + 1) > 3 * this.vals.length) {
      this.rehash(Math.max(HASH_MIN, 2 * this.vals.length));
      this.missKey = -1;
    }
    let s: number;
    if (key === this.missKey) s = this.missSlot;
    else {
      const mask = this.mask;
      for (s = this.slotOf(key); this.vals[s] !== 0; s = (s + 1) & mask);
    }
    this.keys[s] = key;
    this.vals[s] = dense + 1;
    this.hashed++;
    this.missKey = -1;
  }

  private rehash(slots: number): void {
    if (slots > HASH_MAX) throw new RangeError(`Array buffer allocation failed: the ID table is full`);
    const oldKeys = this.keys;
    const oldVals = this.vals;
    this.keys = new Float64Array(slots);
    this.vals = new Uint32Array(slots);
    this.mask = slots - 1;
    const keys = this.keys;
    const vals = this.vals;
    const mask = this.mask;
    for (let i = 0; i < oldVals.length; i++) {
      const v = oldVals[i];
      if (v === 0) continue;
      const key = oldKeys[i];
      let s = this.slotOf(key);
      while (vals[s] !== 0) s = (s + 1) & mask;
      keys[s] = key;
      vals[s] = v;
    }
  }
}
