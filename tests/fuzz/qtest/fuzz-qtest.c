/*
 * Fuzz target for the qtest protocol server (system/qtest.c): the line parser
 * and every command handler, in-process, on a `pc` machine (2 MiB of RAM)
 * with the qtest accelerator and a TPM TIS at 0xFED40000 over the test
 * backend, so reads and writes reach real RAM, MMIO and I/O ports.
 *
 * Input: the bytes a client sends; a newline is added when the input does
 * not end with one, so that every input is a whole number of lines. The
 * server writes to a file chardev on a memfd, which is read back after the
 * input.
 *
 * Checks beyond "does not crash":
 *   - every request line gets exactly one reply line, "OK", "OK ...",
 *     "FAIL ..." or "ERR ...", in order; the only other lines are
 *     "IRQ raise N" / "IRQ lower N" with N a GSI number;
 *   - no reply holds a NUL byte.
 * The server is created afresh and the devices are reset for every input,
 * so an input behaves the same whatever ran before it.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <glib.h>

#include "hw/core/device.h"
#include "hw/core/machine.h"
#include "hw/tpm/tpm_backend.h"
#include "system/accel.h"
#include "system/chardev.h"
#include "system/main-loop.h"
#include "system/qtest.h"
#include "system/runstate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static Chardev *chr;
static int out_fd = -1;
static TPMBackend *backend;

static void G_GNUC_NORETURN fail(const char *what, const char *line, size_t len)
{
    fprintf(stderr, "fuzz-qtest: invariant broken: %s\n", what);
    if (line) {
        fprintf(stderr, "fuzz-qtest: reply line: %.*s\n", (int)MIN(len, 200), line);
    }
    abort();
}

static void die(const char *what, GError *err)
{
    fprintf(stderr, "fuzz-qtest: %s: %s\n", what, err ? err->message : "failed");
    abort();
}

static void fuzz_init(void)
{
    GError *err = NULL;
    const AccelClass *qtest_accel = accel_class_find("qtest");
    g_autofree char *spec = NULL;
    MachineState *ms;

    /* a GLib critical is a broken precondition: a bug, not noise */
    g_log_set_always_fatal(G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING);
    main_loop_init();
    bql_lock();
    out_fd = memfd_create("fuzz-qtest-replies", MFD_CLOEXEC);
    if (out_fd < 0) {
        die("memfd_create", NULL);
    }
    /* append=on: after a truncation, writes go to the new end */
    spec = g_strdup_printf("file,id=fuzz-qtest,path=/proc/self/fd/%d,append=on", out_fd);
    chr = chardev_new_from_string(spec, &err);
    if (!chr) {
        die("chardev", err);
    }
    backend = tpm_backend_create_from_string("test,id=tpm0", NULL, &err);
    if (!backend) {
        die("tpm backend", err);
    }
    ms = machine_create(machine_class_find("pc"), 2 << 20, NULL, 1, &err);
    if (!ms || !qtest_accel || !qtest_accel->init_machine(ms, &err)) {
        die("machine", err);
    }
    accel_set_current(qtest_accel);
    ms->accel = qtest_accel->name;
    if (!device_create_from_string("tpm-tis,tpmdev=tpm0", NULL, &err)) {
        die("tpm-tis", err);
    }
    system_reset();
}

static bool is_reply(const char *l, size_t n)
{
    return (n == 2 && !memcmp(l, "OK", 2)) || (n > 3 && !memcmp(l, "OK ", 3)) ||
           (n > 5 && !memcmp(l, "FAIL ", 5)) || (n > 4 && !memcmp(l, "ERR ", 4));
}

static bool is_irq_line(const char *l, size_t n)
{
    size_t p;
    unsigned gsi = 0;

    if (n > 10 && (!memcmp(l, "IRQ raise ", 10) || !memcmp(l, "IRQ lower ", 10))) {
        p = 10;
    } else {
        return false;
    }
    if (p == n) {
        return false;
    }
    for (; p < n; p++) {
        if (!g_ascii_isdigit(l[p])) {
            return false;
        }
        gsi = gsi * 10 + (l[p] - '0');
        if (gsi >= MACHINE_NUM_GSI) {
            return false;
        }
    }
    return true;
}

/* Read back what the server wrote and check it against the request count. */
static void check_replies(size_t requests)
{
    struct stat stbuf;
    g_autofree char *out = NULL;
    size_t len, replies = 0;
    const char *p, *end;

    if (fstat(out_fd, &stbuf) < 0) {
        die("fstat", NULL);
    }
    len = (size_t)stbuf.st_size;
    out = g_malloc(len + 1);
    if (pread(out_fd, out, len, 0) != (ssize_t)len) {
        die("pread", NULL);
    }
    if (len && out[len - 1] != '\n') {
        fail("output does not end with a newline", out, len);
    }
    if (memchr(out, '\0', len)) {
        fail("a NUL byte in the output", out, len);
    }
    for (p = out, end = out + len; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = (size_t)(nl - p);

        if (is_reply(p, n)) {
            replies++;
        } else if (!is_irq_line(p, n)) {
            fail("a line that is neither a reply nor an IRQ line", p, n);
        }
        p = nl + 1;
    }
    if (replies != requests) {
        fprintf(stderr, "fuzz-qtest: %zu requests, %zu replies\n", requests, replies);
        fail("not exactly one reply per request line", NULL, 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    GError *err = NULL;
    size_t requests = 0;

    if (!chr) {
        fuzz_init();
    }
    if (ftruncate(out_fd, 0) < 0) {
        die("ftruncate", NULL);
    }
    devices_reset_all();
    if (!qtest_server_init(chr, NULL, &err)) {
        die("qtest server", err);
    }
    for (size_t i = 0; i < size; i++) {
        requests += data[i] == '\n';
    }
    qtest_server_inject((const char *)data, size);
    if (size == 0 || data[size - 1] != '\n') {
        qtest_server_inject("\n", 1);
        requests++;
    }
    /* Let a TPM command the input started finish before the next input. */
    tpm_backend_finish_sync(backend);
    while (g_main_context_iteration(NULL, FALSE)) {
    }
    qtest_server_cleanup();
    check_replies(requests);
    return 0;
}
