/**
 * Loads a description file: `.json` (codegen/SCHEMA.md), `.js`/`.cjs` (required as is), or `.ts`
 * (transpiled in memory with the `typescript` package's transpileModule, with relative imports of other
 * `.ts` files transpiled the same way; `typescript` must be installed, it is only a devDependency here).
 *
 * A module's declarations are its default export when that is an array, otherwise every exported struct,
 * union, typedef, enum and opaque value in export order. Types they reference are included automatically.
 */
import { readFileSync } from 'node:fs';
import Module from 'node:module';
import { dirname, extname, resolve } from 'node:path';
import { LayoutError } from './errors';
import { parseJsonDescription } from './json';
import { isNamedType, type NamedType } from './types';

interface TsApi {
  transpileModule(
    input: string,
    options: { compilerOptions: Record<string, unknown>; fileName: string },
  ): { outputText: string };
  ModuleKind: { CommonJS: number };
  ScriptTarget: { ES2022: number };
}

function loadTypeScript(file: string): TsApi {
  try {
    return require('typescript') as TsApi;
  } catch {
    throw new LayoutError(
      file,
      'loading a .ts description needs the typescript package (npm install --save-dev typescript), ' +
        'or pass the compiled .js file instead',
    );
  }
}

type ModuleInternals = Module & { _compile(code: string, filename: string): void };

/** Requires a .ts file, transpiling it and its relative .ts imports. */
function requireTs(file: string, ts: TsApi, cache: Map<string, unknown>): unknown {
  const cached = cache.get(file);
  if (cached) return cached;
  const source = readFileSync(file, 'utf8');
  const { outputText } = ts.transpileModule(source, {
    fileName: file,
    compilerOptions: {
      module: ts.ModuleKind.CommonJS,
      target: ts.ScriptTarget.ES2022,
      esModuleInterop: true,
    },
  });
  const mod = new Module(file, module) as ModuleInternals;
  mod.filename = file;
  mod.paths = (Module as unknown as { _nodeModulePaths(dir: string): string[] })._nodeModulePaths(
    dirname(file),
  );
  cache.set(file, mod.exports);
  const plainRequire = Module.createRequire(file);
  mod.require = ((spec: string) => {
    if (spec.startsWith('.')) {
      const base = resolve(dirname(file), spec);
      for (const candidate of [
        `${base}.ts`,
        `${base}/index.ts`,
        base.endsWith('.js') ? `${base.slice(0, -3)}.ts` : '',
      ]) {
        if (candidate && isFile(candidate)) return requireTs(candidate, ts, cache);
      }
    }
    return plainRequire(spec);
  }) as NodeJS.Require;
  mod._compile(outputText, file);
  cache.set(file, mod.exports);
  return mod.exports;
}

function isFile(path: string): boolean {
  try {
    readFileSync(path);
    return true;
  } catch {
    return false;
  }
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

/** Loads the declarations of a description file (.ts, .js, .cjs or .json). */
export function loadDescription(file: string): NamedType[] {
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
    const ts = loadTypeScript(file);
    return declarationsOf(requireTs(abs, ts, new Map()), file);
  }
  if (ext === '.js' || ext === '.cjs') return declarationsOf(require(abs), file);
  throw new LayoutError(file, 'expected a .ts, .js, .cjs or .json description');
}
