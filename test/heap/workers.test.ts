import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Heap } from '../../lib';
import { runWorker } from '../run-worker';

const lib = join(__dirname, '..', '..', 'dist', 'lib', 'index.js');

describe('heaps and threads', () => {
  test('each worker thread makes its own heaps', async () => {
    // The worker runs the compiled library (npm install builds dist/); say so plainly if it is missing.
    expect(existsSync(lib) ? 'built' : `missing ${lib}: run npm run build:ts`).toBe('built');
    const run = async () => {
      const { messages, exitCode } = await runWorker<{
        ok: boolean;
        blocks: number;
        bAfter: number;
        aViews: number;
      }>(join(__dirname, 'fixtures', 'worker-heap.js'), { workerData: { lib } });
      expect(exitCode).toBe(0);
      expect(messages).toHaveLength(1);
      return messages[0];
    };
    const results = await Promise.all([run(), run()]);
    for (const r of results) expect(r).toEqual({ ok: true, blocks: 10000, bAfter: 10000, aViews: 0 });
  });

  test('several heaps in one thread are independent; destroying one returns all its memory', () => {
    const a = new Heap({ reserve: 64 * 1024 * 1024 });
    const b = new Heap({ reserve: 64 * 1024 * 1024 });
    const p = a.malloc(100);
    const q = b.malloc(100);
    expect(p).toBe(q); // same offset, different memory
    a.u8[p] = 1;
    b.u8[q] = 2;
    expect(a.u8[p]).toBe(1);
    expect(b.addressOf(q)).not.toBe(a.addressOf(p));
    for (let i = 0; i < 20000; i++) a.u8[a.malloc(400)] = 1;
    expect(a.residentBytes()).toBeGreaterThan(7 * 1024 * 1024); // 20000 blocks of 400 bytes, each touched
    a.destroy();
    expect(a.u8.length).toBe(0);
    expect(b.u8[q]).toBe(2);
    b.check();
    b.destroy();
  });
});
