/*
 * unit_main.c
 *	  Runs every pure-C unit test group and prints the closing count.
 *	  A group is registered by listing it in UNIT_GROUPS (see Makefile):
 *	  each test_<group>.c defines void run_<group>_tests(void).
 */
#include "unit.h"
#include "ce_pure.h"

int			unit_passed = 0;
int			unit_failed = 0;

#define X(g) extern void run_##g##_tests(void);
UNIT_GROUPS
#undef X

int
main(void)
{
#define X(g) run_##g##_tests(); ce_arena_reset();
	UNIT_GROUPS
#undef X
	printf("unit: %d passed, %d failed\n", unit_passed, unit_failed);
	return unit_failed == 0 ? 0 : 1;
}
