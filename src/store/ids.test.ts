import { isPlanId, isTaskId, newPlanId, newTaskId } from './ids';

describe('ids', () => {
  it('makes plan ids of p + 12 lowercase base32 characters, all different', () => {
    const ids = Array.from({ length: 1000 }, newPlanId);
    for (const id of ids) expect(id).toMatch(/^p[0-9a-z]{12}$/);
    expect(ids.every(isPlanId)).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    expect(isPlanId('p3k9x0a7m2qzd')).toBe(true);
    expect(isPlanId('p3k9x0a7m2qzdl')).toBe(false);
    expect(isPlanId('pILOU00000000')).toBe(false);
  });

  it('makes task ids of 22 base64url characters carrying 128 bits, all different', () => {
    const ids = Array.from({ length: 1000 }, newTaskId);
    for (const id of ids) {
      expect(id).toMatch(/^[A-Za-z0-9_-]{22}$/);
      expect(Buffer.from(id, 'base64url')).toHaveLength(16);
    }
    expect(ids.every(isTaskId)).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    expect(isTaskId('short')).toBe(false);
  });
});
