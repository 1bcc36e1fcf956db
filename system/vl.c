/*
 * The command line: parse QEMU-style options, build the VM in a fixed order,
 * run the main loop. docs/cli.md documents every option.
 *
 * Order of construction: trace/log, chardevs, qtest server, monitors,
 * secrets, drives, TPM backends, machine, accelerator, devices, kernel,
 * reset, vCPUs, start-up hooks (-loadvm), start (unless -S).
 */
#include "system/system.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib-unix.h>

#include "block/block.h"
#include "config-host.h"
#include "crypto/secret.h"
#include "hw/core/device.h"
#include "hw/core/machine.h"
#include "hw/tpm/tpm_backend.h"
#include "monitor/monitor.h"
#include "system/accel.h"
#include "system/chardev.h"
#include "system/clock.h"
#include "system/main-loop.h"
#include "system/qtest.h"
#include "system/runstate.h"
#include "system/sandbox.h"
#include "system/snapshot.h"
#include "util/error.h"
#include "util/keyval.h"
#include "util/log.h"
#include "util/trace.h"

typedef enum {
    OPT_MACHINE,
    OPT_ACCEL,
    OPT_ENABLE_KVM,
    OPT_M,
    OPT_SMP,
    OPT_DEVICE,
    OPT_OBJECT,
    OPT_DRIVE,
    OPT_BLOCKDEV,
    OPT_TPMDEV,
    OPT_CHARDEV,
    OPT_MON,
    OPT_QMP,
    OPT_QMP_PRETTY,
    OPT_MONITOR,
    OPT_QTEST,
    OPT_QTEST_LOG,
    OPT_SERIAL,
    OPT_NOGRAPHIC,
    OPT_DISPLAY,
    OPT_NODEFAULTS,
    OPT_S,
    OPT_NAME,
    OPT_PIDFILE,
    OPT_DAEMONIZE,
    OPT_VERSION,
    OPT_HELP,
    OPT_TRACE,
    OPT_D,
    OPT_D_FILE,
    OPT_KERNEL,
    OPT_INITRD,
    OPT_APPEND,
    OPT_NO_REBOOT,
    OPT_LOADVM,
    OPT_SANDBOX,
    OPT_RUNAS,
    OPT_CHROOT,
} OptionIndex;

typedef struct VlOptionDef {
    const char *name;
    OptionIndex index;
    bool has_arg;
    const char *arg_name;
    const char *help;
} VlOptionDef;

static const VlOptionDef vl_options[] = {
    {"machine", OPT_MACHINE, true, "TYPE[,accel=A]", "machine: pc (default) or none"},
    {"M", OPT_MACHINE, true, "TYPE", "same as -machine"},
    {"accel", OPT_ACCEL, true, "NAME", "accelerator: kvm or qtest (repeat to fall back)"},
    {"enable-kvm", OPT_ENABLE_KVM, false, NULL, "same as -accel kvm"},
    {"m", OPT_M, true, "SIZE", "guest RAM (default 128M; bare numbers are MiB)"},
    {"smp", OPT_SMP, true, "N", "number of vCPUs"},
    {"device", OPT_DEVICE, true, "DRIVER[,PROP=V...]", "add a device (-device help)"},
    {"object", OPT_OBJECT, true, "secret,id=ID,...", "create an object (secrets)"},
    {"drive", OPT_DRIVE, true, "OPTS", "open a drive (if=none,id=ID,file=F,...)"},
    {"blockdev", OPT_BLOCKDEV, true, "OPTS", "open a block node"},
    {"tpmdev", OPT_TPMDEV, true, "TYPE,id=ID,...", "create a TPM backend"},
    {"chardev", OPT_CHARDEV, true, "BACKEND,id=ID,...", "create a character device"},
    {"mon", OPT_MON, true, "chardev=ID[,mode=control|readline]", "monitor on a chardev"},
    {"qmp", OPT_QMP, true, "DEV",
     "QMP monitor on DEV (unix:PATH,server=on,wait=off ...)"},
    {"qmp-pretty", OPT_QMP_PRETTY, true, "DEV", "QMP with pretty-printed JSON"},
    {"monitor", OPT_MONITOR, true, "DEV", "human monitor on DEV"},
    {"qtest", OPT_QTEST, true, "DEV", "serve the qtest protocol on DEV"},
    {"qtest-log", OPT_QTEST_LOG, true, "FILE", "log qtest traffic to FILE"},
    {"serial", OPT_SERIAL, true, "DEV",
     "serial port on DEV (stdio, null, file:PATH ...)"},
    {"nographic", OPT_NOGRAPHIC, false, NULL, "no display; serial port on stdio"},
    {"display", OPT_DISPLAY, true, "none", "display type (only none)"},
    {"nodefaults", OPT_NODEFAULTS, false, NULL, "create no default devices"},
    {"S", OPT_S, false, NULL, "do not start the VM (use 'cont')"},
    {"name", OPT_NAME, true, "NAME", "name of the guest"},
    {"pidfile", OPT_PIDFILE, true, "FILE", "write the process id to FILE"},
    {"daemonize", OPT_DAEMONIZE, false, NULL, "detach once the VM is set up"},
    {"version", OPT_VERSION, false, NULL, "print the version and exit"},
    {"h", OPT_HELP, false, NULL, "print this help and exit"},
    {"help", OPT_HELP, false, NULL, "print this help and exit"},
    {"trace", OPT_TRACE, true, "[enable=]PATTERN|file=F", "enable trace events"},
    {"d", OPT_D, true, "ITEM[,...]", "log items: trace:PATTERN, guest_errors, unimp"},
    {"D", OPT_D_FILE, true, "FILE", "write -d/-trace output to FILE"},
    {"kernel", OPT_KERNEL, true, "FILE", "Linux kernel (bzImage) or ELF guest"},
    {"initrd", OPT_INITRD, true, "FILE", "initial ram disk"},
    {"append", OPT_APPEND, true, "CMDLINE", "kernel command line"},
    {"no-reboot", OPT_NO_REBOOT, false, NULL, "exit instead of rebooting"},
    {"loadvm", OPT_LOADVM, true, "TAG", "start from snapshot TAG"},
    {"sandbox", OPT_SANDBOX, true, "on|off[,spawn=,elevateprivileges=,...]",
     "seccomp filter applied after start-up (docs/security.md)"},
    {"runas", OPT_RUNAS, true, "USER[:GROUP]", "drop root privileges after start-up"},
    {"chroot", OPT_CHROOT, true, "DIR", "chroot to DIR after start-up"},
};

typedef struct VlArg {
    const VlOptionDef *def;
    const char *arg; /* NULL for flags */
} VlArg;

/* What the command line asked for (filled by vl_parse, used by vl_setup). */
typedef struct VlConfig {
    GArray *args; /* VlArg in command-line order */
    char *machine_type;
    GPtrArray *accels; /* char* accelerator names in order of preference */
    const char *accel_opts_arg;
    KeyVal *accel_opts;
    uint64_t ram_size;
    bool ram_given;
    const char *ram_arg;
    unsigned smp;
    bool nographic, daemonize, start_paused, no_reboot, nodefaults;
    const char *qtest_spec, *qtest_log, *pidfile, *name;
    const char *kernel, *initrd, *append, *loadvm, *d_file;
    int daemon_pipe;
} VlConfig;

static VlConfig cfg;
static char *vm_name;

const char *system_vm_name(void)
{
    return vm_name;
}

bool system_start_paused(void)
{
    return cfg.start_paused;
}

static void vl_print_help(void)
{
    printf("usage: tpmvm [options]\n\n");
    for (size_t i = 0; i < G_N_ELEMENTS(vl_options); i++) {
        const VlOptionDef *o = &vl_options[i];
        g_autofree char *lhs = g_strdup_printf("-%s%s%s", o->name, o->has_arg ? " " : "",
                                               o->has_arg ? o->arg_name : "");
        printf("  %-40s %s\n", lhs, o->help);
    }
    printf("\nSee docs/cli.md for the details of every option.\n");
}

static void vl_print_version(void)
{
    printf("tpmvm version %s\n", TPMVM_VERSION);
}

/* Report "-OPT ARG: message" and exit 1. */
/*
 * The argument as error messages show it. For -object, the value of data=
 * becomes "***": a typo next to a secret must not copy it into logs
 * (docs/security.md, secrets hygiene). Values may hold ",," (a comma).
 */
static char *vl_arg_for_message(const VlArg *a)
{
    GString *out;
    bool key_start = true;

    if (a->def->index != OPT_OBJECT) {
        return g_strdup(a->arg);
    }
    out = g_string_new(NULL);
    for (const char *p = a->arg; *p;) {
        if (key_start && g_str_has_prefix(p, "data=")) {
            g_string_append(out, "data=***");
            for (p += 5; *p && !(p[0] == ',' && p[1] != ',');) {
                p += p[0] == ',' ? 2 : 1;
            }
            key_start = false;
        } else if (p[0] == ',' && p[1] == ',') {
            g_string_append(out, ",,");
            p += 2;
            key_start = false;
        } else {
            key_start = *p == ',';
            g_string_append_c(out, *p++);
        }
    }
    return g_string_free(out, FALSE);
}

static void G_GNUC_NORETURN vl_fail(const VlArg *a, GError *err)
{
    if (a && a->arg) {
        g_autofree char *shown = vl_arg_for_message(a);
        error_report("-%s %s: %s", a->def->name, shown, err->message);
    } else if (a) {
        error_report("-%s: %s", a->def->name, err->message);
    } else {
        error_report("%s", err->message);
    }
    g_error_free(err);
    exit(1);
}

static const VlOptionDef *vl_find_option(const char *name)
{
    for (size_t i = 0; i < G_N_ELEMENTS(vl_options); i++) {
        if (strcmp(vl_options[i].name, name) == 0) {
            return &vl_options[i];
        }
    }
    return NULL;
}

/* Split argv into (option, argument) pairs; unknown options end the process. */
static void vl_split_args(int argc, char **argv)
{
    cfg.args = g_array_new(FALSE, TRUE, sizeof(VlArg));
    for (int i = 1; i < argc; i++) {
        const char *w = argv[i];
        const char *name = w[0] == '-' ? w + 1 + (w[1] == '-') : NULL;
        const VlOptionDef *def = name && *name ? vl_find_option(name) : NULL;
        VlArg a = {def, NULL};

        if (!def) {
            error_report("%s: invalid option", w);
            exit(1);
        }
        if (def->has_arg) {
            if (i + 1 >= argc) {
                error_report("-%s: requires an argument", def->name);
                exit(1);
            }
            a.arg = argv[++i];
        }
        g_array_append_val(cfg.args, a);
    }
}

static GError *vl_error(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
static GError *vl_error(const char *fmt, ...)
{
    va_list ap;
    GError *err;

    va_start(ap, fmt);
    err = g_error_new_valist(TPMVM_ERROR, TPMVM_ERROR_GENERIC, fmt, ap);
    va_end(ap);
    return err;
}

static void vl_add_accels(const char *list)
{
    g_auto(GStrv) names = g_strsplit(list, ":", -1);

    for (char **n = names; *n; n++) {
        if (**n) {
            g_ptr_array_add(cfg.accels, g_strdup(*n));
        }
    }
}

static void vl_parse_machine(const VlArg *a)
{
    GError *err = NULL;
    g_autoptr(KeyVal) kv = keyval_parse(a->arg, "type", &err);
    const char *type, *accel;

    if (!kv) {
        vl_fail(a, err);
    }
    type = keyval_get(kv, "type");
    if (keyval_wants_help(kv) || (type && !strcmp(type, "help"))) {
        machine_list_help();
        exit(0);
    }
    if (type) {
        if (!machine_class_find(type)) {
            vl_fail(a,
                    vl_error("unsupported machine type '%s' (use -machine help to list "
                             "them)",
                             type));
        }
        g_free(cfg.machine_type);
        cfg.machine_type = g_strdup(type);
    }
    accel = keyval_get(kv, "accel");
    if (accel) {
        vl_add_accels(accel);
    }
    if (!keyval_check_unused(kv, NULL, &err)) {
        vl_fail(a, err);
    }
}

static void vl_parse_accel(const VlArg *a)
{
    GError *err = NULL;
    KeyVal *kv = keyval_parse(a->arg, "accel", &err);
    const char *name;

    if (!kv) {
        vl_fail(a, err);
    }
    name = keyval_get(kv, "accel");
    if (keyval_wants_help(kv) || (name && !strcmp(name, "help"))) {
        accel_list_help();
        exit(0);
    }
    if (!name) {
        vl_fail(a, vl_error("Parameter 'accel' is missing"));
    }
    /* kvm may be absent from this build: vl_create_machine says so, or falls
     * back to the next -accel */
    if (!accel_class_find(name) && strcmp(name, "kvm") != 0) {
        vl_fail(
            a, vl_error("invalid accelerator '%s' (use -accel help to list them)", name));
    }
    g_ptr_array_add(cfg.accels, g_strdup(name));
    /* options other than the name belong to the accelerator; the last -accel with
     * options wins */
    if (keyval_keys(kv)[1]) {
        keyval_free(cfg.accel_opts);
        cfg.accel_opts = kv;
        cfg.accel_opts_arg = a->arg;
    } else {
        keyval_free(kv);
    }
}

static void vl_parse_m(const VlArg *a)
{
    GError *err = NULL;
    g_autoptr(KeyVal) kv = keyval_parse(a->arg, "size", &err);
    const char *size;

    if (!kv) {
        vl_fail(a, err);
    }
    size = keyval_get(kv, "size");
    if (!size) {
        vl_fail(a, vl_error("Parameter 'size' is missing"));
    }
    if (!parse_size(size, 'M', &cfg.ram_size, &err)) {
        vl_fail(a, err);
    }
    if (cfg.ram_size == 0) {
        vl_fail(a, vl_error("RAM size must be larger than 0"));
    }
    /* QEMU's memory hotplug options: accepted, not used */
    keyval_get(kv, "slots");
    keyval_get(kv, "maxmem");
    if (!keyval_check_unused(kv, NULL, &err)) {
        vl_fail(a, err);
    }
    cfg.ram_given = true;
    cfg.ram_arg = a->arg;
}

static void vl_parse_smp(const VlArg *a)
{
    GError *err = NULL;
    g_autoptr(KeyVal) kv = keyval_parse(a->arg, "cpus", &err);
    uint64_t cpus, sockets, cores, threads, maxcpus;

    if (!kv || !keyval_get_uint(kv, "cpus", 0, &cpus, &err) ||
        !keyval_get_uint(kv, "sockets", 1, &sockets, &err) ||
        !keyval_get_uint(kv, "cores", 1, &cores, &err) ||
        !keyval_get_uint(kv, "threads", 1, &threads, &err) ||
        !keyval_get_uint(kv, "maxcpus", 0, &maxcpus, &err) ||
        !keyval_check_unused(kv, NULL, &err)) {
        vl_fail(a, err);
    }
    if (cpus == 0 && !keyval_has(kv, "cpus")) {
        cpus = sockets * cores * threads;
    }
    if (cpus < 1 || cpus > 255 || sockets > 255 || cores > 255 || threads > 255) {
        vl_fail(a, vl_error("the number of CPUs must be between 1 and 255"));
    }
    cfg.smp = (unsigned)cpus;
}

static void vl_parse_name(const VlArg *a)
{
    GError *err = NULL;
    g_autoptr(KeyVal) kv = keyval_parse(a->arg, "guest", &err);

    if (!kv) {
        vl_fail(a, err);
    }
    g_free(vm_name);
    vm_name = g_strdup(keyval_get(kv, "guest"));
    keyval_get(kv, "process");
    keyval_get(kv, "debug-threads");
    if (!keyval_check_unused(kv, NULL, &err)) {
        vl_fail(a, err);
    }
}

static void vl_parse_trace(const VlArg *a)
{
    GError *err = NULL;
    g_autoptr(KeyVal) kv = keyval_parse(a->arg, "enable", &err);
    const char *pat, *file;

    if (!kv) {
        vl_fail(a, err);
    }
    pat = keyval_get(kv, "enable");
    if (keyval_wants_help(kv) || (pat && !strcmp(pat, "help"))) {
        trace_list_known();
        exit(0);
    }
    file = keyval_get(kv, "file");
    if (!keyval_check_unused(kv, NULL, &err)) {
        vl_fail(a, err);
    }
    if (file) {
        FILE *fp = fopen(file, "w");
        if (!fp) {
            error_set_errno(&err, errno, "Could not open '%s'", file);
            vl_fail(a, err);
        }
        setvbuf(fp, NULL, _IOLBF, 0);
        trace_set_output(fp);
    }
    if (pat) {
        trace_enable_pattern(pat);
    }
}

static void vl_parse_d(const VlArg *a)
{
    g_auto(GStrv) items = g_strsplit(a->arg, ",", -1);

    for (char **it = items; *it; it++) {
        if (!strcmp(*it, "help")) {
            printf("Log items (comma separated):\n"
                   "trace:PATTERN  enable trace events matching PATTERN\n"
                   "guest_errors   log invalid guest accesses (memory_unassigned_*)\n"
                   "unimp          log accesses to unimplemented registers\n");
            exit(0);
        } else if (g_str_has_prefix(*it, "trace:")) {
            trace_enable_pattern(*it + 6);
        } else if (!strcmp(*it, "guest_errors")) {
            trace_enable_pattern("memory_unassigned_*");
            trace_enable_pattern("*_guest_error");
        } else if (!strcmp(*it, "unimp")) {
            trace_enable_pattern("*_unimp");
        } else {
            vl_fail(a, vl_error("unknown log item '%s' (use -d help to list them)", *it));
        }
    }
}

/* First pass: options that decide how everything else is built. */
static void vl_parse(void)
{
    GError *err = NULL;

    for (guint i = 0; i < cfg.args->len; i++) {
        const VlArg *a = &g_array_index(cfg.args, VlArg, i);

        switch (a->def->index) {
        case OPT_VERSION:
            vl_print_version();
            exit(0);
        case OPT_HELP:
            vl_print_help();
            exit(0);
        case OPT_MACHINE:
            vl_parse_machine(a);
            break;
        case OPT_ACCEL:
            vl_parse_accel(a);
            break;
        case OPT_ENABLE_KVM: {
            VlArg k = {a->def, "kvm"};
            vl_parse_accel(&k);
            break;
        }
        case OPT_M:
            vl_parse_m(a);
            break;
        case OPT_SMP:
            vl_parse_smp(a);
            break;
        case OPT_QTEST:
            cfg.qtest_spec = a->arg;
            break;
        case OPT_QTEST_LOG:
            cfg.qtest_log = a->arg;
            break;
        case OPT_NOGRAPHIC:
            cfg.nographic = true;
            break;
        case OPT_DISPLAY:
            if (strcmp(a->arg, "none") != 0 && !g_str_has_prefix(a->arg, "none,")) {
                vl_fail(a,
                        vl_error("display '%s' is not available (only 'none')", a->arg));
            }
            break;
        case OPT_NODEFAULTS:
            cfg.nodefaults = true;
            break;
        case OPT_S:
            cfg.start_paused = true;
            break;
        case OPT_NAME:
            vl_parse_name(a);
            break;
        case OPT_PIDFILE:
            cfg.pidfile = a->arg;
            break;
        case OPT_DAEMONIZE:
            cfg.daemonize = true;
            break;
        case OPT_TRACE:
            vl_parse_trace(a);
            break;
        case OPT_D:
            vl_parse_d(a);
            break;
        case OPT_D_FILE:
            cfg.d_file = a->arg;
            break;
        case OPT_KERNEL:
            cfg.kernel = a->arg;
            break;
        case OPT_INITRD:
            cfg.initrd = a->arg;
            break;
        case OPT_APPEND:
            cfg.append = a->arg;
            break;
        case OPT_NO_REBOOT:
            cfg.no_reboot = true;
            break;
        case OPT_LOADVM:
            cfg.loadvm = a->arg;
            break;
        case OPT_SANDBOX:
            if (!sandbox_parse(a->arg, &err)) {
                vl_fail(a, err);
            }
            break;
        case OPT_RUNAS:
            if (!os_set_runas(a->arg, &err)) {
                vl_fail(a, err);
            }
            break;
        case OPT_CHROOT:
            if (!os_set_chroot(a->arg, &err)) {
                vl_fail(a, err);
            }
            break;
        default:
            break; /* handled in order by vl_setup */
        }
    }
    if (cfg.d_file) {
        FILE *fp = fopen(cfg.d_file, "w");
        if (!fp) {
            GError *err = NULL;
            error_set_errno(&err, errno, "Could not open '%s'", cfg.d_file);
            VlArg a = {vl_find_option("D"), cfg.d_file};
            vl_fail(&a, err);
        }
        setvbuf(fp, NULL, _IOLBF, 0);
        trace_set_output(fp);
    }
    if ((cfg.initrd || cfg.append) && !cfg.kernel) {
        vl_fail(NULL, vl_error("-initrd and -append need -kernel"));
    }
}

/* Run fn for every argument of one option kind, in command-line order. */
static void vl_foreach(OptionIndex idx, void (*fn)(const VlArg *a))
{
    for (guint i = 0; i < cfg.args->len; i++) {
        const VlArg *a = &g_array_index(cfg.args, VlArg, i);
        if (a->def->index == idx) {
            fn(a);
        }
    }
}

static void vl_create_chardev(const VlArg *a)
{
    GError *err = NULL;
    g_autoptr(KeyVal) kv = keyval_parse(a->arg, "backend", &err);
    const char *backend;

    if (!kv) {
        vl_fail(a, err);
    }
    backend = keyval_get(kv, "backend");
    if (keyval_wants_help(kv) || (backend && !strcmp(backend, "help"))) {
        chardev_list_help();
        exit(0);
    }
    if (!chardev_new_from_string(a->arg, &err)) {
        vl_fail(a, err);
    }
}

static int serial_count;

static void vl_create_serial(const VlArg *a)
{
    GError *err = NULL;
    g_autofree char *id = NULL;
    Chardev *chr;

    if (!strcmp(a->arg, "none")) {
        return;
    }
    if (serial_count >= SERIAL_HD_MAX) {
        vl_fail(a, vl_error("at most %d serial ports are supported", SERIAL_HD_MAX));
    }
    id = g_strdup_printf("serial%d", serial_count);
    chr = chardev_new_from_legacy(a->arg, id, &err);
    if (!chr) {
        vl_fail(a, err);
    }
    serial_hd_set(serial_count++, chr);
}

static void vl_create_mon(const VlArg *a)
{
    GError *err = NULL;

    if (!monitor_new_from_string(a->arg, &err)) {
        vl_fail(a, err);
    }
}

static void vl_create_qmp(const VlArg *a)
{
    GError *err = NULL;

    if (strcmp(a->arg, "none") != 0 &&
        !monitor_new_qmp(a->arg, a->def->index == OPT_QMP_PRETTY, &err)) {
        vl_fail(a, err);
    }
}

static void vl_create_hmp(const VlArg *a)
{
    GError *err = NULL;

    if (strcmp(a->arg, "none") != 0 && !monitor_new_hmp(a->arg, &err)) {
        vl_fail(a, err);
    }
}

static void vl_create_object(const VlArg *a)
{
    GError *err = NULL;
    g_autoptr(KeyVal) kv = keyval_parse(a->arg, "qom-type", &err);
    const char *type;

    if (!kv) {
        vl_fail(a, err);
    }
    type = keyval_get(kv, "qom-type");
    if (keyval_wants_help(kv) || (type && !strcmp(type, "help"))) {
        printf("List of user creatable objects:\n  secret\n");
        exit(0);
    }
    if (!type) {
        vl_fail(a, vl_error("Parameter 'qom-type' is missing"));
    }
    if (strcmp(type, "secret") != 0) {
        vl_fail(a,
                vl_error("invalid object type '%s' (only 'secret' is supported)", type));
    }
    if (!keyval_has(kv, "id")) {
        vl_fail(a, vl_error("Parameter 'id' is missing"));
    }
    if (!secret_create(kv, &err) || !keyval_check_unused(kv, NULL, &err)) {
        vl_fail(a, err);
    }
}

static void vl_create_drive(const VlArg *a)
{
    GError *err = NULL;

    if (!drive_new_from_string(a->arg, &err)) {
        vl_fail(a, err);
    }
}

static void vl_create_blockdev(const VlArg *a)
{
    GError *err = NULL;

    if (!blockdev_new_from_string(a->arg, &err)) {
        vl_fail(a, err);
    }
}

static void vl_create_tpmdev(const VlArg *a)
{
    GError *err = NULL;
    bool help = false;

    if (!tpm_backend_create_from_string(a->arg, &help, &err)) {
        if (help && !err) {
            exit(0);
        }
        /* the backend layer names the -tpmdev option in its messages */
        vl_fail(NULL, err);
    }
}

static void vl_create_device(const VlArg *a)
{
    GError *err = NULL;
    bool help = false;

    if (!device_create_from_string(a->arg, &help, &err)) {
        if (help && !err) {
            exit(0);
        }
        vl_fail(a, err);
    }
}

/* -device help and -device NAME,help work without building a machine. */
static void vl_device_help_early(const VlArg *a)
{
    g_autoptr(KeyVal) kv = keyval_parse(a->arg, "driver", NULL);

    if (kv && keyval_wants_help(kv)) {
        vl_create_device(a);
    }
}

static void vl_create_machine(void)
{
    const MachineClass *mc = NULL;
    GError *err = NULL;
    MachineState *ms;
    const AccelClass *ac = NULL;

    if (cfg.machine_type) {
        mc = machine_class_find(cfg.machine_type);
    } else {
        mc = machine_class_find("pc");
    }
    if (cfg.accels->len == 0) {
        /* QEMU's rule: a -qtest socket means the qtest accelerator; else KVM */
        g_ptr_array_add(cfg.accels, g_strdup(cfg.qtest_spec ? "qtest" : "kvm"));
    }
    ms = machine_create(mc, cfg.ram_given ? cfg.ram_size : 0, NULL, cfg.smp, &err);
    if (!ms) {
        if (cfg.ram_given) {
            VlArg a = {vl_find_option("m"), cfg.ram_arg};
            vl_fail(&a, err);
        }
        vl_fail(NULL, err);
    }
    ms->kernel = g_strdup(cfg.kernel);
    ms->initrd = g_strdup(cfg.initrd);
    ms->append = g_strdup(cfg.append);
    ms->no_reboot = cfg.no_reboot;

    /* try the accelerators in order; the first that starts wins */
    for (guint i = 0; i < cfg.accels->len; i++) {
        const char *name = g_ptr_array_index(cfg.accels, i);
        bool last = i + 1 == cfg.accels->len;

        ac = accel_class_find(name);
        if (!ac) {
            err = !strcmp(name, "kvm")
                      ? vl_error("-accel kvm: KVM support is not available in this build")
                      : vl_error("-accel %s: invalid accelerator '%s'", name, name);
        } else if (cfg.accel_opts && ac->parse_opts &&
                   !ac->parse_opts(cfg.accel_opts, &err)) {
            g_prefix_error(&err, "-accel %s: ", cfg.accel_opts_arg);
        } else if (cfg.accel_opts && !ac->parse_opts &&
                   !keyval_check_unused(cfg.accel_opts, NULL, &err)) {
            g_prefix_error(&err, "-accel %s: ", cfg.accel_opts_arg);
        } else if (ac->init_machine && !ac->init_machine(ms, &err)) {
            g_prefix_error(&err, "-accel %s: ", name);
        } else {
            break;
        }
        if (last) {
            vl_fail(NULL, err);
        }
        warn_report("%s; trying the next accelerator", err->message);
        g_clear_error(&err);
        ac = NULL;
    }
    accel_set_current(ac);
    ms->accel = ac->name;
}

static void vl_write_pidfile(void)
{
    g_autofree char *pid = g_strdup_printf("%d\n", (int)getpid());
    GError *err = NULL;

    if (!g_file_set_contents(cfg.pidfile, pid, -1, &err)) {
        VlArg a = {vl_find_option("pidfile"), cfg.pidfile};
        vl_fail(&a, err);
    }
}

/*
 * -daemonize: the parent waits until the child reports that set-up worked
 * (one byte on a pipe) and exits with its status, so errors still reach the
 * caller's terminal and the exit code.
 */
static void vl_daemonize_start(void)
{
    int fds[2];
    pid_t pid;

    if (pipe(fds) < 0) {
        error_report("-daemonize: pipe failed: %s", g_strerror(errno));
        exit(1);
    }
    pid = fork();
    if (pid < 0) {
        error_report("-daemonize: fork failed: %s", g_strerror(errno));
        exit(1);
    }
    if (pid > 0) {
        char status = 1;
        close(fds[1]);
        while (read(fds[0], &status, 1) < 0 && errno == EINTR) {
        }
        _exit(status == 0 ? 0 : 1);
    }
    close(fds[0]);
    setsid();
    cfg.daemon_pipe = fds[1];
}

static void vl_daemonize_finish(void)
{
    char ok = 0;
    int null_fd;

    if (!cfg.daemonize) {
        return;
    }
    null_fd = open("/dev/null", O_RDWR);
    if (null_fd >= 0) {
        dup2(null_fd, STDIN_FILENO);
        dup2(null_fd, STDOUT_FILENO);
        dup2(null_fd, STDERR_FILENO);
        close(null_fd);
    }
    if (write(cfg.daemon_pipe, &ok, 1) < 0) {
        /* the parent is gone; nothing to tell */
    }
    close(cfg.daemon_pipe);
}

static gboolean vl_on_signal(gpointer opaque)
{
    int sig = GPOINTER_TO_INT(opaque);

    if (!cfg.daemonize) {
        error_report("terminating on signal %d", sig);
    }
    system_shutdown_request(SHUTDOWN_CAUSE_HOST_SIGNAL, 0);
    return G_SOURCE_CONTINUE;
}

static void vl_vclock_notifier(void *opaque, bool running, RunState state)
{
    vclock_set_running(running);
}

static void vl_setup(void)
{
    GError *err = NULL;

    if (cfg.daemonize) {
        if (cfg.nographic || (cfg.qtest_spec && !strcmp(cfg.qtest_spec, "stdio"))) {
            vl_fail(NULL, vl_error("-daemonize cannot be used with -nographic or stdio"));
        }
        vl_daemonize_start();
    }
    main_loop_init();
    bql_lock();
    signal(SIGPIPE, SIG_IGN);
    g_unix_signal_add(SIGINT, vl_on_signal, GINT_TO_POINTER(SIGINT));
    g_unix_signal_add(SIGTERM, vl_on_signal, GINT_TO_POINTER(SIGTERM));
    g_unix_signal_add(SIGHUP, vl_on_signal, GINT_TO_POINTER(SIGHUP));
    runstate_add_notifier(vl_vclock_notifier, NULL);

    vl_foreach(OPT_DEVICE, vl_device_help_early);
    vl_foreach(OPT_CHARDEV, vl_create_chardev);
    vl_foreach(OPT_SERIAL, vl_create_serial);
    if (serial_count == 0 && cfg.nographic && !cfg.nodefaults) {
        VlArg a = {vl_find_option("serial"), "stdio"};
        vl_create_serial(&a);
    }
    if (cfg.qtest_spec) {
        VlArg a = {vl_find_option("qtest"), cfg.qtest_spec};
        VlArg log = {vl_find_option("qtest-log"), cfg.qtest_log};
        Chardev *chr = chardev_new_from_legacy(cfg.qtest_spec, "qtest", &err);
        if (!chr) {
            vl_fail(&a, err);
        }
        if (!qtest_server_init(chr, cfg.qtest_log, &err)) {
            vl_fail(cfg.qtest_log ? &log : &a, err);
        }
    }
    for (guint i = 0; i < cfg.args->len; i++) {
        const VlArg *a = &g_array_index(cfg.args, VlArg, i);
        switch (a->def->index) {
        case OPT_MON:
            vl_create_mon(a);
            break;
        case OPT_QMP:
        case OPT_QMP_PRETTY:
            vl_create_qmp(a);
            break;
        case OPT_MONITOR:
            vl_create_hmp(a);
            break;
        default:
            break;
        }
    }
    vl_foreach(OPT_OBJECT, vl_create_object);
    vl_foreach(OPT_DRIVE, vl_create_drive);
    vl_foreach(OPT_BLOCKDEV, vl_create_blockdev);
    vl_foreach(OPT_TPMDEV, vl_create_tpmdev);
    vl_create_machine();
    vl_foreach(OPT_DEVICE, vl_create_device);
    if (current_machine->klass->load_kernel &&
        !current_machine->klass->load_kernel(current_machine, &err)) {
        VlArg a = {vl_find_option("kernel"), cfg.kernel};
        vl_fail(cfg.kernel ? &a : NULL, err);
    }
    system_reset();
    if (current_accel()->setup_vcpus &&
        !current_accel()->setup_vcpus(current_machine, &err)) {
        g_prefix_error(&err, "-accel %s: ", current_accel()->name);
        vl_fail(NULL, err);
    }
    system_set_loadvm_tag(cfg.loadvm);
    system_add_startup_hook(snapshot_startup_hook, NULL);
    if (!system_run_startup_hooks(&err)) {
        if (cfg.loadvm) {
            VlArg a = {vl_find_option("loadvm"), cfg.loadvm};
            vl_fail(&a, err);
        }
        vl_fail(NULL, err);
    }
    if (cfg.pidfile) {
        vl_write_pidfile();
    }
    /*
     * Everything the VM needs is open now (drives, secrets, /dev/kvm, vCPU
     * threads, listening sockets): drop privileges, then lock down the
     * system calls (the filter forbids setuid and chroot, so this order).
     */
    if (!os_apply_runas_chroot(&err) || !sandbox_apply(&err)) {
        vl_fail(NULL, err);
    }
}

static void vl_cleanup(void)
{
    qtest_server_cleanup();
    if (current_accel() && current_accel()->cleanup) {
        current_accel()->cleanup(current_machine);
    }
    devices_destroy_all();
    tpm_backend_destroy_all();
    drive_close_all();
    secret_delete_all();
    chardev_close_all();
    machine_destroy(current_machine);
    if (cfg.pidfile) {
        unlink(cfg.pidfile);
    }
}

int tpmvm_main(int argc, char **argv)
{
    int status;

    cfg.accels = g_ptr_array_new_with_free_func(g_free);
    cfg.daemon_pipe = -1;
    vl_split_args(argc, argv);
    vl_parse();
    vl_setup();
    if (!cfg.start_paused) {
        vm_start();
    }
    vl_daemonize_finish();
    status = main_loop_run();
    vl_cleanup();
    bql_unlock();
    return status;
}
