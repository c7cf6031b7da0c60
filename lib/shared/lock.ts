/**
 * The shared heap's one lock: a word of `shared_state` holding the holder's slot tag (0 when free), taken with
 * `Atomics.compareExchange` and waited on with `Atomics.wait` (timed, so that a lock left by a thread that ended
 * cannot hang the others). It serialises what several threads' pools share: arena and pool acquisition, empty
 * pools going back to their arena, large spans, purge, trim, stats and check. The fast paths never take it.
 *
 * Re-entrant per thread (a depth count in the thread's SharedHeap object), so that a slow path may call another.
 * Taking it is also where a thread learns that the heap was destroyed (the state's magic is gone), or that a
 * thread ended while it held the lock (the native shim's cleanup hook set FLAG_INTERRUPTED and freed the word):
 * then the structures that thread was changing may be half changed, the heap is marked corrupt, and every later
 * call in every thread throws ERR_PYMALLOC_CORRUPT instead of handing out memory from a broken list.
 */
import { codedError } from '../core';
import {
  FLAG_CORRUPT,
  FLAG_DESTROYED,
  FLAG_INTERRUPTED,
  SHARED_MAGIC,
  type SharedCore,
  W_FLAGS,
  W_LOCK,
  W_MAGIC,
  W_WAITERS,
} from './state';

/** Spins before a thread sleeps on the lock: the slow paths hold it for a microsecond or so. */
const SPINS = 100;
/** Milliseconds of one sleep: the holder notifies, the timeout only covers a holder that ended. */
const SLEEP_MS = 5;

/** What lockHeap found instead of a live heap. */
type LockFailure = 'destroyed' | 'corrupt';

/**
 * Takes the heap lock for this thread (or nests in its hold). Throws ERR_PYMALLOC_DESTROYED when the heap was
 * destroyed (`onDestroyed` runs first, for the thread to let go of its views) and ERR_PYMALLOC_CORRUPT when a
 * thread ended holding the lock; in both cases the lock is not held on return.
 */
export function lockHeap(h: SharedCore, what: string, onDestroyed: () => void): void {
  if (h.lockDepth > 0) {
    h.lockDepth++;
    return;
  }
  const i32 = h.i32;
  const L = h.sharedIdx + W_LOCK;
  const tag = h.slotTag;
  let spins = 0;
  while (Atomics.compareExchange(i32, L, 0, tag) !== 0) {
    if (++spins < SPINS) continue;
    const W = h.sharedIdx + W_WAITERS;
    Atomics.add(i32, W, 1);
    const holder = Atomics.load(i32, L);
    if (holder !== 0) Atomics.wait(i32, L, holder, SLEEP_MS);
    Atomics.sub(i32, W, 1);
    if ((i32[h.sharedIdx + W_MAGIC] | 0) !== (SHARED_MAGIC | 0)) break; // destroyed while waiting
  }
  const failure = lockFailure(h);
  if (failure === undefined) {
    h.lockDepth = 1;
    return;
  }
  // Not ours to keep: give the word back (it may be zero already, when the heap's pages went back).
  Atomics.compareExchange(i32, L, tag, 0);
  if (failure === 'destroyed') {
    onDestroyed();
    throw codedError(Error, 'ERR_PYMALLOC_DESTROYED', `pymalloc: ${what}: the heap has been destroyed`);
  }
  throw corruptError(what);
}

/** Why the heap cannot be used, with the lock held: destroyed, or corrupt (an interrupted holder marks it so). */
function lockFailure(h: SharedCore): LockFailure | undefined {
  const i32 = h.i32;
  if ((i32[h.sharedIdx + W_MAGIC] | 0) !== (SHARED_MAGIC | 0)) return 'destroyed';
  const flags = Atomics.load(i32, h.sharedIdx + W_FLAGS);
  if ((flags & FLAG_DESTROYED) !== 0) return 'destroyed';
  if ((flags & FLAG_INTERRUPTED) !== 0) {
    // The holder ended in the middle of a slow path: whatever it was relinking may be half relinked.
    Atomics.or(i32, h.sharedIdx + W_FLAGS, FLAG_CORRUPT);
    return 'corrupt';
  }
  return (flags & FLAG_CORRUPT) !== 0 ? 'corrupt' : undefined;
}

function corruptError(what: string): Error {
  return codedError(
    Error,
    'ERR_PYMALLOC_CORRUPT',
    `pymalloc: ${what}: a thread ended (worker.terminate()?) while it held the shared heap's lock, so its ` +
      'lists may be half changed: the heap can no longer be used',
  );
}

/** Ends this thread's hold (the outermost one gives the word back and wakes a waiter). */
export function unlockHeap(h: SharedCore): void {
  if (--h.lockDepth > 0) return;
  h.lockDepth = 0;
  const i32 = h.i32;
  if (i32.length === 0) return; // this thread's views were dropped (destroyed meanwhile)
  Atomics.compareExchange(i32, h.sharedIdx + W_LOCK, h.slotTag, 0);
  if (Atomics.load(i32, h.sharedIdx + W_WAITERS) !== 0) Atomics.notify(i32, h.sharedIdx + W_LOCK, 1);
}

/** Runs fn with the heap lock held. */
export function withLock<T>(h: SharedCore, what: string, onDestroyed: () => void, fn: () => T): T {
  lockHeap(h, what, onDestroyed);
  try {
    return fn();
  } finally {
    unlockHeap(h);
  }
}
