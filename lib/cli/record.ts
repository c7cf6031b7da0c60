/**
 * `pymalloc record [--out FILE] -- python3 SCRIPT [ARGS]`: runs a Python program in an embedded CPython
 * (native/tools/record.c, built on demand against libpython) and writes its object allocator's calls as a trace
 * (`m ID SIZE` / `f ID` / `r ID SIZE`) that `parseTrace`, the replay and the benchmark read. The program behaves
 * as under `python3 SCRIPT ARGS` (same stdin, stdout, stderr and exit status); the trace goes through a pipe
 * to the file, gzip-compressed when its name ends in .gz.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createWriteStream, existsSync, openSync } from 'node:fs';
import { constants } from 'node:os';
import { basename, join } from 'node:path';
import type { Writable } from 'node:stream';
import { createGzip } from 'node:zlib';
import type { Command } from 'commander';
import { buildPackagedC, CBuildError, type LibPython, libpython } from '../tools/cbuild';
import { escapeInput, quote, UsageError } from './usage';

const RECORDER = 'native/tools/record.c';
const PYTHON_WORD = /^python3(\.\d+)?$/;

export interface RecordOptions {
  /** The command: a python3 interpreter name, then its arguments (script and its arguments). */
  command: string[];
  /** Trace file; '-' for stdout. Default: `<script>.trace` in the current directory. */
  out?: string;
  /** Where notes and the summary go (default process.stderr). */
  log?: (line: string) => void;
}

export interface RecordResult {
  /** Exit status of the Python program (128 + signal number when killed). */
  exitCode: number;
  out: string;
  /** Operations recorded, from the trace's last comment line (undefined if the program ended abruptly). */
  ops?: number;
  mallocs?: number;
  frees?: number;
  reallocs?: number;
  /** Blocks still live when the program ended. */
  live?: number;
  /** X.Y of the embedded interpreter. */
  python: string;
}

/** What the script is, from python's arguments: the script file, `-m module`, or `-c`. */
export function scriptOf(args: string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '-m') return args[i + 1];
    if (a.startsWith('-m') && a.length > 2) return a.slice(2);
    if (a === '-c' || (a.startsWith('-c') && a.length > 2)) return '-c';
    if (a === '-X' || a === '-W') {
      i++;
      continue;
    }
    if (a === '-' || a === '--') return args[i + 1] ?? '-';
    if (a.startsWith('-')) continue;
    return a;
  }
  return undefined;
}

function defaultOut(script: string | undefined): string {
  if (!script || script === '-' || script === '-c') return 'python.trace';
  return `${basename(script).replace(/\.py$/, '')}.trace`;
}

/** The libpython to embed: `<word>-config` beside the named interpreter when there is one, else python3-config. */
function findLibpython(word: string): LibPython {
  if (!process.env['PYTHON_CONFIG']) {
    const named = `${word}-config`;
    const candidates = word.includes('/') ? [named] : [];
    if (!word.includes('/') && word !== 'python3') candidates.push(named);
    for (const c of candidates) {
      if (!(c.includes('/') ? existsSync(c) : whichOnPath(c))) continue;
      try {
        return libpython(c);
      } catch (err) {
        // e.g. a version manager's shim for a version that is not selected: use python3-config instead
        if (!(err instanceof CBuildError)) throw err;
      }
    }
  }
  return libpython();
}

function whichOnPath(cmd: string): boolean {
  return (process.env['PATH'] ?? '').split(':').some((d) => d !== '' && existsSync(join(d, cmd)));
}

/** X.Y of an interpreter: from its name (python3.11), else by running it; undefined when it cannot be run. */
function interpreterVersion(word: string): string | undefined {
  const named = /^python(3\.\d+)$/.exec(basename(word));
  if (named) return named[1];
  try {
    return execFileSync(word, ['-c', 'import sys; print("%d.%d" % sys.version_info[:2])'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 30000,
    }).trim();
  } catch {
    return undefined;
  }
}

function checkCommand(command: string[]): string {
  const word = command[0];
  if (word === undefined) {
    throw new UsageError('needs a command after --, e.g. pymalloc record -- python3 script.py');
  }
  if (!PYTHON_WORD.test(basename(word))) {
    throw new UsageError(
      `the program runs in an embedded CPython (libpython), so the command must be a python3 ` +
        `interpreter (python3, python3.11, /usr/bin/python3...), not ${quote(word)}`,
    );
  }
  return word;
}

/** Builds the recorder, runs the program under it and writes the trace. */
export async function record(opts: RecordOptions): Promise<RecordResult> {
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const word = checkCommand(opts.command);
  const args = opts.command.slice(1);
  let py: LibPython;
  let exe: string;
  try {
    py = findLibpython(word);
    exe = buildPackagedC(__dirname, RECORDER, {
      name: `record-python${py.version}`,
      cflags: ['-O2', '-pthread', ...py.cflags],
      ldflags: ['-pthread', ...py.ldflags],
    });
  } catch (err) {
    if (err instanceof CBuildError && err.code !== 'ERR_PYMALLOC_CC_FAILED') {
      throw new UsageError(`record: ${err.message}`);
    }
    throw err;
  }
  const wordVersion = interpreterVersion(word);
  if (wordVersion !== undefined && wordVersion !== py.version) {
    log(
      `pymalloc record: note: ${escapeInput(word)} is Python ${wordVersion} but the libpython found (${py.configTool}) is ` +
        `${py.version}: the program runs under Python ${py.version}`,
    );
  }
  const script = scriptOf(args);
  const out = opts.out ?? defaultOut(script);
  const toStdout = out === '-';

  let sink: Writable;
  let done: Promise<void> | undefined;
  if (toStdout) sink = process.stdout;
  else {
    let fd: number;
    try {
      fd = openSync(out, 'w');
    } catch (err) {
      throw new UsageError(`record: cannot write ${quote(out)}: ${(err as Error).message}`);
    }
    const file = createWriteStream(out, { fd });
    done = new Promise<void>((resolve, reject) => {
      file.on('finish', resolve);
      file.on('error', reject);
    });
    if (out.endsWith('.gz')) {
      const gz = createGzip();
      gz.pipe(file);
      gz.on('error', (e) => file.destroy(e));
      sink = gz;
    } else sink = file;
  }

  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PYMALLOC_RECORD_FD: '3',
    PYMALLOC_RECORD_LABEL: script ?? '-',
  };
  if (py.executable) env['PYMALLOC_RECORD_EXECUTABLE'] = py.executable;
  const child = spawn(exe, args, {
    argv0: word,
    env,
    // With the trace on stdout, the program's own stdout goes to stderr so that the trace stays clean.
    stdio: ['inherit', toStdout ? process.stderr : 'inherit', 'inherit', 'pipe'],
  });
  const tracePipe = child.stdio[3] as NodeJS.ReadableStream;
  let tail = '';
  tracePipe.on('data', (chunk: Buffer) => {
    tail = (tail + chunk.toString('latin1', Math.max(0, chunk.length - 256))).slice(-256);
  });
  tracePipe.pipe(sink, { end: !toStdout });
  done ??= new Promise<void>((resolve) => tracePipe.on('end', resolve));
  // Ctrl-C reaches the whole process group: Python turns it into KeyboardInterrupt and still ends the trace,
  // so this process keeps reading until the program is gone.
  const ignore = (): void => {};
  process.on('SIGINT', ignore);
  let exitCode: number;
  try {
    exitCode = await new Promise<number>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (code, signal) => {
        resolve(code ?? 128 + (signal ? (constants.signals[signal] ?? 15) : 15));
      });
    });
    await done;
  } finally {
    process.off('SIGINT', ignore);
  }

  const end = /# end: (\d+) operations \((\d+) m, (\d+) f, (\d+) r\), (\d+) blocks live/.exec(tail);
  const result: RecordResult = { exitCode, out, python: py.version };
  if (end) {
    result.ops = Number(end[1]);
    result.mallocs = Number(end[2]);
    result.frees = Number(end[3]);
    result.reallocs = Number(end[4]);
    result.live = Number(end[5]);
  }
  return result;
}

export function formatRecordSummary(r: RecordResult): string {
  const where = r.out === '-' ? 'stdout' : r.out;
  if (r.ops === undefined) {
    return `pymalloc record: the program ended before the recorder could finish; the trace in ${where} is cut short`;
  }
  return (
    `pymalloc record: ${r.ops} operations (${r.mallocs} malloc, ${r.frees} free, ${r.reallocs} realloc; ` +
    `${r.live} blocks live at exit) from Python ${r.python} -> ${where}`
  );
}

export function registerRecordCommand(program: Command): void {
  program
    .command('record')
    .summary("record a Python program's allocations")
    .description("Records a Python program's object allocations as a trace (runs it in an embedded CPython).")
    .argument('<command...>', 'python3 SCRIPT [ARGS] (after --)')
    .option(
      '--out <file>',
      "trace file, gzip-compressed if it ends in .gz; '-' for stdout (default: SCRIPT.trace)",
    )
    .addHelpText(
      'after',
      '\nThe program runs in libpython as found by python3-config --embed\n' +
        '(apt-get install python3-dev). Python options go after --, with the script:\n' +
        '  pymalloc record -- python3 -X dev bench.py\n' +
        '\nExample:\n  $ pymalloc record --out regex.trace.gz -- python3 bench.py\n',
    )
    .action(async (command: string[], opts: { out?: string }) => {
      const result = await record({ command, out: opts.out });
      process.stderr.write(`${formatRecordSummary(result)}\n`);
      if (result.exitCode !== 0) process.exitCode = result.exitCode;
    });
}
