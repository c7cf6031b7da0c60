/**
 * The delayed return (the `purgeDelay` option, 'purge' policy): memory that becomes free (a wholly free arena,
 * an empty pool, a freed large span) stays committed for reuse, and whatever is still free `purgeDelay`
 * milliseconds after the first of it was freed goes back to the OS at once, as `trim()` gives it back. Memory
 * freed and soon reused is then never decommitted and faulted in again (what made the immediate return cost up
 * to half of a replay's time), while an idle process is back at its floor within the delay, with no call into
 * the heap.
 *
 * Two things enforce the deadline, whichever comes first: a timer (unref'd, so it never keeps the process alive,
 * and holding the heap only weakly, so a heap dropped without destroy() is still collected), and the next slow
 * path that frees memory after the deadline (so a long synchronous job, during which no timer can run, is held
 * to it as well). Only those slow paths read the clock, and only every CLOCK_EVERY of them while something is
 * pending: the fast paths never get here. At most one give-back per delay: a workload that frees and reuses the same memory over and over
 * faults it in again at most once per delay.
 */
import type { HeapCore } from './core';

/**
 * Slow paths between two readings of the clock while something is pending: a reading costs about 100 ns on this
 * VM, as much as a pool transition, and a class with one block live empties its pool on every free; 128 of them
 * take microseconds, a negligible overshoot of a deadline in milliseconds.
 */
const CLOCK_EVERY = 128;

/** The most `purgeDelay` may be: what setTimeout accepts (about 24.8 days). */
export const MAX_PURGE_DELAY = 2 ** 31 - 1;

/**
 * The slow paths that free memory call this last, with the heap consistent: the first freeing starts the delay
 * (and its timer); one after the deadline gives everything free back now.
 */
export function noteFreed(h: HeapCore): void {
  const deadline = h.purgeDeadline;
  if (deadline === 0) {
    h.purgeDeadline = performance.now() + h.purgeDelay;
    h.purgeCountdown = CLOCK_EVERY;
    if (h.purgeTimer === undefined) arm(h, h.purgeDelay);
  } else if (--h.purgeCountdown <= 0) {
    h.purgeCountdown = CLOCK_EVERY;
    if (performance.now() >= deadline) giveBack(h, true);
  }
}

function arm(h: HeapCore, ms: number): void {
  const heap = new WeakRef(h);
  h.purgeTimer = setTimeout(() => fire(heap), ms).unref();
}

function fire(heap: WeakRef<HeapCore>): void {
  const h = heap.deref();
  if (h === undefined) return;
  h.purgeTimer = undefined;
  const deadline = h.purgeDeadline;
  if (deadline === 0 || h.purgeGiveBack === undefined) return; // given back already, or destroyed
  const left = deadline - performance.now();
  // A slow path gave back and a later freeing set a new deadline after this timer was armed: wait for that one.
  if (left > 0) arm(h, Math.ceil(left));
  else giveBack(h, false);
}

/**
 * `busy`: a slow path is past the deadline, in the middle of the program's work. Then the free arenas and the
 * empty pools go back, but not the arena kept against thrashing nor the large spans cached for reuse (their own
 * decay returns those): giving them back while the work goes on would only have them faulted in again (three
 * times the faults on `compileall` with a 10 ms delay, bench/purge-delay.ts). The timer, run when the program
 * has left the event loop alone for the delay, gives back everything, as `trim()`.
 */
function giveBack(h: HeapCore, busy: boolean): void {
  if (busy) {
    // What stays (the guard arena, the cached spans) is still pending: the timer gives it back when it runs.
    h.purgeDeadline = performance.now() + h.purgeDelay;
    if (h.purgeTimer === undefined) arm(h, h.purgeDelay);
  } else {
    h.purgeDeadline = 0;
  }
  try {
    h.purgeGiveBack?.(busy);
  } catch (err) {
    // Only a heap whose metadata the program overwrote gets here (the OS's refusals are noted, not thrown). An
    // exception from the timer would end the process, and from a free that has done its work, mislead: the heap
    // keeps its free memory and says so once.
    h.warnOnce(
      'PYMALLOC_PURGE_FAILED',
      `pymalloc: the delayed return failed: ${(err as Error)?.message ?? String(err)}; the heap keeps its free memory`,
    );
  }
}

/** Nothing pending any more (trim() gave everything back): the next freeing starts a new delay. */
export function clearDeadline(h: HeapCore): void {
  h.purgeDeadline = 0;
}

/** Stops the timer (destroy()). */
export function cancelDelay(h: HeapCore): void {
  if (h.purgeTimer !== undefined) clearTimeout(h.purgeTimer);
  h.purgeTimer = undefined;
  h.purgeDeadline = 0;
  h.purgeGiveBack = undefined;
}
