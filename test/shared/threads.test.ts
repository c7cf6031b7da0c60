/**
 * Shared heaps across worker threads: a differential stress run with cross-thread frees (every block's bytes
 * checked, counts exact, check() in every thread at the end), workers terminated mid-run (their pools adopted),
 * a worker ended while holding the heap lock (an error, never a hang), and destroy() while others allocate.
 * Workers run the compiled library (dist/), as the package's users do.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { Heap } from '../../lib';
import { codeOf } from './helpers';

const lib = join(__dirname, '..', '..', 'dist', 'lib', 'index.js');
const fixtures = join(__dirname, 'fixtures');
const MiB = 1024 * 1024;

interface StressResult {
  id: number;
  counts: {
    malloc: number;
    free: number;
    sent: number;
    received: number;
    remoteFree: number;
    bytesChecked: number;
  };
  blocksInUse: number;
  poolsUsed: number;
}

function onceMessage<T>(w: Worker): Promise<T> {
  return new Promise((resolve, reject) => {
    w.once('message', resolve);
    w.once('error', reject);
  });
}

function exited(w: Worker): Promise<number> {
  return new Promise((resolve) => w.once('exit', resolve));
}

beforeAll(() => {
  expect(existsSync(lib) ? 'built' : `missing ${lib}: run npm run build:ts`).toBe('built');
});

describe('a shared heap across threads', () => {
  test('three threads, cross-thread frees: no byte lost, nothing in use at the end, check() in every thread', async () => {
    const n = 3;
    // 10^7 operations across the three threads (each op a malloc, a free, a hand-off or a drain).
    const ops = Math.ceil(1e7 / n);
    const heap = new Heap({ shared: true });
    const { RING, run } = require(join(fixtures, 'stress.js'));
    const control = new SharedArrayBuffer(4 * (8 + n * n * (RING + 2)));
    const base = { lib, handle: heap.handle, control, n, ops, stress: true };
    try {
      const workers = [1, 2].map(
        (id) => new Worker(join(fixtures, 'stress.js'), { workerData: { ...base, id, seed: 1000 + id } }),
      );
      // Every listener before the workers can finish (a worker that has exited emits nothing more).
      const results = workers.map((w) => onceMessage<StressResult>(w));
      const exits = workers.map(exited);
      const mine: StressResult = run({ ...base, id: 0, seed: 7 }, heap);
      const all = [mine, ...(await Promise.all(results))];
      expect(await Promise.all(exits)).toEqual([0, 0]);
      const total = (k: keyof StressResult['counts']) => all.reduce((s, r) => s + r.counts[k], 0);
      expect(total('malloc')).toBe(total('free'));
      expect(total('sent')).toBe(total('received'));
      expect(total('remoteFree')).toBeGreaterThan(1e6);
      for (const r of all) {
        expect(r.blocksInUse).toBe(0);
        expect(r.poolsUsed).toBe(0);
      }
      heap.check();
      const st = heap.stats();
      expect(st.blocksInUse).toBe(0);
      expect(st.pools.used).toBe(0);
    } finally {
      heap.destroy();
    }
  }, 180_000);

  test('a worker terminated in its fast paths: its pools are adopted, its blocks still valid and freeable', async () => {
    const heap = new Heap({ shared: true, reserve: 256 * MiB });
    try {
      const w = new Worker(join(fixtures, 'terminated.js'), {
        workerData: { lib, handle: heap.handle, mode: 'fast' },
      });
      const { blocks } = await onceMessage<{ blocks: number[] }>(w);
      await new Promise((r) => setTimeout(r, 50));
      await w.terminate();
      blocks.forEach((p, i) => {
        expect(heap.u32[p >>> 2]).toBe(i);
      });
      heap.trim(); // adopts the ended thread's slot
      heap.check();
      for (const p of blocks) heap.free(p);
      heap.trim();
      heap.check();
      // At most the one block the loop had popped when it was stopped stays in use (lost with its thread).
      expect(heap.stats().blocksInUse).toBeLessThanOrEqual(1);
    } finally {
      heap.destroy();
    }
  });

  test('a worker terminated while it holds the heap lock: later calls throw ERR_PYMALLOC_CORRUPT, nothing hangs', async () => {
    const heap = new Heap({ shared: true, reserve: 64 * MiB });
    const p = heap.malloc(40);
    try {
      const w = new Worker(join(fixtures, 'terminated.js'), {
        workerData: { lib, handle: heap.handle, mode: 'lock' },
      });
      expect(await onceMessage<{ locked: boolean }>(w)).toEqual({ locked: true });
      await w.terminate();
      expect(codeOf(() => heap.stats())).toBe('ERR_PYMALLOC_CORRUPT');
      expect(codeOf(() => heap.malloc(100_000))).toBe('ERR_PYMALLOC_CORRUPT');
      // Reading the heap's memory still works; the fast paths of this thread's own pools do too.
      expect(heap.u8[p]).toBeDefined();
      // The callers were told; the heap's own timers (the idle tick, the delayed return) stay quiet about it:
      // no process warning (each is emitted once per heap, and recorded in `warned`).
      heap.free(heap.malloc(40)); // an own fast path, which still works
      await new Promise((r) => setTimeout(r, 400));
      expect([...(heap as unknown as { warned: Set<string> }).warned]).toEqual([]);
    } finally {
      heap.destroy();
    }
    expect(heap.isDestroyed).toBe(true);
  });

  test('destroy() while another thread allocates: its next calls throw ERR_PYMALLOC_DESTROYED', async () => {
    const heap = new Heap({ shared: true, reserve: 64 * MiB });
    const w = new Worker(join(fixtures, 'terminated.js'), {
      workerData: { lib, handle: heap.handle, mode: 'destroyed' },
    });
    const exit = exited(w);
    await onceMessage(w);
    await new Promise((r) => setTimeout(r, 30));
    const seen = onceMessage<{ code: string; ops: number; viewLength: number }>(w);
    heap.destroy();
    const r = await seen;
    expect(r.code).toBe('ERR_PYMALLOC_DESTROYED');
    expect(r.ops).toBeGreaterThan(0);
    expect(r.viewLength).toBe(0);
    expect(await exit).toBe(0);
    expect(codeOf(() => Heap.attach(heap.handle))).toBe('ERR_PYMALLOC_DESTROYED');
  });

  test('workers terminated at random moments never crash the process (child process)', () => {
    const child = spawnSync(process.execPath, [join(fixtures, 'terminate-soak.js'), lib, '12'], {
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(child.signal).toBeNull();
    expect(child.stderr).toBe('');
    expect(child.status).toBe(0);
    const summary = JSON.parse(child.stdout.trim().split('\n').pop()!);
    expect(summary.rounds).toBe(12);
    // Each round ends with a consistent heap (check passed, blocks freed) or with the heap marked corrupt.
    expect(summary.consistent + summary.corrupt).toBe(12);
    expect(summary.consistent).toBeGreaterThan(0);
  }, 150_000);
});
