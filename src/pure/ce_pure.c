/*-------------------------------------------------------------------------
 *
 * ce_pure.c
 *	  Allocation, errors, character positions and string buffers for the
 *	  pure modules.
 *
 *-------------------------------------------------------------------------
 */
#include "ce_pure.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#ifdef CE_STANDALONE
#include <stdlib.h>

/* The standalone arena: a list of blocks freed together. */
typedef struct ArenaBlock
{
	struct ArenaBlock *next;
	size_t		size;
	/* payload follows, max-aligned */
	long double align[];
} ArenaBlock;

static ArenaBlock *arena_head = NULL;

void *
ce_alloc(size_t sz)
{
	ArenaBlock *b = calloc(1, sizeof(ArenaBlock) + sz + 1);

	if (b == NULL)
	{
		fprintf(stderr, "out of memory\n");
		abort();
	}
	b->next = arena_head;
	b->size = sz;
	arena_head = b;
	return (void *) b->align;
}

void *
ce_realloc(void *p, size_t oldsz, size_t newsz)
{
	void	   *n = ce_alloc(newsz);

	if (p != NULL)
		memcpy(n, p, oldsz < newsz ? oldsz : newsz);
	return n;
}

void
ce_arena_reset(void)
{
	while (arena_head)
	{
		ArenaBlock *next = arena_head->next;

		free(arena_head);
		arena_head = next;
	}
}
#endif

#ifndef CE_STANDALONE
/* repalloc that accepts NULL and zeroes the new bytes, as the arena does. */
void *
ce_realloc(void *p, size_t oldsz, size_t newsz)
{
	char	   *n;

	if (p == NULL)
		return palloc0(newsz);
	n = repalloc(p, newsz);
	if (newsz > oldsz)
		memset(n + oldsz, 0, newsz - oldsz);
	return n;
}
#endif

char *
ce_strndup(const char *s, size_t len)
{
	char	   *r = ce_alloc(len + 1);

	memcpy(r, s, len);
	r[len] = '\0';
	return r;
}

char *
ce_strdup(const char *s)
{
	return ce_strndup(s, strlen(s));
}

/*
 * The 1-based character position of byte offset off in text: UTF-8
 * sequences count as one character, as PostgreSQL counts positions.
 */
int
ce_char_pos(const char *text, size_t off)
{
	size_t		i;
	int			n = 1;

	for (i = 0; i < off; i++)
		if (((unsigned char) text[i] & 0xC0) != 0x80)
			n++;
	return n;
}

void
ce_error_set(CeError *err, CeErrCode code, const char *fmt,...)
{
	va_list		ap;

	if (err == NULL)
		return;
	err->code = code;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
}

const char *
ce_errcode_sqlstate(CeErrCode code)
{
	switch (code)
	{
		case CE_OK:
			return "00000";
		case CE_ERR_SYNTAX:
			return "42601";
		case CE_ERR_INVALID:
		case CE_ERR_SCHEMA:
			return "22023";
		case CE_ERR_DUPLICATE:
			return "42710";
		case CE_ERR_REFERENCE:
			return "42704";
		case CE_ERR_DEFINITION:
			return "42P17";
		case CE_ERR_LIMIT:
			return "54000";
		case CE_ERR_MISSING_VAR:
			return "22004";
		case CE_ERR_EVAL:
			return "22000";
		case CE_ERR_RESERVED:
			return "42939";
	}
	return "22000";
}

void
ce_buf_init(CeBuf *b)
{
	b->cap = 64;
	b->len = 0;
	b->data = ce_alloc(b->cap);
}

static void
ce_buf_reserve(CeBuf *b, size_t extra)
{
	if (b->len + extra + 1 > b->cap)
	{
		size_t		ncap = b->cap * 2;

		while (ncap < b->len + extra + 1)
			ncap *= 2;
		b->data = ce_realloc(b->data, b->cap, ncap);
		b->cap = ncap;
	}
}

void
ce_buf_append(CeBuf *b, const char *s, size_t len)
{
	ce_buf_reserve(b, len);
	memcpy(b->data + b->len, s, len);
	b->len += len;
	b->data[b->len] = '\0';
}

void
ce_buf_appends(CeBuf *b, const char *s)
{
	ce_buf_append(b, s, strlen(s));
}

void
ce_buf_appendc(CeBuf *b, char c)
{
	ce_buf_append(b, &c, 1);
}

void
ce_buf_printf(CeBuf *b, const char *fmt,...)
{
	va_list		ap;
	char		small[256];
	int			n;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t) n < sizeof(small))
	{
		ce_buf_append(b, small, n);
		return;
	}
	ce_buf_reserve(b, n);
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, n + 1, fmt, ap);
	va_end(ap);
	b->len += n;
}
