/** Evaluates generated TypeScript (the accessors module) in memory, and makes the views it expects. */
import ts from 'typescript';

export function evalTs(source: string): Record<string, unknown> {
  const js = ts.transpileModule(source, {
    compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022 },
  }).outputText;
  const exports: Record<string, unknown> = {};
  new Function('exports', 'require', js)(exports, require);
  return exports;
}

export function makeViews(bytes: number, baseHi: number) {
  const buf = new ArrayBuffer(bytes);
  return {
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
    baseHi,
  };
}
