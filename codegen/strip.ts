/**
 * Strips TypeScript's type syntax from a description file, leaving JavaScript with the same line and column of
 * every token (types become spaces): Node's own `module.stripTypeScriptTypes` where Node has it (22.13, 23.2
 * and later), else the npm package amaro, which is what Node bundles for the same job. No TypeScript compiler
 * is involved, so the `typescript` package a project has installed (5, 6, 7 or none) does not matter.
 *
 * When Node's stripper refuses a file, amaro parses it again for the line, which Node 22's errors do not give.
 *
 * Only erasable syntax is accepted (no `enum`, `namespace` or parameter properties), as with Node's own
 * `--experimental-strip-types`: such files run as written, and lines in errors are the file's own.
 */
import Module from 'node:module';

/** Marks a stripping error from the module hooks so that ./load.ts can say `file:line: problem`. */
export const STRIP_ERROR_PREFIX = '[pymalloc-ts-strip] ';

/** A description that is not valid TypeScript, or uses syntax that cannot be erased; line is 1-based. */
export interface StripFailure {
  readonly message: string;
  readonly line: number | undefined;
  readonly column: number | undefined;
}

type NodeStrip = (code: string, options: { mode: 'strip' }) => string;
interface Amaro {
  transformSync(code: string, options: { mode: 'strip-only'; filename?: string }): { code: string };
}

/** Which stripper this Node uses: 'node' (module.stripTypeScriptTypes) or 'amaro'. */
export function stripperName(): 'node' | 'amaro' {
  return typeof (Module as unknown as { stripTypeScriptTypes?: unknown }).stripTypeScriptTypes === 'function'
    ? 'node'
    : 'amaro';
}

/** Node's stripper, with its one-time ExperimentalWarning (Node 22 and 23) kept off the user's terminal. */
function nodeStrip(source: string): string {
  const strip = (Module as unknown as { stripTypeScriptTypes: NodeStrip }).stripTypeScriptTypes;
  const emit = process.emitWarning;
  process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
    const text = typeof warning === 'string' ? warning : warning.message;
    if (!text.includes('stripTypeScriptTypes'))
      (emit as (...a: unknown[]) => void).call(process, warning, ...rest);
  }) as typeof process.emitWarning;
  try {
    return strip(source, { mode: 'strip' });
  } finally {
    process.emitWarning = emit;
  }
}

/** Where in the file a stripper's error points: amaro's startLine, or the `[file:line:column]` Node prints. */
function failureOf(err: unknown): StripFailure {
  const e = err as { message?: unknown; startLine?: unknown; startColumn?: unknown };
  const raw = typeof e?.message === 'string' ? e.message : String(err);
  if (typeof e?.startLine === 'number') {
    const column = typeof e.startColumn === 'number' ? e.startColumn + 1 : undefined;
    return { message: raw.split('\n')[0] ?? raw, line: e.startLine, column };
  }
  const at = /\[[^\]\n]*?:(\d+):(\d+)\]/.exec(raw);
  // Node's message is a code frame: the first line that is not decoration says what is wrong.
  const first =
    raw
      .split('\n')
      .map((l) => l.replace(/^\s*(?:x|×)\s+/, '').trim())
      .find((l) => l !== '' && !/^[,|`:>-]/.test(l) && !/^\d+\s*\|/.test(l)) ?? raw;
  return {
    message: first,
    line: at ? Number(at[1]) : undefined,
    column: at ? Number(at[2]) : undefined,
  };
}

/**
 * The file's JavaScript, types erased.
 * @throws the file's problem as a StripFailure (plain object: it crosses from the module hooks' thread)
 */
export function stripTypes(source: string, file: string): string {
  const amaroStrip = (): string =>
    (require('amaro') as Amaro).transformSync(source, { mode: 'strip-only', filename: file }).code;
  if (stripperName() === 'amaro') {
    try {
      return amaroStrip();
    } catch (err) {
      throw failureOf(err);
    }
  }
  try {
    return nodeStrip(source);
  } catch (err) {
    const failure = failureOf(err);
    if (failure.line !== undefined) throw failure;
    // Node's errors carry no location (22.x): amaro, the same parser, finds the line.
    try {
      amaroStrip();
    } catch (located) {
      const { line, column } = failureOf(located);
      throw { message: failure.message, line, column } satisfies StripFailure;
    }
    throw failure;
  }
}
