// Unit tests live beside the code (src/, named *.test.ts); integration tests in test/.
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/src', '<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }] },
  setupFilesAfterEnv: ['<rootDir>/test/setup/backend.ts'],
  // Sized for a loaded 2-core machine, where an integration test can take three times as long as on a quiet
  // one. A test whose own waits are longer sets its timeout above them, so that the wait fails first and
  // says what it waited for; a timed-out test keeps running in the background (jest cannot stop it) and
  // must not fail the next test file (stop background loops in afterAll before closing what they use).
  testTimeout: 180_000,
  // Two test files at a time, whatever the core count (jest's default on 2 cores is one): most integration
  // tests wait on processes, timers and Redis more than they compute. Measured on 2 cores: 642 s against
  // 1001 s for the whole suite, every file passing both ways.
  maxWorkers: 2,
};
