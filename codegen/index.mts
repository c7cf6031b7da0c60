/** ESM entry point of `pymalloc/codegen`: the CommonJS build, re-exported. */
export * from './index.js';
