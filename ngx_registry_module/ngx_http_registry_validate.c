
/*
 * Copyright (C) ngx_registry_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_http_registry_validate.h"


#define ngx_http_registry_alnum_lc(c)                                         \
    (((c) >= 'a' && (c) <= 'z') || ((c) >= '0' && (c) <= '9'))

#define ngx_http_registry_alnum(c)                                            \
    (ngx_http_registry_alnum_lc(c) || ((c) >= 'A' && (c) <= 'Z'))

#define ngx_http_registry_hex_lc(c)                                           \
    (((c) >= 'a' && (c) <= 'f') || ((c) >= '0' && (c) <= '9'))


/*
 * One path component of a repository name:
 * [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*
 */

ngx_int_t
ngx_http_registry_valid_component(u_char *p, size_t len)
{
    u_char  *last, *sep;

    if (len == 0) {
        return NGX_DECLINED;
    }

    last = p + len;

    for ( ;; ) {

        /* a run of lower-case letters and digits */

        if (p == last || !ngx_http_registry_alnum_lc(*p)) {
            return NGX_DECLINED;
        }

        while (p < last && ngx_http_registry_alnum_lc(*p)) {
            p++;
        }

        if (p == last) {
            return NGX_OK;
        }

        /* a separator: ".", "_", "__" or "-"+ */

        sep = p;

        switch (*p) {

        case '.':
            p++;
            break;

        case '_':
            p++;
            if (p < last && *p == '_') {
                p++;
            }
            break;

        case '-':
            while (p < last && *p == '-') {
                p++;
            }
            break;

        default:
            return NGX_DECLINED;
        }

        if (p == sep) {
            return NGX_DECLINED;
        }
    }
}


/* [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127} */

ngx_int_t
ngx_http_registry_valid_tag(u_char *p, size_t len)
{
    size_t  i;

    if (len == 0 || len > NGX_HTTP_REGISTRY_TAG_MAX) {
        return NGX_DECLINED;
    }

    if (!ngx_http_registry_alnum(p[0]) && p[0] != '_') {
        return NGX_DECLINED;
    }

    for (i = 1; i < len; i++) {
        if (!ngx_http_registry_alnum(p[i])
            && p[i] != '_' && p[i] != '.' && p[i] != '-')
        {
            return NGX_DECLINED;
        }
    }

    return NGX_OK;
}


/*
 * "sha256:" and 64 lower-case hex digits, or "sha512:" and 128.  Other
 * algorithms are refused: the mirror cannot verify what it cannot hash.
 */

ngx_int_t
ngx_http_registry_valid_digest(u_char *p, size_t len)
{
    size_t  i, hex;

    if (len > 7 && ngx_strncmp(p, "sha256:", 7) == 0) {
        hex = 64;
        p += 7;
        len -= 7;

    } else if (len > 7 && ngx_strncmp(p, "sha512:", 7) == 0) {
        hex = 128;
        p += 7;
        len -= 7;

    } else {
        return NGX_DECLINED;
    }

    if (len != hex) {
        return NGX_DECLINED;
    }

    for (i = 0; i < len; i++) {
        if (!ngx_http_registry_hex_lc(p[i])) {
            return NGX_DECLINED;
        }
    }

    return NGX_OK;
}


/*
 * A registry host as clients write it in a path prefix or in "ns":
 * dot-separated labels of letters, digits and inner hyphens, then an
 * optional ":port".
 */

ngx_int_t
ngx_http_registry_valid_host(u_char *p, size_t len)
{
    u_char  *last, *label;

    if (len == 0 || len > 255) {
        return NGX_DECLINED;
    }

    last = p + len;
    label = p;

    for ( ; p < last; p++) {

        if (ngx_http_registry_alnum(*p)) {
            continue;
        }

        if (*p == '-' && p != label && p + 1 < last && p[1] != '.'
            && p[1] != ':')
        {
            continue;
        }

        if (*p == '.' && p != label && p + 1 < last) {
            label = p + 1;
            continue;
        }

        if (*p == ':' && p != label) {
            break;
        }

        return NGX_DECLINED;
    }

    if (p == last) {
        return NGX_OK;
    }

    /* the port */

    p++;

    if (p == last || last - p > 5) {
        return NGX_DECLINED;
    }

    while (p < last) {
        if (*p < '0' || *p > '9') {
            return NGX_DECLINED;
        }
        p++;
    }

    return NGX_OK;
}


/*
 * Clients put a registry in front of the name as its first path segment;
 * like docker's reference parser, a segment is a host when it has a dot or
 * a colon, or is "localhost".
 */

ngx_int_t
ngx_http_registry_host_like(u_char *p, size_t len)
{
    if (len == 9 && ngx_strncmp(p, "localhost", 9) == 0) {
        return NGX_OK;
    }

    if (ngx_strlchr(p, p + len, '.') || ngx_strlchr(p, p + len, ':')) {
        return NGX_OK;
    }

    return NGX_DECLINED;
}
