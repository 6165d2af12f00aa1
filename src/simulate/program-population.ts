/**
 * The digits as a stateful program's devices: each device holds its own examples under every collection the
 * program's `client_data` names, its training share under all of them but the one the `test` entry names,
 * which gets the device's own held-out share (the library programs read `digits` and `digits-test` so).
 * The digits are cut McMahan-style (each device holds mostly `shardsPerClient` labels) and each device's
 * examples are then split into its train and test shares, so that a device is scored on its own distribution.
 * Node only (it reads the data file).
 */
import { formatType } from '../compute/types';
import { checkClientExamples, exampleLeaves, type ClientExamples } from '../data';
import {
  digitsClientExamples,
  digitsElementType,
  loadDigits,
  partitionNonIid,
  subsetDigits,
  trainTestSplit,
} from '../data/digits';
import type { Program } from '../stateful/program';

/** How to cut the digits into a program's devices. */
export interface ProgramDevicesOptions {
  readonly clients: number;
  /** Label shards per device (default 2: mostly two labels each). */
  readonly shardsPerClient?: number;
  /** Share of each device's examples in its test collection (default 0.2). */
  readonly testFraction?: number;
  readonly seed?: number;
}

/** One device's examples by collection name, as a `MemoryExampleStore` takes them. */
export type DeviceExamples = Readonly<Record<string, ClientExamples>>;

/** The client_data entry whose collection holds each device's held-out share. */
const TEST_ENTRY = 'test';

/**
 * Each device's examples for `program`, checked against the element type of every `client_data` entry
 * (ranges included, so labels the program's model cannot take are refused here, naming the device and the
 * collection, rather than failing every device's session). The same options give the same devices.
 */
export function digitsProgramDevices(program: Program, options: ProgramDevicesOptions): DeviceExamples[] {
  const entries = Object.entries(program.client_data);
  for (const [key, spec] of entries)
    requireDigits(spec.element, `program ${program.name}: client_data.${key}`);
  // A collection is the test share only when no other entry reads it as training data.
  const testCollections = new Set(entries.filter(([k]) => k === TEST_ENTRY).map(([, s]) => s.collection));
  for (const [k, s] of entries) if (k !== TEST_ENTRY) testCollections.delete(s.collection);

  const seed = options.seed ?? 0;
  const digits = loadDigits();
  const parts = partitionNonIid(digits.y, options.clients, options.shardsPerClient ?? 2, seed);
  return parts.map((indices, i) => {
    const own = subsetDigits(digits, indices);
    const { train, test } = trainTestSplit(own, options.testFraction ?? 0.2, `${seed}:device:${i}`);
    const every = (n: number): number[] => Array.from({ length: n }, (_, j) => j);
    const shares = {
      train: digitsClientExamples(train, every(train.n)),
      test: digitsClientExamples(test, every(test.n)),
    };
    const device: Record<string, ClientExamples> = {};
    for (const [, spec] of entries) {
      const examples = testCollections.has(spec.collection) ? shares.test : shares.train;
      checkClientExamples(
        examples,
        exampleLeaves(spec.element),
        `data/digits.csv.gz (device ${i}, collection ${spec.collection})`,
      );
      device[spec.collection] = examples;
    }
    return device;
  });
}

/** Fails, saying why, unless a collection's batch type takes digits examples (the devices hold nothing else). */
function requireDigits(element: Program['client_data'][string]['element'], what: string): void {
  const probe: ClientExamples = { count: 0, leaves: [new Float32Array(0), new Int32Array(0)] };
  try {
    checkClientExamples(probe, exampleLeaves(element));
  } catch (e) {
    throw new Error(
      `${what} wants client data of type ${formatType(element)}, but the simulated devices hold digits ` +
        `(${formatType(digitsElementType())}): ${e instanceof Error ? e.message : String(e)}`,
    );
  }
}
