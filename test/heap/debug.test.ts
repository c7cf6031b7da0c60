import { CLEANBYTE, DEADBYTE, FORBIDDENBYTE, Heap } from '../../lib';
import { destroyAll, expectCode, makeHeap } from './helpers';

afterEach(destroyAll);

function debugError(fn: () => unknown): Error & { code?: string } {
  try {
    fn();
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error('expected an error');
}

describe('debug mode', () => {
  test('new memory is CLEANBYTE, wrapped in FORBIDDENBYTE guards, with the size recorded', () => {
    const h = makeHeap({ debug: true });
    const p = h.malloc(10);
    expect([...h.u8.subarray(p, p + 10)].every((b) => b === CLEANBYTE)).toBe(true);
    expect([...h.u8.subarray(p + 10, p + 18)].every((b) => b === FORBIDDENBYTE)).toBe(true);
    expect([...h.u8.subarray(p - 7, p)].every((b) => b === FORBIDDENBYTE)).toBe(true);
    expect(h.u8[p - 8]).toBe('o'.charCodeAt(0));
    expect(h.dv.getUint32(p - 12, false)).toBe(10);
    expect(h.usableSize(p)).toBe(10);
    h.free(p);
    h.check();
  });

  test('freed memory is filled with DEADBYTE', () => {
    const h = makeHeap({ debug: true });
    const p = h.malloc(100);
    const keep = h.malloc(100);
    h.free(p);
    expect([...h.u8.subarray(p + 8, p + 100)].every((b) => b === DEADBYTE)).toBe(true);
    h.free(keep);
  });

  test('a one-byte overflow is reported at free, like CPython', () => {
    const h = makeHeap({ debug: true });
    const p = h.malloc(24);
    h.u8[p + 24] = 0x78;
    const err = debugError(() => h.free(p));
    expect(err.code).toBe('ERR_PYMALLOC_DEBUG');
    expect(err.message).toContain('bad trailing pad byte');
    expect(err.message).toContain(`Debug memory block at address p=0x${p.toString(16)}: API 'o'`);
    expect(err.message).toContain('24 bytes originally requested');
    expect(err.message).toContain('The 7 pad bytes at p-7 are FORBIDDENBYTE, as expected.');
    expect(err.message).toContain(
      `The 8 pad bytes at tail=0x${(p + 24).toString(16)} are not all FORBIDDENBYTE (0xfd):`,
    );
    expect(err.message).toContain('at tail+0: 0x78 *** OUCH');
    expect(err.message).toContain('at tail+1: 0xfd\n');
    h.check();
  });

  test('a one-byte underflow is reported at free', () => {
    const h = makeHeap({ debug: true });
    const p = h.malloc(40);
    h.u8[p - 1] = 0;
    const err = debugError(() => h.free(p));
    expect(err.message).toContain('bad leading pad byte');
    expect(err.message).toContain('The 7 pad bytes at p-7 are not all FORBIDDENBYTE (0xfd):');
    expect(err.message).toContain('at p-1: 0x00 *** OUCH');
    h.check();
  });

  test('a double free is reported', () => {
    const h = makeHeap({ debug: true });
    const p = h.malloc(40);
    const q = h.malloc(40);
    h.free(p);
    expectCode(h, () => h.free(p), 'ERR_PYMALLOC_DOUBLE_FREE', /double free/);
    h.free(q);
  });

  test('a write after free is reported when the block is reused', () => {
    const h = makeHeap({ debug: true });
    const p = h.malloc(40);
    const keep = h.malloc(40);
    h.free(p);
    h.u8[p + 3] = 0x41;
    const err = debugError(() => h.malloc(40));
    expect(err.code).toBe('ERR_PYMALLOC_DEBUG');
    expect(err.message).toContain('write to freed memory');
    expect(err.message).toContain(`block 0x${p.toString(16)}`);
    expect(err.message).toContain('byte 0x41 at p+3');
    h.check();
    h.free(keep);
  });

  test('foreign and interior pointers are reported', () => {
    const h = makeHeap({ debug: true });
    const p = h.malloc(40);
    expectCode(h, () => h.free(p + 16), 'ERR_PYMALLOC_INVALID_POINTER');
    expectCode(h, () => h.free(p + 1), 'ERR_PYMALLOC_INVALID_POINTER');
  });

  test('memory handed out never shows earlier contents', () => {
    const h = makeHeap({ debug: true });
    const ps: number[] = [];
    for (let i = 0; i < 500; i++) {
      const n = 1 + ((i * 37) % 700);
      const p = h.malloc(n);
      expect([...h.u8.subarray(p, p + n)].every((b) => b === CLEANBYTE)).toBe(true);
      h.u8.fill(0x5a, p, p + n);
      ps.push(p);
      if (i % 3 === 0) h.free(ps.splice((i * 7) % ps.length, 1)[0]);
    }
    h.check();
  });

  test('realloc and calloc keep the guards', () => {
    const h = makeHeap({ debug: true });
    const p = h.calloc(4, 4);
    expect([...h.u8.subarray(p, p + 16)].every((b) => b === 0)).toBe(true);
    h.u8.fill(9, p, p + 16);
    const q = h.realloc(p, 1000);
    expect([...h.u8.subarray(q, q + 16)].every((b) => b === 9)).toBe(true);
    expect(h.usableSize(q)).toBe(1000);
    h.free(q);
    h.check();
  });

  test('PYMALLOC=debug turns it on', () => {
    const old = process.env['PYMALLOC'];
    process.env['PYMALLOC'] = 'debug';
    try {
      const h = new Heap({ reserve: 64 * 1024 * 1024 });
      const p = h.malloc(8);
      expect(h.u8[p]).toBe(CLEANBYTE);
      h.destroy();
    } finally {
      if (old === undefined) delete process.env['PYMALLOC'];
      else process.env['PYMALLOC'] = old;
    }
  });
});
