/* SPDX-License-Identifier: MIT */
/*
 * Records as the client wrote them before contacts and conversations had ids (data model 1):
 * contacts keyed by name (contact record version 2, with the unread count), messages keyed by
 * name || 0 || message id (version 1, naming the contact), outbox entries naming the contact
 * (version 2), parts keyed by name || 0 || message id || index. Read only by the upgrade
 * (upgrade.c), which rewrites a home in the current model on its first open; nothing writes
 * them any more.
 */
#ifndef CAIRN_CLIENT_RECORDS_V1_H
#define CAIRN_CLIENT_RECORDS_V1_H

#include "records.h"

#define CONTACT_V1_RECORD_VERSION 2
#define RECORD_V1_KEY_MAX         (CAIRN_NAME_MAX + 1 + APPMSG_ID_LEN + 2)

/* A version 2 contact into C (C->id, C->conv zero) and its unread count. 0 or CAIRN_ECORRUPT. */
CAIRN_WARN_UNUSED int contact_v1_parse(const uint8_t *in, size_t len, struct contact *c,
                                       uint32_t *unread);

/* A version 1 message; CONTACT receives the name it was stored under. TEXT points into IN. */
CAIRN_WARN_UNUSED int message_v1_parse(const uint8_t *in, size_t len,
                                       char contact[static CAIRN_NAME_MAX + 1],
                                       struct stored_message *m);

/* A version 2 outbox entry; CONTACT receives the name. ENVELOPE points into IN. */
CAIRN_WARN_UNUSED int outbox_v1_parse(const uint8_t *in, size_t len,
                                      char contact[static CAIRN_NAME_MAX + 1],
                                      struct outbox_entry *e);

/* The keys of model 1: name || 0 || id [|| index (u16, BE)]. Return the length written. */
size_t message_v1_key(uint8_t *out, const char *name, const uint8_t id[static APPMSG_ID_LEN]);
size_t part_v1_key(uint8_t *out, const char *name, const uint8_t id[static APPMSG_ID_LEN],
                   uint16_t index);

#endif
