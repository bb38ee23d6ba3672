/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.tsx?$': 'ts-jest',
  },
  // Synthesis plus cdk-nag plus cfn-lint takes a few seconds per stack on 2 cores.
  testTimeout: 120000,
};
