/*-------------------------------------------------------------------------
 *
 * channel.c
 *	  Who may receive which execution events.  PostgreSQL has no privilege
 *	  on LISTEN: any role may listen on any channel whose name it knows.
 *	  So an event goes to channels whose names only chainexec can compute,
 *	  one per reader:
 *
 *	  - the owner role's channel of the execution's organization, read by
 *		the members of the owner role (the row-level security rule of
 *		executions);
 *	  - the organization's admin channel, read by chainexec_admin.
 *
 *	  A channel is named <chainexec.notify_channel>_<32 hex digits>, the
 *	  digits a HMAC-SHA-256 of "role:<organization>:<role oid>" or
 *	  "admin:<organization>" keyed with a random secret that only the
 *	  extension owner can read (chainexec.channel_secret).
 *	  chainexec.chain_listen() runs LISTEN on the channels the caller may
 *	  read, and never shows the secret.
 *
 *	  The secret and the names already computed are kept per backend, so
 *	  that a transition runs no query for them; a relcache invalidation of
 *	  the secret's table (chain_rotate_channels truncates it) or a change
 *	  of chainexec.notify_channel drops them.
 *
 *	  With chainexec.notify_public on (a server setting, for a single
 *	  tenant whose roles may all see every event), events go to
 *	  chainexec.notify_channel itself, as in 0.1.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/async.h"
#include "common/hmac.h"
#include "common/sha2.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/memutils.h"

#include "chainexec.h"
#include "channel.h"
#include "define.h"
#include "engine.h"

/* Hex digits of the digest in a channel name (128 bits). */
#define CE_DIGEST_HEX 32
/* Longest prefix: the rest of NAMEDATALEN - 1 after "_" and the digits. */
#define CE_PREFIX_MAX (NAMEDATALEN - 2 - CE_DIGEST_HEX)
/* Names kept at most, before the cache starts over. */
#define CE_CHANNEL_CACHE_MAX 10000

/* A channel: an organization and an owner role (InvalidOid: the admin channel). */
typedef struct ChannelKey
{
	pg_uuid_t	org;
	Oid			role;
} ChannelKey;

typedef struct ChannelEntry
{
	ChannelKey	key;
	char		name[NAMEDATALEN];
} ChannelEntry;

/* The secret (in TopMemoryContext), the table it came from, the names. */
static uint8 *secret = NULL;
static int	secret_len = 0;
static Oid	secret_relid = InvalidOid;
static HTAB *channel_cache = NULL;
static char cache_prefix[NAMEDATALEN] = "";
static bool cache_stale = true;
static bool callback_registered = false;

PG_FUNCTION_INFO_V1(ce_chain_listen);
PG_FUNCTION_INFO_V1(ce_chain_unlisten);

/* Relcache callback: the secret's table changed (or everything did). */
static void
channel_invalidate(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == secret_relid)
		cache_stale = true;
}

/* The channel prefix: chainexec.notify_channel, clipped to CE_PREFIX_MAX bytes. */
static void
current_prefix(char *out)
{
	const char *ch = ce_notify_channel ? ce_notify_channel : "chainexec";
	int			len = pg_mbcliplen(ch, strlen(ch), CE_PREFIX_MAX);

	memcpy(out, ch, len);
	out[len] = '\0';
}

/*
 * Read the secret, as the extension owner (only it may read the table),
 * into TopMemoryContext.  Connects to SPI itself.
 */
static void
load_secret(void)
{
	Oid			save_user;
	int			save_sec;
	int			ret = 0;
	bool		isnull;
	bytea	   *b;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	GetUserIdAndSecContext(&save_user, &save_sec);
	SetUserIdAndSecContext(ce_extension_owner(), save_sec | SECURITY_LOCAL_USERID_CHANGE);
	PG_TRY();
	{
		ret = SPI_execute("SELECT s.secret, s.tableoid FROM chainexec.channel_secret s", true, 2);
	}
	PG_FINALLY();
	{
		SetUserIdAndSecContext(save_user, save_sec);
	}
	PG_END_TRY();
	if (ret != SPI_OK_SELECT || SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("chainexec has no event channel secret"),
				 errhint("A superuser can make one with chainexec.chain_rotate_channels().")));
	b = DatumGetByteaPP(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	secret_len = VARSIZE_ANY_EXHDR(b);
	secret = MemoryContextAlloc(TopMemoryContext, secret_len);
	memcpy(secret, VARDATA_ANY(b), secret_len);
	secret_relid = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	SPI_finish();
}

/* Start the cache over when it is stale, empty or for another prefix. */
static void
prepare_cache(void)
{
	char		prefix[NAMEDATALEN];
	HASHCTL		ctl;

	if (!callback_registered)
	{
		CacheRegisterRelcacheCallback(channel_invalidate, (Datum) 0);
		callback_registered = true;
	}
	current_prefix(prefix);
	if (!cache_stale && secret != NULL && channel_cache != NULL &&
		strcmp(prefix, cache_prefix) == 0 &&
		hash_get_num_entries(channel_cache) < CE_CHANNEL_CACHE_MAX)
		return;

	if (channel_cache)
		hash_destroy(channel_cache);
	channel_cache = NULL;
	if (secret)
	{
		explicit_bzero(secret, secret_len);
		pfree(secret);
	}
	secret = NULL;
	secret_relid = InvalidOid;

	/* an invalidation while loading marks the cache stale again */
	cache_stale = false;
	load_secret();
	strlcpy(cache_prefix, prefix, sizeof(cache_prefix));

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(ChannelKey);
	ctl.entrysize = sizeof(ChannelEntry);
	ctl.hcxt = CacheMemoryContext;
	channel_cache = hash_create("chainexec event channels", 64, &ctl,
								HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

/* Compute a channel's name with the cached secret and prefix. */
static void
compute_channel(const ChannelKey *key, char *out)
{
	static const char hex[] = "0123456789abcdef";
	char		msg[128];
	char	   *org_s = ce_uuid_to_cstring(&key->org);
	uint8		digest[PG_SHA256_DIGEST_LENGTH];
	pg_hmac_ctx *ctx;
	int			len;
	int			i;

	if (OidIsValid(key->role))
		snprintf(msg, sizeof(msg), "role:%s:%u", org_s, key->role);
	else
		snprintf(msg, sizeof(msg), "admin:%s", org_s);
	pfree(org_s);

	ctx = pg_hmac_create(PG_SHA256);
	if (ctx == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	if (pg_hmac_init(ctx, secret, secret_len) < 0 ||
		pg_hmac_update(ctx, (const uint8 *) msg, strlen(msg)) < 0 ||
		pg_hmac_final(ctx, digest, sizeof(digest)) < 0)
	{
		const char *why = pg_hmac_error(ctx);

		pg_hmac_free(ctx);
		ereport(ERROR,
				(errcode(ERRCODE_SYSTEM_ERROR),
				 errmsg("could not compute an event channel name: %s", why)));
	}
	pg_hmac_free(ctx);

	len = strlen(cache_prefix);
	memcpy(out, cache_prefix, len);
	out[len++] = '_';
	for (i = 0; i < CE_DIGEST_HEX / 2; i++)
	{
		out[len++] = hex[digest[i] >> 4];
		out[len++] = hex[digest[i] & 0x0F];
	}
	out[len] = '\0';
	explicit_bzero(digest, sizeof(digest));
}

/* A channel's name, from the cache or computed and kept. */
static void
channel_name(const pg_uuid_t *org, Oid role, char out[NAMEDATALEN])
{
	ChannelKey	key;
	ChannelEntry *e;
	char		name[NAMEDATALEN];

	prepare_cache();
	memset(&key, 0, sizeof(key));
	memcpy(&key.org, org, sizeof(pg_uuid_t));
	key.role = role;
	e = hash_search(channel_cache, &key, HASH_FIND, NULL);
	if (e == NULL)
	{
		compute_channel(&key, name);
		e = hash_search(channel_cache, &key, HASH_ENTER, NULL);
		strlcpy(e->name, name, NAMEDATALEN);
	}
	strlcpy(out, e->name, NAMEDATALEN);
}

int
ce_event_channels(const pg_uuid_t *org, Oid owner,
				  char role_channel[NAMEDATALEN], char admin_channel[NAMEDATALEN])
{
	if (ce_notify_public)
	{
		strlcpy(role_channel, ce_notify_channel, NAMEDATALEN);
		admin_channel[0] = '\0';
		return 1;
	}
	channel_name(org, owner, role_channel);
	channel_name(org, InvalidOid, admin_channel);
	return 2;
}

/* ---------------------------------------------------------------------
 * chain_listen, chain_unlisten
 * --------------------------------------------------------------------- */

/* LISTEN's own checks, which a function running it must make too. */
static void
check_listen_allowed(const char *cmd)
{
	if (InSecurityRestrictedOperation())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("cannot run %s within a security-restricted operation", cmd)));
	PreventCommandDuringRecovery(cmd);
}

/* A role's name for messages, or its oid when it has none. */
static const char *
role_label(Oid role)
{
	const char *name = OidIsValid(role) ? GetUserNameFromId(role, true) : NULL;

	return name ? name : psprintf("%u", role);
}

/*
 * The channels the current role may read in the session's organization:
 * with a role, that role's (the caller must be a member of it, or of
 * chainexec_admin); else the admin channel for chainexec_admin, or the
 * channel of every role the caller is a member of (itself included).
 */
static List *
readable_channels(bool has_role, Oid role)
{
	Oid			caller = GetUserId();
	Oid			admin = get_role_oid("chainexec_admin", true);
	bool		is_admin = OidIsValid(admin) && is_member_of_role(caller, admin);
	pg_uuid_t	org;
	char		name[NAMEDATALEN];
	List	   *result = NIL;

	if (has_role && !(OidIsValid(role) && (is_admin || is_member_of_role(caller, role))))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to listen for the events of role \"%s\"", role_label(role)),
				 errdetail("Only members of a role, and of chainexec_admin, receive the events of its executions."),
				 errhint("Call chainexec.chain_listen() without a role for every channel you may read.")));
	if (ce_notify_public)
		return list_make1(pstrdup(ce_notify_channel));

	ce_current_org(&org);
	if (has_role)
	{
		channel_name(&org, role, name);
		return list_make1(pstrdup(name));
	}
	if (is_admin)
	{
		channel_name(&org, InvalidOid, name);
		return list_make1(pstrdup(name));
	}

	/* every role whose executions the caller may read (row-level security's rule) */
	{
		Oid			argtypes[1] = {OIDOID};
		Datum		args[1];
		uint64		i;
		List	   *roles = NIL;
		ListCell   *lc;
		MemoryContext outer = CurrentMemoryContext;

		args[0] = ObjectIdGetDatum(caller);
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		if (SPI_execute_with_args("SELECT r.oid FROM pg_catalog.pg_roles r "
								  "WHERE pg_catalog.pg_has_role($1, r.oid, 'MEMBER') ORDER BY 1",
								  1, argtypes, args, NULL, true, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not read the roles of the current role");
		for (i = 0; i < SPI_processed; i++)
		{
			bool		isnull;
			Oid			r = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i],
														   SPI_tuptable->tupdesc, 1, &isnull));
			MemoryContext old = MemoryContextSwitchTo(outer);

			roles = lappend_oid(roles, r);
			MemoryContextSwitchTo(old);
		}
		SPI_finish();
		foreach(lc, roles)
		{
			channel_name(&org, lfirst_oid(lc), name);
			result = lappend(result, pstrdup(name));
		}
	}
	return result;
}

/* Whether a channel name is one of chainexec's (plain, or prefix_digest). */
static bool
is_event_channel(const char *ch)
{
	char		prefix[NAMEDATALEN];
	size_t		plen;
	int			i;

	if (strcmp(ch, ce_notify_channel) == 0)
		return true;
	current_prefix(prefix);
	plen = strlen(prefix);
	if (strlen(ch) != plen + 1 + CE_DIGEST_HEX || strncmp(ch, prefix, plen) != 0 || ch[plen] != '_')
		return false;
	for (i = 0; i < CE_DIGEST_HEX; i++)
	{
		char		c = ch[plen + 1 + i];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return false;
	}
	return true;
}

/* Add a channel to a list of names unless it is there already. */
static List *
add_channel(List *list, const char *ch)
{
	ListCell   *lc;

	foreach(lc, list)
		if (strcmp((const char *) lfirst(lc), ch) == 0)
			return list;
	return lappend(list, pstrdup(ch));
}

/* Return a list of names as the rows of a set-returning function. */
static void
return_names(FunctionCallInfo fcinfo, List *names)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ListCell   *lc;

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	foreach(lc, names)
	{
		Datum		value = CStringGetTextDatum((const char *) lfirst(lc));
		bool		isnull = false;

		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, &value, &isnull);
	}
}

/*
 * chainexec.chain_listen(role regrole DEFAULT NULL) RETURNS SETOF text
 *
 * LISTEN (from the end of the transaction on, for the session) on every
 * channel whose events the current role may read in the session's
 * organization, or on the channel of one role; returns their names.
 * Runs as the caller, so that it knows who calls; only the secret is read
 * as the extension owner.
 */
Datum
ce_chain_listen(PG_FUNCTION_ARGS)
{
	List	   *names;
	ListCell   *lc;

	check_listen_allowed("LISTEN");
	names = readable_channels(!PG_ARGISNULL(0), PG_ARGISNULL(0) ? InvalidOid : PG_GETARG_OID(0));
	foreach(lc, names)
		Async_Listen((const char *) lfirst(lc));
	return_names(fcinfo, names);
	return (Datum) 0;
}

/*
 * chainexec.chain_unlisten(role regrole DEFAULT NULL) RETURNS SETOF text
 *
 * UNLISTEN the channel of one role in the session's organization; without
 * a role, every chainexec channel the session listens on (in any
 * organization) and those chain_listen() would choose now.  Returns the
 * names.
 */
Datum
ce_chain_unlisten(PG_FUNCTION_ARGS)
{
	List	   *names;
	ListCell   *lc;

	check_listen_allowed("UNLISTEN");
	names = readable_channels(!PG_ARGISNULL(0), PG_ARGISNULL(0) ? InvalidOid : PG_GETARG_OID(0));
	if (PG_ARGISNULL(0))
	{
		uint64		i;
		List	   *listening = NIL;
		MemoryContext outer = CurrentMemoryContext;

		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		if (SPI_execute("SELECT pg_catalog.pg_listening_channels()", true, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not read the channels this session listens on");
		for (i = 0; i < SPI_processed; i++)
		{
			char	   *ch = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);

			if (ch && is_event_channel(ch))
			{
				MemoryContext old = MemoryContextSwitchTo(outer);

				listening = lappend(listening, pstrdup(ch));
				MemoryContextSwitchTo(old);
			}
		}
		SPI_finish();
		foreach(lc, listening)
			names = add_channel(names, (const char *) lfirst(lc));
	}
	foreach(lc, names)
		Async_Unlisten((const char *) lfirst(lc));
	return_names(fcinfo, names);
	return (Datum) 0;
}
