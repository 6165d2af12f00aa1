import { HeldPolls } from './held-polls';

describe('HeldPolls', () => {
  it('holds at most perHolder polls of one holder, others unaffected, and frees a hold on release', () => {
    const polls = new HeldPolls(2, 10);
    const a1 = polls.take('a');
    const a2 = polls.take('a');
    expect(a1).toBeDefined();
    expect(a2).toBeDefined();
    expect(polls.take('a')).toBeUndefined();
    expect(polls.take('b')).toBeDefined();
    expect(polls.size).toBe(3);
    a1!();
    expect(polls.size).toBe(2);
    expect(polls.take('a')).toBeDefined();
  });

  it('holds at most total polls in all, and a release called twice frees one hold', () => {
    const events: string[] = [];
    const polls = new HeldPolls(5, 3, {
      held: (n) => events.push(`held ${n}`),
      unheld: (bound) => events.push(`unheld ${bound}`),
    });
    const releases = ['a', 'b', 'c'].map((h) => polls.take(h));
    expect(polls.take('d')).toBeUndefined();
    releases[0]!();
    releases[0]!();
    expect(polls.size).toBe(2);
    expect(polls.take('d')).toBeDefined();
    expect(polls.take('e')).toBeUndefined();
    expect(events).toEqual([
      'held 1',
      'held 2',
      'held 3',
      'unheld process',
      'held 2',
      'held 3',
      'unheld process',
    ]);
  });

  it("reports which bound turned a poll away: the holder's before the process's", () => {
    const bounds: string[] = [];
    const polls = new HeldPolls(1, 1, { held: () => {}, unheld: (b) => bounds.push(b) });
    polls.take('a');
    polls.take('a');
    polls.take('b');
    expect(bounds).toEqual(['holder', 'process']);
  });

  it('holds nothing with a total of 0 (MAX_HELD_POLLS=0 turns holding off)', () => {
    expect(new HeldPolls(4, 0).take('a')).toBeUndefined();
  });
});
