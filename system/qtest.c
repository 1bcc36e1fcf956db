/*
 * The qtest protocol server. See include/system/qtest.h and docs/cli.md.
 *
 * One request per line, words separated by single spaces, numbers in C
 * notation (0x.. hex, decimal). Replies: "OK[ value]", "FAIL reason" (the
 * request was understood but could not be done) or "ERR reason" (malformed
 * request). Intercepted interrupt lines send "IRQ raise N" / "IRQ lower N"
 * lines at any time. Nothing a client sends can crash the server: every
 * number, size and line length is checked.
 */
#include "system/qtest.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hw/core/machine.h"
#include "hw/core/memory.h"
#include "system/clock.h"
#include "system/main-loop.h"
#include "util/error.h"
#include "util/trace.h"

#define QTEST_MAX_WORDS 8
/* reply buffers above this size are freed after use */
#define QTEST_REPLY_KEEP (256 * 1024)

typedef struct QTestServer {
    Chardev *chr;
    FILE *log;
    gint64 start_us;
    GString *line;   /* request being assembled */
    bool discarding; /* the current line overflowed: skip to its newline */
    GString *reply;  /* reused for every reply */
    bool irq_intercepted;
    int irq_levels[MACHINE_NUM_GSI];
} QTestServer;

static bool qtest_on;
static QTestServer *server;

bool qtest_enabled(void)
{
    return qtest_on;
}

void qtest_set_enabled(bool on)
{
    qtest_on = on;
}

static void qtest_log(QTestServer *s, char dir, const char *text, size_t len)
{
    double t;

    if (!s->log) {
        return;
    }
    t = (g_get_monotonic_time() - s->start_us) / 1e6;
    fprintf(s->log, "[%c +%.6f] %.*s\n", dir, t, (int)len, text);
    fflush(s->log);
}

/* Send s->reply (no trailing newline in the buffer) as one line. */
static void qtest_send_reply(QTestServer *s)
{
    qtest_log(s, 'S', s->reply->str, s->reply->len);
    g_string_append_c(s->reply, '\n');
    chardev_write(s->chr, s->reply->str, s->reply->len);
    if (s->reply->allocated_len > QTEST_REPLY_KEEP) {
        /* a big read was answered: give the memory back */
        g_string_free(s->reply, TRUE);
        s->reply = g_string_sized_new(256);
    } else {
        g_string_truncate(s->reply, 0);
    }
}

static void G_GNUC_PRINTF(3, 4)
    qtest_reply(QTestServer *s, const char *kind, const char *fmt, ...)
{
    va_list ap;

    g_string_assign(s->reply, kind);
    if (fmt) {
        g_string_append_c(s->reply, ' ');
        va_start(ap, fmt);
        g_string_append_vprintf(s->reply, fmt, ap);
        va_end(ap);
    }
    qtest_send_reply(s);
}

/* ---- argument parsing ---- */

static bool parse_u64(const char *w, uint64_t *out)
{
    char *end;

    if (!w || !*w || *w == '-' || *w == '+' || g_ascii_isspace(*w)) {
        return false;
    }
    errno = 0;
    *out = strtoull(w, &end, 0);
    return errno == 0 && *end == '\0';
}

static bool parse_i64(const char *w, int64_t *out)
{
    char *end;

    if (!w || !*w || g_ascii_isspace(*w)) {
        return false;
    }
    errno = 0;
    *out = strtoll(w, &end, 0);
    return errno == 0 && *end == '\0';
}

typedef struct QTestCmd QTestCmd;
typedef void (*QTestHandler)(QTestServer *s, const QTestCmd *cmd, char **w, int nw);

struct QTestCmd {
    const char *name;
    int min_args, max_args;
    QTestHandler fn;
    unsigned size; /* access size for read/write/in/out */
};

/* Parse argument i as an unsigned number or reply ERR naming it. */
static bool arg_u64(QTestServer *s, char **w, int i, const char *what, uint64_t *out)
{
    if (!parse_u64(w[i], out)) {
        qtest_reply(s, "ERR", "invalid %s '%s'", what, w[i]);
        return false;
    }
    return true;
}

static AddressSpace *qtest_sysmem(QTestServer *s)
{
    return current_machine ? current_machine->sysmem : NULL;
}

static void cmd_read_n(QTestServer *s, const QTestCmd *c, char **w, int nw)
{
    uint64_t addr, val = UINT64_MAX >> (64 - 8 * c->size);

    if (!arg_u64(s, w, 1, "address", &addr)) {
        return;
    }
    if (qtest_sysmem(s)) {
        address_space_read(qtest_sysmem(s), addr, c->size, &val);
    }
    qtest_reply(s, "OK", "0x%016" G_GINT64_MODIFIER "x", val);
}

static void cmd_write_n(QTestServer *s, const QTestCmd *c, char **w, int nw)
{
    uint64_t addr, val;

    if (!arg_u64(s, w, 1, "address", &addr) || !arg_u64(s, w, 2, "value", &val)) {
        return;
    }
    if (qtest_sysmem(s)) {
        address_space_write(qtest_sysmem(s), addr, c->size, val);
    }
    qtest_reply(s, "OK", NULL);
}

static void cmd_in_n(QTestServer *s, const QTestCmd *c, char **w, int nw)
{
    uint64_t port, val = UINT64_MAX >> (64 - 8 * c->size);

    if (!arg_u64(s, w, 1, "port", &port)) {
        return;
    }
    if (port > 0xffff) {
        qtest_reply(s, "ERR", "port 0x%" G_GINT64_MODIFIER "x is above 0xffff", port);
        return;
    }
    if (current_machine) {
        address_space_read(current_machine->io, port, c->size, &val);
    }
    qtest_reply(s, "OK", "0x%04" G_GINT64_MODIFIER "x", val);
}

static void cmd_out_n(QTestServer *s, const QTestCmd *c, char **w, int nw)
{
    uint64_t port, val;

    if (!arg_u64(s, w, 1, "port", &port) || !arg_u64(s, w, 2, "value", &val)) {
        return;
    }
    if (port > 0xffff) {
        qtest_reply(s, "ERR", "port 0x%" G_GINT64_MODIFIER "x is above 0xffff", port);
        return;
    }
    if (current_machine) {
        address_space_write(current_machine->io, port, c->size, val);
    }
    qtest_reply(s, "OK", NULL);
}

/* Parse ADDR SIZE for the buffer commands; size 0 allowed only if allow_zero. */
static bool arg_range(QTestServer *s, char **w, bool allow_zero, bool bounded,
                      uint64_t *addr, uint64_t *size)
{
    if (!arg_u64(s, w, 1, "address", addr) || !arg_u64(s, w, 2, "size", size)) {
        return false;
    }
    if (!allow_zero && *size == 0) {
        qtest_reply(s, "ERR", "invalid argument size 0");
        return false;
    }
    if (bounded && *size > QTEST_MAX_XFER) {
        qtest_reply(s, "ERR", "size %" G_GUINT64_FORMAT " exceeds the limit of %d bytes",
                    *size, QTEST_MAX_XFER);
        return false;
    }
    return true;
}

static void mem_rw(uint64_t addr, void *buf, uint64_t len, bool is_write)
{
    AddressSpace *as = current_machine ? current_machine->sysmem : NULL;

    if (as) {
        address_space_rw(as, addr, buf, len, is_write);
    } else if (!is_write) {
        memset(buf, 0xff, len);
    }
}

static void cmd_read(QTestServer *s, const QTestCmd *c, char **w, int nw)
{
    static const char hex[] = "0123456789abcdef";
    uint64_t addr, size;
    g_autofree uint8_t *data = NULL;

    if (!arg_range(s, w, false, true, &addr, &size)) {
        return;
    }
    data = g_malloc(size);
    mem_rw(addr, data, size, false);
    g_string_assign(s->reply, "OK 0x");
    g_string_set_size(s->reply, 5 + size * 2);
    for (uint64_t i = 0; i < size; i++) {
        s->reply->str[5 + 2 * i] = hex[data[i] >> 4];
        s->reply->str[6 + 2 * i] = hex[data[i] & 0xf];
    }
    qtest_send_reply(s);
}

static void cmd_b64read(QTestServer *s, const QTestCmd *c, char **w, int nw)
{
    uint64_t addr, size;
    g_autofree uint8_t *data = NULL;
    g_autofree char *enc = NULL;

    if (!arg_range(s, w, false, true, &addr, &size)) {
        return;
    }
    data = g_malloc(size);
    mem_rw(addr, data, size, false);
    enc = g_base64_encode(data, size);
    qtest_reply(s, "OK", "%s", enc);
}

static void cmd_write(QTestServer *s, const QTestCmd *c, char **w, int nw)
{
    uint64_t addr, size;
    size_t dlen;
    g_autofree uint8_t *data = NULL;

    if (!arg_range(s, w, false, true, &addr, &size)) {
        return;
    }
    dlen = strlen(w[3]);
    if (dlen < 3 || w[3][0] != '0' || (w[3][1] != 'x' && w[3][1] != 'X')) {
        qtest_reply(s, "ERR", "invalid argument size");
        return;
    }
    /* data shorter than size is zero-padded, as QEMU does */
    data = g_malloc0(size);
    for (uint64_t i = 0; i < size && 2 * i + 4 <= dlen; i++) {
        int hi = g_ascii_xdigit_value(w[3][2 + 2 * i]);
        int lo = g_ascii_xdigit_value(w[3][3 + 2 * i]);
        if (hi < 0 || lo < 0) {
            qtest_reply(s, "ERR", "invalid hex data at byte %" G_GUINT64_FORMAT, i);
            return;
        }
        data[i] = (uint8_t)(hi << 4 | lo);
    }
    mem_rw(addr, data, size, true);
    qtest_reply(s, "OK", NULL);
}

static void cmd_b64write(QTestServer *s, const QTestCmd *c, char **w, int nw)
{
    uint64_t addr, size;
    gsize out_len = 0;
    guchar *data;

    if (!arg_range(s, w, false, true, &addr, &size)) {
        return;
    }
    /*
     * Decodes in place into the request line, which we own. GLib refuses a
     * 1-character input (a critical, not an error): it holds no whole byte.
     */
    data = strlen(w[3]) > 1 ? g_base64_decode_inplace(w[3], &out_len) : (guchar *)w[3];
    if (out_len != size) {
        g_autofree char *note = g_strdup_printf("b64write size=%" G_GUINT64_FORMAT
                                                " != decoded size=%" G_GSIZE_FORMAT,
                                                size, out_len);
        qtest_log(s, 'I', note, strlen(note));
    }
    mem_rw(addr, data, MIN(size, (uint64_t)out_len), true);
    qtest_reply(s, "OK", NULL);
}

static void cmd_memset(QTestServer *s, const QTestCmd *c, char **w, int nw)
{
    uint64_t addr, size, byte;

    if (!arg_range(s, w, true, false, &addr, &size) ||
        !arg_u64(s, w, 3, "value", &byte)) {
        return;
    }
    if (byte > 0xff) {
        qtest_reply(s, "ERR", "value 0x%" G_GINT64_MODIFIER "x does not fit in a byte",
                    byte);
        return;
    }
    if (size && current_machine) {
        if (!address_space_fill(current_machine->sysmem, addr, (uint8_t)byte, size)) {
            trace_event("qtest_memset_unassigned", "addr=0x%" G_GINT64_MODIFIER "x",
                        addr);
        }
    }
    qtest_reply(s, "OK", NULL);
}

static void cmd_clock_step(QTestServer *s, const QTestCmd *c, char **w, int nw)
{
    int64_t now = vclock_get_ns(), target;

    if (nw > 1) {
        int64_t step;
        if (!parse_i64(w[1], &step) || step < 0) {
            qtest_reply(s, "ERR", "invalid step '%s'", w[1]);
            return;
        }
        target = step > INT64_MAX - now ? INT64_MAX : now + step;
    } else {
        target = vclock_next_deadline();
        if (target < 0) {
            qtest_reply(s, "FAIL",
                        "cannot advance clock to the next deadline because "
                        "there is no pending deadline");
            return;
        }
    }
    vclock_advance_to(target);
    qtest_reply(s, "OK", "%" G_GINT64_FORMAT, vclock_get_ns());
}

static void cmd_clock_set(QTestServer *s, const QTestCmd *c, char **w, int nw)
{
    int64_t ns;

    if (!parse_i64(w[1], &ns)) {
        qtest_reply(s, "ERR", "invalid time '%s'", w[1]);
        return;
    }
    /* the clock never goes back; the reply tells where it is */
    vclock_advance_to(ns);
    qtest_reply(s, "OK", "%" G_GINT64_FORMAT, vclock_get_ns());
}

static bool irq_path_is_ioapic(const char *path)
{
    return !strcmp(path, "ioapic") || !strcmp(path, "/machine/ioapic");
}

static void qtest_irq_handler(void *opaque, int n, int level)
{
    QTestServer *s = opaque;

    if (n < 0 || n >= MACHINE_NUM_GSI || s->irq_levels[n] == level) {
        return;
    }
    s->irq_levels[n] = level;
    g_string_printf(s->reply, "IRQ %s %d", level ? "raise" : "lower", n);
    qtest_send_reply(s);
}

static void cmd_irq_intercept(QTestServer *s, const QTestCmd *c, char **w, int nw)
{
    if (!current_machine || !current_machine->num_gsi || !irq_path_is_ioapic(w[1])) {
        qtest_reply(s, "FAIL", "Unknown device");
        return;
    }
    if (s->irq_intercepted) {
        qtest_reply(s, "FAIL", "IRQ intercept already enabled");
        return;
    }
    s->irq_intercepted = true;
    for (int i = 0; i < current_machine->num_gsi && i < MACHINE_NUM_GSI; i++) {
        s->irq_levels[i] = 0;
    }
    machine_route_gsi(current_machine, qtest_irq_handler, s);
    qtest_reply(s, "OK", NULL);
}

static void cmd_set_irq_in(QTestServer *s, const QTestCmd *c, char **w, int nw)
{
    int64_t num, level;

    if (!current_machine || !current_machine->num_gsi || !irq_path_is_ioapic(w[1])) {
        qtest_reply(s, "FAIL", "Unknown device");
        return;
    }
    if (!parse_i64(w[3], &num) || !parse_i64(w[4], &level)) {
        qtest_reply(s, "ERR", "invalid line number or level");
        return;
    }
    if (num < 0 || num >= current_machine->num_gsi) {
        qtest_reply(s, "FAIL", "no input line %" G_GINT64_FORMAT " on '%s' (0..%d)", num,
                    w[1], current_machine->num_gsi - 1);
        return;
    }
    irq_set_level(&current_machine->gsi[num], level != 0);
    qtest_reply(s, "OK", NULL);
}

static void cmd_endianness(QTestServer *s, const QTestCmd *c, char **w, int nw)
{
    qtest_reply(s, "OK", "little");
}

static void cmd_module_load(QTestServer *s, const QTestCmd *c, char **w, int nw)
{
    qtest_reply(s, "FAIL", "module loading is not supported");
}

static const QTestCmd qtest_cmds[] = {
    {"readb", 1, 1, cmd_read_n, 1},
    {"readw", 1, 1, cmd_read_n, 2},
    {"readl", 1, 1, cmd_read_n, 4},
    {"readq", 1, 1, cmd_read_n, 8},
    {"writeb", 2, 2, cmd_write_n, 1},
    {"writew", 2, 2, cmd_write_n, 2},
    {"writel", 2, 2, cmd_write_n, 4},
    {"writeq", 2, 2, cmd_write_n, 8},
    {"inb", 1, 1, cmd_in_n, 1},
    {"inw", 1, 1, cmd_in_n, 2},
    {"inl", 1, 1, cmd_in_n, 4},
    {"outb", 2, 2, cmd_out_n, 1},
    {"outw", 2, 2, cmd_out_n, 2},
    {"outl", 2, 2, cmd_out_n, 4},
    {"read", 2, 2, cmd_read, 0},
    {"write", 3, 3, cmd_write, 0},
    {"b64read", 2, 2, cmd_b64read, 0},
    {"b64write", 3, 3, cmd_b64write, 0},
    {"memset", 3, 3, cmd_memset, 0},
    {"clock_step", 0, 1, cmd_clock_step, 0},
    {"clock_set", 1, 1, cmd_clock_set, 0},
    {"irq_intercept_in", 1, 1, cmd_irq_intercept, 0},
    /* our GSIs are the interrupt controller's inputs: out on "ioapic" is the same pins */
    {"irq_intercept_out", 1, 2, cmd_irq_intercept, 0},
    {"set_irq_in", 4, 4, cmd_set_irq_in, 0},
    {"endianness", 0, 0, cmd_endianness, 0},
    {"module_load", 0, 2, cmd_module_load, 0},
};

static void qtest_process_line(QTestServer *s, char *line)
{
    char *w[QTEST_MAX_WORDS + 1];
    int nw = 0;
    char *p = line;

    qtest_log(s, 'R', line, strlen(line));
    trace_event("qtest_request", "%s", line);
    /* words are separated by single spaces; extra spaces make empty words */
    while (nw <= QTEST_MAX_WORDS) {
        w[nw++] = p;
        p = strchr(p, ' ');
        if (!p) {
            break;
        }
        *p++ = '\0';
    }
    if (p) {
        qtest_reply(s, "ERR", "too many arguments");
        return;
    }
    if (w[0][0] == '\0') {
        qtest_reply(s, "ERR", "empty command");
        return;
    }
    for (size_t i = 0; i < G_N_ELEMENTS(qtest_cmds); i++) {
        const QTestCmd *c = &qtest_cmds[i];
        if (strcmp(c->name, w[0]) != 0) {
            continue;
        }
        if (nw - 1 < c->min_args || nw - 1 > c->max_args) {
            if (c->min_args == c->max_args) {
                qtest_reply(s, "ERR", "'%s' takes %d argument(s), got %d", c->name,
                            c->min_args, nw - 1);
            } else {
                qtest_reply(s, "ERR", "'%s' takes %d to %d arguments, got %d", c->name,
                            c->min_args, c->max_args, nw - 1);
            }
            return;
        }
        for (int i2 = 1; i2 < nw; i2++) {
            if (w[i2][0] == '\0') {
                qtest_reply(s, "ERR", "empty argument %d", i2);
                return;
            }
        }
        c->fn(s, c, w, nw);
        return;
    }
    qtest_reply(s, "FAIL", "Unknown command '%s'", w[0]);
}

static void qtest_read(void *opaque, const uint8_t *buf, size_t len)
{
    QTestServer *s = opaque;

    while (len > 0) {
        const uint8_t *nl = memchr(buf, '\n', len);
        size_t take = nl ? (size_t)(nl - buf) : len;

        if (!s->discarding) {
            if (s->line->len + take > QTEST_MAX_LINE) {
                s->discarding = true;
                g_string_truncate(s->line, 0);
            } else {
                g_string_append_len(s->line, (const char *)buf, (gssize)take);
            }
        }
        if (!nl) {
            return;
        }
        buf += take + 1;
        len -= take + 1;
        if (s->discarding) {
            s->discarding = false;
            qtest_reply(s, "FAIL", "line too long (the limit is %d bytes)",
                        QTEST_MAX_LINE);
            continue;
        }
        if (s->line->len && s->line->str[s->line->len - 1] == '\r') {
            g_string_truncate(s->line, s->line->len - 1);
        }
        if (memchr(s->line->str, '\0', s->line->len)) {
            qtest_reply(s, "ERR", "NUL byte in request");
        } else {
            qtest_process_line(s, s->line->str);
        }
        g_string_truncate(s->line, 0);
    }
}

static void qtest_event(void *opaque, ChardevEvent ev)
{
    QTestServer *s = opaque;

    /* a new client starts with a clean line; a half line of the old one is dropped */
    g_string_truncate(s->line, 0);
    s->discarding = false;
    qtest_log(s, 'I', ev == CHARDEV_EVENT_OPENED ? "OPENED" : "CLOSED", 6);
}

bool qtest_server_init(Chardev *chr, const char *log_path, GError **errp)
{
    QTestServer *s;
    FILE *log = NULL;

    if (server) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "-qtest may be given only once");
        return false;
    }
    if (log_path && strcmp(log_path, "/dev/null") != 0) {
        log = fopen(log_path, "w");
        if (!log) {
            error_set_errno(errp, errno, "Could not open '%s'", log_path);
            return false;
        }
    }
    s = g_new0(QTestServer, 1);
    s->chr = chr;
    s->log = log;
    s->start_us = g_get_monotonic_time();
    s->line = g_string_sized_new(256);
    s->reply = g_string_sized_new(256);
    if (!chardev_set_handlers(chr, qtest_read, qtest_event, s, errp)) {
        if (log) {
            fclose(log);
        }
        g_string_free(s->line, TRUE);
        g_string_free(s->reply, TRUE);
        g_free(s);
        return false;
    }
    server = s;
    return true;
}

void qtest_server_cleanup(void)
{
    if (!server) {
        return;
    }
    chardev_set_handlers(server->chr, NULL, NULL, NULL, NULL);
    if (server->irq_intercepted && current_machine) {
        machine_route_gsi(current_machine, NULL, NULL);
    }
    if (server->log) {
        fclose(server->log);
    }
    g_string_free(server->line, TRUE);
    g_string_free(server->reply, TRUE);
    g_clear_pointer(&server, g_free);
}

void qtest_server_inject(const char *buf, size_t len)
{
    if (server) {
        qtest_read(server, (const uint8_t *)buf, len);
    }
}
