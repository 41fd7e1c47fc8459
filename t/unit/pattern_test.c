
/*
 * Copyright (C) ngx_registry_module authors
 *
 * Unit tests for the allow and block lists' patterns, compiled without
 * the rest of nginx (t/pattern.t builds and runs this): their lines, their
 * grammar, the matcher on its edges, then a bounded fuzz loop that holds
 * the matcher to a plain recursive one.  Prints TAP.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_http_registry_pattern.h"
#include "tap.h"


static void
check_line(const char *s, ngx_int_t want, const char *pattern)
{
    ngx_int_t  rc;
    ngx_str_t  got;

    rc = ngx_http_registry_pattern_line((u_char *) s, strlen(s), &got);

    ok(rc == want && got.len == strlen(pattern)
       && ngx_strncmp(got.data, pattern, got.len) == 0,
       want == NGX_OK ? "line holds a pattern"
       : want == NGX_DONE ? "line holds none" : "line refused", s);
}


static void
check_valid(const char *s, ngx_int_t want)
{
    ok(ngx_http_registry_pattern_valid((u_char *) s, strlen(s)) == want,
       want == NGX_OK ? "valid pattern" : "invalid pattern", s);
}


static void
check_match(const char *pattern, const char *name, ngx_int_t want)
{
    char  what[600];

    snprintf(what, sizeof(what), "%s %s", pattern,
             want == NGX_OK ? "matches" : "does not match");

    ok(ngx_http_registry_pattern_match((u_char *) pattern, strlen(pattern),
                                       (u_char *) name, strlen(name))
       == want, what, name);
}


/* the reference: the definition, recursively, on NUL-terminated strings */

static int
ref_segment(const char *p, const char *pe, const char *n, const char *ne)
{
    if (p == pe) {
        return n == ne;
    }

    if (*p == '*') {
        return ref_segment(p + 1, pe, n, ne)
               || (n < ne && ref_segment(p, pe, n + 1, ne));
    }

    return n < ne && *p == *n && ref_segment(p + 1, pe, n + 1, ne);
}


static const char *
seg_end(const char *p)
{
    const char  *s;

    s = strchr(p, '/');

    return s ? s : p + strlen(p);
}


static int
ref_match(const char *p, const char *n)
{
    const char  *pe, *ne, *next;

    if (*p == '\0') {
        return *n == '\0';
    }

    pe = seg_end(p);
    next = *pe ? pe + 1 : pe;

    if (pe - p == 2 && p[0] == '*' && p[1] == '*') {

        /* none, or one segment and "**" again */

        if (ref_match(next, n)) {
            return 1;
        }

        if (*n == '\0') {
            return 0;
        }

        ne = seg_end(n);

        return ref_match(p, *ne ? ne + 1 : ne);
    }

    if (*n == '\0') {
        return 0;
    }

    ne = seg_end(n);

    return ref_segment(p, pe, n, ne) && ref_match(next, *ne ? ne + 1 : ne);
}


static void
fuzz(unsigned iterations)
{
    static const char  *pseg[] = { "a", "b", "ab", "*", "a*", "*b", "a*b",
                                   "**", "*a*" };
    static const char  *nseg[] = { "a", "b", "ab", "ba", "aab", "abb" };

    char       p[256], n[256];
    size_t     pl, nl;
    unsigned   i, k, segs, bad;
    ngx_int_t  got;

    bad = 0;
    srand(13);

    for (i = 0; i < iterations; i++) {
        pl = 0;
        segs = 1 + rand() % 5;

        for (k = 0; k < segs; k++) {
            pl += sprintf(p + pl, "%s%s", k ? "/" : "",
                          pseg[rand() % (sizeof(pseg) / sizeof(pseg[0]))]);
        }

        nl = 0;
        segs = 1 + rand() % 6;

        for (k = 0; k < segs; k++) {
            nl += sprintf(n + nl, "%s%s", k ? "/" : "",
                          nseg[rand() % (sizeof(nseg) / sizeof(nseg[0]))]);
        }

        if (ngx_http_registry_pattern_valid((u_char *) p, pl) != NGX_OK) {
            bad++;
            printf("# fuzz: \"%s\" taken for invalid\n", p);
            continue;
        }

        got = ngx_http_registry_pattern_match((u_char *) p, pl,
                                              (u_char *) n, nl);

        if ((got == NGX_OK) != ref_match(p, n)) {
            bad++;
            printf("# fuzz: \"%s\" against \"%s\": %s\n", p, n,
                   got == NGX_OK ? "matched" : "did not match");
        }
    }

    tests++;
    failed += bad != 0;
    printf("%sok %d - fuzz: %u patterns and names, %u differ from the "
           "definition\n", bad ? "not " : "", tests, iterations, bad);
}


int
main(int argc, char **argv)
{
    ngx_str_t    list[3];
    ngx_array_t  a;
    char         big[NGX_HTTP_REGISTRY_PATTERN_MAX + 2];
    char         name[300];
    unsigned     i;

    setvbuf(stdout, NULL, _IOLBF, 0);

    /* lines */

    check_line("library/nginx", NGX_OK, "library/nginx");
    check_line("  \tteam/**  \r", NGX_OK, "team/**");
    check_line("library/* # official images", NGX_OK, "library/*");
    check_line("# a comment", NGX_DONE, "");
    check_line("   # indented comment", NGX_DONE, "");
    check_line("", NGX_DONE, "");
    check_line(" \t\r", NGX_DONE, "");
    check_line("a b", NGX_DECLINED, "a b");
    check_line("Library/nginx", NGX_DECLINED, "Library/nginx");

    /* the grammar */

    check_valid("nginx", NGX_OK);
    check_valid("library/nginx", NGX_OK);
    check_valid("a.b_c__d-e/f", NGX_OK);
    check_valid("library/*", NGX_OK);
    check_valid("team/**", NGX_OK);
    check_valid("**/base", NGX_OK);
    check_valid("**", NGX_OK);
    check_valid("*", NGX_OK);
    check_valid("a/**/b", NGX_OK);
    check_valid("**/**", NGX_OK);
    check_valid("*-dev/*a*b*", NGX_OK);
    check_valid("", NGX_DECLINED);
    check_valid("***", NGX_DECLINED);
    check_valid("a**", NGX_DECLINED);
    check_valid("**a", NGX_DECLINED);
    check_valid("a/b**/c", NGX_DECLINED);
    check_valid("a//b", NGX_DECLINED);
    check_valid("/a", NGX_DECLINED);
    check_valid("a/", NGX_DECLINED);
    check_valid("/", NGX_DECLINED);
    check_valid("A", NGX_DECLINED);
    check_valid("a b", NGX_DECLINED);
    check_valid("a?", NGX_DECLINED);
    check_valid("a[bc]", NGX_DECLINED);
    check_valid("a:b", NGX_DECLINED);
    check_valid("a\\b", NGX_DECLINED);
    check_valid("a%2fb", NGX_DECLINED);

    memset(big, 'a', sizeof(big));
    big[NGX_HTTP_REGISTRY_PATTERN_MAX] = '\0';
    check_valid(big, NGX_OK);
    big[NGX_HTTP_REGISTRY_PATTERN_MAX] = 'a';
    big[NGX_HTTP_REGISTRY_PATTERN_MAX + 1] = '\0';
    check_valid(big, NGX_DECLINED);

    /* exact names */

    check_match("library/nginx", "library/nginx", NGX_OK);
    check_match("library/nginx", "library/nginx2", NGX_DECLINED);
    check_match("library/nginx", "library/ngin", NGX_DECLINED);
    check_match("library/nginx", "library", NGX_DECLINED);
    check_match("library/nginx", "library/nginx/x", NGX_DECLINED);
    check_match("nginx", "library/nginx", NGX_DECLINED);

    /* "*" within one segment, never across "/" */

    check_match("library/*", "library/nginx", NGX_OK);
    check_match("library/*", "library/nginx/sub", NGX_DECLINED);
    check_match("library/*", "library", NGX_DECLINED);
    check_match("*", "nginx", NGX_OK);
    check_match("*", "a/b", NGX_DECLINED);
    check_match("a*", "a", NGX_OK);
    check_match("a*", "abc", NGX_OK);
    check_match("a*", "ba", NGX_DECLINED);
    check_match("*-dev", "app-dev", NGX_OK);
    check_match("*-dev", "app-dev/x", NGX_DECLINED);
    check_match("a*c", "a/c", NGX_DECLINED);
    check_match("a*c", "abbbc", NGX_OK);
    check_match("*a*b*", "xxaxxbxx", NGX_OK);
    check_match("*a*b*", "xxbxxaxx", NGX_DECLINED);
    check_match("team/*/app", "team/x/app", NGX_OK);
    check_match("team/*/app", "team/x/y/app", NGX_DECLINED);
    check_match("team/*/app", "team/app", NGX_DECLINED);

    /* "**": zero or more whole segments */

    check_match("team/**", "team", NGX_OK);
    check_match("team/**", "team/a", NGX_OK);
    check_match("team/**", "team/a/b/c", NGX_OK);
    check_match("team/**", "teams/a", NGX_DECLINED);
    check_match("team/**", "other/team/a", NGX_DECLINED);
    check_match("**/base", "base", NGX_OK);
    check_match("**/base", "a/base", NGX_OK);
    check_match("**/base", "a/b/c/base", NGX_OK);
    check_match("**/base", "a/base/x", NGX_DECLINED);
    check_match("**/base", "a/database", NGX_DECLINED);
    check_match("a/**/b", "a/b", NGX_OK);
    check_match("a/**/b", "a/x/y/b", NGX_OK);
    check_match("a/**/b", "a/x/y/b/c", NGX_DECLINED);
    check_match("a/**/b", "a/b/b", NGX_OK);
    check_match("**", "x", NGX_OK);
    check_match("**", "x/y/z", NGX_OK);
    check_match("**/**", "x", NGX_OK);
    check_match("**/*", "x/y", NGX_OK);
    check_match("**/*/*", "x", NGX_DECLINED);
    check_match("**/a/**/b/**", "x/a/y/a/b", NGX_OK);
    check_match("**/a/**/b/**", "x/b/y/a", NGX_DECLINED);
    check_match("library/**/*-alpine", "library/x/node-alpine", NGX_OK);

    /* a list: any pattern of it */

    list[0].data = (u_char *) "library/*";
    list[0].len = sizeof("library/*") - 1;
    list[1].data = (u_char *) "team/**";
    list[1].len = sizeof("team/**") - 1;
    list[2].data = (u_char *) "**/base";
    list[2].len = sizeof("**/base") - 1;

    a.elts = list;
    a.nelts = 3;

    ok(ngx_http_registry_pattern_find(&a, (u_char *) "team/x/y", 8)
       == NGX_OK, "a list matches by any pattern", "team/x/y");
    ok(ngx_http_registry_pattern_find(&a, (u_char *) "other/x", 7)
       == NGX_DECLINED, "a list matches by none", "other/x");
    a.nelts = 0;
    ok(ngx_http_registry_pattern_find(&a, (u_char *) "team", 4)
       == NGX_DECLINED, "an empty list matches nothing", "team");

    /* many "**" against a long name that fails at its end: still quick */

    big[0] = '\0';

    for (i = 0; i < 60; i++) {
        strcat(big, "**/");
    }

    strcat(big, "z");

    name[0] = '\0';

    for (i = 0; i < 127; i++) {
        strcat(name, i ? "/a" : "a");
    }

    check_valid(big, NGX_OK);
    check_match(big, name, NGX_DECLINED);

    fuzz(argc > 1 ? (unsigned) atoi(argv[1]) : 200000);

    printf("1..%d\n", tests);

    return failed ? 1 : 0;
}
