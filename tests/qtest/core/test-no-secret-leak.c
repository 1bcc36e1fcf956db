/*
 * Secrets never leave through an output (docs/security.md, "Secrets
 * hygiene"): a running tpmvm with a secret whose value is a unique marker,
 * every trace point on, every query-* QMP command and every HMP command run,
 * and the marker must appear in none of stderr, the trace log, QMP replies,
 * HMP output, /proc/PID/environ and (for file=) /proc/PID/cmdline. In memory
 * it may only live in the secret's own mappings (locked, not dumped).
 *
 * data= puts the secret on the command line, visible in /proc/PID/cmdline to
 * every user: that is why tpmvm warns about it, and the test checks both.
 * Command-line errors next to a secret name its id, never its value; so does
 * a LUKS drive opened with the wrong passphrase (images made by qemu-img;
 * those cases are skipped without it).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "libqtest.h"

/*
 * AddressSanitizer's mlock() does nothing and reports success, so in a
 * sanitizer build (this test is built like tpmvm) locking cannot be checked.
 */
#if defined(__SANITIZE_ADDRESS__)
#define LOCKING_CHECKABLE 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LOCKING_CHECKABLE 0
#endif
#endif
#ifndef LOCKING_CHECKABLE
#define LOCKING_CHECKABLE 1
#endif

/* Mappings larger than this (sanitizer shadow, guest RAM) are not scanned. */
#define SCAN_MAX_MAPPING (256u << 20)

typedef struct LeakCheck {
    const char *marker;
    GPtrArray *also; /* other forms of the secret that must stay out (base64) */
} LeakCheck;

static char *new_marker(void)
{
    /* '-' keeps it from being valid base64, for the format=base64 error case */
    return g_strdup_printf("leak-%08x%08x%08x", g_random_int(), g_random_int(),
                           g_random_int());
}

static bool contains(const char *text, size_t len, const char *needle)
{
    return needle && *needle && memmem(text, len, needle, strlen(needle)) != NULL;
}

static void assert_absent_len(const LeakCheck *c, const char *where, const char *text,
                              size_t len)
{
    if (contains(text, len, c->marker)) {
        g_error("the secret's value appears in %s", where);
    }
    for (guint i = 0; c->also && i < c->also->len; i++) {
        if (contains(text, len, c->also->pdata[i])) {
            g_error("the secret's encoded value appears in %s", where);
        }
    }
}

static void assert_absent(const LeakCheck *c, const char *where, const char *text)
{
    assert_absent_len(c, where, text, strlen(text));
}

static char *json_text(JsonObject *obj)
{
    g_autoptr(JsonNode) node = json_node_init_object(json_node_alloc(), obj);

    return json_to_string(node, FALSE);
}

/* Every query-* command (without arguments) and a few that must fail. */
static void check_qmp(QTestState *qts, const LeakCheck *c)
{
    static const char *const failing[] = {
        "{\"execute\": \"qom-list\", \"arguments\": {\"path\": \"/objects\"}}",
        "{\"execute\": \"qom-get\", \"arguments\": {\"path\": \"/objects/sec0\", "
        "\"property\": \"data\"}}",
        "{\"execute\": \"query-objects\"}",
        "{\"execute\": \"query-command-line-options\"}",
        "{\"execute\": \"object-add\", \"arguments\": {\"qom-type\": \"secret\", "
        "\"id\": \"sec0\", \"data\": \"x\"}}",
        "{\"execute\": \"query-status\", \"arguments\": {\"id\": \"sec0\"}}",
    };
    JsonObject *rsp = qtest_qmp(qts, "{\"execute\": \"query-commands\"}");
    JsonArray *cmds = json_object_get_array_member(rsp, "return");
    guint ran = 0;

    g_assert_nonnull(cmds);
    for (guint i = 0; i < json_array_get_length(cmds); i++) {
        JsonObject *cmd = json_array_get_object_element(cmds, i);
        const char *name = json_object_get_string_member(cmd, "name");
        g_autofree char *text = NULL;
        g_autofree char *where = NULL;
        JsonObject *r;

        if (!g_str_has_prefix(name, "query-")) {
            continue;
        }
        r = qtest_qmp(qts, "{\"execute\": \"%s\"}", name);
        text = json_text(r);
        where = g_strdup_printf("the QMP reply to %s", name);
        assert_absent(c, where, text);
        json_object_unref(r);
        ran++;
    }
    g_assert_cmpuint(ran, >, 3);
    json_object_unref(rsp);
    for (size_t i = 0; i < G_N_ELEMENTS(failing); i++) {
        JsonObject *r = qtest_qmp(qts, "%s", failing[i]);
        g_autofree char *text = json_text(r);

        assert_absent(c, "a QMP error reply", text);
        json_object_unref(r);
    }
}

/* help, info, every info subcommand, and errors. */
static void check_hmp(QTestState *qts, const LeakCheck *c)
{
    g_autofree char *help = qtest_hmp(qts, "help");
    g_autofree char *info = qtest_hmp(qts, "info");
    g_auto(GStrv) lines = g_strsplit(info, "\n", -1);
    guint ran = 0;

    assert_absent(c, "HMP help", help);
    assert_absent(c, "HMP info", info);
    for (char **l = lines; *l; l++) {
        g_auto(GStrv) words = g_strsplit(g_strstrip(*l), " ", 3);
        g_autofree char *out = NULL;
        char *bar;

        if (!words[0] || strcmp(words[0], "info") != 0 || !words[1]) {
            continue;
        }
        if ((bar = strchr(words[1], '|'))) {
            *bar = '\0';
        }
        out = qtest_hmp(qts, "info %s", words[1]);
        assert_absent(c, "HMP info output", out);
        ran++;
    }
    g_assert_cmpuint(ran, >, 1);
    for (const char *const *l =
             (const char *const[]){"info sec0", "object_add secret,id=sec9", "help info",
                                   "nosuch sec0", NULL};
         *l; l++) {
        g_autofree char *out = qtest_hmp(qts, "%s", *l);
        assert_absent(c, "HMP error output", out);
    }
}

static char *proc_file(pid_t pid, const char *name, size_t *len)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/%s", (int)pid, name);
    g_autoptr(GError) err = NULL;
    char *text = NULL;
    gsize n = 0;

    if (!g_file_get_contents(path, &text, &n, &err)) {
        g_error("cannot read %s: %s", path, err->message);
    }
    if (len) {
        *len = n;
    }
    return text;
}

typedef struct Mapping {
    guint64 start, end;
    bool readable;
    bool special;  /* [vvar], [vsyscall]: not readable through /proc/PID/mem */
    bool dontdump; /* VmFlags "dd": tpmvm's secure_alloc() mappings */
    bool locked;   /* VmFlags "lo" */
} Mapping;

static GArray *read_mappings(pid_t pid)
{
    g_autofree char *smaps = proc_file(pid, "smaps", NULL);
    g_auto(GStrv) lines = g_strsplit(smaps, "\n", -1);
    GArray *maps = g_array_new(FALSE, TRUE, sizeof(Mapping));

    for (char **l = lines; *l; l++) {
        Mapping m = {0};
        char perms[8] = "";

        if (sscanf(*l, "%" G_GINT64_MODIFIER "x-%" G_GINT64_MODIFIER "x %7s", &m.start,
                   &m.end, perms) == 3 &&
            strchr(*l, '-') < strchr(*l, ' ')) {
            m.readable = perms[0] == 'r';
            m.special = strstr(*l, "[vvar") || strstr(*l, "[vsyscall]");
            g_array_append_val(maps, m);
        } else if (g_str_has_prefix(*l, "VmFlags:") && maps->len) {
            Mapping *last = &g_array_index(maps, Mapping, maps->len - 1);
            last->dontdump = strstr(*l, " dd") != NULL;
            last->locked = strstr(*l, " lo") != NULL;
        }
    }
    return maps;
}

/*
 * Every copy of `needle` in the process's memory lies in a secure mapping
 * (MADV_DONTDUMP); returns how many copies there are.
 */
static guint scan_memory(pid_t pid, const char *needle, bool *all_locked)
{
    g_autoptr(GArray) maps = read_mappings(pid);
    g_autofree char *path = g_strdup_printf("/proc/%d/mem", (int)pid);
    size_t nlen = strlen(needle);
    const size_t chunk = 1 << 20;
    g_autofree char *buf = g_malloc(chunk + nlen);
    guint hits = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    g_assert_cmpint(fd, >=, 0);
    *all_locked = true;
    for (guint i = 0; i < maps->len; i++) {
        const Mapping *m = &g_array_index(maps, Mapping, i);

        if (!m->readable || m->special || m->end - m->start > SCAN_MAX_MAPPING) {
            continue;
        }
        for (guint64 off = m->start; off < m->end; off += chunk) {
            size_t want = MIN(chunk + nlen - 1, m->end - off);
            ssize_t n = pread(fd, buf, want, (off_t)off);
            const char *p = buf;

            if (n <= 0) {
                break; /* a guard page or an unreadable device mapping */
            }
            while ((p = memmem(p, (size_t)n - (p - buf), needle, nlen))) {
                /* count a copy once, in the chunk where it starts */
                if ((size_t)(p - buf) < chunk) {
                    if (!m->dontdump) {
                        g_error(
                            "the secret lies in ordinary memory at 0x%" G_GINT64_MODIFIER
                            "x (a mapping without MADV_DONTDUMP)",
                            off + (guint64)(p - buf));
                    }
                    *all_locked &= m->locked;
                    hits++;
                }
                p++;
            }
        }
    }
    close(fd);
    return hits;
}

static guint64 status_kb(pid_t pid, const char *field)
{
    g_autofree char *status = proc_file(pid, "status", NULL);
    const char *p = strstr(status, field);

    g_assert_nonnull(p);
    return g_ascii_strtoull(p + strlen(field), NULL, 10);
}

typedef enum {
    SECRET_DATA,        /* -object secret,data=MARKER */
    SECRET_FILE,        /* -object secret,file=F (F holds MARKER) */
    SECRET_FILE_BASE64, /* -object secret,file=F,format=base64 (F holds base64) */
    SECRET_LUKS_DRIVE,  /* SECRET_FILE, and a LUKS qcow2 drive it unlocks */
} SecretKind;

/* Run a program; true if it exited with status 0. */
static bool run_quietly(const char *const *argv, char **err_text)
{
    g_autoptr(GError) err = NULL;
    int status = -1;

    return g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL,
                        NULL, err_text, &status, &err) &&
           g_spawn_check_wait_status(status, NULL);
}

/*
 * A LUKS qcow2 image whose passphrase is the contents of pass_file, made by
 * qemu-img (false if it is not installed). qemu-img's PBKDF2 calibration
 * often fails on a loaded machine ("Unable to get accurate CPU usage": a
 * first run too short for the thread CPU clock), so it gets ten tries, then
 * the build's tpmvm-img (slower: it calibrates for over a second) makes it.
 */
static bool make_luks_image(const char *image, const char *pass_file)
{
    g_autofree char *qemu_img = g_find_program_in_path("qemu-img");
    g_autofree char *tpmvm_img =
        g_build_filename(g_getenv("TPMVM_BUILD_DIR"), "tools", "tpmvm-img", NULL);
    g_autofree char *obj = g_strdup_printf("secret,id=s0,file=%s", pass_file);
    const char *argv[] = {
        qemu_img,
        "create",
        "-q",
        "-f",
        "qcow2",
        "--object",
        obj,
        "-o",
        "encrypt.format=luks,encrypt.key-secret=s0,encrypt.iter-time=10",
        image,
        "1M",
        NULL};
    g_autofree char *err_text = NULL;

    if (!qemu_img) {
        return false;
    }
    for (int attempt = 0; attempt < 10; attempt++) {
        g_clear_pointer(&err_text, g_free);
        if (run_quietly(argv, &err_text)) {
            return true;
        }
    }
    argv[0] = tpmvm_img;
    g_clear_pointer(&err_text, g_free);
    if (!run_quietly(argv, &err_text)) {
        g_error("neither qemu-img nor tpmvm-img could create %s: %s", image, err_text);
    }
    return true;
}

/*
 * One LUKS image for the whole program (qemu-img's calibration costs seconds
 * on a busy machine): its passphrase is a marker, kept in a file. NULL when
 * qemu-img is not installed.
 */
typedef struct LuksImage {
    char *dir, *pass_file, *image, *passphrase;
} LuksImage;

static LuksImage *luks_image;

static const LuksImage *luks_image_get(void)
{
    static bool tried;
    g_autoptr(GError) err = NULL;
    LuksImage *li;

    if (tried) {
        return luks_image;
    }
    tried = true;
    li = g_new0(LuksImage, 1);
    li->dir = g_dir_make_tmp("tpmvm-leak-img-XXXXXX", &err);
    g_assert_no_error(err);
    li->pass_file = g_build_filename(li->dir, "pass", NULL);
    li->image = g_build_filename(li->dir, "tpm.qcow2", NULL);
    li->passphrase = new_marker();
    g_assert_true(g_file_set_contents(li->pass_file, li->passphrase, -1, NULL));
    if (make_luks_image(li->image, li->pass_file)) {
        luks_image = li;
    } else {
        unlink(li->pass_file);
        rmdir(li->dir);
    }
    return luks_image;
}

static void luks_image_remove(void)
{
    if (luks_image) {
        unlink(luks_image->image);
        unlink(luks_image->pass_file);
        rmdir(luks_image->dir);
    }
}

static void run_leak_check(SecretKind kind)
{
    const LuksImage *li = kind == SECRET_LUKS_DRIVE ? luks_image_get() : NULL;
    g_autofree char *marker = li ? g_strdup(li->passphrase) : new_marker();
    g_autoptr(GError) err = NULL;
    g_autofree char *dir = g_dir_make_tmp("tpmvm-leak-XXXXXX", &err);
    g_autofree char *secret_file = g_build_filename(dir, "secret", NULL);
    g_autofree char *trace_file = g_build_filename(dir, "trace.log", NULL);
    g_autofree char *drive = g_strdup("");
    g_autofree char *b64 = g_base64_encode((const guchar *)marker, strlen(marker));
    g_autofree char *object = NULL;
    g_autofree char *stderr_text = NULL;
    g_autofree char *trace_text = NULL;
    g_autofree char *cmdline = NULL;
    g_autofree char *environ_text = NULL;
    g_autoptr(GPtrArray) also = g_ptr_array_new();
    LeakCheck c = {marker, also};
    size_t cmdline_len, environ_len;
    QTestState *qts;
    bool locked = true;
    pid_t pid;

    g_assert_no_error(err);
    if (kind == SECRET_LUKS_DRIVE && !li) {
        g_test_skip("qemu-img is not installed");
        rmdir(dir);
        return;
    }
    switch (kind) {
    case SECRET_DATA:
        object = g_strdup_printf("secret,id=sec0,data=%s", marker);
        break;
    case SECRET_FILE:
    case SECRET_LUKS_DRIVE:
        g_assert_true(g_file_set_contents(secret_file, marker, -1, NULL));
        object = g_strdup_printf("secret,id=sec0,file=%s", secret_file);
        if (kind == SECRET_FILE) {
            break;
        }
        g_free(drive);
        drive = g_strdup_printf(
            "-drive if=none,id=d0,file=%s,format=qcow2,encrypt.key-secret=sec0",
            li->image);
        break;
    case SECRET_FILE_BASE64:
        g_assert_true(g_file_set_contents(secret_file, b64, -1, NULL));
        object = g_strdup_printf("secret,id=sec0,file=%s,format=base64", secret_file);
        g_ptr_array_add(also, b64);
        break;
    }
    qts = qtest_initf("-machine pc -m 16 -object %s -object secret,id=sec1,data=x2 %s "
                      "-d trace:* -D %s",
                      object, drive, trace_file);
    pid = qtest_pid(qts);

    if (kind == SECRET_LUKS_DRIVE) {
        /* a snapshot writes the encrypted drive: its traces and messages too */
        g_autofree char *saved = qtest_hmp(qts, "savevm leak1");
        g_autofree char *list = qtest_hmp(qts, "info snapshots");

        assert_absent(&c, "the savevm output", saved);
        g_assert_nonnull(strstr(list, "leak1"));
    }
    check_qmp(qts, &c);
    check_hmp(qts, &c);
    g_free(qtest_raw(qts, "readl 0xfed40000"));

    cmdline = proc_file(pid, "cmdline", &cmdline_len);
    environ_text = proc_file(pid, "environ", &environ_len);
    assert_absent_len(&c, "/proc/PID/environ", environ_text, environ_len);
    stderr_text = qtest_get_stderr(qts);
    if (kind == SECRET_DATA) {
        /* visible to every user: the reason for the warning */
        g_assert_true(contains(cmdline, cmdline_len, marker));
        g_assert_nonnull(strstr(stderr_text,
                                "-object secret,id=sec0: data= makes the secret "
                                "visible in 'ps'"));
    } else {
        assert_absent_len(&c, "/proc/PID/cmdline", cmdline, cmdline_len);
        g_assert_null(strstr(stderr_text, "secret,id=sec0: data="));
        /* the value exists once, in the secret's own locked, undumped mapping */
        g_assert_cmpuint(scan_memory(pid, marker, &locked), ==, 1);
        if (kind == SECRET_LUKS_DRIVE) {
            g_autofree char *so_far = NULL;

            /* the drive really was opened (unlocked) with it */
            g_assert_true(g_file_get_contents(trace_file, &so_far, NULL, NULL));
            g_assert_nonnull(strstr(so_far, "bdrv_open"));
        }
        if (kind == SECRET_FILE_BASE64) {
            g_assert_cmpuint(scan_memory(pid, b64, &locked), ==, 0);
        }
        if (LOCKING_CHECKABLE && !strstr(stderr_text, "cannot lock key memory")) {
            g_assert_true(locked);
            g_assert_cmpuint(status_kb(pid, "VmLck:"), >, 0);
        }
    }

    qtest_qmp_assert_success(qts, "{\"execute\": \"quit\"}");
    g_assert_cmpint(qtest_wait_exit(qts, 10000), ==, 0);
    g_free(stderr_text);
    stderr_text = qtest_get_stderr(qts);
    assert_absent(&c, "stderr", stderr_text);
    g_assert_true(g_file_get_contents(trace_file, &trace_text, NULL, NULL));
    /* the trace log is really on: it saw the QMP commands and HMP lines */
    g_assert_nonnull(strstr(trace_text, "qmp_command"));
    g_assert_nonnull(strstr(trace_text, "hmp_command"));
    assert_absent(&c, "the trace log", trace_text);
    qtest_quit(qts);
    unlink(secret_file);
    unlink(trace_file);
    rmdir(dir);
}

static void test_file_secret(void)
{
    run_leak_check(SECRET_FILE);
}

static void test_base64_file_secret(void)
{
    run_leak_check(SECRET_FILE_BASE64);
}

static void test_data_secret(void)
{
    run_leak_check(SECRET_DATA);
}

static void test_luks_drive_secret(void)
{
    run_leak_check(SECRET_LUKS_DRIVE);
}

/* The wrong passphrase for a LUKS drive: refused, and the error names no value. */
static void test_wrong_passphrase(void)
{
    const LuksImage *li = luks_image_get();
    g_autofree char *marker = new_marker();
    g_autoptr(GError) gerr = NULL;
    g_autofree char *dir = g_dir_make_tmp("tpmvm-leak-XXXXXX", &gerr);
    g_autofree char *wrong = g_build_filename(dir, "wrong", NULL);
    g_autofree char *args = NULL;
    g_autofree char *out = NULL;
    g_autofree char *err = NULL;
    LeakCheck c = {marker, NULL};

    g_assert_no_error(gerr);
    if (!li) {
        g_test_skip("qemu-img is not installed");
        rmdir(dir);
        return;
    }
    g_assert_true(g_file_set_contents(wrong, marker, -1, NULL));
    args = g_strdup_printf("-machine none -accel qtest -object secret,id=sec0,file=%s "
                           "-drive if=none,id=d0,file=%s,format=qcow2,"
                           "encrypt.key-secret=sec0 -d trace:*",
                           wrong, li->image);
    g_assert_cmpint(qtest_run(args, &out, &err), ==, 1);
    g_assert_nonnull(strstr(err, "Invalid password"));
    assert_absent(&c, "the wrong-passphrase error", err);
    assert_absent(&c, "the wrong-passphrase error", out);
    /* nor the right one, which was never given */
    c.marker = li->passphrase;
    assert_absent(&c, "the wrong-passphrase error", err);
    unlink(wrong);
    rmdir(dir);
}

/* A refused command line names the secret's id, never its value. */
static void test_command_line_errors(void)
{
    static const char *const cases[] = {
        "-object secret,id=sec0,data=%s,bogus=1",
        "-object secret,id=sec0,data=%s,format=base64",
        "-object secret,id=sec0,data=%s,format=hex",
        "-object secret,id=0sec,data=%s",
        "-object secret,data=%s",
        "-object secret,id=sec0,data=%s,file=/nonexistent",
        "-object secret,id=sec0,data=%s -object secret,id=sec0,data=%s",
        "-object secret,id=sec0,data=%s,,bogus=1,x=y",
        "-object secret,id=sec0,data=%s,id=sec1",
        "-object nosuch,id=sec0,data=%s",
        "-object secret,id=sec0,data=%s -machine nosuch",
        "-object secret,id=sec0,data=%s -object secret,id=sec1,file=/nonexistent",
    };

    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *marker = new_marker();
        g_autofree char *args = NULL;
        g_autofree char *out = NULL;
        g_autofree char *err = NULL;
        LeakCheck c = {marker, NULL};
        g_autofree char *where = NULL;
        int status;

        args = g_strdup_printf(cases[i], marker, marker);
        status = qtest_run(args, &out, &err);
        where = g_strdup_printf("the output of '%s'", cases[i]);
        g_assert_cmpint(status, ==, 1);
        g_assert_cmpstr(err, !=, "");
        assert_absent(&c, where, err);
        assert_absent(&c, where, out);
    }
}

int main(int argc, char **argv)
{
    int ret;

    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/secret/leak/file-secret-stays-in-locked-memory-only",
                    test_file_secret);
    g_test_add_func("/secret/leak/base64-file-secret-stays-in-locked-memory-only",
                    test_base64_file_secret);
    g_test_add_func("/secret/leak/data-secret-warns-and-stays-out-of-outputs",
                    test_data_secret);
    g_test_add_func("/secret/leak/luks-drive-passphrase-stays-in-locked-memory-only",
                    test_luks_drive_secret);
    g_test_add_func("/secret/leak/command-line-errors-name-the-id-not-the-value",
                    test_command_line_errors);
    g_test_add_func("/secret/leak/wrong-passphrase-error-names-no-value",
                    test_wrong_passphrase);
    ret = g_test_run();
    luks_image_remove();
    return ret;
}
