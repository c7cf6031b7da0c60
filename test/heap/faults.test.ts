import { pageSize, Reservation } from '../../lib';
import { __testing } from '../../lib/testing';
import { destroyAll, makeHeap } from './helpers';

afterEach(() => {
  __testing.setFault('commit', 0);
  __testing.setFault('reserve', 0);
  destroyAll();
});

describe('the OS refusing memory', () => {
  test("a 'dontneed' heap never commits: its reservation is read-write from the start", () => {
    const h = makeHeap();
    __testing.setFault('commit', 1);
    const big = h.malloc(64 * 1024 * 1024);
    h.u8[big + 64 * 1024 * 1024 - 1] = 1;
    for (let i = 0; i < 100_000; i++) h.malloc(64);
    h.check();
    // The armed fault is still there: no commit was made.
    expect(() => Reservation.create(pageSize(), pageSize(), 'none').commit(0, pageSize())).toThrow(
      expect.objectContaining({ code: 'ENOMEM' }),
    );
  });

  {
    const decommit = 'unmap';
    test(`a failed commit makes malloc throw ERR_PYMALLOC_NOMEM; the heap stays consistent and recovers (${decommit})`, () => {
      const h = makeHeap({ decommit });
      const ps: number[] = [];
      for (let i = 0; i < 100; i++) ps.push(h.malloc(64));
      // The next span needs a commit in 'unmap' mode.
      __testing.setFault('commit', 1);
      let err: (Error & { code?: string; cause?: { code?: string } }) | undefined;
      try {
        h.malloc(64 * 1024 * 1024);
      } catch (e) {
        err = e as typeof err;
      }
      expect(err).toBeInstanceOf(RangeError);
      expect(err?.code).toBe('ERR_PYMALLOC_NOMEM');
      expect(err?.message).toMatch(/cannot allocate 67108864 bytes/);
      expect(err?.cause?.code).toBe('ENOMEM');
      h.check();
      // The fault cleared: the same request succeeds, and the old blocks are intact.
      const big = h.malloc(64 * 1024 * 1024);
      h.u8[big] = 1;
      for (const p of ps) h.free(p);
      h.free(big);
      h.check();
    });
  }

  test('a failed reservation makes new Heap() throw ENOMEM', () => {
    __testing.setFault('reserve', 1);
    expect(() => makeHeap()).toThrow(expect.objectContaining({ code: 'ENOMEM' }));
    expect(makeHeap().malloc(10)).toBeGreaterThan(0);
  });
});
