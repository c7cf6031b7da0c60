#!/usr/bin/env node
/**
 * The `pymalloc` command line: one program, one subcommand per module of `lib/cli/`.
 * A user's mistake (unknown command or option, bad value, missing file) ends in one line on stderr and exit
 * status 2; an internal failure in one line and status 1 (its stack trace too when PYMALLOC_TRACE is set).
 * Every such line goes through oneLine: whatever a message repeats of the user's input (commander's messages
 * quote unknown options and commands as typed), it is printable ASCII of a bounded length.
 */
import { Command, CommanderError } from 'commander';
import { registerCommands } from './commands';
import { stopAllProgress } from './progress';
import { oneLine, quote, UsageError } from './usage';

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

/** The command's path as typed after `pymalloc`, e.g. 'demo' (empty for the program itself). */
function commandPath(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c?.parent; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/**
 * Commander's parse errors ("error: unknown option '--x'", "(Did you mean demo?)") as one line naming the
 * command and where its help is: `pymalloc: demo: unknown option '--x' (see 'pymalloc demo --help')`.
 */
function oneLineErrors(cmd: Command): void {
  const path = commandPath(cmd);
  cmd.showHelpAfterError(false).configureOutput({
    outputError: (str, write) => {
      const message = str
        .trim()
        .replace(/^error: /, '')
        .replace(/\s*\n\s*/g, ' ');
      const help = path ? `pymalloc ${path} --help` : 'pymalloc --help';
      write(`${oneLine(`pymalloc: ${path ? `${path}: ` : ''}${message} (see '${help}')`)}\n`);
    },
  });
  for (const sub of cmd.commands) oneLineErrors(sub);
}

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('pymalloc')
    .description("CPython's small-object allocator on real OS pages, and a C-struct layout compiler")
    .version(version(), '-V, --version', 'print the version')
    .exitOverride();
  registerCommands(program);
  oneLineErrors(program);
  // The command list: one line per command, however narrow the terminal (commander wraps at its width).
  program.configureHelp({ helpWidth: 1000 });
  program.addHelpText('after', '\nExample:\n  $ pymalloc demo\n  $ pymalloc <command> --help\n');
  return program;
}

/** A file the user named that cannot be read or written, as one line; undefined for any other error. */
function fileErrorMessage(err: unknown): string | undefined {
  const e = err as NodeJS.ErrnoException;
  if (!(err instanceof Error) || typeof e.path !== 'string' || typeof e.syscall !== 'string')
    return undefined;
  const why: Record<string, string> = {
    ENOENT: 'no such file or directory',
    EACCES: 'permission denied',
    EISDIR: 'it is a directory',
    ENOTDIR: 'a part of the path is not a directory',
    EEXIST: 'it already exists',
    EROFS: 'read-only file system',
    ENAMETOOLONG: 'file name too long',
  };
  const reason = e.code ? why[e.code] : undefined;
  return reason ? `cannot ${e.syscall} ${quote(e.path)}: ${reason}` : undefined;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  // A command reports a failing status through process.exitCode (demo below 95%, record passing on its
  // program's status); start from none, and leave none behind for the caller (or the next run in the same
  // process, as in the tests) to inherit.
  process.exitCode = undefined;
  try {
    await program.parseAsync(argv);
    return process.exitCode === undefined ? 0 : Number(process.exitCode);
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander already printed the message (or the help/version text).
      return err.exitCode === 0 ? 0 : 2;
    }
    if (err instanceof UsageError) {
      process.stderr.write(`${oneLine(`pymalloc: ${err.message}`)}\n`);
      return 2;
    }
    const fileError = fileErrorMessage(err);
    if (fileError !== undefined) {
      process.stderr.write(`${oneLine(`pymalloc: ${fileError}`)}\n`);
      return 2;
    }
    throw err;
  } finally {
    process.exitCode = undefined;
  }
}

/**
 * When the reader of stdout or stderr goes away (`pymalloc --help | head -1`), the next write fails with EPIPE:
 * the output is no longer wanted, so the process ends at once, quietly and with status 0, as a Unix filter does.
 * Any other error on those streams is a failure as before.
 */
export function exitQuietlyOnClosedPipe(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE') throw err;
      stopAllProgress();
      process.exit(0);
    });
  }
}

if (require.main === module) {
  exitQuietlyOnClosedPipe();
  main(process.argv).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      const e = err as Error & { code?: string };
      // The library's own errors already start with 'pymalloc: '.
      const message = e?.message ? e.message.replace(/^pymalloc: /, '') : String(err);
      process.stderr.write(`${oneLine(`pymalloc: ${message}`)}\n`);
      if (process.env['PYMALLOC_TRACE']) process.stderr.write(`${e?.stack ?? ''}\n`);
      process.exitCode = 1;
    },
  );
}
