/*
 * QMP and the human monitor (HMP). Commands are tables: a part registers its
 * commands at start-up; the monitor parses, dispatches and formats.
 *
 * Registration: from a constructor in the part's own file, like machine types:
 *
 *     static void __attribute__((constructor)) tpm_cmds_register(void)
 *     {
 *         qmp_register_command_args("query-tpm", qmp_query_tpm, 0, "");
 *         hmp_register_info("tpm", "show the TPM device", hmp_info_tpm);
 *     }
 *
 * The tables are created on first use, so constructor order does not matter;
 * they are read-only once main() runs. Registering a name twice aborts.
 * Command handlers run in the main thread with the big lock held.
 * QMP reference: docs/qmp.md.
 */
#ifndef MONITOR_MONITOR_H
#define MONITOR_MONITOR_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>
#include <json-glib/json-glib.h>

/*
 * A QMP command. `args` is the "arguments" object (never NULL). Return the
 * "return" value (NULL + errp set on error; NULL without error means {}).
 */
typedef JsonNode *(*QmpCommandFn)(JsonObject *args, GError **errp);

#define QMP_ALLOW_PRECAP 0x1 /* allowed before qmp_capabilities */

/* Register a command whose handler checks its own arguments (qmp_arg_*). */
void qmp_register_command(const char *name, QmpCommandFn fn, unsigned flags);
/*
 * Register a command with a declared argument list, checked before the handler
 * runs (missing, wrong type, unexpected -> QEMU's messages). `params` is
 * "name:T,name2:T?" with T one of s (string), b (bool), i (integer),
 * n (number), o (object), a (array), v (any); '?' marks an optional
 * argument; "" means no arguments.
 */
void qmp_register_command_args(const char *name, QmpCommandFn fn, unsigned flags,
                               const char *params);
/*
 * Broadcast an event to every QMP client that finished negotiation; takes
 * ownership of data (may be NULL: no "data" member). Any thread.
 */
void qmp_send_event(const char *name, JsonObject *data);

/* Argument helpers: fail with QEMU-style messages ("Parameter 'x' is missing"). */
bool qmp_arg_str(JsonObject *args, const char *name, bool required, const char **out,
                 GError **errp);
bool qmp_arg_bool(JsonObject *args, const char *name, bool def, bool *out, GError **errp);
bool qmp_arg_int(JsonObject *args, const char *name, bool required, int64_t def,
                 int64_t *out, GError **errp);

/*
 * A human monitor command ("info tpm", "savevm TAG"). `args` is the rest of
 * the line, trimmed; append output lines ending in "\n" to `out`. On failure
 * return false with errp set: the monitor prints "Error: MESSAGE".
 * `name` may list aliases ("cont|c"); a command whose `params` is "" rejects
 * arguments before its handler runs.
 */
typedef bool (*HmpCommandFn)(const char *args, GString *out, GError **errp);
void hmp_register_command(const char *name, const char *params, const char *help,
                          HmpCommandFn fn);
/* "info NAME" subcommands. */
void hmp_register_info(const char *name, const char *help, HmpCommandFn fn);
/* Run one HMP line (used by human-monitor-command and -monitor); returns the
 * output with "\r\n" line ends, as QEMU's monitor does. Free with g_free. */
char *hmp_run_line(const char *line);

/*
 * Monitors on chardevs: -mon [chardev=]ID[,mode=control|readline][,pretty=on|off],
 * -qmp SPEC / -qmp-pretty SPEC, -monitor SPEC (SPEC as for -serial). Each
 * chardev connection is its own session: a QMP client gets the greeting on
 * connect; a human monitor gets a banner and the "(tpmvm) " prompt.
 */
bool monitor_new_from_string(const char *optstr, GError **errp);
bool monitor_new_qmp(const char *spec, bool pretty, GError **errp);
bool monitor_new_hmp(const char *spec, GError **errp);

#endif
