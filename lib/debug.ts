/**
 * Debug hooks, after CPython's PYTHONMALLOC=debug. Every block is wrapped (S = 8):
 *     b[0:S]        bytes requested, big-endian
 *     b[S]          API id 'o'
 *     b[S+1:2S]     FORBIDDENBYTE (0xFD) x 7                 <- underflow guard
 *     b[2S:2S+n]    the data: CLEANBYTE (0xCD) when new;  p = b + 2S is what the caller gets
 *     b[2S+n:3S+n]  FORBIDDENBYTE x 8                        <- overflow guard
 * On free the guards are checked, the whole block is filled with DEADBYTE (0xDD), and the block goes back.
 * Every block is checked again when it is handed out, or something wrote to it after it was freed: a small or
 * medium block's bytes but its first 2S (the free-list link and mark) must still be DEADBYTE (debug heaps fill
 * never-used blocks with DEADBYTE too, see pool.ts); a large block's pages, if they come from the span cache,
 * must all be DEADBYTE, and if they come from pages given back to the OS, must all be zero (only pages that
 * have become resident again are read: a write after free is what makes one resident). Errors are thrown, not
 * fatal, and the block involved is left allocated, so the heap stays consistent.
 */
import type { Allocator } from './alloc';
import { callocSize, checkPointer, checkSize, hex, MAX_REQUEST } from './alloc';
import { codedError } from './core';
import { DEADBYTE } from './pool';

export const CLEANBYTE = 0xcd;
export const FORBIDDENBYTE = 0xfd;
const S = 8;
const API_ID = 'o'.charCodeAt(0);

type Hooked = Allocator & {
  malloc(n: number): number;
  free(p: number): void;
  realloc(p: number, n: number): number;
  calloc(count: number, size: number): number;
  usableSize(p: number): number;
};

function byteHex(v: number): string {
  return `0x${v.toString(16).padStart(2, '0')}`;
}

/** The report CPython prints for a bad block (_PyObject_DebugDumpAddress), as an Error message. */
function dump(h: Allocator, p: number, reason: string): string {
  const u8 = h.u8;
  const b = p - 2 * S;
  const lines = [
    `pymalloc debug: ${reason}`,
    `Debug memory block at address p=${hex(p)}: API '${String.fromCharCode(u8[b + S])}'`,
  ];
  const n = requested(h, p);
  lines.push(`    ${n} bytes originally requested`);
  const badLead: number[] = [];
  for (let i = S + 1; i < 2 * S; i++) if (u8[b + i] !== FORBIDDENBYTE) badLead.push(i);
  if (badLead.length === 0) {
    lines.push(`    The ${S - 1} pad bytes at p-${S - 1} are FORBIDDENBYTE, as expected.`);
  } else {
    lines.push(
      `    The ${S - 1} pad bytes at p-${S - 1} are not all FORBIDDENBYTE (${byteHex(FORBIDDENBYTE)}):`,
    );
    for (let i = S + 1; i < 2 * S; i++) {
      const v = u8[b + i];
      lines.push(`        at p-${2 * S - i}: ${byteHex(v)}${v === FORBIDDENBYTE ? '' : ' *** OUCH'}`);
    }
  }
  const tail = p + n;
  if (n <= h.geometry.reserve) {
    const badTail: number[] = [];
    for (let i = 0; i < S; i++) if (u8[tail + i] !== FORBIDDENBYTE) badTail.push(i);
    if (badTail.length === 0) {
      lines.push(`    The ${S} pad bytes at tail=${hex(tail)} are FORBIDDENBYTE, as expected.`);
    } else {
      lines.push(
        `    The ${S} pad bytes at tail=${hex(tail)} are not all FORBIDDENBYTE (${byteHex(FORBIDDENBYTE)}):`,
      );
      for (let i = 0; i < S; i++) {
        const v = u8[tail + i];
        lines.push(`        at tail+${i}: ${byteHex(v)}${v === FORBIDDENBYTE ? '' : ' *** OUCH'}`);
      }
    }
    const shown = Math.min(n, 8);
    const data = Array.from(u8.subarray(p, p + shown), (v) => v.toString(16).padStart(2, '0')).join(' ');
    lines.push(`    Data at p: ${data}${n > shown ? ' ...' : ''}`);
  }
  return lines.join('\n');
}

/** Templates for firstOtherThan: 64 KiB of one byte value each. */
const templates = new Map<number, Buffer>();
const TEMPLATE_BYTES = 64 * 1024;

/**
 * The index of the first byte of u8[from, end) that is not `value`, or -1. Long ranges (a large block) are
 * compared natively, 64 KiB at a time, against a template.
 */
function firstOtherThan(u8: Uint8Array, from: number, end: number, value: number): number {
  if (end - from > 256) {
    let t = templates.get(value);
    if (t === undefined) {
      t = Buffer.alloc(TEMPLATE_BYTES, value);
      templates.set(value, t);
    }
    const buf = Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength);
    let i = from;
    for (; i < end; i += TEMPLATE_BYTES) {
      const n = Math.min(TEMPLATE_BYTES, end - i);
      if (buf.compare(t, 0, n, i, i + n) !== 0) break;
    }
    if (i >= end) return -1;
    from = i; // the bad byte is in this chunk
  }
  for (let i = from; i < end; i++) if (u8[i] !== value) return i;
  return -1;
}

function requested(h: Allocator, p: number): number {
  const b = p - 2 * S;
  return h.dv.getUint32(b, false) * 2 ** 32 + h.dv.getUint32(b + 4, false);
}

function debugError(h: Allocator, p: number, reason: string, code = 'ERR_PYMALLOC_DEBUG'): Error {
  return codedError(Error, code, dump(h, p, reason));
}

export function installDebugHooks(heap: Allocator): void {
  const h = heap as Hooked;
  const proto = Object.getPrototypeOf(h) as Hooked;
  const rawMalloc = proto.malloc;
  const rawFree = proto.free;
  // Undocumented but handy: the underlying block of a debug pointer.
  const usable = (b: number): number => proto.usableSize.call(h, b);

  const wafError = (api: string, b: number, n: number, at: number, expected: number): Error =>
    codedError(
      Error,
      'ERR_PYMALLOC_DEBUG',
      `pymalloc debug: ${api}: write to freed memory: block ${hex(b + 2 * S)} (reused for a request of ${n} ` +
        `bytes) has byte ${byteHex(h.u8[at])} at p${at - b - 2 * S < 0 ? '' : '+'}${at - b - 2 * S}, expected ` +
        `${expected === DEADBYTE ? 'DEADBYTE' : 'zero: its pages had gone back to the OS'} (${byteHex(expected)}); ` +
        'the block is kept out of use',
    );

  /** Throws if the block b, just handed out for a request of n bytes, was written to after it was freed. */
  const checkFreed = (b: number, n: number, api: string): void => {
    const end = b + usable(b);
    let expected = DEADBYTE;
    let from = b;
    if (n + 3 * S <= h.geometry.mediumThreshold) {
      from = b + 2 * S; // past the free-list link and mark
    } else if (h.spanWasFree) {
      // Decommitted pages read as zeros and are not resident, unless something touched them since. (From the
      // span cache, every byte was DEADBYTE-filled when its block was freed.)
      if (h.reservation.residentPages(b, end - b) === 0) return;
      expected = 0;
    }
    const at = firstOtherThan(h.u8, from, end, expected);
    if (at >= 0) throw wafError(api, b, n, at, expected);
  };

  const debugMalloc = (n: number, api: string): number => {
    checkSize(n, 'size', api);
    const total = n + 3 * S;
    if (total > MAX_REQUEST) {
      throw codedError(
        RangeError,
        'ERR_PYMALLOC_NOMEM',
        `pymalloc: out of memory: cannot allocate ${n} bytes (debug mode adds ${3 * S} bytes of guards to every ` +
          'block, and a heap holds at most 4 GiB)',
      );
    }
    const b = rawMalloc.call(h, total);
    checkFreed(b, n, api);
    const u8 = h.u8;
    h.dv.setUint32(b, Math.floor(n / 2 ** 32), false);
    h.dv.setUint32(b + 4, n % 2 ** 32, false);
    u8[b + S] = API_ID;
    u8.fill(FORBIDDENBYTE, b + S + 1, b + 2 * S);
    u8.fill(CLEANBYTE, b + 2 * S, b + 2 * S + n);
    u8.fill(FORBIDDENBYTE, b + 2 * S + n, b + 3 * S + n);
    return b + 2 * S;
  };

  const locate = (h as unknown as { locate(p: unknown, what: string, shown?: number): number }).locate;
  /** Checks p's guards; returns the underlying block and the bytes requested. */
  const verify = (p: number, api: string): { b: number; n: number } => {
    checkPointer(p, api);
    // Below 2S no block can start: let the raw allocator name what p is.
    if (p < 2 * S) locate.call(h, p, api);
    const b = p - 2 * S;
    // Errors name p, the pointer the caller passed, not the underlying block.
    locate.call(h, b, api, p);
    const u8 = h.u8;
    if (u8[b + S] !== API_ID) {
      throw debugError(
        h,
        p,
        `${api}: bad ID: allocated using API '${String.fromCharCode(u8[b + S])}', verified using API 'o'`,
      );
    }
    for (let i = S + 1; i < 2 * S; i++) {
      if (u8[b + i] !== FORBIDDENBYTE)
        throw debugError(h, p, `${api}: bad leading pad byte (buffer underflow)`);
    }
    const n = requested(h, p);
    if (n + 3 * S > usable(b)) throw debugError(h, p, `${api}: bad size recorded (${n} bytes)`);
    for (let i = 0; i < S; i++) {
      if (u8[p + n + i] !== FORBIDDENBYTE)
        throw debugError(h, p, `${api}: bad trailing pad byte (buffer overflow)`);
    }
    return { b, n };
  };

  const debugFree = (p: number, api: string): void => {
    if (p === 0 && !h.isDestroyed) return;
    const { b } = verify(p, api);
    h.u8.fill(DEADBYTE, b, b + usable(b));
    rawFree.call(h, b);
  };

  h.malloc = (n: number) => {
    if (h.isDestroyed) return rawMalloc.call(h, n);
    return debugMalloc(n, 'malloc');
  };
  h.free = (p: number) => {
    if (h.isDestroyed) return rawFree.call(h, p);
    debugFree(p, 'free');
  };
  h.calloc = (count: number, size: number) => {
    if (h.isDestroyed) return proto.calloc.call(h, count, size);
    const total = callocSize(count, size);
    const p = debugMalloc(total, 'calloc');
    h.u8.fill(0, p, p + total);
    return p;
  };
  h.realloc = (p: number, n: number) => {
    if (h.isDestroyed) return proto.realloc.call(h, p, n);
    checkSize(n, 'size', 'realloc');
    if (p === 0) return debugMalloc(n, 'realloc');
    const old = verify(p, 'realloc').n;
    const q = debugMalloc(n, 'realloc');
    h.u8.copyWithin(q, p, p + Math.min(old, n));
    debugFree(p, 'realloc');
    return q;
  };
  h.usableSize = (p: number) => {
    if (h.isDestroyed) return proto.usableSize.call(h, p);
    return verify(p, 'usableSize').n;
  };
}
