/**
 * `pymalloc layout`: compiles a struct description into a C header, TypeScript accessors and/or a report.
 * Description errors and stale outputs end in one line on stderr (exit 2 and 1 respectively).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { relative, resolve, sep } from 'node:path';
import type { Command } from 'commander';
import {
  computeLayout,
  DEFAULT_TS_TARGET,
  emitC,
  emitReport,
  emitTs,
  getTarget,
  LayoutError,
  loadDescription,
  TARGET_NAMES,
} from '../../codegen';
import { UsageError } from './usage';

export interface LayoutOptions {
  target: string[];
  c?: string;
  ts?: string;
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
export function generateLayoutOutputs(file: string, options: LayoutOptions): LayoutOutputs {
  const decls = loadDescription(file);
  const source = displayName(file);
  const named = options.target.length > 0 ? options.target : undefined;
  const files = new Map<string, string>();
  if (options.c !== undefined) {
    const targets = (named ?? TARGET_NAMES).map(getTarget);
    const guard =
      options.c === '-'
        ? undefined
        : displayName(options.c)
            .replace(/^.*\//, '')
            .toUpperCase()
            .replace(/[^A-Z0-9]+/g, '_');
    files.set(
      options.c,
      emitC(
        targets.map((t) => computeLayout(decls, t)),
        { source, guard },
      ),
    );
  }
  if (options.ts !== undefined) {
    const target = getTarget(named?.[0] ?? DEFAULT_TS_TARGET);
    files.set(options.ts, emitTs(computeLayout(decls, target), { source }));
  }
  let report: string | undefined;
  if (options.report || files.size === 0) {
    report = (named ?? ['host']).map((n) => emitReport(computeLayout(decls, getTarget(n)))).join('\n');
  }
  return { files, report };
}

function readOrUndefined(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** Runs the command; returns the exit status (0, or 1 when --check finds stale files). */
export function runLayout(file: string, options: LayoutOptions): number {
  const outputs_ = [
    ['--c', options.c],
    ['--ts', options.ts],
  ].filter((o): o is [string, string] => o[1] !== undefined && o[1] !== '-');
  for (let i = 0; i < outputs_.length; i++)
    for (let j = i + 1; j < outputs_.length; j++)
      if (resolve(outputs_[i]![1]) === resolve(outputs_[j]![1]))
        throw new UsageError(
          `layout: ${outputs_[i]![0]} and ${outputs_[j]![0]} name the same file (${outputs_[i]![1]}); give each output its own`,
        );
  if (options.check && options.c === undefined && options.ts === undefined) {
    throw new UsageError('layout: --check needs --c and/or --ts to name the files to check');
  }
  let outputs: LayoutOutputs;
  try {
    outputs = generateLayoutOutputs(file, options);
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
          `pymalloc: layout: ${displayName(name)} is stale; run the same command without --check\n`,
        );
        status = 1;
      }
    } else writeFileSync(name, text);
  }
  if (outputs.report !== undefined && !options.check) process.stdout.write(outputs.report);
  return status;
}

const HELP = `
Targets: host, ${TARGET_NAMES.join(', ')}.
  --c:      static assertions for every --target (all six when none is named)
  --ts:     accessors for the first --target (x86_64-linux-gnu when none is named)
  report:   one per --target (the host's when none is named); printed when neither --c nor --ts is given

A .ts description is transpiled in memory with the typescript package (a dev dependency); a compiled .js works
without it. The module's exported structs, unions, typedefs and enums are emitted (or its default export array).
JSON descriptions follow codegen/SCHEMA.md.

Example:
  $ pymalloc layout lib/layouts.ts --c native/pymalloc_layout.h --ts lib/generated/layout.ts
  $ pymalloc layout lib/layouts.ts --target i386-linux-gnu           # pahole-style report
  $ pymalloc layout lib/layouts.ts --c native/pymalloc_layout.h --ts lib/generated/layout.ts --check
`;

export function registerLayoutCommand(program: Command): void {
  program
    .command('layout')
    .description('compile C struct descriptions into a C header, TypeScript accessors and a layout report')
    .argument('<file>', 'description: .ts, .js or .json')
    .option(
      '-t, --target <target>',
      'ABI to lay out for (repeatable)',
      (value: string, prev: string[] | undefined) => [...(prev ?? []), value],
    )
    .option('--c <out.h>', "write the C header ('-' for stdout)")
    .option('--ts <out.ts>', "write the TypeScript accessors ('-' for stdout)")
    .option('--report', 'print the layout report (pahole style) to stdout')
    .option('--check', 'write nothing; exit 1 naming each output that differs from what would be generated')
    .addHelpText('after', HELP)
    .action((file: string, options: Omit<LayoutOptions, 'target'> & { target?: string[] }) => {
      const status = runLayout(file, { ...options, target: options.target ?? [] });
      if (status !== 0) process.exitCode = status;
    });
}
