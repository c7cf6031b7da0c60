/**
 * The idle return: once a heap's slow paths (a pool emptied, a large block freed) have been quiet for
 * `idleDelay` milliseconds, a timer gives back every free page, as `trim()` does, with no call into the heap:
 * the RSS of an idle process drops on its own. The 'purge' policy returns free memory above its threshold as it
 * goes; what it keeps below the threshold (empty pools, the arena kept against thrashing, the cache of freed
 * large spans) waits for the next allocation only until the heap goes quiet.
 *
 * The timer never keeps the process alive (unref) and holds the heap only weakly, so a heap dropped without
 * destroy() is still collected; destroy() cancels it. Fast paths never get here: only the slow paths call
 * noteSlowPath, and arming costs one timer per quiet period.
 */
import type { HeapCore } from './core';

/** The most `idleDelay` may be: what setTimeout accepts (about 24.8 days). */
export const MAX_IDLE_DELAY = 2 ** 31 - 1;

/** The slow paths call this when they free memory: it (re)starts the quiet period. */
export function noteSlowPath(h: HeapCore): void {
  h.idleActivity++;
  if (h.idleTimer === undefined && h.idleDelay > 0) arm(h);
}

function arm(h: HeapCore): void {
  const heap = new WeakRef(h);
  const seen = h.idleActivity;
  h.idleTimer = setTimeout(() => fire(heap, seen), h.idleDelay).unref();
}

function fire(heap: WeakRef<HeapCore>, seen: number): void {
  const h = heap.deref();
  if (h === undefined) return;
  h.idleTimer = undefined;
  if (h.idleGiveBack === undefined) return; // destroyed
  // Activity since the timer was armed: the heap is not idle yet; wait a whole quiet period from now.
  if (h.idleActivity !== seen) arm(h);
  else h.idleGiveBack();
}

/** Stops the timer (destroy()). */
export function cancelIdle(h: HeapCore): void {
  if (h.idleTimer !== undefined) clearTimeout(h.idleTimer);
  h.idleTimer = undefined;
  h.idleGiveBack = undefined;
}
