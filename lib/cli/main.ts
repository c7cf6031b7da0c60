#!/usr/bin/env node
/**
 * The `pymalloc` command line: one program, one subcommand per module of `lib/cli/`.
 * A user's mistake ends in one line on stderr and exit status 2; an internal failure in a stack trace.
 */
import { Command, CommanderError } from 'commander';
import { registerCommands } from './commands';
import { UsageError } from './usage';

function version(): string {
  // package.json sits two levels above dist/lib/cli and lib/cli alike (dist/ adds one more).
  for (const rel of ['../../package.json', '../../../package.json']) {
    try {
      const pkg = require(rel) as { name?: string; version?: string };
      if (pkg.name === 'pymalloc' && pkg.version) return pkg.version;
    } catch {
      // try the next location
    }
  }
  return '0.0.0';
}

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('pymalloc')
    .description("CPython's small-object allocator on real OS pages, and a C-struct layout compiler")
    .version(version(), '-V, --version', 'print the version')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  registerCommands(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return process.exitCode === undefined ? 0 : Number(process.exitCode);
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander already printed the message (or the help/version text).
      return err.exitCode === 0 ? 0 : 2;
    }
    if (err instanceof UsageError) {
      process.stderr.write(`pymalloc: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
}

if (require.main === module) {
  main(process.argv).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      const e = err as Error & { code?: string };
      process.stderr.write(`pymalloc: ${e?.message ? e.message : String(err)}\n`);
      if (process.env['PYMALLOC_TRACE']) process.stderr.write(`${e?.stack ?? ''}\n`);
      process.exitCode = 1;
    },
  );
}
