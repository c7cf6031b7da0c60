/**
 * What a 64-bit getter of the generated accessors costs: it returns a bigint (allocated), where a 32-bit getter
 * returns a number from a typed array. Times 2×10^7 reads of each on one record, plus reading the same 64-bit
 * member as two 32-bit halves combined into a number (exact below 2^53, no allocation), and counts the garbage
 * collections each loop causes (perf_hooks 'gc' entries).
 *
 *   npm run build:ts && node --expose-gc dist/bench/getters64.js
 *
 * Measured on this project's machine (Intel Xeon, 2 vCPUs shared with other jobs, Node 20), so the absolute
 * figures are noisy; one run gave 7.6 ns and 0 GCs per uint32 read, 34.2 ns and 194 GCs for the bigint getter,
 * 21.5 ns and 78 GCs for the two halves (the number they make beyond 2^31 is a heap number when it escapes).
 */
import { PerformanceObserver } from 'node:perf_hooks';
import ts from 'typescript';
import { computeLayout, emitTs, getTarget, struct, t } from '../codegen';

const READS = 2e7;

type Getter = (m: unknown, p: number) => number | bigint;

function accessors(): { views: unknown; get64: Getter; get32: Getter; halves: Getter } {
  const rec = struct('bench_rec', { a: t.uint64, b: t.uint32 });
  const source = emitTs(computeLayout([rec], getTarget('x86_64-linux-gnu')), {
    source: 'bench/getters64.ts',
  });
  const js = ts.transpileModule(source, {
    compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022 },
  }).outputText;
  const mod: Record<string, Getter> = {};
  new Function('exports', js)(mod);
  const buf = new ArrayBuffer(64);
  const views = {
    u8: new Uint8Array(buf),
    i8: new Int8Array(buf),
    u16: new Uint16Array(buf),
    i16: new Int16Array(buf),
    u32: new Uint32Array(buf),
    i32: new Int32Array(buf),
    f32: new Float32Array(buf),
    f64: new Float64Array(buf),
    u64: new BigUint64Array(buf),
    i64: new BigInt64Array(buf),
    dv: new DataView(buf),
    baseHi: 0,
  };
  views.u64[0] = 123456789012345n;
  views.u32[2] = 42;
  const halves: Getter = (m, p) => {
    const u32 = (m as { u32: Uint32Array }).u32;
    const w = p >>> 2;
    return u32[w]! + u32[w + 1]! * 2 ** 32;
  };
  return { views, get64: mod['bench_rec_get_a']!, get32: mod['bench_rec_get_b']!, halves };
}

/** Counts the GCs that happen while `loop` runs (entries arrive asynchronously, so wait a turn after it). */
async function measure(
  name: string,
  loop: () => number,
): Promise<{ name: string; nsPerRead: number; gcs: number }> {
  let gcs = 0;
  const obs = new PerformanceObserver((list) => {
    gcs += list.getEntries().length;
  });
  (globalThis as { gc?: () => void }).gc?.();
  await new Promise((r) => setImmediate(r));
  obs.observe({ entryTypes: ['gc'] });
  const start = process.hrtime.bigint();
  const sink = loop();
  const ns = Number(process.hrtime.bigint() - start);
  await new Promise((r) => setTimeout(r, 50));
  obs.disconnect();
  if (sink === -1) console.log(sink);
  return { name, nsPerRead: ns / READS, gcs };
}

/** Where each bigint read lands, so that it escapes and is really allocated. */
const kept: bigint[] = [0n];

async function main(): Promise<void> {
  const { views, get64, get32, halves } = accessors();
  if (halves(views, 0) !== Number(get64(views, 0)))
    throw new Error('two halves disagree with the bigint getter');
  // One monomorphic loop per getter, each run once to warm up before it is timed.
  const loops: [string, () => number][] = [
    [
      'uint32 getter (number)',
      () => {
        let s = 0;
        for (let i = 0; i < READS; i++) s += get32(views, 0) as number;
        return s;
      },
    ],
    [
      'uint64 getter (bigint)',
      () => {
        for (let i = 0; i < READS; i++) kept[0] = get64(views, 0) as bigint;
        return Number(kept[0]! & 1n);
      },
    ],
    [
      'uint64 as two 32-bit halves (number)',
      () => {
        let s = 0;
        for (let i = 0; i < READS; i++) s += halves(views, 0) as number;
        return s;
      },
    ],
  ];
  const rows = [];
  for (const [name, loop] of loops) {
    loop();
    rows.push(await measure(name, loop));
  }
  console.log(`| read (${READS.toExponential(0)} times) | ns/read | GCs |`);
  console.log('| --- | --- | --- |');
  for (const r of rows) console.log(`| ${r.name} | ${r.nsPerRead.toFixed(1)} | ${r.gcs} |`);
}

void main();
