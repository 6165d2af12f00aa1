import type { HeldPolls } from './held-polls';
import type { Logger } from 'pino';
import type { Config } from '../config';
import type { Engine, Jobs, PlanCache } from '../rounds/contracts';
import type { RoundStore } from '../store/types';
import type { ProgramStore } from '../stateful/server/program-store';
import type { ProgramEvents } from '../stateful/server/program-events';
import type { DeviceVerifier } from './devices/verifier';
import type { ApiMetrics } from './metrics';

/** What `createApp` is built from; everything stateful is passed in (STYLE.md 5). */
export interface AppDeps {
  readonly config: Config;
  readonly store: RoundStore;
  readonly engine: Engine;
  readonly plans: PlanCache;
  readonly jobs: Jobs;
  readonly log: Logger;
  /** Stateful programs (docs/stateful.md); without it the program and session routes are not served. */
  readonly programs?: ProgramStore;
  /** Wakes long polls when a program changes; without it a poll looks at Redis every 200 ms. */
  readonly programEvents?: ProgramEvents;
  /**
   * Who a check-in or upload is (README, "Device credentials"); default: anonymous without a rate limit, for
   * tests that build an app directly (the server passes `createDeviceVerifier(config, ...)`).
   */
  readonly devices?: DeviceVerifier;
  /** The app's metrics; a fresh registry per app when omitted. */
  readonly metrics?: ApiMetrics;
  /** Readiness probe of `/readyz` (e.g. a Redis PING); defaults to a cheap store read. */
  readonly ready?: () => Promise<unknown>;
  /** Readiness of plan evaluation for `/readyz` (an isolate is up or can start); none when omitted. */
  readonly backendReady?: () => Promise<void>;
  /** The clock in ms (tests); defaults to `Date.now`. */
  readonly now?: () => number;
}

/** The dependencies the route factories see, with the defaults resolved. */
export interface RouteDeps extends AppDeps {
  readonly devices: DeviceVerifier;
  /** The process's bounds on held polls, shared by every route that holds them. */
  readonly heldPolls: HeldPolls;
  readonly metrics: ApiMetrics;
  readonly now: () => number;
}
