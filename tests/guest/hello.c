/*
 * Smallest guest: prints a line and its command line, exits with status 1
 * (debug-exit value 0). Used to check long-mode entry, serial and exit.
 */
#include "guest.h"

void guest_main(const void *zero_page);

void guest_main(const void *zero_page)
{
    guest_set_boot_params(zero_page);
    guest_printf("hello from the tpmvm test guest\n");
    guest_printf("cmdline: '%s'\n", guest_cmdline());
    guest_exit(GUEST_EXIT_PASS);
}
