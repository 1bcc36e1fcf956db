/*
 * A bare monitor client for qtests that need more than libqtest's one QMP
 * connection: extra QMP clients, the human monitor, raw bytes, reconnects.
 */
#ifndef TESTS_QTEST_MONITOR_CLIENT_H
#define TESTS_QTEST_MONITOR_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include <glib.h>
#include <json-glib/json-glib.h>

typedef struct MonClient MonClient;

/* Connect to a unix socket (retrying while the server starts); aborts on failure. */
MonClient *mon_client_connect(const char *path);
void mon_client_free(MonClient *c);
void mon_client_send(MonClient *c, const void *buf, size_t len);
void mon_client_send_str(MonClient *c, const char *text);
/* Next line without its "\n"/"\r\n"; NULL on EOF or after timeout_ms. */
char *mon_client_read_line(MonClient *c, int timeout_ms);
/* Everything up to and including the first `marker`; NULL on EOF/timeout. */
char *mon_client_read_until(MonClient *c, const char *marker, int timeout_ms);
/* Next line parsed as a JSON object; fails the test otherwise. */
JsonObject *mon_client_qmp_read(MonClient *c);
/* Read the greeting and negotiate capabilities. */
void mon_client_qmp_handshake(MonClient *c);
/* Send a request and return the first non-event reply (events are dropped). */
JsonObject *mon_client_qmp(MonClient *c, const char *request);
/* Read whatever arrives within timeout_ms without blocking longer. */
char *mon_client_drain(MonClient *c, int timeout_ms);
/* True when the peer closed the connection within timeout_ms. */
bool mon_client_wait_eof(MonClient *c, int timeout_ms);

#endif
