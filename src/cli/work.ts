import { Command } from 'commander';
import * as fs from 'node:fs';
import { initBackend } from '../compute/backend';
import { referenceWork } from '../conformance/reference-client';
import { AppError } from '../errors';
import { EXIT, resolveIo, type CliIo } from './conventions';
import { readBinaryFile, readTextFile } from './read-file';

/**
 * `roundhouse work <client-plan.json> <broadcast.safetensors> <examples.csv> <out.safetensors>`: the
 * reference client of the conformance kit's contract (conformance/README.md). Runs the client plan's
 * `work` on the examples (a CSV without client_id) and the broadcast as the SDK does, and writes the upload
 * bundle; a refusal (unknown client plan format, bad examples, a non-finite broadcast, a failing
 * evaluation) exits 1 with the error's code and message on stderr, and writes nothing.
 */
export function workCommand(io: CliIo = {}): Command {
  const { err, exit } = resolveIo(io);
  return new Command('work')
    .description("run a client plan's work on one client's examples, as a client would (conformance kit)")
    .argument('<client-plan>', 'client plan JSON (GET client_plan_url)')
    .argument('<broadcast>', 'broadcast bundle (safetensors)')
    .argument('<examples>', "the client's examples: CSV of the element's leaf columns, no client_id")
    .argument('<out>', 'where to write the upload bundle (uncompressed safetensors)')
    .action(async (planFile: string, broadcastFile: string, examplesFile: string, outFile: string) => {
      const inputs = {
        clientPlan: readTextFile(planFile, 'client plan'),
        broadcast: readBinaryFile(broadcastFile, 'broadcast'),
        examplesCsv: readTextFile(examplesFile, 'examples'),
      };
      await initBackend();
      let upload: Uint8Array;
      try {
        upload = referenceWork(inputs);
      } catch (e) {
        if (!(e instanceof AppError)) throw e;
        err(`${e.code}: ${e.message}\n`);
        return exit(EXIT.failure);
      }
      fs.writeFileSync(outFile, upload);
    });
}
