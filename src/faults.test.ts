import { armFaults, faultPoint, InjectedFault, parseFaults } from './faults';

describe('fault points', () => {
  afterEach(() => armFaults(new Map()));

  it('parse point:n[:action] and refuse anything else by name', () => {
    const spec = parseFaults('after-commit-before-ack:2, finalize-before-complete:1:throw');
    expect([...spec]).toEqual([
      ['after-commit-before-ack', { at: 2, action: 'crash' }],
      ['finalize-before-complete', { at: 1, action: 'throw' }],
    ]);
    expect(parseFaults('').size).toBe(0);
    for (const bad of [
      'nosuch:1',
      'before-fold:0',
      'before-fold:x',
      'before-fold:1:explode',
      'before-fold:1:throw:9',
    ])
      expect(() => parseFaults(bad)).toThrow(/ROUNDHOUSE_FAULTS: bad entry/);
  });

  it('act once, on the n-th hit only, and are inert when not armed', async () => {
    await expect(faultPoint('before-fold')).resolves.toBeUndefined();
    armFaults(parseFaults('before-fold:2:throw'));
    await expect(faultPoint('before-fold')).resolves.toBeUndefined();
    await expect(faultPoint('before-fold')).rejects.toBeInstanceOf(InjectedFault);
    await expect(faultPoint('before-fold')).resolves.toBeUndefined();
  });
});
