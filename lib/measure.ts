/**
 * Measuring a trace's replay through a Heap: the time per operation (best of N timed replays) and the memory of
 * one sampled replay — process RSS and the heap's resident bytes at the baseline, the peak, the end of the trace
 * and after freeing every block still live, plus the heap's statistics at the end of the trace and at its peak.
 * `pymalloc replay`, `pymalloc tune` and `npm run bench` are built on it.
 *
 * The timed replays run on one heap, freeing every block still live between them (untimed), after untimed
 * warm-up replays (at least one, and at least WARM_UP_OPS operations: V8 compiles the replay loop and the fast
 * paths in tiers, and the slow paths only once they have run often enough): the way the C harness drives
 * CPython's process-wide pymalloc, so the two compare fairly. They run before any heap of the measurement is
 * destroyed: destroying an `'unmap'` heap detaches its ArrayBuffer, and from the first detached buffer on V8 adds
 * a check to every typed-array access in the process (bench/detach.ts), which would penalise whatever is timed
 * later. No clock is read inside a replay.
 */
import { Heap, type HeapOptions, type HeapStats } from './heap';
import { type HeapMap, heapMap } from './heap-map';
import { rssBytes } from './os';
import { collectGarbage } from './report/gc';
import { freeAll, replay, type Trace } from './trace';

export interface MemoryPoint {
  /** Process resident set size, bytes. */
  rss: number;
  /** Bytes of the heap's reservation resident in RAM. */
  heapResident: number;
}

/** One sample of the sampled replay: after `op` operations (the last sample follows the final free-all). */
export interface TimelineSample extends MemoryPoint {
  op: number;
}

export interface ReplayMeasurement {
  trace: string;
  ops: number;
  objects: number;
  reps: number;
  /** Best time per operation of the timed replays, nanoseconds. */
  nsPerOp: number;
  /** Every timed replay's time per operation, in order. */
  nsPerOpRuns: number[];
  baseline: MemoryPoint;
  /** The highest of each measure over the samples (not necessarily at the same sample). */
  peak: MemoryPoint;
  end: MemoryPoint;
  afterFree: MemoryPoint;
  /**
   * IDLE_MS (one second) after free-all with no call into the heap: what the heap gives back by itself (its
   * idle return). Measured only by the yielding runners (sampleReplayAsync): a synchronous run cannot idle.
   */
  afterIdle?: MemoryPoint;
  /** After heap.trim() (which returns the cached spans and the arena kept against thrashing). */
  afterTrim: MemoryPoint;
  timeline: TimelineSample[];
  /** heap.stats() at the end of the trace, before the final free-all. */
  statsAtEnd: HeapStats;
  /** heap.stats() at the sample where the heap held the most arenas (and then the most bytes in use). */
  statsAtPeak: HeapStats;
  /** heap.debugStats() at the end of the trace, when asked for. */
  debugStats?: string;
  /** When asked for (MeasureOptions.heapMap): the heap map at the peak (where statsAtPeak is) and after free-all. */
  maps?: { peak: HeapMap; afterFree: HeapMap };
  /** The heap's arenas were transparent huge pages (heap.hugePages). */
  hugePages: boolean;
}

export interface MeasureOptions {
  /** Options of every Heap made. */
  heap?: HeapOptions;
  /** Timed replays. @defaultValue 5 */
  reps?: number;
  /** Samples of the sampled replay. @defaultValue 200 */
  samples?: number;
  /** Operations the untimed warm-up replays run at least (at least one replay). @defaultValue WARM_UP_OPS */
  warmUpOps?: number;
  /** Keep heap.debugStats() at the end of the trace. */
  debugStats?: boolean;
  /** Keep the heap map (lib/heap-map.ts) at the peak and after free-all. */
  heapMap?: boolean;
  /** Called as the work advances: `done` of `total` steps (timed replays, then samples). */
  onProgress?: (done: number, total: number) => void;
}

function point(heap: Heap, gc = false): MemoryPoint {
  if (gc) collectGarbage();
  return { rss: rssBytes(), heapResident: heap.residentBytes() };
}

/** The timed part of a measurement: a heap kept alive (the caller destroys it) and its times. */
export interface TimedReplays {
  heap: Heap;
  /** Time per operation of each timed replay, in order. */
  runs: number[];
}

/**
 * What a measurement's step may ask of its runner: a pause of IDLE_MS with no call into the heap (for
 * `afterIdle`). The runner answers whether it waited: only the yielding runner can (a synchronous one would
 * keep the heap's own timers from running, and measure nothing).
 */
const IDLE = 'idle';
type Step = typeof IDLE | undefined;
/**
 * Operations the untimed warm-up replays run at least (whole replays: at least one). Counted with
 * `node --trace-opt --trace-deopt` over the three timed replays that follow, on the five benchmark traces: after
 * 3 million operations V8 still compiled or deoptimized 0-10 functions during them (pool transitions, span
 * bins: slow paths that run a few times per thousand operations), after 10 million 0-3.
 */
export const WARM_UP_OPS = 10_000_000;

/** How long `afterIdle` waits after free-all, in ms. */
export const IDLE_MS = 1000;

/** Runs a measurement's steps to the end in one go. */
function runSteps<T>(steps: Generator<Step, T, boolean>): T {
  for (let waited = false; ; ) {
    const r = steps.next(waited);
    if (r.done) return r.value;
    waited = false;
  }
}

/**
 * Runs a measurement's steps, letting the event loop run between them (a signal handler, say: Ctrl-C during a
 * progress bar). The steps are the same as runSteps's, so are the numbers; no clock runs across a pause.
 */
async function runStepsYielding<T>(steps: Generator<Step, T, boolean>): Promise<T> {
  for (let waited = false; ; ) {
    const r = steps.next(waited);
    if (r.done) return r.value;
    if (r.value === IDLE) await new Promise<void>((resolve) => setTimeout(resolve, IDLE_MS));
    else await new Promise<void>((resolve) => setImmediate(resolve));
    waited = r.value === IDLE;
  }
}

function* timing(
  trace: Trace,
  heapOptions: HeapOptions | undefined,
  reps: number,
  onRep?: () => void,
  warmUpOps = WARM_UP_OPS,
): Generator<Step, TimedReplays, boolean> {
  if (!Number.isSafeInteger(reps) || reps < 1)
    throw new RangeError(`reps must be a positive integer, got ${reps}`);
  if (!Number.isSafeInteger(warmUpOps) || warmUpOps < 0)
    throw new RangeError(`warmUpOps must be a whole number, got ${warmUpOps}`);
  const heap = new Heap(heapOptions);
  const runs: number[] = [];
  try {
    const ptrs = new Uint32Array(trace.objects);
    for (let done = 0; done === 0 || (done < warmUpOps && trace.length > 0); done += trace.length) {
      replay(heap, trace, ptrs);
      freeAll(heap, ptrs);
    }
    for (let r = 0; r < reps; r++) {
      yield;
      const t0 = process.hrtime.bigint();
      replay(heap, trace, ptrs);
      const ns = Number(process.hrtime.bigint() - t0);
      runs.push(trace.length === 0 ? 0 : ns / trace.length);
      freeAll(heap, ptrs);
      onRep?.();
    }
    heap.trim();
  } catch (err) {
    heap.destroy();
    throw err;
  }
  return { heap, runs };
}

/**
 * Untimed warm-up replays (at least one, and at least `warmUpOps` operations, WARM_UP_OPS by default), then
 * `reps` timed replays on the same heap, each followed by an untimed free-all.
 */
export function timeReplays(
  trace: Trace,
  heapOptions: HeapOptions | undefined,
  reps: number,
  onRep?: () => void,
  warmUpOps?: number,
): TimedReplays {
  return runSteps(timing(trace, heapOptions, reps, onRep, warmUpOps));
}

/** timeReplays, letting the event loop run between replays. */
export function timeReplaysAsync(
  trace: Trace,
  heapOptions: HeapOptions | undefined,
  reps: number,
  onRep?: () => void,
  warmUpOps?: number,
): Promise<TimedReplays> {
  return runStepsYielding(timing(trace, heapOptions, reps, onRep, warmUpOps));
}

function* measuring(trace: Trace, options: MeasureOptions): Generator<Step, ReplayMeasurement, boolean> {
  const reps = options.reps ?? 5;
  const samples = Math.max(1, Math.min(options.samples ?? 200, trace.length || 1));
  const progress = options.onProgress;
  const total = samples + reps;
  let done = 0;
  const timed = yield* timing(trace, options.heap, reps, () => progress?.(++done, total), options.warmUpOps);
  timed.heap.destroy();
  return yield* sampling(trace, timed.runs, { ...options, onProgress: () => progress?.(++done, total) });
}

/** Replays `trace` `reps` times timed and once sampled; see the module comment. */
export function measureReplay(trace: Trace, options: MeasureOptions = {}): ReplayMeasurement {
  return runSteps(measuring(trace, options));
}

/** measureReplay, letting the event loop run between steps: it also measures `afterIdle`. */
export function measureReplayAsync(trace: Trace, options: MeasureOptions = {}): Promise<ReplayMeasurement> {
  return runStepsYielding(measuring(trace, options));
}

/** The sampled replay on a fresh heap, completing a measurement whose timed replays gave `runs`. */
export function sampleReplay(trace: Trace, runs: number[], options: MeasureOptions = {}): ReplayMeasurement {
  return runSteps(sampling(trace, runs, options));
}

/** sampleReplay, letting the event loop run between samples. */
export function sampleReplayAsync(
  trace: Trace,
  runs: number[],
  options: MeasureOptions = {},
): Promise<ReplayMeasurement> {
  return runStepsYielding(sampling(trace, runs, options));
}

function* sampling(
  trace: Trace,
  runs: number[],
  options: MeasureOptions,
): Generator<Step, ReplayMeasurement, boolean> {
  const samples = Math.max(1, Math.min(options.samples ?? 200, trace.length || 1));
  const progress = options.onProgress;
  // The sampled replay.
  // Twice: the first collection frees what the second can then give back (a loaded trace's text, say).
  collectGarbage();
  collectGarbage();
  const rssBefore = rssBytes();
  const heap = new Heap(options.heap);
  let measurement: Omit<ReplayMeasurement, 'nsPerOp' | 'nsPerOpRuns' | 'reps'>;
  try {
    const baseline = { rss: rssBefore, heapResident: heap.residentBytes() };
    const ptrs = new Uint32Array(trace.objects);
    const timeline: TimelineSample[] = [{ op: 0, ...baseline }];
    const peak = { ...baseline };
    let statsAtPeak = heap.stats();
    let mapAtPeak = options.heapMap ? heapMap(heap) : undefined;
    for (let s = 1; s <= samples; s++) {
      yield;
      const from = Math.floor(((s - 1) * trace.length) / samples);
      const to = Math.floor((s * trace.length) / samples);
      replay(heap, trace, ptrs, from, to);
      const p = point(heap);
      timeline.push({ op: to, ...p });
      peak.rss = Math.max(peak.rss, p.rss);
      peak.heapResident = Math.max(peak.heapResident, p.heapResident);
      const st = heap.stats();
      if (
        st.arenas.current > statsAtPeak.arenas.current ||
        (st.arenas.current === statsAtPeak.arenas.current && st.bytesInUse > statsAtPeak.bytesInUse)
      ) {
        statsAtPeak = st;
        if (options.heapMap) mapAtPeak = heapMap(heap);
      }
      progress?.(s, samples);
    }
    const end = point(heap, true);
    const statsAtEnd = heap.stats();
    const debugStats = options.debugStats ? heap.debugStats() : undefined;
    freeAll(heap, ptrs);
    const afterFree = point(heap, true);
    const mapAfterFree = options.heapMap ? heapMap(heap) : undefined;
    timeline.push({ op: trace.length, ...afterFree });
    const idled = yield IDLE;
    const afterIdle = idled ? point(heap) : undefined;
    heap.trim();
    const afterTrim = point(heap);
    measurement = {
      trace: trace.name.replace(/^.*[\\/]/, ''),
      ops: trace.length,
      objects: trace.objects,
      baseline,
      peak,
      end,
      afterFree,
      ...(afterIdle === undefined ? {} : { afterIdle }),
      afterTrim,
      timeline,
      statsAtEnd,
      statsAtPeak,
      ...(debugStats === undefined ? {} : { debugStats }),
      ...(mapAtPeak && mapAfterFree ? { maps: { peak: mapAtPeak, afterFree: mapAfterFree } } : {}),
      hugePages: heap.hugePages,
    };
  } finally {
    heap.destroy();
  }

  return { ...measurement, reps: runs.length, nsPerOp: Math.min(...runs), nsPerOpRuns: runs };
}
