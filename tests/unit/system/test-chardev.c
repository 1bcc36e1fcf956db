/*
 * Chardevs: unix socket server (one client at a time, the next one accepted
 * after it leaves), client mode, tcp on loopback, file, null, legacy specs,
 * writes from other threads, a peer that stops reading, and the errors users
 * see.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "system/chardev.h"
#include "system/main-loop.h"

typedef struct Frontend {
    GString *in;
    int opened, closed;
} Frontend;

static void fe_read(void *opaque, const uint8_t *buf, size_t len)
{
    g_assert_true(bql_locked());
    g_string_append_len(((Frontend *)opaque)->in, (const char *)buf, (gssize)len);
}

static void fe_event(void *opaque, ChardevEvent ev)
{
    Frontend *fe = opaque;

    if (ev == CHARDEV_EVENT_OPENED) {
        fe->opened++;
    } else {
        fe->closed++;
    }
}

/* Iterate the main loop until cond() or 10 s. */
#define WAIT_FOR(cond)                                                                   \
    do {                                                                                 \
        gint64 deadline_ = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;                 \
        while (!(cond)) {                                                                \
            g_assert_cmpint(g_get_monotonic_time(), <, deadline_);                       \
            main_loop_iterate(false);                                                    \
            g_usleep(1000);                                                              \
        }                                                                                \
    } while (0)

static int unix_connect(const char *path)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);

    strcpy(addr.sun_path, path);
    g_assert_cmpint(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), ==, 0);
    return fd;
}

static char *read_n(int fd, size_t n)
{
    char *buf = g_malloc0(n + 1);
    size_t got = 0;

    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        g_assert_cmpint(r, >, 0);
        got += (size_t)r;
    }
    return buf;
}

/* read_n while the main loop runs (it sends queued output). */
static char *read_n_iterating(int fd, size_t n)
{
    char *buf = g_malloc0(n + 1);
    size_t got = 0;

    g_assert_cmpint(fcntl(fd, F_SETFL, O_NONBLOCK), ==, 0);
    WAIT_FOR(({
        ssize_t r = read(fd, buf + got, n - got);
        if (r > 0) {
            got += (size_t)r;
        }
        got == n;
    }));
    g_assert_cmpint(fcntl(fd, F_SETFL, 0), ==, 0);
    return buf;
}

static char *tmpdir;

static char *tmp_path(const char *name)
{
    return g_build_filename(tmpdir, name, NULL);
}

static void test_server_serves_one_client_after_another(void)
{
    g_autofree char *path = tmp_path("srv.sock");
    g_autofree char *opts =
        g_strdup_printf("socket,id=srv,path=%s,server=on,wait=off", path);
    g_autoptr(GError) err = NULL;
    Frontend fe = {g_string_new(NULL), 0, 0};
    Chardev *chr = chardev_new_from_string(opts, &err);
    int a, b;

    g_assert_no_error(err);
    g_assert_true(chardev_find("srv") == chr);
    g_assert_cmpstr(chardev_id(chr), ==, "srv");
    g_assert_cmpstr(chardev_label(chr), ==, g_strdup_printf("unix:%s,server=on", path));
    g_assert_true(chardev_set_handlers(chr, fe_read, fe_event, &fe, &err));
    g_assert_false(chardev_is_connected(chr));
    /* nobody connected: output is dropped, not queued */
    chardev_write(chr, "lost", 4);

    a = unix_connect(path);
    WAIT_FOR(fe.opened == 1);
    g_assert_true(chardev_is_connected(chr));
    g_assert_cmpint(write(a, "hello", 5), ==, 5);
    WAIT_FOR(fe.in->len == 5);
    g_assert_cmpstr(fe.in->str, ==, "hello");
    chardev_printf(chr, "reply %d\n", 42);
    {
        g_autofree char *got = read_n(a, 9);
        g_assert_cmpstr(got, ==, "reply 42\n");
    }
    /* a second client waits in the backlog while the first is served */
    b = unix_connect(path);
    g_assert_cmpint(write(b, "second", 6), ==, 6);
    for (int i = 0; i < 20; i++) {
        main_loop_iterate(false);
        g_usleep(1000);
    }
    g_assert_cmpstr(fe.in->str, ==, "hello");
    close(a);
    WAIT_FOR(fe.closed == 1 && fe.opened == 2 && fe.in->len == 11);
    g_assert_cmpstr(fe.in->str, ==, "hellosecond");
    /* the server side drops a client on request */
    chardev_disconnect(chr);
    g_assert_cmpint(fe.closed, ==, 2);
    {
        char c;
        g_assert_cmpint(read(b, &c, 1), ==, 0);
    }
    close(b);
    g_string_free(fe.in, TRUE);
}

static void test_client_connects_and_reports_open_late(void)
{
    g_autofree char *path = tmp_path("cli.sock");
    g_autofree char *opts = g_strdup_printf("socket,id=cli,path=%s", path);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    g_autoptr(GError) err = NULL;
    Frontend fe = {g_string_new(NULL), 0, 0};
    int lfd = socket(AF_UNIX, SOCK_STREAM, 0), conn;
    Chardev *chr;

    strcpy(addr.sun_path, path);
    g_assert_cmpint(bind(lfd, (struct sockaddr *)&addr, sizeof(addr)), ==, 0);
    g_assert_cmpint(listen(lfd, 1), ==, 0);
    chr = chardev_new_from_string(opts, &err);
    g_assert_no_error(err);
    conn = accept(lfd, NULL, NULL);
    g_assert_cmpint(conn, >=, 0);
    /* connected before the frontend came: it still hears OPENED */
    g_assert_true(chardev_set_handlers(chr, fe_read, fe_event, &fe, &err));
    g_assert_cmpint(fe.opened, ==, 1);
    g_assert_cmpint(write(conn, "ping", 4), ==, 4);
    WAIT_FOR(fe.in->len == 4);
    /* a second frontend is refused */
    g_assert_false(chardev_set_handlers(chr, fe_read, fe_event, &fe, &err));
    g_assert_cmpstr(err->message, ==,
                    "chardev 'cli' is already in use by another frontend");
    close(conn);
    WAIT_FOR(fe.closed == 1);
    g_assert_false(chardev_is_connected(chr));
    close(lfd);
    g_string_free(fe.in, TRUE);
}

static void test_client_reconnects_after_peer_leaves(void)
{
    g_autofree char *path = tmp_path("rec.sock");
    g_autofree char *opts = g_strdup_printf("socket,id=rec,path=%s,reconnect=1", path);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    Frontend fe = {g_string_new(NULL), 0, 0};
    int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0), conn = -1;
    Chardev *chr;

    strcpy(addr.sun_path, path);
    g_assert_cmpint(bind(lfd, (struct sockaddr *)&addr, sizeof(addr)), ==, 0);
    g_assert_cmpint(listen(lfd, 1), ==, 0);
    chr = chardev_new_from_string(opts, NULL);
    g_assert_nonnull(chr);
    g_assert_true(chardev_set_handlers(chr, fe_read, fe_event, &fe, NULL));
    WAIT_FOR((conn = accept(lfd, NULL, NULL)) >= 0);
    g_assert_cmpint(fe.opened, ==, 1);
    close(conn);
    WAIT_FOR(fe.closed == 1);
    /* about a second later it is back */
    WAIT_FOR((conn = accept(lfd, NULL, NULL)) >= 0);
    WAIT_FOR(fe.opened == 2);
    g_assert_cmpint(write(conn, "again", 5), ==, 5);
    WAIT_FOR(fe.in->len == 5);
    chardev_set_handlers(chr, NULL, NULL, NULL, NULL);
    close(conn);
    close(lfd);
    g_string_free(fe.in, TRUE);
}

static gpointer writer_thread(gpointer data)
{
    for (int i = 0; i < 1000; i++) {
        chardev_write(data, "0123456789", 10);
    }
    return NULL;
}

static void test_writes_from_threads_are_not_interleaved(void)
{
    g_autofree char *path = tmp_path("thr.sock");
    g_autofree char *opts =
        g_strdup_printf("socket,id=thr,path=%s,server=on,wait=off", path);
    Frontend fe = {g_string_new(NULL), 0, 0};
    Chardev *chr = chardev_new_from_string(opts, NULL);
    GThread *t[3];
    int fd;
    g_autofree char *all = NULL;

    g_assert_nonnull(chr);
    g_assert_true(chardev_set_handlers(chr, fe_read, fe_event, &fe, NULL));
    fd = unix_connect(path);
    WAIT_FOR(fe.opened == 1);
    for (int i = 0; i < 3; i++) {
        t[i] = g_thread_new("writer", writer_thread, chr);
    }
    /* What the socket buffer does not take is sent by the main loop. */
    all = read_n_iterating(fd, 30000);
    for (int i = 0; i < 3; i++) {
        g_thread_join(t[i]);
    }
    for (size_t i = 0; i < 30000; i += 10) {
        g_assert_cmpint(memcmp(all + i, "0123456789", 10), ==, 0);
    }
    close(fd);
    WAIT_FOR(fe.closed == 1);
    g_string_free(fe.in, TRUE);
}

#define SLOW_CHUNK 4096
#define SLOW_CHUNKS 1024 /* 4 MiB: many times what a socket buffer holds */

static void slow_fill(uint8_t *buf, uint32_t i)
{
    for (uint32_t j = 0; j < SLOW_CHUNK; j += 4) {
        uint32_t v = i * SLOW_CHUNK + j;
        memcpy(buf + j, &v, 4);
    }
}

/*
 * A peer that stops reading: writes still return at once (the main loop
 * sends the rest when the peer reads again, in order), and a peer that
 * leaves more than the limit unread is disconnected.
 */
static void test_slow_peer_does_not_block_writers(void)
{
    g_autofree char *path = tmp_path("slow.sock");
    g_autofree char *opts =
        g_strdup_printf("socket,id=slow,path=%s,server=on,wait=off", path);
    Frontend fe = {g_string_new(NULL), 0, 0};
    Chardev *chr = chardev_new_from_string(opts, NULL);
    g_autofree uint8_t *got = NULL;
    uint8_t buf[SLOW_CHUNK], want[SLOW_CHUNK];
    gint64 t0;
    int fd;

    g_assert_nonnull(chr);
    g_assert_true(chardev_set_handlers(chr, fe_read, fe_event, &fe, NULL));
    fd = unix_connect(path);
    WAIT_FOR(fe.opened == 1);
    t0 = g_get_monotonic_time();
    for (uint32_t i = 0; i < SLOW_CHUNKS; i++) {
        slow_fill(buf, i);
        chardev_write(chr, buf, SLOW_CHUNK);
    }
    g_assert_cmpint(g_get_monotonic_time() - t0, <, 2 * G_USEC_PER_SEC);
    g_assert_true(chardev_is_connected(chr));

    got = (uint8_t *)read_n_iterating(fd, SLOW_CHUNK * SLOW_CHUNKS);
    for (uint32_t i = 0; i < SLOW_CHUNKS; i++) {
        slow_fill(want, i);
        g_assert_cmpmem(got + i * SLOW_CHUNK, SLOW_CHUNK, want, SLOW_CHUNK);
    }

    /* Now it never reads again: past the limit it is dropped. */
    for (uint32_t i = 0; i < 4 * SLOW_CHUNKS && fe.closed == 0; i++) {
        chardev_write(chr, buf, SLOW_CHUNK);
        main_loop_iterate(false);
    }
    WAIT_FOR(fe.closed == 1);
    g_assert_false(chardev_is_connected(chr));
    close(fd);
    g_string_free(fe.in, TRUE);
}

static void test_tcp_client_on_loopback(void)
{
    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(addr);
    int lfd = socket(AF_INET, SOCK_STREAM, 0), conn;
    g_autofree char *spec = NULL;
    g_autoptr(GError) err = NULL;
    Chardev *chr;

    g_assert_cmpint(bind(lfd, (struct sockaddr *)&addr, sizeof(addr)), ==, 0);
    g_assert_cmpint(listen(lfd, 1), ==, 0);
    g_assert_cmpint(getsockname(lfd, (struct sockaddr *)&addr, &alen), ==, 0);
    spec = g_strdup_printf("tcp:127.0.0.1:%u", ntohs(addr.sin_port));
    chr = chardev_new_from_legacy(spec, "tcp0", &err);
    g_assert_no_error(err);
    conn = accept(lfd, NULL, NULL);
    chardev_write(chr, "tcp!", 4);
    {
        g_autofree char *got = read_n(conn, 4);
        g_assert_cmpstr(got, ==, "tcp!");
    }
    close(conn);
    close(lfd);
}

static void test_legacy_specs(void)
{
    g_autofree char *path = tmp_path("leg.sock");
    g_autofree char *file = tmp_path("out,with,commas.txt");
    g_autofree char *spec = g_strdup_printf("unix:%s,server,nowait", path);
    g_autofree char *fspec = g_strdup_printf("file:%s", file);
    g_autoptr(GError) err = NULL;
    g_autofree char *contents = NULL;
    Chardev *chr, *f, *n;

    chr = chardev_new_from_legacy(spec, "leg", &err);
    g_assert_no_error(err);
    g_assert_true(g_file_test(path, G_FILE_TEST_EXISTS));
    g_assert_true(chardev_new_from_legacy("chardev:leg", "ignored", &err) == chr);
    f = chardev_new_from_legacy(fspec, "file0", &err);
    g_assert_no_error(err);
    chardev_write(f, "to file\n", 8);
    g_assert_true(g_file_get_contents(file, &contents, NULL, NULL));
    g_assert_cmpstr(contents, ==, "to file\n");
    n = chardev_new_from_legacy("null", "null0", &err);
    g_assert_no_error(err);
    g_assert_true(chardev_is_connected(n));
    chardev_write(n, "gone", 4);
    g_assert_null(chardev_new_from_legacy("pty", "p", &err));
    g_assert_true(
        g_str_has_prefix(err->message, "'pty' is not a valid character device"));
    g_clear_error(&err);
    g_assert_null(chardev_new_from_legacy("chardev:nope", "x", &err));
    g_assert_cmpstr(err->message, ==,
                    "chardev 'nope' not found (define it with -chardev ...,id=nope)");
    g_clear_error(&err);
    g_assert_null(chardev_new_from_legacy("tcp:localhost", "x", &err));
    g_clear_error(&err);
    g_assert_null(chardev_new_from_legacy("null", "null0", &err));
    g_assert_cmpstr(err->message, ==, "Duplicate chardev ID 'null0'; pick another id=");
}

static void test_file_append_and_errors(void)
{
    g_autofree char *file = tmp_path("append.txt");
    g_autofree char *opts = g_strdup_printf("file,id=app,path=%s,append=on", file);
    g_autofree char *contents = NULL;
    g_autoptr(GError) err = NULL;
    g_autofree char *longpath = NULL;
    Chardev *chr;

    g_assert_true(g_file_set_contents(file, "old\n", -1, NULL));
    chr = chardev_new_from_string(opts, &err);
    g_assert_no_error(err);
    chardev_write(chr, "new\n", 4);
    g_assert_true(g_file_get_contents(file, &contents, NULL, NULL));
    g_assert_cmpstr(contents, ==, "old\nnew\n");
    g_assert_null(chardev_new_from_string("file,id=nofile", &err));
    g_assert_cmpstr(err->message, ==,
                    "file chardev 'nofile': Parameter 'path' is missing");
    g_clear_error(&err);
    longpath = g_strnfill(200, 'x');
    g_free(opts);
    opts = g_strdup_printf("socket,id=long,path=/tmp/%s,server=on,wait=off", longpath);
    g_assert_null(chardev_new_from_string(opts, &err));
    g_assert_true(g_str_has_suffix(err->message, "is too long (at most 107 bytes)"));
    g_clear_error(&err);
    g_assert_null(
        chardev_new_from_string("socket,id=r,path=/x,server=on,reconnect=1", &err));
    g_assert_cmpstr(err->message, ==,
                    "socket chardev 'r': reconnect= only applies to server=off");
    g_clear_error(&err);
    g_assert_null(chardev_new_from_string("socket,id=b,path=/x,server=maybe", &err));
    g_assert_cmpstr(err->message, ==,
                    "Parameter 'server' expects 'on' or 'off', not 'maybe'");
}

static void test_serial_hd_slots(void)
{
    Chardev *n = chardev_new_from_string("null,id=ser", NULL);

    g_assert_null(serial_hd(0));
    serial_hd_set(0, n);
    g_assert_true(serial_hd(0) == n);
    g_assert_null(serial_hd(-1));
    g_assert_null(serial_hd(SERIAL_HD_MAX));
    serial_hd_set(SERIAL_HD_MAX, n); /* ignored */
}

static void remove_tmpdir(void)
{
    GDir *d = g_dir_open(tmpdir, 0, NULL);
    const char *name;

    while (d && (name = g_dir_read_name(d))) {
        g_autofree char *p = g_build_filename(tmpdir, name, NULL);
        unlink(p);
    }
    if (d) {
        g_dir_close(d);
    }
    rmdir(tmpdir);
}

int main(int argc, char **argv)
{
    int ret;

    g_test_init(&argc, &argv, NULL);
    signal(SIGPIPE, SIG_IGN);
    main_loop_init();
    bql_lock();
    tmpdir = g_dir_make_tmp("tpmvm-chardev-XXXXXX", NULL);
    g_test_add_func("/chardev/socket/server-serves-one-client-after-another",
                    test_server_serves_one_client_after_another);
    g_test_add_func("/chardev/socket/client-hears-open-when-frontend-attaches-late",
                    test_client_connects_and_reports_open_late);
    g_test_add_func("/chardev/socket/client-reconnects-after-peer-leaves",
                    test_client_reconnects_after_peer_leaves);
    g_test_add_func("/chardev/socket/writes-from-threads-are-not-interleaved",
                    test_writes_from_threads_are_not_interleaved);
    g_test_add_func("/chardev/socket/slow-peer-does-not-block-writers",
                    test_slow_peer_does_not_block_writers);
    g_test_add_func("/chardev/socket/tcp-client-on-loopback",
                    test_tcp_client_on_loopback);
    g_test_add_func("/chardev/legacy/specs-create-the-right-backend", test_legacy_specs);
    g_test_add_func("/chardev/file/append-and-errors-name-the-option",
                    test_file_append_and_errors);
    g_test_add_func("/chardev/serial/slots", test_serial_hd_slots);
    ret = g_test_run();
    chardev_close_all();
    remove_tmpdir();
    return ret;
}
