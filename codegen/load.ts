/**
 * Loads a description file: `.json` (codegen/SCHEMA.md), `.js`/`.cjs`/`.mjs` (loaded as is), or TypeScript:
 * `.ts` and `.mts` are imported as ES modules through the module hooks in ./ts-hooks.mts, and `.cts` is
 * required as CommonJS here, their types erased by ./strip.ts (Node's own type stripping, or amaro on
 * Node 20). No TypeScript compiler
 * is used, so whichever `typescript` a project has installed (5, 6, 7 or none) makes no difference.
 *
 * A module's declarations are its default export when that is an array, otherwise every exported struct,
 * union, typedef, enum and opaque value in export order. Types they reference are included automatically.
 * A file that does not parse, or throws while it runs, is a LayoutError naming the file and line.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import Module from 'node:module';
import { dirname, extname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { LayoutError } from './errors';
import { parseJsonDescription } from './json';
import { STRIP_ERROR_PREFIX, type StripFailure, stripTypes } from './strip';
import { isNamedType, type NamedType } from './types';

let hooksRegistered = false;

/** Registers ./ts-hooks.mjs once per process (it sits beside this file in the build, dist/codegen). */
function registerTsHooks(): void {
  if (hooksRegistered) return;
  const register = (Module as unknown as { register?: (specifier: string) => void }).register;
  if (typeof register !== 'function') {
    throw new LayoutError(
      '',
      `loading a .ts description needs Node.js 20.6 or later (this is ${process.version})`,
    );
  }
  register(pathToFileURL(join(__dirname, 'ts-hooks.mjs')).href);
  hooksRegistered = true;
}

/** A file's name as the user would type it: relative to the working directory, forward slashes. */
function shown(file: string): string {
  const rel = relative(process.cwd(), file);
  return (rel === '' || rel.startsWith('..') ? file : rel).split(sep).join('/');
}

/** The line of the first syntax error in a TypeScript file's stripped JavaScript, from `node --check`. */
function syntaxErrorLine(file: string): number | undefined {
  let js: string;
  try {
    js = stripTypes(readFileSync(file, 'utf8'), file);
  } catch {
    return undefined;
  }
  const check = spawnSync(process.execPath, ['--check', '--input-type=module'], {
    input: js,
    encoding: 'utf8',
  });
  const at = /^\[stdin\]:(\d+)$/m.exec(check.stderr ?? '');
  return at ? Number(at[1]) : undefined;
}

/** `file:line` (or `file`) followed by the problem, for a file that failed to parse or to run. */
function errorFrom(err: unknown, description: string): LayoutError {
  const e = err as { name?: unknown; message?: unknown; stack?: unknown; code?: unknown };
  const message = typeof e?.message === 'string' ? e.message : String(err);
  if (message.startsWith(STRIP_ERROR_PREFIX)) {
    const f = JSON.parse(message.slice(STRIP_ERROR_PREFIX.length)) as {
      file: string;
      line?: number;
      message: string;
    };
    return new LayoutError(f.line ? `${shown(f.file)}:${f.line}` : shown(f.file), f.message);
  }
  const stack = typeof e?.stack === 'string' ? e.stack : '';
  if (e?.name === 'SyntaxError' && !/^(?:file:\/\/|\/)\S+?:\d+\n/.test(stack)) {
    // Node 20 gives a dynamically imported module's syntax error no location: ask `node --check` for it.
    const line = syntaxErrorLine(description);
    if (line !== undefined)
      return new LayoutError(`${shown(description)}:${line}`, `SyntaxError: ${message}`);
  }
  // V8's syntax errors in a module start with `file:///…/x.ts:LINE`, then the line's code and a caret.
  const syntax = /^(file:\/\/\S+?|\/\S+?):(\d+)\n/.exec(stack);
  if (syntax?.[1] && syntax[2]) {
    const file = syntax[1].startsWith('file:') ? fileURLToPath(syntax[1]) : syntax[1];
    return new LayoutError(`${shown(file)}:${syntax[2]}`, message.split('\n')[0] ?? message);
  }
  // An exception while the file ran: the innermost frame in the description itself, else in any
  // TypeScript file it imports, names the line.
  const frames = [...stack.matchAll(/(file:\/\/[^\s()]+|\/[^\s():]+):(\d+):\d+\)?$/gm)].map((m) => ({
    file: m[1]?.startsWith('file:') ? fileURLToPath(m[1]) : (m[1] ?? ''),
    line: m[2] ?? '',
  }));
  const frame =
    frames.find((f) => f.file === description) ?? frames.find((f) => /\.(?:ts|mts|cts)$/.test(f.file));
  const what = e?.name && e.name !== 'Error' && e.name !== 'LayoutError' ? `${String(e.name)}: ` : '';
  const problem = `${what}${message.split('\n')[0] ?? message}`;
  return new LayoutError(frame ? `${shown(frame.file)}:${frame.line}` : shown(description), problem);
}

/** Imports a module file, turning a failure to parse or to run into a LayoutError naming file and line. */
async function importFile(abs: string): Promise<Record<string, unknown>> {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = Math.max(limit, 50);
  try {
    return (await import(pathToFileURL(abs).href)) as Record<string, unknown>;
  } catch (err) {
    if ((err as { code?: unknown })?.code === 'ERR_MODULE_NOT_FOUND') {
      throw new LayoutError(shown(abs), String((err as Error).message));
    }
    throw errorFrom(err, abs);
  } finally {
    Error.stackTraceLimit = limit;
  }
}

type ModuleInternals = Module & { _compile(code: string, filename: string): void };

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/**
 * Requires a `.cts` file as CommonJS, types stripped, with relative requires of other TypeScript files
 * (`./x.cts`, `./x.ts`, `./x`) loaded the same way, and `pymalloc/...` found in this package when the file's
 * directory has no copy installed. (Node 20's own require neither strips types nor knows `.cts`.)
 */
function requireCts(file: string, cache: Map<string, unknown>): unknown {
  if (cache.has(file)) return cache.get(file);
  let code: string;
  try {
    code = stripTypes(readFileSync(file, 'utf8'), file);
  } catch (failure) {
    const f = failure as StripFailure;
    throw new LayoutError(f.line ? `${shown(file)}:${f.line}` : shown(file), f.message);
  }
  const mod = new Module(file, module) as ModuleInternals;
  mod.filename = file;
  mod.paths = (Module as unknown as { _nodeModulePaths(dir: string): string[] })._nodeModulePaths(
    dirname(file),
  );
  const plainRequire = Module.createRequire(file);
  mod.require = ((spec: string) => {
    if (spec.startsWith('./') || spec.startsWith('../')) {
      const base = resolve(dirname(file), spec);
      const candidates = /\.[cm]?ts$/.test(base)
        ? [base]
        : [
            `${base}.cts`,
            `${base}.ts`,
            join(base, 'index.ts'),
            base.replace(/\.c?js$/, '.cts'),
            base.replace(/\.js$/, '.ts'),
          ];
      const found = candidates.find((c) => /\.[cm]?ts$/.test(c) && isFile(c));
      if (found) return requireCts(found, cache);
    }
    try {
      return plainRequire(spec);
    } catch (err) {
      if (spec !== 'pymalloc' && !spec.startsWith('pymalloc/')) throw err;
      return Module.createRequire(join(__dirname, '..', '..', 'package.json'))(spec);
    }
  }) as NodeJS.Require;
  cache.set(file, mod.exports);
  mod._compile(code, file);
  cache.set(file, mod.exports);
  return mod.exports;
}

/** The part of es-module-lexer used here (its types are an ES module's, which this CommonJS file cannot name). */
interface EsModuleLexer {
  initSync(): void;
  parse(source: string): readonly [unknown, ReadonlyArray<{ readonly n: string; readonly s: number }>];
}

/**
 * An ES module's exports in the order the source declares them: a module namespace lists its names
 * alphabetically, and the declarations' order is the output's. es-module-lexer reads the export statements of
 * the (type-stripped) source; names it cannot see (`export * from`) follow in the namespace's order.
 */
function inSourceOrder(ns: Record<string, unknown>, js: string): Record<string, unknown> {
  const lexer = require('es-module-lexer') as EsModuleLexer;
  lexer.initSync();
  let names: string[] = [];
  try {
    names = [...lexer.parse(js)[1]].sort((a, b) => a.s - b.s).map((e) => e.n);
  } catch {
    // the module ran, so it parses; should the lexer still disagree, the namespace's order stands
  }
  const ordered: Record<string, unknown> = {};
  for (const name of [...names, ...Object.keys(ns)]) {
    if (name in ns && !(name in ordered)) ordered[name] = ns[name];
  }
  return ordered;
}

/** The declarations a loaded module exports. */
export function declarationsOf(exports: unknown, file: string): NamedType[] {
  const ex = (exports ?? {}) as Record<string, unknown>;
  if (Array.isArray(ex['default'])) return ex['default'] as NamedType[];
  const found = Object.values(ex).filter(isNamedType);
  if (found.length === 0) {
    throw new LayoutError(file, 'exports no struct, union, typedef, enum or opaque declarations');
  }
  return found;
}

/**
 * Loads the declarations of a description file (.ts, .mts, .cts, .js, .cjs, .mjs or .json).
 * @throws LayoutError for a file that cannot be read, parsed or run, or declares nothing
 */
export async function loadDescription(file: string): Promise<NamedType[]> {
  const abs = resolve(file);
  const ext = extname(abs).toLowerCase();
  let text: string;
  try {
    text = readFileSync(abs, 'utf8');
  } catch (err) {
    throw new LayoutError(
      file,
      `cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
  if (ext === '.json') return parseJsonDescription(text, file);
  if (ext === '.ts' || ext === '.mts' || ext === '.cts') {
    if (ext === '.cts') {
      const limit = Error.stackTraceLimit;
      Error.stackTraceLimit = Math.max(limit, 50);
      try {
        return declarationsOf(requireCts(abs, new Map()), file);
      } catch (err) {
        throw err instanceof LayoutError ? err : errorFrom(err, abs);
      } finally {
        Error.stackTraceLimit = limit;
      }
    }
    registerTsHooks();
    const ns = await importFile(abs);
    return declarationsOf(inSourceOrder(ns, stripTypes(text, abs)), file);
  }
  if (ext === '.js' || ext === '.cjs') {
    try {
      return declarationsOf(require(abs), file);
    } catch (err) {
      // A .js file in a "type": "module" package is an ES module, which Node 20's require cannot load.
      if ((err as { code?: unknown })?.code !== 'ERR_REQUIRE_ESM') throw err;
    }
  }
  if (ext === '.js' || ext === '.mjs')
    return declarationsOf(inSourceOrder(await importFile(abs), text), file);
  throw new LayoutError(file, 'expected a .ts, .mts, .cts, .js, .cjs, .mjs or .json description');
}
