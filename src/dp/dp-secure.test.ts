import { initBackend } from '../compute/backend';
import { dpOf } from '../plan/dp-check';
import { checkPlan } from '../plan/validate';
import { LocalRunner, simulateLocal } from '../runner/local-runner';
import {
  buildSecureDpTestPlan,
  clientsWithNorms,
  sampleStd,
  planProblems,
} from '../../test/support/dp-plans';
import { secureNoiseStd } from './mechanism';

// A dp record that travels in a secure sum (test/support/dp-plans.ts): the server adds the noise to the
// sum, unmasked when SecAgg runs, in the sum's integer units, calibrated to the clip plus rounding.

beforeAll(() => initBackend());

describe('noise on a secure record', () => {
  it('has standard deviation z (C scale + sqrt(d)/2) units per coordinate (300 rounds)', () => {
    const z = 1.2;
    const C = 1;
    const scale = 50;
    const dims = 16;
    const plan = buildSecureDpTestPlan({
      dims,
      scale,
      rounds: 300,
      protocol: 'none',
      dp: { clip: { norm: C }, noise_multiplier: z, target: { delta: 1e-5 } },
    });
    const secure = dpOf(checkPlan(plan))!.secure!;
    expect(secure).toMatchObject({ kind: 'modulus', index: 2, scale, coordinates: dims });
    const expected = z * (C * scale + Math.sqrt(dims) / 2);
    expect(secureNoiseStd(secure, z, C)).toBeCloseTo(expected, 12);
    // Every client's norm is 2, clipped by the client to C = 1: the first coordinate's sum is 3 x 50 units.
    const runner = new LocalRunner(plan, clientsWithNorms([2, 2, 2]));
    const noise: number[] = [];
    try {
      for (const r of runner.rounds()) {
        const out = r.output as { record: number[]; clients: number };
        expect(out.clients).toBe(3);
        noise.push((out.record[0]! - 3) * scale, ...out.record.slice(1).map((x) => x * scale));
      }
    } finally {
      runner.dispose();
    }
    expect(noise).toHaveLength(300 * dims);
    expect(Math.abs(sampleStd(noise) / expected - 1)).toBeLessThan(0.05);
  });

  it('is added to the unmasked sum under SecAgg+', async () => {
    const scale = 100;
    const z = 1;
    const plan = buildSecureDpTestPlan({
      scale,
      rounds: 20,
      targetClients: 5,
      protocol: 'secagg+',
      schedule: { over_selection: 1 },
      dp: { clip: { norm: 1 }, noise_multiplier: z, target: { delta: 1e-5 } },
    });
    const results = await simulateLocal(plan, clientsWithNorms([0.25, 0.5, 0.75, 1, 3]));
    expect(results).toHaveLength(20);
    // The clipped sum is 0.25 + 0.5 + 0.75 + 1 + 1 = 3.5; the noise has std 1 x (100 + 1) units, 1.01.
    const noise: number[] = [];
    for (const r of results) {
      expect(r.secureAggregation).toBeDefined();
      const out = r.output as { record: number[]; clients: number };
      expect(out.clients).toBe(5);
      noise.push(out.record[0]! - 3.5, ...out.record.slice(1));
    }
    const expected = (z * (scale + 1)) / scale;
    // 80 samples: the sample std is within 30% of the true one at about 4 standard errors.
    expect(Math.abs(sampleStd(noise) / expected - 1)).toBeLessThan(0.3);
    expect(Math.abs(noise.reduce((a, b) => a + b, 0) / noise.length)).toBeLessThan(0.5);
  });
});

describe('a secure record that would release something without noise is refused', () => {
  const plan = () =>
    buildSecureDpTestPlan({
      scale: 10,
      protocol: 'secagg+',
      dp: { clip: { norm: 1 }, noise_multiplier: 1, target: { delta: 1e-5 } },
    });

  it('another tensor in the secure sum, no scale, or adaptive clipping', () => {
    const p = plan();
    const { clients_count: _, scale: _s, ...dp } = p.dp!;
    const found = planProblems({ ...p, dp: { ...dp, clip: { adaptive: {} } } });
    expect(found).toContainEqual({
      path: '/dp/record',
      message: expect.stringMatching(
        /V3 \(modulus\) may hold only the record and the client count; it also has clients/,
      ) as string,
    });
    expect(found.map((f) => f.path)).toEqual(expect.arrayContaining(['/dp/scale', '/dp/clip']));
  });

  it('a record in U while the plan has secure sums; scale without a secure record', () => {
    const p = plan();
    const { secure_sum: _, ...dp } = p.dp!;
    const paths = planProblems({ ...p, dp }).map((f) => f.path);
    expect(paths).toEqual(expect.arrayContaining(['/dp/record', '/dp/secure_sum', '/dp/scale']));
  });
});
