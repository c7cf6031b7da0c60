/**
 * Spans: the page-granular layer under arenas and large blocks. It owns the reservation's data region
 * [dataStart, reserve) and hands out runs of OS pages: arenas (aligned to their size) and large blocks.
 *
 * Every span, free or used, carries a boundary tag in `pagemap` at its first and last page:
 *     tag = npages * 8 + kind        kind: FREE (decommitted), LARGE (a large block), ARENA, CACHED (free, still
 *                                    committed, kept for reuse by large requests)
 * and every page strictly inside a span has tag 0. Invariants (checked by `checkSpans`):
 *     the spans tile the data region exactly;  no two FREE spans are adjacent, nor two CACHED ones (freeing
 *     coalesces);  every FREE span is on the free bin list floor(log2(npages)) once, every CACHED span on the
 *     cache bin list floor(log2(npages)) once;
 *     sum of CACHED pages == span_cache_pages <= max(span_cache_limit_pages, 2 * large_pages);
 *     span_cache_low_pages <= span_cache_pages;  span_cache_epoch_releases < SPAN_DECAY_RELEASES;
 *     sum of LARGE pages == large_pages.
 * Free spans are linked through `span_links[2 * page]` (next, prev: page numbers, 0 = none; page 0 is metadata).
 * For a LARGE span, `span_links[2 * page]` holds the bytes requested and `span_links[2 * page + 1]` the page
 * itself: the head mark that tells its first page (a block's start) from its last (which has the same tag).
 * freeLargeSpan clears it, so a stale mark never outlives its block.
 *
 * Memory: a FREE span's pages are never resident (decommitted). In 'dontneed' mode the whole reservation is
 * readable and writable from the start (a 'readwrite' reservation: a FREE span reads as zeros and costs nothing);
 * in 'unmap' mode only used and cached spans are (and FREE ones that the map-count limit left readable).
 * `freed_heads` has a bit per page, set where a large block that was freed started and cleared when the page is
 * handed out again: locate() tells a double free from a pointer that never was a block with it.
 *
 * Failures: every OS call (commit, decommit) is made before the state it changes, so a refusal changes nothing
 * and is thrown as ERR_PYMALLOC_NOMEM (with the OS error as its `cause`): a large block whose pages the OS will
 * not take back stays allocated. Giving back pages that nobody asked for (evicting the cache over budget after a
 * free) does not throw: the pages stay cached, the refusal is kept in `osRefusal` and reported once as a warning.
 */
import type { HeapCore } from './core';
import { codedError } from './core';
import { noteFreed } from './delay';
import {
  LENGTHOF_HEAP_STATE_SPAN_BINS,
  OFFSETOF_HEAP_STATE_LARGE_PAGES,
  OFFSETOF_HEAP_STATE_NLARGE,
  OFFSETOF_HEAP_STATE_SPAN_CACHE_EPOCH_RELEASES,
  OFFSETOF_HEAP_STATE_SPAN_CACHE_LIMIT_PAGES,
  OFFSETOF_HEAP_STATE_SPAN_CACHE_LOW_PAGES,
  OFFSETOF_HEAP_STATE_SPAN_CACHE_PAGES,
} from './generated/layout';

export const SPAN_FREE = 1;
export const SPAN_LARGE = 2;
export const SPAN_ARENA = 3;
export const SPAN_CACHED = 4;

/** How many spans of a cache bin a large request looks at for the best fit before it takes the best so far. */
const CACHE_FIT_SCAN = 16;

/**
 * Large spans released (freed, or cut off by a shrinking realloc) per epoch of the span cache's decay: at each
 * epoch's end the cache gives back half of the pages it held all epoch long (see decaySpanCache).
 */
const SPAN_DECAY_RELEASES = 128;

function stateWord(h: HeapCore, offset: number): number {
  return (h.meta.state + offset) >>> 2;
}

function bin(npages: number): number {
  return 31 - Math.clz32(npages);
}

function setTags(h: HeapCore, pg: number, n: number, kind: number): void {
  const tag = n * 8 + kind;
  const pm = h.pagemapIdx;
  h.u32[pm + pg] = tag;
  h.u32[pm + pg + n - 1] = tag;
}

/** Marks pg as the first page of a freed large block. */
function setFreedHead(h: HeapCore, pg: number): void {
  h.u32[h.freedIdx + (pg >>> 5)] |= 1 << (pg & 31);
}

/** True when pg was the first page of a large block that was freed, and has not been handed out since. */
export function isFreedHead(h: HeapCore, pg: number): boolean {
  return (h.u32[h.freedIdx + (pg >>> 5)] & (1 << (pg & 31))) !== 0;
}

/** Pages [pg, pg + n) are handed out again: no freed block starts there any more. */
function clearFreedHeads(h: HeapCore, pg: number, n: number): void {
  const u32 = h.u32;
  const base = h.freedIdx;
  for (let i = pg, end = pg + n; i < end; ) {
    if ((i & 31) === 0 && end - i >= 32) {
      u32[base + (i >>> 5)] = 0;
      i += 32;
    } else {
      u32[base + (i >>> 5)] &= ~(1 << (i & 31));
      i++;
    }
  }
}

function clearTags(h: HeapCore, pg: number, n: number): void {
  const pm = h.pagemapIdx;
  h.u32[pm + pg] = 0;
  h.u32[pm + pg + n - 1] = 0;
}

function listPush(h: HeapCore, headIdx: number, pg: number): void {
  const u32 = h.u32;
  const links = h.linksIdx;
  const next = u32[headIdx];
  u32[links + 2 * pg] = next;
  u32[links + 2 * pg + 1] = 0;
  if (next !== 0) u32[links + 2 * next + 1] = pg;
  u32[headIdx] = pg;
}

function listRemove(h: HeapCore, headIdx: number, pg: number): void {
  const u32 = h.u32;
  const links = h.linksIdx;
  const next = u32[links + 2 * pg];
  const prev = u32[links + 2 * pg + 1];
  if (prev === 0) u32[headIdx] = next;
  else u32[links + 2 * prev] = next;
  if (next !== 0) u32[links + 2 * next + 1] = prev;
}

/** Makes [pg, pg + n) one FREE span on its bin list. Its neighbours must not be FREE. */
function insertFree(h: HeapCore, pg: number, n: number): void {
  setTags(h, pg, n, SPAN_FREE);
  listPush(h, h.binsIdx + bin(n), pg);
}

/**
 * Makes [pg, pg + n), untagged, one span of `kind` (FREE or CACHED) on its bin of the lists at `heads`, merged
 * with the neighbours of the same kind.
 */
function insertMerged(h: HeapCore, pg: number, n: number, kind: number, heads: number): void {
  const u32 = h.u32;
  const pm = h.pagemapIdx;
  const left = pg > h.dataStartPage ? u32[pm + pg - 1] : 0;
  if ((left & 7) === kind) {
    const ln = left >>> 3;
    pg -= ln;
    n += ln;
    listRemove(h, heads + bin(ln), pg);
    clearTags(h, pg, ln);
  }
  const right = pg + n < h.geometry.pages ? u32[pm + pg + n] : 0;
  if ((right & 7) === kind) {
    const rn = right >>> 3;
    listRemove(h, heads + bin(rn), pg + n);
    clearTags(h, pg + n, rn);
    n += rn;
  }
  setTags(h, pg, n, kind);
  listPush(h, heads + bin(n), pg);
}

/**
 * Finds a cached span of at least n pages for a large request: the smallest of the first few spans of the
 * lowest cache bin that has one that fits (every span of a bin above floor(log2 n) does). Returns its first
 * page, or 0.
 */
function findCached(h: HeapCore, n: number): number {
  const u32 = h.u32;
  const pm = h.pagemapIdx;
  const links = h.linksIdx;
  for (let b = bin(n); b < LENGTHOF_HEAP_STATE_SPAN_BINS; b++) {
    let best = 0;
    let bestLen = 0;
    let scanned = 0;
    for (let pg = u32[h.cacheIdx + b]; pg !== 0 && scanned < CACHE_FIT_SCAN; pg = u32[links + 2 * pg]) {
      const len = u32[pm + pg] >>> 3;
      if (len === n) return pg;
      if (len > n && (best === 0 || len < bestLen)) {
        best = pg;
        bestLen = len;
      }
      scanned++;
    }
    if (best !== 0) return best;
  }
  return 0;
}

/**
 * Takes pages [pg, pg + n) out of the cached span that starts at pg, leaving them untagged; the rest of the
 * span stays cached.
 */
function takeCached(h: HeapCore, pg: number, n: number): void {
  const u32 = h.u32;
  const len = u32[h.pagemapIdx + pg] >>> 3;
  listRemove(h, h.cacheIdx + bin(len), pg);
  clearTags(h, pg, len);
  if (len > n) {
    setTags(h, pg + n, len - n, SPAN_CACHED);
    listPush(h, h.cacheIdx + bin(len - n), pg + n);
  }
  const usedIdx = stateWord(h, OFFSETOF_HEAP_STATE_SPAN_CACHE_PAGES);
  u32[usedIdx] -= n;
  noteCacheLow(h, u32[usedIdx]);
}

/** The cache now holds `used` pages: lowers the epoch's low-water mark to it (see decaySpanCache). */
function noteCacheLow(h: HeapCore, used: number): void {
  const lowIdx = stateWord(h, OFFSETOF_HEAP_STATE_SPAN_CACHE_LOW_PAGES);
  if (used < h.u32[lowIdx]) h.u32[lowIdx] = used;
}

/** Sets up the span state of a new heap: one FREE span over the whole data region. */
export function initSpans(h: HeapCore): void {
  const g = h.geometry;
  h.u32[stateWord(h, OFFSETOF_HEAP_STATE_SPAN_CACHE_LOW_PAGES)] = 0;
  h.u32[stateWord(h, OFFSETOF_HEAP_STATE_SPAN_CACHE_EPOCH_RELEASES)] = 0;
  insertFree(h, h.dataStartPage, g.pages - h.dataStartPage);
}

export function setSpanCacheLimit(h: HeapCore, bytes: number): void {
  h.u32[stateWord(h, OFFSETOF_HEAP_STATE_SPAN_CACHE_LIMIT_PAGES)] = Math.floor(bytes / h.geometry.pageSize);
}

/** Finds a FREE span with room for n pages aligned to `align` pages; returns its first page or 0. */
function findFree(h: HeapCore, n: number, align: number): number {
  const u32 = h.u32;
  const pm = h.pagemapIdx;
  const links = h.linksIdx;
  const b0 = bin(n);
  // Every span in a bin above floor(log2 n) has at least n pages: for an unaligned request its head fits.
  for (let b = n === 1 << b0 ? b0 : b0 + 1; b < LENGTHOF_HEAP_STATE_SPAN_BINS; b++) {
    for (let pg = u32[h.binsIdx + b]; pg !== 0; pg = u32[links + 2 * pg]) {
      const len = u32[pm + pg] >>> 3;
      const start = Math.ceil(pg / align) * align;
      if (start + n <= pg + len) return pg;
      if (align === 1) break;
    }
  }
  // Spans in bin floor(log2 n) may be shorter than n: scan them.
  for (let pg = u32[h.binsIdx + b0]; pg !== 0; pg = u32[links + 2 * pg]) {
    const len = u32[pm + pg] >>> 3;
    const start = Math.ceil(pg / align) * align;
    if (start + n <= pg + len) return pg;
  }
  return 0;
}

/** The message of an error from any realm (the shim's errors are not `instanceof Error` inside a vm context). */
function messageOf(err: unknown): string {
  const message = (err as { message?: unknown })?.message;
  return typeof message === 'string' ? message : String(err);
}

function outOfMemory(h: HeapCore, bytes: number, cause?: unknown): RangeError {
  const g = h.geometry;
  const err = codedError(
    RangeError,
    'ERR_PYMALLOC_NOMEM',
    `pymalloc: out of memory: cannot allocate ${bytes} bytes (heap capacity ${g.reserve - h.meta.dataStart} ` +
      `bytes, ${spanBytesInUse(h)} bytes in use by arenas and large blocks)` +
      (cause !== undefined ? `: ${messageOf(cause)}` : ''),
  );
  if (cause !== undefined) (err as RangeError & { cause: unknown }).cause = cause;
  return err;
}

/** Bytes of the data region held by arenas, large blocks and the span cache. */
export function spanBytesInUse(h: HeapCore): number {
  let used = 0;
  forEachSpan(h, (_pg, n, kind) => {
    if (kind !== SPAN_FREE) used += n;
  });
  return used * h.geometry.pageSize;
}

/**
 * Makes sure pages [pg, pg + n) are readable and writable: in 'unmap' mode they are committed; in 'dontneed' mode
 * (a 'readwrite' reservation) they always are. Throws ERR_PYMALLOC_NOMEM, changing nothing, when the OS refuses.
 */
function commitRange(h: HeapCore, pg: number, n: number, bytes: number): void {
  if (h.decommitMode !== 'unmap') return;
  const bits = h.pageBits;
  try {
    h.reservation.commit(pg * 2 ** bits, n * 2 ** bits);
  } catch (err) {
    throw outOfMemory(h, bytes, err);
  }
}

/**
 * The OS refused to take back memory (a decommit failed): RangeError ERR_PYMALLOC_NOMEM naming what was being
 * given back, with the OS error (`errno`, `syscall`) as its cause.
 */
function osRefused(bytes: number, cause: unknown): RangeError {
  const why = messageOf(cause);
  const err = codedError(
    RangeError,
    'ERR_PYMALLOC_NOMEM',
    `pymalloc: the OS refused to take back ${bytes} bytes of the heap (${why}); nothing was changed`,
  );
  const os = cause as { errno?: number; syscall?: string };
  Object.assign(err, { cause, errno: os?.errno, syscall: os?.syscall });
  return err;
}

/**
 * Records a refusal of the OS to take back memory that nobody asked to give back (an eviction, a purge, an
 * arena emptied by a free): the memory stays with the heap, trim() retries, and a warning says so once.
 */
export function noteRefusal(h: HeapCore, err: unknown): void {
  h.osRefusal ??= typeof (err as Error)?.message === 'string' ? (err as Error) : new Error(String(err));
  h.warnOnce(
    'PYMALLOC_OS_REFUSED',
    `pymalloc: the OS refused to take back memory (${h.osRefusal.message}); it stays with the heap and trim() retries`,
  );
}

/**
 * Returns pages [pg, pg + n) to the OS, in the heap's decommit mode. Throws ERR_PYMALLOC_NOMEM, changing nothing,
 * when the OS refuses. An 'unmap' that the map-count limit turned into 'dontneed' is reported once, as a warning.
 */
export function decommitSpan(h: HeapCore, pg: number, n: number): void {
  const bits = h.pageBits;
  let applied: string;
  try {
    applied = h.reservation.decommit(pg * 2 ** bits, n * 2 ** bits, h.decommitMode);
  } catch (err) {
    throw osRefused(n * 2 ** bits, err);
  }
  if (applied !== h.decommitMode) {
    h.warnOnce(
      'PYMALLOC_MAP_LIMIT',
      "pymalloc: decommit 'unmap' reached pymalloc's share of vm.max_map_count: freed pages now go back with " +
        'MADV_DONTNEED (they leave RSS but stay readable and committed) instead of splitting more mappings',
    );
  }
}

/**
 * Takes n pages aligned to `align` pages for a span of `kind`; returns the first page.
 * Throws RangeError ERR_PYMALLOC_NOMEM, changing nothing, when no span fits or the OS refuses to commit.
 */
export function allocSpan(h: HeapCore, n: number, align: number, kind: number, bytes: number): number {
  const u32 = h.u32;
  if (kind === SPAN_LARGE && u32[stateWord(h, OFFSETOF_HEAP_STATE_SPAN_CACHE_PAGES)] >= n) {
    const pg = findCached(h, n);
    if (pg !== 0) {
      takeCached(h, pg, n);
      clearFreedHeads(h, pg, n);
      h.spanWasFree = false;
      u32[stateWord(h, OFFSETOF_HEAP_STATE_NLARGE)] += 1;
      u32[stateWord(h, OFFSETOF_HEAP_STATE_LARGE_PAGES)] += n;
      setTags(h, pg, n, kind);
      u32[h.linksIdx + 2 * pg + 1] = pg;
      return pg;
    }
  }
  const pg = findFree(h, n, align);
  if (pg === 0) throw outOfMemory(h, bytes);
  const len = u32[h.pagemapIdx + pg] >>> 3;
  const start = Math.ceil(pg / align) * align;
  commitRange(h, start, n, bytes);
  listRemove(h, h.binsIdx + bin(len), pg);
  clearTags(h, pg, len);
  if (start > pg) insertFree(h, pg, start - pg);
  const rest = pg + len - (start + n);
  if (rest > 0) insertFree(h, start + n, rest);
  setTags(h, start, n, kind);
  clearFreedHeads(h, start, n);
  h.spanWasFree = true;
  if (kind === SPAN_LARGE) {
    u32[stateWord(h, OFFSETOF_HEAP_STATE_NLARGE)] += 1;
    u32[stateWord(h, OFFSETOF_HEAP_STATE_LARGE_PAGES)] += n;
    u32[h.linksIdx + 2 * start + 1] = start;
  }
  return start;
}

/** Makes span [pg, pg + n), already decommitted, FREE, merging it with FREE neighbours. */
export function releaseSpan(h: HeapCore, pg: number, n: number): void {
  clearTags(h, pg, n);
  insertMerged(h, pg, n, SPAN_FREE, h.binsIdx);
}

/**
 * Pages the dirty-span cache may hold when the live large blocks hold `largePages`: the `spanCache` floor, or
 * twice those pages when that is more. A workload whose large blocks come and go reuses their committed pages
 * instead of paying a madvise and then a page fault per page, and the cache never holds more than twice what is
 * in use beyond the floor: as the large blocks are freed, the budget shrinks with them and the cache goes back to
 * the OS. The budget is a ceiling, not a target: a steady live set keeps it far above what the cache needs, and
 * decaySpanCache gives back what goes unused below it.
 */
function cacheBudget(h: HeapCore, largePages = h.u32[stateWord(h, OFFSETOF_HEAP_STATE_LARGE_PAGES)]): number {
  const floor = h.u32[stateWord(h, OFFSETOF_HEAP_STATE_SPAN_CACHE_LIMIT_PAGES)];
  return Math.max(floor, 2 * largePages);
}

/** Frees a large block's span: into the dirty cache when it fits the cache's budget, else to the OS. */
export function freeLargeSpan(h: HeapCore, pg: number, n: number): void {
  const cached = prepareRelease(h, pg, n); // throws, changing nothing, when the OS refuses
  const u32 = h.u32;
  u32[h.linksIdx + 2 * pg + 1] = 0;
  u32[stateWord(h, OFFSETOF_HEAP_STATE_NLARGE)] -= 1;
  setFreedHead(h, pg);
  clearTags(h, pg, n);
  finishRelease(h, pg, n, cached);
  if (h.purgeDelay !== 0) noteFreed(h);
}

/**
 * The OS's part of taking n pages from the live large blocks (a block freed, the tail of one shrunk), done before
 * anything changes: returns whether they will go to the dirty cache (they fit its budget once they are no longer
 * live; the cache is first evicted, the highest addresses first, down to half the budget, so that a workload
 * whose large blocks come and go in waves wider than the cache does not pay a system call per free); otherwise
 * pages [pg, pg + n) themselves are decommitted here. Throws ERR_PYMALLOC_NOMEM when the OS refuses: the pages
 * are then untouched (an eviction done so far stands: it is consistent on its own).
 */
function prepareRelease(h: HeapCore, pg: number, n: number): boolean {
  // Before [pg, pg + n) joins the cache: the decay looks at what the cache held, not at what comes back now.
  const epochIdx = stateWord(h, OFFSETOF_HEAP_STATE_SPAN_CACHE_EPOCH_RELEASES);
  if (++h.u32[epochIdx] >= SPAN_DECAY_RELEASES) decaySpanCache(h);
  const budget = cacheBudget(h, h.u32[stateWord(h, OFFSETOF_HEAP_STATE_LARGE_PAGES)] - n);
  if (n <= budget) {
    const used = h.u32[stateWord(h, OFFSETOF_HEAP_STATE_SPAN_CACHE_PAGES)];
    if (used + n > budget) evictSpanCache(h, Math.min(budget >>> 1, budget - n));
    return true;
  }
  decommitSpan(h, pg, n);
  return false;
}

/**
 * Pages [pg, pg + n), untagged, no longer belong to a large block (prepareRelease said where they go): into the
 * dirty cache, merged with cached neighbours, or FREE (already decommitted), after which a cache left over its
 * smaller budget is evicted down to half of it.
 */
function finishRelease(h: HeapCore, pg: number, n: number, cached: boolean): void {
  const u32 = h.u32;
  const usedIdx = stateWord(h, OFFSETOF_HEAP_STATE_SPAN_CACHE_PAGES);
  u32[stateWord(h, OFFSETOF_HEAP_STATE_LARGE_PAGES)] -= n;
  if (cached) {
    u32[usedIdx] += n;
    insertMerged(h, pg, n, SPAN_CACHED, h.cacheIdx);
    return;
  }
  releaseSpan(h, pg, n);
  const budget = cacheBudget(h);
  if (u32[usedIdx] > budget) evictQuietly(h, budget >>> 1);
}

/**
 * evictSpanCache for memory nobody asked to give back: a span the OS refuses stays cached and the refusal is
 * noted (noteRefusal), not thrown; the other spans still go.
 */
function evictQuietly(h: HeapCore, keep: number): number {
  return evictSpanCache(h, keep, true);
}

/**
 * Ends an epoch of the cache's decay. The cache held at least span_cache_low_pages pages throughout the epoch, so
 * that many went unused while SPAN_DECAY_RELEASES large spans were released: it gives back half of them (not
 * below the `spanCache` floor), the highest addresses first, and a new epoch begins. Without it the cache only
 * shrinks at its budget, which a steady live set never reaches: every page a large block ever held would stay
 * committed and, reused dirty, resident. Cached pages the workload keeps taking are never idle for a whole epoch
 * and stay (a replay of compileall pays no madvise); idle ones halve each epoch, down to the floor.
 */
function decaySpanCache(h: HeapCore): void {
  const u32 = h.u32;
  const usedIdx = stateWord(h, OFFSETOF_HEAP_STATE_SPAN_CACHE_PAGES);
  const lowIdx = stateWord(h, OFFSETOF_HEAP_STATE_SPAN_CACHE_LOW_PAGES);
  u32[stateWord(h, OFFSETOF_HEAP_STATE_SPAN_CACHE_EPOCH_RELEASES)] = 0;
  const floor = u32[stateWord(h, OFFSETOF_HEAP_STATE_SPAN_CACHE_LIMIT_PAGES)];
  const keep = Math.max(floor, u32[usedIdx] - Math.ceil(u32[lowIdx] / 2));
  if (u32[usedIdx] > keep) evictQuietly(h, keep); // memory nobody asked for: a refusal is only noted
  u32[lowIdx] = u32[usedIdx];
}

/** Cached spans, as page * scale + pages (so that sorting them sorts by page); reused between evictions. */
let evictBuf = new Float64Array(256);

/**
 * Returns cached pages to the OS, the highest addresses first, until at most `keep` pages stay cached: whole
 * spans, and the tail of the last one when only part of it must go. Cached spans are never adjacent, so each
 * costs one madvise (or munmap). Returns the pages given back. A refusal of the OS is thrown (the spans given
 * back so far stay given back), or with `quiet` noted and skipped.
 */
function evictSpanCache(h: HeapCore, keep: number, quiet = false): number {
  const u32 = h.u32;
  const pm = h.pagemapIdx;
  const usedIdx = stateWord(h, OFFSETOF_HEAP_STATE_SPAN_CACHE_PAGES);
  // Above any span's page count (a span is at most the reservation's pages).
  const scale = 2 ** (32 - Math.clz32(h.geometry.pages));
  let count = 0;
  for (let b = 0; b < LENGTHOF_HEAP_STATE_SPAN_BINS; b++) {
    for (let pg = u32[h.cacheIdx + b]; pg !== 0; pg = u32[h.linksIdx + 2 * pg]) {
      // More cached spans than pages (a cycle: the metadata was overwritten through a view) would loop for ever.
      if (count >= h.geometry.pages) {
        throw codedError(
          Error,
          'ERR_PYMALLOC_CORRUPT',
          "pymalloc: span cache: the heap's metadata is corrupt (a cache list holds more spans than the heap has pages); heap.check() names what is wrong",
        );
      }
      if (count === evictBuf.length) {
        const grown = new Float64Array(2 * count);
        grown.set(evictBuf);
        evictBuf = grown;
      }
      evictBuf[count++] = pg * scale + (u32[pm + pg] >>> 3);
    }
  }
  const spans = evictBuf.subarray(0, count).sort();
  const before = u32[usedIdx];
  let used = before;
  for (let i = count - 1; i >= 0 && used > keep; i--) {
    const pg = Math.floor(spans[i] / scale);
    const n = spans[i] % scale;
    const cut = Math.min(n, used - keep); // pages to give back, from the span's end
    if (!quiet) {
      decommitSpan(h, pg + n - cut, cut); // throws before this span changes
    } else {
      try {
        decommitSpan(h, pg + n - cut, cut);
      } catch (err) {
        noteRefusal(h, err); // this span stays cached; the next ones may still go
        h.cacheRefused = true;
        continue;
      }
    }
    listRemove(h, h.cacheIdx + bin(n), pg);
    clearTags(h, pg, n);
    if (cut < n) {
      setTags(h, pg, n - cut, SPAN_CACHED);
      listPush(h, h.cacheIdx + bin(n - cut), pg);
    }
    releaseSpan(h, pg + n - cut, cut);
    used -= cut;
    u32[usedIdx] = used;
  }
  noteCacheLow(h, used);
  if (used <= cacheBudget(h)) h.cacheRefused = false;
  return before - used;
}

/** Returns every cached span to the OS. Returns the bytes given back; a refusal is noted (noteRefusal). */
export function flushSpanCache(h: HeapCore): number {
  return evictQuietly(h, 0) * h.geometry.pageSize;
}

/**
 * Shrinks or grows a LARGE span in place to n pages; returns false (changing nothing) when it cannot grow
 * because the pages after it are not free.
 */
export function resizeLargeSpan(h: HeapCore, pg: number, oldN: number, n: number): boolean {
  if (n === oldN) return true;
  const u32 = h.u32;
  const pm = h.pagemapIdx;
  const largeIdx = stateWord(h, OFFSETOF_HEAP_STATE_LARGE_PAGES);
  if (n < oldN) {
    const tail = oldN - n;
    const cached = prepareRelease(h, pg + n, tail); // throws, changing nothing, when the OS refuses
    clearTags(h, pg, oldN);
    setTags(h, pg, n, SPAN_LARGE);
    finishRelease(h, pg + n, tail, cached);
    return true;
  }
  const next = pg + oldN;
  if (next >= h.geometry.pages) return false;
  const tag = u32[pm + next];
  const kind = tag & 7;
  const avail = tag >>> 3;
  const extra = n - oldN;
  if ((kind !== SPAN_FREE && kind !== SPAN_CACHED) || avail < extra) return false;
  if (kind === SPAN_CACHED) {
    // Committed pages already: no system call, no page faults.
    takeCached(h, next, extra);
    clearFreedHeads(h, next, extra);
  } else {
    commitRange(h, next, extra, extra * h.geometry.pageSize);
    listRemove(h, h.binsIdx + bin(avail), next);
    clearTags(h, next, avail);
    if (avail > extra) insertFree(h, next + extra, avail - extra);
    clearFreedHeads(h, next, extra);
  }
  clearTags(h, pg, oldN);
  setTags(h, pg, n, SPAN_LARGE);
  u32[largeIdx] += extra;
  return true;
}

/** Calls fn for every span of the data region, in address order. */
export function forEachSpan(h: HeapCore, fn: (pg: number, n: number, kind: number) => void): void {
  const u32 = h.u32;
  const pm = h.pagemapIdx;
  const end = h.geometry.pages;
  for (let pg = h.dataStartPage; pg < end; ) {
    const tag = u32[pm + pg];
    const n = tag >>> 3;
    if (n === 0) {
      throw codedError(
        Error,
        'ERR_PYMALLOC_CORRUPT',
        `pymalloc: the heap is corrupt: page ${pg} has no span tag`,
      );
    }
    fn(pg, n, tag & 7);
    pg += n;
  }
}

/** Walks every span and list and throws, naming the first broken invariant. */
export function checkSpans(h: HeapCore): void {
  const u32 = h.u32;
  const pm = h.pagemapIdx;
  const links = h.linksIdx;
  const fail: (msg: string) => never = (msg) => {
    throw codedError(Error, 'ERR_PYMALLOC_CORRUPT', `pymalloc: heap check failed: ${msg}`);
  };
  const free = new Map<number, number>();
  const cached = new Map<number, number>();
  let prevKind = 0;
  let cachedPages = 0;
  let large = 0;
  let largePages = 0;
  const end = h.geometry.pages;
  let pg = h.dataStartPage;
  while (pg < end) {
    const tag = u32[pm + pg];
    const n = tag >>> 3;
    const kind = tag & 7;
    if (n === 0 || kind < SPAN_FREE || kind > SPAN_CACHED)
      fail(`page ${pg} does not start a span (tag ${tag})`);
    if (pg + n > end) fail(`span at page ${pg} of ${n} pages runs past the reservation`);
    if (u32[pm + pg + n - 1] !== tag)
      fail(`span at page ${pg}: tail tag ${u32[pm + pg + n - 1]} != head tag ${tag}`);
    for (let i = pg + 1; i < pg + n - 1; i++) {
      if (u32[pm + i] !== 0) fail(`span at page ${pg}: interior page ${i} has tag ${u32[pm + i]}`);
    }
    if (kind === SPAN_FREE && prevKind === SPAN_FREE) fail(`free spans not coalesced at page ${pg}`);
    if (kind === SPAN_CACHED && prevKind === SPAN_CACHED) fail(`cached spans not coalesced at page ${pg}`);
    if (kind === SPAN_FREE) free.set(pg, n);
    if (kind === SPAN_CACHED) {
      cached.set(pg, n);
      cachedPages += n;
    }
    if (kind === SPAN_LARGE) {
      large++;
      largePages += n;
      if (u32[links + 2 * pg + 1] !== pg) fail(`large span at page ${pg} lacks its head mark`);
    }
    prevKind = kind;
    pg += n;
  }
  const walk = (headIdx: number, what: string, expect: (n: number) => boolean, pool: Map<number, number>) => {
    let prev = 0;
    let steps = 0;
    for (let p = u32[headIdx]; p !== 0; p = u32[links + 2 * p]) {
      if (++steps > end) fail(`${what} list loops`);
      const n = pool.get(p);
      if (n === undefined) fail(`${what} list holds page ${p}, which does not start a span of that kind`);
      if (!expect(n)) fail(`${what} list holds a span of ${n} pages at page ${p}`);
      if (u32[links + 2 * p + 1] !== prev)
        fail(`${what} list: page ${p} has prev ${u32[links + 2 * p + 1]}, expected ${prev}`);
      pool.delete(p);
      prev = p;
    }
  };
  for (let b = 0; b < LENGTHOF_HEAP_STATE_SPAN_BINS; b++) {
    walk(h.binsIdx + b, `free bin ${b}`, (n) => bin(n) === b, free);
  }
  for (let b = 0; b < LENGTHOF_HEAP_STATE_SPAN_BINS; b++) {
    walk(h.cacheIdx + b, `span cache bin ${b}`, (n) => bin(n) === b, cached);
  }
  if (free.size > 0) fail(`free span at page ${[...free.keys()][0]} is on no bin list`);
  if (cached.size > 0) fail(`cached span at page ${[...cached.keys()][0]} is on no cache list`);
  const cacheCount = u32[stateWord(h, OFFSETOF_HEAP_STATE_SPAN_CACHE_PAGES)];
  if (cacheCount !== cachedPages)
    fail(`span_cache_pages is ${cacheCount} but ${cachedPages} pages are cached`);
  const nlarge = u32[stateWord(h, OFFSETOF_HEAP_STATE_NLARGE)];
  if (nlarge !== large) fail(`nlarge is ${nlarge} but ${large} large spans exist`);
  const largeCount = u32[stateWord(h, OFFSETOF_HEAP_STATE_LARGE_PAGES)];
  if (largeCount !== largePages)
    fail(`large_pages is ${largeCount} but large spans hold ${largePages} pages`);
  // Over its budget only while the OS refuses to take the excess back (a quiet eviction was refused).
  if (cacheCount > cacheBudget(h) && !h.cacheRefused)
    fail(`the span cache holds ${cacheCount} pages, over its budget of ${cacheBudget(h)}`);
  const low = u32[stateWord(h, OFFSETOF_HEAP_STATE_SPAN_CACHE_LOW_PAGES)];
  if (low > cacheCount) fail(`span_cache_low_pages is ${low}, above the ${cacheCount} pages cached`);
  const releases = u32[stateWord(h, OFFSETOF_HEAP_STATE_SPAN_CACHE_EPOCH_RELEASES)];
  if (releases >= SPAN_DECAY_RELEASES)
    fail(`span_cache_epoch_releases is ${releases}, not below ${SPAN_DECAY_RELEASES}`);
}
