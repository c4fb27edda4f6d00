/*
 * unit.h
 *	  A tiny test harness for the pure-C unit tests (built with
 *	  -DCE_STANDALONE).  Each test file defines run_<name>_tests(); the
 *	  runner (unit_main.c) calls them all and prints "N passed, N failed".
 */
#ifndef CE_UNIT_H
#define CE_UNIT_H

#include <stdio.h>
#include <string.h>

extern int	unit_passed;
extern int	unit_failed;

#define CHECK(cond, name) \
	do { \
		if (cond) unit_passed++; \
		else { unit_failed++; \
			fprintf(stderr, "FAIL %s:%d: %s (%s)\n", __FILE__, __LINE__, (name), #cond); } \
	} while (0)

#define CHECK_STR(got, want, name) \
	do { \
		const char *g_ = (got), *w_ = (want); \
		if (g_ != NULL && w_ != NULL && strcmp(g_, w_) == 0) unit_passed++; \
		else { unit_failed++; \
			fprintf(stderr, "FAIL %s:%d: %s: got [%s] want [%s]\n", __FILE__, __LINE__, (name), \
					g_ ? g_ : "(null)", w_ ? w_ : "(null)"); } \
	} while (0)

#endif
