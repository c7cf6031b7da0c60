import { dataResident, destroyAll, makeHeap } from './helpers';

afterEach(destroyAll);

describe('large blocks', () => {
  test('take page-granular spans of the same reservation', () => {
    const h = makeHeap();
    const page = h.geometry.pageSize;
    const first = h.geometry.mediumThreshold + 1; // the smallest large request
    const a = h.malloc(first);
    const b = h.malloc(3 * page + 1);
    expect(a % page).toBe(0);
    expect(b % page).toBe(0);
    expect(h.usableSize(a)).toBe(page);
    expect(h.usableSize(b)).toBe(4 * page);
    h.u8.fill(1, b, b + 3 * page + 1);
    expect(h.stats().large).toMatchObject({
      blocks: 2,
      bytesRequested: first + 3 * page + 1,
      bytesCommitted: 5 * page,
    });
    h.check();
  });

  test('freed spans leave RSS at once and neighbouring free spans coalesce', () => {
    const h = makeHeap({ spanCache: 0 });
    const size = 8 * 1024 * 1024;
    const ps = [h.malloc(size), h.malloc(size), h.malloc(size)];
    for (const p of ps) h.u8.fill(7, p, p + size);
    expect(dataResident(h)).toBe(3 * size);
    h.free(ps[0]);
    h.free(ps[2]);
    h.check();
    h.free(ps[1]); // coalesces with both neighbours
    h.check(); // would fail if two free spans were adjacent
    expect(dataResident(h)).toBe(0);
    // The coalesced span serves one request of all three sizes together, at the first address.
    const big = h.malloc(3 * size);
    expect(big).toBe(ps[0]);
    h.check();
  });

  test('the span cache keeps small freed spans committed up to its budget', () => {
    const page = 4096;
    const h = makeHeap({ spanCache: 4 * page });
    const ps = Array.from({ length: 6 }, () => h.malloc(page));
    for (const p of ps) h.u8[p] = 1;
    for (const p of ps) h.free(p);
    expect(h.stats().large.cachedBytes).toBe(4 * page);
    h.check();
    // A request of the same size reuses a cached span.
    const q = h.malloc(page);
    expect(ps).toContain(q);
    expect(h.stats().large.cachedBytes).toBe(3 * page);
    expect(h.trim()).toBeGreaterThanOrEqual(3 * page);
    expect(h.stats().large.cachedBytes).toBe(0);
    h.check();
  });

  test('the span cache may hold twice the pages of the live large blocks, and shrinks as they go', () => {
    const page = 4096;
    const h = makeHeap({ spanCache: 0 });
    const ps = Array.from({ length: 20 }, () => h.malloc(page));
    for (const p of ps) h.u8[p] = 1;
    expect(dataResident(h)).toBe(20 * page);
    const freed = ps.splice(0, 10);
    for (const p of freed) h.free(p);
    // 10 pages live: the budget is 20 pages, so all 10 freed spans stay committed, and a new block reuses one.
    expect(h.stats().large.cachedBytes).toBe(10 * page);
    expect(dataResident(h)).toBe(20 * page);
    h.check();
    const again = Array.from({ length: 10 }, () => h.malloc(page));
    for (const p of again) expect(freed).toContain(p);
    expect(h.stats().large.cachedBytes).toBe(0);
    h.check();
    // Freeing everything takes the budget to the floor (0 here): nothing stays committed.
    for (const p of [...ps, ...again]) h.free(p);
    expect(h.stats().large.cachedBytes).toBe(0);
    expect(dataResident(h)).toBe(0);
    h.check();
  });

  test('cached spans serve requests of other sizes: the best fit, split, and the rest stays cached', () => {
    const page = 4096;
    const h = makeHeap();
    const guard = h.malloc(page); // keeps the spans below from merging with anything but each other
    const a = h.malloc(24 * page);
    const g2 = h.malloc(page);
    const b = h.malloc(40 * page);
    const g3 = h.malloc(page);
    h.u8.fill(1, a, a + 24 * page);
    h.u8.fill(1, b, b + 40 * page);
    h.free(a);
    h.free(b);
    expect(h.stats().large.cachedBytes).toBe(64 * page);
    h.check();
    // 20 pages: the 24-page span fits best; its first 20 pages serve, its last 4 stay cached.
    const c = h.malloc(20 * page);
    expect(c).toBe(a);
    expect(h.stats().large.cachedBytes).toBe(44 * page);
    // 30 pages: only the 40-page span fits.
    expect(h.malloc(30 * page)).toBe(b);
    // 4 pages: exactly the rest of the 24-page span.
    expect(h.malloc(4 * page)).toBe(a + 20 * page);
    expect(h.stats().large.cachedBytes).toBe(10 * page);
    // None of it was given back and faulted in again (the guards were never touched).
    expect(dataResident(h)).toBe(64 * page);
    h.check();
    for (const p of [guard, g2, g3]) h.free(p);
    h.check();
  });

  test('neighbouring cached spans merge into one that a larger request can take', () => {
    const page = 4096;
    const h = makeHeap();
    const ps = Array.from({ length: 5 }, () => h.malloc(20 * page));
    for (const p of ps) h.u8.fill(2, p, p + 20 * page);
    const guard = h.malloc(page);
    for (const p of [ps[1], ps[3], ps[2]]) h.free(p); // the last one joins its two cached neighbours
    h.check(); // would fail if two cached spans were adjacent
    expect(h.stats().large.cachedBytes).toBe(60 * page);
    const big = h.malloc(60 * page);
    expect(big).toBe(ps[1]);
    expect(h.stats().large.cachedBytes).toBe(0);
    expect(dataResident(h)).toBe(100 * page);
    h.check();
    h.free(guard);
  });

  test('a large block grows in place into a cached span after it', () => {
    const page = 4096;
    const h = makeHeap();
    const p = h.malloc(8 * page);
    const q = h.malloc(30 * page);
    const guard = h.malloc(page);
    h.u8.fill(3, p, p + 8 * page);
    h.u8.fill(4, q, q + 30 * page);
    h.free(q);
    expect(h.realloc(p, 20 * page)).toBe(p);
    expect(h.usableSize(p)).toBe(20 * page);
    expect(h.u8.subarray(p, p + 8 * page).every((b) => b === 3)).toBe(true);
    // The rest of the cached span stays cached, and nothing was faulted in again.
    expect(h.stats().large.cachedBytes).toBe(18 * page);
    expect(dataResident(h)).toBe(38 * page);
    h.check();
    h.free(guard);
  });

  test('over its budget the cache gives back its highest pages: the tail of a span, keeping its first pages', () => {
    const page = 4096;
    // A floor of 64 pages: with no large block live, the cache keeps at most 64 pages.
    const h = makeHeap({ spanCache: 64 * page });
    const a = h.malloc(48 * page);
    const guard = h.malloc(page);
    h.u8.fill(5, a, a + 49 * page);
    h.free(guard);
    h.free(a); // merges with the guard's cached page
    expect(h.stats().large.cachedBytes).toBe(49 * page);
    expect(dataResident(h)).toBe(49 * page);
    const b = h.malloc(60 * page);
    expect(b).toBe(a + 49 * page);
    h.u8.fill(6, b, b + 60 * page);
    // 49 + 60 pages are over the budget: before b's span is cached, the cache drops to 4 pages (its budget less
    // b's), from the top: a's span keeps its first 4 pages and gives back its last 45.
    h.free(b);
    expect(h.stats().large.cachedBytes).toBe(64 * page);
    expect(h.reservation.residentBytes(a, 4 * page)).toBe(4 * page);
    expect(h.reservation.residentBytes(a + 4 * page, 45 * page)).toBe(0);
    expect(dataResident(h)).toBe(64 * page);
    h.check();
    expect(h.malloc(4 * page)).toBe(a);
    expect(h.malloc(60 * page)).toBe(b);
    expect(h.stats().large.cachedBytes).toBe(0);
    expect(dataResident(h)).toBe(64 * page);
    h.check();
  });

  test('a shrunk large block keeps its tail committed for reuse when the cache has room', () => {
    const page = 4096;
    const h = makeHeap();
    const p = h.malloc(16 * page);
    h.u8.fill(1, p, p + 16 * page);
    expect(h.realloc(p, page)).toBe(p);
    expect(h.stats().large).toMatchObject({ blocks: 1, bytesCommitted: page, cachedBytes: 15 * page });
    expect(dataResident(h)).toBe(16 * page);
    h.check();
    expect(h.malloc(15 * page)).toBe(p + page);
    h.check();
  });

  test('shrinking a large block gives its tail pages back', () => {
    const h = makeHeap({ spanCache: 0 });
    const p = h.malloc(1024 * 1024);
    h.u8.fill(1, p, p + 1024 * 1024);
    expect(dataResident(h)).toBe(1024 * 1024);
    expect(h.realloc(p, 4096)).toBe(p);
    expect(dataResident(h)).toBe(4096);
    h.check();
  });
});
