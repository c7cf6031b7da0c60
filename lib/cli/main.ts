#!/usr/bin/env node
/**
 * The `pymalloc` command line: one program, one subcommand per module of `lib/cli/`.
 * A user's mistake (unknown command or option, bad value, missing file) ends in one line on stderr and exit
 * status 2; an internal failure in one line and status 1 (its stack trace too when PYMALLOC_TRACE is set).
 * Every message names its command: `pymalloc replay: cannot read trace 'x': no such file` (process warnings
 * too: `pymalloc replay: warning: …`), or `pymalloc: …` before any command is known.
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

/** The command being run ('replay', say), once commander has picked it; '' before. */
let running = '';

/** `pymalloc replay: ` while replay runs, `pymalloc: ` before a command is known. */
export function messagePrefix(): string {
  return running ? `pymalloc ${running}: ` : 'pymalloc: ';
}

/** A message as one line under the running command's name, without a repeated `pymalloc: ` or `replay: `. */
function named(message: string): string {
  let text = message.replace(/^pymalloc: /, '');
  if (running && text.startsWith(`${running}: `)) text = text.slice(running.length + 2);
  return oneLine(`${messagePrefix()}${text}`);
}

/**
 * Commander's parse errors ("error: unknown option '--x'", "(Did you mean demo?)") as one line naming the
 * command and where its help is: `pymalloc demo: unknown option '--x' (see 'pymalloc demo --help')`.
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
      write(`${oneLine(`pymalloc${path ? ` ${path}` : ''}: ${message} (see '${help}')`)}\n`);
    },
  });
  for (const sub of cmd.commands) oneLineErrors(sub);
}

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('pymalloc')
    .description("CPython's small-object allocator on OS pages, and a C-struct layout compiler")
    .version(version(), '-V, --version', 'print the version')
    .exitOverride();
  program.hook('preAction', (_program, action) => {
    running = commandPath(action);
  });
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
  running = '';
  try {
    await program.parseAsync(argv);
    return process.exitCode === undefined ? 0 : Number(process.exitCode);
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander already printed the message (or the help/version text).
      return err.exitCode === 0 ? 0 : 2;
    }
    if (err instanceof UsageError) {
      process.stderr.write(`${named(err.message)}\n`);
      return 2;
    }
    const fileError = fileErrorMessage(err);
    if (fileError !== undefined) {
      process.stderr.write(`${named(fileError)}\n`);
      return 2;
    }
    throw new InternalError(err, named(err instanceof Error ? err.message : String(err)));
  } finally {
    process.exitCode = undefined;
  }
}

/** An unexpected failure of a command, with its message already named (`pymalloc replay: …`). */
export class InternalError extends Error {
  constructor(
    readonly original: unknown,
    readonly line: string,
  ) {
    super(line);
    this.name = 'InternalError';
  }
}

/** Process warnings (the library's, say) as one line under the command's name, instead of Node's `(node:…)`. */
function namedWarnings(): void {
  process.removeAllListeners('warning');
  process.on('warning', (w: Error) => {
    process.stderr.write(`${named(`warning: ${w.message}`)}\n`);
  });
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
  namedWarnings();
  main(process.argv).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      const line = err instanceof InternalError ? err.line : named(String(err));
      process.stderr.write(`${line}\n`);
      const original = err instanceof InternalError ? err.original : err;
      if (process.env['PYMALLOC_TRACE']) process.stderr.write(`${(original as Error)?.stack ?? ''}\n`);
      process.exitCode = 1;
    },
  );
}
