import { expectedClose, SelectionNeedMemo } from './selection-need';

describe('expectedClose', () => {
  it('extrapolates from the reports so far', () => {
    expect(expectedClose({ opened_at: 0, reported: 2, target: 6 }, 10_000)).toBe(20);
    expect(expectedClose({ opened_at: 0, reported: 6, target: 6 }, 10_000)).toBe(0);
  });

  it('assumes as long again before the first report', () => {
    expect(expectedClose({ opened_at: 5_000, reported: 0, target: 6 }, 35_000)).toBe(30);
    expect(expectedClose({ opened_at: 5_000, reported: 0, target: 6 }, 1_000)).toBe(0);
  });
});

describe('SelectionNeedMemo', () => {
  it('computes once per population within the TTL, and forgets failures', async () => {
    const memo = new SelectionNeedMemo(1000);
    let calls = 0;
    const compute = async () => ({ need: ++calls, secondsUntilNeeded: 0 });
    expect((await memo.get('a', 0, compute)).need).toBe(1);
    expect((await memo.get('a', 999, compute)).need).toBe(1);
    expect((await memo.get('b', 999, compute)).need).toBe(2);
    expect((await memo.get('a', 1000, compute)).need).toBe(3);
    await expect(memo.get('c', 0, () => Promise.reject(new Error('down')))).rejects.toThrow('down');
    await new Promise((r) => setImmediate(r));
    expect((await memo.get('c', 1, compute)).need).toBe(4);
  });
});
