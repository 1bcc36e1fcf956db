/*
 * QMP and the human monitor (HMP). Commands are tables: a part registers its
 * commands at start-up; the monitor parses, dispatches and formats.
 */
#ifndef MONITOR_MONITOR_H
#define MONITOR_MONITOR_H

#include <stdbool.h>
#include <glib.h>
#include <json-glib/json-glib.h>

/*
 * A QMP command. `args` is the "arguments" object (never NULL). Return the
 * "return" value (NULL + errp set on error; NULL without error means {}).
 */
typedef JsonNode *(*QmpCommandFn)(JsonObject *args, GError **errp);

#define QMP_ALLOW_PRECAP 0x1   /* allowed before qmp_capabilities */

void qmp_register_command(const char *name, QmpCommandFn fn, unsigned flags);
/* Broadcast an event to every QMP client; takes ownership of data (may be NULL). */
void qmp_send_event(const char *name, JsonObject *data);

/* Argument helpers: fail with QEMU-style messages ("Parameter 'x' is missing"). */
bool qmp_arg_str(JsonObject *args, const char *name, bool required, const char **out,
                 GError **errp);
bool qmp_arg_bool(JsonObject *args, const char *name, bool def, bool *out, GError **errp);
bool qmp_arg_int(JsonObject *args, const char *name, bool required, int64_t def,
                 int64_t *out, GError **errp);

/*
 * A human monitor command ("info tpm", "savevm TAG"). `args` is the rest of
 * the line; append output to `out`. Errors are printed by the monitor.
 */
typedef bool (*HmpCommandFn)(const char *args, GString *out, GError **errp);
void hmp_register_command(const char *name, const char *params, const char *help,
                          HmpCommandFn fn);
/* "info NAME" subcommands. */
void hmp_register_info(const char *name, const char *help, HmpCommandFn fn);
/* Run one HMP line (used by human-monitor-command and -monitor). */
char *hmp_run_line(const char *line);

/* Monitors on chardevs: -mon chardev=ID,mode=control|readline, -qmp SPEC, -monitor SPEC */
bool monitor_new_from_string(const char *optstr, GError **errp);
bool monitor_new_qmp(const char *spec, bool pretty, GError **errp);
bool monitor_new_hmp(const char *spec, GError **errp);

#endif
