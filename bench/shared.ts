/**
 * Shared heaps across threads, measured (docs/benchmarks.md, "Shared heaps"):
 *
 * 1. Passing records from a worker to the main thread: a worker makes `--records` small records (a u32 id, a
 *    f64 value, a u32 flag: 16 bytes) and the main thread reads each one and is done with it, in three ways, in
 *    the same run:
 *    - `shared heap`: each record is a block of a shared heap; its pointer goes through a ring of Atomics in a
 *      SharedArrayBuffer; the main thread reads the block and frees it (a cross-thread free);
 *    - `postMessage objects`: batches of plain objects, structured-cloned;
 *    - `postMessage transfer`: batches packed into an ArrayBuffer that is transferred (no copy).
 *    Reported: ns per record from the first record made to the last one read, best of `--rounds`.
 * 2. Throughput with 1 and 2 workers on one shared heap: each worker mallocs and frees `--ops` small blocks
 *    (sizes 8 to 256, a quarter of its frees are of blocks another worker made), timed together.
 *
 *   npm run build:ts && node dist/bench/shared.js [--records N] [--ops N] [--rounds N] [--json]
 *
 * A 2-core machine shows 2 workers against 1; wider scaling needs a machine with more cores.
 */
import { cpus } from 'node:os';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { Heap, type SharedHeapHandle } from '../lib';

const RING = 1 << 16;
const BATCH = 1024;
const RECORD = 16;

type Mode = 'heap' | 'objects' | 'transfer';

interface WorkerJob {
  job: 'produce' | 'churn';
  mode: Mode;
  handle?: SharedHeapHandle;
  ring?: SharedArrayBuffer;
  records: number;
  ops: number;
  id: number;
  start?: SharedArrayBuffer;
  mailboxes?: SharedArrayBuffer;
  workers?: number;
}

function produce(job: WorkerJob): void {
  const port = parentPort!;
  if (job.mode === 'heap') {
    const heap = Heap.attach(job.handle!);
    const ring = new Int32Array(job.ring!);
    // ring[0]: records written; ring[1]: records read; entries from 2 on. Published 64 at a time, and the
    // reader's index re-read only when the ring looks full: one cache line bouncing per record would cost more
    // than the record.
    let read = 0;
    for (let i = 0; i < job.records; i++) {
      const p = heap.malloc(RECORD);
      heap.u32[p >>> 2] = i;
      heap.f64[(p + 8) >>> 3] = i * 0.5;
      heap.u32[(p + 4) >>> 2] = 1;
      while (i - read >= RING - 2) {
        read = Atomics.load(ring, 1);
        if (i - read >= RING - 2) Atomics.wait(ring, 1, read, 1);
      }
      ring[2 + (i % (RING - 2))] = p;
      if ((i & 63) === 63) {
        Atomics.store(ring, 0, i + 1);
        if ((i & 4095) === 4095) Atomics.notify(ring, 0);
      }
    }
    Atomics.store(ring, 0, job.records);
    Atomics.notify(ring, 0);
    heap.detach();
    return;
  }
  for (let i = 0; i < job.records; i += BATCH) {
    const n = Math.min(BATCH, job.records - i);
    if (job.mode === 'objects') {
      const batch = new Array(n);
      for (let k = 0; k < n; k++) batch[k] = { id: i + k, value: (i + k) * 0.5, flag: 1 };
      port.postMessage(batch);
    } else {
      const buf = new ArrayBuffer(n * RECORD);
      const u32 = new Uint32Array(buf);
      const f64 = new Float64Array(buf);
      for (let k = 0; k < n; k++) {
        u32[k * 4] = i + k;
        u32[k * 4 + 1] = 1;
        f64[k * 2 + 1] = (i + k) * 0.5;
      }
      port.postMessage(buf, [buf]);
    }
  }
}

function churn(job: WorkerJob): void {
  const heap = Heap.attach(job.handle!);
  const start = new Int32Array(job.start!);
  // Each worker's mailbox: blocks it made for the next worker to free (a cross-thread free).
  const boxes = new Int32Array(job.mailboxes!);
  const BOX = 4096;
  const mine = job.id * (BOX + 2);
  const theirs = ((job.id + 1) % job.workers!) * (BOX + 2);
  Atomics.add(start, 0, 1);
  while (Atomics.load(start, 1) === 0) Atomics.wait(start, 1, 0, 1);
  const live: number[] = [];
  let s = 12345 + job.id;
  for (let op = 0; op < job.ops; op++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    if (live.length < 1000 && (s & 256) === 0) {
      const p = heap.malloc(8 + ((s >>> 10) & 248));
      heap.u32[p >>> 2] = op;
      if ((s & 3) === 0 && job.workers! > 1) {
        const w = boxes[mine + 1]!;
        if (w - Atomics.load(boxes, mine) < BOX) {
          boxes[mine + 2 + (w % BOX)] = p;
          Atomics.store(boxes, mine + 1, w + 1);
          continue;
        }
      }
      live.push(p);
    } else if (live.length > 0) {
      heap.free(live.pop()!);
    }
    if ((op & 63) === 0 && job.workers! > 1) {
      let r = boxes[theirs]!;
      const w = Atomics.load(boxes, theirs + 1);
      for (; r !== w; r++) heap.free(boxes[theirs + 2 + (r % BOX)]! >>> 0);
      Atomics.store(boxes, theirs, r);
    }
  }
  for (const p of live) heap.free(p);
  parentPort!.postMessage('done');
  heap.detach();
}

if (!isMainThread && workerData?.job) {
  const job = workerData as WorkerJob;
  if (job.job === 'produce') produce(job);
  else churn(job);
}

/** ns per record to pass `records` records from a worker to this thread in `mode`. */
async function passRecords(mode: Mode, records: number): Promise<number> {
  const heap = mode === 'heap' ? new Heap({ shared: true }) : undefined;
  const ring = new SharedArrayBuffer(4 * RING);
  const r32 = new Int32Array(ring);
  let sum = 0;
  const t0 = process.hrtime.bigint();
  const worker = new Worker(__filename, {
    workerData: {
      job: 'produce',
      mode,
      handle: heap?.handle,
      ring,
      records,
      ops: 0,
      id: 0,
    } satisfies WorkerJob,
  });
  const exited = new Promise((resolve, reject) => {
    worker.once('exit', resolve);
    worker.once('error', reject);
  });
  if (heap !== undefined) {
    let read = 0;
    while (read < records) {
      const written = Atomics.load(r32, 0);
      if (written === read) {
        Atomics.wait(r32, 0, written, 1);
        continue;
      }
      for (; read < written; read++) {
        const p = r32[2 + (read % (RING - 2))]! >>> 0;
        sum += heap.u32[p >>> 2]! + heap.f64[(p + 8) >>> 3]! + heap.u32[(p + 4) >>> 2]!;
        heap.free(p);
      }
      Atomics.store(r32, 1, read);
      Atomics.notify(r32, 1);
    }
  } else {
    let read = 0;
    await new Promise<void>((resolve) => {
      worker.on('message', (m: unknown) => {
        if (mode === 'objects') {
          for (const o of m as { id: number; value: number; flag: number }[]) sum += o.id + o.value + o.flag;
          read += (m as unknown[]).length;
        } else {
          const u32 = new Uint32Array(m as ArrayBuffer);
          const f64 = new Float64Array(m as ArrayBuffer);
          const n = u32.length / 4;
          for (let k = 0; k < n; k++) sum += u32[k * 4]! + f64[k * 2 + 1]! + u32[k * 4 + 1]!;
          read += n;
        }
        if (read >= records) resolve();
      });
    });
  }
  const ns = Number(process.hrtime.bigint() - t0) / records;
  await exited;
  const expected = (records * (records - 1)) / 2 + ((records * (records - 1)) / 2) * 0.5 + records;
  if (sum !== expected) throw new Error(`shared bench: ${mode} read ${sum}, expected ${expected}`);
  if (heap !== undefined) {
    heap.trim();
    if (heap.stats().blocksInUse !== 0) throw new Error('shared bench: records left in the heap');
    heap.destroy();
  }
  return ns;
}

/** Operations per second of `workers` workers churning one shared heap at once. */
async function throughput(workers: number, ops: number): Promise<number> {
  const heap = new Heap({ shared: true });
  const start = new SharedArrayBuffer(8);
  const s32 = new Int32Array(start);
  const mailboxes = new SharedArrayBuffer(4 * workers * (4096 + 2));
  const ws = Array.from(
    { length: workers },
    (_, id) =>
      new Worker(__filename, {
        workerData: {
          job: 'churn',
          mode: 'heap',
          handle: heap.handle,
          records: 0,
          ops,
          id,
          start,
          mailboxes,
          workers,
        } satisfies WorkerJob,
      }),
  );
  // Every listener before the workers can finish: a worker that has exited emits nothing more.
  const done = ws.map(
    (w) =>
      new Promise((resolve, reject) => {
        w.once('message', resolve);
        w.once('error', reject);
      }),
  );
  const exits = ws.map((w) => new Promise((resolve) => w.once('exit', resolve)));

  while (Atomics.load(s32, 0) < workers) await new Promise((r) => setTimeout(r, 1));
  const t0 = process.hrtime.bigint();
  Atomics.store(s32, 1, 1);
  Atomics.notify(s32, 1);
  await Promise.all(done);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  await Promise.all(exits);
  heap.trim();
  heap.check();
  heap.destroy();
  return (workers * ops) / seconds;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const arg = (name: string, dflt: number) => {
    const i = argv.indexOf(name);
    return i >= 0 ? Number(argv[i + 1]) : dflt;
  };
  const records = arg('--records', 1_000_000);
  const ops = arg('--ops', 5_000_000);
  const rounds = arg('--rounds', 3);
  const json = argv.includes('--json');
  const modes: Mode[] = ['heap', 'objects', 'transfer'];
  const best: Record<Mode, number> = { heap: Infinity, objects: Infinity, transfer: Infinity };
  for (let r = 0; r < rounds; r++) {
    for (const mode of r % 2 === 0 ? modes : [...modes].reverse()) {
      best[mode] = Math.min(best[mode], await passRecords(mode, records));
    }
  }
  const tput: Record<string, number> = { 1: 0, 2: 0 };
  for (let r = 0; r < rounds; r++) {
    for (const w of r % 2 === 0 ? [1, 2] : [2, 1]) tput[w] = Math.max(tput[w]!, await throughput(w, ops));
  }
  const machine = `${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores, Node ${process.versions.node}`;
  const result = { machine, records, ops, rounds, nsPerRecord: best, opsPerSecond: tput };
  if (json) {
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return;
  }
  process.stdout.write(
    [
      machine,
      `${records} records of ${RECORD} bytes from a worker to the main thread (best of ${rounds}):`,
      '| way | ns per record | × shared heap |',
      '| --- | ---: | ---: |',
      ...modes.map((m) => `| ${m} | ${best[m].toFixed(1)} | ${(best[m] / best.heap).toFixed(2)} |`),
      '',
      `${ops} malloc/free operations per worker on one shared heap (best of ${rounds}):`,
      '| workers | million ops per second | × 1 worker |',
      '| ---: | ---: | ---: |',
      ...[1, 2].map((w) => `| ${w} | ${(tput[w]! / 1e6).toFixed(1)} | ${(tput[w]! / tput[1]!).toFixed(2)} |`),
      '',
    ].join('\n'),
  );
}

if (isMainThread && require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`shared bench: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  });
}
