
/*
 * Copyright (C) ngx_registry_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_http_registry_accept.h"


/*
 * The manifest media types a tag can be asked for, sorted: a set of them
 * is a bit mask, and writing the mask out in this order gives the sorted,
 * de-duplicated list that is both the cache key's Accept part and the
 * Accept header sent upstream.
 */

static ngx_str_t  ngx_http_registry_manifest_types[] = {
    ngx_string("application/vnd.docker.distribution.manifest.list.v2+json"),
    ngx_string("application/vnd.docker.distribution.manifest.v1+json"),
    ngx_string("application/vnd.docker.distribution.manifest.v1+prettyjws"),
    ngx_string("application/vnd.docker.distribution.manifest.v2+json"),
    ngx_string("application/vnd.oci.artifact.manifest.v1+json"),
    ngx_string("application/vnd.oci.image.index.v1+json"),
    ngx_string("application/vnd.oci.image.manifest.v1+json"),
    ngx_null_string
};


static ngx_uint_t ngx_http_registry_accept_item(u_char *p, u_char *last);
static ngx_int_t ngx_http_registry_type_index(u_char *p, u_char *end);


/*
 * One Accept header line: comma-separated media ranges with parameters.
 * Unknown types, wildcards and anything with q=0 are left out.
 */

ngx_uint_t
ngx_http_registry_accept_mask(u_char *p, size_t len)
{
    u_char      *last, *comma;
    ngx_uint_t   mask;

    mask = 0;
    last = p + len;

    while (p < last) {
        comma = ngx_strlchr(p, last, ',');
        if (comma == NULL) {
            comma = last;
        }

        mask |= ngx_http_registry_accept_item(p, comma);

        p = comma + 1;
    }

    return mask;
}


static ngx_uint_t
ngx_http_registry_accept_item(u_char *p, u_char *last)
{
    u_char     *end, *q;
    ngx_int_t   i;

    while (p < last && (*p == ' ' || *p == '\t')) {
        p++;
    }

    end = ngx_strlchr(p, last, ';');
    if (end == NULL) {
        end = last;
    }

    /* parameters: q=0, q=0.0, q=0.000 refuse the type */

    for (q = end; q < last; q++) {
        if (*q == 'q' && q + 1 < last && q[1] == '='
            && (q[-1] == ';' || q[-1] == ' ' || q[-1] == '\t'))
        {
            q += 2;

            if (q < last && *q == '0') {
                q++;

                while (q < last && (*q == '.' || *q == '0')) {
                    q++;
                }

                while (q < last && (*q == ' ' || *q == '\t')) {
                    q++;
                }

                if (q == last || *q == ';') {
                    return 0;
                }
            }

            break;
        }
    }

    i = ngx_http_registry_type_index(p, end);

    return i == NGX_ERROR ? 0 : (ngx_uint_t) 1 << i;
}


/*
 * The manifest media type a Content-Type names, parameters dropped, as
 * the mirror writes it; NULL if it names none.
 */

ngx_str_t *
ngx_http_registry_manifest_type(u_char *p, size_t len)
{
    u_char     *end;
    ngx_int_t   i;

    while (len && (*p == ' ' || *p == '\t')) {
        p++;
        len--;
    }

    end = ngx_strlchr(p, p + len, ';');
    if (end == NULL) {
        end = p + len;
    }

    i = ngx_http_registry_type_index(p, end);

    return i == NGX_ERROR ? NULL : &ngx_http_registry_manifest_types[i];
}


static ngx_int_t
ngx_http_registry_type_index(u_char *p, u_char *end)
{
    ngx_int_t  i;

    while (end > p && (end[-1] == ' ' || end[-1] == '\t')) {
        end--;
    }

    for (i = 0; ngx_http_registry_manifest_types[i].len; i++) {
        if ((size_t) (end - p) == ngx_http_registry_manifest_types[i].len
            && ngx_strncasecmp(p, ngx_http_registry_manifest_types[i].data,
                               end - p)
               == 0)
        {
            return i;
        }
    }

    return NGX_ERROR;
}


/* buf must hold NGX_HTTP_REGISTRY_ACCEPT_MAX bytes */

size_t
ngx_http_registry_accept_string(ngx_uint_t mask, u_char *buf)
{
    u_char      *p;
    ngx_uint_t   i;

    p = buf;

    for (i = 0; ngx_http_registry_manifest_types[i].len; i++) {
        if (!(mask & ((ngx_uint_t) 1 << i))) {
            continue;
        }

        if (p != buf) {
            *p++ = ',';
            *p++ = ' ';
        }

        p = ngx_cpymem(p, ngx_http_registry_manifest_types[i].data,
                       ngx_http_registry_manifest_types[i].len);
    }

    return p - buf;
}
