import { sourceOf } from './anonymous';

describe('the source a check-in is counted against', () => {
  it('is an IPv4 address itself, an IPv4-mapped address as IPv4, and an IPv6 address by its /64', () => {
    expect(sourceOf('203.0.113.7')).toBe('203.0.113.7');
    expect(sourceOf('::ffff:203.0.113.7')).toBe('203.0.113.7');
    expect(sourceOf('2001:db8:1:2:aaaa::1')).toBe('20010db800010002/64');
    // Every address of one /64 is one source, another /64 is another.
    expect(sourceOf('2001:db8:1:2:ffff:ffff:ffff:ffff')).toBe(sourceOf('2001:db8:1:2::'));
    expect(sourceOf('2001:db8:1:3::1')).not.toBe(sourceOf('2001:db8:1:2::1'));
    expect(sourceOf('')).toBe('');
  });
});
