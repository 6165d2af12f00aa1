/**
 * A simulated device that dies mid-program: its fetch works until the device has answered its first
 * contribution, and from then on fails every call as a killed process's would (nothing reaches the server,
 * not even the `DELETE` of its session), so that the server has to time its session out (step_timeout_s).
 * test/program-sessions.test.ts kills its devices the same way.
 */

/** A fetch that dies after the first answers POST carrying a `contributed` answer; `onDeath` runs once then. */
export function dyingFetch(
  onDeath: () => void,
  base: typeof globalThis.fetch = globalThis.fetch.bind(globalThis),
): typeof globalThis.fetch {
  let dead = false;
  return async (input, init) => {
    if (dead) throw new TypeError('fetch failed: the simulated device is dead');
    const res = await base(input, init);
    const url = input instanceof Request ? input.url : String(input);
    // The contribution's bundle went up first; its answer reaching the server is the last thing the device does.
    if (
      res.ok &&
      url.endsWith('/answers') &&
      typeof init?.body === 'string' &&
      init.body.includes('"contributed"')
    ) {
      dead = true;
      onDeath();
    }
    return res;
  };
}
