/*
 * The qtest protocol server (-qtest SPEC, -qtest-log FILE). Tests drive the
 * machine's buses through a line protocol on a chardev; the protocol is
 * QEMU's (docs/cli.md lists the commands). Lines are handled in the main loop
 * with the big lock held.
 */
#ifndef SYSTEM_QTEST_H
#define SYSTEM_QTEST_H

#include <stdbool.h>
#include <stddef.h>
#include <glib.h>

#include "system/chardev.h"

/* Longest request line accepted; longer lines get FAIL and are discarded. */
#define QTEST_MAX_LINE (64 * 1024)
/* Largest read/b64read/write transfer in one command. */
#define QTEST_MAX_XFER (16 * 1024 * 1024)

/* True when the qtest accelerator is in use (no CPUs, manual clock). */
bool qtest_enabled(void);
void qtest_set_enabled(bool on);

/* Serve the protocol on chr; log traffic to log_path (NULL or "/dev/null" = no log). */
bool qtest_server_init(Chardev *chr, const char *log_path, GError **errp);
void qtest_server_cleanup(void);

/* Feed bytes as if they came from the chardev (for unit tests; big lock held). */
void qtest_server_inject(const char *buf, size_t len);

#endif
