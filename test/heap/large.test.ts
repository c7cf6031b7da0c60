import { dataResident, destroyAll, makeHeap } from './helpers';

afterEach(destroyAll);

describe('large blocks', () => {
  test('take page-granular spans of the same reservation', () => {
    const h = makeHeap();
    const page = h.geometry.pageSize;
    const a = h.malloc(513);
    const b = h.malloc(3 * page + 1);
    expect(a % page).toBe(0);
    expect(b % page).toBe(0);
    expect(h.usableSize(a)).toBe(page);
    expect(h.usableSize(b)).toBe(4 * page);
    h.u8.fill(1, b, b + 3 * page + 1);
    expect(h.stats().large).toMatchObject({
      blocks: 2,
      bytesRequested: 513 + 3 * page + 1,
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
