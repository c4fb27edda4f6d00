/*-------------------------------------------------------------------------
 *
 * chainexec_watch.c
 *	  Follow chainexec executions live, from the events that the engine
 *	  sends with NOTIFY (SPEC section 7).  A small libpq client.
 *
 *	  chainexec_watch [OPTION]... [EXECUTION_ID]
 *
 * With an execution id it follows that execution and exits when it ends,
 * with an exit status that says how it ended; without one it shows every
 * execution whose events arrive, until -t expires or it is interrupted.
 *
 * On a terminal it redraws in place, across the terminal's full width, each
 * execution: a progress bar (the events' "progress") that takes the room
 * the other fields leave, the status ("waiting" while a step waits for a
 * person, a timer or a retry's back-off), the current step, the number of
 * retries and failures seen, the elapsed time and the estimated time left
 * (the events' etaMs, counted down); one line each on a wide terminal, two
 * or three on a narrow one (see draw()).  When standard output is not a
 * terminal, or with --lines, it prints one line per event instead,
 * key=value pairs in a fixed order:
 *
 *	  event=step_completed execution=<uuid> chain=<id> step=3 name=reserve
 *	  progress=40 status=completed attempt=1 eta_ms=- ts=<ISO 8601>
 *
 * (one line; "-" stands for a missing value; a value with blanks, quotes,
 * "=" or control characters is written in double quotes with C escapes;
 * the rendered input of a step that starts waiting comes last as
 * input="...", read from chainexec.step_runs, since payloads carry no
 * values).  With --raw it prints each payload as received, one per line.
 *
 * It subscribes with chainexec.chain_listen(), which LISTENs on the
 * channels of the events its role may read (those of its roles'
 * executions; all of the organization's for chainexec_admin), or with
 * --role on one role's; -c LISTENs on a channel by name instead.
 *
 * Following one execution, it LISTENs first and then reads the execution's
 * state (chain_status), so that an execution that has already ended, or
 * ends in between, is not missed; it prints that state as a line with
 * event=state (and retries=, failures=).  It reads the state again after a
 * few quiet seconds, so that it also ends for a chain whose notify setting
 * is "none".
 *
 * Glossary: a chain is a workflow definition; an execution is one run of
 * a chain; a step line is one step of an execution; attempt counts the
 * runs of a step line.
 *
 * Exit status: 0 the execution completed; 1 it failed, was compensated or
 * timed out; 2 it was cancelled; 3 usage or connection error (or no such
 * execution); 4 -t expired before it ended; 130 interrupted.  Without an
 * execution id: 0 when -t expires or on interrupt, 3 on error.
 *
 *-------------------------------------------------------------------------
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>

#include "libpq-fe.h"

#define WATCH_VERSION "0.2.0"

/* Exit statuses (documented in usage()). */
#define EXIT_COMPLETED		0
#define EXIT_FAILED			1
#define EXIT_CANCELLED		2
#define EXIT_USAGE			3
#define EXIT_TIMEDOUT		4
#define EXIT_INTERRUPTED	130

/* A payload holds at most this many keys; more are ignored. */
#define MAX_FIELDS			32
/* Executions remembered for display. */
#define MAX_EXECS			256
/* Without events for this long, a followed execution's state is read again. */
#define QUIET_RECHECK_SECS	3.0
/* Progress bar width: it takes the room the other fields leave, within these. */
#define BAR_WIDTH_MIN		10
#define BAR_WIDTH_MAX		100
/*
 * Narrowest bar for which a row is drawn on one line; else it takes two or
 * three, with a bar no wider than this (so that the bar never narrows as
 * the terminal widens).
 */
#define BAR_WIDTH_ONE_LINE	30
/* Steps of one execution remembered as waiting (for a person, a timer, a retry). */
#define MAX_WAITING			16
/* A display row, in bytes (terminals wider than this are drawn this wide). */
#define ROW_MAX				1024

typedef enum FieldType
{
	FT_STRING,
	FT_NUMBER,
	FT_LITERAL,					/* true, false */
	FT_NULL,
	FT_NESTED					/* an object or array, kept as raw text */
} FieldType;

typedef struct Field
{
	char	   *key;
	char	   *value;			/* decoded string, or the token's text */
	FieldType	type;
} Field;

typedef struct Payload
{
	int			nfields;
	Field		fields[MAX_FIELDS];
} Payload;

/* What the display knows of one execution. */
typedef struct Exec
{
	char		id[64];
	char		chain[72];
	char		status[24];		/* the execution's status, as far as known */
	int			progress;		/* never decreases */
	int			step;			/* last step an event named; 0: none */
	char		step_name[72];
	char		step_status[24];
	int			attempt;
	int			retries;
	int			failures;
	int			waiting[MAX_WAITING];	/* steps waiting for a person or a timer */
	int			nwaiting;
	double		eta_ms;			/* the last estimate of the time left, in ms */
	double		eta_t;			/* monotonic time of that estimate; 0: none */
	char		state_ts[40];	/* when its state was read (events up to then are in it) */
	double		t0;				/* monotonic time it started (or was first seen) */
	double		t1;				/* when it ended; 0 while it runs */
	bool		done;
	unsigned long seq;			/* order of first appearance */
} Exec;

/* Options */
static const char *opt_dbname = NULL;
static const char *opt_channel = NULL;
static const char *opt_role = NULL;
static double opt_timeout = 0;
static bool opt_lines = false;
static bool opt_raw = false;
static bool opt_verbose = false;
static bool opt_color = true;
static const char *opt_execution = NULL;

static const char *progname = "chainexec_watch";
static PGconn *conn = NULL;
static bool tty_mode = false;
static volatile sig_atomic_t interrupted = 0;

static Exec execs[MAX_EXECS];
static int	nexecs = 0;
static unsigned long exec_seq = 0;
static int	drawn_rows = 0;
static bool cursor_hidden = false;

static void usage(FILE *out);
static void fail(int code, const char *fmt,...) __attribute__((format(printf, 2, 3), noreturn));
static void verbose(const char *fmt,...) __attribute__((format(printf, 1, 2)));
static double now_monotonic(void);
static void on_signal(int signo);
static void restore_terminal(void);
static bool parse_payload(const char *s, Payload *p);
static void free_payload(Payload *p);
static const Field *field(const Payload *p, const char *key);
static const char *field_text(const Payload *p, const char *key);
static int	field_int(const Payload *p, const char *key, int dflt);
static bool is_final_status(const char *status);
static bool is_terminal_event(const char *event);
static int	exit_code_for(const char *status);
static Exec *find_exec(const char *id, bool create);
static void apply_event(Exec *e, const Payload *p);
static void set_waiting(Exec *e, int step, bool waits);
static void print_value(FILE *out, const char *key, const char *value);
static void print_event_line(const Payload *p);
static void print_state_line(const Exec *e, const char *eta);
static void draw(void);
static bool read_state(const char *id, Exec **result, bool print, bool quiet);
static void listen_on(const char *channel);
static char *subscribe(void);
static void print_step_input(const char *execution, const char *step);

/* Print the usage text to out. */
static void
usage(FILE *out)
{
	fprintf(out,
			"%s follows chainexec executions live, from their NOTIFY events.\n"
			"\n"
			"Usage:\n"
			"  %s [OPTION]... [EXECUTION_ID]\n"
			"\n"
			"With EXECUTION_ID, follows that execution and exits when it ends; without,\n"
			"shows every execution whose events arrive, until -t expires or Ctrl-C.\n"
			"\n"
			"Options:\n"
			"  -d, --dbname=CONNINFO   database name or connection string (default: the\n"
			"                          PGHOST, PGPORT, PGDATABASE, PGUSER, ... variables)\n"
			"  -R, --role=ROLE         only the events of ROLE's executions (default: of\n"
			"                          every role you are a member of, through\n"
			"                          chainexec.chain_listen())\n"
			"  -c, --channel=NAME      LISTEN on the channel NAME instead of calling\n"
			"                          chainexec.chain_listen()\n"
			"  -t, --timeout=SECONDS   stop after SECONDS\n"
			"  -l, --lines             one line per event, even on a terminal\n"
			"  -r, --raw               print each event's JSON payload as received\n"
			"      --no-color          no colours on a terminal (also: NO_COLOR set)\n"
			"  -v, --verbose           say what it does on standard error\n"
			"  -V, --version           print the version and exit\n"
			"  -h, --help              print this help and exit\n"
			"\n"
			"On a terminal, each execution is redrawn in place, across the terminal's\n"
			"width ($COLUMNS when it cannot be asked): id, chain, progress bar and percent,\n"
			"status (\"waiting\" while a step waits for a person, a timer or a retry),\n"
			"current step, retries and failures so far, time since it started, and the\n"
			"estimated time left (from the chain's past runs); on one line when the\n"
			"terminal is wide enough, else on two or three, cutting no field off.\n"
			"\n"
			"Line format (--lines, or standard output not a terminal), one line per event:\n"
			"  event=step_completed execution=UUID chain=ID step=3 name=reserve progress=40\n"
			"  status=completed attempt=1 eta_ms=- ts=TIMESTAMP [input=\"...\"]\n"
			"  (input: the rendered input of a step that starts waiting, if you may read it)\n"
			"  (\"-\" for a missing value; values with blanks, quotes, \"=\" or control\n"
			"  characters are double-quoted with C escapes).  Following one execution, the\n"
			"  first line is its current state: event=state ... retries=N failures=N.\n"
			"\n"
			"Exit status, following one execution:\n"
			"  0  it completed\n"
			"  1  it failed, was compensated, or timed out\n"
			"  2  it was cancelled\n"
			"  3  usage or connection error, or no such execution\n"
			"  4  -t expired before it ended\n"
			"  130  interrupted\n"
			"Without EXECUTION_ID: 0 when -t expires or on interrupt, 3 on error.\n",
			progname, progname);
}

/* Report an error on stderr and exit with code. */
static void
fail(int code, const char *fmt,...)
{
	va_list		ap;

	restore_terminal();
	fprintf(stderr, "%s: ", progname);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (conn)
		PQfinish(conn);
	exit(code);
}

/* With -v, a line on stderr. */
static void
verbose(const char *fmt,...)
{
	va_list		ap;

	if (!opt_verbose)
		return;
	fprintf(stderr, "%s: ", progname);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stderr);
}

/* Seconds on the monotonic clock. */
static double
now_monotonic(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* SIGINT, SIGTERM, SIGHUP: stop at the next loop iteration. */
static void
on_signal(int signo)
{
	(void) signo;
	interrupted = 1;
}

/* Show the cursor again if we hid it. */
static void
restore_terminal(void)
{
	if (cursor_hidden)
	{
		fputs("\033[?25h", stdout);
		fflush(stdout);
		cursor_hidden = false;
	}
}

/* ---------------------------------------------------------------------
 * Payloads: a flat JSON object of scalars.  Nested values are kept as
 * raw text; a malformed payload is refused.
 * --------------------------------------------------------------------- */

typedef struct Cursor
{
	const char *s;
	size_t		pos;
} Cursor;

/* Skip JSON white space. */
static void
skip_ws(Cursor *c)
{
	while (c->s[c->pos] == ' ' || c->s[c->pos] == '\t' || c->s[c->pos] == '\n' || c->s[c->pos] == '\r')
		c->pos++;
}

/* Append the UTF-8 encoding of code point cp to out (room for 4 bytes). */
static size_t
put_utf8(char *out, unsigned long cp)
{
	if (cp < 0x80)
	{
		out[0] = (char) cp;
		return 1;
	}
	if (cp < 0x800)
	{
		out[0] = (char) (0xC0 | (cp >> 6));
		out[1] = (char) (0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000)
	{
		out[0] = (char) (0xE0 | (cp >> 12));
		out[1] = (char) (0x80 | ((cp >> 6) & 0x3F));
		out[2] = (char) (0x80 | (cp & 0x3F));
		return 3;
	}
	out[0] = (char) (0xF0 | (cp >> 18));
	out[1] = (char) (0x80 | ((cp >> 12) & 0x3F));
	out[2] = (char) (0x80 | ((cp >> 6) & 0x3F));
	out[3] = (char) (0x80 | (cp & 0x3F));
	return 4;
}

/* Read 4 hex digits at c; -1 when they are not there. */
static long
read_hex4(Cursor *c)
{
	long		v = 0;
	int			i;

	for (i = 0; i < 4; i++)
	{
		char		h = c->s[c->pos];

		if (!isxdigit((unsigned char) h))
			return -1;
		v = v * 16 + (isdigit((unsigned char) h) ? h - '0' : (tolower((unsigned char) h) - 'a' + 10));
		c->pos++;
	}
	return v;
}

/* Parse a JSON string at c (which is at the opening quote); malloc'd result or NULL. */
static char *
parse_string(Cursor *c)
{
	size_t		start = c->pos + 1;
	size_t		cap;
	char	   *out;
	size_t		n = 0;

	if (c->s[c->pos] != '"')
		return NULL;
	c->pos++;
	/* the decoded text is never longer than the encoded one */
	cap = strlen(c->s + start) + 1;
	out = malloc(cap);
	if (out == NULL)
		return NULL;
	for (;;)
	{
		unsigned char ch = (unsigned char) c->s[c->pos];

		if (ch == '\0' || ch < 0x20)
			break;
		c->pos++;
		if (ch == '"')
		{
			out[n] = '\0';
			return out;
		}
		if (ch != '\\')
		{
			out[n++] = (char) ch;
			continue;
		}
		ch = (unsigned char) c->s[c->pos++];
		switch (ch)
		{
			case '"':
			case '\\':
			case '/':
				out[n++] = (char) ch;
				break;
			case 'b':
				out[n++] = '\b';
				break;
			case 'f':
				out[n++] = '\f';
				break;
			case 'n':
				out[n++] = '\n';
				break;
			case 'r':
				out[n++] = '\r';
				break;
			case 't':
				out[n++] = '\t';
				break;
			case 'u':
				{
					long		cp = read_hex4(c);

					if (cp < 0)
						goto bad;
					if (cp >= 0xD800 && cp <= 0xDBFF && c->s[c->pos] == '\\' && c->s[c->pos + 1] == 'u')
					{
						long		lo;

						c->pos += 2;
						lo = read_hex4(c);
						if (lo >= 0xDC00 && lo <= 0xDFFF)
							cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
						else
							cp = '?';
					}
					else if (cp >= 0xD800 && cp <= 0xDFFF)
						cp = '?';
					if (cp == 0)
						cp = '?';
					/* "\uXXXX" is 6 bytes, its UTF-8 at most 4 */
					n += put_utf8(out + n, (unsigned long) cp);
					break;
				}
			default:
				goto bad;
		}
	}
bad:
	free(out);
	return NULL;
}

/* Skip a nested object or array at c; false when unbalanced. */
static bool
skip_nested(Cursor *c)
{
	int			depth = 0;
	bool		in_string = false;

	do
	{
		char		ch = c->s[c->pos];

		if (ch == '\0')
			return false;
		c->pos++;
		if (in_string)
		{
			if (ch == '\\' && c->s[c->pos] != '\0')
				c->pos++;
			else if (ch == '"')
				in_string = false;
		}
		else if (ch == '"')
			in_string = true;
		else if (ch == '{' || ch == '[')
		{
			if (++depth > 64)
				return false;
		}
		else if (ch == '}' || ch == ']')
			depth--;
	} while (depth > 0);
	return true;
}

/* Parse a payload; false when it is not a JSON object. */
static bool
parse_payload(const char *s, Payload *p)
{
	Cursor		c;

	memset(p, 0, sizeof(*p));
	c.s = s;
	c.pos = 0;
	skip_ws(&c);
	if (s[c.pos] != '{')
		return false;
	c.pos++;
	skip_ws(&c);
	if (s[c.pos] == '}')
		return true;
	for (;;)
	{
		char	   *key;
		char	   *value = NULL;
		FieldType	type;
		size_t		vstart;

		skip_ws(&c);
		key = parse_string(&c);
		if (key == NULL)
			goto bad;
		skip_ws(&c);
		if (s[c.pos] != ':')
		{
			free(key);
			goto bad;
		}
		c.pos++;
		skip_ws(&c);
		vstart = c.pos;
		if (s[c.pos] == '"')
		{
			type = FT_STRING;
			value = parse_string(&c);
		}
		else
		{
			if (s[c.pos] == '{' || s[c.pos] == '[')
			{
				type = FT_NESTED;
				if (!skip_nested(&c))
				{
					free(key);
					goto bad;
				}
			}
			else
			{
				while (s[c.pos] != '\0' && s[c.pos] != ',' && s[c.pos] != '}' &&
					   !isspace((unsigned char) s[c.pos]))
					c.pos++;
				if (c.pos == vstart)
				{
					free(key);
					goto bad;
				}
				if (strncmp(s + vstart, "null", 4) == 0 && c.pos - vstart == 4)
					type = FT_NULL;
				else if (s[vstart] == 't' || s[vstart] == 'f')
					type = FT_LITERAL;
				else
					type = FT_NUMBER;
			}
			value = malloc(c.pos - vstart + 1);
			if (value)
			{
				memcpy(value, s + vstart, c.pos - vstart);
				value[c.pos - vstart] = '\0';
			}
		}
		if (value == NULL)
		{
			free(key);
			goto bad;
		}
		if (p->nfields < MAX_FIELDS)
		{
			p->fields[p->nfields].key = key;
			p->fields[p->nfields].value = value;
			p->fields[p->nfields].type = type;
			p->nfields++;
		}
		else
		{
			free(key);
			free(value);
		}
		skip_ws(&c);
		if (s[c.pos] == ',')
		{
			c.pos++;
			continue;
		}
		if (s[c.pos] == '}')
			return true;
		goto bad;
	}
bad:
	free_payload(p);
	return false;
}

/* Free what parse_payload allocated. */
static void
free_payload(Payload *p)
{
	int			i;

	for (i = 0; i < p->nfields; i++)
	{
		free(p->fields[i].key);
		free(p->fields[i].value);
	}
	p->nfields = 0;
}

/* The field named key, or NULL. */
static const Field *
field(const Payload *p, const char *key)
{
	int			i;

	for (i = 0; i < p->nfields; i++)
		if (strcmp(p->fields[i].key, key) == 0)
			return &p->fields[i];
	return NULL;
}

/* A field's text, or NULL when it is missing or null. */
static const char *
field_text(const Payload *p, const char *key)
{
	const Field *f = field(p, key);

	if (f == NULL || f->type == FT_NULL)
		return NULL;
	return f->value;
}

/* A field as an integer, or dflt when it is missing, null or not a number. */
static int
field_int(const Payload *p, const char *key, int dflt)
{
	const char *t = field_text(p, key);
	char	   *end;
	long		v;

	if (t == NULL)
		return dflt;
	errno = 0;
	v = strtol(t, &end, 10);
	if (end == t || errno != 0 || v < -2147483647L || v > 2147483647L)
		return dflt;
	return (int) v;
}

/* ---------------------------------------------------------------------
 * Executions
 * --------------------------------------------------------------------- */

/* Whether an execution status is final. */
static bool
is_final_status(const char *status)
{
	return strcmp(status, "completed") == 0 || strcmp(status, "failed") == 0 ||
		strcmp(status, "cancelled") == 0 || strcmp(status, "timeout") == 0 ||
		strcmp(status, "compensated") == 0;
}

/* Whether an event ends its execution. */
static bool
is_terminal_event(const char *event)
{
	return strcmp(event, "chain_completed") == 0 || strcmp(event, "chain_failed") == 0 ||
		strcmp(event, "chain_cancelled") == 0 || strcmp(event, "chain_timeout") == 0;
}

/* The exit status for an execution's final status. */
static int
exit_code_for(const char *status)
{
	if (strcmp(status, "completed") == 0)
		return EXIT_COMPLETED;
	if (strcmp(status, "cancelled") == 0)
		return EXIT_CANCELLED;
	return EXIT_FAILED;
}

/* Copy src into a fixed buffer of size n, truncating. */
static void
set_text(char *dst, size_t n, const char *src)
{
	snprintf(dst, n, "%s", src ? src : "");
}

/* The display entry of an execution; with create, made when missing. */
static Exec *
find_exec(const char *id, bool create)
{
	int			i;
	int			victim = -1;
	Exec	   *e;

	for (i = 0; i < nexecs; i++)
		if (strcasecmp(execs[i].id, id) == 0)
			return &execs[i];
	if (!create)
		return NULL;
	if (nexecs < MAX_EXECS)
		victim = nexecs++;
	else
	{
		/* forget the oldest finished execution, else the oldest one */
		for (i = 0; i < nexecs; i++)
			if (execs[i].done && (victim < 0 || execs[i].seq < execs[victim].seq))
				victim = i;
		if (victim < 0)
			for (i = 0; i < nexecs; i++)
				if (victim < 0 || execs[i].seq < execs[victim].seq)
					victim = i;
	}
	e = &execs[victim];
	memset(e, 0, sizeof(*e));
	set_text(e->id, sizeof(e->id), id);
	set_text(e->status, sizeof(e->status), "running");
	e->t0 = now_monotonic();
	e->seq = ++exec_seq;
	return e;
}

/* Update an execution's display state from one of its events. */
static void
apply_event(Exec *e, const Payload *p)
{
	const char *event = field_text(p, "event");
	const char *status = field_text(p, "status");
	const char *chain = field_text(p, "chainId");
	int			progress = field_int(p, "progress", -1);
	int			step = field_int(p, "stepId", 0);

	if (event == NULL)
		return;
	/* an event that committed before the state was read is counted in it */
	if (e->state_ts[0] && field_text(p, "ts") && strcmp(field_text(p, "ts"), e->state_ts) <= 0)
		return;
	if (chain && e->chain[0] == '\0')
		set_text(e->chain, sizeof(e->chain), chain);
	if (progress > e->progress)
		e->progress = progress > 100 ? 100 : progress;

	if (field_text(p, "etaMs") != NULL && field_int(p, "etaMs", -1) >= 0)
	{
		e->eta_ms = field_int(p, "etaMs", 0);
		e->eta_t = now_monotonic();
	}

	if (step > 0)
	{
		bool		waits;

		e->step = step;
		set_text(e->step_name, sizeof(e->step_name), field_text(p, "stepName"));
		set_text(e->step_status, sizeof(e->step_status), status);
		e->attempt = field_int(p, "attempt", 0);
		if (strcmp(event, "step_retry_scheduled") == 0)
		{
			e->retries++;
			set_text(e->step_status, sizeof(e->step_status), "retry scheduled");
		}
		else if (strcmp(event, "step_failed") == 0)
			e->failures++;
		/* a step waits for a person, a timer or its retry's back-off */
		waits = strcmp(event, "step_retry_scheduled") == 0 ||
			(strcmp(event, "step_started") == 0 && status && strcmp(status, "waiting") == 0);
		set_waiting(e, step, waits);
	}

	if (e->done)
		return;					/* a late event of an ended execution */
	if (strcmp(event, "chain_started") == 0)
		set_text(e->status, sizeof(e->status), "pending");
	else if (strcmp(event, "chain_paused") == 0)
		set_text(e->status, sizeof(e->status), "paused");
	else if (strcmp(event, "chain_resumed") == 0)
		set_text(e->status, sizeof(e->status), status && *status ? status : "running");
	else if (strcmp(event, "compensation_started") == 0)
		set_text(e->status, sizeof(e->status), "compensating");
	else if (is_terminal_event(event))
	{
		if (status && is_final_status(status))
			set_text(e->status, sizeof(e->status), status);
		else if (strcmp(event, "chain_completed") == 0)
			set_text(e->status, sizeof(e->status), "completed");
		else if (strcmp(event, "chain_cancelled") == 0)
			set_text(e->status, sizeof(e->status), "cancelled");
		else if (strcmp(event, "chain_timeout") == 0)
			set_text(e->status, sizeof(e->status), "timeout");
		else
			set_text(e->status, sizeof(e->status), "failed");
		if (strcmp(e->status, "completed") == 0)
			e->progress = 100;
		e->done = true;
		e->t1 = now_monotonic();
	}
	else if (step > 0 && strcmp(e->status, "compensating") != 0 && strcmp(e->status, "paused") != 0)
		set_text(e->status, sizeof(e->status), e->nwaiting > 0 ? "waiting" : "running");
}

/* Remember whether step waits (for a person, a timer, a retry's back-off). */
static void
set_waiting(Exec *e, int step, bool waits)
{
	int			i;

	for (i = 0; i < e->nwaiting; i++)
		if (e->waiting[i] == step)
			break;
	if (waits && i == e->nwaiting && e->nwaiting < MAX_WAITING)
		e->waiting[e->nwaiting++] = step;
	else if (!waits && i < e->nwaiting)
		e->waiting[i] = e->waiting[--e->nwaiting];
}

/* ---------------------------------------------------------------------
 * Output
 * --------------------------------------------------------------------- */

/* Print " key=value", quoting the value when it needs it; NULL prints "-". */
static void
print_value(FILE *out, const char *key, const char *value)
{
	const unsigned char *v = (const unsigned char *) value;
	bool		quote = false;

	fprintf(out, "%s%s=", strcmp(key, "event") == 0 ? "" : " ", key);
	if (value == NULL)
	{
		fputc('-', out);
		return;
	}
	if (*v == '\0')
		quote = true;
	for (; *v; v++)
		if (*v <= ' ' || *v == '"' || *v == '\\' || *v == '=' || *v == 0x7F)
			quote = true;
	if (!quote)
	{
		fputs(value, out);
		return;
	}
	fputc('"', out);
	for (v = (const unsigned char *) value; *v; v++)
	{
		switch (*v)
		{
			case '"':
				fputs("\\\"", out);
				break;
			case '\\':
				fputs("\\\\", out);
				break;
			case '\n':
				fputs("\\n", out);
				break;
			case '\r':
				fputs("\\r", out);
				break;
			case '\t':
				fputs("\\t", out);
				break;
			default:
				if (*v < 0x20 || *v == 0x7F)
					fprintf(out, "\\x%02x", *v);
				else
					fputc(*v, out);
		}
	}
	fputc('"', out);
}

/* --lines: one line for an event. */
static void
print_event_line(const Payload *p)
{
	const Field *in = field(p, "input");

	print_value(stdout, "event", field_text(p, "event"));
	print_value(stdout, "execution", field_text(p, "executionId"));
	print_value(stdout, "chain", field_text(p, "chainId"));
	print_value(stdout, "step", field_text(p, "stepId"));
	print_value(stdout, "name", field_text(p, "stepName"));
	print_value(stdout, "progress", field_text(p, "progress"));
	print_value(stdout, "status", field_text(p, "status"));
	print_value(stdout, "attempt", field_text(p, "attempt"));
	print_value(stdout, "eta_ms", field_text(p, "etaMs"));
	print_value(stdout, "ts", field_text(p, "ts"));
	if (in && in->type != FT_NULL)
		print_value(stdout, "input", in->value);
	else if (field_text(p, "event") && strcmp(field_text(p, "event"), "step_started") == 0 &&
			 field_text(p, "executionId") && field_text(p, "stepId"))
		print_step_input(field_text(p, "executionId"), field_text(p, "stepId"));
	fputc('\n', stdout);
	fflush(stdout);
}

/* --lines: the state line of a followed execution. */
static void
print_state_line(const Exec *e, const char *eta)
{
	char		num[32];

	print_value(stdout, "event", "state");
	print_value(stdout, "execution", e->id);
	print_value(stdout, "chain", e->chain[0] ? e->chain : NULL);
	snprintf(num, sizeof(num), "%d", e->step);
	print_value(stdout, "step", e->step > 0 ? num : NULL);
	print_value(stdout, "name", e->step_name[0] ? e->step_name : NULL);
	snprintf(num, sizeof(num), "%d", e->progress);
	print_value(stdout, "progress", num);
	print_value(stdout, "status", e->status);
	snprintf(num, sizeof(num), "%d", e->attempt);
	print_value(stdout, "attempt", e->step > 0 ? num : NULL);
	print_value(stdout, "eta_ms", eta && *eta ? eta : NULL);
	print_value(stdout, "ts", NULL);
	snprintf(num, sizeof(num), "%d", e->retries);
	print_value(stdout, "retries", num);
	snprintf(num, sizeof(num), "%d", e->failures);
	print_value(stdout, "failures", num);
	fputc('\n', stdout);
	fflush(stdout);
}

/* The colour escape for an execution's status ("" when none). */
static const char *
status_color(const Exec *e)
{
	if (!opt_color)
		return "";
	if (strcmp(e->status, "completed") == 0)
		return "\033[32m";
	if (strcmp(e->status, "cancelled") == 0 || strcmp(e->status, "paused") == 0)
		return "\033[33m";
	if (e->done || strcmp(e->status, "compensating") == 0)
		return "\033[31m";
	return "";
}

/* A duration for people: "12.3s", "4m05s", "2h07m" ("-" when negative). */
static void
format_duration(char *buf, size_t n, double secs, bool tenths)
{
	long		s;

	if (secs < 0)
	{
		snprintf(buf, n, "-");
		return;
	}
	if (secs < 60)
	{
		if (tenths)
			snprintf(buf, n, "%.1fs", secs);
		else
			snprintf(buf, n, "%lds", (long) (secs + 0.5));
		return;
	}
	s = (long) secs;
	if (s < 3600)
		snprintf(buf, n, "%ldm%02lds", s / 60, s % 60);
	else
		snprintf(buf, n, "%ldh%02ldm", s / 3600, (s % 3600) / 60);
}

/* The time left, from the last estimate less the time since: "-" when unknown or ended. */
static void
format_eta(const Exec *e, char *buf, size_t n)
{
	double		left;

	if (e->done || e->eta_t == 0)
	{
		snprintf(buf, n, "-");
		return;
	}
	left = e->eta_ms / 1000.0 - (now_monotonic() - e->eta_t);
	format_duration(buf, n, left < 0 ? 0 : left, false);
}

/*
 * "step 3 reserve_stock completed, attempt 2" (or "-"); the step's status
 * is left out when it is the execution's ("waiting").
 */
static void
format_step(const Exec *e, char *buf, size_t n)
{
	const char *st = strcmp(e->step_status, e->status) == 0 ? "" : e->step_status;
	char		attempt[32] = "";

	if (e->step <= 0)
	{
		snprintf(buf, n, "-");
		return;
	}
	if (e->attempt > 1)
		snprintf(attempt, sizeof(attempt), "%sattempt %d", *st ? ", " : "", e->attempt);
	snprintf(buf, n, "step %d %s%s%s%s", e->step, e->step_name, *st || *attempt ? " " : "", st, attempt);
}

/* The progress bar: width characters between brackets. */
static void
format_bar(const Exec *e, char *buf, int width)
{
	int			filled = e->progress * width / 100;
	int			i;

	buf[0] = '[';
	for (i = 0; i < width; i++)
		buf[i + 1] = i < filled ? '#' : '-';
	buf[width + 1] = ']';
	buf[width + 2] = '\0';
}

/*
 * Terminal width in columns: the terminal's (TIOCGWINSZ), else $COLUMNS,
 * else 80.
 */
static int
term_cols(void)
{
	struct winsize ws;
	const char *env;

	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		return ws.ws_col;
	env = getenv("COLUMNS");
	if (env && atoi(env) > 0)
		return atoi(env);
	return 80;
}

/* Terminal height in rows: the terminal's, else $LINES, else 24. */
static int
term_rows(void)
{
	struct winsize ws;
	const char *env;

	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0)
		return ws.ws_row;
	env = getenv("LINES");
	if (env && atoi(env) > 0)
		return atoi(env);
	return 24;
}

/* Print one display line (plain text), cut to the terminal's width, in colour. */
static void
put_line(const char *text, const char *color, int cols)
{
	char		row[ROW_MAX];

	snprintf(row, sizeof(row), "%s", text);
	/* the last column stays empty: writing it makes some terminals wrap */
	if (cols > 1 && (int) strlen(row) > cols - 1)
		row[cols - 1] = '\0';
	fprintf(stdout, "\033[2K%s%s%s\n", color, row, *color ? "\033[0m" : "");
}

/*
 * Terminal mode: redraw every execution in place, in order of appearance.
 *
 * Each execution shows its id, chain, a progress bar with its percent, its
 * status ("waiting" while a step waits for a person, a timer or a retry),
 * the retries and failures seen, the time since it started, the estimated
 * time left, and the current step (id, name, status, attempt).  On a wide
 * terminal that is one line, the bar taking the room the other fields
 * leave; on a narrower one the bar gets the first line (id, chain, bar,
 * percent, status), the counts and times the second, and the step follows
 * them, or takes a third line when it would not fit: no field is cut off.
 */
static void
draw(void)
{
	int			order[MAX_EXECS];
	int			n = 0;
	int			i;
	int			j;
	int			cols = term_cols();
	int			maxrows = term_rows() - 1;
	int			first;
	int			chain_w = 8;
	int			status_w = 7;
	int			step_w = 12;
	int			retries_w = 1;
	int			failures_w = 1;
	int			elapsed_w = 4;
	int			eta_w = 1;
	int			counts_w;
	int			bar_w;
	int			lines_per;
	int			nlines = 0;
	bool		one_line;
	char		stepinfo[192];
	char		bar[BAR_WIDTH_MAX + 3];
	char		row[ROW_MAX];
	char		elapsed[MAX_EXECS][32];
	char		eta[MAX_EXECS][32];
	char		num[32];

	if (!tty_mode)
		return;
	if (!cursor_hidden)
	{
		fputs("\033[?25l", stdout);
		cursor_hidden = true;
	}
	if (cols > ROW_MAX - 1)
		cols = ROW_MAX - 1;
	/* executions in order of appearance */
	for (i = 0; i < nexecs; i++)
	{
		for (j = n; j > 0 && execs[order[j - 1]].seq > execs[i].seq; j--)
			order[j] = order[j - 1];
		order[j] = i;
		n++;
	}
	/* column widths from what is shown */
	for (i = 0; i < n; i++)
	{
		const Exec *e = &execs[order[i]];
		double		secs = (e->done ? e->t1 : now_monotonic()) - e->t0;
		int			len = (int) strlen(e->chain[0] ? e->chain : "?");

		if (len > chain_w)
			chain_w = len;
		if ((int) strlen(e->status) > status_w)
			status_w = (int) strlen(e->status);
		format_step(e, stepinfo, sizeof(stepinfo));
		len = (int) strlen(stepinfo);
		if (len > step_w)
			step_w = len;
		format_duration(elapsed[order[i]], sizeof(elapsed[0]), secs < 0 ? 0 : secs, true);
		format_eta(e, eta[order[i]], sizeof(eta[0]));
		if ((int) strlen(elapsed[order[i]]) > elapsed_w)
			elapsed_w = (int) strlen(elapsed[order[i]]);
		if ((int) strlen(eta[order[i]]) > eta_w)
			eta_w = (int) strlen(eta[order[i]]);
		if (snprintf(num, sizeof(num), "%d", e->retries) > retries_w)
			retries_w = (int) strlen(num);
		if (snprintf(num, sizeof(num), "%d", e->failures) > failures_w)
			failures_w = (int) strlen(num);
	}
	if (chain_w > 32)
		chain_w = 32;
	if (step_w > 64)
		step_w = 64;
	/* "retries N  failures N  elapsed T  eta T" */
	counts_w = 8 + retries_w + 2 + 9 + failures_w + 2 + 8 + elapsed_w + 2 + 4 + eta_w;

	/* One line: id(8) chain [bar] pct(4) status step counts, spaces between. */
	bar_w = (cols - 1) - (8 + 1 + chain_w + 1 + 2 + 1 + 4 + 1 + status_w + 2 + step_w + 2 + counts_w);
	one_line = bar_w >= BAR_WIDTH_ONE_LINE;
	if (!one_line)
	{
		bar_w = (cols - 1) - (8 + 1 + chain_w + 1 + 2 + 1 + 4 + 1 + status_w);
		if (bar_w > BAR_WIDTH_ONE_LINE)
			bar_w = BAR_WIDTH_ONE_LINE;
	}
	if (bar_w < BAR_WIDTH_MIN)
		bar_w = BAR_WIDTH_MIN;
	if (bar_w > BAR_WIDTH_MAX)
		bar_w = BAR_WIDTH_MAX;
	lines_per = one_line ? 1 : 3;

	if (maxrows < lines_per)
		maxrows = lines_per;
	first = n > maxrows / lines_per ? n - maxrows / lines_per : 0;
	if (drawn_rows > 0)
		fprintf(stdout, "\r\033[%dA", drawn_rows);
	else
		fputc('\r', stdout);
	for (i = first; i < n; i++)
	{
		const Exec *e = &execs[order[i]];
		const char *color = status_color(e);
		char		counts[160];

		format_bar(e, bar, bar_w);
		format_step(e, stepinfo, sizeof(stepinfo));
		if (one_line)
		{
			snprintf(counts, sizeof(counts), "retries %-*d  failures %-*d  elapsed %-*s  eta %s",
					 retries_w, e->retries, failures_w, e->failures, elapsed_w, elapsed[order[i]],
					 eta[order[i]]);
			snprintf(row, sizeof(row), "%.8s %-*.*s %s %3d%% %-*s  %-*.*s  %s",
					 e->id, chain_w, chain_w, e->chain[0] ? e->chain : "?", bar, e->progress,
					 status_w, e->status, step_w, step_w, stepinfo, counts);
			put_line(row, color, cols);
			nlines++;
			continue;
		}
		snprintf(row, sizeof(row), "%.8s %-*.*s %s %3d%% %s",
				 e->id, chain_w, chain_w, e->chain[0] ? e->chain : "?", bar, e->progress, e->status);
		put_line(row, color, cols);
		snprintf(counts, sizeof(counts), "retries %d  failures %d  elapsed %s  eta %s",
				 e->retries, e->failures, elapsed[order[i]], eta[order[i]]);
		if (9 + (int) strlen(counts) + 2 + (int) strlen(stepinfo) <= cols - 1)
		{
			snprintf(row, sizeof(row), "         %s  %s", counts, stepinfo);
			put_line(row, "", cols);
			nlines += 2;
		}
		else
		{
			snprintf(row, sizeof(row), "         %s", counts);
			put_line(row, "", cols);
			snprintf(row, sizeof(row), "         %s", stepinfo);
			put_line(row, "", cols);
			nlines += 3;
		}
	}
	fputs("\033[J", stdout);
	drawn_rows = nlines;
	fflush(stdout);
}

/* ---------------------------------------------------------------------
 * The server
 * --------------------------------------------------------------------- */

/*
 * Read the state of one execution with chain_status (and the retry and
 * failure counts from chainexec.step_runs, as chain_result counts them)
 * into its display entry; with print (and
 * --lines), print it as a state line.  Returns false when the execution
 * does not exist (or cannot be read).
 */
static bool
read_state(const char *id, Exec **result, bool print, bool quiet)
{
	const char *params[1];
	PGresult   *res;
	Exec	   *e;
	const char *v;
	static char eta[32];

	params[0] = id;
	res = PQexecParams(conn,
					   "SELECT s->>'executionId', s->>'chainId', s->>'status', "
					   "       (s->'progress'->>'percent')::int, "
					   "       s->'currentSteps'->0->>'stepId', s->'currentSteps'->0->>'stepName', "
					   "       s->'currentSteps'->0->>'status', s->'currentSteps'->0->>'attempt', "
					   "       (SELECT coalesce(sum(greatest(r.attempt - 1, 0)) "
					   "                        FILTER (WHERE r.line_type <> 'compensation'), 0) "
					   "          FROM chainexec.step_runs r WHERE r.execution_id = $1::uuid), "
					   "       (SELECT count(*) FROM chainexec.step_runs r WHERE r.execution_id = $1::uuid "
					   "           AND r.line_type IN ('step', 'fallback') AND r.status = 'failed'), "
					   "       s->'progress'->>'etaMs', "
					   "       extract(epoch FROM coalesce((s->>'finishedAt')::timestamptz, clock_timestamp()) "
					   "                        - coalesce((s->>'startedAt')::timestamptz, "
					   "                                   (s->>'createdAt')::timestamptz)), "
					   "       to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') "
					   "  FROM chainexec.chain_status($1::uuid) AS s",
					   1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
	{
		const char *msg = PQresultErrorMessage(res);

		if (quiet)
		{
			verbose("could not read the state of execution %s: %s", id, msg && *msg ? msg : "no result");
			PQclear(res);
			return false;
		}
		fprintf(stderr, "%s: could not read the state of execution %s: %s",
				progname, id, msg && *msg ? msg : "no result\n");
		PQclear(res);
		return false;
	}
	e = find_exec(PQgetvalue(res, 0, 0), true);
	set_text(e->chain, sizeof(e->chain), PQgetvalue(res, 0, 1));
	if (!e->done)
		set_text(e->status, sizeof(e->status), PQgetvalue(res, 0, 2));
	if (atoi(PQgetvalue(res, 0, 3)) > e->progress)
		e->progress = atoi(PQgetvalue(res, 0, 3));
	if (!PQgetisnull(res, 0, 4))
	{
		e->step = atoi(PQgetvalue(res, 0, 4));
		set_text(e->step_name, sizeof(e->step_name), PQgetvalue(res, 0, 5));
		set_text(e->step_status, sizeof(e->step_status), PQgetvalue(res, 0, 6));
		e->attempt = atoi(PQgetvalue(res, 0, 7));
		set_waiting(e, e->step, strcmp(e->step_status, "waiting") == 0);
	}
	v = PQgetvalue(res, 0, 8);
	if (*v && atoi(v) > e->retries)
		e->retries = atoi(v);
	v = PQgetvalue(res, 0, 9);
	if (*v && atoi(v) > e->failures)
		e->failures = atoi(v);
	set_text(eta, sizeof(eta), PQgetisnull(res, 0, 10) ? "" : PQgetvalue(res, 0, 10));
	if (*eta && !e->done)
	{
		e->eta_ms = atof(eta);
		e->eta_t = now_monotonic();
	}
	if (!PQgetisnull(res, 0, 11))
		e->t0 = now_monotonic() - atof(PQgetvalue(res, 0, 11));
	set_text(e->state_ts, sizeof(e->state_ts), PQgetvalue(res, 0, 12));
	if (!e->done && is_final_status(e->status))
	{
		e->done = true;
		if (strcmp(e->status, "completed") == 0)
			e->progress = 100;
		e->t1 = now_monotonic();
	}
	PQclear(res);
	if (print && opt_lines && !opt_raw)
		print_state_line(e, eta);
	*result = e;
	return true;
}

/*
 * --lines: " input=..." for a step that started waiting, read from
 * chainexec.step_runs under row-level security (nothing when the step has
 * no rendered input, or the role may not read it).
 */
static void
print_step_input(const char *execution, const char *step)
{
	const char *params[2];
	PGresult   *res;

	params[0] = execution;
	params[1] = step;
	res = PQexecParams(conn,
					   "SELECT r.input->>'input' FROM chainexec.step_runs r "
					   " WHERE r.execution_id = $1::uuid AND r.step_id = $2::int AND r.line_type = 'step'",
					   2, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 && !PQgetisnull(res, 0, 0))
	{
		fputc(' ', stdout);
		print_value(stdout, "input", PQgetvalue(res, 0, 0));
	}
	else if (PQresultStatus(res) != PGRES_TUPLES_OK)
		verbose("could not read the input of step %s of %s: %s", step, execution, PQresultErrorMessage(res));
	PQclear(res);
}

/*
 * Subscribe: LISTEN on -c's channel, else chain_listen(--role); returns a
 * description of what it listens to.  Exits on error.
 */
static char *
subscribe(void)
{
	const char *params[1];
	PGresult   *res;
	char	   *what;
	int			i;
	size_t		len;

	if (opt_channel)
	{
		listen_on(opt_channel);
		what = malloc(strlen(opt_channel) + 16);
		if (what == NULL)
			fail(EXIT_USAGE, "out of memory");
		sprintf(what, "channel \"%s\"", opt_channel);
		return what;
	}
	params[0] = opt_role;
	res = PQexecParams(conn, "SELECT chainexec.chain_listen($1::regrole)", 1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		fail(EXIT_USAGE, "could not subscribe to the events: %s", PQresultErrorMessage(res));
	if (PQntuples(res) == 0)
		fail(EXIT_USAGE, "there is no event channel to listen to");
	len = 64;
	for (i = 0; i < PQntuples(res); i++)
		len += strlen(PQgetvalue(res, i, 0)) + 4;
	what = malloc(len);
	if (what == NULL)
		fail(EXIT_USAGE, "out of memory");
	strcpy(what, opt_role ? "the events of role " : "the events of your roles");
	if (opt_role)
		strcat(what, opt_role);
	verbose("listening on %d channel%s through chainexec.chain_listen()",
			PQntuples(res), PQntuples(res) == 1 ? "" : "s");
	PQclear(res);
	return what;
}

/* LISTEN on channel, or exit. */
static void
listen_on(const char *channel)
{
	char	   *ident = PQescapeIdentifier(conn, channel, strlen(channel));
	char	   *sql;
	PGresult   *res;

	if (ident == NULL)
		fail(EXIT_USAGE, "invalid channel name \"%s\": %s", channel, PQerrorMessage(conn));
	sql = malloc(strlen(ident) + 8);
	if (sql == NULL)
		fail(EXIT_USAGE, "out of memory");
	sprintf(sql, "LISTEN %s", ident);
	PQfreemem(ident);
	res = PQexec(conn, sql);
	free(sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		fail(EXIT_USAGE, "LISTEN failed: %s", PQresultErrorMessage(res));
	PQclear(res);
	verbose("listening on channel \"%s\"", channel);
}

/* Whether s looks like a uuid (hex digits and dashes, 32 digits). */
static bool
looks_like_uuid(const char *s)
{
	int			digits = 0;

	for (; *s; s++)
	{
		if (isxdigit((unsigned char) *s))
			digits++;
		else if (*s != '-' && *s != '{' && *s != '}')
			return false;
	}
	return digits == 32;
}

int
main(int argc, char **argv)
{
	static const struct option long_options[] = {
		{"dbname", required_argument, NULL, 'd'},
		{"channel", required_argument, NULL, 'c'},
		{"role", required_argument, NULL, 'R'},
		{"timeout", required_argument, NULL, 't'},
		{"lines", no_argument, NULL, 'l'},
		{"raw", no_argument, NULL, 'r'},
		{"no-color", no_argument, NULL, 1},
		{"verbose", no_argument, NULL, 'v'},
		{"version", no_argument, NULL, 'V'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}
	};
	const char *keywords[3];
	const char *values[3];
	char	   *subscription;
	Exec	   *watched = NULL;
	char		watched_id[64] = "";
	double		start;
	double		last_event;
	int			c;
	int			sock;
	struct sigaction sa;

	if (argc > 0 && argv[0] && strrchr(argv[0], '/'))
		progname = strrchr(argv[0], '/') + 1;
	else if (argc > 0 && argv[0])
		progname = argv[0];

	while ((c = getopt_long(argc, argv, "d:c:R:t:lrvVh", long_options, NULL)) != -1)
	{
		switch (c)
		{
			case 'd':
				opt_dbname = optarg;
				break;
			case 'c':
				if (*optarg == '\0')
					fail(EXIT_USAGE, "the channel name must not be empty");
				opt_channel = optarg;
				break;
			case 'R':
				if (*optarg == '\0')
					fail(EXIT_USAGE, "the role name must not be empty");
				opt_role = optarg;
				break;
			case 't':
				{
					char	   *end;

					errno = 0;
					opt_timeout = strtod(optarg, &end);
					if (end == optarg || *end != '\0' || errno != 0 || !(opt_timeout > 0) || opt_timeout > 1e7)
						fail(EXIT_USAGE, "invalid timeout \"%s\": give a positive number of seconds", optarg);
					break;
				}
			case 'l':
				opt_lines = true;
				break;
			case 'r':
				opt_raw = true;
				break;
			case 1:
				opt_color = false;
				break;
			case 'v':
				opt_verbose = true;
				break;
			case 'V':
				printf("chainexec_watch %s\n", WATCH_VERSION);
				return 0;
			case 'h':
				usage(stdout);
				return 0;
			default:
				fprintf(stderr, "Try \"%s --help\" for more information.\n", progname);
				return EXIT_USAGE;
		}
	}
	if (optind < argc)
	{
		opt_execution = argv[optind++];
		if (!looks_like_uuid(opt_execution))
			fail(EXIT_USAGE, "\"%s\" is not an execution id (a uuid)", opt_execution);
	}
	if (opt_channel && opt_role)
		fail(EXIT_USAGE, "-c and --role cannot be used together");
	if (optind < argc)
	{
		fprintf(stderr, "%s: too many arguments (first extra: \"%s\")\n"
				"Try \"%s --help\" for more information.\n", progname, argv[optind], progname);
		return EXIT_USAGE;
	}
	if (!opt_raw && !opt_lines && !isatty(STDOUT_FILENO))
		opt_lines = true;
	tty_mode = !opt_raw && !opt_lines;
	if (getenv("NO_COLOR") && *getenv("NO_COLOR"))
		opt_color = false;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);

	keywords[0] = "dbname";
	values[0] = opt_dbname;
	keywords[1] = "fallback_application_name";
	values[1] = "chainexec_watch";
	keywords[2] = NULL;
	values[2] = NULL;
	if (opt_dbname == NULL)
	{
		keywords[0] = keywords[1];
		values[0] = values[1];
		keywords[1] = NULL;
		values[1] = NULL;
	}
	conn = PQconnectdbParams(keywords, values, 1);
	if (conn == NULL || PQstatus(conn) != CONNECTION_OK)
		fail(EXIT_USAGE, "could not connect: %s", conn ? PQerrorMessage(conn) : "out of memory\n");
	verbose("connected to database \"%s\"", PQdb(conn));

	/* LISTEN first, then read the state: no event can fall in between. */
	subscription = subscribe();

	start = now_monotonic();
	if (opt_execution)
	{
		if (!read_state(opt_execution, &watched, true, false))
			fail(EXIT_USAGE, "no execution %s to follow", opt_execution);
		set_text(watched_id, sizeof(watched_id), watched->id);
		draw();
		if (watched->done)
		{
			restore_terminal();
			PQfinish(conn);
			return exit_code_for(watched->status);
		}
	}
	else if (tty_mode)
	{
		fprintf(stdout, "watching every execution: %s (Ctrl-C to stop)\n", subscription);
		fflush(stdout);
	}
	last_event = now_monotonic();

	sock = PQsocket(conn);
	if (sock < 0)
		fail(EXIT_USAGE, "no connection to the server");
	for (;;)
	{
		fd_set		rfds;
		struct timeval tv;
		double		wait = 1.0;
		double		t = now_monotonic();
		PGnotify   *n;
		int			r;

		if (interrupted)
		{
			restore_terminal();
			PQfinish(conn);
			verbose("interrupted");
			return opt_execution ? EXIT_INTERRUPTED : 0;
		}
		if (opt_timeout > 0 && t - start >= opt_timeout)
		{
			restore_terminal();
			PQfinish(conn);
			if (opt_execution)
			{
				fprintf(stderr, "%s: execution %s did not end within %g seconds\n",
						progname, watched_id, opt_timeout);
				return EXIT_TIMEDOUT;
			}
			verbose("timeout");
			return 0;
		}
		if (opt_timeout > 0 && start + opt_timeout - t < wait)
			wait = start + opt_timeout - t;
		if (wait < 0.001)
			wait = 0.001;
		tv.tv_sec = (long) wait;
		tv.tv_usec = (long) ((wait - (long) wait) * 1e6);

		FD_ZERO(&rfds);
		FD_SET(sock, &rfds);
		r = select(sock + 1, &rfds, NULL, NULL, &tv);
		if (r < 0 && errno != EINTR)
			fail(EXIT_USAGE, "select() failed: %s", strerror(errno));
		if (r > 0 && !PQconsumeInput(conn))
			fail(EXIT_USAGE, "lost the connection to the server: %s", PQerrorMessage(conn));

		while ((n = PQnotifies(conn)) != NULL)
		{
			Payload		p;
			const char *exec_id;

			if (opt_raw)
			{
				if (!opt_execution || strstr(n->extra, watched_id) != NULL)
				{
					fputs(n->extra, stdout);
					fputc('\n', stdout);
					fflush(stdout);
				}
			}
			if (!parse_payload(n->extra, &p))
			{
				verbose("ignored a payload that is not a JSON object: %.200s", n->extra);
				PQfreemem(n);
				continue;
			}
			exec_id = field_text(&p, "executionId");
			if (exec_id && field_text(&p, "event") &&
				(!opt_execution || strcasecmp(exec_id, watched_id) == 0))
			{
				Exec	   *e = find_exec(exec_id, false);

				if (e == NULL)
				{
					/*
					 * First seen: on a terminal, read its state (chain, step,
					 * counts, ETA so far), then apply the event.
					 */
					if (!tty_mode || !looks_like_uuid(exec_id) || !read_state(exec_id, &e, false, true))
						e = find_exec(exec_id, true);
				}
				if (opt_execution)
					watched = e;
				apply_event(e, &p);
				if (opt_lines && !opt_raw)
					print_event_line(&p);
				last_event = now_monotonic();
			}
			free_payload(&p);
			PQfreemem(n);
		}

		if (opt_execution && !watched->done && now_monotonic() - last_event >= QUIET_RECHECK_SECS)
		{
			/* no news for a while: read the state (a chain may notify nothing) */
			if (!read_state(watched_id, &watched, false, false))
				fail(EXIT_USAGE, "execution %s can no longer be read", watched_id);
			if (watched->done && opt_lines && !opt_raw)
				print_state_line(watched, NULL);
			last_event = now_monotonic();
		}
		draw();
		if (opt_execution && watched->done)
		{
			restore_terminal();
			PQfinish(conn);
			return exit_code_for(watched->status);
		}
	}
}
