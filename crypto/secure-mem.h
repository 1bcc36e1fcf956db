/*
 * Internals of secure_alloc()/secure_free() (declared in crypto/secret.h).
 */
#ifndef CRYPTO_SECURE_MEM_H
#define CRYPTO_SECURE_MEM_H

#include <stddef.h>

/*
 * Test hook: when set, secure_free() calls it after wiping and before
 * unmapping, with the whole mapping, so a test can check the wipe on the real
 * memory. NULL in normal runs; set only from single-threaded tests.
 */
extern void (*secure_free_observer)(const void *p, size_t mapped_len);

#endif
