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

/** Reads a trace file (gzip-compressed if its name ends in .gz). */
export function loadTrace(path: string): Trace {
  let data: Buffer = readFileSync(path);
  if (path.endsWith('.gz')) data = gunzipSync(data);
  return parseTrace(data.toString('latin1'), path);
}

const MAX_SIZE = 2 ** 32 - 1;

/** Parses trace text; throws TraceError naming the first malformed line. */
export function parseTrace(text: string, name = '<trace>'): Trace {
  let capacity = 1024;
  let ops = new Uint8Array(capacity);
  let ids = new Uint32Array(capacity);
  let sizes = new Uint32Array(capacity);
  const dense = new Map<string, number>();
  const live = new Set<number>();
  let n = 0;
  let lineNo = 0;
  let pos = 0;
  while (pos < text.length) {
    let end = text.indexOf('\n', pos);
    if (end < 0) end = text.length;
    const line = text.slice(pos, end).trim();
    pos = end + 1;
    lineNo++;
    if (line === '' || line.startsWith('#')) continue;
    const fields = line.split(/\s+/);
    const op = fields[0];
    const code = op === 'm' ? OP_MALLOC : op === 'f' ? OP_FREE : op === 'r' ? OP_REALLOC : -1;
    if (code < 0) throw new TraceError(name, lineNo, `unknown operation '${op}' (expected m, f or r)`);
    const want = code === OP_FREE ? 2 : 3;
    if (fields.length < want) {
      throw new TraceError(
        name,
        lineNo,
        `'${op}' needs ${want === 2 ? 'an ID' : 'an ID and a size'}: '${line}'`,
      );
    }
    if (fields.length > want) throw new TraceError(name, lineNo, `too many fields: '${line}'`);
    const idText = fields[1];
    if (!/^\d+$/.test(idText))
      throw new TraceError(name, lineNo, `ID must be a decimal number, got '${idText}'`);
    let size = 0;
    if (code !== OP_FREE) {
      const sizeText = fields[2];
      if (!/^\d+$/.test(sizeText) || Number(sizeText) > MAX_SIZE) {
        throw new TraceError(name, lineNo, `size must be a decimal number below 2^32, got '${sizeText}'`);
      }
      size = Number(sizeText);
    }
    let id = dense.get(idText);
    if (code === OP_MALLOC) {
      if (id !== undefined && live.has(id))
        throw new TraceError(name, lineNo, `malloc of ID ${idText}, which is already live`);
      if (id === undefined) {
        id = dense.size;
        dense.set(idText, id);
      }
      live.add(id);
    } else {
      if (id === undefined || !live.has(id)) {
        throw new TraceError(
          name,
          lineNo,
          `${code === OP_FREE ? 'free' : 'realloc'} of ID ${idText}, which is not live`,
        );
      }
      if (code === OP_FREE) live.delete(id);
    }
    if (n === capacity) {
      capacity *= 2;
      const o = new Uint8Array(capacity);
      o.set(ops);
      ops = o;
      const i = new Uint32Array(capacity);
      i.set(ids);
      ids = i;
      const s = new Uint32Array(capacity);
      s.set(sizes);
      sizes = s;
    }
    ops[n] = code;
    ids[n] = id;
    sizes[n] = size;
    n++;
  }
  return {
    name,
    length: n,
    ops: ops.subarray(0, n),
    ids: ids.subarray(0, n),
    sizes: sizes.subarray(0, n),
    objects: dense.size,
  };
}

/** The allocator interface a replay drives. */
export interface TraceTarget {
  malloc(n: number): number;
  free(p: number): void;
  realloc(p: number, n: number): number;
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
  const { ops, ids, sizes } = trace;
  for (let i = from; i < to; i++) {
    const op = ops[i];
    const id = ids[i];
    if (op === OP_MALLOC) ptrs[id] = target.malloc(sizes[i]);
    else if (op === OP_FREE) {
      target.free(ptrs[id]);
      ptrs[id] = 0;
    } else ptrs[id] = target.realloc(ptrs[id], sizes[i]);
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
