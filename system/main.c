/*
 * tpmvm entry point; the command line lives in system/vl.c.
 */
#include "system/system.h"

int main(int argc, char **argv)
{
    return tpmvm_main(argc, argv);
}
