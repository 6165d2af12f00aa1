import programSchema from '../../schemas/program.schema.json';
import type * as Generated from '../generated/program';
import { PROGRAM_FORMAT, type Cohort, type Program, type Step } from './program';

// program.ts is the hand-written, readonly view of the document that the rest of the code reads; the schema
// is the source of truth. These compile only while each view fits the other (readonly aside), so a schema
// change that program.ts does not follow fails the type check (ts-jest checks types) rather than a request.
type DeepReadonly<T> = T extends (infer E)[]
  ? readonly DeepReadonly<E>[]
  : T extends object
    ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
    : T;
type Fits<To, From> = [From] extends [To] ? true : false;

const fits: readonly true[] = [
  true satisfies Fits<Program, Generated.Program>,
  true satisfies Fits<DeepReadonly<Generated.Program>, Program>,
  true satisfies Fits<Step, Generated.Step>,
  true satisfies Fits<DeepReadonly<Generated.Step>, Step>,
  true satisfies Fits<Cohort, Generated.Cohort>,
  true satisfies Fits<DeepReadonly<Generated.Cohort>, Cohort>,
];

test('program.ts and the types generated from schemas/program.schema.json describe the same document', () => {
  expect(fits).toHaveLength(6);
  expect(programSchema.properties.format.const).toBe(PROGRAM_FORMAT);
  expect(
    Object.keys(programSchema.definitions).filter((d) => d !== 'Step' && d.endsWith('Step')),
  ).toHaveLength(9);
});
