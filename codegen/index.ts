/** The layout compiler's public API: re-exports only (see codegen/SCHEMA.md for the JSON form). */
export * from './abi';
export * from './emit-c';
export * from './emit-js';
export * from './emit-report';
export * from './emit-ts';
export * from './errors';
export * from './from-c';
export * from './json';
export * from './layout';
export * from './load';
export * from './ref-struct';
export * from './types';
