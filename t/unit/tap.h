
/*
 * Copyright (C) ngx_registry_module authors
 */


/* TAP output for the unit tests: one "ok" line a check, counted */

#include <stdio.h>


static int  tests;
static int  failed;


static void
ok(int cond, const char *what, const char *input)
{
    tests++;

    if (!cond) {
        failed++;
    }

    printf("%sok %d - %s \"%s\"\n", cond ? "" : "not ", tests, what, input);
}
