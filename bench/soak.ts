/**
 * Soak: a long random workload with a bounded live set, watching memory for leaks. Not part of CI's run.
 *
 *   npm run soak -- [--ops 100000000] [--seed 1] [--live 100000] [--sample 1000000] [--policy purge] [--json]
 *   npm run soak -- --leak 1000     (self-test: skips every 1000th free, which the soak must report as a leak)
 *
 * A mix of malloc and calloc (98 % small, 2 % up to 32 KiB, 0.02 % up to 512 KiB), realloc and free holds about
 * `--live` blocks. Every `--sample` operations it records the process RSS (/proc/self/statm) and the heap's
 * resident bytes (mincore). After warm-up (the first fifth of the samples, at least two) neither may exceed its
 * warm-up maximum by more than 5 % (a leak would keep raising it). At the end every block is freed (each one's
 * first byte checked: no data lost), the heap trimmed, and the heap's data region must hold no resident page
 * (its resident bytes back at the baseline measured right after construction, give or take the metadata the
 * run touched) and the process RSS must be near its baseline. Prints a table and a summary; exits 1 on a
 * violation, 2 on a bad option.
 */
import { parseArgs } from 'node:util';
import { Heap, type ReturnPolicy, rssBytes } from '../lib';
import { startProgress } from '../lib/cli/progress';
import { rng } from './generate';

const MiB = 1024 * 1024;
/** Growth allowed over the warm-up maximum. */
const TOLERANCE = 0.05;

interface Options {
  ops: number;
  seed: number;
  live: number;
  sample: number;
  policy: ReturnPolicy;
  json: boolean;
  /** Self-test: forget to free every leak-th block (0: never). */
  leak: number;
}

function usage(message: string): never {
  process.stderr.write(`soak: ${message}\n`);
  process.stderr.write(
    'usage: npm run soak -- [--ops N] [--seed N] [--live N] [--sample N] [--policy P] [--json] [--leak N]\n',
  );
  process.exit(2);
}

function parseOptions(argv: string[]): Options {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        ops: { type: 'string', default: '10000000' },
        seed: { type: 'string', default: '1' },
        live: { type: 'string', default: '100000' },
        sample: { type: 'string', default: '1000000' },
        policy: { type: 'string', default: 'purge' },
        json: { type: 'boolean', default: false },
        leak: { type: 'string', default: '0' },
      },
      strict: true,
    }));
  } catch (err) {
    usage((err as Error).message);
  }
  const int = (name: string, min: number): number => {
    const v = Number(values[name]);
    if (!Number.isSafeInteger(v) || v < min)
      usage(`--${name} must be an integer >= ${min}, got ${values[name]}`);
    return v;
  };
  const policy = values['policy'] as ReturnPolicy;
  if (!['purge', 'cpython', 'never'].includes(policy)) usage(`--policy must be purge, cpython or never`);
  return {
    ops: int('ops', 1),
    seed: int('seed', 0),
    live: int('live', 1),
    sample: int('sample', 1000),
    policy,
    json: values['json'] === true,
    leak: int('leak', 0),
  };
}

interface Sample {
  ops: number;
  live: number;
  liveBytes: number;
  heapResident: number;
  rss: number;
}

function mib(n: number): string {
  return (n / MiB).toFixed(1);
}

function main(): void {
  const o = parseOptions(process.argv.slice(2));
  const r = rng(o.seed);
  const rssBaseline = rssBytes();
  const heap = new Heap({ policy: o.policy });
  // The baseline includes the metadata that a walk of the empty heap reads (check, stats): reading untouched
  // pages maps them too.
  heap.check();
  heap.stats();
  const heapBaseline = heap.residentBytes();
  const dataStart = heap.meta.dataStart;
  const dataResident = () => heap.reservation.residentBytes(dataStart, heap.geometry.reserve - dataStart);

  // The live set, in typed arrays made once, so that the JavaScript heap does not grow with it.
  const ptrs = new Uint32Array(o.live);
  const sizes = new Uint32Array(o.live);
  const tags = new Uint8Array(o.live);
  let live = 0;
  let liveBytes = 0;
  let frees = 0;
  /** The highest address any block reached: the metadata of the pages below it may have been written. */
  let top = 0;
  const size = (): number => {
    const x = r();
    if (x < 0.9798) return 1 + Math.floor(r() * 512);
    if (x < 0.9998) return 513 + Math.floor(r() * 32 * 1024);
    return 64 * 1024 + Math.floor(r() * 448 * 1024);
  };
  const lost = (k: number): never => {
    throw new Error(
      `soak: data lost: block 0x${ptrs[k].toString(16)} (${sizes[k]} bytes) starts with ${heap.u8[ptrs[k]]}, expected ${tags[k]}`,
    );
  };

  const samples: Sample[] = [];
  const progress = startProgress('soak', o.ops, 'ops');
  const t0 = process.hrtime.bigint();
  for (let i = 1; i <= o.ops; i++) {
    const x = r();
    // Below the bound the live set grows on average, at the bound it shrinks: it hovers near --live.
    if (live === 0 || (live < o.live && x < 0.55)) {
      const n = size();
      const p = x < 0.5 ? heap.malloc(n) : heap.calloc(1, n);
      const tag = (i & 0xff) | 1;
      heap.u8[p] = tag;
      if (p + n > top) top = p + n;
      ptrs[live] = p;
      sizes[live] = n;
      tags[live] = tag;
      live++;
      liveBytes += n;
    } else {
      const k = Math.floor(r() * live);
      if (heap.u8[ptrs[k]] !== tags[k]) lost(k);
      if (x < 0.65) {
        const n = size();
        const q = heap.realloc(ptrs[k], n);
        liveBytes += n - sizes[k];
        if (q + n > top) top = q + n;
        ptrs[k] = q;
        sizes[k] = n;
      } else {
        if (o.leak === 0 || ++frees % o.leak !== 0) heap.free(ptrs[k]);
        liveBytes -= sizes[k];
        live--;
        ptrs[k] = ptrs[live];
        sizes[k] = sizes[live];
        tags[k] = tags[live];
      }
    }
    if (i % o.sample === 0) {
      samples.push({ ops: i, live, liveBytes, heapResident: heap.residentBytes(), rss: rssBytes() });
    }
    if ((i & 0xffff) === 0) progress.update(i);
  }
  progress.stop();
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const endStats = heap.stats();
  heap.check();

  // Free everything, checking each block's first byte, then give every free page back.
  for (let k = 0; k < live; k++) {
    if (heap.u8[ptrs[k]] !== tags[k]) lost(k);
    heap.free(ptrs[k]);
  }
  heap.check();
  const trimmed = heap.trim();
  const after = heap.stats();
  const heapAfter = heap.residentBytes();
  const dataAfter = dataResident();
  if (typeof globalThis.gc === 'function') globalThis.gc();
  const rssAfter = rssBytes();

  // The checks.
  const violations: string[] = [];
  const warm = Math.max(2, Math.ceil(samples.length / 5));
  const check = (name: string, get: (s: Sample) => number) => {
    if (samples.length <= warm) return { warmMax: Number.NaN, max: Number.NaN, growth: Number.NaN };
    const warmMax = Math.max(...samples.slice(0, warm).map(get));
    let max = warmMax;
    for (const s of samples.slice(warm)) {
      max = Math.max(max, get(s));
      if (get(s) > warmMax * (1 + TOLERANCE)) {
        violations.push(
          `${name} ${mib(get(s))} MiB at ${s.ops} operations exceeds the warm-up maximum ${mib(warmMax)} MiB by more than ${TOLERANCE * 100}%`,
        );
      }
    }
    return { warmMax, max, growth: max / warmMax - 1 };
  };
  const rss = check('RSS', (s) => s.rss);
  const resident = check('heap resident', (s) => s.heapResident);
  if (samples.length <= warm) {
    violations.push(`only ${samples.length} samples: need more than ${warm} (raise --ops or lower --sample)`);
  }
  if (after.blocksInUse !== 0 || after.arenas.current !== (o.policy === 'never' ? after.arenas.current : 0)) {
    violations.push(
      `after freeing everything: ${after.blocksInUse} blocks, ${after.arenas.current} arenas left`,
    );
  }
  if (o.policy !== 'never' && dataAfter !== 0) {
    violations.push(
      `after freeing everything and trim(): ${dataAfter} bytes of the data region still resident`,
    );
  }
  // The metadata the run wrote (page map and span links of the pages used, arena table) stays resident: at
  // most 12 bytes per page below the highest address used, plus a few pages.
  const metaSlack = Math.ceil(top / heap.geometry.pageSize) * 12 + 16 * heap.geometry.pageSize;
  if (o.policy !== 'never' && heapAfter > heapBaseline + metaSlack) {
    violations.push(
      `heap resident ${mib(heapAfter)} MiB after freeing everything; baseline ${mib(heapBaseline)} MiB (+ metadata ${mib(metaSlack)} MiB)`,
    );
  }
  const rssSlack = Math.max(32 * MiB, 0.1 * rssBaseline);
  if (o.policy !== 'never' && rssAfter > rssBaseline + rssSlack) {
    violations.push(
      `process RSS ${mib(rssAfter)} MiB after freeing everything; baseline ${mib(rssBaseline)} MiB (+ ${mib(rssSlack)} MiB allowed)`,
    );
  }

  const summary = {
    ops: o.ops,
    seed: o.seed,
    live: o.live,
    policy: o.policy,
    seconds: Number(seconds.toFixed(1)),
    nsPerOp: Number(((seconds * 1e9) / o.ops).toFixed(1)),
    samples: samples.length,
    warmupSamples: warm,
    rssBaselineMiB: Number(mib(rssBaseline)),
    rssWarmupMaxMiB: Number(mib(rss.warmMax)),
    rssMaxMiB: Number(mib(rss.max)),
    rssGrowthPercent: Number((rss.growth * 100).toFixed(2)),
    heapResidentWarmupMaxMiB: Number(mib(resident.warmMax)),
    heapResidentMaxMiB: Number(mib(resident.max)),
    heapResidentGrowthPercent: Number((resident.growth * 100).toFixed(2)),
    arenasHighwater: endStats.arenas.highwater,
    arenasAllocatedTotal: endStats.arenas.allocatedTotal,
    trimmedMiB: Number(mib(trimmed)),
    heapResidentBaselineMiB: Number(mib(heapBaseline)),
    heapResidentAfterFreeMiB: Number(mib(heapAfter)),
    dataResidentAfterFreeBytes: dataAfter,
    rssAfterFreeMiB: Number(mib(rssAfter)),
    violations,
  };
  heap.destroy();

  if (o.json) {
    console.log(JSON.stringify({ ...summary, table: samples }, null, 2));
  } else {
    console.log(
      `soak: ${o.ops} operations, seed ${o.seed}, about ${o.live} live blocks, policy ${o.policy}: ${summary.seconds} s (${summary.nsPerOp} ns/op incl. checks)`,
    );
    console.log('| ops (M) | live blocks | live MiB | heap resident MiB | RSS MiB |');
    console.log('| ---: | ---: | ---: | ---: | ---: |');
    for (const s of samples) {
      const mark = samples.indexOf(s) < warm ? ' (warm-up)' : '';
      console.log(
        `| ${(s.ops / 1e6).toFixed(0)}${mark} | ${s.live} | ${mib(s.liveBytes)} | ${mib(s.heapResident)} | ${mib(s.rss)} |`,
      );
    }
    console.log(
      `RSS: baseline ${summary.rssBaselineMiB} MiB, warm-up max ${summary.rssWarmupMaxMiB} MiB, max after warm-up ${summary.rssMaxMiB} MiB (${summary.rssGrowthPercent}%, limit ${TOLERANCE * 100}%), after freeing everything ${summary.rssAfterFreeMiB} MiB`,
    );
    console.log(
      `heap resident: warm-up max ${summary.heapResidentWarmupMaxMiB} MiB, max after warm-up ${summary.heapResidentMaxMiB} MiB (${summary.heapResidentGrowthPercent}%); baseline ${summary.heapResidentBaselineMiB} MiB, after freeing everything ${summary.heapResidentAfterFreeMiB} MiB (data region: ${dataAfter} bytes)`,
    );
    console.log(
      violations.length === 0
        ? 'soak: OK, no leak'
        : `soak: FAILED\n${violations.map((v) => `  - ${v}`).join('\n')}`,
    );
  }
  process.exitCode = violations.length === 0 ? 0 : 1;
}

main();
