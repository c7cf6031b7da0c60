/**
 * Replays allocation traces through this allocator under each return policy and prints, per trace and policy,
 * the best time per operation and the heap's resident bytes at the end of the trace and after freeing every
 * block still live. Timing belongs here, not in the tests.
 *
 *   node dist/bench/replay.js [TRACE...] [--reps N]
 *
 * Without trace arguments it uses the project's fixtures (test/fixtures/traces/*.trace.gz).
 */
import { readdirSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { Heap, type ReturnPolicy } from '../lib';
import { freeAll, loadTrace, replay, type Trace } from '../lib/trace';

const POLICIES: ReturnPolicy[] = ['purge', 'cpython', 'never'];

function parseArgs(argv: string[]): { traces: string[]; reps: number } {
  const traces: string[] = [];
  let reps = 5;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--reps') reps = Number(argv[++i]);
    else traces.push(argv[i]);
  }
  if (!Number.isInteger(reps) || reps < 1) throw new Error('--reps must be a positive integer');
  if (traces.length === 0) {
    const dir = join(__dirname, '..', '..', 'test', 'fixtures', 'traces');
    for (const f of readdirSync(dir).sort()) if (f.endsWith('.trace.gz')) traces.push(join(dir, f));
  }
  return { traces, reps };
}

interface Row {
  trace: string;
  policy: ReturnPolicy;
  ops: number;
  nsPerOp: number;
  residentEnd: number;
  residentFreed: number;
}

function measure(trace: Trace, policy: ReturnPolicy, reps: number): Row {
  let best = Number.POSITIVE_INFINITY;
  let residentEnd = 0;
  let residentFreed = 0;
  for (let r = 0; r < reps; r++) {
    const heap = new Heap({ policy });
    const ptrs = new Uint32Array(trace.objects);
    const t0 = process.hrtime.bigint();
    replay(heap, trace, ptrs);
    const ns = Number(process.hrtime.bigint() - t0);
    best = Math.min(best, ns / trace.length);
    residentEnd = heap.residentBytes();
    freeAll(heap, ptrs);
    residentFreed = heap.residentBytes();
    heap.destroy();
  }
  return {
    trace: trace.name.replace(/^.*\//, ''),
    policy,
    ops: trace.length,
    nsPerOp: best,
    residentEnd,
    residentFreed,
  };
}

async function main(): Promise<void> {
  const { traces, reps } = parseArgs(process.argv.slice(2));
  console.log(
    `CPU: ${cpus()[0]?.model ?? 'unknown'} (${cpus().length} cores), Node ${process.version}; best of ${reps}`,
  );
  console.log('| trace | policy | ops | ns/op | resident at end (KiB) | resident after free-all (KiB) |');
  console.log('| --- | --- | ---: | ---: | ---: | ---: |');
  for (const path of traces) {
    const trace = await loadTrace(path);
    for (const policy of POLICIES) {
      const r = measure(trace, policy, reps);
      console.log(
        `| ${r.trace} | ${r.policy} | ${r.ops} | ${r.nsPerOp.toFixed(1)} | ${(r.residentEnd / 1024).toFixed(0)} | ${(r.residentFreed / 1024).toFixed(0)} |`,
      );
    }
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench/replay: ${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
});
