"""The long fuzz run: Schemathesis rounds against a fresh gateway until it has answered N requests.

Starts the CDI stand-in and a gateway process (tests/support/session_gateway.py), then alternates
rounds as a newly signed-in user and with the admin key, each with its own seed, every operation,
positive and negative data, on the served document narrowed per collection (valid writes commit).
Prints the gateway's request count, its status histogram, per kind of operation too, and how many
writes it committed (all from its own log), and each round's verdict; exits 1 when a round failed
(a server error, an undocumented status, a body or header that does not conform), the gateway
answered a 5xx other than 503, or a log of the run holds a secret or token (scripts/scan_logs.py).
Run it at low priority (``nice``): it keeps two cores busy.

    .venv/bin/python scripts/fuzz.py [--requests 10000] [--max-examples 100] [--seed 1] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# the repository root instead of scripts/, whose secrets.py would shadow the standard library's
sys.path[0] = str(ROOT)

from tests.support import fuzzing  # noqa: E402
from tests.support.session_gateway import session_gateway  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10_000, help="stop once the gateway answered this")
    parser.add_argument("--max-examples", type=int, default=100, help="test cases per operation and round")
    parser.add_argument("--seed", type=int, default=1, help="the first round's seed (then +1 per round)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    args = parser.parse_args()
    st = fuzzing.setup()
    tally = fuzzing.Tally()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="telestack-fuzz-") as tmp, session_gateway(Path(tmp)) as gw:
        seed = args.seed
        while tally.requests < args.requests:
            who = "user" if len(tally.rounds) % 2 == 0 else "admin"
            out = Path(tmp) / f"round-{len(tally.rounds):03d}-{who}.txt"
            done = fuzzing.run_round(st, gw, who, out, max_examples=args.max_examples, seed=seed)
            tally.rounds.append(done)
            tally.statuses = fuzzing.statuses(gw)
            tally.kinds = fuzzing.by_operation(gw)
            verdict = "passed" if done.passed else "FAILED"
            print(f"round {len(tally.rounds)} ({who}, seed {seed}): {verdict}; "
                  f"{tally.requests} requests so far", file=sys.stderr)
            if not done.passed:
                print(out.read_text(errors="replace")[-6000:], file=sys.stderr)
            seed += 1
        findings = fuzzing.log_findings(gw, *(r.token for r in tally.rounds))
        for finding in findings:
            print(finding, file=sys.stderr)
    failed = [r for r in tally.rounds if not r.passed]
    seconds = time.monotonic() - started
    if args.json:
        kinds: dict[str, dict[int, int]] = {}
        for (kind, status), n in sorted(tally.kinds.items()):
            kinds.setdefault(kind, {})[status] = n
        print(json.dumps({"requests": tally.requests, "statuses": dict(sorted(tally.statuses.items())),
                          "by_operation": kinds, "successful_writes": fuzzing.successful_writes(tally.kinds),
                          "rounds": len(tally.rounds), "failed_rounds": len(failed),
                          "server_errors": tally.server_errors, "log_findings": len(findings),
                          "seconds": round(seconds, 1)}))
    else:
        print(fuzzing.summary(tally))
        print(f"server errors (5xx other than 503): {sum(tally.server_errors.values())}; "
              f"failed rounds: {len(failed)} of {len(tally.rounds)}; "
              f"secrets or tokens in its logs: {len(findings)}; {seconds:.0f} s")
    return 1 if failed or tally.server_errors or findings else 0


if __name__ == "__main__":
    sys.exit(main())
