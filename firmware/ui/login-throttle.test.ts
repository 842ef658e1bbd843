import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../device-sdk/errors.js';
import { clientKey, LoginThrottle } from './login-throttle.js';

describe('login throttle', () => {
  it('counts IPv4 (also IPv4-mapped) per address and IPv6 per /64', () => {
    expect(clientKey('::ffff:192.168.1.7')).toBe('192.168.1.7');
    expect(clientKey('192.168.1.7')).toBe('192.168.1.7');
    expect(clientKey('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
    expect(clientKey('2001:db8:0:1:aaaa::1')).toBe(clientKey('2001:0db8:0000:0001:bbbb:cccc:dddd:eeee'));
    expect(clientKey('2001:db8:0:2::1')).not.toBe(clientKey('2001:db8:0:1::1'));
    expect(clientKey('::1')).toBe('0:0:0:0::/64');
    expect(clientKey(undefined)).toBe('unknown');
  });

  it('forgets a client after a day without failures and refuses bad options naming the field', () => {
    const throttle = new LoginThrottle();
    for (let i = 0; i < 5; i++) throttle.fail('a', 'nurse', 0);
    expect(throttle.check('a', 'nurse', 59_999)).toEqual({ scope: 'client', retryAfterMs: 1 });
    expect(throttle.check('b', 'nurse', 0)).toBeUndefined();
    expect(throttle.fail('a', 'nurse', 24 * 3_600_000)).toEqual([]); // counted from 1 again
    expect(() => new LoginThrottle({ baseDelayMs: -1 })).toThrow(ConfigError);
    expect(() => new LoginThrottle({ freeFailures: 0 })).toThrow(/loginThrottle\.freeFailures/);
  });
});
