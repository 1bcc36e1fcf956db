/*
 * Monitors on chardevs: -mon, -qmp, -qmp-pretty and -monitor. Each monitor
 * owns one chardev and one session; a chardev connection opening (re)starts
 * the session (QMP greeting, HMP banner), closing drops partial input.
 * Chardev input arrives in the main loop with the big lock held.
 */
#include <string.h>

#include "monitor/monitor.h"
#include "monitor/monitor-internal.h"
#include "system/chardev.h"
#include "util/error.h"
#include "util/keyval.h"

typedef struct Monitor {
    Chardev *chr;
    QmpSession *qmp; /* exactly one of qmp/hmp is set */
    HmpSession *hmp;
    bool open;
} Monitor;

/* Monitors live as long as the process; kept so they are reachable. */
static GPtrArray *monitors;
static unsigned monitor_compat_count;

static void monitor_output(void *opaque, const char *buf, size_t len)
{
    Monitor *mon = opaque;

    chardev_write(mon->chr, buf, len);
}

static void monitor_open(Monitor *mon)
{
    mon->open = true;
    if (mon->qmp) {
        qmp_session_open(mon->qmp);
    } else {
        hmp_session_open(mon->hmp);
    }
}

static void monitor_read(void *opaque, const uint8_t *buf, size_t len)
{
    Monitor *mon = opaque;

    if (!mon->open) {
        monitor_open(mon); /* a backend that never said OPENED */
    }
    if (mon->qmp) {
        qmp_session_feed(mon->qmp, buf, len);
    } else {
        hmp_session_feed(mon->hmp, buf, len);
    }
}

static void monitor_event(void *opaque, ChardevEvent event)
{
    Monitor *mon = opaque;

    switch (event) {
    case CHARDEV_EVENT_OPENED:
        monitor_open(mon);
        break;
    case CHARDEV_EVENT_CLOSED:
        mon->open = false;
        if (mon->qmp) {
            qmp_session_close(mon->qmp);
        } else {
            hmp_session_close(mon->hmp);
        }
        break;
    }
}

static bool monitor_attach(Chardev *chr, bool control, bool pretty, GError **errp)
{
    Monitor *mon = g_new0(Monitor, 1);

    mon->chr = chr;
    if (control) {
        mon->qmp = qmp_session_new(monitor_output, mon, pretty);
    } else {
        mon->hmp = hmp_session_new(monitor_output, mon);
    }
    /* may report OPENED at once, so the monitor must be complete by now */
    if (!chardev_set_handlers(chr, monitor_read, monitor_event, mon, errp)) {
        g_prefix_error(errp, "monitor on chardev '%s': ", chardev_id(chr));
        qmp_session_free(mon->qmp);
        hmp_session_free(mon->hmp);
        g_free(mon);
        return false;
    }
    if (!monitors) {
        monitors = g_ptr_array_new();
    }
    g_ptr_array_add(monitors, mon);
    return true;
}

bool monitor_new_from_string(const char *optstr, GError **errp)
{
    g_autoptr(KeyVal) kv = keyval_parse(optstr, "chardev", errp);
    const char *id, *mode;
    bool pretty = false, control;
    Chardev *chr;

    if (!kv) {
        g_prefix_error(errp, "-mon %s: ", optstr);
        return false;
    }
    id = keyval_get(kv, "chardev");
    mode = keyval_get(kv, "mode");
    if (!id || !*id) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "-mon %s: Parameter 'chardev' is missing; "
                    "use -mon chardev=ID,mode=control|readline",
                    optstr);
        return false;
    }
    if (!mode || strcmp(mode, "readline") == 0) {
        control = false;
    } else if (strcmp(mode, "control") == 0) {
        control = true;
    } else {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "-mon %s: mode '%s' is invalid; use 'control' (QMP) or "
                    "'readline' (human monitor)",
                    optstr, mode);
        return false;
    }
    if (!keyval_get_bool(kv, "pretty", false, &pretty, errp) ||
        !keyval_check_unused(kv, "-mon", errp)) {
        return false;
    }
    chr = chardev_find(id);
    if (!chr) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_DEVICE_NOT_FOUND,
                    "-mon %s: chardev '%s' not found; define it first with "
                    "-chardev BACKEND,id=%s,...",
                    optstr, id, id);
        return false;
    }
    return monitor_attach(chr, control, pretty, errp);
}

static bool monitor_new_legacy(const char *spec, bool control, bool pretty, GError **errp)
{
    g_autofree char *id = g_strdup_printf("compat_monitor%u", monitor_compat_count++);
    Chardev *chr = chardev_new_from_legacy(spec, id, errp);

    if (!chr) {
        g_prefix_error(errp, "%s %s: ", control ? "-qmp" : "-monitor", spec);
        return false;
    }
    return monitor_attach(chr, control, pretty, errp);
}

bool monitor_new_qmp(const char *spec, bool pretty, GError **errp)
{
    return monitor_new_legacy(spec, true, pretty, errp);
}

bool monitor_new_hmp(const char *spec, GError **errp)
{
    return monitor_new_legacy(spec, false, false, errp);
}
