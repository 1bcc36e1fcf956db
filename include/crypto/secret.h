/*
 * Secrets (-object secret,id=ID,data=...|file=...,format=raw|base64).
 *
 * A secret's bytes live in locked memory (mlock) and are wiped when freed.
 * They never appear in messages, traces or QMP replies.
 */
#ifndef CRYPTO_SECRET_H
#define CRYPTO_SECRET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <glib.h>

#include "util/keyval.h"

/* Create from parsed -object options (qom-type already checked to be "secret"). */
bool secret_create(KeyVal *opts, GError **errp);
/* Copy of the secret's bytes in locked memory; free with secret_bytes_free(). */
bool secret_lookup(const char *id, uint8_t **data, size_t *len, GError **errp);
bool secret_exists(const char *id);
void secret_bytes_free(uint8_t *data, size_t len);
void secret_delete_all(void);

/* Locked, wiped-on-free memory for keys. */
void *secure_alloc(size_t len);
void secure_free(void *p, size_t len);

#endif
