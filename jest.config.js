/** Jest runs the TypeScript sources through ts-jest (TypeScript 6: ts-jest needs TypeScript below 7). */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json', diagnostics: false }],
  },
  moduleFileExtensions: ['ts', 'js', 'json', 'node'],
  testTimeout: 120000,
  maxWorkers: 2,
};
