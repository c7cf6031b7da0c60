/**
 * Shared heaps in one thread: the API, and cross-thread frees made deterministic by two Heap objects of one
 * thread (each has a thread slot of its own, so a block of one freed through the other takes the cross-thread
 * path exactly as a block freed by another thread does).
 */
import { types } from 'node:util';
import { Heap } from '../../lib';
import { rng } from '../heap/helpers';
import { codeOf } from './helpers';

const MiB = 1024 * 1024;
const small = { shared: true, reserve: 64 * MiB } as const;

describe('a shared heap in one thread', () => {
  test('is a Heap over a SharedArrayBuffer, with the whole API', () => {
    const heap = new Heap(small);
    try {
      expect(heap).toBeInstanceOf(Heap);
      expect(heap.shared).toBe(true);
      // (A SharedArrayBuffer of the main realm: jest's realm has another constructor.)
      expect(types.isSharedArrayBuffer(heap.buffer)).toBe(true);
      expect(heap.buffer.byteLength).toBe(64 * MiB);
      const p = heap.malloc(100);
      heap.u8.fill(7, p, p + 100);
      expect(heap.usableSize(p)).toBe(112);
      const q = heap.realloc(p, 300);
      expect([...heap.u8.subarray(q, q + 100)].every((b) => b === 7)).toBe(true);
      const z = heap.calloc(10, 10);
      expect(heap.u8.subarray(z, z + 100).every((b) => b === 0)).toBe(true);
      const big = heap.malloc(1 * MiB);
      heap.u8[big + MiB - 1] = 1;
      expect(heap.stats().blocksInUse).toBe(3);
      heap.check();
      heap.free(q);
      heap.free(z);
      heap.free(big);
      expect(heap.stats().blocksInUse).toBe(0);
      heap.check();
      expect(heap.trim()).toBeGreaterThanOrEqual(0);
    } finally {
      heap.destroy();
    }
  });

  test('bad options and a private heap name what is wrong', () => {
    expect(codeOf(() => new Heap({ shared: 1 as never }))).toBe('ERR_INVALID_ARG_TYPE');
    expect(codeOf(() => new Heap({ shared: true, decommit: 'unmap' }))).toBe('ERR_OUT_OF_RANGE');
    expect(codeOf(() => new Heap({ shared: true, debug: true }))).toBe('ERR_OUT_OF_RANGE');
    const priv = new Heap({ reserve: 64 * MiB });
    try {
      expect(priv.shared).toBe(false);
      expect(codeOf(() => priv.handle)).toBe('ERR_PYMALLOC_NOT_SHARED');
      expect(codeOf(() => priv.detach())).toBe('ERR_PYMALLOC_NOT_SHARED');
    } finally {
      priv.destroy();
    }
    for (const bad of [
      undefined,
      null,
      1,
      {},
      { kind: 'pymalloc.SharedHeap', version: 1, buffer: new ArrayBuffer(8) },
    ]) {
      expect(codeOf(() => Heap.attach(bad as never))).toMatch(/^ERR_INVALID_ARG_(TYPE|VALUE)$/);
    }
    const foreign = new SharedArrayBuffer(64 * MiB);
    const heap = new Heap(small);
    try {
      expect(codeOf(() => Heap.attach({ ...heap.handle, buffer: foreign }))).toMatch(
        /^ERR_INVALID_ARG_VALUE$/,
      );
      heap.check();
    } finally {
      heap.destroy();
    }
  });

  test('a block freed through another thread slot goes back to its owner, and its pool to the arena', () => {
    const a = new Heap(small);
    const b = Heap.attach(a.handle);
    try {
      expect(b.shared).toBe(true);
      expect(b.buffer).toBe(a.buffer);
      const blocks: number[] = [];
      for (let i = 0; i < 5000; i++) {
        const p = a.malloc(8 + (i % 500));
        a.u32[p >>> 2] = i;
        blocks.push(p);
      }
      // b reads what a wrote, and frees every block: each goes onto its pool's cross-thread list.
      blocks.forEach((p, i) => {
        expect(b.u32[p >>> 2]).toBe(i);
        b.free(p);
      });
      // Not in use any more, though a has not taken them back yet.
      expect(a.stats().blocksInUse).toBe(0);
      a.check();
      // A double free of a block on a cross-thread list is caught, from either side.
      expect(codeOf(() => b.free(blocks[0]!))).toBe('ERR_PYMALLOC_DOUBLE_FREE');
      expect(codeOf(() => a.free(blocks[1]!))).toBe('ERR_PYMALLOC_DOUBLE_FREE');
      // a takes them back (trim does, as its next slow path would) and its pools go back to their arenas.
      a.trim();
      const st = a.stats();
      expect(st.blocksInUse).toBe(0);
      expect(st.pools.used).toBe(0);
      a.check();
      b.check();
    } finally {
      b.detach();
      a.destroy();
    }
  });

  test('blocks come back to a pool that is full, and a malloc that would need a new pool takes them back', () => {
    const a = new Heap(small);
    const b = Heap.attach(a.handle);
    try {
      const perPool = Math.floor((16384 - 48) / 64);
      const blocks = Array.from({ length: perPool }, () => a.malloc(64));
      expect(a.stats().classes[3]!.pools).toBe(1); // one full pool
      for (const p of blocks) b.free(p);
      // The next malloc of that class finds usedpools empty: it takes the blocks back instead of a new pool.
      const q = a.malloc(64);
      expect(blocks).toContain(q);
      const st = a.stats();
      expect(st.classes[3]!.pools).toBe(1);
      expect(st.blocksInUse).toBe(1);
      a.free(q);
      a.check();
    } finally {
      b.detach();
      a.destroy();
    }
  });

  test('a thread that detaches leaves its pools, with their live blocks, to be adopted', () => {
    const a = new Heap(small);
    const b = Heap.attach(a.handle);
    const kept: number[] = [];
    for (let i = 0; i < 3000; i++) {
      const p = b.malloc(16 + (i % 300));
      b.u32[p >>> 2] = 0xc0de0000 + i;
      if (i % 3 === 0) kept.push(p);
      else b.free(p);
    }
    b.detach();
    expect(codeOf(() => b.malloc(8))).toBe('ERR_PYMALLOC_DETACHED');
    expect(b.isDestroyed).toBe(false);
    try {
      a.trim(); // adopts the abandoned slot
      a.check();
      expect(a.stats().blocksInUse).toBe(kept.length);
      kept.forEach((p, i) => {
        expect(a.u32[p >>> 2]).toBe(0xc0de0000 + 3 * i);
        a.free(p); // a's own now
      });
      const st = a.stats();
      expect(st.blocksInUse).toBe(0);
      expect(st.pools.used).toBe(0);
      a.check();
      // The slot is free again: a new attach takes it.
      const c = Heap.attach(a.handle);
      expect((c as unknown as { threadSlot: number }).threadSlot).toBe(1);
      c.detach();
    } finally {
      a.destroy();
    }
  });

  test('destroy() from any Heap object ends the heap for all of them; views read zeros', () => {
    const a = new Heap(small);
    const b = Heap.attach(a.handle);
    const p = a.malloc(40);
    a.u8[p] = 9;
    const view = b.u8;
    b.destroy();
    expect(b.isDestroyed).toBe(true);
    expect(a.isDestroyed).toBe(true);
    expect(view[p]).toBe(0);
    for (const fn of [
      () => a.malloc(8),
      () => a.free(p),
      () => a.stats(),
      () => a.check(),
      () => b.malloc(8),
    ]) {
      expect(codeOf(fn)).toBe('ERR_PYMALLOC_DESTROYED');
    }
    expect(codeOf(() => Heap.attach(a.handle))).toBe('ERR_PYMALLOC_DESTROYED');
    a.destroy(); // again: nothing
  });

  test('thread slots run out with a clear error, and detached ones are reused', () => {
    const a = new Heap(small);
    const others: Heap[] = [];
    try {
      for (;;) {
        try {
          others.push(Heap.attach(a.handle));
        } catch (err) {
          expect((err as { code?: string }).code).toBe('ERR_PYMALLOC_TOO_MANY_THREADS');
          break;
        }
        if (others.length > 1000) throw new Error('no limit on thread slots');
      }
      expect(others.length).toBe(63);
      others.pop()!.detach();
      a.trim();
      others.push(Heap.attach(a.handle));
    } finally {
      for (const h of others) h.detach();
      a.destroy();
    }
  });

  test('a random mix across three Heap objects keeps every byte and every count', () => {
    const a = new Heap(small);
    const hs = [a, Heap.attach(a.handle), Heap.attach(a.handle)];
    const live = new Map<number, { size: number; tag: number }>();
    const random = rng(12345);
    const rand = (n: number) => Math.floor(random() * n);
    try {
      for (let op = 0; op < 200000; op++) {
        const h = hs[rand(3)]!;
        if (live.size < 4000 && rand(2) === 0) {
          const size = rand(10) === 0 ? 1000 + rand(20000) : 1 + rand(512);
          const p = h.malloc(size);
          const tag = op & 0xff;
          h.u8.fill(tag, p, p + size);
          live.set(p, { size, tag });
        } else if (live.size > 0) {
          const keys = [...live.keys()];
          const p = keys[rand(keys.length)]!;
          const { size, tag } = live.get(p)!;
          const bytes = h.u8.subarray(p, p + size);
          if (!bytes.every((x) => x === tag)) throw new Error(`block ${p} lost its bytes`);
          live.delete(p);
          if (rand(4) === 0) {
            // realloc through any thread's object: the old block goes back to its owner (maybe another's).
            const n = rand(10) === 0 ? 1000 + rand(20000) : 1 + rand(512);
            const q = h.realloc(p, n);
            const kept = Math.min(n, size);
            if (!h.u8.subarray(q, q + kept).every((x) => x === tag))
              throw new Error(`realloc lost bytes of ${p}`);
            h.u8.fill(tag, q, q + n);
            live.set(q, { size: n, tag });
          } else {
            h.free(p);
          }
        }
        if (op % 50000 === 0) for (const x of hs) x.check();
      }
      for (const [p] of live) a.free(p);
      for (const x of hs) x.trim();
      expect(a.stats().blocksInUse).toBe(0);
      for (const x of hs) x.check();
    } finally {
      for (const x of hs.slice(1)) x.detach();
      a.destroy();
    }
  });
});
