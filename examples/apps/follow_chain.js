#!/usr/bin/env node
// Start a chainexec chain and follow it with LISTEN, completing its
// external step: examples/apps/follow_chain.js.
//
//   psql -d mydb -f examples/apps/refund_approval.sql    # the chain, once
//   cd examples/apps && npm install                      # the pg package
//   node follow_chain.js "postgresql:///mydb"
//
// Connects with the connection string given (default: the PG* environment
// variables; PGHOST may be a socket folder).  Events arrive on the client's
// "notification" event; they carry no values, so the app reads the
// external step's rendered input from chainexec.step_runs, under row-level
// security.
'use strict';

const { Client } = require('pg');

const TIMEOUT_MS = 60000;
const FINAL = new Set(['chain_completed', 'chain_failed', 'chain_cancelled', 'chain_timeout']);

async function main() {
  const client = new Client(process.argv[2] ? { connectionString: process.argv[2] } : {});
  await client.connect();
  const timer = setTimeout(() => {
    console.error('the chain did not end in time');
    process.exit(1);
  }, TIMEOUT_MS);

  let execution = null;
  const early = [];
  let resolveEnd;
  const ended = new Promise((resolve) => { resolveEnd = resolve; });

  async function onEvent(event) {
    if (event.executionId !== execution) return;     // another execution of ours
    const step = event.stepId ? ` step ${event.stepId} ${event.stepName}` : '';
    console.log(`${event.event}${step}: ${event.status} (${event.progress}%)`);

    if (event.event === 'step_started' && event.status === 'waiting') {
      // an external step waits for us: read what it asks, answer
      const q = await client.query(
        `SELECT input->>'input' AS question FROM chainexec.step_runs
          WHERE execution_id = $1 AND step_id = $2 AND line_type = 'step'`,
        [execution, event.stepId]);
      console.log(`  asks: ${q.rows[0].question}`);
      await client.query('SELECT chainexec.chain_step_complete($1, $2, $3)',
        [execution, event.stepId, JSON.stringify({ approved: true, approved_by: 'follow_chain.js' })]);
      console.log('  approved');
    }
    if (FINAL.has(event.event)) resolveEnd();
  }

  // events in arrival order, one at a time
  let queue = Promise.resolve();
  client.on('notification', (msg) => {
    const event = JSON.parse(msg.payload);
    if (execution === null) { early.push(event); return; }
    queue = queue.then(() => onEvent(event));
  });

  // LISTEN first (each statement commits on its own), then start: no event is missed
  const channels = await client.query('SELECT chainexec.chain_listen()');
  console.log(`listening on ${channels.rowCount} channel(s)`);
  const started = await client.query("SELECT chainexec.chain_execute('refund-approval', $1) AS id",
    [JSON.stringify({ customer: 'Ada', amount: 25 })]);
  execution = started.rows[0].id;
  console.log(`started execution ${execution}`);
  for (const event of early.splice(0)) queue = queue.then(() => onEvent(event));

  await ended;
  await queue;
  const res = await client.query('SELECT chainexec.chain_result($1) AS r', [execution]);
  const result = res.rows[0].r;
  console.log(`status: ${result.status}, refunded: ${result.finalContext.refunded}`);
  clearTimeout(timer);
  await client.end();
  return result.status === 'completed' ? 0 : 1;
}

main().then((code) => process.exit(code), (err) => {
  console.error(err.message);
  process.exit(1);
});
