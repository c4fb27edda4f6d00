/*-------------------------------------------------------------------------
 *
 * schema_pattern.c
 *	  The "pattern" keyword of the JSON Schema subset: a pattern rewritten
 *	  for POSIX <regex.h> and refused when it could run away, and the
 *	  built-in matcher that uses it.
 *
 * The built-in pattern matcher is POSIX <regex.h> (extended syntax), with
 * \d and \D accepted for [0-9] and [^0-9] as JSON Schema authors expect.
 * Because glibc's matcher cannot be interrupted, it refuses patterns that
 * could make it run away: longer than CE_MAX_PATTERN_LEN characters, with
 * back references, or whose counted repetitions expand to too large an
 * automaton.  Nothing is cached between calls.
 *
 *-------------------------------------------------------------------------
 */
#include "schema_int.h"

#include <regex.h>
#include <string.h>

#define CE_MAX_PATTERN_LEN		1000	/* characters of a pattern */
#define CE_MAX_PATTERN_COST		2000	/* atoms after expanding {m,n} */
#define CE_MAX_PATTERN_LOOPS	8	/* starred groups after expanding */
#define CE_MAX_PATTERN_GROUPS	32	/* nesting of groups */

/*
 * The cost of a pattern so far, as glibc will compile it: atoms after
 * expanding counted repetitions and "+", and starred groups (loops).
 */
typedef struct PatternCost
{
	double		sums[CE_MAX_PATTERN_GROUPS + 1];	/* atom count of each open
													 * group */
	double		loops[CE_MAX_PATTERN_GROUPS + 1];	/* starred groups in each
													 * open group */
	int			depth;			/* open groups */
	double		last;			/* cost of the last atom or group */
	double		last_loops;		/* starred groups in the last atom */
	bool		last_group;		/* the last atom is a group */
} PatternCost;

/* One plain atom (a character, a class, an escape). */
static void
cost_atom(PatternCost *c)
{
	c->last = 1;
	c->last_loops = 0;
	c->last_group = false;
	c->sums[c->depth] += 1;
}

/* A group repeated without bound: one more loop. */
static void
cost_loop(PatternCost *c)
{
	c->loops[c->depth] += 1;
	c->last_loops += 1;
}

/*
 * The scanners below each read one construct starting at pattern[i], copy
 * it (rewritten where needed) to b, account for its cost, and return the
 * offset after it, or 0 when the pattern is refused.  Those that read a
 * quantifier set *quant.
 */

/* An escape: \d and \D rewritten; back references refused. */
static size_t
scan_escape(PatternCost *c, const char *pattern, size_t i, CeBuf *b)
{
	char		n = pattern[i + 1];

	if (n == '\0' || (n >= '1' && n <= '9'))
		return 0;
	if (n == 'd')
		ce_buf_appends(b, "[0-9]");
	else if (n == 'D')
		ce_buf_appends(b, "[^0-9]");
	else
		ce_buf_append(b, pattern + i, 2);
	cost_atom(c);
	return i + 2;
}

/* A bracket expression, with [:class:], [.coll.] and [=equiv=] inside. */
static size_t
scan_bracket(PatternCost *c, const char *pattern, size_t len, size_t i,
			 CeBuf *b)
{
	size_t		j = i + 1;

	if (j < len && pattern[j] == '^')
		j++;
	if (j < len && pattern[j] == ']')
		j++;
	while (j < len && pattern[j] != ']')
	{
		if (pattern[j] == '[' && j + 1 < len &&
			(pattern[j + 1] == ':' || pattern[j + 1] == '.' ||
			 pattern[j + 1] == '='))
		{
			char		d = pattern[j + 1];
			size_t		k = j + 2;

			while (k + 1 < len && !(pattern[k] == d && pattern[k + 1] == ']'))
				k++;
			if (k + 1 >= len)
				return 0;
			j = k + 2;
		}
		else
			j++;
	}
	if (j >= len)
		return 0;
	ce_buf_append(b, pattern + i, j + 1 - i);
	cost_atom(c);
	return j + 1;
}

/* "(": a new group, refused when nested too deeply. */
static size_t
scan_group_open(PatternCost *c, size_t i, CeBuf *b)
{
	if (c->depth + 1 > CE_MAX_PATTERN_GROUPS)
		return 0;
	c->sums[++c->depth] = 0;
	c->loops[c->depth] = 0;
	ce_buf_appendc(b, '(');
	return i + 1;
}

/* ")": the group becomes the last atom of the enclosing one. */
static size_t
scan_group_close(PatternCost *c, size_t i, CeBuf *b)
{
	if (c->depth == 0)
		return 0;				/* unmatched: regcomp refuses it too */
	c->last = c->sums[c->depth] > 1 ? c->sums[c->depth] : 1;
	c->last_loops = c->loops[c->depth];
	c->depth--;
	c->sums[c->depth] += c->last;
	c->loops[c->depth] += c->last_loops;
	c->last_group = true;
	ce_buf_appendc(b, ')');
	return i + 1;
}

/*
 * "{": a counted repetition {m}, {m,}, {m,n} or {,n}, which glibc compiles
 * by copying the atom; any other "{" is a literal.
 */
static size_t
scan_braces(PatternCost *c, const char *pattern, size_t len, size_t i,
			CeBuf *b, bool *quant)
{
	size_t		j = i + 1;
	double		lo = 0;
	double		hi = -1;
	double		rep;
	bool		ok = false;

	while (j < len && pattern[j] >= '0' && pattern[j] <= '9')
	{
		if (lo < 1e6)
			lo = lo * 10 + (pattern[j] - '0');
		j++;
	}
	if (j > i + 1 && j < len && pattern[j] == '}')
	{
		hi = lo;				/* {m} */
		ok = true;
	}
	else if (j < len && pattern[j] == ',')	/* glibc takes {,n} too */
	{
		j++;
		if (j < len && pattern[j] >= '0' && pattern[j] <= '9')
		{
			hi = 0;
			while (j < len && pattern[j] >= '0' && pattern[j] <= '9')
			{
				if (hi < 1e6)
					hi = hi * 10 + (pattern[j] - '0');
				j++;
			}
		}
		ok = (j < len && pattern[j] == '}');
	}
	if (!ok)
	{
		ce_buf_appendc(b, '{');
		cost_atom(c);
		return i + 1;
	}

	/* glibc copies the atom max(m,n) times, m+1 for {m,} */
	rep = hi >= 0 ? (hi > lo ? hi : lo) : lo + 1;
	if (rep < 1)
		rep = 1;
	c->sums[c->depth] += c->last * (rep - 1);
	c->last *= rep;
	c->loops[c->depth] += c->last_loops * (rep - 1);
	c->last_loops *= rep;
	if (hi < 0 && c->last_group)
		cost_loop(c);
	*quant = true;
	ce_buf_append(b, pattern + i, j + 1 - i);
	return j + 1;
}

/* "+": glibc compiles x+ as xx*, so the atom is copied. */
static size_t
scan_plus(PatternCost *c, size_t i, CeBuf *b, bool *quant)
{
	ce_buf_appendc(b, '+');
	c->sums[c->depth] += c->last;
	c->last *= 2;
	c->loops[c->depth] += c->last_loops;
	c->last_loops *= 2;
	if (c->last_group)
		cost_loop(c);
	*quant = true;
	return i + 1;
}

/* Any other character: "*" and "?" quantify; "|", "^", "$" cost nothing. */
static size_t
scan_other(PatternCost *c, char ch, size_t i, CeBuf *b, bool *quant)
{
	ce_buf_appendc(b, ch);
	if (ch == '*' || ch == '?')
	{
		if (ch == '*' && c->last_group)
			cost_loop(c);
		*quant = true;
	}
	else if (ch != '|' && ch != '^' && ch != '$')
		cost_atom(c);
	return i + 1;
}

/*
 * Rewrite a pattern for regcomp(): \d and \D outside bracket expressions
 * become [0-9] and [^0-9]; with anchor, the search becomes an anchored
 * match of ^.*(pattern), which glibc runs in one pass instead of trying
 * every start position (quadratic on long subjects).  Returns NULL when the
 * pattern is refused: too long, back references, counted repetitions or
 * "+" (which glibc compiles by copying the atom) expanding beyond
 * CE_MAX_PATTERN_COST atoms, more than CE_MAX_PATTERN_LOOPS starred groups
 * after that expansion (glibc's epsilon closures grow exponentially with
 * repeated loops that can match empty, as in (a*)*{20}), more than two
 * quantifiers in a row, groups nested too deeply or unbalanced, or a
 * bracket expression or escape left open.
 */
static char *
prepare_pattern(const char *pattern, bool anchor)
{
	size_t		len = strlen(pattern);
	size_t		i = 0;
	PatternCost c;
	int			quants = 0;		/* quantifiers in a row */
	CeBuf		b;

	if (len > CE_MAX_PATTERN_LEN)
		return NULL;
	memset(&c, 0, sizeof(c));
	ce_buf_init(&b);
	if (anchor)
		ce_buf_appends(&b, "^.*(");
	while (i < len)
	{
		char		ch = pattern[i];
		bool		quant = false;

		switch (ch)
		{
			case '\\':
				i = scan_escape(&c, pattern, i, &b);
				break;
			case '[':
				i = scan_bracket(&c, pattern, len, i, &b);
				break;
			case '(':
				i = scan_group_open(&c, i, &b);
				break;
			case ')':
				i = scan_group_close(&c, i, &b);
				break;
			case '{':
				i = scan_braces(&c, pattern, len, i, &b, &quant);
				break;
			case '+':
				i = scan_plus(&c, i, &b, &quant);
				break;
			default:
				i = scan_other(&c, ch, i, &b, &quant);
				break;
		}
		if (i == 0)
			return NULL;
		if (c.sums[c.depth] > CE_MAX_PATTERN_COST ||
			c.last > CE_MAX_PATTERN_COST ||
			c.loops[c.depth] > CE_MAX_PATTERN_LOOPS)
			return NULL;
		/* a**?... makes glibc's epsilon closures explode: allow "*?" only */
		quants = quant ? quants + 1 : 0;
		if (quants > 2)
			return NULL;
	}
	while (c.depth > 0)
	{
		c.sums[c.depth - 1] += c.sums[c.depth];
		c.loops[c.depth - 1] += c.loops[c.depth];
		c.depth--;
	}
	if (c.sums[0] > CE_MAX_PATTERN_COST || c.loops[0] > CE_MAX_PATTERN_LOOPS)
		return NULL;
	if (anchor)
		ce_buf_appendc(&b, ')');
	return b.data;
}

/*
 * A pattern rewritten for a POSIX extended matcher other than the built-in
 * one (\d and \D expanded, not anchored), or NULL when prepare_pattern()
 * refuses it.
 */
char *
ce_schema_prepare_pattern(const char *pattern)
{
	return prepare_pattern(pattern, false);
}

/*
 * The built-in matcher (POSIX extended, see prepare_pattern()): 1 when
 * pattern matches somewhere in subject, 0 when not, -1 when the pattern is
 * invalid or refused.
 */
int
schema_builtin_regex(const char *pattern, const char *subject, size_t subject_len)
{
	regex_t		re;
	char	   *prepared;
	int			rc;
	int			eflags = 0;
	regmatch_t	m[1];

	/* '.' does not match NUL, so a subject with NUL is searched plainly */
	prepared = prepare_pattern(pattern,
							   memchr(subject, '\0', subject_len) == NULL);
	if (prepared == NULL)
		return -1;
	if (regcomp(&re, prepared, REG_EXTENDED | REG_NOSUB) != 0)
		return -1;
	m[0].rm_so = 0;
	m[0].rm_eo = (regoff_t) subject_len;
#ifdef REG_STARTEND
	eflags = REG_STARTEND;		/* the subject may contain NUL */
#endif
	rc = regexec(&re, subject, 1, m, eflags);
	regfree(&re);
	return rc == 0 ? 1 : 0;
}
