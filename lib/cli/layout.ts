/**
 * `pymalloc layout`: compiles a struct description into a C header, TypeScript accessors and/or a report;
 * with `--from-c`, the description is read from a C header through clang (and `--json` writes it).
 * Description errors and stale outputs end in one line on stderr (exit 2 and 1 respectively).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import type { Command } from 'commander';
import {
  computeLayout,
  DEFAULT_TS_TARGET,
  emitC,
  emitDts,
  emitJs,
  emitReport,
  emitTs,
  fromJson,
  getTarget,
  importCHeader,
  type JsModuleKind,
  LayoutError,
  loadDescription,
  type NamedType,
  TARGET_NAMES,
  UnmodelledError,
} from '../../codegen';
import { wrap } from '../report/format';
import { UsageError } from './usage';

export interface LayoutOptions {
  target: string[];
  c?: string;
  ts?: string;
  js?: string;
  module?: string;
  /** Read the description from this C header (through clang) instead of a description file. */
  fromC?: string;
  /** Write the description (JSON) here. */
  json?: string;
  /** Extra clang arguments for --from-c (include directories, defines). */
  clangArg?: string[];
  report?: boolean;
  check?: boolean;
}

export interface LayoutOutputs {
  /** File name → contents, in the order given on the command line. */
  readonly files: Map<string, string>;
  readonly report: string | undefined;
}

/** The displayable (relative, forward-slash) name of a file. */
function displayName(file: string): string {
  const rel = relative(process.cwd(), file);
  return (rel === '' ? file : rel).split(sep).join('/');
}

/** Everything `pymalloc layout` would produce, without touching the file system except to read `file`. */
export async function generateLayoutOutputs(file: string, options: LayoutOptions): Promise<LayoutOutputs> {
  const named = options.target.length > 0 ? options.target : undefined;
  const files = new Map<string, string>();
  let decls: NamedType[];
  if (options.fromC !== undefined) {
    // clang parses for the first target named (the host otherwise); the description itself is portable.
    const triple = named ? getTarget(named[0]!).clangTriple : undefined;
    const description = importCHeader(options.fromC, { triple, clangArgs: options.clangArg ?? [] });
    description.description = `Imported from ${displayName(file)} by pymalloc layout --from-c`;
    if (options.json !== undefined) files.set(options.json, `${JSON.stringify(description, null, 2)}\n`);
    decls = fromJson(description);
  } else decls = await loadDescription(file);
  const source = displayName(file);
  if (options.c !== undefined) {
    const targets = (named ?? TARGET_NAMES).map(getTarget);
    const guard =
      options.c === '-'
        ? undefined
        : displayName(options.c)
            .replace(/^.*\//, '')
            .toUpperCase()
            .replace(/[^A-Z0-9]+/g, '_');
    // With no --target named, a target the compiler has no model of for this description (bitfields on mingw)
    // is left out of the header, which then refuses that target with an #error, and said so on stderr; named,
    // it is an error.
    const layouts = [];
    for (const t of targets) {
      try {
        layouts.push(computeLayout(decls, t));
      } catch (err) {
        if (named !== undefined || !(err instanceof UnmodelledError)) throw err;
        process.stderr.write(`pymalloc layout: warning: ${err.message}; the header leaves ${t.name} out\n`);
      }
    }
    files.set(options.c, emitC(layouts, { source, guard }));
  }
  if (options.ts !== undefined) {
    const target = getTarget(named?.[0] ?? DEFAULT_TS_TARGET);
    files.set(options.ts, emitTs(computeLayout(decls, target), { source }));
  }
  if (options.js !== undefined) {
    if (options.js === '-')
      throw new UsageError("layout: --js needs a file name (a .d.ts is written beside it), not '-'");
    const kind = jsModuleKind(options.js, options.module);
    const layout = computeLayout(decls, getTarget(named?.[0] ?? DEFAULT_TS_TARGET));
    files.set(options.js, emitJs(layout, { source, module: kind }));
    files.set(declarationFile(options.js), emitDts(layout, { source }));
  }
  let report: string | undefined;
  if (
    options.report ||
    (options.c === undefined &&
      options.ts === undefined &&
      options.js === undefined &&
      options.json === undefined)
  ) {
    report = (named ?? ['host']).map((n) => emitReport(computeLayout(decls, getTarget(n)))).join('\n');
  }
  return { files, report };
}

/**
 * The module kind of the --js output: --module when given, else as Node would load the file: .mjs is an ES
 * module, .cjs CommonJS, and .js follows the "type" of the nearest package.json (CommonJS without one).
 */
export function jsModuleKind(file: string, module: string | undefined): JsModuleKind {
  if (module !== undefined) {
    if (module === 'cjs' || module === 'esm') return module;
    throw new UsageError(`layout: --module must be 'cjs' or 'esm', got '${module}'`);
  }
  if (file.endsWith('.mjs')) return 'esm';
  if (file.endsWith('.cjs')) return 'cjs';
  for (let dir = dirname(resolve(file)); ; dir = dirname(dir)) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        return (JSON.parse(readFileSync(pkg, 'utf8')) as { type?: unknown }).type === 'module'
          ? 'esm'
          : 'cjs';
      } catch {
        return 'cjs';
      }
    }
    if (dirname(dir) === dir) return 'cjs';
  }
}

/** out.js → out.d.ts, out.mjs → out.d.mts, out.cjs → out.d.cts (what TypeScript looks for beside each). */
export function declarationFile(file: string): string {
  const m = /\.(m|c)?js$/.exec(file);
  return m ? `${file.slice(0, m.index)}.d.${m[1] ?? ''}ts` : `${file}.d.ts`;
}

function readOrUndefined(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** Runs the command; returns the exit status (0, or 1 when --check finds stale files). */
export async function runLayout(file: string, options: LayoutOptions): Promise<number> {
  const named = [
    ['--c', options.c],
    ['--ts', options.ts],
    ['--js', options.js],
    ['--js (its declarations)', options.js === undefined ? undefined : declarationFile(options.js)],
    ['--json', options.json],
  ].filter((o): o is [string, string] => o[1] !== undefined && o[1] !== '-');
  for (let i = 0; i < named.length; i++)
    for (let j = i + 1; j < named.length; j++)
      if (resolve(named[i]![1]) === resolve(named[j]![1]))
        throw new UsageError(
          `layout: ${named[i]![0]} and ${named[j]![0]} name the same file (${named[i]![1]}); give each output its own`,
        );
  if (
    options.check &&
    options.c === undefined &&
    options.ts === undefined &&
    options.js === undefined &&
    options.json === undefined
  ) {
    throw new UsageError('layout: --check needs --c, --ts, --js or --json to name the files to check');
  }
  if (options.json !== undefined && options.fromC === undefined)
    throw new UsageError('layout: --json writes the description read by --from-c; add --from-c HEADER.h');
  let outputs: LayoutOutputs;
  try {
    outputs = await generateLayoutOutputs(file, options);
  } catch (err) {
    if (err instanceof LayoutError) throw new UsageError(`layout: ${err.message}`);
    throw err;
  }
  let status = 0;
  for (const [name, text] of outputs.files) {
    if (name === '-') process.stdout.write(text);
    else if (options.check) {
      if (readOrUndefined(name) !== text) {
        process.stderr.write(
          `pymalloc layout: ${displayName(name)} is stale; run the same command without --check\n`,
        );
        status = 1;
      }
    } else writeFileSync(name, text);
  }
  if (outputs.report !== undefined && !options.check) process.stdout.write(outputs.report);
  return status;
}

const HELP = `
${wrap(`Targets: host, ${TARGET_NAMES.join(', ')}.`, 80, 2).join('\n')}
  --c:     static assertions for every --target (all ${TARGET_NAMES.length} when none is named)
  --ts:    accessors for the first --target (x86_64-linux-gnu if none is named)
  --js:    the same accessors as plain JavaScript, with a declaration file
           beside it (out.js -> out.d.ts); an ES module or CommonJS as --module
           says, else as Node would load the file name (.mjs, .cjs, or .js by
           the nearest package.json's "type")
  report:  one per --target (the host's when none is named); printed when
           no output file is given

A .ts or .mts description is imported as an ES module and a .cts one as
CommonJS, with the types erased by Node itself (amaro on Node 20): no typescript
package is needed. The module's exported structs, unions, typedefs and enums are
emitted (or its default export array). JSON descriptions follow
codegen/SCHEMA.md.

--from-c HEADER.h reads the header's structs, unions, enums and typedefs through
clang (its JSON AST, parsed for the first --target, else the host) instead of a
description file; --json writes the description it made, and --clang-arg passes
an argument to clang.

Example:
  $ pymalloc layout point.ts --c point.h --ts point-layout.ts
  $ pymalloc layout point.ts --target i386-linux-gnu      # pahole-style report
  $ pymalloc layout point.ts --c point.h --ts point-layout.ts --check
  $ pymalloc layout --from-c point.h --json point.json --ts point-layout.ts
`;

export function registerLayoutCommand(program: Command): void {
  program
    .command('layout')
    .summary('compile struct descriptions to C and TypeScript')
    .description('Compiles C struct descriptions into a C header, TypeScript accessors and a layout report.')
    .argument('[file]', 'description: .ts, .mts, .cts, .js or .json (omitted with --from-c)')
    .option(
      '-t, --target <target>',
      'ABI to lay out for (repeatable)',
      (value: string, prev: string[] | undefined) => [...(prev ?? []), value],
    )
    .option('--c <out.h>', "write the C header ('-' for stdout)")
    .option('--ts <out.ts>', "write the TypeScript accessors ('-' for stdout)")
    .option('--js <out.js>', 'write the accessors as JavaScript, and their declarations beside (out.d.ts)')
    .option('--module <kind>', "--js output: 'cjs' or 'esm' (default: from the file name, as Node loads it)")
    .option('--from-c <header.h>', 'read the description from a C header through clang')
    .option('--json <out.json>', "with --from-c: write the description ('-' for stdout)")
    .option(
      '--clang-arg <arg>',
      'with --from-c: an argument for clang, e.g. -I/some/include (repeatable)',
      (value: string, prev: string[] | undefined) => [...(prev ?? []), value],
    )
    .option('--report', 'print the layout report (pahole style) to stdout')
    .option('--check', 'write nothing; exit 1 naming each output that differs from what would be generated')
    .addHelpText('after', HELP)
    .action(
      async (file: string | undefined, options: Omit<LayoutOptions, 'target'> & { target?: string[] }) => {
        if ((file === undefined) === (options.fromC === undefined))
          throw new UsageError('layout: name a description file, or a C header with --from-c (one of them)');
        const status = await runLayout(file ?? options.fromC!, { ...options, target: options.target ?? [] });
        if (status !== 0) process.exitCode = status;
      },
    );
}
