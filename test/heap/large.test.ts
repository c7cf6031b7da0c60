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
