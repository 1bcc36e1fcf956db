/*
 * Start-up hardening: the -sandbox seccomp filter, -runas and -chroot.
 * The interface and the order of calls are in include/system/sandbox.h; the
 * threat model and what each measure covers are in docs/security.md.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>
#include <linux/capability.h>
#include <sched.h>

#include "config-host.h"
#include "system/sandbox.h"
#include "util/error.h"
#include "util/keyval.h"
#include "util/log.h"

#if CONFIG_SECCOMP
#include <seccomp.h>
#endif

#if defined(__SANITIZE_ADDRESS__)
#define SANDBOX_UNDER_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANDBOX_UNDER_SANITIZER 1
#endif
#endif

typedef enum {
    SANDBOX_DENY,
    SANDBOX_ALLOW,
    SANDBOX_CHILDREN, /* elevateprivileges only: allow, but children cannot gain */
} SandboxPolicy;

typedef struct SandboxConfig {
    bool enabled;
    SandboxPolicy obsolete;
    SandboxPolicy elevate;
    SandboxPolicy spawn;
    SandboxPolicy resourcecontrol;
} SandboxConfig;

/*
 * Process-wide by nature: a seccomp filter, the uid and the root directory
 * belong to the whole process. Written only by the main thread while the
 * command line is parsed and during start-up, before the VM runs.
 */
static SandboxConfig sandbox_config;

typedef struct RunasConfig {
    char *spec; /* as given, for messages */
    uid_t uid;
    gid_t gid;
    GArray *groups; /* gid_t: supplementary groups, resolved at parse time */
} RunasConfig;

static RunasConfig *runas_config;
static char *chroot_dir;

#define SANDBOX_USAGE                                                                    \
    "-sandbox on|off[,obsolete=deny|allow][,elevateprivileges=deny|allow|children]"      \
    "[,spawn=deny|allow][,resourcecontrol=deny|allow]"

static bool sandbox_parse_policy(KeyVal *kv, const char *key, bool children_ok,
                                 SandboxPolicy *out, GError **errp)
{
    const char *v = keyval_get(kv, key);

    if (!v || !strcmp(v, "deny")) {
        *out = SANDBOX_DENY;
    } else if (!strcmp(v, "allow")) {
        *out = SANDBOX_ALLOW;
    } else if (children_ok && !strcmp(v, "children")) {
        *out = SANDBOX_CHILDREN;
    } else {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "-sandbox: parameter '%s' expects %s, not '%s'", key,
                    children_ok ? "'deny', 'allow' or 'children'" : "'deny' or 'allow'",
                    v);
        return false;
    }
    return true;
}

bool sandbox_parse(const char *optstr, GError **errp)
{
    GError *err = NULL;
    g_autoptr(KeyVal) kv = keyval_parse(optstr, "enable", &err);
    SandboxConfig cfg = {0};
    const char *on;

    if (!kv) {
        g_propagate_prefixed_error(errp, err, "-sandbox %s: ", optstr);
        return false;
    }
    if (keyval_wants_help(kv)) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC, "usage: %s", SANDBOX_USAGE);
        return false;
    }
    on = keyval_get(kv, "enable");
    if (on && !strcmp(on, "on")) {
        cfg.enabled = true;
    } else if (!on || strcmp(on, "off") != 0) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "-sandbox %s: the first value must be 'on' or 'off' (usage: %s)",
                    optstr, SANDBOX_USAGE);
        return false;
    }
    if (!sandbox_parse_policy(kv, "obsolete", false, &cfg.obsolete, errp) ||
        !sandbox_parse_policy(kv, "elevateprivileges", true, &cfg.elevate, errp) ||
        !sandbox_parse_policy(kv, "spawn", false, &cfg.spawn, errp) ||
        !sandbox_parse_policy(kv, "resourcecontrol", false, &cfg.resourcecontrol, errp) ||
        !keyval_check_unused(kv, "-sandbox", errp)) {
        return false;
    }
#if !CONFIG_SECCOMP
    if (cfg.enabled) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "-sandbox on: this tpmvm was built without libseccomp; install "
                    "libseccomp-dev and rebuild, or drop -sandbox");
        return false;
    }
#endif
    sandbox_config = cfg;
    return true;
}

bool sandbox_enabled(void)
{
    return sandbox_config.enabled;
}

#if CONFIG_SECCOMP

static bool sandbox_applied; /* guarded like sandbox_config */

/*
 * The filter is a deny list over a default of "allow": a VM process needs
 * hundreds of calls (KVM ioctls, futexes, poll, file I/O on open fds) and a
 * deny list of the calls that turn a memory-safety bug into a host
 * compromise keeps working when GLib or glibc start using a new harmless
 * call. File access is confined by -runas/-chroot and permissions instead.
 */

/* Host-wide administration a VM never does, and seccomp bypasses. */
static const char *const sandbox_deny_always[] = {
    "reboot", "kexec_load", "kexec_file_load", "init_module", "finit_module",
    "delete_module", "mount", "umount2", "pivot_root", "chroot", "swapon", "swapoff",
    "acct", "syslog", "settimeofday", "clock_settime", "clock_adjtime", "adjtimex",
    "sethostname", "setdomainname", "iopl", "ioperm", "modify_ldt", "quotactl", "unshare",
    "setns", "bpf", "perf_event_open", "keyctl", "add_key", "request_key",
    "name_to_handle_at", "open_by_handle_at", "process_vm_readv", "process_vm_writev",
    "userfaultfd",
    /* io_uring can open files and sockets without a system call seccomp sees */
    "io_uring_setup", "io_uring_enter", "io_uring_register",
    /* new network sockets; accept() on an existing listener stays allowed */
    "socket"};

/* Calls that have been obsolete for years; nothing in a VM uses them. */
static const char *const sandbox_deny_obsolete[] = {
    "_sysctl",          "uselib",       "ustat",      "sysfs",       "create_module",
    "get_kernel_syms",  "query_module", "nfsservctl", "afs_syscall", "tuxcall",
    "security",         "getpmsg",      "putpmsg",    "vserver",     "lookup_dcookie",
    "remap_file_pages", "bdflush"};

static const char *const sandbox_deny_elevate[] = {
    "setuid",    "setgid",   "setreuid", "setregid",  "setresuid",
    "setresgid", "setfsuid", "setfsgid", "setgroups", "capset"};

static const char *const sandbox_deny_spawn[] = {"execve", "execveat", "fork", "vfork"};

/* Denied with EPERM, not killed: GLib and glibc try these and cope with a
 * refusal (a thread pool copying its creator's scheduling, for example). */
static const char *const sandbox_deny_resourcecontrol[] = {
    "setpriority", "sched_setparam", "sched_setscheduler", "sched_setattr",
    "sched_setaffinity"};

/*
 * Messages for trapped calls, built before the filter is loaded so that the
 * SIGSYS handler only has to find and write() one (async-signal-safe).
 */
typedef struct SandboxTrap {
    int nr;
    char *msg;
    size_t len;
} SandboxTrap;

#define SANDBOX_MAX_TRAPS 128
static SandboxTrap sandbox_traps[SANDBOX_MAX_TRAPS];
static int sandbox_ntraps;
static char *sandbox_unknown_prefix;

static void sandbox_write_all(const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(STDERR_FILENO, buf, len);

        if (n <= 0) {
            if (n < 0 && errno == EINTR) {
                continue;
            }
            return;
        }
        buf += n;
        len -= (size_t)n;
    }
}

/*
 * SIGSYS from SCMP_ACT_TRAP. Installed with SA_RESETHAND | SA_NODEFER, so
 * the raise() below meets the default action and the process dies of SIGSYS
 * exactly as with SCMP_ACT_KILL_PROCESS, after one readable line.
 */
static void sandbox_sigsys_handler(int sig, siginfo_t *info, void *uctx)
{
    int nr = info->si_syscall;
    int i;

    for (i = 0; i < sandbox_ntraps; i++) {
        if (sandbox_traps[i].nr == nr) {
            sandbox_write_all(sandbox_traps[i].msg, sandbox_traps[i].len);
            break;
        }
    }
    if (i == sandbox_ntraps) {
        char num[24];
        size_t pos = sizeof(num);
        unsigned int v = nr < 0 ? 0 : (unsigned int)nr;
        static const char tail[] = ") - killed\n";

        do {
            num[--pos] = (char)('0' + v % 10);
            v /= 10;
        } while (v && pos > 0);
        if (sandbox_unknown_prefix) {
            sandbox_write_all(sandbox_unknown_prefix, strlen(sandbox_unknown_prefix));
        }
        sandbox_write_all(num + pos, sizeof(num) - pos);
        sandbox_write_all(tail, sizeof(tail) - 1);
    }
    raise(SIGSYS);
    _exit(128 + SIGSYS);
}

static bool sandbox_add(scmp_filter_ctx ctx, uint32_t action, const char *name,
                        GError **errp)
{
    int nr = seccomp_syscall_resolve_name(name);
    int rc;

    if (nr == __NR_SCMP_ERROR || nr < 0) {
        return true; /* not a system call on this architecture */
    }
    rc = seccomp_rule_add(ctx, action, nr, 0);
    if (rc < 0) {
        error_set_errno(errp, -rc, "-sandbox on: could not add a rule for '%s'", name);
        return false;
    }
    if (action == SCMP_ACT_TRAP && sandbox_ntraps < SANDBOX_MAX_TRAPS) {
        SandboxTrap *t = &sandbox_traps[sandbox_ntraps++];

        t->nr = nr;
        t->msg = g_strdup_printf("%s: sandbox: forbidden system call %s (%d) - killed\n",
                                 log_prog_name(), name, nr);
        t->len = strlen(t->msg);
    }
    return true;
}

static bool sandbox_add_list(scmp_filter_ctx ctx, uint32_t action,
                             const char *const *names, size_t n, GError **errp)
{
    for (size_t i = 0; i < n; i++) {
        if (!sandbox_add(ctx, action, names[i], errp)) {
            return false;
        }
    }
    return true;
}

static bool sandbox_add_spawn_rules(scmp_filter_ctx ctx, GError **errp)
{
    /* A thread is a clone() with CLONE_THREAD; anything else is a new process. */
    uint64_t thread_mask = CLONE_THREAD;
    int nr = seccomp_syscall_resolve_name("clone");
    int rc;

#ifdef SANDBOX_UNDER_SANITIZER
    /* LeakSanitizer's tracer is a CLONE_VM | CLONE_UNTRACED task */
    thread_mask |= CLONE_UNTRACED;
#endif
    if (!sandbox_add_list(ctx, SCMP_ACT_TRAP, sandbox_deny_spawn,
                          G_N_ELEMENTS(sandbox_deny_spawn), errp)) {
        return false;
    }
    /* clone flags are the first argument on x86-64 and arm64 */
    rc = seccomp_rule_add(ctx, SCMP_ACT_TRAP, nr, 1,
                          SCMP_A0(SCMP_CMP_MASKED_EQ, thread_mask, 0));
    if (rc < 0) {
        error_set_errno(errp, -rc, "-sandbox on: could not add the rule for 'clone'");
        return false;
    }
    if (sandbox_ntraps < SANDBOX_MAX_TRAPS) {
        SandboxTrap *t = &sandbox_traps[sandbox_ntraps++];

        t->nr = nr;
        t->msg =
            g_strdup_printf("%s: sandbox: forbidden system call clone (%d) - killed\n",
                            log_prog_name(), nr);
        t->len = strlen(t->msg);
    }
    /*
     * clone3() passes its flags in memory, which a seccomp filter cannot
     * read. ENOSYS makes glibc fall back to clone(), which the rule above
     * can check.
     */
    nr = seccomp_syscall_resolve_name("clone3");
    if (nr >= 0) {
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), nr, 0);
        if (rc < 0) {
            error_set_errno(errp, -rc,
                            "-sandbox on: could not add the rule for 'clone3'");
            return false;
        }
    }
    return true;
}

static bool sandbox_build(scmp_filter_ctx ctx, const SandboxConfig *cfg, GError **errp)
{
    int rc;

    if (!sandbox_add_list(ctx, SCMP_ACT_TRAP, sandbox_deny_always,
                          G_N_ELEMENTS(sandbox_deny_always), errp)) {
        return false;
    }
#ifndef SANDBOX_UNDER_SANITIZER
    /* denied except in ASan builds: LeakSanitizer stops the world with ptrace */
    if (!sandbox_add(ctx, SCMP_ACT_TRAP, "ptrace", errp)) {
        return false;
    }
#endif
    if (cfg->obsolete == SANDBOX_DENY &&
        !sandbox_add_list(ctx, SCMP_ACT_TRAP, sandbox_deny_obsolete,
                          G_N_ELEMENTS(sandbox_deny_obsolete), errp)) {
        return false;
    }
    if (cfg->elevate == SANDBOX_DENY &&
        !sandbox_add_list(ctx, SCMP_ACT_TRAP, sandbox_deny_elevate,
                          G_N_ELEMENTS(sandbox_deny_elevate), errp)) {
        return false;
    }
    if (cfg->spawn == SANDBOX_DENY && !sandbox_add_spawn_rules(ctx, errp)) {
        return false;
    }
    if (cfg->resourcecontrol == SANDBOX_DENY &&
        !sandbox_add_list(ctx, SCMP_ACT_ERRNO(EPERM), sandbox_deny_resourcecontrol,
                          G_N_ELEMENTS(sandbox_deny_resourcecontrol), errp)) {
        return false;
    }
    /*
     * Replacing or ignoring the SIGSYS handler would let code that has
     * taken over the process survive its forbidden calls (they still fail,
     * but silently). Doing so kills at once, without the handler.
     */
    rc = seccomp_rule_add(ctx, SCMP_ACT_KILL_PROCESS, SCMP_SYS(rt_sigaction), 2,
                          SCMP_A0(SCMP_CMP_EQ, SIGSYS), SCMP_A1(SCMP_CMP_NE, 0));
    if (rc < 0) {
        error_set_errno(errp, -rc,
                        "-sandbox on: could not add the rule for 'rt_sigaction'");
        return false;
    }
    return true;
}

static bool sandbox_have_sys_admin(void)
{
    struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
    struct __user_cap_data_struct caps[_LINUX_CAPABILITY_U32S_3];

    memset(caps, 0, sizeof(caps));
    if (syscall(SYS_capget, &hdr, caps) < 0) {
        return false;
    }
    return (caps[CAP_SYS_ADMIN / 32].effective >> (CAP_SYS_ADMIN % 32)) & 1;
}

static void sandbox_forget_traps(void)
{
    for (int i = 0; i < sandbox_ntraps; i++) {
        g_free(sandbox_traps[i].msg);
    }
    sandbox_ntraps = 0;
}

bool sandbox_apply(GError **errp)
{
    scmp_filter_ctx ctx;
    struct sigaction sa, old_sa;
    unsigned int api = seccomp_api_get();
    /* a filter without no_new_privs needs CAP_SYS_ADMIN */
    bool nnp = sandbox_config.elevate != SANDBOX_ALLOW || !sandbox_have_sys_admin();
    int rc;

    if (!sandbox_config.enabled) {
        return true;
    }
    if (sandbox_applied) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "-sandbox on: the filter is already installed");
        return false;
    }
    if (api < 3) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "-sandbox on: libseccomp reports API level %u; level 3 (kernel 4.14 "
                    "and libseccomp 2.4 or newer) is needed to kill the whole process",
                    api);
        return false;
    }
    /*
     * GLib caches the passwd entry on first use; looking it up later could
     * need a socket to nscd or systemd-userdb, which the filter forbids.
     */
    (void)g_get_user_name();
    (void)g_get_home_dir();
    (void)g_get_tmp_dir();
    /*
     * Under systemd, GLib sends its messages to journald through a socket it
     * creates on the first message; create it now with a useful first line.
     */
    if (g_log_writer_is_journald(fileno(stderr))) {
        const GLogField fields[] = {
            {"MESSAGE", "sandbox: installing the seccomp filter", -1},
            {"PRIORITY", "6", -1},
            {"GLIB_DOMAIN", G_LOG_DOMAIN, -1},
        };

        g_log_writer_journald(G_LOG_LEVEL_INFO, fields, G_N_ELEMENTS(fields), NULL);
    }

    ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (!ctx) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "-sandbox on: could not create a seccomp filter (out of memory?)");
        return false;
    }
    /* int 0x80 (i386) and x32 calls would dodge a filter written for x86-64 */
    rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
    if (rc == 0) {
        /* all threads, including vCPU and TPM worker threads started earlier */
        rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
    }
    if (rc == 0) {
        /* report the kernel's errno, not libseccomp's ECANCELED */
        rc = seccomp_attr_set(ctx, SCMP_FLTATR_API_SYSRAWRC, 1);
    }
    if (rc == 0) {
        /* elevateprivileges=allow may exec setuid helpers; otherwise never */
        rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, nnp ? 1 : 0);
    }
    if (rc < 0) {
        error_set_errno(errp, -rc, "-sandbox on: could not set the filter attributes");
        seccomp_release(ctx);
        return false;
    }
    sandbox_unknown_prefix =
        g_strdup_printf("%s: sandbox: forbidden system call ? (", log_prog_name());
    if (!sandbox_build(ctx, &sandbox_config, errp)) {
        seccomp_release(ctx);
        sandbox_forget_traps();
        return false;
    }

    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = sandbox_sigsys_handler;
    sa.sa_flags = SA_SIGINFO | SA_RESETHAND | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSYS, &sa, &old_sa) < 0) {
        error_set_errno(errp, errno, "-sandbox on: could not install the SIGSYS handler");
        seccomp_release(ctx);
        sandbox_forget_traps();
        return false;
    }

    rc = seccomp_load(ctx);
    seccomp_release(ctx);
    if (rc < 0) {
        sigaction(SIGSYS, &old_sa, NULL);
        sandbox_forget_traps();
        error_set_errno(errp, -rc, "-sandbox on: could not install the seccomp filter%s",
                        rc == -ESRCH ? " on every thread" : "");
        return false;
    }
    sandbox_applied = true;
    return true;
}

#else /* !CONFIG_SECCOMP */

bool sandbox_apply(GError **errp)
{
    if (!sandbox_config.enabled) {
        return true;
    }
    g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                "-sandbox on: this tpmvm was built without libseccomp");
    return false;
}

#endif /* CONFIG_SECCOMP */

static bool parse_id(const char *s, guint64 max, guint64 *out)
{
    return g_ascii_string_to_unsigned(s, 10, 0, max, out, NULL);
}

static void runas_free(RunasConfig *r)
{
    if (r) {
        g_free(r->spec);
        if (r->groups) {
            g_array_unref(r->groups);
        }
        g_free(r);
    }
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(RunasConfig, runas_free)

static bool runas_lookup_group(const char *spec, const char *group, gid_t *out,
                               GError **errp)
{
    struct group *gr = getgrnam(group);
    guint64 n;

    if (gr) {
        *out = gr->gr_gid;
        return true;
    }
    if (parse_id(group, G_MAXUINT32 - 1, &n)) {
        *out = (gid_t)n;
        return true;
    }
    g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                "-runas %s: no group '%s' (give a group name or number)", spec, group);
    return false;
}

bool os_set_runas(const char *spec, GError **errp)
{
    g_autoptr(RunasConfig) r = g_new0(RunasConfig, 1);
    g_auto(GStrv) parts = g_strsplit(spec ? spec : "", ":", 2);
    const char *user = parts[0] ? parts[0] : "";
    const char *group = parts[0] ? parts[1] : NULL;
    struct passwd *pw;
    g_autofree char *name = NULL;
    guint64 n;

    r->spec = g_strdup(spec ? spec : "");
    r->groups = g_array_new(FALSE, FALSE, sizeof(gid_t));
    if (!*user || (group && !*group)) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "-runas '%s': expected USER or USER:GROUP", r->spec);
        return false;
    }
    pw = getpwnam(user);
    if (!pw && parse_id(user, G_MAXUINT32 - 1, &n)) {
        pw = getpwuid((uid_t)n);
        r->uid = (uid_t)n;
    } else if (!pw) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "-runas %s: no user '%s' (give a user name or number)", r->spec,
                    user);
        return false;
    }
    if (pw) {
        r->uid = pw->pw_uid;
        r->gid = pw->pw_gid;
        name = g_strdup(pw->pw_name);
    }
    if (r->uid == 0) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "-runas %s: that is uid 0 (root); name an unprivileged user",
                    r->spec);
        return false;
    }
    if (group) {
        if (!runas_lookup_group(r->spec, group, &r->gid, errp)) {
            return false;
        }
        /* an explicit group replaces the user's supplementary groups */
        g_array_append_val(r->groups, r->gid);
    } else if (!name) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "-runas %s: uid %s has no passwd entry; give its group as "
                    "-runas UID:GID",
                    r->spec, user);
        return false;
    } else {
        /* resolved now: /etc/group may be out of reach after -chroot */
        int ngroups = 16;

        for (;;) {
            int got = ngroups;

            g_array_set_size(r->groups, (guint)ngroups);
            if (getgrouplist(name, r->gid, (gid_t *)(void *)r->groups->data, &got) >= 0) {
                g_array_set_size(r->groups, (guint)got);
                break;
            }
            if (got <= ngroups || got > 65536) {
                g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                            "-runas %s: could not list the groups of user '%s'", r->spec,
                            name);
                return false;
            }
            ngroups = got;
        }
    }
    runas_free(runas_config);
    runas_config = g_steal_pointer(&r);
    return true;
}

bool os_set_chroot(const char *dir, GError **errp)
{
    struct stat st;

    if (!dir || !*dir) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "-chroot: expected a directory");
        return false;
    }
    if (stat(dir, &st) < 0) {
        error_set_errno(errp, errno, "-chroot %s: cannot use this directory", dir);
        return false;
    }
    if (!S_ISDIR(st.st_mode)) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC, "-chroot %s: not a directory",
                    dir);
        return false;
    }
    g_free(chroot_dir);
    chroot_dir = g_strdup(dir);
    return true;
}

/* After setresuid() away from 0 the kernel clears every capability set; check. */
static bool runas_verify(const RunasConfig *r, GError **errp)
{
    struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
    struct __user_cap_data_struct caps[_LINUX_CAPABILITY_U32S_3];
    uid_t ru, eu, su;
    gid_t rg, eg, sg;

    if (getresuid(&ru, &eu, &su) < 0 || getresgid(&rg, &eg, &sg) < 0 || ru != r->uid ||
        eu != r->uid || su != r->uid || rg != r->gid || eg != r->gid || sg != r->gid) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_PERMISSION,
                    "-runas %s: the user and group ids did not all change", r->spec);
        return false;
    }
    if (setuid(0) == 0 || seteuid(0) == 0) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_PERMISSION,
                    "-runas %s: root could be regained after dropping it", r->spec);
        return false;
    }
    memset(caps, 0, sizeof(caps));
    if (syscall(SYS_capget, &hdr, caps) < 0) {
        error_set_errno(errp, errno, "-runas %s: could not read the capabilities",
                        r->spec);
        return false;
    }
    for (size_t i = 0; i < G_N_ELEMENTS(caps); i++) {
        if (caps[i].effective || caps[i].permitted) {
            g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_PERMISSION,
                        "-runas %s: capabilities remain after dropping root", r->spec);
            return false;
        }
    }
    return true;
}

bool os_apply_runas_chroot(GError **errp)
{
    RunasConfig *r = runas_config;

    if (chroot_dir) {
        if (chroot(chroot_dir) < 0) {
            error_set_errno(errp, errno,
                            "-chroot %s: chroot failed (it needs root or "
                            "CAP_SYS_CHROOT)",
                            chroot_dir);
            return false;
        }
        if (chdir("/") < 0) {
            error_set_errno(errp, errno, "-chroot %s: cannot enter the new root",
                            chroot_dir);
            return false;
        }
        if (!r && geteuid() == 0) {
            warn_report("-chroot %s without -runas: a process running as root can "
                        "leave a chroot; add -runas USER",
                        chroot_dir);
        }
    }
    if (!r) {
        return true;
    }
    /* groups first: once the uid is gone, so is the right to change them */
    if (setgroups(r->groups->len, (const gid_t *)(const void *)r->groups->data) < 0) {
        error_set_errno(errp, errno,
                        "-runas %s: setgroups failed (tpmvm must start as root)",
                        r->spec);
        return false;
    }
    if (setresgid(r->gid, r->gid, r->gid) < 0) {
        error_set_errno(errp, errno, "-runas %s: setresgid(%u) failed", r->spec,
                        (unsigned int)r->gid);
        return false;
    }
    if (setresuid(r->uid, r->uid, r->uid) < 0) {
        error_set_errno(errp, errno, "-runas %s: setresuid(%u) failed", r->spec,
                        (unsigned int)r->uid);
        return false;
    }
    return runas_verify(r, errp);
}
