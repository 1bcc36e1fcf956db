/*
 * LUKS anti-forensic splitter (LUKS1 on-disk format §2.4): a key of
 * `block_len` bytes is stored as `stripes` blocks, all of which are needed to
 * recover it, so wiping any part of the key material destroys the key.
 */
#ifndef CRYPTO_AFSPLIT_H
#define CRYPTO_AFSPLIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <glib.h>

#include "crypto/hash.h"

/* out (block_len * stripes bytes) = split of in (block_len bytes); stripes >= 1. */
bool afsplit_split(CryptoHashAlg alg, size_t block_len, uint32_t stripes,
                   const uint8_t *in, uint8_t *out, GError **errp);
/* out (block_len bytes) = merge of in (block_len * stripes bytes). */
void afsplit_merge(CryptoHashAlg alg, size_t block_len, uint32_t stripes,
                   const uint8_t *in, uint8_t *out);

#endif
