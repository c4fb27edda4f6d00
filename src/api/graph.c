/*-------------------------------------------------------------------------
 *
 * graph.c
 *	  chain_graph(id, format): the DAG of a chain version or of one
 *	  execution, as Mermaid (a flowchart that GitHub and many wikis render)
 *	  or Graphviz DOT (`dot -Tsvg`).
 *
 * Nodes are steps (and fallback steps); an edge joins each step to its
 * direct predecessors (explain.h), drawn thick on the critical path;
 * dashed edges show skip targets (skip_to_step_N) and dotted ones the
 * fallback that stands for a failed step.  A chain's nodes show each
 * step's estimated duration from history; an execution's show each step's
 * status, attempts and duration, coloured by status, and its compensation
 * when one ran.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/uuid.h"

#include "explain.h"
#include "status.h"

PG_FUNCTION_INFO_V1(ce_chain_graph);

typedef enum GraphFormat
{
	GRAPH_MERMAID,
	GRAPH_DOT
} GraphFormat;

/* Colours of a line's status: fill, border. */
typedef struct StatusStyle
{
	CeLineStatus status;
	const char *fill;
	const char *stroke;
} StatusStyle;

/* In the order of Mermaid's classDef lines. */
static const StatusStyle styles[] = {
	{CE_LINE_COMPLETED, "#d9f2d9", "#2e7d32"},
	{CE_LINE_FAILED, "#f8d7da", "#c62828"},
	{CE_LINE_RUNNING, "#d6e9f8", "#1565c0"},
	{CE_LINE_WAITING, "#fff3cd", "#b8860b"},
	{CE_LINE_READY, "#ffffff", "#1565c0"},
	{CE_LINE_PENDING, "#ffffff", "#777777"},
	{CE_LINE_SKIPPED, "#eeeeee", "#999999"},
	{CE_LINE_CANCELLED, "#eeeeee", "#555555"},
	{CE_LINE_COMPENSATED, "#e8dcf5", "#6a1b9a"},
};

static const StatusStyle *
style_of(CeLineStatus status)
{
	int			i;

	for (i = 0; i < lengthof(styles); i++)
		if (styles[i].status == status)
			return &styles[i];
	return NULL;
}

/* Append text escaped for a DOT or Mermaid quoted label. */
static void
append_escaped(StringInfo out, GraphFormat f, const char *s)
{
	for (; *s; s++)
	{
		if (f == GRAPH_DOT)
		{
			if (*s == '"' || *s == '\\')
				appendStringInfoChar(out, '\\');
			if (*s == '\n')
				appendStringInfoString(out, "\\n");
			else
				appendStringInfoChar(out, *s);
		}
		else
		{
			switch (*s)
			{
				case '"':
					appendStringInfoString(out, "#quot;");
					break;
				case '<':
					appendStringInfoString(out, "#lt;");
					break;
				case '>':
					appendStringInfoString(out, "#gt;");
					break;
				case '#':
					appendStringInfoString(out, "#35;");
					break;
				case '\n':
					appendStringInfoString(out, "<br/>");
					break;
				default:
					appendStringInfoChar(out, *s);
			}
		}
	}
}

/* The compensation line of a step in an execution, or NULL. */
static const char *
compensation_status(const CeShape *s, int step_id)
{
	int			i;
	const char *status = NULL;

	for (i = 0; i < s->ncompensations; i++)
		if (s->compensations[i].step_id == step_id)
			status = s->compensations[i].status;
	return status;
}

/* A node's label: id and name, kind, then status or estimate. */
static char *
node_label(const CeShape *s, const CeShapeStep *ss, bool fallback)
{
	StringInfoData l;
	const CeStep *st = ss->step;
	const char *comp;

	initStringInfo(&l);
	appendStringInfo(&l, "%s%d %s\n", fallback ? "fallback " : "", st->id, st->name);
	if (st->kind == CE_STEP_WAIT)
		appendStringInfo(&l, "wait %s", ce_shape_duration(st->wait_ms));
	else if (st->kind == CE_STEP_TEMPLATE && st->template_id)
		appendStringInfo(&l, "template %s", st->template_id);
	else if (st->sql == NULL && st->instruction_set)
		appendStringInfo(&l, "%s %s", st->kind_name, st->instruction_set);
	else
		appendStringInfoString(&l, st->kind_name);
	appendStringInfoChar(&l, '\n');
	if (s->is_execution)
	{
		appendStringInfoString(&l, ss->has_line ? ss->status : "not run");
		if (ss->has_line && ss->attempt > 1)
			appendStringInfo(&l, ", %d attempts", ss->attempt);
		if (ss->has_duration)
			appendStringInfo(&l, ", %s", ce_shape_duration(ss->duration_ms));
	}
	else if (ss->has_est)
		appendStringInfo(&l, "est. %s", ce_shape_duration(ss->est_ms));
	else
		appendStringInfoString(&l, "no history");
	if (st->rollback_action)
	{
		appendStringInfo(&l, "\nundo: %s", st->rollback_is_handler ? st->rollback_action : "SQL");
		comp = s->is_execution ? compensation_status(s, st->id) : NULL;
		if (comp)
			appendStringInfo(&l, " (%s)", comp);
	}
	return l.data;
}

/* Whether an execution's node is drawn (every step; fallbacks that ran). */
static bool
drawn(const CeShape *s, const CeShapeStep *ss)
{
	return ss->step != NULL && (!s->is_execution || ss->step->index >= 0 || ss->has_line);
}

static void
emit_node(StringInfo out, GraphFormat f, const CeShape *s, const CeShapeStep *ss, bool fallback)
{
	/* a step not run is pending; an unknown status has no style */
	int			ls = ss->has_line ? ce_line_status_lookup(ss->status, strlen(ss->status)) : CE_LINE_PENDING;
	const StatusStyle *st = s->is_execution && ls >= 0 ? style_of((CeLineStatus) ls) : NULL;

	if (f == GRAPH_DOT)
	{
		appendStringInfo(out, "  s%d [label=\"", ss->step->id);
		append_escaped(out, f, node_label(s, ss, fallback));
		appendStringInfoChar(out, '"');
		if (st)
			appendStringInfo(out, ", fillcolor=\"%s\", color=\"%s\"", st->fill, st->stroke);
		if (fallback)
			appendStringInfoString(out, ", style=\"rounded,filled,dashed\"");
		if (ss->critical)
			appendStringInfoString(out, ", penwidth=2");
		appendStringInfoString(out, "];\n");
	}
	else
	{
		appendStringInfo(out, "  s%d%s\"", ss->step->id, fallback ? "[/" : "[");
		append_escaped(out, f, node_label(s, ss, fallback));
		appendStringInfo(out, "\"%s\n", fallback ? "/]" : "]");
		if (st)
			appendStringInfo(out, "  class s%d %s\n", ss->step->id, ce_line_status_name(st->status));
	}
}

/* An edge; kind: 0 plain, 1 critical, 2 skip (label), 3 fallback. */
static void
emit_edge(StringInfo out, GraphFormat f, int from, int to, int kind, const char *label)
{
	if (f == GRAPH_DOT)
	{
		appendStringInfo(out, "  s%d -> s%d", from, to);
		switch (kind)
		{
			case 1:
				appendStringInfoString(out, " [penwidth=2.5, color=\"#333333\"]");
				break;
			case 2:
				appendStringInfo(out, " [style=dashed, color=\"#888888\", fontsize=9, label=\"%s\", constraint=false]", label);
				break;
			case 3:
				appendStringInfo(out, " [style=dotted, fontsize=9, label=\"%s\"]", label);
				break;
		}
		appendStringInfoString(out, ";\n");
	}
	else
	{
		switch (kind)
		{
			case 0:
				appendStringInfo(out, "  s%d --> s%d\n", from, to);
				break;
			case 1:
				appendStringInfo(out, "  s%d ==> s%d\n", from, to);
				break;
			default:
				appendStringInfo(out, "  s%d -. %s .-> s%d\n", from, label, to);
				break;
		}
	}
}

static char *
graph_text(CeShape *s, GraphFormat f)
{
	StringInfoData out;
	int			i,
				j;
	char	   *title;

	if (s->is_execution)
		title = psprintf("%s v%d, execution %s: %s", s->chain_id, s->version, s->execution_id,
						 s->execution_status);
	else
		title = s->critical_unknown == s->ncritical ?
			psprintf("%s v%d (%s), no history", s->chain_id, s->version, s->chain_status) :
			psprintf("%s v%d (%s), estimated %s on the critical path", s->chain_id, s->version,
					 s->chain_status, ce_shape_duration(s->critical_ms));

	initStringInfo(&out);
	if (f == GRAPH_DOT)
	{
		appendStringInfoString(&out, "digraph \"");
		append_escaped(&out, f, s->chain_id);
		appendStringInfoString(&out, "\" {\n  graph [rankdir=TB, labelloc=t, fontname=\"Helvetica\", fontsize=13, label=\"");
		append_escaped(&out, f, title);
		appendStringInfoString(&out, "\"];\n"
							   "  node [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\", fontsize=10, "
							   "fillcolor=\"#ffffff\", color=\"#555555\"];\n"
							   "  edge [color=\"#555555\", fontname=\"Helvetica\"];\n");
	}
	else
	{
		appendStringInfoString(&out, "---\ntitle: \"");
		append_escaped(&out, f, title);
		appendStringInfoString(&out, "\"\n---\nflowchart TD\n");
		if (s->is_execution)
			for (i = 0; i < lengthof(styles); i++)
				appendStringInfo(&out, "  classDef %s fill:%s,stroke:%s\n", ce_line_status_name(styles[i].status),
								 styles[i].fill, styles[i].stroke);
	}

	for (i = 0; i < s->nsteps; i++)
	{
		emit_node(&out, f, s, &s->steps[i], false);
		if (drawn(s, &s->fallbacks[i]))
			emit_node(&out, f, s, &s->fallbacks[i], true);
	}
	for (i = 0; i < s->nsteps; i++)
	{
		CeShapeStep *ss = &s->steps[i];

		for (j = 0; j < ss->ndirect; j++)
		{
			CeShapeStep *ps = &s->steps[ss->direct[j]];
			bool		critical = ss->critical && ps->critical && ss->crit_pred == ss->direct[j];

			emit_edge(&out, f, ps->step->id, ss->step->id, critical ? 1 : 0, NULL);
		}
		if (drawn(s, &s->fallbacks[i]))
			emit_edge(&out, f, ss->step->id, s->fallbacks[i].step->id, 3, "on failure");
		if (ss->skip_target > 0 && ce_plan_step_by_id(s->plan, ss->skip_target) != NULL)
		{
			char	   *label = psprintf("skip_to_step_%d", ss->skip_target);

			emit_edge(&out, f, ss->step->id, ss->skip_target, 2, label);
		}
	}
	if (f == GRAPH_DOT)
		appendStringInfoString(&out, "}\n");
	return out.data;
}

/* The canonical 8-4-4-4-12 form of a uuid, as chain_execute returns it. */
static bool
looks_like_uuid(const char *s)
{
	int			i;

	if (strlen(s) != 36)
		return false;
	for (i = 0; i < 36; i++)
	{
		if (i == 8 || i == 13 || i == 18 || i == 23)
		{
			if (s[i] != '-')
				return false;
		}
		else if (!isxdigit((unsigned char) s[i]))
			return false;
	}
	return true;
}

/* Whether the caller sees a chain of this id in the session's organization. */
static bool
chain_exists(const char *chain_id)
{
	Oid			type = TEXTOID;
	Datum		arg = CStringGetTextDatum(chain_id);

	if (SPI_execute_with_args("SELECT FROM chainexec.chains WHERE organization_id = chainexec.current_organization() "
							  "AND chain_id = $1 LIMIT 1", 1, &type, &arg, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read chains");
	return SPI_processed > 0;
}

/*
 * chain_graph(id text, format text DEFAULT 'mermaid') RETURNS text
 *
 * id: an execution id (a uuid the caller can see) or a chain id (its
 * active version, else its latest, in the session's organization).
 */
Datum
ce_chain_graph(PG_FUNCTION_ARGS)
{
	char	   *id;
	char	   *fmt;
	GraphFormat f;
	MemoryContext outer = CurrentMemoryContext;
	CeShape    *s = NULL;
	int			level;
	Datum		u;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("chain or execution id must not be null")));
	id = text_to_cstring(PG_GETARG_TEXT_PP(0));
	fmt = PG_ARGISNULL(1) ? "mermaid" : text_to_cstring(PG_GETARG_TEXT_PP(1));
	if (pg_strcasecmp(fmt, "mermaid") == 0)
		f = GRAPH_MERMAID;
	else if (pg_strcasecmp(fmt, "dot") == 0)
		f = GRAPH_DOT;
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown graph format \"%s\"", fmt),
				 errhint("Use 'mermaid' (the default) or 'dot' (Graphviz: dot -Tsvg).")));

	level = ce_shape_path_begin();
	/* an execution id when it reads as a uuid and the caller sees one */
	if (looks_like_uuid(id))
	{
		u = DirectFunctionCall1(uuid_in, CStringGetDatum(id));
		s = ce_shape_execution(DatumGetUUIDP(u));
		if (s == NULL && !chain_exists(id))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("execution %s does not exist", id),
					 errdetail("No execution the current role may read has this id, and no chain of the session's organization either."),
					 errhint("Executions are visible to their owner role, its members and chainexec_admin, in the organization set by chainexec.organization_id.")));
	}
	if (s == NULL)
		s = ce_shape_chain(id, 0);
	PG_RETURN_TEXT_P(ce_shape_result(level, graph_text(s, f), outer));
}
