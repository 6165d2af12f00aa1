import { BuildError } from '../compute/builder';
import { f32 } from '../plans/common';
import { sumProgram } from '../../test/support/stateful-programs';
import { ProgramBuilder } from './builder';

const META = {
  name: 'p',
  population: 'x',
  client_data: { readings: { collection: 'readings', element: f32([null]), batch_size: 2 } },
  cohort: { target_clients: 3, min_clients: 2, join_timeout_s: 1, step_timeout_s: 1 },
};

/** A builder with a client-side identity, a server-side identity and a server-only draw. */
function builder(): ProgramBuilder {
  const pb = new ProgramBuilder();
  pb.computation('id', f32(), (b, x) => b.mul(x, 1));
  pb.computation('seed', undefined, (b) => b.scalar(1));
  pb.computation('draw', undefined, (b) => b.randomNormal([], { stddev: 1, seed: 1 }));
  return pb;
}

describe('ProgramBuilder', () => {
  it('writes the steps in order with the names they return, and the outputs', () => {
    const p = sumProgram();
    expect(p.format).toBe('roundhouse.program/v1');
    expect(p.steps.map((s) => ('result' in s ? s.result : s.op))).toEqual([
      'data',
      's',
      'total',
      'doubled',
      'doubled_c',
      't',
      'struct',
      'struct_t',
      'scaled_total',
      'dispose',
    ]);
    expect(p.steps[2]).toEqual({
      op: 'aggregate',
      value: 's',
      zero: 'zero',
      accumulate: 'accumulate',
      merge: 'merge',
      report: 'report',
      min_clients: 2,
      result: 'total',
    });
    expect(p.steps[6]).toEqual({
      op: 'client_struct',
      fields: [{ name: 't', value: 't' }, { value: 's' }],
      result: 'struct',
    });
    expect(p.outputs).toEqual({ total: 'total', doubled: 'doubled', scaled_total: 'scaled_total' });
    expect(Object.keys(p.functions!)).toEqual(['add_batch']);
  });

  it('names results uniquely by default and refuses a name given twice', () => {
    const pb = builder();
    const a = pb.serverCall('seed');
    const b = pb.serverCall('seed');
    expect([a, b]).toEqual(['seed', 'seed_1']);
    expect(pb.broadcast(a)).toBe('seed_c');
    expect(() => pb.serverCall('seed', [], { result: 'seed_c' })).toThrow(/value seed_c is defined twice/);
    expect(() => pb.serverCall('seed', [], { result: 'not a name' })).toThrow(BuildError);
  });

  it('keeps placements straight: server steps take server values, client steps client values', () => {
    const pb = builder();
    const s = pb.serverCall('seed');
    const c = pb.broadcast(s);
    expect(() => pb.serverCall('id', [c])).toThrow(/placed at the clients.*only through aggregate/);
    expect(() => pb.clientCall('id', [s])).toThrow(/placed at the server/);
    expect(() => pb.broadcast(c)).toThrow(/placed at the clients/);
    expect(() => pb.output('x', c)).toThrow(/placed at the clients/);
    expect(() => pb.dispose([s])).toThrow(/placed at the server/);
    expect(() => pb.clientCall('id', ['nothing'])).toThrow(/no value nothing/);
    pb.dispose([c]);
    expect(() => pb.clientCall('id', [c])).toThrow(/value seed_c was disposed/);
  });

  it('refuses unknown computations, server-only ops on devices or workers, unknown collections', () => {
    const pb = builder();
    const c = pb.broadcast(pb.serverCall('seed'));
    expect(() => pb.clientCall('nope', [c])).toThrow(/client_call nope: no computation/);
    expect(() => pb.clientCall('draw')).toThrow(/may not use random_normal/);
    const fold = { zero: 'draw', accumulate: 'id', merge: 'id', report: 'id', minClients: 2 };
    expect(() => pb.aggregate(c, fold)).toThrow(/aggregate draw: runs on aggregation workers/);
    expect(pb.serverCall('draw')).toBe('draw');
    expect(() => pb.computation('id', f32(), (b, x) => x)).toThrow(/defined twice/);
    pb.clientData('elsewhere');
    expect(() => pb.build(META)).toThrow(/client_data elsewhere: not a collection/);
  });

  it('secureSum takes exactly one kind, and a client value', () => {
    const pb = builder();
    const s = pb.serverCall('seed');
    const c = pb.broadcast(s);
    expect(() => pb.secureSum(c, { minClients: 2 })).toThrow(/exactly one of bitwidth, maxInput and modulus/);
    expect(() => pb.secureSum(c, { bitwidth: 8, modulus: 3, minClients: 2 })).toThrow(/exactly one/);
    expect(() => pb.secureSum(s, { bitwidth: 8, minClients: 2 })).toThrow(/placed at the server/);
    expect(pb.secureSum(c, { maxInput: 9, minClients: 2, deadlineS: 30 })).toBe('seed_c_secure_sum');
  });
});
