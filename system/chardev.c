/*
 * Character devices: socket (unix/tcp, server or client), stdio, file, null.
 * See include/system/chardev.h.
 *
 * The chardev keeps no input buffer: bytes read from the peer (at most
 * CHARDEV_READ_CHUNK at a time) go straight to the frontend in the main loop,
 * and input is only watched while a frontend is attached, so unread data
 * stays in the kernel's socket buffer. Writes may come from any thread and
 * are serialised by a per-chardev lock.
 *
 * Output to a socket never waits for the peer: what its socket buffer does
 * not take is queued and sent from the main loop when the socket is
 * writable again, so a monitor client that stops reading stalls neither
 * the main loop nor a vCPU. A peer that leaves more than CHARDEV_OUT_MAX
 * bytes unread is disconnected. Files and stdio are written directly.
 */
#include "system/chardev.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include <glib-unix.h>
#include <glib/gprintf.h>

#include "system/main-loop.h"
#include "util/error.h"
#include "util/keyval.h"
#include "util/log.h"
#include "util/trace.h"

#define CHARDEV_READ_CHUNK 4096
/* A socket peer that leaves more than this unread is disconnected at the
 * next write (so the queue holds at most this plus one message). */
#define CHARDEV_OUT_MAX (8u << 20)
/* At close, queued output gets this long to reach a peer that reads. */
#define CHARDEV_CLOSE_DRAIN_MS 1000

typedef enum {
    CHARDEV_NULL,
    CHARDEV_STDIO,
    CHARDEV_FILE,
    CHARDEV_SOCKET,
} ChardevKind;

struct Chardev {
    char *id;
    char *label;
    ChardevKind kind;

    ChardevReadFn read;
    ChardevEventFn event;
    void *opaque;
    bool has_frontend;

    GMutex write_lock;  /* guards out_fd, outbuf and out_watch */
    int in_fd;          /* -1: no input */
    int out_fd;         /* -1: output dropped */
    GByteArray *outbuf; /* socket output the peer has not taken yet */
    guint out_watch;    /* main-loop watch sending outbuf */
    guint in_watch;
    bool connected;

    /* socket */
    bool server, wait, is_tcp;
    char *path, *host, *port;
    int listen_fd;
    guint listen_watch;
    unsigned reconnect_s;
    guint reconnect_timer;
};

static GPtrArray *chardevs;
static Chardev *serial_hds[SERIAL_HD_MAX];
/* the chardev that owns stdin/stdout, and the terminal settings to restore */
static Chardev *stdio_owner;
static struct termios stdio_saved_tty;
static bool stdio_tty_changed;

static void chardev_socket_close_conn(Chardev *chr);
static void chardev_stdio_restore(void);

const char *chardev_id(const Chardev *chr)
{
    return chr->id;
}

const char *chardev_label(const Chardev *chr)
{
    return chr->label;
}

Chardev *chardev_find(const char *id)
{
    for (guint i = 0; id && chardevs && i < chardevs->len; i++) {
        Chardev *c = g_ptr_array_index(chardevs, i);
        if (strcmp(c->id, id) == 0) {
            return c;
        }
    }
    return NULL;
}

Chardev *serial_hd(int i)
{
    return i >= 0 && i < SERIAL_HD_MAX ? serial_hds[i] : NULL;
}

void serial_hd_set(int i, Chardev *chr)
{
    if (i >= 0 && i < SERIAL_HD_MAX) {
        serial_hds[i] = chr;
    }
}

static void chardev_emit(Chardev *chr, ChardevEvent ev)
{
    trace_event("chardev_event", "%s %s", chr->id,
                ev == CHARDEV_EVENT_OPENED ? "opened" : "closed");
    if (chr->has_frontend && chr->event) {
        chr->event(chr->opaque, ev);
    }
}

/* ---- input ---- */

static gboolean chardev_in_ready(gint fd, GIOCondition cond, gpointer opaque)
{
    Chardev *chr = opaque;
    uint8_t buf[CHARDEV_READ_CHUNK];
    ssize_t n;

    do {
        n = read(fd, buf, sizeof(buf));
    } while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        return G_SOURCE_CONTINUE;
    }
    if (n <= 0) {
        chr->in_watch = 0;
        if (chr->kind == CHARDEV_SOCKET) {
            chardev_socket_close_conn(chr);
        }
        /* stdio: end of input; output keeps working */
        return G_SOURCE_REMOVE;
    }
    if (chr->read) {
        chr->read(chr->opaque, buf, (size_t)n);
    }
    return G_SOURCE_CONTINUE;
}

static void chardev_watch_input(Chardev *chr)
{
    if (chr->in_fd >= 0 && chr->has_frontend && chr->read && !chr->in_watch) {
        chr->in_watch = main_loop_add_fd(chr->in_fd, G_IO_IN | G_IO_HUP | G_IO_ERR,
                                         chardev_in_ready, chr);
    }
}

static void chardev_unwatch_input(Chardev *chr)
{
    if (chr->in_watch) {
        g_source_remove(chr->in_watch);
        chr->in_watch = 0;
    }
}

/* ---- output ---- */

/*
 * Write from outbuf while the fd takes it. Under write_lock. Returns false
 * on an error other than a full socket buffer.
 */
static bool chardev_out_flush_locked(Chardev *chr)
{
    while (chr->outbuf->len) {
        ssize_t n = write(chr->out_fd, chr->outbuf->data, chr->outbuf->len);

        if (n > 0) {
            g_byte_array_remove_range(chr->outbuf, 0, (guint)n);
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else {
            return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
        }
    }
    return true;
}

/* Stop output to the peer (under write_lock); a socket then sees EOF. */
static void chardev_out_stop_locked(Chardev *chr)
{
    g_byte_array_set_size(chr->outbuf, 0);
    if (chr->kind == CHARDEV_SOCKET && chr->out_fd >= 0) {
        shutdown(chr->out_fd, SHUT_RDWR);
    }
}

static gboolean chardev_out_ready(gint fd, GIOCondition cond, gpointer opaque)
{
    Chardev *chr = opaque;
    gboolean again = G_SOURCE_REMOVE;

    g_mutex_lock(&chr->write_lock);
    if (chr->out_fd == fd && !chardev_out_flush_locked(chr)) {
        chardev_out_stop_locked(chr);
    } else if (chr->out_fd == fd && chr->outbuf->len) {
        again = G_SOURCE_CONTINUE;
    }
    if (again == G_SOURCE_REMOVE) {
        chr->out_watch = 0;
    }
    g_mutex_unlock(&chr->write_lock);
    return again;
}

/* Drop queued output and its watch (main thread, under write_lock). */
static void chardev_out_reset_locked(Chardev *chr)
{
    if (chr->out_watch) {
        g_source_remove(chr->out_watch);
        chr->out_watch = 0;
    }
    g_byte_array_set_size(chr->outbuf, 0);
}

void chardev_write(Chardev *chr, const void *buf, size_t len)
{
    if (!chr) {
        return;
    }
    g_mutex_lock(&chr->write_lock);
    if (chr->out_fd < 0) {
        g_mutex_unlock(&chr->write_lock);
        return;
    }
    /*
     * A peer already that far behind is dropped. The check comes before
     * the append, so one message larger than the limit (a 16 MiB qtest
     * read) still goes out to a peer that reads.
     */
    if (chr->outbuf->len > CHARDEV_OUT_MAX) {
        warn_report("chardev '%s': peer left %u bytes of output unread; disconnecting it",
                    chr->id, chr->outbuf->len);
        chardev_out_stop_locked(chr);
        g_mutex_unlock(&chr->write_lock);
        return;
    }
    /* Behind queued output, or the peer is slow: queue (order is kept). */
    g_byte_array_append(chr->outbuf, buf, (guint)len);
    if (!chr->out_watch && !chardev_out_flush_locked(chr)) {
        chardev_out_stop_locked(chr);
    } else if (chr->outbuf->len && !chr->out_watch) {
        /* Any thread: attaching a source wakes the main loop up. */
        chr->out_watch = main_loop_add_fd(chr->out_fd, G_IO_OUT, chardev_out_ready, chr);
    }
    g_mutex_unlock(&chr->write_lock);
}

/* Give queued output a last chance to reach a peer that is still reading. */
static void chardev_out_drain(Chardev *chr, int timeout_ms)
{
    gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;

    g_mutex_lock(&chr->write_lock);
    while (chr->out_fd >= 0 && chr->outbuf->len && chardev_out_flush_locked(chr) &&
           chr->outbuf->len) {
        struct pollfd pfd = {.fd = chr->out_fd, .events = POLLOUT};
        gint64 left = deadline - g_get_monotonic_time();

        if (left <= 0 || poll(&pfd, 1, (int)MAX(1, left / 1000)) <= 0) {
            break;
        }
    }
    chardev_out_reset_locked(chr);
    g_mutex_unlock(&chr->write_lock);
}

void chardev_printf(Chardev *chr, const char *fmt, ...)
{
    va_list ap;
    g_autofree char *s = NULL;
    int n;

    va_start(ap, fmt);
    n = g_vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n > 0) {
        chardev_write(chr, s, (size_t)n);
    }
}

bool chardev_is_connected(const Chardev *chr)
{
    return chr && chr->connected;
}

/* ---- frontend ---- */

bool chardev_set_handlers(Chardev *chr, ChardevReadFn read, ChardevEventFn event,
                          void *opaque, GError **errp)
{
    if (chr->has_frontend && (read || event)) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "chardev '%s' is already in use by another frontend", chr->id);
        return false;
    }
    chardev_unwatch_input(chr);
    chr->read = read;
    chr->event = event;
    chr->opaque = opaque;
    chr->has_frontend = read || event;
    chardev_watch_input(chr);
    /* a peer that connected before the frontend came still gets its OPENED */
    if (chr->has_frontend && chr->connected) {
        chardev_emit(chr, CHARDEV_EVENT_OPENED);
    }
    return true;
}

/* ---- socket ---- */

static void chardev_socket_set_conn(Chardev *chr, int fd)
{
    g_unix_set_fd_nonblocking(fd, TRUE, NULL);
    if (chr->is_tcp) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    g_mutex_lock(&chr->write_lock);
    chr->in_fd = chr->out_fd = fd;
    g_mutex_unlock(&chr->write_lock);
    chr->connected = true;
    chardev_watch_input(chr);
    chardev_emit(chr, CHARDEV_EVENT_OPENED);
}

static gboolean chardev_socket_accept(gint fd, GIOCondition cond, gpointer opaque);
static gboolean chardev_socket_reconnect(gpointer opaque);

static void chardev_socket_listen_watch(Chardev *chr)
{
    if (chr->listen_fd >= 0 && !chr->listen_watch) {
        chr->listen_watch =
            main_loop_add_fd(chr->listen_fd, G_IO_IN, chardev_socket_accept, chr);
    }
}

static void chardev_socket_close_conn(Chardev *chr)
{
    int fd;

    if (!chr->connected) {
        return;
    }
    chardev_unwatch_input(chr);
    g_mutex_lock(&chr->write_lock);
    chardev_out_reset_locked(chr);
    fd = chr->in_fd;
    chr->in_fd = chr->out_fd = -1;
    g_mutex_unlock(&chr->write_lock);
    close(fd);
    chr->connected = false;
    chardev_emit(chr, CHARDEV_EVENT_CLOSED);
    if (chr->server) {
        chardev_socket_listen_watch(chr);
    } else if (chr->reconnect_s && !chr->reconnect_timer) {
        chr->reconnect_timer =
            g_timeout_add_seconds(chr->reconnect_s, chardev_socket_reconnect, chr);
    }
}

void chardev_disconnect(Chardev *chr)
{
    if (chr->kind == CHARDEV_SOCKET) {
        chardev_socket_close_conn(chr);
    }
}

static gboolean chardev_socket_accept(gint fd, GIOCondition cond, gpointer opaque)
{
    Chardev *chr = opaque;
    int conn = accept4(fd, NULL, NULL, SOCK_CLOEXEC);

    if (conn < 0) {
        return G_SOURCE_CONTINUE;
    }
    /* one client at a time: stop accepting until this one leaves */
    chr->listen_watch = 0;
    chardev_socket_set_conn(chr, conn);
    return G_SOURCE_REMOVE;
}

/* Resolve the socket address of chr into *addr. */
static bool chardev_socket_addr(Chardev *chr, struct sockaddr_storage *addr,
                                socklen_t *alen, int *family, GError **errp)
{
    if (!chr->is_tcp) {
        struct sockaddr_un *un = (struct sockaddr_un *)addr;
        if (strlen(chr->path) >= sizeof(un->sun_path)) {
            g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                        "UNIX socket path '%s' is too long (at most %zu bytes)",
                        chr->path, sizeof(un->sun_path) - 1);
            return false;
        }
        memset(un, 0, sizeof(*un));
        un->sun_family = AF_UNIX;
        strcpy(un->sun_path, chr->path);
        *alen = sizeof(*un);
        *family = AF_UNIX;
        return true;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                             .ai_flags = chr->server ? AI_PASSIVE : 0};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(chr->host[0] ? chr->host : NULL, chr->port, &hints, &res);
    if (rc != 0 || !res) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "address resolution failed for '%s:%s': %s", chr->host, chr->port,
                    gai_strerror(rc));
        return false;
    }
    memcpy(addr, res->ai_addr, res->ai_addrlen);
    *alen = res->ai_addrlen;
    *family = res->ai_family;
    freeaddrinfo(res);
    return true;
}

static int chardev_socket_connect(Chardev *chr, GError **errp)
{
    struct sockaddr_storage addr;
    socklen_t alen;
    int family, fd;

    if (!chardev_socket_addr(chr, &addr, &alen, &family, errp)) {
        return -1;
    }
    fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        error_set_errno(errp, errno, "Failed to create socket for '%s'", chr->label);
        return -1;
    }
    if (connect(fd, (struct sockaddr *)&addr, alen) < 0) {
        error_set_errno(errp, errno, "Failed to connect to '%s'", chr->label);
        close(fd);
        return -1;
    }
    return fd;
}

static gboolean chardev_socket_reconnect(gpointer opaque)
{
    Chardev *chr = opaque;
    int fd = chardev_socket_connect(chr, NULL);

    if (fd < 0) {
        return G_SOURCE_CONTINUE;
    }
    chr->reconnect_timer = 0;
    chardev_socket_set_conn(chr, fd);
    return G_SOURCE_REMOVE;
}

static bool chardev_socket_listen(Chardev *chr, GError **errp)
{
    struct sockaddr_storage addr;
    socklen_t alen;
    int family, one = 1;

    if (!chardev_socket_addr(chr, &addr, &alen, &family, errp)) {
        return false;
    }
    chr->listen_fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (chr->listen_fd < 0) {
        error_set_errno(errp, errno, "Failed to create socket for '%s'", chr->label);
        return false;
    }
    if (family == AF_UNIX) {
        unlink(chr->path); /* a stale socket from an earlier run */
    } else {
        setsockopt(chr->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    }
    if (bind(chr->listen_fd, (struct sockaddr *)&addr, alen) < 0 ||
        listen(chr->listen_fd, 1) < 0) {
        error_set_errno(errp, errno, "Failed to listen on '%s'", chr->label);
        close(chr->listen_fd);
        chr->listen_fd = -1;
        return false;
    }
    if (chr->wait) {
        int conn;
        info_report("waiting for connection on: %s", chr->label);
        do {
            conn = accept4(chr->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        } while (conn < 0 && errno == EINTR);
        if (conn < 0) {
            error_set_errno(errp, errno, "Failed to accept a connection on '%s'",
                            chr->label);
            return false;
        }
        chardev_socket_set_conn(chr, conn);
        return true;
    }
    chardev_socket_listen_watch(chr);
    return true;
}

static bool chardev_socket_open(Chardev *chr, KeyVal *kv, GError **errp)
{
    const char *path = keyval_get(kv, "path");
    const char *host = keyval_get(kv, "host");
    const char *port = keyval_get(kv, "port");
    uint64_t reconnect;

    if (!keyval_get_bool(kv, "server", false, &chr->server, errp) ||
        !keyval_get_bool(kv, "wait", chr->server, &chr->wait, errp) ||
        !keyval_get_uint(kv, "reconnect", 0, &reconnect, errp)) {
        return false;
    }
    if (path && (host || port)) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "socket chardev '%s': give either path= (unix) or host=/port= (tcp)",
                    chr->id);
        return false;
    }
    if (!path && !port) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "socket chardev '%s': Parameter 'path' (or 'port') is missing",
                    chr->id);
        return false;
    }
    if (reconnect > 3600) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "socket chardev '%s': reconnect=%" G_GUINT64_FORMAT
                    " is too large (at most 3600 seconds)",
                    chr->id, reconnect);
        return false;
    }
    if (reconnect && chr->server) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "socket chardev '%s': reconnect= only applies to server=off",
                    chr->id);
        return false;
    }
    chr->reconnect_s = (unsigned)reconnect;
    chr->is_tcp = path == NULL;
    chr->path = g_strdup(path);
    chr->host = g_strdup(host ? host : "");
    chr->port = g_strdup(port);
    chr->label = chr->is_tcp ? g_strdup_printf("tcp:%s:%s%s", chr->host, chr->port,
                                               chr->server ? ",server=on" : "")
                             : g_strdup_printf("unix:%s%s", chr->path,
                                               chr->server ? ",server=on" : "");
    if (chr->server) {
        return chardev_socket_listen(chr, errp);
    }
    int fd = chardev_socket_connect(chr, errp);
    if (fd < 0) {
        if (!chr->reconnect_s) {
            return false;
        }
        /* with reconnect= the peer may come later */
        g_clear_error(errp);
        chr->reconnect_timer =
            g_timeout_add_seconds(chr->reconnect_s, chardev_socket_reconnect, chr);
        return true;
    }
    chardev_socket_set_conn(chr, fd);
    return true;
}

/* ---- creation ---- */

static Chardev *chardev_alloc(const char *id, ChardevKind kind)
{
    Chardev *chr = g_new0(Chardev, 1);

    chr->id = g_strdup(id);
    chr->kind = kind;
    chr->in_fd = chr->out_fd = chr->listen_fd = -1;
    chr->outbuf = g_byte_array_new();
    g_mutex_init(&chr->write_lock);
    return chr;
}

static void chardev_free(Chardev *chr)
{
    chardev_out_drain(chr, CHARDEV_CLOSE_DRAIN_MS);
    chardev_unwatch_input(chr);
    if (chr->listen_watch) {
        g_source_remove(chr->listen_watch);
    }
    if (chr->reconnect_timer) {
        g_source_remove(chr->reconnect_timer);
    }
    if (chr->kind == CHARDEV_SOCKET || chr->kind == CHARDEV_FILE) {
        if (chr->in_fd >= 0) {
            close(chr->in_fd);
        }
        if (chr->out_fd >= 0 && chr->out_fd != chr->in_fd) {
            close(chr->out_fd);
        }
    }
    if (chr->listen_fd >= 0) {
        close(chr->listen_fd);
        if (!chr->is_tcp && chr->path) {
            unlink(chr->path);
        }
    }
    if (stdio_owner == chr) {
        chardev_stdio_restore();
        stdio_owner = NULL;
    }
    g_mutex_clear(&chr->write_lock);
    g_byte_array_unref(chr->outbuf);
    g_free(chr->id);
    g_free(chr->label);
    g_free(chr->path);
    g_free(chr->host);
    g_free(chr->port);
    g_free(chr);
}

static void chardev_stdio_restore(void)
{
    if (stdio_tty_changed) {
        tcsetattr(STDIN_FILENO, TCSANOW, &stdio_saved_tty);
        stdio_tty_changed = false;
    }
}

/*
 * A terminal on stdin delivers every key at once without echo (the guest
 * echoes); Ctrl-C still sends SIGINT so the VM can be stopped.
 */
static void chardev_stdio_set_raw(void)
{
    struct termios tty;

    if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &stdio_saved_tty) < 0) {
        return;
    }
    tty = stdio_saved_tty;
    tty.c_iflag &= ~(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON);
    tty.c_oflag |= OPOST;
    tty.c_lflag &= ~(ECHO | ECHONL | ICANON | IEXTEN);
    tty.c_cflag &= ~(CSIZE | PARENB);
    tty.c_cflag |= CS8;
    tty.c_cc[VMIN] = 1;
    tty.c_cc[VTIME] = 0;
    if (tcsetattr(STDIN_FILENO, TCSANOW, &tty) == 0) {
        stdio_tty_changed = true;
        atexit(chardev_stdio_restore);
    }
}

static bool chardev_open_backend(Chardev *chr, const char *backend, KeyVal *kv,
                                 GError **errp)
{
    if (chr->kind == CHARDEV_NULL) {
        chr->label = g_strdup("null");
        chr->connected = true;
        return true;
    }
    if (chr->kind == CHARDEV_STDIO) {
        if (stdio_owner) {
            g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                        "stdio is already used by chardev '%s'", stdio_owner->id);
            return false;
        }
        stdio_owner = chr;
        chardev_stdio_set_raw();
        chr->label = g_strdup("stdio");
        chr->in_fd = STDIN_FILENO;
        chr->out_fd = STDOUT_FILENO;
        chr->connected = true;
        return true;
    }
    if (chr->kind == CHARDEV_FILE) {
        const char *path = keyval_get(kv, "path");
        bool append;
        if (!path) {
            g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                        "file chardev '%s': Parameter 'path' is missing", chr->id);
            return false;
        }
        if (!keyval_get_bool(kv, "append", false, &append, errp)) {
            return false;
        }
        chr->out_fd = open(
            path, O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC), 0666);
        if (chr->out_fd < 0) {
            error_set_errno(errp, errno, "Could not open '%s'", path);
            return false;
        }
        chr->label = g_strdup_printf("file:%s", path);
        chr->connected = true;
        return true;
    }
    return chardev_socket_open(chr, kv, errp);
}

static bool chardev_kind_from_name(const char *backend, ChardevKind *kind)
{
    static const struct {
        const char *name;
        ChardevKind kind;
    } kinds[] = {
        {"null", CHARDEV_NULL},
        {"stdio", CHARDEV_STDIO},
        {"file", CHARDEV_FILE},
        {"socket", CHARDEV_SOCKET},
    };

    for (size_t i = 0; i < G_N_ELEMENTS(kinds); i++) {
        if (strcmp(kinds[i].name, backend) == 0) {
            *kind = kinds[i].kind;
            return true;
        }
    }
    return false;
}

static Chardev *chardev_new_from_keyval(KeyVal *kv, GError **errp)
{
    const char *backend = keyval_get(kv, "backend");
    const char *id = keyval_get(kv, "id");
    ChardevKind kind;
    Chardev *chr;

    if (!backend) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "chardev: backend type is missing (see -chardev help)");
        return NULL;
    }
    if (!chardev_kind_from_name(backend, &kind)) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "'%s' is not a valid char driver name (see -chardev help)", backend);
        return NULL;
    }
    if (!id || !*id) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC, "Parameter 'id' is missing");
        return NULL;
    }
    if (chardev_find(id)) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "Duplicate chardev ID '%s'; pick another id=", id);
        return NULL;
    }
    chr = chardev_alloc(id, kind);
    if (!chardev_open_backend(chr, backend, kv, errp) ||
        !keyval_check_unused(kv, NULL, errp)) {
        chardev_free(chr);
        return NULL;
    }
    if (!chardevs) {
        chardevs = g_ptr_array_new();
    }
    g_ptr_array_add(chardevs, chr);
    return chr;
}

Chardev *chardev_new_from_string(const char *optstr, GError **errp)
{
    g_autoptr(KeyVal) kv = keyval_parse(optstr, "backend", errp);

    return kv ? chardev_new_from_keyval(kv, errp) : NULL;
}

/* Old-style boolean flags ("server", "nowait") become key=value pairs. */
static char *legacy_normalize_flags(const char *opts)
{
    g_auto(GStrv) parts = g_strsplit(opts, ",", -1);
    GString *s = g_string_new(NULL);

    for (char **p = parts; *p; p++) {
        const char *e = *p;
        if (!strcmp(e, "server")) {
            e = "server=on";
        } else if (!strcmp(e, "nowait")) {
            e = "wait=off";
        } else if (!strcmp(e, "wait")) {
            e = "wait=on";
        }
        g_string_append_printf(s, "%s%s", s->len ? "," : "", e);
    }
    return g_string_free(s, FALSE);
}

Chardev *chardev_new_from_legacy(const char *spec, const char *id, GError **errp)
{
    g_autofree char *opts = NULL;
    g_autoptr(KeyVal) kv = NULL;
    const char *rest;

    if (g_str_has_prefix(spec, "chardev:")) {
        Chardev *chr = chardev_find(spec + 8);
        if (!chr) {
            g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                        "chardev '%s' not found (define it with -chardev ...,id=%s)",
                        spec + 8, spec + 8);
        }
        return chr;
    }
    if (!strcmp(spec, "stdio") || !strcmp(spec, "null")) {
        opts = g_strdup_printf("%s,id=%s", spec, id);
    } else if (g_str_has_prefix(spec, "file:") && spec[5]) {
        /* a file name may contain commas; escape them for the option parser */
        g_auto(GStrv) parts = g_strsplit(spec + 5, ",", -1);
        g_autofree char *esc = g_strjoinv(",,", parts);
        opts = g_strdup_printf("file,id=%s,path=%s", id, esc);
    } else if (g_str_has_prefix(spec, "unix:") && spec[5]) {
        rest = spec + 5;
        g_autofree char *norm = NULL;
        const char *comma = strchr(rest, ',');
        if (comma) {
            g_autofree char *path = g_strndup(rest, comma - rest);
            norm = legacy_normalize_flags(comma + 1);
            opts = g_strdup_printf("socket,id=%s,path=%s,%s", id, path, norm);
        } else {
            opts = g_strdup_printf("socket,id=%s,path=%s", id, rest);
        }
    } else if (g_str_has_prefix(spec, "tcp:") && strchr(spec + 4, ':')) {
        rest = spec + 4;
        const char *colon = strrchr(rest, ':');
        const char *comma = strchr(rest, ',');
        if (comma && comma < colon) {
            colon = memrchr(rest, ':', comma - rest);
        }
        if (!colon) {
            goto bad;
        }
        g_autofree char *host = g_strndup(rest, colon - rest);
        g_autofree char *port =
            comma ? g_strndup(colon + 1, comma - colon - 1) : g_strdup(colon + 1);
        g_autofree char *norm = comma ? legacy_normalize_flags(comma + 1) : NULL;
        if (!*port) {
            goto bad;
        }
        opts = g_strdup_printf("socket,id=%s,host=%s,port=%s%s%s", id, host, port,
                               norm ? "," : "", norm ? norm : "");
    } else {
        goto bad;
    }
    kv = keyval_parse(opts, "backend", errp);
    return kv ? chardev_new_from_keyval(kv, errp) : NULL;
bad:
    g_set_error(
        errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
        "'%s' is not a valid character device (use unix:PATH[,server=on,wait=off], "
        "tcp:HOST:PORT[,...], stdio, file:PATH, null or chardev:ID)",
        spec);
    return NULL;
}

void chardev_close_all(void)
{
    for (guint i = 0; chardevs && i < chardevs->len; i++) {
        chardev_free(g_ptr_array_index(chardevs, i));
    }
    g_clear_pointer(&chardevs, g_ptr_array_unref);
    memset(serial_hds, 0, sizeof(serial_hds));
}

void chardev_list_help(void)
{
    printf("Available chardev backend types:\n"
           "  socket   path=PATH | host=HOST,port=PORT  [server=on|off] [wait=on|off] "
           "[reconnect=SECONDS]\n"
           "  stdio\n"
           "  file     path=PATH [append=on|off]\n"
           "  null\n");
}
