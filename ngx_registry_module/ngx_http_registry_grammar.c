
/*
 * Copyright (C) ngx_registry_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_http_registry_grammar.h"


#define ngx_http_registry_alnum_lc(c)                                         \
    (((c) >= 'a' && (c) <= 'z') || ((c) >= '0' && (c) <= '9'))

#define ngx_http_registry_alnum(c)                                            \
    (ngx_http_registry_alnum_lc(c) || ((c) >= 'A' && (c) <= 'Z'))

#define ngx_http_registry_hex_lc(c)                                           \
    (((c) >= 'a' && (c) <= 'f') || ((c) >= '0' && (c) <= '9'))


/* a 255-byte name has at most 128 components; room for the rest */
#define NGX_HTTP_REGISTRY_SEGMENTS_MAX  136


#define ngx_http_registry_seg_is(s, lit)                                      \
    ((s)->len == sizeof(lit) - 1                                              \
     && ngx_strncmp((s)->data, lit, sizeof(lit) - 1) == 0)


static ngx_int_t ngx_http_registry_fail(ngx_http_registry_error_t *err,
    ngx_uint_t status, char *code, char *message);
static ngx_int_t ngx_http_registry_valid_name(ngx_str_t *seg, ngx_uint_t n,
    ngx_http_registry_path_t *path, ngx_http_registry_error_t *err);
static ngx_int_t ngx_http_registry_valid_media_type(u_char *p, size_t len);


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


/*
 * Parses the raw request path (r->unparsed_uri before "?").  nginx has
 * already decoded and merged r->uri, so "%2F", "//" and ".." are only
 * visible here; none of them can appear in a valid path, and nothing is
 * decoded: every byte must belong to the grammar as sent.
 */

ngx_int_t
ngx_http_registry_parse_path(u_char *p, size_t len,
    ngx_http_registry_path_t *path, ngx_http_registry_error_t *err)
{
    u_char      *last, *start;
    ngx_str_t    seg[NGX_HTTP_REGISTRY_SEGMENTS_MAX], *ref;
    ngx_uint_t   n, names;

    ngx_memzero(path, sizeof(ngx_http_registry_path_t));

    if (len < 3 || ngx_strncmp(p, "/v2", 3) != 0
        || (len > 3 && p[3] != '/'))
    {
        return ngx_http_registry_fail(err, 404, "UNSUPPORTED",
                                      "not a registry API path");
    }

    if (len <= 4) {
        path->endpoint = NGX_HTTP_REGISTRY_BASE;
        return NGX_OK;
    }

    last = p + len;
    p += 4;

    n = 0;
    start = p;

    for ( ;; ) {
        if (p == last || *p == '/') {

            if (n == NGX_HTTP_REGISTRY_SEGMENTS_MAX) {
                return ngx_http_registry_fail(err, 400, "NAME_INVALID",
                                              "repository name too long");
            }

            seg[n].data = start;
            seg[n].len = p - start;
            n++;

            if (p == last) {
                break;
            }

            start = p + 1;
        }

        p++;
    }

    if (ngx_http_registry_seg_is(&seg[n - 1], "_catalog")) {
        return ngx_http_registry_fail(err, 404, "UNSUPPORTED",
                                   "the catalog is not served by this mirror");
    }

    if (n >= 3
        && ngx_http_registry_seg_is(&seg[n - 3], "blobs")
        && ngx_http_registry_seg_is(&seg[n - 2], "uploads"))
    {
        return ngx_http_registry_fail(err, 405, "UNSUPPORTED",
                                      "this mirror does not accept pushes");
    }

    names = n - 2;
    ref = &seg[n - 1];

    if (n < 3) {
        names = n;

    } else if (ngx_http_registry_seg_is(&seg[n - 2], "manifests")) {
        path->endpoint = NGX_HTTP_REGISTRY_MANIFEST;

    } else if (ngx_http_registry_seg_is(&seg[n - 2], "blobs")) {
        path->endpoint = NGX_HTTP_REGISTRY_BLOB;

    } else if (ngx_http_registry_seg_is(&seg[n - 2], "referrers")) {
        path->endpoint = NGX_HTTP_REGISTRY_REFERRERS;

    } else if (ngx_http_registry_seg_is(&seg[n - 2], "tags")
               && ngx_http_registry_seg_is(&seg[n - 1], "list"))
    {
        path->endpoint = NGX_HTTP_REGISTRY_TAGS;

    } else {
        names = n;
    }

    if (ngx_http_registry_valid_name(seg, names, path, err) != NGX_OK) {
        return NGX_ERROR;
    }

    switch (path->endpoint) {

    case NGX_HTTP_REGISTRY_MANIFEST:

        if (ngx_strlchr(ref->data, ref->data + ref->len, ':') == NULL) {
            if (ngx_http_registry_valid_tag(ref->data, ref->len) != NGX_OK) {
                return ngx_http_registry_fail(err, 400, "TAG_INVALID",
                                              "invalid tag");
            }

            break;
        }

        /* fall through */

    case NGX_HTTP_REGISTRY_BLOB:
    case NGX_HTTP_REGISTRY_REFERRERS:

        if (ngx_http_registry_valid_digest(ref->data, ref->len) != NGX_OK) {
            return ngx_http_registry_fail(err, 400, "DIGEST_INVALID",
                        "invalid digest: sha256 or sha512, lower-case hex");
        }

        path->digest = 1;
        break;

    case NGX_HTTP_REGISTRY_TAGS:
        break;

    default:
        return ngx_http_registry_fail(err, 404, "UNSUPPORTED",
                                      "unknown registry API endpoint");
    }

    if (path->endpoint != NGX_HTTP_REGISTRY_TAGS) {
        path->reference = *ref;
    }

    return NGX_OK;
}


/*
 * Checks seg[0 .. n-1] as "[registry/]name" and records both.  An unknown
 * endpoint is checked too, so that a path with ".." or "%2F" in it is
 * reported as the invalid name it is.
 */

static ngx_int_t
ngx_http_registry_valid_name(ngx_str_t *seg, ngx_uint_t n,
    ngx_http_registry_path_t *path, ngx_http_registry_error_t *err)
{
    ngx_uint_t  i;

    if (n == 0) {
        return ngx_http_registry_fail(err, 400, "NAME_INVALID",
                                      "empty repository name");
    }

    i = 0;

    if (n > 1
        && ngx_http_registry_host_like(seg[0].data, seg[0].len) == NGX_OK)
    {
        if (ngx_http_registry_valid_host(seg[0].data, seg[0].len) != NGX_OK) {
            return ngx_http_registry_fail(err, 400, "NAME_INVALID",
                                          "invalid registry in path");
        }

        path->prefix = seg[0];
        i = 1;
    }

    path->name.data = seg[i].data;
    path->name.len = seg[n - 1].data + seg[n - 1].len - seg[i].data;

    for ( /* void */ ; i < n; i++) {
        if (ngx_http_registry_valid_component(seg[i].data, seg[i].len)
            != NGX_OK)
        {
            return ngx_http_registry_fail(err, 400, "NAME_INVALID",
                                          "invalid repository name");
        }
    }

    if (path->name.len > NGX_HTTP_REGISTRY_NAME_MAX) {
        return ngx_http_registry_fail(err, 400, "NAME_INVALID",
                                      "repository name too long");
    }

    return NGX_OK;
}


/*
 * The arguments a pull sends: containerd's "ns", pagination of tags/list
 * ("n", "last") and the referrers filter ("artifactType").  Anything else
 * is dropped, not forwarded.
 */

ngx_int_t
ngx_http_registry_parse_args(u_char *p, size_t len,
    ngx_http_registry_args_t *args, ngx_http_registry_error_t *err)
{
    u_char     *last, *amp, *eq;
    size_t      i;
    ngx_str_t   key, value;

    ngx_memzero(args, sizeof(ngx_http_registry_args_t));

    last = p + len;

    while (p < last) {

        amp = ngx_strlchr(p, last, '&');
        if (amp == NULL) {
            amp = last;
        }

        eq = ngx_strlchr(p, amp, '=');

        key.data = p;
        key.len = (eq ? eq : amp) - p;
        value.data = eq ? eq + 1 : amp;
        value.len = amp - value.data;

        p = amp + 1;

        if (ngx_http_registry_seg_is(&key, "ns")) {

            /*
             * containerd escapes the port's colon as Go's URL encoder
             * does ("ns=host%3A5000"); that escape, and no other, is
             * decoded
             */

            args->ns.data = args->ns_buf;
            args->ns.len = 0;

            for (i = 0; i < value.len; i++) {
                if (args->ns.len == NGX_HTTP_REGISTRY_NS_MAX) {
                    goto bad_ns;
                }

                if (value.data[i] == '%' && value.len - i >= 3
                    && value.data[i + 1] == '3'
                    && (value.data[i + 2] | 0x20) == 'a')
                {
                    args->ns_buf[args->ns.len++] = ':';
                    i += 2;
                    continue;
                }

                args->ns_buf[args->ns.len++] = value.data[i];
            }

            if (ngx_http_registry_valid_host(args->ns.data, args->ns.len)
                != NGX_OK)
            {
                goto bad_ns;
            }

        } else if (ngx_http_registry_seg_is(&key, "n")) {
            if (value.len == 0 || value.len > 5) {
                goto bad_n;
            }

            for (i = 0; i < value.len; i++) {
                if (value.data[i] < '0' || value.data[i] > '9') {
                    goto bad_n;
                }
            }

            args->n = value;

        } else if (ngx_http_registry_seg_is(&key, "last")) {
            if (ngx_http_registry_valid_tag(value.data, value.len)
                != NGX_OK)
            {
                return ngx_http_registry_fail(err, 400, "TAG_INVALID",
                                              "invalid last argument");
            }

            args->last = value;

        } else if (ngx_http_registry_seg_is(&key, "artifactType")) {
            if (ngx_http_registry_valid_media_type(value.data, value.len)
                != NGX_OK)
            {
                return ngx_http_registry_fail(err, 400, "UNSUPPORTED",
                                              "invalid artifactType argument");
            }

            args->artifact_type = value;
        }
    }

    return NGX_OK;

bad_ns:

    return ngx_http_registry_fail(err, 400, "NAME_INVALID",
                                  "invalid ns argument");

bad_n:

    return ngx_http_registry_fail(err, 400, "PAGINATION_NUMBER_INVALID",
                                  "invalid n argument");
}


/* a media type as a query value: "+" and "/" may come percent-encoded */

static ngx_int_t
ngx_http_registry_valid_media_type(u_char *p, size_t len)
{
    u_char  *last, c;

    if (len == 0 || len > 255) {
        return NGX_DECLINED;
    }

    last = p + len;

    while (p < last) {
        c = *p++;

        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
            || (c >= '0' && c <= '9')
            || c == '.' || c == '_' || c == '-' || c == '+' || c == '/')
        {
            continue;
        }

        if (c == '%' && last - p >= 2 && p[0] == '2'
            && (p[1] == 'B' || p[1] == 'b' || p[1] == 'F' || p[1] == 'f'))
        {
            p += 2;
            continue;
        }

        return NGX_DECLINED;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_registry_fail(ngx_http_registry_error_t *err, ngx_uint_t status,
    char *code, char *message)
{
    err->status = status;
    err->code.data = (u_char *) code;
    err->code.len = ngx_strlen(code);
    err->message.data = (u_char *) message;
    err->message.len = ngx_strlen(message);

    return NGX_ERROR;
}
