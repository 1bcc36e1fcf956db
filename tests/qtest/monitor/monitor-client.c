/*
 * A bare monitor client over a unix socket (see monitor-client.h).
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "monitor-client.h"

#define CONNECT_TIMEOUT_MS 10000
#define READ_TIMEOUT_MS 10000

struct MonClient {
    int fd;
    bool eof;
    GString *buf;
};

MonClient *mon_client_connect(const char *path)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    gint64 deadline = g_get_monotonic_time() + CONNECT_TIMEOUT_MS * (gint64)1000;
    MonClient *c = g_new0(MonClient, 1);

    g_assert_cmpuint(strlen(path), <, sizeof(addr.sun_path));
    strcpy(addr.sun_path, path);
    c->buf = g_string_new(NULL);
    for (;;) {
        c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        g_assert_cmpint(c->fd, >=, 0);
        if (connect(c->fd, (struct sockaddr *)&addr, sizeof(addr)) == 0) {
            return c;
        }
        close(c->fd);
        if (g_get_monotonic_time() > deadline) {
            g_error("cannot connect to monitor socket %s: %s", path, g_strerror(errno));
        }
        g_usleep(10 * 1000);
    }
}

void mon_client_free(MonClient *c)
{
    if (!c) {
        return;
    }
    close(c->fd);
    g_string_free(c->buf, TRUE);
    g_free(c);
}

static bool mon_client_fill(MonClient *c, int timeout_ms);

/*
 * Write everything, reading replies meanwhile: a client that only wrote
 * could deadlock with a server blocked on writing its replies to us.
 */
void mon_client_send(MonClient *c, const void *buf, size_t len)
{
    const char *p = buf;

    while (len) {
        struct pollfd pfd = {.fd = c->fd, .events = POLLOUT | (c->eof ? 0 : POLLIN)};
        ssize_t n;

        g_assert_cmpint(poll(&pfd, 1, READ_TIMEOUT_MS), >, 0);
        if (pfd.revents & POLLIN) {
            mon_client_fill(c, 0);
        }
        if (!(pfd.revents & (POLLOUT | POLLERR | POLLHUP))) {
            continue;
        }
        n = send(c->fd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) {
            continue;
        }
        if (n <= 0) {
            g_error("monitor socket write failed: %s", g_strerror(errno));
        }
        p += n;
        len -= (size_t)n;
    }
}

void mon_client_send_str(MonClient *c, const char *text)
{
    mon_client_send(c, text, strlen(text));
}

/* Read once (waiting up to timeout_ms); false on EOF or timeout. */
static bool mon_client_fill(MonClient *c, int timeout_ms)
{
    struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
    char tmp[65536];
    ssize_t n;

    if (c->eof) {
        return false;
    }
    if (poll(&pfd, 1, timeout_ms) <= 0) {
        return false;
    }
    do {
        n = read(c->fd, tmp, sizeof(tmp));
    } while (n < 0 && errno == EINTR);
    if (n <= 0) {
        c->eof = true;
        return false;
    }
    g_string_append_len(c->buf, tmp, n);
    return true;
}

char *mon_client_read_until(MonClient *c, const char *marker, int timeout_ms)
{
    gint64 deadline = g_get_monotonic_time() + timeout_ms * (gint64)1000;

    for (;;) {
        char *hit = strstr(c->buf->str, marker);

        if (hit) {
            size_t len = (size_t)(hit - c->buf->str) + strlen(marker);
            char *out = g_strndup(c->buf->str, len);

            g_string_erase(c->buf, 0, (gssize)len);
            return out;
        }
        gint64 left = (deadline - g_get_monotonic_time()) / 1000;
        if (left <= 0 || !mon_client_fill(c, (int)left)) {
            return NULL;
        }
    }
}

char *mon_client_read_line(MonClient *c, int timeout_ms)
{
    char *line = mon_client_read_until(c, "\n", timeout_ms);
    size_t len;

    if (!line) {
        return NULL;
    }
    len = strlen(line);
    line[--len] = '\0';
    if (len && line[len - 1] == '\r') {
        line[len - 1] = '\0';
    }
    return line;
}

JsonObject *mon_client_qmp_read(MonClient *c)
{
    g_autofree char *line = mon_client_read_line(c, READ_TIMEOUT_MS);
    g_autoptr(GError) err = NULL;
    g_autoptr(JsonNode) node = NULL;

    g_assert_nonnull(line);
    node = json_from_string(line, &err);
    g_assert_no_error(err);
    g_assert_nonnull(node);
    g_assert_cmpint(json_node_get_node_type(node), ==, JSON_NODE_OBJECT);
    return json_object_ref(json_node_get_object(node));
}

JsonObject *mon_client_qmp(MonClient *c, const char *request)
{
    mon_client_send_str(c, request);
    for (;;) {
        JsonObject *obj = mon_client_qmp_read(c);

        if (!json_object_has_member(obj, "event")) {
            return obj;
        }
        json_object_unref(obj);
    }
}

void mon_client_qmp_handshake(MonClient *c)
{
    JsonObject *greeting = mon_client_qmp_read(c);
    JsonObject *rsp;

    g_assert_true(json_object_has_member(greeting, "QMP"));
    json_object_unref(greeting);
    rsp = mon_client_qmp(c, "{\"execute\": \"qmp_capabilities\"}");
    g_assert_true(json_object_has_member(rsp, "return"));
    json_object_unref(rsp);
}

char *mon_client_drain(MonClient *c, int timeout_ms)
{
    char *out;

    while (mon_client_fill(c, timeout_ms)) {
    }
    out = g_strndup(c->buf->str, c->buf->len);
    g_string_truncate(c->buf, 0);
    return out;
}

bool mon_client_wait_eof(MonClient *c, int timeout_ms)
{
    gint64 deadline = g_get_monotonic_time() + timeout_ms * (gint64)1000;

    while (!c->eof) {
        gint64 left = (deadline - g_get_monotonic_time()) / 1000;

        if (left <= 0) {
            return false;
        }
        mon_client_fill(c, (int)left);
    }
    return true;
}
