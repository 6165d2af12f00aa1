/**
 * A clients CSV (the format `run-local --data` reads) as a simulation's population: each distinct
 * `client_id` is one simulated device holding its rows, and an optional held-out CSV feeds the plan's
 * `evaluate`. The text is parsed for the plan's batch type, so a file that does not fit it (columns, widths,
 * labels outside their declared range) fails before anything runs, naming the file, row and column.
 */
import { readClientsCsv, readHeldOutCsv } from '../data';
import { loadOnce, type Population } from './population';

/** A CSV file's text and the name it is shown by in messages (its path). */
export interface CsvText {
  readonly text: string;
  readonly source: string;
}

/** The population of a clients CSV, with `heldOut` examples for evaluation when given. */
export function csvSource(clients: CsvText, heldOut?: CsvText): Population {
  return {
    description: clients.source,
    moreClients: `more client_id values in ${clients.source}`,
    load: loadOnce((element) => {
      const byId = readClientsCsv(clients.text, element, { source: clients.source });
      return {
        clients: [...byId.values()],
        ...(heldOut ? { heldOut: readHeldOutCsv(heldOut.text, element, heldOut.source) } : {}),
      };
    }),
  };
}
