/**
 * What each decommit mode costs in memory: RSS, the heap's residentBytes() (mincore) and the commit charge
 * (/proc/meminfo Committed_AS, system-wide, so run it on a quiet machine), for a heap made, filled with 256 MiB
 * of small blocks, emptied, trimmed, read whole through its view and destroyed. Each mode runs in a child
 * process of its own. Prints a table (Markdown) and, with --json, the numbers.
 *
 *   npm run build:ts && node dist/bench/memory-modes.js [--json]
 *
 * It also makes default heaps (4 GiB each) until the kernel refuses one (at most 64), in each mode.
 *
 * Run it under each vm.overcommit_memory setting to compare (as root: echo 2 > /proc/sys/vm/overcommit_memory;
 * put 0 back afterwards). Under strict overcommit (2) a 'dontneed' heap's read-write reservation is charged in
 * full; a 'unmap' heap is charged only for what it has committed.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Heap, rssBytes } from '../lib';

const MiB = 2 ** 20;
type Mode = 'dontneed' | 'unmap';

interface Phase {
  phase: string;
  rssMiB: number;
  residentMiB: number;
  committedMiB: number;
  error?: string;
}

function committedAs(): number {
  const m = /Committed_AS:\s+(\d+) kB/.exec(readFileSync('/proc/meminfo', 'latin1'));
  return m ? Number(m[1]) * 1024 : Number.NaN;
}

async function child(mode: Mode): Promise<void> {
  const phases: Phase[] = [];
  const rss0 = rssBytes();
  const c0 = committedAs();
  let h: Heap | undefined;
  const record = (phase: string, error?: string) => {
    const resident = h !== undefined && !h.isDestroyed ? h.residentBytes() : 0;
    phases.push({
      phase,
      rssMiB: (rssBytes() - rss0) / MiB,
      residentMiB: resident / MiB,
      committedMiB: (committedAs() - c0) / MiB,
      ...(error ? { error } : {}),
    });
  };
  try {
    h = new Heap({ decommit: mode });
  } catch (err) {
    record('new Heap()', (err as Error).message);
    process.stdout.write(`${JSON.stringify({ mode, phases })}\n`);
    return;
  }
  record('new Heap()');
  const ps = new Uint32Array((256 * MiB) / 64);
  for (let i = 0; i < ps.length; i++) {
    ps[i] = h.malloc(64);
    h.u8[ps[i]!] = 1;
  }
  record('256 MiB of 64-byte blocks');
  for (let i = 0; i < ps.length; i++) h.free(ps[i]!);
  record('all freed');
  h.trim();
  record('trim()');
  if (mode === 'dontneed') {
    h.u8.indexOf(0xee); // reads all 4 GiB; a 'unmap' heap would fault here
    record('u8.indexOf over the whole heap');
  }
  h.destroy();
  record('destroy()');
  // The destroyed range stays reserved until nothing can reach its buffer: then garbage collection unmaps it.
  h = undefined;
  for (let i = 0; i < 4; i++) {
    (globalThis as { gc?: () => void }).gc?.();
    await new Promise((resolve) => setImmediate(resolve));
  }
  record('collected');
  process.stdout.write(`${JSON.stringify({ mode, phases })}\n`);
}

/** How many default heaps (4 GiB) can be made before the kernel refuses one, and what it says (at most 64). */
function capacity(mode: Mode): { made: number; error?: string } {
  const heaps: Heap[] = [];
  try {
    while (heaps.length < 64) heaps.push(new Heap({ decommit: mode }));
    return { made: heaps.length };
  } catch (err) {
    return { made: heaps.length, error: (err as Error).message };
  } finally {
    for (const h of heaps) h.destroy();
  }
}

function main(): void {
  const json = process.argv.includes('--json');
  const overcommit = readFileSync('/proc/sys/vm/overcommit_memory', 'latin1').trim();
  const results: { mode: Mode; phases: Phase[] }[] = [];
  const capacities: Record<string, { made: number; error?: string }> = {};
  for (const mode of ['dontneed', 'unmap'] as const) {
    const r = spawnSync(process.execPath, ['--expose-gc', __filename, '--child', mode], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`memory-modes child (${mode}) failed: ${r.stderr || r.signal}`);
    results.push(JSON.parse(r.stdout));
    const c = spawnSync(process.execPath, [__filename, '--capacity', mode], { encoding: 'utf8' });
    if (c.status !== 0) throw new Error(`memory-modes capacity (${mode}) failed: ${c.stderr || c.signal}`);
    capacities[mode] = JSON.parse(c.stdout);
  }
  if (json) {
    console.log(JSON.stringify({ overcommit, results, capacities }, null, 2));
    return;
  }
  console.log(`vm.overcommit_memory = ${overcommit}; changes from before new Heap(), in MiB`);
  console.log('| mode | phase | RSS | residentBytes() | Committed_AS |');
  console.log('| --- | --- | ---: | ---: | ---: |');
  const f = (n: number) => n.toFixed(1);
  for (const { mode, phases } of results) {
    for (const p of phases) {
      const tail = p.error
        ? ` | failed: ${p.error.slice(0, 80)} | |`
        : ` | ${f(p.residentMiB)} | ${f(p.committedMiB)} |`;
      console.log(`| ${mode} | ${p.phase} | ${f(p.rssMiB)}${tail}`);
    }
  }
  for (const [mode, c] of Object.entries(capacities)) {
    console.log(
      `${mode}: ${c.made} live heap(s) of 4 GiB made${c.error ? `, then: ${c.error.slice(0, 200)}` : ' (the most tried)'}`,
    );
  }
}

if (process.argv[2] === '--child') void child(process.argv[3] as Mode);
else if (process.argv[2] === '--capacity')
  process.stdout.write(`${JSON.stringify(capacity(process.argv[3] as Mode))}\n`);
else main();
