import { readBundle } from '../codec';
import type { Logger } from '../log/logger';
import { roundTag, type RoundRef, type RoundStore } from '../store/types';

/**
 * Checks, before a round attempt is finalized, that every upload its partials cover is accounted for: the
 * uploads covered (`accumulated`) equal the clients inside the committed partials plus the covered uploads
 * inside none (`dropped`: rejected by a worker, or gone). A mismatch means a partial lost uploads it covered
 * (say, two processes committed under one worker id, the last write winning) or was written behind the
 * store's back: the aggregate is not what the uploads that got 202 make, so nothing may be released. Logs
 * the violation at error level and answers the attempt's error; undefined when the counts agree (or the
 * attempt is gone, which finalize finds on its own).
 */
export async function aggregationViolation(
  store: Pick<RoundStore, 'aggregationCounts'>,
  ref: RoundRef,
  partials: readonly Uint8Array[],
  log: Logger,
): Promise<string | undefined> {
  const counts = await store.aggregationCounts(ref);
  if (!counts) return undefined;
  const { accumulated, dropped } = counts;
  let clients: number;
  try {
    // Only the bundle headers are read: `clients` is metadata, written by the fold that made the partial.
    clients = partials.reduce((n, p) => n + Number(readBundle(p).metadata.clients ?? NaN), 0);
  } catch (e) {
    clients = NaN;
    log.error({ err: e, plan: ref.plan, round: roundTag(ref) }, 'a committed partial is unreadable');
  }
  if (clients + dropped === accumulated) return undefined;
  log.error(
    { plan: ref.plan, round: roundTag(ref), accumulated, clients, dropped, partials: partials.length },
    'aggregation invariant violated; the round attempt fails',
  );
  return (
    `aggregation invariant violated: ${accumulated} uploads covered, but the ${partials.length} partials ` +
    `hold ${Number.isNaN(clients) ? 'an unreadable number of' : clients} clients and ${dropped} uploads ` +
    `were rejected or gone`
  );
}
