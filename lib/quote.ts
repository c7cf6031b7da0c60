/**
 * Quoting what a user gave us (a trace's line or token, a file name, an option's value) in an error message: at
 * most about 80 characters, and only printable ASCII, so that a message is one line however long or binary the
 * input (a terminal is never fed raw control bytes). Every message of the CLI and of the trace parser that
 * repeats user input goes through `quote` or `escapeInput`; `oneLine` is the CLI's last line of defence for
 * messages made elsewhere.
 */

/** Most characters of an escaped quote (without its quotation marks). */
export const QUOTE_MAX = 80;

/** Where a long input was cut: 'ends' keeps its start and its end (a file name's end matters), 'start' the start. */
export interface QuoteOptions {
  max?: number;
  keep?: 'ends' | 'start';
}

const HEX = '0123456789abcdef';
const MARK = '...';

/** The escaped form of one byte or UTF-16 code unit. */
function escapeUnit(c: number): string {
  if (c >= 0x20 && c < 0x7f) {
    if (c === 0x5c) return '\\\\';
    if (c === 0x27) return "\\'";
    return String.fromCharCode(c);
  }
  if (c === 0x0a) return '\\n';
  if (c === 0x0d) return '\\r';
  if (c === 0x09) return '\\t';
  if (c < 0x100) return `\\x${HEX[c >> 4]}${HEX[c & 15]}`;
  return `\\u${HEX[c >> 12]}${HEX[(c >> 8) & 15]}${HEX[(c >> 4) & 15]}${HEX[c & 15]}`;
}

/**
 * `value` (a string, whose UTF-16 code units are escaped, or bytes) with every byte or unit outside printable
 * ASCII, the backslash and the single quote escaped (`\xNN`, `\uNNNN`, `\n`, `\r`, `\t`, `\\`, `\'`), cut to at
 * most `max` characters with `...` where it was cut. Only the kept ends of a long input are looked at.
 */
export function escapeInput(value: string | Uint8Array, options: QuoteOptions = {}): string {
  const max = Math.max(options.max ?? QUOTE_MAX, 2 * MARK.length);
  const n = value.length;
  const unit = typeof value === 'string' ? (i: number) => value.charCodeAt(i) : (i: number) => value[i]!;
  // The whole input, if it fits.
  let out = '';
  let i = 0;
  for (; i < n; i++) {
    const e = escapeUnit(unit(i));
    if (out.length + e.length > max) break;
    out += e;
  }
  if (i === n) return out;
  // It does not: the start, and (keeping 'ends') the end, around the mark.
  const budget = max - MARK.length;
  const headBudget = options.keep === 'start' ? budget : Math.ceil((budget * 2) / 3);
  let head = '';
  let h = 0;
  for (; h < n; h++) {
    const e = escapeUnit(unit(h));
    if (head.length + e.length > headBudget) break;
    head += e;
  }
  if (options.keep === 'start') return head + MARK;
  let tail = '';
  for (let t = n - 1; t >= h; t--) {
    const e = escapeUnit(unit(t));
    if (head.length + tail.length + e.length > budget) break;
    tail = e + tail;
  }
  return head + MARK + tail;
}

/** `value` escaped and cut as by `escapeInput`, between single quotes. */
export function quote(value: string | Uint8Array, options?: QuoteOptions): string {
  return `'${escapeInput(value, options)}'`;
}

/** Longest message `oneLine` lets through. */
const LINE_MAX = 1000;

/**
 * A message made one printable line: every quoted part (between single quotes) longer than QUOTE_MAX is quoted
 * again through `quote`, every control or non-ASCII character left is escaped, and the whole is cut to 1000
 * characters. Text that went through `quote` is left as it is (it is short, and printable ASCII already).
 */
export function oneLine(message: string): string {
  let s = message.replace(/'([^']*)'/g, (all, inner: string) =>
    inner.length > QUOTE_MAX ? quote(inner) : all,
  );
  s = s.replace(/[^\x20-\x7e]/g, (c) => escapeUnit(c.charCodeAt(0)));
  if (s.length <= LINE_MAX) return s;
  const keep = Math.floor((LINE_MAX - MARK.length) / 2);
  return s.slice(0, keep) + MARK + s.slice(s.length - keep);
}
