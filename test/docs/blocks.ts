/**
 * The code blocks of the user documentation (README.md and docs/*.md), and which of them run. The convention,
 * shared by every document:
 *
 * - fenced blocks tagged `js`, `ts`, `mjs` or `sh` run, in order, one temporary directory per document;
 * - `c compile` blocks are compiled with cc;
 * - any other tag (`text`, `console`, `json`, `c`, …) or `no-run` after the language (```` ```ts no-run ````)
 *   does not run;
 * - `file=NAME` writes the block into the document's directory under NAME first (a description that a later
 *   `sh` block compiles, a Python script it records), and it still runs if its language runs;
 * - `needs=python3-dev` marks a block that can run only where libpython is installed (`pymalloc record`);
 * - a `text output` block right after a running block lists lines its output must contain, in order; `…` in a
 *   line stands for any text (a time, a count that varies).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface Block {
  /** The document, relative to the repository. */
  readonly doc: string;
  /** Line of the opening fence (1-based). */
  readonly line: number;
  readonly lang: string;
  /** The words after the language in the fence's info string. */
  readonly attrs: readonly string[];
  readonly code: string;
  /** `file=NAME`, if any. */
  readonly file: string | undefined;
  /** `needs=…`, if any. */
  readonly needs: string | undefined;
  /** For a running block: the `text output` block that follows it, if any. */
  output?: string;
}

export const RUNS = new Set(['js', 'ts', 'mjs', 'sh']);

/** Whether the block runs (or, for `c compile`, is compiled). */
export function runs(b: Block): boolean {
  if (b.attrs.includes('no-run')) return false;
  return RUNS.has(b.lang) || (b.lang === 'c' && b.attrs.includes('compile'));
}

/** README.md and every docs/*.md, relative to the repository root. */
export function documents(root: string): string[] {
  const docs = fs
    .readdirSync(path.join(root, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .sort()
    .map((f) => `docs/${f}`);
  return ['README.md', ...docs];
}

/** The fenced code blocks of one document, in order. Throws for a fence that is never closed. */
export function parseBlocks(root: string, doc: string): Block[] {
  const lines = fs.readFileSync(path.join(root, doc), 'utf8').split('\n');
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,}|~{3,})\s*(.*)$/.exec(lines[i]!);
    if (!open) continue;
    const [, indent, fence, info] = open as unknown as [string, string, string, string];
    const words = info.trim().split(/\s+/).filter(Boolean);
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length; j++) {
      const l = lines[j]!;
      if (l.trim().startsWith(fence) && l.trim().replace(/[`~]/g, '') === '') break;
      body.push(l.startsWith(indent) ? l.slice(indent.length) : l);
    }
    if (j >= lines.length) throw new Error(`${doc}:${i + 1}: a code fence that is never closed`);
    const attrs = words.slice(1);
    const value = (key: string) => attrs.find((a) => a.startsWith(`${key}=`))?.slice(key.length + 1);
    blocks.push({
      doc,
      line: i + 1,
      lang: words[0] ?? '',
      attrs,
      code: `${body.join('\n')}\n`,
      file: value('file'),
      needs: value('needs'),
    });
    i = j;
  }
  // A `text output` block belongs to the running block just before it.
  for (let k = 1; k < blocks.length; k++) {
    const b = blocks[k]!;
    if (b.lang === 'text' && b.attrs.includes('output')) {
      const prev = blocks[k - 1]!;
      if (!runs(prev))
        throw new Error(`${doc}:${b.line}: a 'text output' block must follow a block that runs`);
      prev.output = b.code;
    }
  }
  return blocks;
}

/**
 * Checks that `actual` contains the lines of `expected` in order (other lines may come between); in an expected
 * line, `…` stands for any text. Returns undefined, or what is missing.
 */
export function missingOutput(expected: string, actual: string): string | undefined {
  const want = expected.split('\n').filter((l) => l.trim() !== '');
  const have = actual.split('\n');
  let at = 0;
  for (const line of want) {
    const re = new RegExp(
      `^${line
        .trimEnd()
        .split('…')
        .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
        .join('.*?')}\\s*$`,
    );
    while (at < have.length && !re.test(have[at]!)) at++;
    if (at >= have.length) return `no line matching ${JSON.stringify(line)} (in order) in the output`;
    at++;
  }
  return undefined;
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
export function anchorOf(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}
