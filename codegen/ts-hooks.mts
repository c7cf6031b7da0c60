/**
 * Module hooks (registered by ./load.ts through `module.register`) that let a TypeScript description file be
 * imported as it is: `.ts` and `.mts` as ES modules, `.cts` as CommonJS, types erased by ./strip.ts. Relative
 * imports between description files may name the `.ts` file, its `.js` twin (TypeScript's convention) or no
 * extension at all; `pymalloc` and `pymalloc/codegen` resolve to this package when the file's own directory
 * has no copy installed (a global or npx install of the CLI).
 *
 * The hooks run on Node's loader thread; they only touch URLs of TypeScript files and pass everything else on.
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { STRIP_ERROR_PREFIX, type StripFailure, stripTypes } from './strip.js';

const TS_FILE = /\.(?:ts|mts|cts)$/;
/** This package's package.json: a parent from which `pymalloc/...` resolves by self-reference. */
const SELF = new URL('../../package.json', import.meta.url).href;

interface ResolveContext {
  parentURL?: string | undefined;
  conditions?: string[];
  importAttributes?: Record<string, string>;
}
interface ResolveResult {
  url: string;
  format?: string | null | undefined;
  shortCircuit?: boolean;
}
type NextResolve = (specifier: string, context?: ResolveContext) => Promise<ResolveResult>;
interface LoadResult {
  format: string | null | undefined;
  source?: string | ArrayBuffer | Uint8Array | null;
  shortCircuit?: boolean;
}
type NextLoad = (url: string, context?: { format?: string | null }) => Promise<LoadResult>;

function isTsUrl(url: string | undefined): boolean {
  return url?.startsWith('file:') === true && TS_FILE.test(new URL(url).pathname);
}

/** What a relative specifier may mean in a TypeScript file, in the order tried. */
function tsCandidates(specifier: string): string[] {
  if (specifier.endsWith('.js')) return [`${specifier.slice(0, -3)}.ts`];
  if (specifier.endsWith('.mjs')) return [`${specifier.slice(0, -4)}.mts`];
  if (specifier.endsWith('.cjs')) return [`${specifier.slice(0, -4)}.cts`];
  return [`${specifier}.ts`, `${specifier}/index.ts`, `${specifier}.mts`, `${specifier}.cts`];
}

export async function resolve(
  specifier: string,
  context: ResolveContext,
  nextResolve: NextResolve,
): Promise<ResolveResult> {
  try {
    return await nextResolve(specifier, context);
  } catch (err) {
    if (!isTsUrl(context.parentURL)) throw err;
    if (specifier.startsWith('./') || specifier.startsWith('../')) {
      for (const candidate of tsCandidates(specifier)) {
        try {
          return await nextResolve(candidate, context);
        } catch {
          // not this one
        }
      }
    } else if (specifier === 'pymalloc' || specifier.startsWith('pymalloc/')) {
      return nextResolve(specifier, { ...context, parentURL: SELF });
    }
    throw err;
  }
}

export async function load(url: string, context: { format?: string | null }, nextLoad: NextLoad) {
  if (!isTsUrl(url)) return nextLoad(url, context);
  const file = fileURLToPath(url);
  const source = await readFile(file, 'utf8');
  let code: string;
  try {
    code = stripTypes(source, file);
  } catch (failure) {
    const f = failure as StripFailure;
    // Only the message is sure to survive the trip to the main thread.
    throw new SyntaxError(
      STRIP_ERROR_PREFIX + JSON.stringify({ file, line: f.line, column: f.column, message: f.message }),
    );
  }
  return { format: url.endsWith('.cts') ? 'commonjs' : 'module', source: code, shortCircuit: true };
}
