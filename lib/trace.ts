/**
 * Allocation traces: one operation per line, `m ID SIZE` (malloc), `f ID` (free), `r ID SIZE` (realloc), where
 * ID is a decimal name of a live object; `#` starts a comment line. Files ending in .gz are read through gunzip.
 * Parsing checks that every line is well formed and that every free or realloc names a live ID, and throws naming
 * the line otherwise. A parsed trace is its packed form (two 32-bit words per operation, see `packedTrace`), so
 * that replaying it allocates nothing.
 *
 * Files are streamed: `loadTrace` reads them (and gunzips them) chunk by chunk into a `TraceParser`, which keeps
 * the operations packed and nothing else of the text, so that the memory a load takes beyond the packed
 * operations is bounded by the ID table (a few bytes per distinct ID) and one line: a decompression bomb of
 * zeros or of one endless line stops at MAX_TRACE_LINE, in constant memory. Every limit is a constant below and
 * its error (TraceLimitError) names it; docs/traces.md describes them.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { totalmem } from 'node:os';
import { pipeline } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { escapeInput, QUOTE_MAX, quote } from './quote';
import { IdTable } from './trace-ids';

export const OP_MALLOC = 0;
export const OP_FREE = 1;
export const OP_REALLOC = 2;

/**
 * Most operations a trace can have: 8 GiB packed (the typed arrays would allow 2^31, twice the memory). A trace
 * this long can name at most MAX_TRACE_OBJECTS objects, as many as a replay can number. By default a load also
 * keeps to `traceOperationBudget()`, which is lower on a machine with less than 32 GiB of memory.
 */
export const MAX_TRACE_OPERATIONS = 2 ** 30;
/** Bytes an operation takes packed. */
export const TRACE_BYTES_PER_OPERATION = 8;
/** Most objects (distinct IDs) a trace can have: an object number and its 2-bit operation share a 32-bit word. */
export const MAX_TRACE_OBJECTS = 2 ** 30;
/** Longest line, in bytes (its CR included, its LF not): an operation takes at most about 50, comments more. */
export const MAX_TRACE_LINE = 4096;
/** Most distinct IDs above 2^53 - 1, which are kept by their digits (no recorder writes such IDs). */
export const MAX_TRACE_BIG_IDS = 2 ** 16;
/**
 * Most bytes a trace can hold live at once and still replay: a heap's reservation is at most 4 GiB (and its own
 * metadata takes some of it). A replay checks it before it starts; pymalloc replay and tune report it in a line.
 */
export const MAX_TRACE_LIVE_BYTES = 2 ** 32;

/**
 * The default limit on operations: MAX_TRACE_OPERATIONS, or as many as fill a quarter of this machine's memory
 * packed, if fewer (the load's final copy into one array needs as much again, and the replay its own memory).
 */
export function traceOperationBudget(): number {
  return Math.max(1, Math.min(MAX_TRACE_OPERATIONS, Math.floor(totalmem() / 4 / TRACE_BYTES_PER_OPERATION)));
}

/** Limits other than the defaults (each at most its constant), for a loader that wants to refuse more or less. */
export interface TraceLimits {
  /** @defaultValue traceOperationBudget() */
  operations?: number;
  /** @defaultValue MAX_TRACE_OBJECTS */
  objects?: number;
  /** @defaultValue MAX_TRACE_LINE */
  line?: number;
  /** @defaultValue MAX_TRACE_BIG_IDS */
  bigIds?: number;
}

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
    super(`${escapeInput(name)}:${line}: ${message}`);
    this.name = 'TraceError';
    this.line = line;
    (this as this & { code: string }).code = 'ERR_PYMALLOC_TRACE';
  }
}

/** Which limit a TraceLimitError is about: one of the constants, or the memory of the machine. */
export type TraceLimitName =
  | 'MAX_TRACE_OPERATIONS'
  | 'MAX_TRACE_OBJECTS'
  | 'MAX_TRACE_LINE'
  | 'MAX_TRACE_BIG_IDS'
  | 'memory';

/** A trace beyond a limit (code ERR_PYMALLOC_TRACE_LIMIT); the message names the limit. */
export class TraceLimitError extends TraceError {
  readonly limit: TraceLimitName;
  constructor(name: string, line: number, limit: TraceLimitName, message: string) {
    super(name, line, message);
    this.name = 'TraceLimitError';
    this.limit = limit;
    (this as this & { code: string }).code = 'ERR_PYMALLOC_TRACE_LIMIT';
  }
}

/** Reports loading progress: `done` of `total` bytes (of the file as stored, for loadTrace). */
export type TraceProgress = (done: number, total: number) => void;

/** Bytes read from a file at a time, and gunzip's output chunks. */
const READ_CHUNK = 1 << 17;

/**
 * Reads a trace file (gzip-compressed if its name ends in .gz), streaming it through a TraceParser. Rejects with
 * the file's error (ENOENT, EISDIR, …), zlib's (Z_DATA_ERROR, Z_BUF_ERROR), a TraceError naming a bad line or a
 * TraceLimitError naming a limit. Progress is in bytes of the file as stored (for a regular file).
 */
export async function loadTrace(
  path: string,
  onProgress?: TraceProgress,
  limits?: TraceLimits,
): Promise<Trace> {
  const parser = new TraceParser(path, limits);
  let total = 0;
  try {
    const st = await stat(path);
    if (st.isFile()) total = st.size;
  } catch {
    // Opening the file below reports what is wrong with it.
  }
  const file = createReadStream(path, { highWaterMark: READ_CHUNK });
  const source = path.endsWith('.gz')
    ? pipeline(file, createGunzip({ chunkSize: READ_CHUNK }), () => {
        // Errors reach the loop below through the gunzip stream.
      })
    : file;
  try {
    for await (const chunk of source) {
      parser.push(chunk as Buffer);
      if (onProgress !== undefined && total > 0) onProgress(Math.min(file.bytesRead, total), total);
    }
  } finally {
    source.destroy();
    file.destroy();
  }
  const trace = parser.end();
  onProgress?.(total, total);
  return trace;
}

/**
 * Parses trace text (a string, or its bytes); throws TraceError naming the first malformed line, or
 * TraceLimitError. The same parser as loadTrace's, fed the input in slices.
 */
export function parseTrace(
  input: string | Uint8Array,
  name = '<trace>',
  onProgress?: TraceProgress,
  limits?: TraceLimits,
): Trace {
  const b = typeof input === 'string' ? Buffer.from(input, 'latin1') : input;
  const parser = new TraceParser(name, limits);
  const len = b.length;
  for (let at = 0; at < len; at += READ_CHUNK / 2) {
    const to = Math.min(len, at + READ_CHUNK / 2);
    parser.push(b.subarray(at, to));
    onProgress?.(to, len);
  }
  const trace = parser.end();
  onProgress?.(len, len);
  return trace;
}

const MAX_SIZE = 2 ** 32 - 1;
const SPACE = 32;
const TAB = 9;
const CR = 13;
const LF = 10;
const HASH = 35;
const ZERO = 48;
const NINE = 57;
const M = 109;
const F = 102;
const R = 114;

function isBlank(c: number): boolean {
  return c === SPACE || c === TAB || c === CR;
}

/** Words of the first output chunk; chunks double up to OUT_CHUNK_MAX. */
const OUT_CHUNK_MIN = 1 << 11;
const OUT_CHUNK_MAX = 1 << 20;

function checkLimit(limits: TraceLimits | undefined, key: keyof TraceLimits, max: number, min = 1): number {
  const v = limits?.[key];
  if (v === undefined) return max;
  if (!Number.isSafeInteger(v) || v < min || v > max) {
    throw Object.assign(
      new RangeError(`trace limit ${key} must be an integer from ${min} to ${max}, got ${v}`),
      {
        code: 'ERR_OUT_OF_RANGE',
      },
    );
  }
  return v;
}

/**
 * An incremental trace parser: `push` it the text in chunks of any size (a line may straddle chunks), then
 * `end` it for the Trace. It keeps the operations packed (two words each, in chunks copied once into one array
 * at the end), the ID table, one bit of liveness per object and at most one partial line (MAX_TRACE_LINE bytes):
 * nothing else of the text. Canonical lines (`m 12 345`, single spaces, LF or CRLF) take a fast path; every other
 * line, and every error, goes through the general one.
 */
export class TraceParser {
  readonly name: string;
  private readonly maxOps: number;
  /** Why maxOps is what it is, for its error. */
  private readonly opsLimit: string;
  private readonly maxObjects: number;
  private readonly maxLine: number;
  private readonly maxBigIds: number;
  /** Lines done. */
  private lineNo = 0;
  /** Operations. */
  private n = 0;
  /** Distinct IDs (dense numbers given). */
  private objects = 0;
  private readonly ids = new IdTable();
  /** Dense numbers of IDs above 2^53 - 1, by their digits without leading zeros. */
  private readonly bigIds = new Map<string, number>();
  /** 1 for a live object, by dense number. */
  private live = new Uint8Array(1024);
  /** Full output chunks, and the one being filled. */
  private readonly chunks: Uint32Array[] = [];
  private out = new Uint32Array(OUT_CHUNK_MIN);
  private outAt = 0;
  /** The start of a line that a chunk ended in the middle of. */
  private carry = new Uint8Array(0);
  private carryLen = 0;
  private ended = false;
  // Token boundaries of the current line in the general path: up to 4 tokens (one more than any operation takes).
  private readonly tokStart = [0, 0, 0, 0];
  private readonly tokEnd = [0, 0, 0, 0];

  constructor(name = '<trace>', limits?: TraceLimits) {
    this.name = name;
    if (limits?.operations !== undefined) {
      this.maxOps = checkLimit(limits, 'operations', MAX_TRACE_OPERATIONS);
      this.opsLimit = 'the limit MAX_TRACE_OPERATIONS';
    } else {
      this.maxOps = traceOperationBudget();
      this.opsLimit =
        this.maxOps === MAX_TRACE_OPERATIONS
          ? 'the limit MAX_TRACE_OPERATIONS'
          : `the limit for this machine's memory (a quarter of it at ${TRACE_BYTES_PER_OPERATION} bytes an ` +
            `operation; MAX_TRACE_OPERATIONS is ${MAX_TRACE_OPERATIONS})`;
    }
    this.maxObjects = checkLimit(limits, 'objects', MAX_TRACE_OBJECTS);
    this.maxLine = checkLimit(limits, 'line', MAX_TRACE_LINE);
    this.maxBigIds = checkLimit(limits, 'bigIds', MAX_TRACE_BIG_IDS, 0);
  }

  /** Operations parsed so far. */
  get length(): number {
    return this.n;
  }

  /** Parses the complete lines of `b` (with the partial line carried from before), carrying its last partial line. */
  push(b: Uint8Array): void {
    if (this.ended) throw new Error('TraceParser: push after end');
    try {
      this.pushChunk(b);
    } catch (err) {
      throw this.memoryError(err);
    }
  }

  /** The trace: the last line (if it has no newline) parsed, the packed operations in one array. */
  end(): Trace {
    if (this.ended) throw new Error('TraceParser: end called twice');
    try {
      if (this.carryLen > 0) {
        const len = this.carryLen;
        this.carryLen = 0;
        this.lineNo++;
        this.line(this.carry, 0, len);
      }
      this.ended = true;
      const packed = new Uint32Array(2 * this.n);
      let at = 0;
      for (const c of this.chunks) {
        packed.set(c, at);
        at += c.length;
      }
      packed.set(this.out.subarray(0, this.outAt), at);
      this.chunks.length = 0;
      this.out = new Uint32Array(0);
      return new PackedTrace(this.name, this.n, this.objects, packed);
    } catch (err) {
      throw this.memoryError(err);
    }
  }

  /** A failed allocation of the parser's arrays as a TraceLimitError; anything else as it is. */
  private memoryError(err: unknown): unknown {
    if (
      err instanceof RangeError &&
      /allocation failed|Invalid typed array length|Array buffer/i.test(err.message)
    ) {
      return new TraceLimitError(
        this.name,
        this.lineNo + 1,
        'memory',
        `out of memory holding ${this.n} operations of ${this.objects} objects (${err.message})`,
      );
    }
    return err;
  }

  /** The error for a line longer than the limit, quoting its start, b[start, end). */
  private lineTooLong(b: Uint8Array, start: number, end: number): TraceLimitError {
    const head = b.subarray(start, Math.min(end, start + 2 * QUOTE_MAX));
    return new TraceLimitError(
      this.name,
      this.lineNo + 1,
      'MAX_TRACE_LINE',
      `line longer than ${this.maxLine} bytes, the limit MAX_TRACE_LINE: ${quote(head, { keep: 'start' })}`,
    );
  }

  /** Appends b[start, end) to the carried partial line. */
  private appendCarry(b: Uint8Array, start: number, end: number): void {
    const need = this.carryLen + (end - start);
    if (need > this.maxLine) {
      // The line is too long: quote its start (in the carry, or in b when the carry is empty).
      if (this.carryLen === 0) throw this.lineTooLong(b, start, end);
      const head = new Uint8Array(Math.min(need, 2 * QUOTE_MAX));
      head.set(this.carry.subarray(0, Math.min(this.carryLen, head.length)));
      if (this.carryLen < head.length)
        head.set(b.subarray(start, start + head.length - this.carryLen), this.carryLen);
      throw this.lineTooLong(head, 0, head.length);
    }
    if (need > this.carry.length) {
      const grown = new Uint8Array(Math.min(this.maxLine, Math.max(256, 2 * need)));
      grown.set(this.carry.subarray(0, this.carryLen));
      this.carry = grown;
    }
    this.carry.set(b.subarray(start, end), this.carryLen);
    this.carryLen = need;
  }

  private pushChunk(b: Uint8Array): void {
    const len = b.length;
    let pos = 0;
    if (this.carryLen > 0) {
      const j = b.indexOf(LF);
      if (j < 0) {
        this.appendCarry(b, 0, len);
        return;
      }
      this.appendCarry(b, 0, j);
      const lineLen = this.carryLen;
      this.carryLen = 0;
      this.lineNo++;
      this.line(this.carry, 0, lineLen);
      pos = j + 1;
    }
    const maxLine = this.maxLine;
    while (pos < len) {
      const next = this.fastLine(b, pos, len);
      if (next >= 0) {
        pos = next;
        continue;
      }
      // The general path: any line, whole in b, or the start of one that the next chunk ends.
      const j = b.indexOf(LF, pos);
      if (j < 0) {
        this.appendCarry(b, pos, len);
        return;
      }
      if (j - pos > maxLine) throw this.lineTooLong(b, pos, j);
      this.lineNo++;
      this.line(b, pos, j);
      pos = j + 1;
    }
  }

  /**
   * The fast path: a canonical, valid operation at b[pos] (`m 12 345`, single spaces, at most 15 digits of ID,
   * LF or CRLF, whole in b) is recorded and the position after it returned; for anything else, -1 and nothing
   * changed, for the general path to parse (or to report).
   */
  private fastLine(b: Uint8Array, pos: number, len: number): number {
    const c = b[pos];
    if ((c !== M && c !== F && c !== R) || pos + 3 >= len || b[pos + 1] !== SPACE) return -1;
    let i = pos + 2;
    const idStart = i;
    let key = 0;
    for (; i < len; i++) {
      const d = b[i] - ZERO;
      if (d < 0 || d > 9) break;
      key = key * 10 + d;
    }
    // At most 15 digits: below 2^53, exactly.
    if (i === idStart || i - idStart > 15 || i === len) return -1;
    let size = 0;
    if (c !== F) {
      if (b[i] !== SPACE) return -1;
      const sizeStart = ++i;
      for (; i < len; i++) {
        const d = b[i] - ZERO;
        if (d < 0 || d > 9) break;
        size = size * 10 + d;
      }
      if (i === sizeStart || i - sizeStart > 10 || size > MAX_SIZE || i === len) return -1;
    }
    if (b[i] === CR && ++i === len) return -1;
    if (b[i] !== LF || i - pos > this.maxLine || this.n >= this.maxOps) return -1;
    const ids = this.ids;
    let dense = ids.get(key);
    let code: number;
    if (c === M) {
      if (dense < 0) {
        if (this.objects >= this.maxObjects) return -1;
        dense = ids.add(key, this.objects++);
        if (dense >= this.live.length) this.growLive();
      } else if (this.live[dense] !== 0) return -1;
      this.live[dense] = 1;
      code = OP_MALLOC;
    } else {
      if (dense < 0 || this.live[dense] === 0) return -1;
      if (c === F) {
        this.live[dense] = 0;
        code = OP_FREE;
      } else code = OP_REALLOC;
    }
    this.record(dense, code, size);
    this.lineNo++;
    return i + 1;
  }

  private growLive(): void {
    const l = new Uint8Array(this.live.length * 2);
    l.set(this.live);
    this.live = l;
  }

  private record(dense: number, code: number, size: number): void {
    let at = this.outAt;
    if (at === this.out.length) {
      this.chunks.push(this.out);
      this.out = new Uint32Array(Math.min(OUT_CHUNK_MAX, 2 * this.out.length));
      at = 0;
    }
    const out = this.out;
    out[at] = (dense << 2) | code;
    out[at + 1] = size;
    this.outAt = at + 2;
    this.n++;
  }

  /** The general path: parses line b[start, end) (its LF excluded), numbered this.lineNo. */
  private line(b: Uint8Array, start: number, end: number): void {
    let i = start;
    while (i < end && isBlank(b[i])) i++;
    // A blank line or a comment: nothing more to read.
    if (i === end || b[i] === HASH) return;
    const tokStart = this.tokStart;
    const tokEnd = this.tokEnd;
    let ntok = 0;
    while (i < end) {
      while (i < end && isBlank(b[i])) i++;
      if (i === end) break;
      const t0 = i;
      while (i < end && !isBlank(b[i])) i++;
      if (ntok < 4) {
        tokStart[ntok] = t0;
        tokEnd[ntok] = i;
      }
      ntok++;
    }
    const name = this.name;
    const lineNo = this.lineNo;
    const token = (k: number) => b.subarray(tokStart[k], tokEnd[k]);
    const lineText = () => quote(b.subarray(tokStart[0], tokEnd[Math.min(ntok, 4) - 1]));
    const c = tokEnd[0] - tokStart[0] === 1 ? b[tokStart[0]] : 0;
    const code = c === M ? OP_MALLOC : c === F ? OP_FREE : c === R ? OP_REALLOC : -1;
    if (code < 0)
      throw new TraceError(name, lineNo, `unknown operation ${quote(token(0))} (expected m, f or r)`);
    const want = code === OP_FREE ? 2 : 3;
    if (ntok < want) {
      throw new TraceError(
        name,
        lineNo,
        `${quote(token(0))} needs ${want === 2 ? 'an ID' : 'an ID and a size'}: ${lineText()}`,
      );
    }
    if (ntok > want) throw new TraceError(name, lineNo, `too many fields: ${lineText()}`);
    const idValue = decimal(b, tokStart[1], tokEnd[1]);
    if (idValue < 0)
      throw new TraceError(name, lineNo, `ID must be a decimal number, got ${quote(token(1))}`);
    let size = 0;
    if (code !== OP_FREE) {
      size = decimal(b, tokStart[2], tokEnd[2]);
      if (size < 0 || size > MAX_SIZE) {
        throw new TraceError(
          name,
          lineNo,
          `size must be a decimal number below 2^32, got ${quote(token(2))}`,
        );
      }
    }
    if (this.n >= this.maxOps) {
      throw new TraceLimitError(
        name,
        lineNo,
        'MAX_TRACE_OPERATIONS',
        `more than ${this.maxOps} operations, ${this.opsLimit}`,
      );
    }
    // IDs up to 2^53 - 1 by value, larger ones by their digits (without leading zeros: 007 is 7).
    let bigKey: string | undefined;
    if (idValue > Number.MAX_SAFE_INTEGER) {
      let z = tokStart[1];
      while (b[z] === ZERO) z++;
      bigKey = Buffer.from(b.buffer, b.byteOffset + z, tokEnd[1] - z).toString('latin1');
    }
    let dense = bigKey === undefined ? this.ids.get(idValue) : (this.bigIds.get(bigKey) ?? -1);
    const idText = () => escapeInput(token(1));
    if (code === OP_MALLOC) {
      if (dense >= 0 && this.live[dense] !== 0)
        throw new TraceError(name, lineNo, `malloc of ID ${idText()}, which is already live`);
      if (dense < 0) {
        if (this.objects >= this.maxObjects) {
          throw new TraceLimitError(
            name,
            lineNo,
            'MAX_TRACE_OBJECTS',
            `more than ${this.maxObjects} distinct IDs, the limit MAX_TRACE_OBJECTS`,
          );
        }
        if (bigKey === undefined) dense = this.ids.add(idValue, this.objects++);
        else {
          if (this.bigIds.size >= this.maxBigIds) {
            throw new TraceLimitError(
              name,
              lineNo,
              'MAX_TRACE_BIG_IDS',
              `more than ${this.maxBigIds} distinct IDs above 2^53 - 1, the limit MAX_TRACE_BIG_IDS`,
            );
          }
          dense = this.objects++;
          this.bigIds.set(bigKey, dense);
        }
        if (dense >= this.live.length) this.growLive();
      }
      this.live[dense] = 1;
    } else {
      if (dense < 0 || this.live[dense] === 0) {
        throw new TraceError(
          name,
          lineNo,
          `${code === OP_FREE ? 'free' : 'realloc'} of ID ${idText()}, which is not live`,
        );
      }
      if (code === OP_FREE) this.live[dense] = 0;
    }
    this.record(dense, code, size);
  }
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

/**
 * A parsed trace: its packed form, made by the parser and registered for packedTrace; `ops`, `ids` and `sizes`
 * are unpacked from it on first use (a replay never uses them).
 */
class PackedTrace implements Trace {
  readonly name: string;
  readonly length: number;
  readonly objects: number;
  #ops?: Uint8Array;
  #ids?: Uint32Array;
  #sizes?: Uint32Array;

  constructor(name: string, length: number, objects: number, packed: Uint32Array) {
    this.name = name;
    this.length = length;
    this.objects = objects;
    packedTraces.set(this, packed);
  }

  get ops(): Uint8Array {
    this.#ops ??= this.#unpack(new Uint8Array(this.length), 0, 3, 0);
    return this.#ops;
  }

  get ids(): Uint32Array {
    this.#ids ??= this.#unpack(new Uint32Array(this.length), 0, 0xffffffff, 2);
    return this.#ids;
  }

  get sizes(): Uint32Array {
    this.#sizes ??= this.#unpack(new Uint32Array(this.length), 1, 0xffffffff, 0);
    return this.#sizes;
  }

  /** Fills `out` with word `word` (0 or 1) of each packed operation, masked by `mask` after `>>> shift`. */
  #unpack<A extends Uint8Array | Uint32Array>(out: A, word: number, mask: number, shift: number): A {
    const packed = packedTrace(this);
    for (let i = 0; i < out.length; i++) out[i] = ((packed[2 * i + word]! >>> shift) & mask) >>> 0;
    return out;
  }
}

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
 * The most bytes (as requested, before any rounding) a trace holds live at once. A trace above
 * MAX_TRACE_LIVE_BYTES can never replay through a heap.
 */
export function traceLiveBytesPeak(trace: Trace): number {
  const packed = packedTrace(trace);
  const sizes = new Uint32Array(trace.objects);
  let live = 0;
  let peak = 0;
  for (let i = 0, end = 2 * trace.length; i < end; i += 2) {
    const word = packed[i];
    const id = word >>> 2;
    if ((word & 3) === OP_FREE) {
      live -= sizes[id];
      sizes[id] = 0;
    } else {
      const size = packed[i + 1];
      live += size - sizes[id];
      sizes[id] = size;
      if (live > peak) peak = live;
    }
  }
  return peak;
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
