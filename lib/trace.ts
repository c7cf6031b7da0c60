/**
 * Allocation traces: one operation per line, `m ID SIZE` (malloc), `f ID` (free), `r ID SIZE` (realloc), where
 * ID is a decimal name of a live object. Files ending in .gz are read through gunzip. Parsing checks that every
 * line is well formed and that every free or realloc names a live ID, and throws naming the line otherwise.
 * A parsed trace is three flat arrays, so that replaying it allocates nothing.
 */
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';

export const OP_MALLOC = 0;
export const OP_FREE = 1;
export const OP_REALLOC = 2;

export interface Trace {
  /** Where it came from (a file name or a label). */
  readonly name: string;
  /** Number of operations. */
  readonly length: number;
  readonly ops: Uint8Array;
  /** Dense object numbers 0..objects-1 (the trace's IDs renumbered in order of first appearance). */
  readonly ids: Uint32Array;
  readonly sizes: Uint32Array;
  /** Number of distinct objects (the size a replay's ID -> pointer table needs). */
  readonly objects: number;
}

export class TraceError extends Error {
  readonly line: number;
  constructor(name: string, line: number, message: string) {
    super(`${name}:${line}: ${message}`);
    this.name = 'TraceError';
    this.line = line;
    (this as this & { code: string }).code = 'ERR_PYMALLOC_TRACE';
  }
}

/** Reports parsing progress: `done` of `total` bytes of the trace's text. */
export type TraceProgress = (done: number, total: number) => void;

/** Reads a trace file (gzip-compressed if its name ends in .gz). */
export function loadTrace(path: string, onProgress?: TraceProgress): Trace {
  let data: Buffer = readFileSync(path);
  if (path.endsWith('.gz')) data = gunzipSync(data);
  return parseTrace(data, path, onProgress);
}

const MAX_SIZE = 2 ** 32 - 1;
const SPACE = 32;
const TAB = 9;
const CR = 13;
const LF = 10;
const HASH = 35;
const ZERO = 48;
const NINE = 57;

function isBlank(c: number): boolean {
  return c === SPACE || c === TAB || c === CR;
}

/**
 * Parses trace text (a string, or its bytes); throws TraceError naming the first malformed line. It works on the
 * bytes directly, making no string per line, so that a trace of millions of lines loads in a fraction of a
 * second and leaves little garbage behind.
 */
export function parseTrace(input: string | Uint8Array, name = '<trace>', onProgress?: TraceProgress): Trace {
  const b = typeof input === 'string' ? Buffer.from(input, 'latin1') : input;
  const len = b.length;
  let capacity = 1024;
  let ops = new Uint8Array(capacity);
  let ids = new Uint32Array(capacity);
  let sizes = new Uint32Array(capacity);
  // ID -> dense object number; IDs beyond 2^53 (which no real trace has) go through their text.
  const dense = new Map<number, number>();
  const denseText = new Map<string, number>();
  let objects = 0;
  let live = new Uint8Array(1024);
  // Token boundaries of the current line: up to 4 tokens (one more than any operation takes).
  const tokStart = [0, 0, 0, 0];
  const tokEnd = [0, 0, 0, 0];
  let n = 0;
  let lineNo = 0;
  let pos = 0;
  while (pos < len) {
    lineNo++;
    const lineStart = pos;
    let lineEnd = pos;
    while (lineEnd < len && b[lineEnd] !== LF) lineEnd++;
    pos = lineEnd + 1;
    if (onProgress !== undefined && (lineNo & 0xffff) === 0) onProgress(pos, len);
    let ntok = 0;
    let i = lineStart;
    while (i < lineEnd) {
      while (i < lineEnd && isBlank(b[i])) i++;
      if (i === lineEnd) break;
      const t0 = i;
      while (i < lineEnd && !isBlank(b[i])) i++;
      if (ntok < 4) {
        tokStart[ntok] = t0;
        tokEnd[ntok] = i;
      }
      ntok++;
    }
    if (ntok === 0 || b[tokStart[0]] === HASH) continue;
    const text = (k: number) => latin1(b, tokStart[k], tokEnd[k]);
    const lineText = () => latin1(b, tokStart[0], tokEnd[Math.min(ntok, 4) - 1]);
    const c = tokEnd[0] - tokStart[0] === 1 ? b[tokStart[0]] : 0;
    const code = c === 109 ? OP_MALLOC : c === 102 ? OP_FREE : c === 114 ? OP_REALLOC : -1;
    if (code < 0) throw new TraceError(name, lineNo, `unknown operation '${text(0)}' (expected m, f or r)`);
    const want = code === OP_FREE ? 2 : 3;
    if (ntok < want) {
      throw new TraceError(
        name,
        lineNo,
        `'${text(0)}' needs ${want === 2 ? 'an ID' : 'an ID and a size'}: '${lineText()}'`,
      );
    }
    if (ntok > want) throw new TraceError(name, lineNo, `too many fields: '${lineText()}'`);
    const idValue = decimal(b, tokStart[1], tokEnd[1]);
    if (idValue < 0) throw new TraceError(name, lineNo, `ID must be a decimal number, got '${text(1)}'`);
    let size = 0;
    if (code !== OP_FREE) {
      size = decimal(b, tokStart[2], tokEnd[2]);
      if (size < 0 || size > MAX_SIZE) {
        throw new TraceError(name, lineNo, `size must be a decimal number below 2^32, got '${text(2)}'`);
      }
    }
    const bigId = idValue > Number.MAX_SAFE_INTEGER;
    let id = bigId ? denseText.get(text(1)) : dense.get(idValue);
    if (code === OP_MALLOC) {
      if (id !== undefined && live[id] === 1)
        throw new TraceError(name, lineNo, `malloc of ID ${text(1)}, which is already live`);
      if (id === undefined) {
        id = objects++;
        if (bigId) denseText.set(text(1), id);
        else dense.set(idValue, id);
        if (id === live.length) {
          const l = new Uint8Array(live.length * 2);
          l.set(live);
          live = l;
        }
      }
      live[id] = 1;
    } else {
      if (id === undefined || live[id] !== 1) {
        throw new TraceError(
          name,
          lineNo,
          `${code === OP_FREE ? 'free' : 'realloc'} of ID ${text(1)}, which is not live`,
        );
      }
      if (code === OP_FREE) live[id] = 0;
    }
    if (n === capacity) {
      capacity *= 2;
      const o = new Uint8Array(capacity);
      o.set(ops);
      ops = o;
      const d = new Uint32Array(capacity);
      d.set(ids);
      ids = d;
      const z = new Uint32Array(capacity);
      z.set(sizes);
      sizes = z;
    }
    ops[n] = code;
    ids[n] = id;
    sizes[n] = size;
    n++;
  }
  onProgress?.(len, len);
  // Trimmed copies, so that the doubling's spare capacity is not kept alive.
  return {
    name,
    length: n,
    ops: ops.slice(0, n),
    ids: ids.slice(0, n),
    sizes: sizes.slice(0, n),
    objects,
  };
}

/** The value of the decimal digits b[start, end), or -1 if they are not all digits. */
function decimal(b: Uint8Array, start: number, end: number): number {
  if (start >= end) return -1;
  let v = 0;
  for (let i = start; i < end; i++) {
    const c = b[i];
    if (c < ZERO || c > NINE) return -1;
    v = v * 10 + (c - ZERO);
  }
  return v;
}

function latin1(b: Uint8Array, start: number, end: number): string {
  return Buffer.from(b.buffer, b.byteOffset + start, end - start).toString('latin1');
}

/** The allocator interface a replay drives. */
export interface TraceTarget {
  malloc(n: number): number;
  free(p: number): void;
  realloc(p: number, n: number): number;
}

/**
 * The replay loop's form of a trace: two words per operation, `(id << 2) | op` and the size, so that the loop
 * reads one array in order instead of three. Built on a trace's first replay and kept with it: a trace's arrays
 * must not change once it has been replayed.
 */
const packedTraces = new WeakMap<Trace, Uint32Array>();

/** Most objects a trace can have: an object number and its 2-bit operation share a 32-bit word. */
export const MAX_TRACE_OBJECTS = 2 ** 30;

export function packedTrace(trace: Trace): Uint32Array {
  let packed = packedTraces.get(trace);
  if (packed === undefined) {
    const { length, ops, ids, sizes } = trace;
    if (trace.objects > MAX_TRACE_OBJECTS) {
      throw new RangeError(
        `${trace.name}: ${trace.objects} objects is more than a replay can number (${MAX_TRACE_OBJECTS})`,
      );
    }
    packed = new Uint32Array(2 * length);
    for (let i = 0; i < length; i++) {
      packed[2 * i] = ((ids[i] << 2) | ops[i]) >>> 0;
      packed[2 * i + 1] = sizes[i];
    }
    packedTraces.set(trace, packed);
  }
  return packed;
}

/**
 * Replays operations [from, to) of a trace; `ptrs` maps object numbers to live pointers (0 = not live).
 * Returns nothing: the caller times it.
 */
export function replay(
  target: TraceTarget,
  trace: Trace,
  ptrs: Uint32Array,
  from = 0,
  to = trace.length,
): void {
  const packed = packedTrace(trace);
  // The operation codes are literals here (OP_MALLOC 0, OP_FREE 1, OP_REALLOC 2): the exported constants would
  // be property loads from this module's exports in the compiled loop.
  for (let i = 2 * from, end = 2 * to; i < end; i += 2) {
    const word = packed[i];
    const id = word >>> 2;
    const op = word & 3;
    if (op === 0) {
      ptrs[id] = target.malloc(packed[i + 1]);
    } else {
      const p = ptrs[id];
      if (op === 1) {
        target.free(p);
        ptrs[id] = 0;
      } else {
        ptrs[id] = target.realloc(p, packed[i + 1]);
      }
    }
  }
}

/** Frees every object still live after a replay. */
export function freeAll(target: TraceTarget, ptrs: Uint32Array): void {
  for (let id = 0; id < ptrs.length; id++) {
    if (ptrs[id] !== 0) {
      target.free(ptrs[id]);
      ptrs[id] = 0;
    }
  }
}
