/*-------------------------------------------------------------------------
 *
 * json_parse.c
 *	  JSON text to a CeJson tree (cejson.h): the strict parser.
 *
 * The parser follows RFC 8259 strictly: no trailing commas, no leading
 * zeros, no NaN/Infinity, no comments, no control characters inside
 * strings, nothing after the value but whitespace.  The text must be valid
 * UTF-8, which is passed through unchanged; \uXXXX escapes (surrogate pairs
 * included) are decoded to UTF-8.  An escaped NUL (\u0000) is accepted and
 * kept (CeJson.len counts it); jsonb itself never produces one.  Nesting is
 * limited to CE_MAX_JSON_DEPTH (CE_ERR_LIMIT); any other error is
 * CE_ERR_SYNTAX with the 1-based character position in CeError.pos.
 *
 * Objects keep their members in order; a key given twice keeps the first
 * position and the last value, as jsonb does.  Numbers keep the text they
 * were written with, so that serializing loses nothing.
 *
 *-------------------------------------------------------------------------
 */
#include "cejson.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct JsonParser
{
	const char *text;
	size_t		len;
	size_t		off;			/* current byte offset */
	CeError    *err;
	bool		failed;
} JsonParser;

static CeJson *parse_value(JsonParser *p, int depth);

/*
 * Record a parse error at byte offset off.  The position reported is in
 * characters (UTF-8 sequences count once), 1-based.
 */
static void
parse_error_at(JsonParser *p, size_t off, CeErrCode code, const char *msg)
{
	if (p->failed)
		return;
	p->failed = true;
	if (off > p->len)
		off = p->len;
	if (p->err == NULL)
		return;
	ce_error_set(p->err, code, "invalid JSON: %s", msg);
	p->err->pos = ce_char_pos(p->text, off);
}

/* Shorthand: a syntax error at the current offset. */
static void
parse_error(JsonParser *p, const char *msg)
{
	parse_error_at(p, p->off, CE_ERR_SYNTAX, msg);
}

/*
 * Describe the character at byte offset off for a message, e.g. "x" or
 * byte 0x01.
 */
static void
describe_char(JsonParser *p, size_t off, char *out, size_t outlen)
{
	unsigned char c;

	if (off >= p->len)
	{
		snprintf(out, outlen, "end of input");
		return;
	}
	c = (unsigned char) p->text[off];
	if (c >= 0x21 && c < 0x7F)
		snprintf(out, outlen, "\"%c\"", c);
	else
		snprintf(out, outlen, "byte 0x%02X", c);
}

/* Report "expected ..., found ..." at the current offset. */
static void
parse_expected(JsonParser *p, const char *what)
{
	char		found[32];
	char		msg[128];

	if (p->off >= p->len)
	{
		snprintf(msg, sizeof(msg), "expected %s, found end of input", what);
		parse_error(p, msg);
		return;
	}
	describe_char(p, p->off, found, sizeof(found));
	snprintf(msg, sizeof(msg), "expected %s, found %s", what, found);
	parse_error(p, msg);
}

/* Skip JSON whitespace (space, tab, newline, carriage return). */
static void
skip_ws(JsonParser *p)
{
	while (p->off < p->len)
	{
		char		c = p->text[p->off];

		if (c == ' ' || c == '\t' || c == '\n' || c == '\r')
			p->off++;
		else
			break;
	}
}

/*
 * Length of the valid UTF-8 sequence at s (at most avail bytes), or 0 when
 * it is not valid (overlong forms, surrogates and values above U+10FFFF are
 * invalid).
 */
static int
utf8_seq_len(const unsigned char *s, size_t avail)
{
	unsigned char c = s[0];

	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
	{
		if (avail < 2 || (s[1] & 0xC0) != 0x80)
			return 0;
		return 2;
	}
	if (c >= 0xE0 && c <= 0xEF)
	{
		if (avail < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80)
			return 0;
		if (c == 0xE0 && s[1] < 0xA0)
			return 0;			/* overlong */
		if (c == 0xED && s[1] >= 0xA0)
			return 0;			/* surrogate */
		return 3;
	}
	if (c >= 0xF0 && c <= 0xF4)
	{
		if (avail < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 ||
			(s[3] & 0xC0) != 0x80)
			return 0;
		if (c == 0xF0 && s[1] < 0x90)
			return 0;			/* overlong */
		if (c == 0xF4 && s[1] >= 0x90)
			return 0;			/* above U+10FFFF */
		return 4;
	}
	return 0;
}

/* Append code point cp as UTF-8. */
static void
buf_append_utf8(CeBuf *b, unsigned int cp)
{
	char		out[4];

	if (cp < 0x80)
	{
		out[0] = (char) cp;
		ce_buf_append(b, out, 1);
	}
	else if (cp < 0x800)
	{
		out[0] = (char) (0xC0 | (cp >> 6));
		out[1] = (char) (0x80 | (cp & 0x3F));
		ce_buf_append(b, out, 2);
	}
	else if (cp < 0x10000)
	{
		out[0] = (char) (0xE0 | (cp >> 12));
		out[1] = (char) (0x80 | ((cp >> 6) & 0x3F));
		out[2] = (char) (0x80 | (cp & 0x3F));
		ce_buf_append(b, out, 3);
	}
	else
	{
		out[0] = (char) (0xF0 | (cp >> 18));
		out[1] = (char) (0x80 | ((cp >> 12) & 0x3F));
		out[2] = (char) (0x80 | ((cp >> 6) & 0x3F));
		out[3] = (char) (0x80 | (cp & 0x3F));
		ce_buf_append(b, out, 4);
	}
}

/* Read four hex digits at offset off; -1 when they are not. */
static int
read_hex4(JsonParser *p, size_t off)
{
	int			v = 0;
	int			i;

	if (off + 4 > p->len)
		return -1;
	for (i = 0; i < 4; i++)
	{
		char		c = p->text[off + i];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= c - '0';
		else if (c >= 'a' && c <= 'f')
			v |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v |= c - 'A' + 10;
		else
			return -1;
	}
	return v;
}

/*
 * Parse a string starting at the opening quote; the decoded bytes go to
 * *out and *outlen.  Returns false on error.
 */
static bool
parse_string_raw(JsonParser *p, char **out, size_t *outlen)
{
	CeBuf		b;
	size_t		start = p->off;

	p->off++;					/* opening quote */
	ce_buf_init(&b);
	for (;;)
	{
		size_t		run = p->off;
		unsigned char c;

		/* copy plain characters in runs */
		while (p->off < p->len)
		{
			c = (unsigned char) p->text[p->off];
			if (c == '"' || c == '\\' || c < 0x20 || c >= 0x80)
				break;
			p->off++;
		}
		if (p->off > run)
			ce_buf_append(&b, p->text + run, p->off - run);

		if (p->off >= p->len)
		{
			parse_error_at(p, start, CE_ERR_SYNTAX, "unterminated string");
			return false;
		}
		c = (unsigned char) p->text[p->off];
		if (c == '"')
		{
			p->off++;
			break;
		}
		if (c < 0x20)
		{
			char		msg[96];

			snprintf(msg, sizeof(msg),
					 "control character 0x%02X must be escaped in a string", c);
			parse_error(p, msg);
			return false;
		}
		if (c >= 0x80)
		{
			int			n = utf8_seq_len((const unsigned char *) p->text + p->off,
										 p->len - p->off);

			if (n == 0)
			{
				parse_error(p, "invalid UTF-8 byte sequence in a string");
				return false;
			}
			ce_buf_append(&b, p->text + p->off, n);
			p->off += n;
			continue;
		}

		/* backslash */
		if (p->off + 1 >= p->len)
		{
			parse_error_at(p, start, CE_ERR_SYNTAX, "unterminated string");
			return false;
		}
		c = (unsigned char) p->text[p->off + 1];
		switch (c)
		{
			case '"':
			case '\\':
			case '/':
				ce_buf_appendc(&b, (char) c);
				p->off += 2;
				break;
			case 'b':
				ce_buf_appendc(&b, '\b');
				p->off += 2;
				break;
			case 'f':
				ce_buf_appendc(&b, '\f');
				p->off += 2;
				break;
			case 'n':
				ce_buf_appendc(&b, '\n');
				p->off += 2;
				break;
			case 'r':
				ce_buf_appendc(&b, '\r');
				p->off += 2;
				break;
			case 't':
				ce_buf_appendc(&b, '\t');
				p->off += 2;
				break;
			case 'u':
				{
					int			hi = read_hex4(p, p->off + 2);
					unsigned int cp;

					if (hi < 0)
					{
						parse_error(p, "\\u must be followed by four hexadecimal digits");
						return false;
					}
					cp = (unsigned int) hi;
					if (hi >= 0xDC00 && hi <= 0xDFFF)
					{
						parse_error(p, "unpaired Unicode low surrogate in \\u escape");
						return false;
					}
					if (hi >= 0xD800 && hi <= 0xDBFF)
					{
						int			lo = -1;

						if (p->off + 7 < p->len && p->text[p->off + 6] == '\\' &&
							p->text[p->off + 7] == 'u')
							lo = read_hex4(p, p->off + 8);
						if (lo < 0xDC00 || lo > 0xDFFF)
						{
							parse_error(p, "Unicode high surrogate must be followed by a low surrogate");
							return false;
						}
						cp = 0x10000 + (((unsigned int) hi - 0xD800) << 10) +
							((unsigned int) lo - 0xDC00);
						p->off += 6;
					}
					buf_append_utf8(&b, cp);
					p->off += 6;
				}
				break;
			default:
				{
					char		found[32];
					char		msg[96];

					describe_char(p, p->off + 1, found, sizeof(found));
					snprintf(msg, sizeof(msg), "invalid escape \\ followed by %s",
							 found);
					parse_error(p, msg);
					return false;
				}
		}
	}
	*out = b.data;
	*outlen = b.len;
	return true;
}

/* Parse a number per the RFC 8259 grammar. */
static CeJson *
parse_number(JsonParser *p)
{
	size_t		start = p->off;
	size_t		i = p->off;
	bool		integral = true;
	bool		neg = false;
	unsigned long long acc = 0;
	bool		overflow = false;
	CeJson	   *v;

	if (i < p->len && p->text[i] == '-')
	{
		neg = true;
		i++;
	}
	if (i >= p->len || p->text[i] < '0' || p->text[i] > '9')
	{
		p->off = i;
		parse_expected(p, "a digit");
		return NULL;
	}
	if (p->text[i] == '0')
	{
		i++;
		if (i < p->len && p->text[i] >= '0' && p->text[i] <= '9')
		{
			parse_error_at(p, start, CE_ERR_SYNTAX,
						   "numbers must not have leading zeros");
			return NULL;
		}
	}
	else
	{
		while (i < p->len && p->text[i] >= '0' && p->text[i] <= '9')
		{
			unsigned int d = (unsigned int) (p->text[i] - '0');

			if (acc > (~0ULL - d) / 10)
				overflow = true;
			else
				acc = acc * 10 + d;
			i++;
		}
	}
	if (i < p->len && p->text[i] == '.')
	{
		integral = false;
		i++;
		if (i >= p->len || p->text[i] < '0' || p->text[i] > '9')
		{
			p->off = i;
			parse_expected(p, "a digit after the decimal point");
			return NULL;
		}
		while (i < p->len && p->text[i] >= '0' && p->text[i] <= '9')
			i++;
	}
	if (i < p->len && (p->text[i] == 'e' || p->text[i] == 'E'))
	{
		integral = false;
		i++;
		if (i < p->len && (p->text[i] == '+' || p->text[i] == '-'))
			i++;
		if (i >= p->len || p->text[i] < '0' || p->text[i] > '9')
		{
			p->off = i;
			parse_expected(p, "a digit in the exponent");
			return NULL;
		}
		while (i < p->len && p->text[i] >= '0' && p->text[i] <= '9')
			i++;
	}

	v = cejson_new(CEJ_NUMBER);
	v->is_integer = false;
	v->str = ce_strndup(p->text + start, i - start);
	v->len = i - start;
	v->number = strtod(v->str, NULL);
	if (integral && !overflow)
	{
		if (!neg && acc <= 9223372036854775807ULL)
		{
			v->is_integer = true;
			v->integer = (long long) acc;
		}
		else if (neg && acc <= 9223372036854775808ULL)
		{
			v->is_integer = true;
			v->integer = (acc == 9223372036854775808ULL) ?
				(-9223372036854775807LL - 1) : -(long long) acc;
		}
	}
	p->off = i;
	return v;
}

/* FNV-1a hash of a key, for duplicate detection in large objects. */
static unsigned int
key_hash(const char *s, size_t len)
{
	unsigned int h = 2166136261u;
	size_t		i;

	for (i = 0; i < len; i++)
	{
		h ^= (unsigned char) s[i];
		h *= 16777619u;
	}
	return h;
}

/*
 * Fill obj from n parsed members, folding duplicate keys (first position,
 * last value).
 */
static void
object_fill(CeJson *obj, int n, char **keys, size_t *keylens, CeJson **vals)
{
	int			count = 0;
	int			i;

	obj->keys = ce_alloc(sizeof(char *) * (n > 0 ? n : 1));
	obj->keylens = ce_alloc(sizeof(size_t) * (n > 0 ? n : 1));
	obj->items = ce_alloc(sizeof(CeJson *) * (n > 0 ? n : 1));

	if (n <= 16)
	{
		for (i = 0; i < n; i++)
		{
			int			j;

			for (j = 0; j < count; j++)
			{
				if (obj->keylens[j] == keylens[i] &&
					memcmp(obj->keys[j], keys[i], keylens[i]) == 0)
					break;
			}
			if (j < count)
				obj->items[j] = vals[i];
			else
			{
				obj->keys[count] = keys[i];
				obj->keylens[count] = keylens[i];
				obj->items[count] = vals[i];
				count++;
			}
		}
	}
	else
	{
		size_t		size = 64;
		int		   *slots;

		while (size < (size_t) n * 2)
			size *= 2;
		slots = ce_alloc(sizeof(int) * size);	/* 0 = empty, else index+1 */
		for (i = 0; i < n; i++)
		{
			size_t		h = key_hash(keys[i], keylens[i]) & (size - 1);

			for (;;)
			{
				int			s = slots[h];

				if (s == 0)
				{
					slots[h] = count + 1;
					obj->keys[count] = keys[i];
					obj->keylens[count] = keylens[i];
					obj->items[count] = vals[i];
					count++;
					break;
				}
				if (obj->keylens[s - 1] == keylens[i] &&
					memcmp(obj->keys[s - 1], keys[i], keylens[i]) == 0)
				{
					obj->items[s - 1] = vals[i];
					break;
				}
				h = (h + 1) & (size - 1);
			}
		}
		ce_free(slots);
	}
	obj->count = count;
}

/* Grow a parse-time member vector to hold at least n+1 entries. */
static void
grow_vectors(int n, int *cap, char ***keys, size_t **keylens, CeJson ***vals)
{
	int			ncap;

	if (n < *cap)
		return;
	ncap = *cap * 2;
	if (keys)
		*keys = ce_realloc(*keys, sizeof(char *) * *cap, sizeof(char *) * ncap);
	if (keylens)
		*keylens = ce_realloc(*keylens, sizeof(size_t) * *cap,
							  sizeof(size_t) * ncap);
	*vals = ce_realloc(*vals, sizeof(CeJson *) * *cap, sizeof(CeJson *) * ncap);
	*cap = ncap;
}

/* Parse an array; p->off is at '['. */
static CeJson *
parse_array(JsonParser *p, int depth)
{
	CeJson	   *arr = cejson_new(CEJ_ARRAY);
	int			cap = 8;
	int			n = 0;
	CeJson	  **vals = ce_alloc(sizeof(CeJson *) * cap);

	p->off++;
	skip_ws(p);
	if (p->off < p->len && p->text[p->off] == ']')
	{
		p->off++;
		arr->items = vals;
		return arr;
	}
	for (;;)
	{
		CeJson	   *item;

		skip_ws(p);
		item = parse_value(p, depth);
		if (item == NULL)
			return NULL;
		grow_vectors(n, &cap, NULL, NULL, &vals);
		vals[n++] = item;
		skip_ws(p);
		if (p->off < p->len && p->text[p->off] == ',')
		{
			p->off++;
			continue;
		}
		if (p->off < p->len && p->text[p->off] == ']')
		{
			p->off++;
			break;
		}
		parse_expected(p, "\",\" or \"]\"");
		return NULL;
	}
	arr->items = vals;
	arr->count = n;
	return arr;
}

/* Parse an object; p->off is at '{'. */
static CeJson *
parse_object(JsonParser *p, int depth)
{
	CeJson	   *obj = cejson_new(CEJ_OBJECT);
	int			cap = 8;
	int			n = 0;
	char	  **keys = ce_alloc(sizeof(char *) * cap);
	size_t	   *keylens = ce_alloc(sizeof(size_t) * cap);
	CeJson	  **vals = ce_alloc(sizeof(CeJson *) * cap);

	p->off++;
	skip_ws(p);
	if (p->off < p->len && p->text[p->off] == '}')
	{
		p->off++;
		object_fill(obj, 0, keys, keylens, vals);
		return obj;
	}
	for (;;)
	{
		char	   *key;
		size_t		keylen;
		CeJson	   *val;

		skip_ws(p);
		if (p->off >= p->len || p->text[p->off] != '"')
		{
			parse_expected(p, "a string as object key");
			return NULL;
		}
		if (!parse_string_raw(p, &key, &keylen))
			return NULL;
		skip_ws(p);
		if (p->off >= p->len || p->text[p->off] != ':')
		{
			parse_expected(p, "\":\"");
			return NULL;
		}
		p->off++;
		skip_ws(p);
		val = parse_value(p, depth);
		if (val == NULL)
			return NULL;
		grow_vectors(n, &cap, &keys, &keylens, &vals);
		keys[n] = key;
		keylens[n] = keylen;
		vals[n] = val;
		n++;
		skip_ws(p);
		if (p->off < p->len && p->text[p->off] == ',')
		{
			p->off++;
			continue;
		}
		if (p->off < p->len && p->text[p->off] == '}')
		{
			p->off++;
			break;
		}
		parse_expected(p, "\",\" or \"}\"");
		return NULL;
	}
	object_fill(obj, n, keys, keylens, vals);
	return obj;
}

/* Parse a literal word (true, false, null) or report an invalid token. */
static CeJson *
parse_word(JsonParser *p)
{
	size_t		start = p->off;
	size_t		i = p->off;
	size_t		wlen;
	CeJson	   *v;

	while (i < p->len && i - start < 32 &&
		   ((p->text[i] >= 'a' && p->text[i] <= 'z') ||
			(p->text[i] >= 'A' && p->text[i] <= 'Z') ||
			(p->text[i] >= '0' && p->text[i] <= '9') ||
			p->text[i] == '_'))
		i++;
	wlen = i - start;
	if (wlen == 4 && memcmp(p->text + start, "true", 4) == 0)
	{
		v = cejson_new(CEJ_BOOL);
		v->boolean = true;
	}
	else if (wlen == 5 && memcmp(p->text + start, "false", 5) == 0)
		v = cejson_new(CEJ_BOOL);
	else if (wlen == 4 && memcmp(p->text + start, "null", 4) == 0)
		v = cejson_new(CEJ_NULL);
	else
	{
		char		msg[96];

		snprintf(msg, sizeof(msg), "invalid token \"%.*s\"", (int) wlen,
				 p->text + start);
		parse_error(p, msg);
		return NULL;
	}
	p->off = i;
	return v;
}

/* Parse any value at the current offset; depth is the enclosing nesting. */
static CeJson *
parse_value(JsonParser *p, int depth)
{
	char		c;

	if (p->off >= p->len)
	{
		parse_error(p, "unexpected end of input");
		return NULL;
	}
	c = p->text[p->off];
	switch (c)
	{
		case '{':
		case '[':
			if (depth + 1 > CE_MAX_JSON_DEPTH)
			{
				char		msg[96];

				snprintf(msg, sizeof(msg),
						 "nesting exceeds the maximum depth of %d",
						 CE_MAX_JSON_DEPTH);
				parse_error_at(p, p->off, CE_ERR_LIMIT, msg);
				return NULL;
			}
			if (c == '{')
				return parse_object(p, depth + 1);
			return parse_array(p, depth + 1);
		case '"':
			{
				CeJson	   *v = cejson_new(CEJ_STRING);

				if (!parse_string_raw(p, &v->str, &v->len))
					return NULL;
				return v;
			}
		case '-':
		case '0':
		case '1':
		case '2':
		case '3':
		case '4':
		case '5':
		case '6':
		case '7':
		case '8':
		case '9':
			return parse_number(p);
		default:
			if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
				return parse_word(p);
			parse_expected(p, "a JSON value");
			return NULL;
	}
}

/*
 * cejson_parse
 *		Parse len bytes of JSON text.  Returns NULL with err filled (code,
 *		message and pos) when the text is not valid JSON.
 */
CeJson *
cejson_parse(const char *text, size_t len, CeError *err)
{
	JsonParser	p;
	CeJson	   *v;

	p.text = text;
	p.len = text ? len : 0;
	p.off = 0;
	p.err = err;
	p.failed = false;

	skip_ws(&p);
	v = parse_value(&p, 0);
	if (v == NULL || p.failed)
		return NULL;
	skip_ws(&p);
	if (p.off < p.len)
	{
		char		found[32];
		char		msg[96];

		describe_char(&p, p.off, found, sizeof(found));
		snprintf(msg, sizeof(msg), "unexpected %s after the value", found);
		parse_error(&p, msg);
		return NULL;
	}
	return v;
}
