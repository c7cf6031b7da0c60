/**
 * The PyCon 2005 story on real OS pages (`pymalloc demo`). Evan Jones's Python driver built a big scenario of
 * small objects, freed it and launched a simulator, which starved: Python 2.4's pymalloc never gave small-object
 * memory back to the OS. For each return policy — 'never' (Python 2.4), 'cpython' (wholly empty arenas go back,
 * Python 2.5+) and 'purge' (this library's default: empty pools inside live arenas too) — in its own Heap:
 *
 *   build       allocate N objects of a CPython-like size mix (lib/demo/mix.ts) and write every byte;
 *   free        free them all;
 *   simulator   fork lib/demo/simulator.js, which allocates and touches as much and reports its own RSS;
 *   fragment    build again and keep one object in 64, in two patterns: every 64th object in allocation order
 *               (survivors spread through every pool), then — after freeing those and building again — one run
 *               of 512 consecutive objects in 64 (survivors allocated together, as a program keeps what one
 *               step of its work made);
 *   trim        under 'purge' only, heap.trim() after each fragmentation: the empty pools below the threshold.
 *
 * RSS (statm) is sampled against the bytes allocated and freed so far, so that the three policies share one axis.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { ReturnPolicy } from '../core';
import { resolveGeometry } from '../geometry';
import { DEFAULT_PURGE_DELAY, Heap, type HeapStats } from '../heap';
import { type HeapMap, heapMap } from '../heap-map';
import { pageSize, rssBytes } from '../os';
import { collectGarbage } from '../report/gc';
import { MEAN_SIZE, objectSizes, SIZE_MIX, type SizeBand, totalBytes } from './mix';
import type { SimulatorMessage, SimulatorResult } from './simulator';

const MiB = 2 ** 20;

/** The policies in the order of history; the last is the default. */
export const DEMO_POLICIES: readonly ReturnPolicy[] = ['never', 'cpython', 'purge'];
export const DEFAULT_POLICY: ReturnPolicy = 'purge';
/** One object in KEEP_ONE_IN survives the fragmentation. */
export const KEEP_ONE_IN = 64;
/** The clustered pattern keeps one run of RUN_LENGTH consecutive objects in KEEP_ONE_IN runs. */
export const RUN_LENGTH = 512;
/** About 256 MiB of requests by default. */
export const DEFAULT_OBJECTS = Math.round((256 * MiB) / MEAN_SIZE / 1000) * 1000;
/**
 * About 95 MiB of requests, in some 100 arenas: the least for which the demo's verdict (the default policy gives
 * back at least 95% of the freed memory) means something. The rest of the process moves RSS by up to 4 MiB
 * between the build and the free (Node's own malloc heap and threads: JIT zones, GC workers; the heap itself
 * keeps about 0.2 MiB, 99.7% given back), and that must stay well under 5% of what was built. Measured on a
 * loaded 2-core machine: at 57 MiB (600,000 objects) 95.1% to 98.7%, and 93.9% once in CI; at 95 MiB
 * (1,000,000) 97.6% to 98.4%.
 */
export const MIN_OBJECTS = 1_000_000;
/** About 1 GiB of requests: the parent's heap and the simulator's each hold that much at their peak. */
export const MAX_OBJECTS = 10_000_000;
/** RSS samples per phase of a run, for the chart. */
const SAMPLES_PER_PHASE = 128;
const WARM_UP_OBJECTS = 20_000;
/** How long past the heap's purgeDelay settle() waits: the timer's own lateness, with room to spare. */
const SETTLE_MARGIN_MS = 50;
/** How much longer settle() waits at most for a timer that a loaded machine runs late. */
const SETTLE_LIMIT_MS = 5_000;

export type PhaseId =
  | 'baseline'
  | 'built'
  | 'freed'
  | 'simulator'
  | 'rebuilt'
  | 'spread'
  | 'spread-trimmed'
  | 'rebuilt-2'
  | 'clustered'
  | 'clustered-trimmed'
  | 'destroyed';

/** The memory after one phase of a run. */
export interface PhaseRecord {
  phase: PhaseId;
  /** Resident set size of this process (statm), bytes. */
  rssBytes: number;
  /** Bytes of the heap's reservation in RAM (mincore); null once the heap is destroyed. */
  residentBytes: number | null;
  /** heap.stats().bytesInUse (class sizes of the live blocks); null once the heap is destroyed. */
  bytesInUse: number | null;
  /** Arenas alive; null once the heap is destroyed. */
  arenas: number | null;
}

/** What one fragmentation pattern left behind. */
export interface FragmentationRecord {
  /** 'spread': every 64th object in allocation order; 'clustered': one run of 512 consecutive objects in 64. */
  pattern: 'spread' | 'clustered';
  survivors: number;
  /** Bytes requested by the survivors. */
  survivingBytes: number;
  /** Arenas alive before and after the survivors' neighbours were freed. */
  arenasBefore: number;
  arenasAfter: number;
  /** Pools holding survivors, and free pools of live arenas (and of those, the purged ones). */
  poolsUsed: number;
  poolsUnused: number;
  poolsPurged: number;
  /** Under 'purge', what heap.trim() gave back afterwards (the empty pools below the threshold); else null. */
  trimmedBytes: number | null;
}

export interface PolicyRun {
  policy: ReturnPolicy;
  phases: PhaseRecord[];
  /** (rssBuilt − rssFreed) / (rssBuilt − rssBaseline) × 100, one decimal. */
  returnedPercent: number;
  /** (residentBuilt − residentFreed) / residentBuilt × 100 for the heap alone, one decimal. */
  heapReturnedPercent: number;
  simulator: SimulatorResult & {
    /** This process's RSS while the simulator held all its objects. */
    parentRssBytes: number;
  };
  fragmentation: FragmentationRecord[];
  /** [bytes allocated and freed so far (MiB), this process's RSS (MiB)]. */
  samples: Array<[number, number]>;
  /** [bytes allocated and freed so far (MiB), the simulator's RSS (MiB)] during the simulator phase. */
  simulatorSamples: Array<[number, number]>;
  /** When asked for (DemoOptions.maps): the heap map after each fragmentation (after its trim under 'purge'). */
  maps?: { spread: HeapMap; clustered: HeapMap };
}

export interface DemoReport {
  objects: number;
  seed: number;
  /** Bytes requested by one build (the simulator requests as many). */
  requestedBytes: number;
  sizeMix: readonly SizeBand[];
  keepOneIn: number;
  runLength: number;
  pageSize: number;
  poolSize: number;
  arenaSize: number;
  /** The default policy's purgeDelay: how long freed memory stays for reuse before it goes back. */
  purgeDelayMs: number;
  defaultPolicy: ReturnPolicy;
  runs: PolicyRun[];
  /** The default policy's returnedPercent after the full free. */
  returnedPercent: number;
  /** Where each phase starts on the chart's x axis (MiB allocated and freed so far). */
  markers: Array<{ x: number; label: string }>;
}

/** A progress indicator for one phase (lib/cli/progress.ts's startProgress fits). */
export interface PhaseProgress {
  update(value: number): void;
  stop(): void;
}

export interface DemoOptions {
  /** @defaultValue DEFAULT_OBJECTS */
  objects?: number;
  /** Seed of the size mix. @defaultValue 1 */
  seed?: number;
  /** Called at the start of each phase with a label and the MiB of work it will do. */
  progress?: (label: string, totalMiB: number) => PhaseProgress;
  /** Keep the heap map after each fragmentation (PolicyRun.maps). */
  maps?: boolean;
}

/** Lets the event loop run (a signal handler, say: Ctrl-C during a progress bar) between steps of a phase. */
function tick(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

const NO_PROGRESS: PhaseProgress = { update() {}, stop() {} };

/** The compiled simulator script: next to this module in dist/, or dist/lib/demo when run from the sources. */
export function simulatorScript(): string {
  const beside = join(__dirname, 'simulator.js');
  return existsSync(beside) ? beside : join(__dirname, '..', '..', 'dist', 'lib', 'demo', 'simulator.js');
}

function round1(x: number): number {
  return Math.round(x * 10) / 10;
}

/**
 * Waits for the heap's delayed return: its purgeDelay and SETTLE_MARGIN_MS more, calling `sample` about every
 * 25 ms. A loaded machine runs the heap's timer late, so past that it waits on, up to `limitMs` more, until the
 * heap has nothing pending: what is measured next is what the heap gave back by itself, not how late its timer
 * ran. Returns at once when the heap returns memory immediately (purgeDelay 0).
 */
export async function settle(
  heap: Pick<Heap, 'purgeDelay' | 'purgeDeadline'>,
  sample: () => void,
  limitMs = SETTLE_LIMIT_MS,
): Promise<void> {
  const delay = heap.purgeDelay;
  if (delay === 0) return;
  const end = Date.now() + delay + SETTLE_MARGIN_MS;
  const limit = end + limitMs;
  for (;;) {
    const now = Date.now();
    if (now >= limit || (now >= end && heap.purgeDeadline === 0)) return;
    await new Promise<void>((resolve) => setTimeout(resolve, now < end ? Math.min(25, end - now) : 5));
    sample();
  }
}

/** One policy's heap going through the story, with its measurements. */
class PolicyRunner {
  readonly heap: Heap;
  readonly phases: PhaseRecord[] = [];
  readonly samples: Array<[number, number]> = [];
  readonly simulatorSamples: Array<[number, number]> = [];
  /** MiB allocated and freed so far: the chart's x. */
  traffic = 0;

  constructor(
    readonly policy: ReturnPolicy,
    readonly sizes: Uint16Array,
    readonly ptrs: Uint32Array,
    readonly progress: (label: string, totalMiB: number) => PhaseProgress,
    readonly maps = false,
  ) {
    this.heap = new Heap({ policy });
  }

  sample(): void {
    this.samples.push([round1(this.traffic), round1(rssBytes() / MiB)]);
  }

  /**
   * Records the memory now. RSS and resident bytes are read before heap.stats(): stats() reads the header of
   * every carved pool, and reading a purged pool maps the kernel's zero page there, which mincore counts.
   */
  record(phase: PhaseId): PhaseRecord {
    // At the two ends of a run, collect JavaScript garbage first, so that what the run left in V8's heap does not
    // read as memory the allocator kept.
    if (phase === 'baseline' || phase === 'destroyed') collectGarbage();
    const rss = rssBytes();
    const destroyed = phase === 'destroyed';
    const resident = destroyed ? null : this.heap.residentBytes();
    const stats = destroyed ? null : this.heap.stats();
    const rec: PhaseRecord = {
      phase,
      rssBytes: rss,
      residentBytes: resident,
      bytesInUse: stats ? stats.bytesInUse : null,
      arenas: stats ? stats.arenas.current : null,
    };
    this.phases.push(rec);
    // The chart ends with the last phase of the story, not with the heap's destruction.
    if (!destroyed) this.samples.push([round1(this.traffic), round1(rss / MiB)]);
    return rec;
  }

  /** Allocates every object and writes each of its bytes. */
  async build(label: string): Promise<void> {
    const { heap, sizes, ptrs } = this;
    const n = sizes.length;
    const step = Math.max(1, Math.ceil(n / SAMPLES_PER_PHASE));
    const total = Math.ceil(totalBytes(sizes) / MiB);
    const bar = this.progress(`${this.policy} ${label}`, total);
    let bytes = 0;
    for (let i = 0; i < n; ) {
      const end = Math.min(n, i + step);
      let chunk = 0;
      for (; i < end; i++) {
        const size = sizes[i]!;
        const p = heap.malloc(size);
        heap.u8.fill(0xa5, p, p + size);
        ptrs[i] = p;
        chunk += size;
      }
      bytes += chunk;
      this.traffic += chunk / MiB;
      this.sample();
      bar.update(bytes / MiB);
      await tick();
    }
    bar.update(total);
    bar.stop();
  }

  /** Frees the objects for which `keep(i)` is false (every live one when keep is omitted). */
  async free(label: string, keep?: (i: number) => boolean): Promise<void> {
    const { heap, sizes, ptrs } = this;
    const n = sizes.length;
    const step = Math.max(1, Math.ceil(n / SAMPLES_PER_PHASE));
    let toFree = 0;
    for (let i = 0; i < n; i++) if (ptrs[i] !== 0 && !keep?.(i)) toFree += sizes[i]!;
    const total = Math.ceil(toFree / MiB);
    const bar = this.progress(`${this.policy} ${label}`, total);
    let bytes = 0;
    for (let i = 0; i < n; ) {
      const end = Math.min(n, i + step);
      let chunk = 0;
      for (; i < end; i++) {
        if (ptrs[i] === 0 || keep?.(i)) continue;
        heap.free(ptrs[i]!);
        ptrs[i] = 0;
        chunk += sizes[i]!;
      }
      bytes += chunk;
      this.traffic += chunk / MiB;
      this.sample();
      bar.update(bytes / MiB);
      await tick();
    }
    bar.update(total);
    bar.stop();
    await settle(this.heap, () => this.sample());
  }

  /** Runs the simulator child to its peak; resolves with what it reported and this process's RSS then. */
  async simulate(objects: number, seed: number, requestedMiB: number): Promise<PolicyRun['simulator']> {
    const bar = this.progress(`${this.policy} simulator`, Math.ceil(requestedMiB));
    const start = this.traffic;
    let child: ChildProcess | undefined;
    const script = simulatorScript();
    if (!existsSync(script)) throw new Error(`cannot find the simulator ${script}: run npm run build:ts`);
    try {
      child = fork(script, [String(objects), String(seed)], {
        stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
        // The child is a plain Node process, whatever flags (inspector, loaders) this one runs with.
        execArgv: [],
      });
      const result = await new Promise<SimulatorResult>((resolve, reject) => {
        let stderr = '';
        let done: SimulatorResult | undefined;
        child!.stderr!.on('data', (chunk: Buffer) => {
          stderr += chunk.toString();
        });
        child!.on('message', (message: SimulatorMessage) => {
          if (message.type === 'progress') {
            this.traffic = start + message.bytes / MiB;
            this.simulatorSamples.push([round1(this.traffic), round1(message.rssBytes / MiB)]);
            this.sample();
            bar.update(message.bytes / MiB);
          } else if (message.type === 'done') done = message;
          else this.simulatorSamples.push([round1(this.traffic), round1(message.rssBytes / MiB)]);
          if (done) resolve(done);
        });
        child!.on('error', reject);
        // 'close' comes after the IPC channel and stderr have been read to their ends, unlike 'exit'.
        child!.on('close', (code, signal) => {
          if (!done) {
            const why = stderr.trim().split('\n').pop() || (signal ? `signal ${signal}` : `status ${code}`);
            reject(new Error(`the simulator process failed: ${why}`));
          }
        });
      });
      // The child still holds everything until it has sent 'done' and torn its heap down.
      const parentRssBytes = this.record('simulator').rssBytes;
      this.traffic = start + result.bytes / MiB;
      return { ...result, parentRssBytes };
    } finally {
      bar.stop();
      if (child && child.exitCode === null && child.signalCode === null) {
        await new Promise<void>((resolve) => {
          child!.once('exit', () => resolve());
          if (child!.exitCode !== null || child!.signalCode !== null) resolve();
        });
      }
    }
  }

  /** Keeps one object in KEEP_ONE_IN following `pattern`, and (under 'purge') trims afterwards. */
  async fragment(pattern: 'spread' | 'clustered'): Promise<FragmentationRecord & { map?: HeapMap }> {
    const keep =
      pattern === 'spread'
        ? (i: number) => i % KEEP_ONE_IN === 0
        : (i: number) => Math.floor(i / RUN_LENGTH) % KEEP_ONE_IN === 0;
    const arenasBefore = this.heap.stats().arenas.current;
    await this.free(pattern === 'spread' ? 'keep 1/64' : 'keep runs', keep);
    const rss = rssBytes();
    const resident = this.heap.residentBytes();
    let trimmedBytes: number | null = null;
    let trimmed: [number, number] | undefined;
    if (this.policy === 'purge') {
      trimmedBytes = this.heap.trim();
      trimmed = [rssBytes(), this.heap.residentBytes()];
    }
    // heap.stats() (and the map, which reads the same headers) last: see record().
    const stats: HeapStats = this.heap.stats();
    const map = this.maps ? heapMap(this.heap) : undefined;
    const base = { bytesInUse: stats.bytesInUse, arenas: stats.arenas.current };
    this.phases.push({ phase: pattern, rssBytes: rss, residentBytes: resident, ...base });
    this.samples.push([round1(this.traffic), round1(rss / MiB)]);
    if (trimmed) {
      const phase: PhaseId = pattern === 'spread' ? 'spread-trimmed' : 'clustered-trimmed';
      this.phases.push({ phase, rssBytes: trimmed[0], residentBytes: trimmed[1], ...base });
      this.samples.push([round1(this.traffic), round1(trimmed[0] / MiB)]);
    }
    let survivors = 0;
    let survivingBytes = 0;
    for (let i = 0; i < this.ptrs.length; i++) {
      if (this.ptrs[i] !== 0) {
        survivors++;
        survivingBytes += this.sizes[i]!;
      }
    }
    return {
      pattern,
      survivors,
      survivingBytes,
      arenasBefore,
      arenasAfter: stats.arenas.current,
      poolsUsed: stats.pools.used,
      poolsUnused: stats.pools.unused,
      poolsPurged: stats.pools.purged,
      trimmedBytes,
      ...(map ? { map } : {}),
    };
  }
}

/** The whole story under one policy, in a heap of its own that is destroyed at the end. */
async function runPolicy(
  policy: ReturnPolicy,
  sizes: Uint16Array,
  ptrs: Uint32Array,
  seed: number,
  progress: (label: string, totalMiB: number) => PhaseProgress,
  withSimulator: boolean,
  maps = false,
): Promise<PolicyRun> {
  ptrs.fill(0);
  const r = new PolicyRunner(policy, sizes, ptrs, progress, maps);
  try {
    const baseline = r.record('baseline');
    await r.build('build');
    const built = r.record('built');
    await r.free('free all');
    const freed = r.record('freed');
    const requested = totalBytes(sizes);
    const simulator = withSimulator
      ? await r.simulate(sizes.length, seed + 1, requested / MiB)
      : {
          type: 'done' as const,
          objects: 0,
          bytes: 0,
          baselineRssBytes: 0,
          peakRssBytes: 0,
          heapResidentBytes: 0,
          parentRssBytes: 0,
        };
    await r.build('build');
    r.record('rebuilt');
    const { map: spreadMap, ...spread } = await r.fragment('spread');
    await r.free('free rest');
    await r.build('build');
    r.record('rebuilt-2');
    const { map: clusteredMap, ...clustered } = await r.fragment('clustered');
    const grown = built.rssBytes - baseline.rssBytes;
    const heapGrown = built.residentBytes! - baseline.residentBytes!;
    return {
      policy,
      phases: r.phases,
      returnedPercent: grown > 0 ? round1(((built.rssBytes - freed.rssBytes) / grown) * 100) : 0,
      heapReturnedPercent:
        heapGrown > 0 ? round1(((built.residentBytes! - freed.residentBytes!) / heapGrown) * 100) : 0,
      simulator,
      fragmentation: [spread, clustered],
      samples: r.samples,
      simulatorSamples: r.simulatorSamples,
      ...(spreadMap && clusteredMap ? { maps: { spread: spreadMap, clustered: clusteredMap } } : {}),
    };
  } finally {
    r.heap.destroy();
    r.record('destroyed');
  }
}

/**
 * Runs the demo. The three policies run one after the other in this process, each in its own Heap destroyed at
 * the end of its run: destroy() unmaps the whole reservation, so every run starts from the same RSS (each run's
 * baseline is in its phases, for checking), while running each policy in a child process of its own would add
 * a Node start-up and a JIT warm-up to every baseline, and a grandchild for the simulator. The size table and
 * the pointer array are allocated once, before any baseline, and a small dry run first puts the compiled code
 * in the baseline too.
 */
export async function runDemo(options: DemoOptions = {}): Promise<DemoReport> {
  const objects = options.objects ?? DEFAULT_OBJECTS;
  const seed = options.seed ?? 1;
  if (!Number.isSafeInteger(objects) || objects < MIN_OBJECTS || objects > MAX_OBJECTS) {
    throw new RangeError(`objects must be an integer from ${MIN_OBJECTS} to ${MAX_OBJECTS}, got ${objects}`);
  }
  const progress = options.progress ?? (() => NO_PROGRESS);
  const sizes = objectSizes(objects, seed);
  const ptrs = new Uint32Array(objects);
  const warmUp = Math.min(objects, WARM_UP_OBJECTS);
  await runPolicy(
    DEFAULT_POLICY,
    sizes.subarray(0, warmUp),
    ptrs.subarray(0, warmUp),
    seed,
    () => NO_PROGRESS,
    false,
  );
  const runs: PolicyRun[] = [];
  for (const policy of DEMO_POLICIES)
    runs.push(await runPolicy(policy, sizes, ptrs, seed, progress, true, options.maps === true));
  const requestedBytes = totalBytes(sizes);
  const requestedMiB = requestedBytes / MiB;
  const spreadSurvivorsMiB = runs[0]!.fragmentation[0]!.survivingBytes / MiB;
  const markers: Array<{ x: number; label: string }> = [];
  let x = 0;
  for (const [label, mib] of [
    ['build', requestedMiB],
    ['free all', requestedMiB],
    ['simulator', requestedMiB],
    ['build', requestedMiB],
    ['keep every 64th', requestedMiB - spreadSurvivorsMiB],
    ['free, build', spreadSurvivorsMiB + requestedMiB],
    ['keep 1 run in 64', 0],
  ] as const) {
    markers.push({ x: round1(x), label });
    x += mib;
  }
  const g = resolveGeometry({}, pageSize());
  return {
    objects,
    seed,
    requestedBytes,
    sizeMix: SIZE_MIX,
    keepOneIn: KEEP_ONE_IN,
    runLength: RUN_LENGTH,
    pageSize: pageSize(),
    poolSize: g.poolSize,
    arenaSize: g.arenaSize,
    purgeDelayMs: DEFAULT_PURGE_DELAY,
    defaultPolicy: DEFAULT_POLICY,
    runs,
    returnedPercent: runs.find((r) => r.policy === DEFAULT_POLICY)!.returnedPercent,
    markers,
  };
}
