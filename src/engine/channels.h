/*-------------------------------------------------------------------------
 *
 * channels.h
 *	  The NOTIFY channels of execution events: one per organization and
 *	  owner role, one per organization for chainexec_admin, named with a
 *	  keyed digest that only chainexec can compute (SPEC section 7, and
 *	  "Listening safely" in the README).
 *
 *-------------------------------------------------------------------------
 */
#ifndef CE_CHANNELS_H
#define CE_CHANNELS_H

#include "postgres.h"
#include "utils/uuid.h"

/*
 * The channels an event of an execution of organization org owned by
 * owner goes to, each NAMEDATALEN bytes: the owner role's and the
 * organization's chainexec_admin channel.  With chainexec.notify_public on,
 * only *nchannels = 1 channel: chainexec.notify_channel itself.  Needs a
 * transaction; runs no query once the channel secret is cached.
 */
extern int	ce_event_channels(const pg_uuid_t *org, Oid owner,
							  char role_channel[NAMEDATALEN],
							  char admin_channel[NAMEDATALEN]);

/* The channel prefix: chainexec.notify_channel, clipped to fit a name. */
extern void ce_channel_prefix(char *out);

/*
 * The channel of role's events in organization org (role InvalidOid: the
 * organization's admin channel), from the backend's cache or computed.
 */
extern void ce_channel_name(const pg_uuid_t *org, Oid role, char out[NAMEDATALEN]);

/* Whether a channel name is one of chainexec's (plain, or prefix_digest). */
extern bool ce_is_event_channel(const char *ch);

#endif							/* CE_CHANNELS_H */
