/**
 * A stateful program run by a simulated population against a live server (docs/stateful.md): the program is
 * submitted, then every device (an SDK {@link RoundhouseClient} holding its own examples) checks in, joins
 * the cohort and runs its session to the end over real HTTP. With probability `dropout` a device dies after
 * its first contribution ({@link dyingFetch}): it goes silent, the server times its session out
 * (`step_timeout_s`) and the program goes on while every aggregation still to come can reach its minimum,
 * else it fails with the server's reason. The simulator watches the program through the operator API and
 * reports its status, outputs or reason, and what became of each device.
 */
import { setMaxListeners } from 'node:events';
import seedrandom from 'seedrandom';
import { RoundhouseClient } from '../client/client';
import { realClock } from '../client/clock';
import { newDeviceId } from '../client/device';
import { isRoundhouseError } from '../client/errors';
import { MemoryExampleStore } from '../client/example-store';
import type { RunOutcome } from '../client/types';
import type { Program } from '../stateful/program';
import { dyingFetch } from './dying-fetch';
import { OperatorApi, programEnded, type ProgramDetail } from '../client/operator';
import type { DeviceExamples } from './program-population';

/** Options of {@link simulateProgram}. */
export interface ProgramSimulationOptions {
  readonly server: string;
  /** Operator token: the simulator submits the program and reads it. */
  readonly token: string;
  /** The program to submit (the server checks it). */
  readonly program: Program;
  /** One simulated device per entry, holding those examples by collection. */
  readonly devices: readonly DeviceExamples[];
  /** Seeds which devices die and every device's randomness (default 0). */
  readonly seed?: number;
  /** Chance that a device dies after its first contribution (default 0). */
  readonly dropout?: number;
  /** How often the program is read, in ms (default 250). */
  readonly pollMs?: number;
  /** How long the server may be unreadable before the simulation gives up, in ms (default 60,000). */
  readonly serverPatienceMs?: number;
  /** Aborting it makes the devices leave their sessions and stops the simulation. */
  readonly signal?: AbortSignal;
  /** The program as read whenever its status, step or live sessions changed. */
  readonly onProgress?: (p: ProgramDetail) => void;
  /** A device died (its index and id). */
  readonly onDeath?: (index: number, device: string) => void;
}

/**
 * What became of a device: its session completed, it died (killed by the simulation), its session failed or
 * it left for another reason, or it never joined the cohort (full, or the program ended first).
 */
export type DeviceFate = 'completed' | 'died' | 'failed' | 'left' | 'not-recruited';

/** One device's part in the run. */
export interface DeviceReport {
  readonly device: string;
  readonly fate: DeviceFate;
  /** Requests it answered and bundles it contributed (absent when it had no session). */
  readonly requests?: number;
  readonly contributions?: number;
  /** Why its session failed or it left, as the session's outcome says. */
  readonly code?: string;
  readonly reason?: string;
}

/** What a program simulation did. */
export interface ProgramSimulationResult {
  /** The program as the server shows it at the end: status, outputs or error, sessions. */
  readonly program: ProgramDetail;
  readonly devices: readonly DeviceReport[];
  /** Devices by fate. */
  readonly counts: Readonly<Record<DeviceFate, number>>;
  /** From submission to the end of the last device. */
  readonly elapsedMs: number;
  /** The simulation was stopped (`signal`) before the program ended. */
  readonly aborted: boolean;
}

const FATES: readonly DeviceFate[] = ['completed', 'died', 'failed', 'left', 'not-recruited'];

/** Submits `program`, runs the devices until it ends, and reports. */
export async function simulateProgram(options: ProgramSimulationOptions): Promise<ProgramSimulationResult> {
  const api = new OperatorApi(options.server, options.token);
  const started = Date.now();
  const { id } = await api.submitProgram(options.program);
  // `over` ends the devices' waits once the program is over; `stop` makes devices in a session leave it
  // (the simulation was stopped, or cannot watch the program any more).
  const over = new AbortController();
  const stop = new AbortController();
  setMaxListeners(0, over.signal, stop.signal);
  const outer = options.signal;
  const onOuterAbort = (): void => {
    stop.abort(outer?.reason);
    over.abort(outer?.reason);
  };
  outer?.addEventListener('abort', onOuterAbort, { once: true });
  const runId = newDeviceId().slice(0, 8);
  const seed = options.seed ?? 0;
  const devices = options.devices.map((examples, i) =>
    runDevice(i, `sim-${runId}-${i}`, examples).catch((e: unknown): DeviceReport => ({
      device: `sim-${runId}-${i}`,
      fate: 'failed',
      reason: e instanceof Error ? e.message : String(e),
    })),
  );
  let last: ProgramDetail;
  try {
    last = await watch();
  } catch (e) {
    stop.abort(e);
    throw e;
  } finally {
    over.abort();
    outer?.removeEventListener('abort', onOuterAbort);
    // Every device is done (left, if stopped) before the simulation returns or throws.
    await Promise.all(devices);
  }
  const reports = await Promise.all(devices);
  // Read again: sessions that ended while the devices finished are counted now.
  const program = await api.program(id).catch(() => last);
  const counts = Object.fromEntries(FATES.map((f) => [f, 0])) as Record<DeviceFate, number>;
  for (const r of reports) counts[r.fate]++;
  return {
    program,
    devices: reports,
    counts,
    elapsedMs: Date.now() - started,
    aborted: !programEnded(program.status),
  };

  /** Reads the program until it ends (or the simulation is stopped); its last reading. */
  async function watch(): Promise<ProgramDetail> {
    let shown = '';
    let last: ProgramDetail | undefined;
    let troubleSince: number | undefined;
    for (;;) {
      try {
        last = await api.program(id);
        troubleSince = undefined;
      } catch (e) {
        // A server restarting is waited for, as its devices wait for it.
        if (!isRoundhouseError(e) || !e.transient) throw e;
        troubleSince ??= Date.now();
        if (Date.now() - troubleSince > (options.serverPatienceMs ?? 60_000)) throw e;
      }
      if (last) {
        const key = `${last.status}:${last.step}:${last.live}`;
        if (key !== shown) {
          shown = key;
          options.onProgress?.(last);
        }
        if (programEnded(last.status)) return last;
      }
      if (over.signal.aborted) {
        if (last) return last;
        throw over.signal.reason;
      }
      await realClock.sleep(options.pollMs ?? 250, over.signal).catch(() => undefined);
    }
  }

  /** One device: checks in until it has run a session of this program, or the program is over. */
  async function runDevice(index: number, device: string, examples: DeviceExamples): Promise<DeviceReport> {
    const behaviour = seedrandom(`${seed}:behaviour:${index}`);
    const dies = behaviour() < (options.dropout ?? 0);
    const death = new AbortController();
    let dead = false;
    const client = new RoundhouseClient({
      server: options.server,
      population: options.program.population,
      deviceId: device,
      store: new MemoryExampleStore(examples),
      random: seedrandom(`${seed}:client:${index}`),
      ...(dies
        ? {
            fetch: dyingFetch(() => {
              dead = true;
              options.onDeath?.(index, device);
              // The session's loop stops at once rather than retrying into a dead network.
              death.abort(new Error('the simulated device died'));
            }),
          }
        : {}),
    });
    const leave = AbortSignal.any([death.signal, stop.signal]);
    for (;;) {
      if (over.signal.aborted) return { device, fate: 'not-recruited' };
      let outcome: RunOutcome;
      try {
        outcome = await client.runOnce(leave);
      } catch (e) {
        if (dead) return { device, fate: 'died' };
        // A check-in refused for a while (the server busy or restarting): try again until the program ends.
        if (isRoundhouseError(e) && e.transient && !leave.aborted) {
          await realClock.sleep(1000, over.signal).catch(() => undefined);
          continue;
        }
        throw e;
      }
      if (outcome.kind === 'session' && outcome.session.programId === id) {
        const s = outcome.session;
        const counts = { requests: s.requests, contributions: s.contributions };
        if (dead) return { device, fate: 'died', ...counts };
        const fate: DeviceFate = s.status === 'completed' ? 'completed' : s.status;
        return {
          device,
          fate,
          ...counts,
          ...(s.code ? { code: s.code } : {}),
          ...(s.reason && fate !== 'completed' ? { reason: s.reason } : {}),
        };
      }
      // The cohort is full (a retry window), or the device took part in something else of its population (a
      // plan's task, another program's session; the CLI warns of those): check in again within seconds.
      const waitMs = outcome.kind === 'retry' ? Math.min(outcome.waitMs, 2000) : 0;
      await realClock.sleep(waitMs, over.signal).catch(() => undefined);
    }
  }
}
