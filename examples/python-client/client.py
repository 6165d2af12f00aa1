#!/usr/bin/env python3
"""Command line of the standard-library Python client (README.md beside this file).

  client.py work <client-plan.json> <broadcast.safetensors> <examples.csv> <out.safetensors>
  client.py run --server URL --population NAME --device-id ID --data examples.csv [--tasks N] [--max-wait-s S]

Exit 0 on success; on a refusal or failure `CODE: message` on stderr and exit 1 (2 for bad usage).
"""

import argparse
import json
import sys

from roundhouse_client.device import Device
from roundhouse_client.errors import ClientError
from roundhouse_client.work import read_examples_csv, run_work


def work(args):
    with open(args.client_plan, encoding="utf-8") as f:
        plan = json.load(f)
    with open(args.broadcast, "rb") as f:
        broadcast = f.read()
    with open(args.examples, encoding="utf-8") as f:
        text = f.read()
    element = plan.get("client_data", {}).get("element") if isinstance(plan, dict) else None
    if element is None:
        raise ClientError("BAD_REQUEST", f"{args.client_plan}: no client_data.element")
    examples = read_examples_csv(text, element, args.examples)
    bundle = run_work(plan, broadcast, examples)
    with open(args.out, "wb") as f:
        f.write(bundle)


def run(args):
    with open(args.data, encoding="utf-8") as f:
        text = f.read()
    device = Device(
        args.server, args.population, args.device_id, text, args.max_wait_s, log=lambda s: print(s, flush=True)
    )
    device.run(args.tasks)


def main(argv):
    parser = argparse.ArgumentParser(prog="client.py", description="A standard-library Roundhouse client.")
    sub = parser.add_subparsers(dest="command", required=True)
    w = sub.add_parser("work", help="run a client plan's work on one device's examples")
    w.add_argument("client_plan")
    w.add_argument("broadcast")
    w.add_argument("examples")
    w.add_argument("out")
    r = sub.add_parser("run", help="take part in rounds as one device")
    r.add_argument("--server", required=True)
    r.add_argument("--population", required=True)
    r.add_argument("--device-id", required=True)
    r.add_argument("--data", required=True, help="this device's examples (CSV)")
    r.add_argument("--tasks", type=int, default=1, help="uploads to complete before exiting (default 1)")
    r.add_argument("--max-wait-s", type=float, default=float("inf"), help="cap on every wait (for tests)")
    args = parser.parse_args(argv)
    try:
        (work if args.command == "work" else run)(args)
    except ClientError as e:
        print(f"{e.code}: {e.message}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as e:
        # unreadable files, a client plan that is not JSON
        print(f"BAD_REQUEST: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
