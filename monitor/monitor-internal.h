/*
 * Inside the monitor: the transport-free session engines and the JSON helpers
 * they share. A session turns input bytes into output bytes through a callback,
 * so it runs the same on a chardev, in a unit test or in a fuzzer.
 */
#ifndef MONITOR_MONITOR_INTERNAL_H
#define MONITOR_MONITOR_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <glib.h>
#include <json-glib/json-glib.h>

/* Where a session's output goes (a chardev, a test buffer). */
typedef void (*MonitorOutputFn)(void *opaque, const char *buf, size_t len);

/* Largest QMP request object, in bytes; bigger ones get an error and are skipped. */
#define QMP_INPUT_MAX_BYTES (1024 * 1024)
/* Deepest nesting of arrays/objects a request may have. */
#define QMP_INPUT_MAX_DEPTH 1024

/*
 * Splits a byte stream into JSON texts without parsing them: it tracks only
 * strings and bracket depth, so a request may arrive in pieces or several per
 * read. Each complete text (or an error) goes to `fn`. Memory stays bounded:
 * a text over `limit` bytes or `max_depth` levels is reported once and the rest
 * of it is skipped. A byte 0xFF or an ASCII control character other than
 * tab/CR/LF drops any partial input (the QMP way to resynchronise).
 */
typedef void (*JsonFrameFn)(void *opaque, const char *text, size_t len,
                            const char *error);

typedef struct JsonFramer {
    GString *buf;
    size_t limit;
    unsigned max_depth;
    unsigned depth;
    char in_string; /* the open quote (json-glib also takes 'single'), or 0 */
    bool escape;
    bool in_scalar;  /* a top-level number/keyword, ended by a delimiter */
    bool discarding; /* an error was reported; skip to the end of this text */
    JsonFrameFn fn;
    void *opaque;
} JsonFramer;

void json_framer_init(JsonFramer *f, size_t limit, unsigned max_depth, JsonFrameFn fn,
                      void *opaque);
void json_framer_feed(JsonFramer *f, const uint8_t *data, size_t len);
/* Forget partial input (peer went away). */
void json_framer_reset(JsonFramer *f);
void json_framer_destroy(JsonFramer *f);

/*
 * Append `node` as JSON in QEMU's layout ("{"a": 1, "b": [2]}"), or indented
 * when `pretty`. Non-ASCII text is written as \uXXXX so output is plain ASCII.
 */
void qmp_json_append(GString *out, JsonNode *node, bool pretty);

/* One QMP client: greeting, capabilities negotiation, dispatch, events. */
typedef struct QmpSession QmpSession;

QmpSession *qmp_session_new(MonitorOutputFn out, void *opaque, bool pretty);
void qmp_session_free(QmpSession *s);
/* A client arrived: reset state and send the greeting. */
void qmp_session_open(QmpSession *s);
/* The client left: drop partial input; no events until the next open. */
void qmp_session_close(QmpSession *s);
void qmp_session_feed(QmpSession *s, const uint8_t *buf, size_t len);
/* Has this session finished capabilities negotiation? */
bool qmp_session_negotiated(QmpSession *s);

/* Longest human monitor line; longer ones are rejected whole. */
#define HMP_LINE_MAX 4096
#define HMP_PROMPT "(tpmvm) "

/* One human monitor client on a byte stream: banner, prompt, one command a line. */
typedef struct HmpSession HmpSession;

HmpSession *hmp_session_new(MonitorOutputFn out, void *opaque);
void hmp_session_free(HmpSession *s);
void hmp_session_open(HmpSession *s);
void hmp_session_close(HmpSession *s);
void hmp_session_feed(HmpSession *s, const uint8_t *buf, size_t len);

/* stop/cont as both monitors do them (monitor/qmp-cmds.c). */
bool monitor_vm_stop(GError **errp);
bool monitor_vm_cont(GError **errp);

#endif
