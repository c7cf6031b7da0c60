/** Reading the class tables of `_debugmallocstats` output (CPython's, or this heap's `debugStats()`). */

const ROW = /^\s+\d+\s+\d+\s+\d+\s+\d+\s+\d+$/;

/**
 * The rows of the first class table (class, size, num pools, blocks in use, avail blocks): CPython's small
 * classes. This heap prints its medium classes in a second table, after a blank line.
 */
export function classRows(text: string): string[] {
  const lines = text.split('\n');
  const start = lines.findIndex((l) => ROW.test(l));
  if (start < 0) return [];
  const end = lines.findIndex((l, i) => i > start && !ROW.test(l));
  return lines.slice(start, end < 0 ? lines.length : end);
}

/** The rows of this heap's medium-class table, which CPython's output does not have ([] when absent). */
export function mediumRows(text: string): string[] {
  const lines = text.split('\n');
  const at = lines.findIndex((l) => l.startsWith('Medium block threshold'));
  if (at < 0) return [];
  return classRows(lines.slice(at).join('\n'));
}
