/**
 * Builds small C programs on demand with the system C compiler and caches the binaries.
 *
 * The cache lives in `$XDG_CACHE_HOME/pymalloc` (else `~/.cache/pymalloc`, else a directory under the OS temp
 * dir) and is keyed by a hash of the compiler, the source text and every flag, so an edited source or another
 * libpython rebuilds and nothing stale is ever run. Builds go to a temporary name and are renamed into place,
 * so concurrent processes (jest workers) never see a half-written binary.
 *
 * `libpython()` asks `python3-config --embed` for the flags that link a program against libpython, and adds an
 * rpath to the directory holding libpython's shared library so the binary finds it at run time.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { basename, delimiter, dirname, isAbsolute, join } from 'node:path';

export type CBuildErrorCode =
  | 'ERR_PYMALLOC_NO_CC'
  | 'ERR_PYMALLOC_NO_PYTHON_CONFIG'
  | 'ERR_PYMALLOC_NO_LIBPYTHON'
  | 'ERR_PYMALLOC_CC_FAILED';

/** Something the build needs is missing or the compiler rejected the source; the message says what to install. */
export class CBuildError extends Error {
  readonly code: CBuildErrorCode;
  constructor(code: CBuildErrorCode, message: string) {
    super(message);
    this.name = 'CBuildError';
    this.code = code;
  }
}

function which(cmd: string): string | undefined {
  if (cmd.includes('/')) return existsSync(cmd) ? cmd : undefined;
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    if (dir === '') continue;
    const full = join(dir, cmd);
    if (existsSync(full)) return full;
  }
  return undefined;
}

let compilerMemo: string | undefined;

/** The C compiler: `$CC` if set, else `cc`, else `gcc`, else `clang`. Throws ERR_PYMALLOC_NO_CC. */
export function findCompiler(): string {
  if (compilerMemo !== undefined) return compilerMemo;
  const fromEnv = process.env['CC']?.trim();
  if (fromEnv) {
    // $CC may carry flags ("gcc -m64"); only the first word has to exist.
    const first = fromEnv.split(/\s+/)[0]!;
    if (!which(first)) {
      throw new CBuildError('ERR_PYMALLOC_NO_CC', `the C compiler named by $CC ('${fromEnv}') was not found`);
    }
    compilerMemo = fromEnv;
    return fromEnv;
  }
  for (const cc of ['cc', 'gcc', 'clang']) {
    if (which(cc)) {
      compilerMemo = cc;
      return cc;
    }
  }
  throw new CBuildError(
    'ERR_PYMALLOC_NO_CC',
    'no C compiler found (tried $CC, cc, gcc, clang): install one, e.g. apt-get install gcc',
  );
}

/** Where built binaries are cached; created if needed. */
export function cacheDir(): string {
  const candidates: string[] = [];
  const xdg = process.env['XDG_CACHE_HOME'];
  if (xdg && isAbsolute(xdg)) candidates.push(join(xdg, 'pymalloc'));
  try {
    const home = homedir();
    if (home) candidates.push(join(home, '.cache', 'pymalloc'));
  } catch {
    // no home directory: fall through to the temp dir
  }
  const uid = typeof process.getuid === 'function' ? process.getuid() : 0;
  candidates.push(join(tmpdir(), `pymalloc-cache-${uid}`));
  for (const dir of candidates) {
    try {
      mkdirSync(dir, { recursive: true });
      const probe = join(dir, `.probe-${process.pid}`);
      writeFileSync(probe, '');
      rmSync(probe);
      return dir;
    } catch {
      // not writable: try the next one
    }
  }
  throw new Error(`pymalloc: no writable cache directory (tried ${candidates.join(', ')})`);
}

export interface BuildOptions {
  /** A short name for the binary (the cached file is `<name>-<hash>`). */
  name: string;
  /** The C source text. */
  source: string;
  /** Where the source came from, for error messages and `#line`-free diagnostics. */
  sourceName?: string;
  /** Compiler flags (defines, include dirs, optimisation), before the source. */
  cflags?: string[];
  /** Linker flags, after the source. */
  ldflags?: string[];
}

/**
 * Compiles `source` unless a binary built from the same compiler, source and flags is cached; returns the path
 * of the executable. Throws CBuildError (ERR_PYMALLOC_NO_CC, ERR_PYMALLOC_CC_FAILED with the compiler's output).
 */
export function buildC(opts: BuildOptions): string {
  const cc = findCompiler();
  const cflags = opts.cflags ?? [];
  const ldflags = opts.ldflags ?? [];
  const key = createHash('sha256')
    .update(JSON.stringify([cc, cflags, ldflags, process.arch, process.platform]))
    .update('\0')
    .update(opts.source)
    .digest('hex')
    .slice(0, 16);
  const dir = cacheDir();
  const exe = join(dir, `${opts.name}-${key}`);
  if (existsSync(exe)) return exe;
  const tmp = `${exe}.tmp-${process.pid}`;
  const srcFile = `${tmp}.c`;
  writeFileSync(srcFile, opts.source);
  const [ccCmd, ...ccPre] = cc.split(/\s+/);
  const args = [...ccPre, ...cflags, '-o', tmp, srcFile, ...ldflags];
  try {
    execFileSync(ccCmd!, args, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
    renameSync(tmp, exe);
  } catch (err) {
    const e = err as Error & { stderr?: string; code?: string };
    if (e.code === 'ENOENT') {
      throw new CBuildError('ERR_PYMALLOC_NO_CC', `the C compiler '${ccCmd}' could not be run: install gcc`);
    }
    const out = String(e.stderr ?? e.message)
      .split(srcFile)
      .join(opts.sourceName ?? basename(srcFile));
    throw new CBuildError('ERR_PYMALLOC_CC_FAILED', `building ${opts.name} failed:\n${out.trimEnd()}`);
  } finally {
    rmSync(srcFile, { force: true });
    rmSync(tmp, { force: true });
  }
  pruneOldBuilds(dir, opts.name, exe);
  return exe;
}

const WEEK_MS = 7 * 24 * 3600 * 1000;

/**
 * Removes builds of the same program not rebuilt for a week (binaries are a few KiB, but every edit of a source
 * adds one). Recent ones stay: two Pythons of one version (say /usr and pyenv) share a name and alternate.
 */
function pruneOldBuilds(dir: string, name: string, keep: string): void {
  const same = new RegExp(`^${name.replace(/[^\w]/g, '\\$&')}-[0-9a-f]{16}$`);
  const now = Date.now();
  for (const f of readdirSync(dir)) {
    const file = join(dir, f);
    if (!same.test(f) || file === keep) continue;
    try {
      if (now - statSync(file).mtimeMs > WEEK_MS) rmSync(file, { force: true });
    } catch {
      // gone already (another process pruned it)
    }
  }
}

/** What it takes to compile and link a program that embeds CPython. */
export interface LibPython {
  /** The config tool that answered, e.g. 'python3-config'. */
  configTool: string;
  /** 'X.Y' of the libpython linked. */
  version: string;
  /** The installation prefix (`python3-config --prefix`). */
  prefix: string;
  /** The interpreter of that installation (`<prefix>/bin/pythonX.Y`) when it exists. */
  executable?: string;
  /** Directories holding libpython (also added as rpaths). */
  libDirs: string[];
  cflags: string[];
  ldflags: string[];
}

function runConfig(tool: string, args: string[]): string {
  return execFileSync(tool, args, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' }).trim();
}

const libpythonMemo = new Map<string, LibPython>();

/**
 * Flags to embed CPython, from `python3-config --embed` (or the tool named by `$PYTHON_CONFIG`, or `tool`).
 * Throws CBuildError ERR_PYMALLOC_NO_PYTHON_CONFIG when the tool is missing and ERR_PYMALLOC_NO_LIBPYTHON when
 * it names no libpython that exists.
 */
export function libpython(tool = process.env['PYTHON_CONFIG'] || 'python3-config'): LibPython {
  const memo = libpythonMemo.get(tool);
  if (memo) return memo;
  const install = 'install the Python development files, e.g. apt-get install python3-dev';
  if (!which(tool)) {
    throw new CBuildError('ERR_PYMALLOC_NO_PYTHON_CONFIG', `${tool} was not found: ${install}`);
  }
  let cflagsText: string;
  let ldflagsText: string;
  let prefix: string;
  try {
    cflagsText = runConfig(tool, ['--cflags']);
    ldflagsText = runConfig(tool, ['--embed', '--ldflags']);
    prefix = runConfig(tool, ['--prefix']);
  } catch (err) {
    const e = err as Error & { stderr?: string };
    const why =
      String(e.stderr || e.message)
        .trim()
        .split('\n')[0] || 'no output';
    throw new CBuildError(
      'ERR_PYMALLOC_NO_PYTHON_CONFIG',
      `${tool} failed (${why}); it needs --embed (Python 3.8+): ${install}`,
    );
  }
  const ldflags = ldflagsText.split(/\s+/).filter((f) => f !== '');
  const lib = ldflags.find((f) => /^-lpython\d/.test(f));
  const version = lib ? /^-lpython(\d+\.\d+)/.exec(lib)?.[1] : undefined;
  if (!lib || !version) {
    throw new CBuildError(
      'ERR_PYMALLOC_NO_LIBPYTHON',
      `${tool} --embed --ldflags names no libpython: ${install}`,
    );
  }
  const libName = lib.slice(2);
  // Where the linker will look: the -L directories, then the usual system ones.
  const searchDirs = [
    ...ldflags.filter((f) => f.startsWith('-L')).map((f) => f.slice(2)),
    '/usr/local/lib',
    '/usr/lib',
    `/usr/lib/${process.arch === 'arm64' ? 'aarch64' : 'x86_64'}-linux-gnu`,
    '/lib',
  ];
  const has = (dir: string, ext: string): boolean => {
    try {
      return readdirSync(dir).some((f) => f.startsWith(`lib${libName}`) && f.includes(ext));
    } catch {
      return false;
    }
  };
  const shared = [...new Set(searchDirs.filter((d) => has(d, '.so')))];
  if (shared.length === 0 && !searchDirs.some((d) => has(d, '.a'))) {
    throw new CBuildError(
      'ERR_PYMALLOC_NO_LIBPYTHON',
      `lib${libName} (named by ${tool}) was not found in ${searchDirs.join(', ')}: ${install}`,
    );
  }
  const rpaths = shared.filter((d) => isAbsolute(d)).map((d) => `-Wl,-rpath,${d}`);
  const exeCandidate = join(prefix, 'bin', `python${version}`);
  const result: LibPython = {
    configTool: tool,
    version,
    prefix,
    executable: existsSync(exeCandidate) ? exeCandidate : undefined,
    libDirs: shared,
    // Keep include dirs and defines; drop python3-config's warnings and -g/-O choices (ours come later).
    cflags: cflagsText.split(/\s+/).filter((f) => /^-(I|D)/.test(f)),
    ldflags: [...ldflags, ...rpaths],
  };
  libpythonMemo.set(tool, result);
  return result;
}

/** Finds a file shipped with the package from a module's directory (works from lib/ and from dist/lib/). */
export function packageFile(fromDir: string, rel: string): string {
  let dir = fromDir;
  for (let i = 0; i < 5; i++) {
    const candidate = join(dir, rel);
    if (existsSync(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  throw new Error(`pymalloc: ${rel} was not found above ${fromDir} (is the package complete?)`);
}

/** Reads a packaged C source and builds it. */
export function buildPackagedC(
  fromDir: string,
  rel: string,
  opts: Omit<BuildOptions, 'source' | 'sourceName'>,
): string {
  const file = packageFile(fromDir, rel);
  return buildC({ ...opts, source: readFileSync(file, 'utf8'), sourceName: rel });
}
