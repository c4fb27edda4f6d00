#!/usr/bin/env python3
"""Start a chainexec chain and follow it with LISTEN, completing its
external step: examples/apps/follow_chain.py.

    psql -d mydb -f examples/apps/refund_approval.sql    # the chain, once
    python3 examples/apps/follow_chain.py "dbname=mydb"

Connects with the libpq conninfo given (default: the PG* environment
variables).  Needs psycopg 3 (Debian: python3-psycopg).

Two connections: one LISTENs (chainexec.chain_listen() subscribes it to
the events of the executions its role may see), the other runs commands.
The events carry no values: the app reads the external step's rendered
input from chainexec.step_runs, under row-level security.
"""
import json
import signal
import sys

import psycopg

TIMEOUT_SECONDS = 60


def main():
    conninfo = sys.argv[1] if len(sys.argv) > 1 else ""
    # give up if the chain has not ended in time (notifies() blocks)
    signal.alarm(TIMEOUT_SECONDS)

    with psycopg.connect(conninfo, autocommit=True) as listener, \
            psycopg.connect(conninfo, autocommit=True) as conn:
        # LISTEN first (it takes effect at commit: autocommit), then start:
        # no event can be missed
        channels = [r[0] for r in listener.execute("SELECT chainexec.chain_listen()")]
        print(f"listening on {len(channels)} channel(s)")

        execution = conn.execute(
            "SELECT chainexec.chain_execute('refund-approval', %s)",
            [json.dumps({"customer": "Ada", "amount": 25})]).fetchone()[0]
        print(f"started execution {execution}")

        for note in listener.notifies():
            event = json.loads(note.payload)
            if event["executionId"] != str(execution):
                continue            # another execution of ours
            step = f" step {event['stepId']} {event['stepName']}" if event["stepId"] else ""
            print(f"{event['event']}{step}: {event['status']} ({event['progress']}%)")

            if event["event"] == "step_started" and event["status"] == "waiting":
                # an external step waits for us: read what it asks, answer
                question = conn.execute(
                    "SELECT input->>'input' FROM chainexec.step_runs"
                    " WHERE execution_id = %s AND step_id = %s AND line_type = 'step'",
                    [execution, event["stepId"]]).fetchone()[0]
                print(f"  asks: {question}")
                conn.execute(
                    "SELECT chainexec.chain_step_complete(%s, %s, %s)",
                    [execution, event["stepId"],
                     json.dumps({"approved": True, "approved_by": "follow_chain.py"})])
                print("  approved")

            if event["event"] in ("chain_completed", "chain_failed",
                                  "chain_cancelled", "chain_timeout"):
                break

        result = conn.execute("SELECT chainexec.chain_result(%s)", [execution]).fetchone()[0]
        print(f"status: {result['status']}, refunded: {result['finalContext'].get('refunded')}")
        return 0 if result["status"] == "completed" else 1


if __name__ == "__main__":
    sys.exit(main())
