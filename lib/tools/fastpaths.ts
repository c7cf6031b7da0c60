/**
 * Generates lib/generated/fastpaths.ts: the allocator's fast paths (malloc, free, releaseSmall, realloc of
 * lib/alloc.ts) specialised for the default geometry of each preset, with the geometry's constants folded in as
 * literals. V8 then compiles `p & -16384` instead of a field load, a shift by a register and a tag check, which is
 * worth about a tenth of the time of a small malloc/free in the replays (docs/architecture.md, "Specialised fast
 * paths").
 *
 * The methods are not written twice: they are taken from lib/alloc.ts's syntax tree, and only `this.NAME`
 * property reads of the constants in FoldedConstants are replaced, so the specialised code is the generic code
 * with different spelling of the same values. A heap uses a specialisation only when its own constants equal the
 * folded ones (lib/heap.ts), which is what makes the two equivalent.
 *
 * Usage: node dist/lib/tools/fastpaths.js [--check]   (npm run codegen, npm run codegen:check)
 * Needs the `typescript` package (a devDependency): a repository tool, not part of the published package.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join, posix, relative } from 'node:path';
import type * as TS from 'typescript';
import * as core from '../core';
import { type FoldedConstants, foldedConstants } from '../core';
import * as layout from '../generated/layout';
import { GEOMETRY_PRESETS, type GeometryPreset, metadataLayout, resolveGeometry } from '../geometry';
import { packageRoot } from '../os/native';
import { type SharedFoldedConstants, sharedFoldedConstants } from '../shared/state';

/** The methods of class Allocator that are specialised, in the order they are emitted. */
export const SPECIALISED_METHODS = ['malloc', 'free', 'releaseSmall', 'realloc'] as const;

/** Presets whose default geometry gets a specialisation, and the page size their constants are computed for. */
export const SPECIALISED_PRESETS: readonly GeometryPreset[] = GEOMETRY_PRESETS;
export const SPECIALISED_PAGE_SIZE = 4096;

export const SOURCE = 'lib/alloc.ts';
export const OUTPUT = 'lib/generated/fastpaths.ts';

export interface Specialisation {
  /** Class name in the generated module. */
  name: string;
  preset: GeometryPreset;
  constants: FoldedConstants;
}

export function specialisations(): Specialisation[] {
  return SPECIALISED_PRESETS.map((preset) => {
    const g = resolveGeometry({ preset }, SPECIALISED_PAGE_SIZE);
    return {
      name: `Heap_${preset.replace(/[^a-z0-9]/gi, '_')}`,
      preset,
      constants: foldedConstants(g, metadataLayout(g)),
    };
  });
}

function typescript(): typeof TS {
  try {
    return require('typescript') as typeof TS;
  } catch {
    throw new Error('generating the fast paths needs the typescript package (a devDependency): npm install');
  }
}

function literal(v: number): string {
  return v < 0 ? `(${v})` : String(v);
}

/**
 * The generated module's text, from the source of lib/alloc.ts. Throws naming what is missing when a method is
 * not found or uses a module-level name that the generated module cannot import.
 */
export function generateFastPaths(
  source: string,
  specs: readonly Specialisation[] = specialisations(),
): string {
  const ts = typescript();
  // Module-level names of alloc.ts: where each comes from, for the generated imports; and its
  // `const NAME = LAYOUT_CONSTANT;` aliases, folded like the heap's constants. (Importing them would not do:
  // CommonJS output reads an exported binding as a property of `exports` on every use.)
  const { imported, exportedHere, declaredHere, aliases, classes } = readModule(ts, SOURCE, source);
  const allocator = classes.get('Allocator');
  if (!allocator) throw new Error(`${SOURCE}: class Allocator not found`);

  const methods = SPECIALISED_METHODS.map((name) => {
    const m = allocator.members.find(
      (x): x is TS.MethodDeclaration =>
        ts.isMethodDeclaration(x) && ts.isIdentifier(x.name) && x.name.text === name,
    );
    if (!m?.body) throw new Error(`${SOURCE}: method Allocator.${name} not found`);
    return m;
  });

  // Module-level names the methods use, to import them.
  const used = new Set<string>();
  const visit = (node: TS.Node): void => {
    if (ts.isPropertyAccessExpression(node)) {
      visit(node.expression); // not node.name: a property, not a binding
      return;
    }
    if (ts.isIdentifier(node) && (imported.has(node.text) || declaredHere.has(node.text)))
      used.add(node.text);
    ts.forEachChild(node, visit);
  };
  for (const m of methods) visit(m.body as TS.Block);

  const fromModule = new Map<string, string[]>();
  const addImport = (spec: string, name: string): void => {
    const list = fromModule.get(spec) ?? [];
    list.push(name);
    fromModule.set(spec, list);
  };
  const layoutValues = layout as unknown as Record<string, unknown>;
  const coreValues = core as unknown as Record<string, unknown>;
  const constants = new Map<string, number>();
  for (const name of [...used].sort()) {
    // A numeric constant of lib/core.ts (POOL_MAGIC): a literal too, not a load from the module's exports.
    if (imported.get(name) === './core' && typeof coreValues[name] === 'number') {
      constants.set(name, coreValues[name] as number);
      continue;
    }
    const target = aliases.get(name);
    if (target !== undefined && imported.get(target) === './generated/layout') {
      const v = layoutValues[target];
      if (typeof v !== 'number')
        throw new Error(`${SOURCE}: ${name} = ${target}, which is not a layout constant`);
      constants.set(name, v);
      continue;
    }
    const spec = imported.get(name);
    if (spec !== undefined) {
      addImport(spec.startsWith('./') ? `../${spec.slice(2)}` : spec, name);
    } else if (exportedHere.has(name)) {
      addImport('../alloc', name);
    } else {
      throw new Error(`${SOURCE}: Allocator's fast paths use '${name}', which ${SOURCE} does not export`);
    }
  }

  const out: string[] = [
    `// Generated by \`npm run codegen\` (lib/tools/fastpaths.ts) from ${SOURCE}; do not edit.`,
    '// The fast paths of class Allocator with the constants of a preset default geometry folded in as literals;',
    '// lib/heap.ts uses one only for a heap whose constants equal those (see foldedConstants in lib/core.ts).',
    '',
  ];
  for (const [spec, names] of [...fromModule].sort(([a], [b]) => a.localeCompare(b))) {
    out.push(`import { ${names.sort().join(', ')} } from '${spec}';`);
  }
  out.push("import type { Allocator } from '../alloc';");
  out.push("import type { FoldedConstants } from '../core';", '');
  out.push("// A mixin's base class must take any arguments (lib/generated is not linted).");
  out.push('type AllocatorClass = new (...args: any[]) => Allocator;', '');
  out.push('/**');
  out.push(
    ' * Subclasses of `Base` (Heap) with the fast paths specialised for each preset default geometry, and the',
  );
  out.push(' * constants each folds in (a constant left out is not folded). Called once, by lib/heap.ts.');
  out.push(' */');
  out.push('export function fastPathClasses<T extends AllocatorClass>(Base: T) {');
  for (const spec of specs) {
    const folded = new Map<string, number>();
    for (const [k, v] of Object.entries(spec.constants)) if (v !== undefined) folded.set(k, v);
    out.push(`  /** Preset ${spec.preset}'s default geometry with ${SPECIALISED_PAGE_SIZE}-byte pages. */`);
    out.push(`  class ${spec.name} extends Base {`);
    methods.forEach((m, i) => {
      if (i > 0) out.push('');
      out.push(indent(specialiseMethod(ts, source, m, folded, constants)));
    });
    out.push('  }', '');
  }
  out.push('  const classes: Array<{ constants: FoldedConstants; fast: T }> = [');
  for (const spec of specs) {
    const fields = Object.entries(spec.constants)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${k}: ${v}`);
    out.push(`    {\n      constants: { ${fields.join(', ')} },\n      fast: ${spec.name},\n    },`);
  }
  out.push('  ];', '  return classes;', '}', '');
  return out.join('\n');
}

/** One method's text with `this.NAME` reads of folded constants replaced, and `override` added. */
function specialiseMethod(
  ts: typeof TS,
  source: string,
  m: TS.MethodDeclaration,
  folded: ReadonlyMap<string, number>,
  constants: ReadonlyMap<string, number>,
): string {
  const start = m.getFullStart();
  const edits: Array<{ at: number; end: number; text: string }> = [];
  const visit = (node: TS.Node): void => {
    if (
      ts.isPropertyAccessExpression(node) &&
      node.expression.kind === ts.SyntaxKind.ThisKeyword &&
      folded.has(node.name.text)
    ) {
      if (ts.isBinaryExpression(node.parent) && node.parent.left === node && isAssignment(ts, node.parent)) {
        throw new Error(
          `${SOURCE}: Allocator.${m.name.getText()} assigns this.${node.name.text}, a folded constant`,
        );
      }
      edits.push({ at: node.getStart(), end: node.end, text: literal(folded.get(node.name.text) as number) });
      return;
    }
    if (ts.isPropertyAccessExpression(node)) {
      visit(node.expression); // node.name is a property, never one of the module's constants
      return;
    }
    if (ts.isIdentifier(node) && constants.has(node.text)) {
      edits.push({ at: node.getStart(), end: node.end, text: literal(constants.get(node.text) as number) });
      return;
    }
    ts.forEachChild(node, visit);
  };
  visit(m);
  // `override` after the modifiers (protected ...), before the name.
  edits.push({ at: m.name.getStart(), end: m.name.getStart(), text: 'override ' });
  edits.sort((a, b) => b.at - a.at);
  let text = source.slice(start, m.end);
  for (const e of edits) text = text.slice(0, e.at - start) + e.text + text.slice(e.end - start);
  // The method's own leading blank line and indentation stay as they are in alloc.ts.
  return text.replace(/^\n+/, '');
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((line) => (line === '' ? line : `  ${line}`))
    .join('\n');
}

function isAssignment(ts: typeof TS, e: TS.BinaryExpression): boolean {
  const k = e.operatorToken.kind;
  return k >= ts.SyntaxKind.FirstAssignment && k <= ts.SyntaxKind.LastAssignment;
}

function main(argv: string[]): number {
  const root = packageRoot();
  const check = argv.includes('--check');
  const read = (path: string) => readFileSync(join(root, path), 'utf8');
  const outputs: Array<[string, string]> = [
    [OUTPUT, generateFastPaths(read(SOURCE))],
    [
      SHARED_OUTPUT,
      generateSharedFastPaths({ [SOURCE]: read(SOURCE), [SHARED_SOURCE]: read(SHARED_SOURCE) }),
    ],
  ];
  let status = 0;
  for (const [path, text] of outputs) {
    const out = join(root, path);
    if (check) {
      let current = '';
      try {
        current = readFileSync(out, 'utf8');
      } catch {
        // missing: stale
      }
      if (current !== text) {
        process.stderr.write(`${relative(process.cwd(), out) || path} is stale: run npm run codegen\n`);
        status = 1;
      } else {
        process.stdout.write(`${path} is fresh\n`);
      }
      continue;
    }
    writeFileSync(out, text);
    process.stdout.write(`wrote ${path}\n`);
  }
  return status;
}

// --- Shared heaps ---------------------------------------------------------------------------------------------

/** The shared heap's specialised methods: its own malloc and releaseSmall, and Allocator's free and realloc. */
export const SHARED_SOURCE = 'lib/shared/heap.ts';
export const SHARED_OUTPUT = 'lib/generated/shared-fastpaths.ts';
export const SHARED_PARTS: ReadonlyArray<{ path: string; className: string; methods: readonly string[] }> = [
  { path: SHARED_SOURCE, className: 'SharedHeap', methods: ['malloc', 'releaseSmall'] },
  { path: SOURCE, className: 'Allocator', methods: ['free', 'realloc'] },
];

export interface SharedSpecialisation {
  name: string;
  preset: GeometryPreset;
  constants: SharedFoldedConstants;
}

export function sharedSpecialisations(): SharedSpecialisation[] {
  return SPECIALISED_PRESETS.map((preset) => ({
    name: `SharedHeap_${preset.replace(/[^a-z0-9]/gi, '_')}`,
    preset,
    constants: sharedFoldedConstants(resolveGeometry({ preset }, SPECIALISED_PAGE_SIZE)),
  }));
}

/** What a module declares and imports at its top level. */
interface ModuleInfo {
  path: string;
  source: string;
  imported: Map<string, string>;
  declaredHere: Set<string>;
  exportedHere: Set<string>;
  aliases: Map<string, string>;
  classes: Map<string, TS.ClassDeclaration>;
}

function readModule(ts: typeof TS, path: string, source: string): ModuleInfo {
  const file = ts.createSourceFile(path, source, ts.ScriptTarget.ES2022, true);
  const info: ModuleInfo = {
    path,
    source,
    imported: new Map(),
    declaredHere: new Set(),
    exportedHere: new Set(),
    aliases: new Map(),
    classes: new Map(),
  };
  for (const st of file.statements) {
    if (ts.isImportDeclaration(st) && ts.isStringLiteral(st.moduleSpecifier)) {
      const bindings = st.importClause?.namedBindings;
      if (bindings && ts.isNamedImports(bindings) && !st.importClause?.isTypeOnly) {
        for (const el of bindings.elements)
          if (!el.isTypeOnly) info.imported.set(el.name.text, st.moduleSpecifier.text);
      }
      continue;
    }
    const exported = ts.canHaveModifiers(st)
      ? (ts.getModifiers(st) ?? []).some((m) => m.kind === ts.SyntaxKind.ExportKeyword)
      : false;
    const names: string[] = [];
    if (ts.isVariableStatement(st)) {
      for (const d of st.declarationList.declarations) {
        if (!ts.isIdentifier(d.name)) continue;
        names.push(d.name.text);
        if (!exported && d.initializer && ts.isIdentifier(d.initializer))
          info.aliases.set(d.name.text, d.initializer.text);
      }
    } else if ((ts.isFunctionDeclaration(st) || ts.isClassDeclaration(st)) && st.name) {
      names.push(st.name.text);
      if (ts.isClassDeclaration(st)) info.classes.set(st.name.text, st);
    }
    for (const n of names) {
      info.declaredHere.add(n);
      if (exported) info.exportedHere.add(n);
    }
  }
  return info;
}

/** `spec` (imported by the module at `from`, a path under lib/) as lib/generated/ imports it. */
function fromGenerated(from: string, spec: string): string {
  if (!spec.startsWith('.')) return spec;
  const target = posix.normalize(posix.join(posix.dirname(from), spec));
  const rel = posix.relative('lib/generated', target);
  return rel.startsWith('.') ? rel : `./${rel}`;
}

/**
 * The module that is the generated module's shared-heap fast paths, from the sources of lib/shared/heap.ts and
 * lib/alloc.ts. Every numeric constant the methods import (from lib/core.ts, lib/shared/state.ts, or a layout
 * alias) is folded as a literal, like the heap's own constants.
 */
export function generateSharedFastPaths(
  sources: Readonly<Record<string, string>>,
  specs: readonly SharedSpecialisation[] = sharedSpecialisations(),
): string {
  const ts = typescript();
  const layoutValues = layout as unknown as Record<string, unknown>;
  const fromModule = new Map<string, Set<string>>();
  const parts = SHARED_PARTS.map((part) => {
    const source = sources[part.path];
    if (source === undefined) throw new Error(`${part.path}: source not given`);
    const info = readModule(ts, part.path, source);
    const cls = info.classes.get(part.className);
    if (!cls) throw new Error(`${part.path}: class ${part.className} not found`);
    const methods = part.methods.map((name) => {
      const m = cls.members.find(
        (x): x is TS.MethodDeclaration =>
          ts.isMethodDeclaration(x) && ts.isIdentifier(x.name) && x.name.text === name,
      );
      if (!m?.body) throw new Error(`${part.path}: method ${part.className}.${name} not found`);
      return m;
    });
    const used = new Set<string>();
    const visit = (node: TS.Node): void => {
      if (ts.isPropertyAccessExpression(node)) {
        visit(node.expression);
        return;
      }
      if (ts.isIdentifier(node) && (info.imported.has(node.text) || info.declaredHere.has(node.text)))
        used.add(node.text);
      ts.forEachChild(node, visit);
    };
    for (const m of methods) visit(m.body as TS.Block);
    const constants = new Map<string, number>();
    for (const name of [...used].sort()) {
      const target = info.aliases.get(name);
      if (target !== undefined && info.imported.get(target)?.endsWith('/generated/layout')) {
        const v = layoutValues[target];
        if (typeof v !== 'number')
          throw new Error(`${part.path}: ${name} = ${target}, which is not a layout constant`);
        constants.set(name, v);
        continue;
      }
      const spec = info.imported.get(name);
      if (spec !== undefined) {
        const where = fromGenerated(part.path, spec);
        const value = (require(join(__dirname, '..', 'generated', where)) as Record<string, unknown>)[name];
        if (typeof value === 'number') constants.set(name, value);
        else fromModule.set(where, (fromModule.get(where) ?? new Set()).add(name));
      } else if (info.exportedHere.has(name)) {
        const where = fromGenerated(part.path, `./${posix.basename(part.path, '.ts')}`);
        fromModule.set(where, (fromModule.get(where) ?? new Set()).add(name));
      } else {
        throw new Error(
          `${part.path}: the shared fast paths use '${name}', which ${part.path} does not export`,
        );
      }
    }
    return { info, methods, constants };
  });

  const out: string[] = [
    `// Generated by \`npm run codegen\` (lib/tools/fastpaths.ts) from ${SHARED_SOURCE} and ${SOURCE}; do not edit.`,
    "// A shared heap's fast paths (SharedHeap's malloc, releaseSmall; Allocator's free, realloc) with the constants of a",
    '// preset default geometry folded in; lib/shared/heap.ts uses one only for a heap whose constants equal those.',
    '',
  ];
  for (const [spec, names] of [...fromModule].sort(([a], [b]) => a.localeCompare(b))) {
    out.push(`import { ${[...names].sort().join(', ')} } from '${spec}';`);
  }
  out.push("import type { SharedHeap } from '../shared/heap';");
  out.push("import type { SharedFoldedConstants } from '../shared/state';", '');
  out.push("// A mixin's base class must take any arguments (lib/generated is not linted).");
  out.push('type SharedHeapClass = new (...args: any[]) => SharedHeap;', '');
  out.push(
    '/** Subclasses of `Base` (SharedHeap) specialised for each preset default geometry. Called once. */',
  );
  out.push('export function sharedFastPathClasses<T extends SharedHeapClass>(Base: T) {');
  for (const spec of specs) {
    const folded = new Map<string, number>();
    for (const [k, v] of Object.entries(spec.constants)) if (v !== undefined) folded.set(k, v);
    out.push(
      `  /** Preset ${spec.preset}'s default geometry with ${SPECIALISED_PAGE_SIZE}-byte pages, shared. */`,
    );
    out.push(`  class ${spec.name} extends Base {`);
    let first = true;
    for (const { info, methods, constants } of parts) {
      for (const m of methods) {
        if (!first) out.push('');
        first = false;
        out.push(
          indent(
            specialiseMethod(ts, info.source, m, folded, constants).replace(
              /override override /,
              'override ',
            ),
          ),
        );
      }
    }
    out.push('  }', '');
  }
  out.push('  const classes: Array<{ constants: SharedFoldedConstants; fast: T }> = [');
  for (const spec of specs) {
    const fields = Object.entries(spec.constants)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${k}: ${v}`);
    out.push(`    {\n      constants: { ${fields.join(', ')} },\n      fast: ${spec.name},\n    },`);
  }
  out.push('  ];', '  return classes;', '}', '');
  return out.join('\n');
}

if (require.main === module) process.exitCode = main(process.argv.slice(2));
