
/*
 * Copyright (C) ngx_registry_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_http_registry_pattern.h"


#define ngx_http_registry_pattern_char(c)                                     \
    (((c) >= 'a' && (c) <= 'z') || ((c) >= '0' && (c) <= '9')                 \
     || (c) == '.' || (c) == '_' || (c) == '-' || (c) == '*')

#define ngx_http_registry_globstar(p, end)                                    \
    ((end) - (p) == 2 && (p)[0] == '*' && (p)[1] == '*')


static u_char *ngx_http_registry_segment_end(u_char *p, u_char *last);
static ngx_uint_t ngx_http_registry_segment_match(u_char *p, u_char *pe,
    u_char *n, u_char *ne);


/*
 * One line of a list file: what comes before a "#", without surrounding
 * blanks.  NGX_DONE for a line with no pattern (blank, a comment),
 * NGX_DECLINED for one that is not a pattern; the pattern is set either
 * way, for the error message.
 */

ngx_int_t
ngx_http_registry_pattern_line(u_char *p, size_t len, ngx_str_t *pattern)
{
    u_char  *last, *hash;

    last = p + len;

    hash = ngx_strlchr(p, last, '#');
    if (hash) {
        last = hash;
    }

    while (p < last && (*p == ' ' || *p == '\t' || *p == '\r')) {
        p++;
    }

    while (last > p
           && (last[-1] == ' ' || last[-1] == '\t' || last[-1] == '\r'))
    {
        last--;
    }

    pattern->data = p;
    pattern->len = last - p;

    if (pattern->len == 0) {
        return NGX_DONE;
    }

    return ngx_http_registry_pattern_valid(p, pattern->len);
}


/*
 * Segments of [a-z0-9._-] and "*", none empty; "**" only as a whole
 * segment: "a**", "***" are refused rather than guessed at.
 */

ngx_int_t
ngx_http_registry_pattern_valid(u_char *p, size_t len)
{
    u_char  *last, *end, *c;

    if (len == 0 || len > NGX_HTTP_REGISTRY_PATTERN_MAX) {
        return NGX_DECLINED;
    }

    last = p + len;

    for ( ;; ) {
        end = ngx_http_registry_segment_end(p, last);

        if (end == p) {
            return NGX_DECLINED;
        }

        if (!ngx_http_registry_globstar(p, end)) {
            for (c = p; c < end; c++) {
                if (!ngx_http_registry_pattern_char(*c)
                    || (*c == '*' && c + 1 < end && c[1] == '*'))
                {
                    return NGX_DECLINED;
                }
            }
        }

        if (end == last) {
            return NGX_OK;
        }

        p = end + 1;
    }
}


/*
 * Matches a repository name segment by segment.  A "**" remembers where
 * it stands, and only the last one is ever returned to, one more name
 * segment each time: the classic wildcard walk, linear in the name for
 * each pattern segment, however many "**" a pattern has.
 */

ngx_int_t
ngx_http_registry_pattern_match(u_char *p, size_t len, u_char *name,
    size_t name_len)
{
    u_char  *pe, *ne, *n, *pend, *nend, *star_p, *star_n;

    pe = p + len;
    n = name;
    ne = name + name_len;

    star_p = NULL;
    star_n = NULL;

    while (n < ne) {

        if (p < pe) {
            pend = ngx_http_registry_segment_end(p, pe);

            if (ngx_http_registry_globstar(p, pend)) {
                p = (pend < pe) ? pend + 1 : pe;
                star_p = p;
                star_n = n;
                continue;
            }

            nend = ngx_http_registry_segment_end(n, ne);

            if (ngx_http_registry_segment_match(p, pend, n, nend)) {
                p = (pend < pe) ? pend + 1 : pe;
                n = (nend < ne) ? nend + 1 : ne;
                continue;
            }
        }

        if (star_p == NULL) {
            return NGX_DECLINED;
        }

        /* the last "**" takes one more segment */

        nend = ngx_http_registry_segment_end(star_n, ne);
        star_n = (nend < ne) ? nend + 1 : ne;

        p = star_p;
        n = star_n;
    }

    /* the name is used up: what is left must be "**" */

    while (p < pe) {
        pend = ngx_http_registry_segment_end(p, pe);

        if (!ngx_http_registry_globstar(p, pend)) {
            return NGX_DECLINED;
        }

        p = (pend < pe) ? pend + 1 : pe;
    }

    return NGX_OK;
}


/* NGX_OK when a pattern of the list (ngx_str_t) matches the name */

ngx_int_t
ngx_http_registry_pattern_find(ngx_array_t *list, u_char *name, size_t len)
{
    ngx_str_t   *pattern;
    ngx_uint_t   i;

    pattern = list->elts;

    for (i = 0; i < list->nelts; i++) {
        if (ngx_http_registry_pattern_match(pattern[i].data, pattern[i].len,
                                            name, len)
            == NGX_OK)
        {
            return NGX_OK;
        }
    }

    return NGX_DECLINED;
}


static u_char *
ngx_http_registry_segment_end(u_char *p, u_char *last)
{
    u_char  *slash;

    slash = ngx_strlchr(p, last, '/');

    return slash ? slash : last;
}


/* "*" within one segment: the same walk, on characters */

static ngx_uint_t
ngx_http_registry_segment_match(u_char *p, u_char *pe, u_char *n,
    u_char *ne)
{
    u_char  *star_p, *star_n;

    star_p = NULL;
    star_n = NULL;

    while (n < ne) {

        if (p < pe && *p == '*') {
            star_p = ++p;
            star_n = n;
            continue;
        }

        if (p < pe && *p == *n) {
            p++;
            n++;
            continue;
        }

        if (star_p == NULL) {
            return 0;
        }

        p = star_p;
        n = ++star_n;
    }

    while (p < pe && *p == '*') {
        p++;
    }

    return p == pe;
}


/*
 * A repository name an allow list (NULL: any) and a block list (NULL:
 * none) let through: NGX_OK; NGX_DECLINED when refused.  The block list
 * wins.
 */

ngx_int_t
ngx_http_registry_pattern_listed(ngx_array_t *allow, ngx_array_t *block,
    u_char *name, size_t len)
{
    if (block && ngx_http_registry_pattern_find(block, name, len) == NGX_OK) {
        return NGX_DECLINED;
    }

    if (allow && ngx_http_registry_pattern_find(allow, name, len) != NGX_OK) {
        return NGX_DECLINED;
    }

    return NGX_OK;
}
