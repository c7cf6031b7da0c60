/**
 * JavaScript emitter: the accessors of emit-ts.ts as plain JavaScript (CommonJS or an ES module), with a
 * declaration file (.d.ts) beside it, for users without a TypeScript build.
 *
 * Both are derived from emitTs's output, whose top level this module knows exactly: `export interface
 * LayoutViews { … }`, `export const NAME = VALUE;`, `export function NAME(params): R {` … `}` with untyped
 * bodies, and the module's host check (`if (…) {` … `}`). Anything else at the top level is a bug in one of the two emitters, and throws rather than emit
 * something half-converted.
 */

import { type EmitTsOptions, emitTs } from './emit-ts';
import type { Layout } from './layout';

/** `cjs`: `exports.NAME = …` (named exports that Node's ES module loader also sees); `esm`: `export`. */
export type JsModuleKind = 'cjs' | 'esm';

export interface EmitJsOptions extends EmitTsOptions {
  readonly module: JsModuleKind;
}

const CONST = /^export const ([A-Za-z_$][\w$]*) = (-?\d+);$/;
const FUNCTION = /^export function ([A-Za-z_$][\w$]*)\((.*)\): ([\w ]+) \{$/;

type Item =
  | { readonly kind: 'comment'; readonly line: string }
  | { readonly kind: 'interface'; readonly lines: readonly string[] }
  /** A top-level statement block (the module's host check): kept as it is in JavaScript, not declared. */
  | { readonly kind: 'statement'; readonly lines: readonly string[] }
  | { readonly kind: 'const'; readonly name: string; readonly value: string }
  | {
      readonly kind: 'function';
      readonly name: string;
      readonly params: readonly { readonly name: string; readonly type: string }[];
      readonly returns: string;
      readonly body: readonly string[];
    };

function parseItems(ts: string): Item[] {
  const lines = ts.split('\n');
  const items: Item[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line === '' || line.startsWith('//') || line.startsWith('/**')) {
      items.push({ kind: 'comment', line });
      continue;
    }
    if (line === 'export interface LayoutViews {') {
      const body: string[] = [line];
      while (lines[++i] !== '}') body.push(lines[i]);
      body.push('}');
      items.push({ kind: 'interface', lines: body });
      continue;
    }
    if (line.startsWith('if (')) {
      const body: string[] = [line];
      while (lines[++i] !== '}') body.push(lines[i]);
      body.push('}');
      items.push({ kind: 'statement', lines: body });
      continue;
    }
    const c = CONST.exec(line);
    if (c) {
      items.push({ kind: 'const', name: c[1], value: c[2] });
      continue;
    }
    const f = FUNCTION.exec(line);
    if (f) {
      const params = f[2].split(', ').map((p) => {
        const [name, type] = p.split(': ');
        return { name, type };
      });
      const body: string[] = [];
      while (lines[++i] !== '}') body.push(lines[i]);
      items.push({ kind: 'function', name: f[1], params, returns: f[3], body });
      continue;
    }
    throw new Error(`emit-js: unexpected line ${i + 1} of the TypeScript accessors: ${line}`);
  }
  return items;
}

/** The accessors as JavaScript. */
export function emitJs(layout: Layout, options: EmitJsOptions): string {
  const items = parseItems(emitTs(layout, options));
  const out: string[] = [];
  const cjs = options.module === 'cjs';
  if (cjs) out.push("'use strict';");
  items.forEach((item, i) => {
    switch (item.kind) {
      case 'comment':
        // The interface's own doc comment goes with it into the .d.ts.
        if (!(item.line.startsWith('/**') && items[i + 1]?.kind === 'interface')) out.push(item.line);
        break;
      case 'interface':
        out.push(
          '// The views (LayoutViews in the .d.ts beside this file): a pymalloc Heap is one; so is any object with',
          '// u8 … i64 typed arrays and a DataView over one buffer, and baseHi, the high word of pointer fields.',
        );
        break;
      case 'statement':
        out.push(...item.lines);
        break;
      case 'const':
        out.push(
          cjs ? `exports.${item.name} = ${item.value};` : `export const ${item.name} = ${item.value};`,
        );
        break;
      case 'function': {
        const params = item.params.map((p) => p.name).join(', ');
        out.push(`${cjs ? '' : 'export '}function ${item.name}(${params}) {`, ...item.body, '}');
        if (cjs) out.push(`exports.${item.name} = ${item.name};`);
        break;
      }
    }
  });
  return out.join('\n');
}

/** The declaration file for emitJs's output (either module kind). */
export function emitDts(layout: Layout, options: EmitTsOptions): string {
  const out: string[] = [];
  for (const item of parseItems(emitTs(layout, options))) {
    switch (item.kind) {
      case 'comment':
        out.push(item.line);
        break;
      case 'interface':
        out.push(...item.lines);
        break;
      case 'statement':
        break;
      case 'const':
        out.push(`export declare const ${item.name} = ${item.value};`);
        break;
      case 'function': {
        const params = item.params.map((p) => `${p.name}: ${p.type}`).join(', ');
        out.push(`export declare function ${item.name}(${params}): ${item.returns};`);
        break;
      }
    }
  }
  return out.join('\n');
}
