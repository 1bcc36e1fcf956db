/*
 * Process hardening applied once start-up is over: a seccomp filter
 * (-sandbox), dropping root (-runas) and confining the file system view
 * (-chroot). See docs/security.md for what each covers.
 *
 * Order at start-up (system/vl.c):
 *   1. parse: sandbox_parse(), os_set_runas(), os_set_chroot() while reading
 *      the command line (names are resolved here, while /etc is reachable);
 *   2. open everything: drives (the TPM drive too), secrets, /dev/kvm, the VM
 *      and vCPU fds, listening sockets, start the TPM (libtpms and OpenSSL
 *      load their configuration on first use);
 *   3. os_apply_runas_chroot()  - needs the privileges it gives up;
 *   4. sandbox_apply()          - last: it forbids setuid() and chroot().
 * Files opened after step 3 resolve inside the chroot with the new user's
 * rights; sockets cannot be created after step 4 (accept() still works).
 */
#ifndef SYSTEM_SANDBOX_H
#define SYSTEM_SANDBOX_H

#include <stdbool.h>
#include <glib.h>

/*
 * Parse the -sandbox argument
 * "on|off[,obsolete=deny|allow][,elevateprivileges=deny|allow|children]
 *  [,spawn=deny|allow][,resourcecontrol=deny|allow]" and remember it for
 * sandbox_apply(). Every group defaults to deny. "on" fails when tpmvm was
 * built without libseccomp.
 */
bool sandbox_parse(const char *optstr, GError **errp);

/* True when the last sandbox_parse() asked for "on". */
bool sandbox_enabled(void);

/*
 * Install the seccomp filter chosen by sandbox_parse() on every thread of
 * the process (no-op when the sandbox is off). A forbidden system call
 * prints "tpmvm: sandbox: forbidden system call NAME (NR) - killed" and the
 * process dies of SIGSYS. Call once, after all files and sockets are open.
 */
bool sandbox_apply(GError **errp);

/*
 * Remember -runas USER[:GROUP] (names or numbers). The user and its
 * supplementary groups are looked up now; uid 0 is refused.
 */
bool os_set_runas(const char *spec, GError **errp);

/* Remember -chroot DIR (must be an existing directory). */
bool os_set_chroot(const char *dir, GError **errp);

/*
 * chroot(DIR) + chdir("/"), then drop to the -runas user (groups, gid, uid)
 * and verify that neither root nor any capability can be regained. No-op
 * when neither option was given.
 */
bool os_apply_runas_chroot(GError **errp);

#endif
