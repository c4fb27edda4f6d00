/*
 * fuzz_plan.c
 *	  libFuzzer harness: JSON text -> cejson_parse -> ce_plan_build.
 *
 * Any input must give a plan or an error with a non-empty message and a
 * known code, never a crash, a hang or unbounded recursion.  When a plan
 * is built, its predecessor lists are checked for consistency and every
 * step is looked up by id.  Build with `make -C test/unit fuzz_plan`.
 */
#include "plan.h"
#include "cejson.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Check what the plan promises about predecessors and lookups. */
static void
check_plan(const CePlan *plan)
{
	int			i,
				k;

	if (plan->nsteps < 1 || plan->nsteps > CE_MAX_STEPS)
		abort();
	for (i = 0; i < plan->nsteps; i++)
	{
		const CeStep *st = &plan->steps[i];

		if (st->index != i || st->name == NULL || st->kind_name == NULL)
			abort();
		for (k = 0; k < st->npreds; k++)
		{
			if (st->preds[k] < 0 || st->preds[k] >= plan->nsteps ||
				st->preds[k] == i)
				abort();
			if (k > 0 && st->preds[k] <= st->preds[k - 1])
				abort();		/* sorted, unique */
		}
		if (ce_plan_step_by_id(plan, st->id) != st)
			abort();
		if (st->fallback != NULL &&
			ce_plan_step_by_id(plan, st->fallback->id) != st->fallback)
			abort();
		if ((st->on_failure == CE_ONFAIL_FALLBACK) != (st->fallback != NULL))
			abort();
		(void) ce_retry_delay_ms(&st->retry, st->retry.maxRetries + 1);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	CeError		err;
	CeWarnings	warnings = {0, NULL};
	CeJson	   *def;
	CePlan	   *plan;

	if (size > CE_MAX_DEFINITION_BYTES)
		return 0;
	memset(&err, 0, sizeof(err));
	def = cejson_parse((const char *) data, size, &err);
	if (def != NULL)
	{
		plan = ce_plan_build(def, &err, &warnings);
		if (plan != NULL)
			check_plan(plan);
		else if (err.code == CE_OK || err.message[0] == '\0' ||
				 memchr(err.path, '\0', sizeof(err.path)) == NULL)
			abort();
	}
	ce_arena_reset();
	return 0;
}
