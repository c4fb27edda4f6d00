/*-------------------------------------------------------------------------
 *
 * channels.c
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
 *	  chainexec.chain_listen() (api/channel.c) runs LISTEN on the channels
 *	  the caller may read, and never shows the secret.
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

#include "common/hmac.h"
#include "common/sha2.h"
#include "executor/spi.h"

#include "mb/pg_wchar.h"
#include "miscadmin.h"

#include "utils/inval.h"
#include "utils/memutils.h"

#include "chainexec.h"
#include "channels.h"
#include "bridge.h"
#include "engine.h"
#include "plancache.h"

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

/* Relcache callback: the secret's table changed (or everything did). */
static void
channel_invalidate(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == secret_relid)
		cache_stale = true;
}

/* The channel prefix: chainexec.notify_channel, clipped to CE_PREFIX_MAX bytes. */
void
ce_channel_prefix(char *out)
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

	if (!callback_registered)
	{
		CacheRegisterRelcacheCallback(channel_invalidate, (Datum) 0);
		callback_registered = true;
	}
	ce_channel_prefix(prefix);
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

	channel_cache = ce_cache_create("chainexec event channels", sizeof(ChannelKey), sizeof(ChannelEntry));
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
void
ce_channel_name(const pg_uuid_t *org, Oid role, char out[NAMEDATALEN])
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
	ce_channel_name(org, owner, role_channel);
	ce_channel_name(org, InvalidOid, admin_channel);
	return 2;
}

/* Whether a channel name is one of chainexec's (plain, or prefix_digest). */
bool
ce_is_event_channel(const char *ch)
{
	char		prefix[NAMEDATALEN];
	size_t		plen;
	int			i;

	if (strcmp(ch, ce_notify_channel) == 0)
		return true;
	ce_channel_prefix(prefix);
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
