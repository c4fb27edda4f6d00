/*-------------------------------------------------------------------------
 *
 * cache.c
 *	  The step-result cache (step key cache, SPEC section 9), in the table
 *	  chainexec.step_cache.
 *
 * An entry is keyed by organization, chain, step name, the role the
 * execution runs as, and the key: the values of cache.key's variables
 * (else of the step's inputVariables, else its rendered input) as a JSON
 * array, stored with its SHA-256 so that a long rendered input can be a
 * key.  A step's result depends on its role's privileges and search_path:
 * one role's entries never serve another's executions.
 *
 * A hit (an entry within its ttlMs) completes the step with the stored
 * outputs without running it, and refreshes the entry's last use; a miss
 * runs the step, and a successful run stores its outputs, then evicts the
 * role's least recently used entries of the chain's step past maxEntries.
 * The hit and miss counters (chainexec.step_cache_counters) are updated in
 * the same transition.  Every writer of a role's entries of a step locks
 * that role's counters row first (until its transition commits), then
 * entries: evictions never overrun maxEntries, and a hit and a miss never
 * wait for each other in a circle.  A stored entry commits or vanishes
 * with the step's own effects (it is written inside the step's
 * subtransaction).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"

#include "bridge.h"
#include "resilience.h"

#define ENTRY \
	"organization_id = $1 AND chain_id = $2 AND step_name = $3 AND owner::oid = $4 " \
	"AND key_hash = pg_catalog.sha256(pg_catalog.convert_to($5, 'UTF8'))"

static CeQuery q_get = {
	"SELECT outputs FROM chainexec.step_cache "
	"WHERE " ENTRY " AND expires_at > clock_timestamp()",
	5, {UUIDOID, TEXTOID, TEXTOID, OIDOID, TEXTOID}};

static CeQuery q_touch = {
	"UPDATE chainexec.step_cache SET last_used_at = clock_timestamp(), hits = hits + 1 "
	"WHERE " ENTRY,
	5, {UUIDOID, TEXTOID, TEXTOID, OIDOID, TEXTOID}};

/* $5 hits, $6 misses to add */
static CeQuery q_count = {
	"INSERT INTO chainexec.step_cache_counters AS s (organization_id, chain_id, step_name, owner, hits, misses) "
	"VALUES ($1, $2, $3, $4::regrole, $5, $6) "
	"ON CONFLICT (organization_id, chain_id, step_name, owner) "
	"DO UPDATE SET hits = s.hits + $5, misses = s.misses + $6",
	6, {UUIDOID, TEXTOID, TEXTOID, OIDOID, INT8OID, INT8OID}};

/* $6 outputs, $7 ttlMs */
static CeQuery q_put = {
	"INSERT INTO chainexec.step_cache AS c (organization_id, chain_id, step_name, owner, key_hash, key, "
	"outputs, created_at, expires_at, last_used_at) "
	"VALUES ($1, $2, $3, $4::regrole, pg_catalog.sha256(pg_catalog.convert_to($5, 'UTF8')), $5::jsonb, $6, "
	"now(), clock_timestamp() + $7 * interval '1 millisecond', clock_timestamp()) "
	"ON CONFLICT (organization_id, chain_id, step_name, owner, key_hash) DO UPDATE SET "
	"key = excluded.key, outputs = excluded.outputs, created_at = excluded.created_at, "
	"expires_at = excluded.expires_at, last_used_at = excluded.last_used_at, hits = 0",
	7, {UUIDOID, TEXTOID, TEXTOID, OIDOID, TEXTOID, JSONBOID, INT4OID}};

/* Past maxEntries ($5): the role's least recently used entries of the chain's step go. */
static CeQuery q_evict = {
	"DELETE FROM chainexec.step_cache c USING ("
	"  SELECT ctid FROM chainexec.step_cache "
	"  WHERE organization_id = $1 AND chain_id = $2 AND step_name = $3 AND owner::oid = $4 "
	"  ORDER BY last_used_at DESC OFFSET $5) old "
	"WHERE c.ctid = old.ctid",
	5, {UUIDOID, TEXTOID, TEXTOID, OIDOID, INT4OID}};

/* The cache key of a run: a JSON array of values, as canonical jsonb text. */
char *
ce_cache_key(const CeStep *step, CeStepRun *run)
{
	const CeCacheConfig *cc = step->cache;
	int			n = cc->nkey > 0 ? cc->nkey : step->ninput_vars;
	char	  **names = cc->nkey > 0 ? cc->key : step->input_vars;
	StringInfoData b;
	Jsonb	   *jb;
	int			i;

	initStringInfo(&b);
	appendStringInfoChar(&b, '[');
	if (n == 0)
	{
		if (run->rendered_input)
			escape_json(&b, run->rendered_input);
		else
			appendStringInfoString(&b, "null");
	}
	for (i = 0; i < n; i++)
	{
		CeValue		v;
		const char *path[1];

		if (i > 0)
			appendStringInfoChar(&b, ',');
		path[0] = names[i];
		if (!ce_lookup(run->lookup, path, 1, &v) || v.type == CEV_NULL)
			appendStringInfoString(&b, "null");
		else
		{
			Jsonb	   *vj = ce_value_to_jsonb(&v);

			JsonbToCString(&b, &vj->root, VARSIZE(vj));
		}
	}
	appendStringInfoChar(&b, ']');
	jb = ce_text_to_jsonb(b.data);
	return JsonbToCString(NULL, &jb->root, VARSIZE(jb));
}

static void
entry_args(ExecRow *ex, const CeStep *step, const char *key, Datum *v)
{
	v[0] = UUIDPGetDatum(&ex->org);
	v[1] = CStringGetTextDatum(ex->chain_id);
	v[2] = CStringGetTextDatum(step->name);
	v[3] = ObjectIdGetDatum(ex->owner);
	v[4] = CStringGetTextDatum(key);
}

static void
count(ExecRow *ex, const CeStep *step, const char *key, int hits, int misses)
{
	Datum		v[6];

	entry_args(ex, step, key, v);
	v[4] = Int64GetDatum(hits);
	v[5] = Int64GetDatum(misses);
	ce_run_query(&q_count, v, NULL, false, 0);
}

/*
 * A hit: the run succeeded with the stored outputs (run->cached).  A miss
 * is counted when the step has run (ce_cache_store).
 */
bool
ce_cache_lookup(ExecRow *ex, const CeStep *step, const char *key, CeStepRun *run)
{
	Datum		v[5];
	bool		isnull;
	Datum		d;

	entry_args(ex, step, key, v);
	ce_run_query(&q_get, v, NULL, false, 1);
	if (SPI_processed == 0)
		return false;
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	run->outputs = isnull ? NULL : DatumGetJsonbPCopy(d);
	run->ok = true;
	run->cached = true;
	/* the counters' row first, then the entry's: the order of every writer */
	count(ex, step, key, 1, 0);
	entry_args(ex, step, key, v);
	ce_run_query(&q_touch, v, NULL, false, 0);
	return true;
}

/* After a miss: count it, and keep the outputs of a successful run. */
void
ce_cache_store(ExecRow *ex, const CeStep *step, const char *key, CeStepRun *run)
{
	const CeCacheConfig *cc = step->cache;
	Datum		v[7];

	count(ex, step, key, 0, 1);
	if (!run->ok)
		return;
	entry_args(ex, step, key, v);
	v[5] = JsonbPGetDatum(run->outputs ? run->outputs : ce_text_to_jsonb("{}"));
	v[6] = Int32GetDatum(cc->ttl_ms);
	ce_run_query(&q_put, v, NULL, false, 0);
	v[4] = Int32GetDatum(cc->max_entries);
	ce_run_query(&q_evict, v, NULL, false, 0);
}
