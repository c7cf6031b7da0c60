/** What every allocator the benchmark compares reports for one trace. */

/** One measured replay of a trace through one allocator. */
export interface PeerRun {
  /** Allocator name as shown in the table, e.g. 'pymalloc (this)', 'CPython pymalloc', 'glibc malloc'. */
  peer: string;
  /** Trace label (file base name). */
  trace: string;
  /** Operations in the trace. */
  ops: number;
  /** Best time per operation over the repetitions, nanoseconds. */
  nsPerOp: number;
  /** Process RSS in bytes before the replay, at its peak, at the end of the trace, and after freeing every block still live. */
  rssBaseline: number;
  rssPeak: number;
  rssEnd: number;
  rssAfterFree: number;
  /** Process RSS `idleMs` after that free-all with no call: what the allocator gave back by itself. */
  rssAfterIdle: number;
  /** The idle of rssAfterIdle, ms (1000 in a measurement; 0 in a quick run, when it equals rssAfterFree). */
  idleMs: number;
  /** RSS samples during one (untimed) replay: [operation index, RSS bytes]; the last sample is after free-all. */
  timeline: Array<[number, number]>;
  /** Operations actually replayed when the peer is capped (e.g. @thi.ng/malloc); absent when it ran the whole trace. */
  cappedAt?: number;
}

/** A peer that could not run here says why, e.g. no libpython. */
export interface PeerSkipped {
  peer: string;
  trace: string;
  skipped: string;
}

export type PeerOutcome = PeerRun | PeerSkipped;

export function isSkipped(o: PeerOutcome): o is PeerSkipped {
  return 'skipped' in o;
}
