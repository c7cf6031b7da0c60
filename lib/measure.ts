/**
 * Measuring a trace's replay through a Heap: the time per operation (best of N timed replays, each on a fresh
 * heap) and the memory of one sampled replay — process RSS and the heap's resident bytes at the baseline, the
 * peak, the end of the trace and after freeing every block still live, plus the heap's statistics at the end of
 * the trace and at its peak. `pymalloc replay`, `pymalloc tune` and `npm run bench` are built on it.
 *
 * The sampled replay runs first and doubles as the JIT's warm-up; the timed replays read no clock inside the
 * replay loop.
 */
import { Heap, type HeapOptions, type HeapStats } from './heap';
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
  /** After heap.trim() (which returns the cached spans and the arena kept against thrashing). */
  afterTrim: MemoryPoint;
  timeline: TimelineSample[];
  /** heap.stats() at the end of the trace, before the final free-all. */
  statsAtEnd: HeapStats;
  /** heap.stats() at the sample where the heap held the most arenas (and then the most bytes in use). */
  statsAtPeak: HeapStats;
  /** heap.debugStats() at the end of the trace, when asked for. */
  debugStats?: string;
}

export interface MeasureOptions {
  /** Options of every Heap made. */
  heap?: HeapOptions;
  /** Timed replays. @defaultValue 5 */
  reps?: number;
  /** Samples of the sampled replay. @defaultValue 200 */
  samples?: number;
  /** Keep heap.debugStats() at the end of the trace. */
  debugStats?: boolean;
  /** Called as the work advances: `done` of `total` steps (samples, then timed replays). */
  onProgress?: (done: number, total: number) => void;
}

function point(heap: Heap, gc = false): MemoryPoint {
  if (gc) collectGarbage();
  return { rss: rssBytes(), heapResident: heap.residentBytes() };
}

/** Replays `trace` once sampled and `reps` times timed; see the module comment. */
export function measureReplay(trace: Trace, options: MeasureOptions = {}): ReplayMeasurement {
  const reps = options.reps ?? 5;
  const samples = Math.max(1, Math.min(options.samples ?? 200, trace.length || 1));
  if (!Number.isSafeInteger(reps) || reps < 1)
    throw new RangeError(`reps must be a positive integer, got ${reps}`);
  const total = samples + reps;
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
    for (let s = 1; s <= samples; s++) {
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
      }
      progress?.(s, total);
    }
    const end = point(heap, true);
    const statsAtEnd = heap.stats();
    const debugStats = options.debugStats ? heap.debugStats() : undefined;
    freeAll(heap, ptrs);
    const afterFree = point(heap, true);
    timeline.push({ op: trace.length, ...afterFree });
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
      afterTrim,
      timeline,
      statsAtEnd,
      statsAtPeak,
      ...(debugStats === undefined ? {} : { debugStats }),
    };
  } finally {
    heap.destroy();
  }

  // The timed replays, each on a fresh heap.
  const runs: number[] = [];
  for (let r = 0; r < reps; r++) {
    const h = new Heap(options.heap);
    try {
      const ptrs = new Uint32Array(trace.objects);
      const t0 = process.hrtime.bigint();
      replay(h, trace, ptrs);
      const ns = Number(process.hrtime.bigint() - t0);
      runs.push(trace.length === 0 ? 0 : ns / trace.length);
      freeAll(h, ptrs);
    } finally {
      h.destroy();
    }
    progress?.(samples + r + 1, total);
  }
  return { ...measurement, reps, nsPerOp: Math.min(...runs), nsPerOpRuns: runs };
}
