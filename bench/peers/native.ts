/**
 * The native peers of the benchmark: CPython's own pymalloc (libpython's PyObject_Malloc, driven before
 * Py_Initialize so its pools start empty), glibc malloc, and mimalloc, jemalloc and tcmalloc (the
 * distribution's shared libraries, preloaded into the glibc harness), each replaying the trace in a C program
 * (bench/native/harness.c) built on demand and run in a child process. A preloaded peer whose library is not
 * installed is skipped, naming the package to install; PYMALLOC_BENCH_MIMALLOC (…_JEMALLOC, …_TCMALLOC)
 * names a library file to use instead.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { promisify } from 'node:util';
import { buildPackagedC, CBuildError, libpython } from '../../lib/tools/cbuild';
import type { Trace } from '../../lib/trace';
import type { PeerOutcome, PeerRun, PeerSkipped } from './types';

const execFileAsync = promisify(execFile);

export type NativePeer = 'cpython' | 'glibc' | PreloadedPeer;
type PreloadedPeer = 'mimalloc' | 'jemalloc' | 'tcmalloc';

export const NATIVE_PEER_NAMES: Record<NativePeer, string> = {
  cpython: 'CPython pymalloc',
  glibc: 'glibc malloc',
  mimalloc: 'mimalloc',
  jemalloc: 'jemalloc',
  tcmalloc: 'tcmalloc',
};

/** Each preloaded allocator's library names (newest first) and the Debian package that has them. */
const PRELOADS: Record<PreloadedPeer, { readonly files: readonly string[]; readonly debian: string }> = {
  mimalloc: { files: ['libmimalloc.so.2', 'libmimalloc.so'], debian: 'libmimalloc2.0' },
  jemalloc: { files: ['libjemalloc.so.2', 'libjemalloc.so'], debian: 'libjemalloc2' },
  tcmalloc: { files: ['libtcmalloc_minimal.so.4', 'libtcmalloc.so.4'], debian: 'libtcmalloc-minimal4' },
};

const MULTIARCH: Partial<Record<string, string>> = {
  x64: 'x86_64-linux-gnu',
  arm64: 'aarch64-linux-gnu',
  arm: 'arm-linux-gnueabihf',
  ia32: 'i386-linux-gnu',
};

/** The library to preload for a peer, or why there is none. */
export function preloadLibrary(peer: PreloadedPeer): string | { skipped: string } {
  const override = process.env[`PYMALLOC_BENCH_${peer.toUpperCase()}`];
  if (override) {
    return existsSync(override)
      ? override
      : { skipped: `PYMALLOC_BENCH_${peer.toUpperCase()}=${override}: no such file` };
  }
  const multiarch = MULTIARCH[process.arch];
  const dirs = [
    ...(multiarch ? [`/usr/lib/${multiarch}`, `/lib/${multiarch}`] : []),
    '/usr/lib64',
    '/usr/lib',
    '/usr/local/lib',
  ];
  for (const dir of dirs) {
    for (const file of PRELOADS[peer].files) {
      if (existsSync(join(dir, file))) return join(dir, file);
    }
  }
  return {
    skipped: `${peer} is not installed (Debian: apt-get install ${PRELOADS[peer].debian}; or set PYMALLOC_BENCH_${peer.toUpperCase()} to its library)`,
  };
}

function isPreloaded(peer: NativePeer): peer is PreloadedPeer {
  return peer in PRELOADS;
}

const HARNESS = 'bench/native/harness.c';
const MAGIC = 'PYMTRACE';
const FORMAT_VERSION = 1;
const HEADER_SIZE = 32;

/** Writes a trace in the harness's binary format (see bench/native/harness.c). */
export function writeTraceBinary(trace: Trace, file: string): void {
  const n = trace.length;
  const padded = (n + 3) & ~3;
  const buf = Buffer.alloc(HEADER_SIZE + padded + 8 * n);
  buf.write(MAGIC, 0, 'latin1');
  buf.writeUInt32LE(FORMAT_VERSION, 8);
  buf.writeUInt32LE(HEADER_SIZE, 12);
  buf.writeBigUInt64LE(BigInt(n), 16);
  buf.writeUInt32LE(trace.objects, 24);
  buf.set(trace.ops.subarray(0, n), HEADER_SIZE);
  let off = HEADER_SIZE + padded;
  const ids = new Uint8Array(trace.ids.buffer, trace.ids.byteOffset, 4 * n);
  buf.set(ids, off);
  off += 4 * n;
  buf.set(new Uint8Array(trace.sizes.buffer, trace.sizes.byteOffset, 4 * n), off);
  if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
    // Typed arrays are in the machine's byte order; the format is little-endian.
    for (let i = 0; i < n; i++) {
      buf.writeUInt32LE(trace.ids[i]!, HEADER_SIZE + padded + 4 * i);
      buf.writeUInt32LE(trace.sizes[i]!, HEADER_SIZE + padded + 4 * n + 4 * i);
    }
  }
  writeFileSync(file, buf);
}

function traceLabel(trace: Trace): string {
  return basename(trace.name);
}

/** Builds (or finds cached) the harness for a peer; a string is the reason it cannot be built here. */
function harness(peer: NativePeer): string | { skipped: string } {
  try {
    if (peer === 'glibc' || isPreloaded(peer)) {
      if (process.platform !== 'linux')
        return { skipped: `${NATIVE_PEER_NAMES[peer]} is measured on Linux only` };
      return buildPackagedC(__dirname, HARNESS, { name: 'harness-glibc', cflags: ['-O2', '-DPEER_GLIBC'] });
    }
    const py = libpython();
    const [major, minor] = py.version.split('.').map(Number) as [number, number];
    if (major !== 3 || minor < 8 || minor > 11) {
      return {
        skipped:
          `libpython ${py.version} (from ${py.configTool}) is not supported: the harness drives pymalloc ` +
          'before Py_Initialize, which CPython 3.8-3.11 allow (from 3.12 its state belongs to an interpreter)',
      };
    }
    return buildPackagedC(__dirname, HARNESS, {
      name: `harness-cpython${py.version}`,
      cflags: ['-O2', '-DPEER_CPYTHON', ...py.cflags],
      ldflags: py.ldflags,
    });
  } catch (err) {
    if (err instanceof CBuildError && err.code !== 'ERR_PYMALLOC_CC_FAILED') return { skipped: err.message };
    throw err;
  }
}

async function runHarness(exe: string, file: string, args: string[], preload?: string): Promise<string> {
  try {
    const { stdout } = await execFileAsync(exe, [file, ...args], {
      encoding: 'utf8',
      maxBuffer: 64 * 2 ** 20,
      // PYTHONMALLOC and friends are read by Py_Initialize only, which the harness never calls; keep the
      // environment anyway so glibc's MALLOC_* tunables (and mimalloc's MIMALLOC_*, …) apply as the user set them.
      env: preload === undefined ? process.env : { ...process.env, LD_PRELOAD: preload },
    });
    return stdout;
  } catch (err) {
    const e = err as Error & { stderr?: string; code?: number | string; signal?: string };
    const why = String(e.stderr ?? '').trim() || (e.signal ? `killed by ${e.signal}` : e.message);
    throw new Error(`native harness ${basename(exe)} ${args.join(' ')} failed: ${why}`);
  }
}

function withTraceFile<T>(trace: Trace, fn: (file: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'pymalloc-peer-'));
  const file = join(dir, 'trace.bin');
  writeTraceBinary(trace, file);
  return fn(file).finally(() => rmSync(dir, { recursive: true, force: true }));
}

type TimeResult = Pick<PeerRun, 'ops' | 'nsPerOp' | 'rssBaseline' | 'rssPeak' | 'rssEnd' | 'rssAfterFree'>;

interface TimelineResult {
  timeline: Array<[number, number]>;
  rssPeak: number;
  rssAfterIdle: number;
}

/**
 * Replays `trace` through CPython's pymalloc or glibc malloc in a C program: `reps` timed replays (best ns/op;
 * RSS figures from the first), then one untimed replay sampling RSS about `samples` times (default 200).
 * Returns PeerSkipped, with the reason, where the compiler, python3-config or libpython is missing.
 */
export async function runNativePeer(
  peer: NativePeer,
  trace: Trace,
  opts: { reps: number; samples?: number; idleMs?: number },
): Promise<PeerOutcome> {
  const name = NATIVE_PEER_NAMES[peer];
  const label = traceLabel(trace);
  const exe = harness(peer);
  if (typeof exe !== 'string') return { peer: name, trace: label, skipped: exe.skipped };
  const preload = isPreloaded(peer) ? preloadLibrary(peer) : undefined;
  if (typeof preload === 'object') return { peer: name, trace: label, skipped: preload.skipped };
  const reps = Math.max(1, Math.floor(opts.reps));
  const samples = Math.max(1, Math.floor(opts.samples ?? 200));
  const idleMs = Math.max(0, Math.floor(opts.idleMs ?? 1000));
  return withTraceFile(trace, async (file) => {
    const time = JSON.parse(await runHarness(exe, file, ['time', String(reps)], preload)) as TimeResult & {
      mallocFrom?: string;
    };
    if (preload !== undefined && time.mallocFrom !== realpathSync(preload) && time.mallocFrom !== preload) {
      throw new Error(
        `${name}: LD_PRELOAD=${preload} did not replace malloc (the harness's malloc came from ${time.mallocFrom || 'an unknown file'})`,
      );
    }
    const tl = JSON.parse(
      await runHarness(exe, file, ['timeline', String(samples), String(idleMs)], preload),
    ) as TimelineResult;
    const run: PeerRun = {
      peer: name,
      trace: label,
      ops: time.ops,
      nsPerOp: time.nsPerOp,
      rssBaseline: time.rssBaseline,
      rssPeak: Math.max(time.rssPeak, time.rssEnd),
      rssEnd: time.rssEnd,
      rssAfterFree: time.rssAfterFree,
      rssAfterIdle: tl.rssAfterIdle,
      idleMs,
      timeline: tl.timeline,
    };
    return run;
  });
}

/**
 * CPython's own `_PyObject_DebugMallocStats` text after replaying `trace` through libpython's pymalloc from
 * empty pools, stopped at the end of the trace with its live objects still allocated.
 */
export async function cpythonStats(trace: Trace): Promise<string | PeerSkipped> {
  const exe = harness('cpython');
  if (typeof exe !== 'string') return { peer: NATIVE_PEER_NAMES.cpython, trace: traceLabel(trace), ...exe };
  return withTraceFile(trace, (file) => runHarness(exe, file, ['stats']));
}
