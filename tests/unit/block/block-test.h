/*
 * Helpers shared by the block layer tests: a temporary directory per test
 * program, image creation/opening through the real block layer, patterns,
 * file hashes (to prove that a failed open did not write), and running
 * tpmvm-img / qemu-img / qemu-io.
 */
#ifndef TESTS_BLOCK_TEST_H
#define TESTS_BLOCK_TEST_H

#include <glib.h>
#include <glib/gstdio.h>

#include "block/block_int.h"
#include "util/error.h"

/* The test's temporary directory (created on first use, removed at exit). */
const char *bt_tmpdir(void);
/* A path inside the temporary directory; free with g_free. */
char *bt_path(const char *name);
/* Remove the temporary directory and everything in it. */
void bt_cleanup(void);

/* Create an image with tpmvm's own block layer; fails the test on error. */
void bt_create(const char *fmt, const char *path, uint64_t size, const char *opts);
/* Open an image by option string ("driver=qcow2,file.filename=..."). */
BlockDriverState *bt_open_opts(const char *opts, int flags, GError **errp);
/*
 * Open a qcow2 or raw image read-write (or read-only); fails the test on
 * error. Tests that do not simulate crashes skip fdatasync (cache=unsafe).
 */
BlockDriverState *bt_open(const char *path, const char *fmt, bool rw);

/* Deterministic pattern: byte at absolute offset `off` for `seed`. */
uint8_t bt_pattern_byte(uint64_t off, uint32_t seed);
void bt_fill(uint8_t *buf, uint64_t off, uint64_t len, uint32_t seed);
void bt_write_pattern(BlockDriverState *bs, uint64_t off, uint64_t len, uint32_t seed);
/* Assert that [off, off + len) reads back the pattern (seed) or zeros (seed 0). */
void bt_check_pattern(BlockDriverState *bs, uint64_t off, uint64_t len, uint32_t seed);

/* Overwrite bytes of a file (for hand-made corruption). */
void bt_patch(const char *path, uint64_t offset, const void *buf, size_t len);
void bt_patch_be16(const char *path, uint64_t offset, uint16_t v);
void bt_patch_be32(const char *path, uint64_t offset, uint32_t v);
void bt_patch_be64(const char *path, uint64_t offset, uint64_t v);
uint64_t bt_read_be64(const char *path, uint64_t offset);
uint32_t bt_read_be32(const char *path, uint64_t offset);
void bt_copy_file(const char *from, const char *to);
/* Replace a file's contents without fsync (test data need not be durable). */
void bt_write_file(const char *path, const void *data, gsize len);

/* SHA-256 of a whole file, as hex (g_free). */
char *bt_file_hash(const char *path);

/* Run a command (argv NULL-terminated); returns the exit status, captures output. */
int bt_run(char **out, char **err, const char *const *argv);
/* Path of the built tpmvm-img. */
const char *bt_img_tool(void);
/* True if a program is on PATH. */
bool bt_have(const char *prog);

/* Define secret `id` holding `pass` (through a file, as users should). */
void bt_secret(const char *id, const char *pass);
/* Create a LUKS qcow2 (iter-time=10) with secret `id`; extra opts may be NULL. */
void bt_create_luks(const char *path, uint64_t size, const char *secret_id,
                    const char *extra);
/* Open a LUKS qcow2 with a secret; fails the test on error. */
BlockDriverState *bt_open_luks(const char *path, const char *secret_id, bool rw);

/* Check an image with our checker: corruptions and leaks must be 0. */
void bt_assert_clean(BlockDriverState *bs);

#endif
