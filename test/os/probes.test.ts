/** lib/os/probes.ts: RSS from statm, smaps_rollup totals, resident bytes of a reservation. */
import * as fs from 'node:fs';
import { pageSize, Reservation, residentBytes, rssBytes, smapsRollup } from '../../lib/os';

const MiB = 2 ** 20;
const page = pageSize();

test('rssBytes is a whole number of pages and follows touched memory', async () => {
  expect(rssBytes() % page).toBe(0);
  const r = Reservation.create(64 * MiB);
  try {
    r.commit(0, 32 * MiB);
    const bytes = new Uint8Array(r.buffer);
    // The process's RSS also moves with whatever V8's background threads release meanwhile (after a collection,
    // say), so the touch is tried up to three times, decommitted again and after a pause in between: an rssBytes
    // that does not follow memory fails all three.
    const grew: number[] = [];
    for (let attempt = 0; attempt < 3 && !(grew[grew.length - 1]! >= 30 * MiB); attempt++) {
      if (attempt > 0) {
        r.decommit(0, 32 * MiB, 'dontneed');
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      const before = rssBytes();
      for (let p = 0; p < 32 * MiB; p += page) bytes[p] = 1;
      grew.push(rssBytes() - before);
    }
    expect(Math.max(...grew)).toBeGreaterThanOrEqual(30 * MiB);
    expect(residentBytes(r, 0, 32 * MiB)).toBe(32 * MiB);
    expect(residentBytes(r)).toBe(32 * MiB);
    expect(residentBytes(r, 32 * MiB, 32 * MiB)).toBe(0);
  } finally {
    r.release();
  }
});

test('smapsRollup reports the totals of this process in bytes', () => {
  const rollup = smapsRollup();
  if (!fs.existsSync('/proc/self/smaps_rollup')) {
    expect(rollup).toBeNull();
    return;
  }
  expect(rollup).not.toBeNull();
  const { rss, anonymous, lazyFree, anonHugePages } = rollup!;
  expect(rss % 1024).toBe(0);
  expect(rss).toBeGreaterThan(0);
  expect(anonymous).toBeGreaterThan(0);
  expect(anonymous).toBeLessThanOrEqual(rss);
  expect(lazyFree).toBeGreaterThanOrEqual(0);
  expect(anonHugePages).toBeGreaterThanOrEqual(0);
  // Both read the same process moments apart: within 16 MiB of each other.
  expect(Math.abs(rss - rssBytes())).toBeLessThan(16 * MiB);
});

test('a decommitted reservation adds no anonymous huge pages', () => {
  const before = smapsRollup();
  const r = Reservation.create(64 * MiB, 64 * MiB);
  try {
    r.commit(0, 64 * MiB);
    new Uint8Array(r.buffer).fill(1);
    r.decommit(0, 64 * MiB, 'dontneed');
    expect(r.residentBytes()).toBe(0);
    const after = smapsRollup();
    if (before && after) expect(after.anonHugePages).toBeLessThanOrEqual(before.anonHugePages);
  } finally {
    r.release();
  }
});
