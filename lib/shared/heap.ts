/**
 * SharedHeap: one thread's Heap object over a shared heap (`new Heap({ shared: true })`, `Heap.attach(handle)`).
 * It owns this thread's side of the heap: its thread slot, the fast paths over its own pools (the private heap's,
 * plus one owner check in free), the hand-off of other threads' blocks (remote.ts), and which whole-heap
 * operations take the heap lock (lock.ts). The heap itself (arenas, pools, spans, counters) is the private
 * heap's code, run under the lock. docs/architecture.md#shared-heaps says why it is built this way.
 */
import { codedError } from '../core';
import {
  heap_state_set_shared,
  OFFSETOF_POOL_HEADER_FREEBLOCK,
  OFFSETOF_POOL_HEADER_NEXTPOOL,
  OFFSETOF_POOL_HEADER_REF_COUNT,
  shared_state_set_magic,
  shared_state_set_max_threads,
  shared_state_set_pools,
  shared_state_set_slots,
} from '../generated/layout';
import { sharedFastPathClasses } from '../generated/shared-fastpaths';
import {
  Heap,
  type ResolvedHeapOptions,
  registerSharedHeap,
  type SharedHeapHandle,
  sameConstants,
} from '../heap';
import type { HeapInspection } from '../os';
import { allocateFromNewPool, insertToUsedpool, poolEmptied, poolExtend } from '../pool';
import type { HeapStats } from '../stats';
import { checkShared } from './check';
import { lockHeap, unlockHeap, withLock } from './lock';
import { collect, freeRemote, onRemoteList, remoteCount } from './remote';
import { abandonSlot, adoptAbandoned, anyAbandoned, claimSlot, sweepFreeSlots } from './slots';
import {
  FLAG_CORRUPT,
  FLAG_DESTROYED,
  FLAG_INTERRUPTED,
  SHARED_MAGIC,
  type SharedCore,
  SLOT_FREE,
  sharedFoldedConstants,
  slotPendingIdx,
  slotStateIdx,
  slotUsedBase,
  W_FLAGS,
  W_LOCK,
  W_MAGIC,
  XI_OWNER,
  XI_SHIFT,
  xinfo,
} from './state';

const FREEBLOCK = OFFSETOF_POOL_HEADER_FREEBLOCK;
const REF_COUNT = OFFSETOF_POOL_HEADER_REF_COUNT;
const NEXTPOOL = OFFSETOF_POOL_HEADER_NEXTPOOL;

/** How often (ms) an attached thread looks for blocks other threads gave back to its pools while it is idle. */
export const IDLE_TICK_MS = 100;

/**
 * A Heap object collected without detach() in a thread that goes on: its slot is abandoned so that another
 * thread adopts its pools. (A thread that ends is the native shim's: its cleanup hook abandons the slot.)
 */
const ABANDON = new FinalizationRegistry<{ u32: Uint32Array; shared: number; state: number }>(
  ({ u32, shared, state }) => {
    if (u32.length !== 0 && u32[shared + W_MAGIC] === SHARED_MAGIC) abandonSlot(u32, shared, state);
  },
);

export class SharedHeap extends Heap implements SharedCore {
  declare readonly slot: number;
  declare readonly slotTag: number;
  declare readonly poolBits: number;
  declare readonly xinfoIdx: number;
  declare readonly sharedIdx: number;
  declare readonly pendingIdx: number;
  declare lockDepth: number;
  /** @internal detach() ran: calls throw ERR_PYMALLOC_DETACHED. */
  declare private detachedHere: boolean;
  declare private readonly handleValue: SharedHeapHandle;
  declare private tick: ReturnType<typeof setInterval> | undefined;
  declare private readonly emptied: (pool: number) => void;
  declare private adoptCountdown: number;

  /** @internal Made by `new Heap({ shared: true })` and `Heap.attach(handle)`, never directly. */
  constructor(options: ResolvedHeapOptions) {
    super(options);
    const self = this as unknown as Record<string, unknown>;
    self['poolBits'] = this.geometry.poolBits;
    self['xinfoIdx'] = this.meta.poolInfo >>> 2;
    self['sharedIdx'] = this.meta.shared >>> 2;
    self['lockDepth'] = 0;
    self['detachedHere'] = false;
    self['adoptCountdown'] = 0;
    self['emptied'] = (pool: number) => this.poolEmptiedShared(pool);
    if (options.attachTo === undefined) this.initShared();
    else this.checkAttached();
    const slot = claimSlot(this);
    self['slot'] = slot;
    self['slotTag'] = slot + 1;
    self['pendingIdx'] = slotPendingIdx(this, slot);
    self['usedBase'] = slotUsedBase(this, slot);
    self['handleValue'] = Object.freeze({
      kind: 'pymalloc.SharedHeap',
      version: 1,
      buffer: this.reservation.buffer as unknown as SharedArrayBuffer,
      options: options.handleOptions,
    });
    // A thread that ends attached (worker.terminate() included) gives up its slot, and the lock if it held it.
    const m = this.meta;
    this.reservation.bindThread(
      m.shared + 4 * W_LOCK,
      m.shared + 4 * W_FLAGS,
      slotStateIdx(this, slot) * 4,
      this.slotTag,
    );
    ABANDON.register(this, { u32: this.u32, shared: this.sharedIdx, state: slotStateIdx(this, slot) }, this);
    // The purge timer's work and the idle collection take the lock: other threads' pools are in the same arenas.
    // A heap found corrupt (a thread ended holding the lock) has told its callers so: its timers stay quiet.
    this.purgeGiveBack = (busy) => {
      if (this.unusable()) return;
      withLock(this, 'purge', this.lostHeap, () => this.giveBackFree(busy));
    };
    const ref = new WeakRef(this);
    self['tick'] = setInterval(() => ref.deref()?.idle(), IDLE_TICK_MS).unref();
  }

  /** A new shared heap: its shared_state and slot table (heap_state is Heap's). */
  private initShared(): void {
    const m = this.meta;
    if (m.dataStart + this.geometry.arenaSize > this.geometry.reserve) {
      throw codedError(
        RangeError,
        'ERR_OUT_OF_RANGE',
        `pymalloc: new Heap: reserve ${this.geometry.reserve} leaves no room for one arena after a shared heap's ` +
          `${m.dataStart} bytes of metadata`,
      );
    }
    shared_state_set_max_threads(this, m.shared, m.maxThreads);
    shared_state_set_pools(this, m.shared, m.poolInfo);
    shared_state_set_slots(this, m.shared, m.slots);
    shared_state_set_magic(this, m.shared, SHARED_MAGIC);
    // Where C (the inspector, an addon of the user's) finds it.
    heap_state_set_shared(this, m.state, m.shared);
  }

  /** Heap.attach: the memory must be a live shared heap of the handle's geometry. */
  private checkAttached(): void {
    if (this.u32[this.sharedIdx + W_MAGIC] !== SHARED_MAGIC) {
      throw codedError(Error, 'ERR_PYMALLOC_DESTROYED', 'pymalloc: Heap.attach: the heap has been destroyed');
    }
  }

  /** True for a shared heap. */
  override get shared(): boolean {
    return true;
  }

  /**
   * What another thread passes to `Heap.attach` to use this heap (send it in `workerData` or `postMessage`: it
   * holds the heap's SharedArrayBuffer and its options).
   */
  override get handle(): SharedHeapHandle {
    this.checkLive('handle');
    return this.handleValue;
  }

  /** This thread's slot (0 for the thread that made the heap, unless it detached). */
  get threadSlot(): number {
    return this.slot;
  }

  /** True when this heap runs the shared fast paths specialised for its geometry. */
  override get specialised(): boolean {
    return SHARED_CLASSES.some((c) => this instanceof c.fast);
  }

  /**
   * The private heap's malloc over this thread's own usedpools (the fast path of a specialised class too: see
   * lib/generated/shared-fastpaths.ts).
   */
  override malloc(n: number): number {
    if (typeof n === 'number' && (n & 2047) === n && (n - 1) >>> 0 < this.threshold) {
      const u32 = this.u32;
      const sz = (n - 1) >>> this.alignShift;
      const slot = this.usedBase + (sz << 4);
      const pool = u32[slot >>> 2]!;
      // Above the fake header: a pool. Not a pool: the fake header (the list is empty), or 0 once the heap's pages
      // went back (destroyed from another thread), which the slow path reports.
      if (pool > slot - NEXTPOOL) {
        const bp = u32[(pool + FREEBLOCK) >>> 2]!;
        const next = u32[bp >>> 2]!;
        u32[(bp + this.markOffset) >>> 2] = 0;
        u32[(pool + FREEBLOCK) >>> 2] = next;
        u32[(pool + REF_COUNT) >>> 2] += 1;
        if (next === 0) this.poolRanDry(pool, sz);
        return bp;
      }
      return this.newPool(sz, n) >>> 0;
    }
    return this.mallocSlow(n) >>> 0;
  }

  /** @internal free's fast path found live block p: this thread's own pool, or another thread's. */
  protected override releaseSmall(p: number, pool: number, count: number): void {
    const u32 = this.u32;
    // The pool's owner word (xinfo(), written out: the specialised classes fold xinfoIdx and poolBits in).
    if (u32[this.xinfoIdx + ((p >>> this.poolBits) << XI_SHIFT) + XI_OWNER] !== this.slotTag) {
      freeRemote(this, p);
      return;
    }
    const last = u32[(pool + FREEBLOCK) >>> 2]!;
    u32[(p + this.markOffset) >>> 2] = this.markValue;
    u32[p >>> 2] = last;
    u32[(p + 4) >>> 2] = last === 0 ? 0 : this.baseHi;
    u32[(pool + FREEBLOCK) >>> 2] = p;
    u32[(pool + REF_COUNT) >>> 2] = count - 1;
    if (last === 0) {
      u32[(pool + FREEBLOCK + 4) >>> 2] = this.baseHi;
      insertToUsedpool(this, pool);
    } else if (count === 1) {
      this.poolEmptiedShared(pool);
    }
  }

  // --- This thread's slow paths ------------------------------------------------------------------------------

  /** The free list of own pool `pool` ran out: carve more, or the pool is full; then take back remote frees. */
  protected poolRanDry(pool: number, sz: number): void {
    poolExtend(this, pool, sz);
    if (this.u32[(pool + FREEBLOCK) >>> 2] === 0 && Atomics.load(this.u32, this.pendingIdx) !== 0)
      this.takeBack();
  }

  /** usedpools[sz] is empty: blocks other threads gave back may refill it; else a pool from the arenas. */
  protected newPool(sz: number, n: number): number {
    if (this.u32.length !== 0 && Atomics.load(this.u32, this.pendingIdx) !== 0) {
      this.takeBack();
      const slot = this.usedBase + (sz << 4);
      if (this.u32[slot >>> 2]! > slot - NEXTPOOL) return this.malloc(n);
    }
    this.checkLive('malloc');
    lockHeap(this, 'malloc', this.lostHeap);
    try {
      if (--this.adoptCountdown <= 0) {
        this.adoptCountdown = 64;
        if (anyAbandoned(this)) adoptAbandoned(this);
      }
      const bp = allocateFromNewPool(this, sz, n);
      this.u32[xinfo(this, bp >>> this.poolBits) + XI_OWNER] = this.slotTag;
      return bp;
    } finally {
      unlockHeap(this);
    }
  }

  /** An own pool's last block came back: it leaves this thread's usedpools and goes to its arena. */
  protected poolEmptiedShared(pool: number): void {
    lockHeap(this, 'free', this.lostHeap);
    try {
      this.u32[xinfo(this, pool >>> this.poolBits) + XI_OWNER] = 0;
      poolEmptied(this, pool);
    } finally {
      unlockHeap(this);
    }
  }

  /** Takes back the blocks other threads freed into this thread's pools. */
  private takeBack(): number {
    return collect(this, this.emptied);
  }

  /** The idle tick: blocks other threads gave back, pools of threads that left. Never throws. */
  private idle(): void {
    if (this.destroyed) {
      clearInterval(this.tick);
      return;
    }
    try {
      if (this.noticeDestroyed()) return;
      if (this.unusable()) {
        clearInterval(this.tick);
        return;
      }
      sweepFreeSlots(this);
      if (anyAbandoned(this)) withLock(this, 'adopt', this.lostHeap, () => adoptAbandoned(this));
      if (Atomics.load(this.u32, this.pendingIdx) !== 0) this.takeBack();
    } catch (err) {
      this.warnOnce(
        'PYMALLOC_SHARED_IDLE_FAILED',
        `pymalloc: a shared heap's idle collection failed: ${(err as Error)?.message ?? String(err)}`,
      );
    }
  }

  /** Marked corrupt, or a thread ended holding the lock: every locking call throws ERR_PYMALLOC_CORRUPT. */
  private unusable(): boolean {
    return (Atomics.load(this.u32, this.sharedIdx + W_FLAGS) & (FLAG_CORRUPT | FLAG_INTERRUPTED)) !== 0;
  }

  /** @internal The heap was destroyed (by another thread): this object lets go of its views. */
  private readonly lostHeap = (): void => {
    if (!this.destroyed) this.letGo();
  };

  /** Lets go of the views if another thread destroyed the heap (its magic is gone); true once destroyed. */
  private noticeDestroyed(): boolean {
    if (!this.destroyed && this.u32[this.sharedIdx + W_MAGIC] !== SHARED_MAGIC) this.letGo();
    return this.destroyed;
  }

  private letGo(): void {
    this.destroyed = true;
    this.threshold = 0;
    clearInterval(this.tick);
    ABANDON.unregister(this);
    this.purgeGiveBack = undefined;
    this.dropViews();
  }

  protected override mallocLarge(n: number): number {
    return withLock(this, 'malloc', this.lostHeap, () => super.mallocLarge(n));
  }

  protected override freeSlow(p: number): void {
    this.checkLive('free');
    withLock(this, 'free', this.lostHeap, () => super.freeSlow(p));
  }

  /**
   * @internal As the private heap's, and a block on its pool's cross-thread list is already free too.
   */
  protected override locate(p: number, what: string, shown: number = p): number {
    const found = super.locate(p, what, shown);
    if (found > 0 && (this.u32[(p + this.markOffset) >>> 2]! | 0) === this.markValue) {
      const pool = (p & this.poolMask) >>> 0;
      if (onRemoteList(this, pool, p)) {
        throw codedError(
          Error,
          'ERR_PYMALLOC_DOUBLE_FREE',
          `pymalloc: ${what}(0x${shown.toString(16)}): block is already free (double free)`,
        );
      }
    }
    return found;
  }

  /**
   * @internal Everything realloc's fast path (the private heap's: its free goes through releaseSmall, which knows
   * whose pool a block is) does not take, under the lock: large blocks are spans.
   */
  protected override reallocSlow(p: number, n: number): number {
    this.checkLive('realloc');
    return withLock(this, 'realloc', this.lostHeap, () => super.reallocSlow(p, n));
  }

  /** @internal Blocks of `pool` other threads freed and its owner has not taken back. */
  override remoteFreed(pool: number): number {
    return remoteCount(this, pool);
  }

  /** @internal Every attached or abandoned slot's usedpools. */
  override usedBases(): number[] {
    const bases: number[] = [];
    for (let s = 0; s < this.meta.maxThreads; s++) {
      if (this.u32[slotStateIdx(this, s)] !== SLOT_FREE) bases.push(slotUsedBase(this, s));
    }
    return bases;
  }

  // --- Whole-heap operations: under the lock ---------------------------------------------------------------

  override stats(): HeapStats {
    this.checkLive('stats');
    return withLock(this, 'stats', this.lostHeap, () => super.stats());
  }

  override debugStats(): string {
    this.checkLive('debugStats');
    return withLock(this, 'debugStats', this.lostHeap, () => super.debugStats());
  }

  /**
   * Walks the whole heap, every thread's pools and cross-thread lists included. Meaningful at a quiescent point
   * (no other thread inside a call of this heap): blocks in flight in another thread's fast path would read as
   * broken lists.
   */
  override check(): void {
    this.checkLive('check');
    withLock(this, 'check', this.lostHeap, () => {
      super.check();
      checkShared(this);
    });
  }

  /** Takes back this thread's remote frees, then gives every free page back (as a private heap's trim). */
  override trim(): number {
    this.checkLive('trim');
    // Adopted first: the pools of a thread that left may have blocks this thread freed, to take back below.
    if (anyAbandoned(this)) withLock(this, 'trim', this.lostHeap, () => adoptAbandoned(this));
    this.takeBack();
    return withLock(this, 'trim', this.lostHeap, () => super.trim());
  }

  /** The C inspector's walk (native/inspector.cc), every thread's lists and cross-thread lists included. */
  override inspect(): HeapInspection {
    this.checkLive('inspect');
    return withLock(this, 'inspect', this.lostHeap, () => super.inspect());
  }

  /**
   * Ends this thread's use of the heap: blocks other threads gave back are taken back, and the thread's pools
   * (with their live blocks) are left for another thread to adopt. The heap lives on for the other threads;
   * calls on this object throw ERR_PYMALLOC_DETACHED. Does nothing once detached or destroyed.
   */
  override detach(): void {
    if (this.destroyed) return;
    try {
      this.takeBack();
      withLock(this, 'detach', this.lostHeap, () => {
        abandonSlot(this.u32, this.sharedIdx, slotStateIdx(this, this.slot));
      });
    } catch (err) {
      if ((err as { code?: string }).code !== 'ERR_PYMALLOC_DESTROYED') throw err;
    }
    this.reservation.unbindThread();
    this.detachedHere = true;
    this.letGo();
  }

  /**
   * Ends the heap for every thread: its memory goes back to the OS at once; later calls in any thread throw
   * ERR_PYMALLOC_DESTROYED and views read zeros (never faulting). The mapping is released once no thread can
   * reach it. Does nothing once destroyed (or detached).
   */
  override destroy(): void {
    if (this.destroyed) return;
    try {
      lockHeap(this, 'destroy', this.lostHeap);
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'ERR_PYMALLOC_DESTROYED') return;
      if (code !== 'ERR_PYMALLOC_CORRUPT') throw err;
      // A corrupt heap can still be destroyed: take the lock word as it is.
      this.lockDepth = 1;
    }
    Atomics.or(this.u32, this.sharedIdx + W_FLAGS, FLAG_DESTROYED);
    Atomics.store(this.u32, this.sharedIdx + W_MAGIC, 0);
    unlockHeap(this);
    this.reservation.unbindThread();
    this.reservation.release();
    this.letGo();
  }

  protected override checkLive(what: string): void {
    if (this.noticeDestroyed() && this.detachedHere) {
      throw codedError(
        Error,
        'ERR_PYMALLOC_DETACHED',
        `pymalloc: ${what}: this thread detached from the shared heap (Heap.attach(handle) attaches again)`,
      );
    }
    super.checkLive(what);
  }

  override get isDestroyed(): boolean {
    return this.noticeDestroyed() && !this.detachedHere;
  }
}

/** SharedHeap's subclasses with the fast paths specialised for the presets' default geometries. */
const SHARED_CLASSES = sharedFastPathClasses(SharedHeap);

/** A shared heap's Heap object: of the specialised class whose constants are the geometry's, else SharedHeap. */
function makeSharedHeap(options: ResolvedHeapOptions): Heap {
  const k = sharedFoldedConstants(options.geometry);
  const fit = SHARED_CLASSES.find(({ constants }) => sameConstants(constants, k));
  return new (fit?.fast ?? SharedHeap)(options);
}

registerSharedHeap(SharedHeap, makeSharedHeap);
