/**
 * `DEVICE_AUTH=anonymous`: the device id is whatever stable random id the client sends (the SDK keeps one
 * per installation). It stops honest repeats, such as one client left running, from filling a round; it does
 * not resist Sybils, since one process can invent any number of ids. Check-ins are rate-limited per source
 * address on Redis, so that every API replica shares the count.
 */
import { createHmac } from 'node:crypto';
import type { RedisClient } from '../../store/redis-client';
import ipaddr from 'ipaddr.js';
import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import { credentialInvalid, MAX_CREDENTIAL_LENGTH, type Admission, type DeviceVerifier } from './verifier';

/** What a device id may hold: visible ASCII, so that it can travel in a header at upload. */
const DEVICE_ID = /^[\x21-\x7e]+$/;

/** Options of {@link AnonymousVerifier}. */
export interface AnonymousOptions {
  /** The per-source limit; none when absent or `points` is 0. */
  readonly limit?: {
    readonly redis: RedisClient;
    /** Key prefix of the limiter (`Keys.global.checkinLimit`). */
    readonly keyPrefix: string;
    /** Check-ins per source per window. */
    readonly points: number;
    readonly windowS: number;
    /**
     * Keys the limiter's counters by HMAC(secret, address) rather than the address itself, so Redis holds no
     * client address; every API replica must use the same secret (the task token secret is).
     */
    readonly secret: string;
  };
}

/** The anonymous verifier; see the module comment. */
export class AnonymousVerifier implements DeviceVerifier {
  readonly mode = 'anonymous';
  private readonly limiter: RateLimiterRedis | undefined;
  private readonly secret: string;

  constructor(options: AnonymousOptions = {}) {
    const limit = options.limit;
    this.secret = limit?.secret ?? '';
    this.limiter =
      limit && limit.points > 0
        ? new RateLimiterRedis({
            storeClient: limit.redis,
            useRedisPackage: false,
            keyPrefix: limit.keyPrefix,
            points: limit.points,
            duration: limit.windowS,
          })
        : undefined;
  }

  async admit(source: string): Promise<Admission> {
    if (!this.limiter) return { allowed: true };
    const key = createHmac('sha256', this.secret).update(sourceOf(source)).digest('base64url').slice(0, 22);
    try {
      await this.limiter.consume(key);
      return { allowed: true };
    } catch (e) {
      if (e instanceof RateLimiterRes) {
        return { allowed: false, retryAfterS: Math.max(1, Math.ceil(e.msBeforeNext / 1000)) };
      }
      // A Redis failure is mapped to a retryable 503 by the error middleware, like any store failure.
      throw e;
    }
  }

  verify(credential: string | undefined, where: string): Promise<string> {
    if (credential === undefined || credential === '') {
      return Promise.reject(
        credentialInvalid(
          'missing',
          'a device id is required (the check-in body\'s "device_id", or the X-Device-Credential header)',
          where,
        ),
      );
    }
    if (credential.length > MAX_CREDENTIAL_LENGTH || !DEVICE_ID.test(credential)) {
      return Promise.reject(
        credentialInvalid('malformed', 'a device id is 1 to 4096 visible ASCII characters', where),
      );
    }
    return Promise.resolve(credential);
  }
}

/**
 * The source a check-in is counted against: an IPv4 address, or the /64 prefix of an IPv6 one, since one
 * subscriber is usually given a whole /64 and would otherwise have 2^64 counters. An IPv4-mapped IPv6
 * address counts as its IPv4 address; anything unparsable counts as itself.
 */
export function sourceOf(address: string): string {
  if (!ipaddr.isValid(address)) return address;
  const ip = ipaddr.process(address);
  if (ip.kind() === 'ipv4') return ip.toString();
  return `${ip
    .toByteArray()
    .slice(0, 8)
    .map((b) => b.toString(16).padStart(2, '0'))
    .join('')}/64`;
}
