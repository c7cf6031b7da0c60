/**
 * The demo's simulator: the program Evan Jones's Python driver launched once it had freed its scenario. Run by
 * `pymalloc demo` with child_process.fork (compiled to dist/lib/demo/simulator.js), it allocates and touches
 * the same amount of small objects in its own Heap and reports its own RSS to the parent over the IPC channel:
 *   argv: OBJECTS SEED
 *   sends { type: 'started', rssBytes }, then { type: 'progress', bytes, rssBytes } every 1/64 of the work,
 *   then { type: 'done', … } (SimulatorResult) while it still holds everything, and exits.
 * Under the 'never' policy the parent still holds its freed scenario while this runs: the machine needs both.
 */
import { Heap } from '../heap';
import { rssBytes } from '../os';
import { objectSizes } from './mix';

/** What the simulator reports when it holds all its objects. */
export interface SimulatorResult {
  type: 'done';
  objects: number;
  /** Bytes requested and written. */
  bytes: number;
  /** Its RSS before allocating (Node, the addon, the size table). */
  baselineRssBytes: number;
  /** Its RSS holding every object. */
  peakRssBytes: number;
  /** Its heap's resident bytes holding every object. */
  heapResidentBytes: number;
}

export type SimulatorMessage =
  | { type: 'started'; rssBytes: number }
  | { type: 'progress'; bytes: number; rssBytes: number }
  | SimulatorResult;

function send(message: SimulatorMessage): Promise<void> {
  return new Promise((resolve, reject) => {
    process.send!(message, undefined, undefined, (err) => (err ? reject(err) : resolve()));
  });
}

async function simulate(objects: number, seed: number): Promise<void> {
  const sizes = objectSizes(objects, seed);
  const heap = new Heap();
  try {
    const baselineRssBytes = rssBytes();
    await send({ type: 'started', rssBytes: baselineRssBytes });
    const step = Math.max(1, Math.ceil(objects / 64));
    let bytes = 0;
    for (let i = 0; i < objects; ) {
      const end = Math.min(objects, i + step);
      for (; i < end; i++) {
        const n = sizes[i]!;
        const p = heap.malloc(n);
        heap.u8.fill(0x5a, p, p + n);
        bytes += n;
      }
      // Waiting for each message to leave keeps the parent's samples in step with this process's memory.
      await send({ type: 'progress', bytes, rssBytes: rssBytes() });
    }
    await send({
      type: 'done',
      objects,
      bytes,
      baselineRssBytes,
      peakRssBytes: rssBytes(),
      heapResidentBytes: heap.residentBytes(),
    });
  } finally {
    heap.destroy();
  }
}

if (require.main === module) {
  const objects = Number(process.argv[2]);
  const seed = Number(process.argv[3] ?? 1);
  if (!process.send || !Number.isSafeInteger(objects) || objects < 1) {
    process.stderr.write('simulator: run by pymalloc demo (child_process.fork) with OBJECTS [SEED]\n');
    process.exitCode = 2;
  } else {
    simulate(objects, seed).then(
      () => process.disconnect(),
      (err: unknown) => {
        process.stderr.write(`simulator: ${(err as Error)?.message ?? String(err)}\n`);
        process.exitCode = 1;
        process.disconnect();
      },
    );
  }
}
