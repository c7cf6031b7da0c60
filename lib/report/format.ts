/** Small text-formatting helpers for the CLI's reports: sizes, tables, and paragraphs wrapped to 80 columns. */

const MiB = 2 ** 20;

/** Bytes as MiB with one decimal, e.g. "12.5 MiB". */
export function mib(bytes: number): string {
  return `${(bytes / MiB).toFixed(1)} MiB`;
}

/** Bytes as B, KiB or MiB, whichever reads better; exact multiples print without decimals ("16 KiB"). */
export function human(bytes: number): string {
  const sign = bytes < 0 ? '-' : '';
  const b = Math.abs(bytes);
  if (b < 1024) return `${sign}${b} B`;
  if (b < MiB) return b % 1024 === 0 ? `${sign}${b / 1024} KiB` : `${sign}${(b / 1024).toFixed(1)} KiB`;
  return b % MiB === 0 ? `${sign}${b / MiB} MiB` : `${sign}${(b / MiB).toFixed(1)} MiB`;
}

/** A plain-text table: the first column left-aligned, the others right-aligned. */
export function textTable(
  header: readonly string[],
  rows: ReadonlyArray<readonly string[]>,
  gap = 2,
): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i])))
      .join(' '.repeat(gap))
      .trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

/** A GitHub-flavoured markdown table; `right[i]` right-aligns column i. */
export function markdownTable(
  header: readonly string[],
  rows: ReadonlyArray<readonly string[]>,
  right: readonly boolean[] = header.map((_, i) => i > 0),
): string {
  const sep = header.map((_, i) => (right[i] ? '---:' : '---'));
  return [header, sep, ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
}

/**
 * Word-wraps a paragraph to `width` columns, indenting every line after the first by `indent` spaces. A word
 * longer than a line stays whole on a line of its own, and so does a number with its unit ("16 KiB").
 */
export function wrap(paragraph: string, width = 80, indent = 2): string[] {
  const lines: string[] = [];
  const pad = ' '.repeat(indent);
  let line = '';
  for (const word of paragraph.split(/ (?!(?:B|KiB|MiB|GiB|ns\/op|%)\b)/)) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = `${pad}${word}`;
    } else line = line === '' ? word : `${line} ${word}`;
  }
  if (line !== '') lines.push(line);
  return lines;
}
