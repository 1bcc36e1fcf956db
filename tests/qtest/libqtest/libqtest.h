/*
 * libqtest: start a tpmvm process and drive it through the qtest protocol and
 * QMP, as a guest or a management tool would.
 *
 *   QTestState *qts = qtest_init("-machine pc -m 64");
 *   qtest_writel(qts, 0x1000, 0xdeadbeef);
 *   g_assert_cmphex(qtest_readl(qts, 0x1000), ==, 0xdeadbeef);
 *   qtest_quit(qts);
 *
 * The binary comes from $TPMVM_BINARY. Every process started here is killed
 * when the test aborts or exits, and its stderr is kept in a file that
 * qtest_get_stderr() returns. Protocol errors (a FAIL/ERR reply to a typed
 * call, a lost connection) fail the test with the server's words.
 */
#ifndef LIBQTEST_H
#define LIBQTEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <glib.h>
#include <json-glib/json-glib.h>

typedef struct QTestState QTestState;

/* Flags for qtest_init_flags(). */
#define QTEST_INIT_NO_QMP 0x1 /* no QMP socket: only the qtest channel */

/*
 * Start tpmvm with the qtest socket, a QMP socket (unless QTEST_INIT_NO_QMP or
 * $TPMVM_QTEST_NO_QMP is set) and `extra_args` (split like a shell would),
 * then "-accel qtest" unless extra_args choose an accelerator.
 */
QTestState *qtest_init(const char *extra_args);
QTestState *qtest_initf(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
QTestState *qtest_init_without_qmp(const char *extra_args);
QTestState *qtest_init_flags(const char *extra_args, unsigned flags);
/* Stop the process (SIGTERM, then SIGKILL after a grace time) and free s. */
void qtest_quit(QTestState *s);
/* Wait for the process to exit by itself; returns its exit status (128+sig if
 * killed by a signal). Use before qtest_quit after a QMP "quit". */
int qtest_wait_exit(QTestState *s, unsigned timeout_ms);
pid_t qtest_pid(QTestState *s);
/* Everything the process wrote to stderr / stdout so far (g_free it). */
char *qtest_get_stderr(QTestState *s);
char *qtest_get_stdout(QTestState *s);
/* A scratch directory that lives as long as s (for images, sockets). */
const char *qtest_tmpdir(QTestState *s);

/*
 * Run $TPMVM_BINARY with `args` and wait (up to 30 s) for it to exit, e.g. to
 * check command-line errors. Returns the exit status (128+signal when killed);
 * out/err (may be NULL) receive what it printed.
 */
int qtest_run(const char *args, char **out, char **err);

/* ---- qtest protocol ---- */
uint8_t qtest_readb(QTestState *s, uint64_t addr);
uint16_t qtest_readw(QTestState *s, uint64_t addr);
uint32_t qtest_readl(QTestState *s, uint64_t addr);
uint64_t qtest_readq(QTestState *s, uint64_t addr);
void qtest_writeb(QTestState *s, uint64_t addr, uint8_t value);
void qtest_writew(QTestState *s, uint64_t addr, uint16_t value);
void qtest_writel(QTestState *s, uint64_t addr, uint32_t value);
void qtest_writeq(QTestState *s, uint64_t addr, uint64_t value);
uint8_t qtest_inb(QTestState *s, uint16_t port);
uint16_t qtest_inw(QTestState *s, uint16_t port);
uint32_t qtest_inl(QTestState *s, uint16_t port);
void qtest_outb(QTestState *s, uint16_t port, uint8_t value);
void qtest_outw(QTestState *s, uint16_t port, uint16_t value);
void qtest_outl(QTestState *s, uint16_t port, uint32_t value);
/* hex transfers ("read"/"write"), split into protocol-sized pieces */
void qtest_memread(QTestState *s, uint64_t addr, void *data, size_t size);
void qtest_memwrite(QTestState *s, uint64_t addr, const void *data, size_t size);
/* base64 transfers ("b64read"/"b64write") */
void qtest_bufread(QTestState *s, uint64_t addr, void *data, size_t size);
void qtest_bufwrite(QTestState *s, uint64_t addr, const void *data, size_t size);
void qtest_memset(QTestState *s, uint64_t addr, uint8_t pattern, size_t size);
/* Virtual clock: returns the new time in ns. */
int64_t qtest_clock_step(QTestState *s, int64_t step_ns);
int64_t qtest_clock_step_next(QTestState *s);
int64_t qtest_clock_set(QTestState *s, int64_t ns);
/* Interrupts: after intercepting "ioapic", get_irq reports GSI levels. */
void qtest_irq_intercept_in(QTestState *s, const char *path);
void qtest_irq_intercept_out(QTestState *s, const char *path);
bool qtest_get_irq(QTestState *s, int num);
void qtest_set_irq_in(QTestState *s, const char *path, const char *name, int num,
                      int level);

/* Send one request line (without "\n") and return the reply line ("OK ...",
 * "FAIL ...", "ERR ..."); IRQ lines are consumed. g_free the result. */
char *qtest_raw(QTestState *s, const char *line);
/* Send bytes as they are (no newline added, no reply read). */
void qtest_send_bytes(QTestState *s, const void *buf, size_t len);
/* Read the next reply line (IRQ lines consumed). */
char *qtest_recv_line(QTestState *s);
/* Read the next line as sent, IRQ lines included (their levels are recorded). */
char *qtest_recv_raw_line(QTestState *s);
/* Close the qtest connection (the process keeps running). */
void qtest_disconnect(QTestState *s);

/* ---- QMP ---- */
/*
 * Send a command (printf-style JSON text; the caller escapes strings) and
 * return the response object ({"return": ...} or {"error": ...}). Events that
 * arrive meanwhile are queued for qtest_qmp_eventwait. json_object_unref it.
 */
JsonObject *qtest_qmp(QTestState *s, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
/* Send without waiting; read the answer with qtest_qmp_receive. */
void qtest_qmp_send(QTestState *s, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
/* Next non-event message (events are queued). */
JsonObject *qtest_qmp_receive(QTestState *s);
/* Wait for event NAME (queued or new); return it / drop it. */
JsonObject *qtest_qmp_eventwait_ref(QTestState *s, const char *event);
void qtest_qmp_eventwait(QTestState *s, const char *event);
/* Run a human monitor command through QMP; returns its output. */
char *qtest_hmp(QTestState *s, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
/* Assert the response is a success and drop it. */
void qtest_qmp_assert_success(QTestState *s, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
/* The QMP greeting received at start-up. */
JsonObject *qtest_qmp_greeting(QTestState *s);
/* Close the QMP connection (QMP tests of disconnect handling). */
void qtest_qmp_disconnect(QTestState *s);

#endif
