/*
 * tpmvm entry point; the command line lives in system/vl.c.
 */
#include <stdio.h>

#include "config-host.h"

int main(int argc, char **argv)
{
    printf("tpmvm version %s\n", TPMVM_VERSION);
    return 0;
}
