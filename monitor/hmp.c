/*
 * The human monitor: command and "info" tables, the line runner shared by
 * human-monitor-command and the text monitor, help, and the line session
 * that a chardev (-monitor stdio, -mon mode=readline) drives. No line editing:
 * the terminal or client sends whole lines.
 */
#include <stdio.h>
#include <string.h>

#include "config-host.h"
#include "monitor/monitor.h"
#include "monitor/monitor-internal.h"
#include "util/trace.h"

typedef struct HmpCommand {
    char *name; /* "cont|c": first is the main name, the rest aliases */
    char *params;
    char *help;
    HmpCommandFn fn;
} HmpCommand;

/* Written only by constructors before main(); read-only afterwards. */
static GPtrArray *hmp_commands;
static GPtrArray *hmp_infos;

static bool hmp_name_matches(const char *names, const char *word)
{
    g_auto(GStrv) alts = g_strsplit(names, "|", -1);

    for (guint i = 0; alts[i]; i++) {
        if (strcmp(alts[i], word) == 0) {
            return true;
        }
    }
    return false;
}

static HmpCommand *hmp_find(GPtrArray *table, const char *word)
{
    for (guint i = 0; table && i < table->len; i++) {
        HmpCommand *cmd = table->pdata[i];

        if (hmp_name_matches(cmd->name, word)) {
            return cmd;
        }
    }
    return NULL;
}

static gint hmp_compare(gconstpointer a, gconstpointer b)
{
    const HmpCommand *x = *(HmpCommand *const *)a;
    const HmpCommand *y = *(HmpCommand *const *)b;

    return strcmp(x->name, y->name);
}

static void hmp_add(GPtrArray **table, const char *what, const char *name,
                    const char *params, const char *help, HmpCommandFn fn)
{
    g_auto(GStrv) alts = g_strsplit(name, "|", -1);
    HmpCommand *cmd;

    if (!*table) {
        *table = g_ptr_array_new();
    }
    for (guint i = 0; alts[i]; i++) {
        if (!*alts[i] || hmp_find(*table, alts[i])) {
            g_error("HMP %s '%s' registered twice or empty", what, alts[i]);
        }
    }
    cmd = g_new0(HmpCommand, 1);
    cmd->name = g_strdup(name);
    cmd->params = g_strdup(params ? params : "");
    cmd->help = g_strdup(help ? help : "");
    cmd->fn = fn;
    g_ptr_array_add(*table, cmd);
    g_ptr_array_sort(*table, hmp_compare);
}

void hmp_register_command(const char *name, const char *params, const char *help,
                          HmpCommandFn fn)
{
    hmp_add(&hmp_commands, "command", name, params, help, fn);
}

void hmp_register_info(const char *name, const char *help, HmpCommandFn fn)
{
    hmp_add(&hmp_infos, "info command", name, "", help, fn);
}

static void hmp_list(GString *out, GPtrArray *table, const char *prefix)
{
    for (guint i = 0; table && i < table->len; i++) {
        HmpCommand *cmd = table->pdata[i];

        g_string_append_printf(out, "%s%s %s -- %s\n", prefix, cmd->name, cmd->params,
                               cmd->help);
    }
}

/* Split "word rest" at the first blank; `rest` is trimmed. */
static char *hmp_split_word(const char *line, const char **rest)
{
    const char *p = line;
    const char *end;

    while (*p && g_ascii_isspace(*p)) {
        p++;
    }
    end = p;
    while (*end && !g_ascii_isspace(*end)) {
        end++;
    }
    *rest = end;
    while (**rest && g_ascii_isspace(**rest)) {
        (*rest)++;
    }
    return g_strndup(p, end - p);
}

static void hmp_run_command(HmpCommand *cmd, const char *shown_name, const char *args,
                            GString *out)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *trimmed = g_strstrip(g_strdup(args));

    if (!cmd->params[0] && trimmed[0]) {
        g_string_append_printf(out,
                               "%s: extraneous characters at the end of line\n"
                               "Try \"help %s\" for more information\n",
                               cmd->name, shown_name);
        return;
    }
    if (!cmd->fn(trimmed, out, &err)) {
        g_string_append_printf(out, "Error: %s\n",
                               err ? err->message : "command failed (no details)");
    }
}

/* LF -> CRLF, as QEMU's monitor writes lines (human-monitor-command keeps them). */
static char *hmp_crlf(const GString *text)
{
    GString *out = g_string_sized_new(text->len + 16);

    for (gsize i = 0; i < text->len; i++) {
        if (text->str[i] == '\n' && (i == 0 || text->str[i - 1] != '\r')) {
            g_string_append_c(out, '\r');
        }
        g_string_append_c(out, text->str[i]);
    }
    return g_string_free(out, FALSE);
}

char *hmp_run_line(const char *line)
{
    g_autoptr(GString) out = g_string_new(NULL);
    g_autofree char *word = NULL;
    const char *rest;
    HmpCommand *cmd;

    word = hmp_split_word(line ? line : "", &rest);
    trace_event("hmp_command", "line=%s", line ? line : "");
    if (!word[0]) {
        return g_strdup("");
    }
    if (!(cmd = hmp_find(hmp_commands, word))) {
        g_string_append_printf(out, "unknown command: '%s'\n", word);
    } else {
        hmp_run_command(cmd, word, rest, out);
    }
    return hmp_crlf(out);
}

/* help [COMMAND | info]: the tables, or one entry. */
static bool hmp_cmd_help(const char *args, GString *out, GError **errp)
{
    HmpCommand *cmd;

    if (!args[0]) {
        hmp_list(out, hmp_commands, "");
    } else if (strcmp(args, "info") == 0) {
        hmp_list(out, hmp_infos, "info ");
    } else if ((cmd = hmp_find(hmp_commands, args))) {
        g_string_append_printf(out, "%s %s -- %s\n", cmd->name, cmd->params, cmd->help);
    } else {
        g_string_append_printf(out, "unknown command: '%s'\n", args);
    }
    return true;
}

/* info [SUBCOMMAND]: run an entry of the info table, or list them. */
static bool hmp_cmd_info(const char *args, GString *out, GError **errp)
{
    const char *sub_rest;
    g_autofree char *sub = hmp_split_word(args, &sub_rest);
    g_autofree char *shown = g_strdup_printf("info %s", sub);
    HmpCommand *cmd;

    if (!sub[0]) {
        hmp_list(out, hmp_infos, "info ");
    } else if (!(cmd = hmp_find(hmp_infos, sub))) {
        g_string_append_printf(out, "unknown command: 'info %s'\n", sub);
    } else {
        hmp_run_command(cmd, shown, sub_rest, out);
    }
    return true;
}

static bool hmp_info_version(const char *args, GString *out, GError **errp)
{
    g_string_append_printf(out, "%s\n", TPMVM_VERSION);
    return true;
}

static void __attribute__((constructor)) hmp_register_core_commands(void)
{
    hmp_register_command("help|?", "[cmd]", "show the help", hmp_cmd_help);
    hmp_register_command("info", "[subcommand]",
                         "show various information about the "
                         "system state",
                         hmp_cmd_info);
    hmp_register_info("version", "show the version of tpmvm", hmp_info_version);
}

struct HmpSession {
    MonitorOutputFn out;
    void *opaque;
    GString *line;
    bool overlong; /* the current line passed HMP_LINE_MAX: drop it */
    bool after_cr; /* last byte was CR: a following LF ends nothing */
};

HmpSession *hmp_session_new(MonitorOutputFn out, void *opaque)
{
    HmpSession *s = g_new0(HmpSession, 1);

    s->out = out;
    s->opaque = opaque;
    s->line = g_string_new(NULL);
    return s;
}

void hmp_session_free(HmpSession *s)
{
    if (!s) {
        return;
    }
    g_string_free(s->line, TRUE);
    g_free(s);
}

static void hmp_session_write(HmpSession *s, const char *text)
{
    s->out(s->opaque, text, strlen(text));
}

void hmp_session_open(HmpSession *s)
{
    g_autofree char *banner = g_strdup_printf(
        "tpmvm %s monitor - type 'help' for more information\r\n" HMP_PROMPT,
        TPMVM_VERSION);

    hmp_session_close(s);
    hmp_session_write(s, banner);
}

void hmp_session_close(HmpSession *s)
{
    g_string_truncate(s->line, 0);
    s->overlong = false;
    s->after_cr = false;
}

static void hmp_session_end_line(HmpSession *s)
{
    if (s->overlong) {
        g_autofree char *msg = g_strdup_printf(
            "Error: line longer than %d bytes, ignored\r\n", HMP_LINE_MAX);

        hmp_session_write(s, msg);
    } else {
        g_autofree char *output = hmp_run_line(s->line->str);

        hmp_session_write(s, output);
    }
    g_string_truncate(s->line, 0);
    s->overlong = false;
    hmp_session_write(s, HMP_PROMPT);
}

void hmp_session_feed(HmpSession *s, const uint8_t *buf, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        uint8_t c = buf[i];
        bool was_cr = s->after_cr;

        s->after_cr = c == '\r';
        if (c == '\n' && was_cr) {
            continue;
        }
        if (c == '\r' || c == '\n') {
            hmp_session_end_line(s);
        } else if (c == '\0') {
            continue; /* telnet sends CR NUL */
        } else if (s->line->len >= HMP_LINE_MAX) {
            s->overlong = true;
        } else if (!s->overlong) {
            g_string_append_c(s->line, (char)c);
        }
    }
}
