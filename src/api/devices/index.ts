/**
 * The device verifier `DEVICE_AUTH` chooses (README, "Device credentials"); see `verifier.ts` for the
 * interface and one file per verifier.
 */
import type { RedisClient } from '../../store/redis-client';
import type { Config } from '../../config';
import type { Logger } from '../../log/logger';
import { Keys } from '../../store/keys';
import { AnonymousVerifier } from './anonymous';
import { SignedVerifier } from './signed';
import type { DeviceVerifier } from './verifier';

export { AnonymousVerifier } from './anonymous';
export { SignedVerifier } from './signed';
export * from './verifier';
export { DEVICE_HEADER, checkinCredential, uploadCredential } from './credential';

/**
 * Builds the configured verifier; `redis` holds the anonymous rate limiter's counters. Logs the mode, and in
 * anonymous mode says plainly that it does not resist Sybils.
 */
export function createDeviceVerifier(config: Config, redis: RedisClient, log: Logger): DeviceVerifier {
  const d = config.devices;
  if (d.auth === 'signed') {
    const verifier = SignedVerifier.fromConfig(d);
    log.info(
      { jwks: d.jwksUrl ?? d.jwksFile, issuer: d.jwtIssuer, audience: d.jwtAudience },
      'DEVICE_AUTH=signed: check-ins need a device JWT (ES256 or EdDSA) from the configured JWKS',
    );
    return verifier;
  }
  log.warn(
    { rate_limit: d.anonymousRateLimit, window_s: d.anonymousRateWindowS },
    'DEVICE_AUTH=anonymous: devices are the ids clients choose; this stops honest repeats but does NOT resist ' +
      'Sybils (one process can invent many ids). Use DEVICE_AUTH=signed in production',
  );
  return new AnonymousVerifier({
    limit: {
      redis,
      keyPrefix: new Keys(config.redisPrefix).global.checkinLimit,
      points: d.anonymousRateLimit,
      windowS: d.anonymousRateWindowS,
      secret: config.tokenSecret,
    },
  });
}
