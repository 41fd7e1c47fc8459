
/*
 * Copyright (C) ngx_registry_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_registry.h"
#include "ngx_http_registry_response.h"
#include "ngx_http_registry_loop.h"


/*
 * Every request the mirror sends upstream (to a registry, a redirect
 * target, a token realm) carries CDN-Loop (RFC 8586): what the client's
 * request carried, then this node's id.  A request that arrives with this
 * node's id has been through this node already and is refused before
 * anything else, so a registry URL, a redirect or a realm that points
 * back at the mirror costs one more request, not a flood.  A mirror in
 * front of another mirror keeps working: each has its own id.
 */


static ngx_uint_t ngx_http_registry_id_char(u_char c);
static ngx_int_t ngx_http_registry_loop_line(ngx_table_elt_t *h,
    void *data);
static ngx_uint_t ngx_http_registry_loop_closed(ngx_str_t *value);
static ngx_int_t ngx_http_registry_loop_length(ngx_table_elt_t *h,
    void *data);
static ngx_int_t ngx_http_registry_loop_copy(ngx_table_elt_t *h,
    void *data);


static ngx_str_t  ngx_http_registry_cdn_loop = ngx_string("CDN-Loop");


/*
 * The default node id: the host name and 64 random bits, new at every
 * configuration load, so that two nginx instances never share one.
 */

ngx_int_t
ngx_http_registry_node_id(ngx_conf_t *cf, ngx_str_t *id)
{
    u_char     *p, *q;
    ngx_str_t  *host;

    host = &cf->cycle->hostname;

    id->data = ngx_pnalloc(cf->pool, host->len + sizeof("registry-") - 1
                                     + 16);
    if (id->data == NULL) {
        return NGX_ERROR;
    }

    if (host->len) {
        p = ngx_cpymem(id->data, host->data, host->len);
        *p++ = '-';

        for (q = id->data; q < p; q++) {
            if (!ngx_http_registry_id_char(*q) || *q == ':') {
                *q = '-';
            }
        }

    } else {
        p = ngx_cpymem(id->data, "registry-", sizeof("registry-") - 1);
    }

    p = ngx_sprintf(p, "%08xD%08xD", (uint32_t) ngx_random(),
                    (uint32_t) ngx_random());

    id->len = p - id->data;

    return NGX_OK;
}


/* registry_node_id: a token, or host:port (RFC 8586 cdn-id) */

char *
ngx_http_registry_node_id_check(ngx_conf_t *cf, void *post, void *data)
{
    ngx_str_t  *id = data;

    u_char  *p;

    if (id->len == 0) {
        return "must not be empty";
    }

    for (p = id->data; p < id->data + id->len; p++) {
        if (!ngx_http_registry_id_char(*p)) {
            return "must be a token: letters, digits, "
                   "\"!#$%&'*+-.^_`|~\" and \":\"";
        }
    }

    return NGX_CONF_OK;
}


static ngx_uint_t
ngx_http_registry_id_char(u_char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
           || (c >= '0' && c <= '9')
           || (c != '\0' && ngx_strchr("!#$%&'*+-.^_`|~:", c) != NULL);
}


/* whether the request's CDN-Loop lines name this node */

ngx_uint_t
ngx_http_registry_loop_seen(ngx_http_request_t *r)
{
    ngx_http_registry_main_conf_t  *rmcf;

    rmcf = ngx_http_get_module_main_conf(r, ngx_http_registry_module);

    return ngx_http_registry_headers(&r->headers_in.headers,
                                     &ngx_http_registry_cdn_loop,
                                     ngx_http_registry_loop_line,
                                     &rmcf->node_id)
           == NGX_DONE;
}


/*
 * What a client sends in CDN-Loop goes upstream with the node id after
 * it, on every request this one makes, a tag check that other clients
 * wait for included: more than a chain of mirrors needs is refused here,
 * before it can make an upstream refuse the shared check.
 */

ngx_uint_t
ngx_http_registry_loop_too_long(ngx_http_request_t *r)
{
    size_t  len;

    len = 0;

    (void) ngx_http_registry_headers(&r->headers_in.headers,
                                     &ngx_http_registry_cdn_loop,
                                     ngx_http_registry_loop_length, &len);

    return len > NGX_HTTP_REGISTRY_CDN_LOOP_MAX;
}


/*
 * CDN-Loop = #cdn-info, cdn-info = cdn-id *( OWS ";" OWS parameter ),
 * a parameter's value may be a quoted string (with commas in it).
 */

static ngx_int_t
ngx_http_registry_loop_line(ngx_table_elt_t *h, void *data)
{
    ngx_str_t  *id = data;

    u_char      *p, *last, *start;
    ngx_uint_t   quoted;

    p = h->value.data;
    last = p + h->value.len;

    while (p < last) {

        while (p < last && (*p == ' ' || *p == '\t' || *p == ',')) {
            p++;
        }

        start = p;

        while (p < last && *p != ',' && *p != ';' && *p != ' '
               && *p != '\t')
        {
            p++;
        }

        if ((size_t) (p - start) == id->len
            && ngx_strncasecmp(start, id->data, id->len) == 0)
        {
            return NGX_DONE;
        }

        /* the parameters, up to the next comma outside quotes */

        for (quoted = 0; p < last; p++) {

            if (quoted) {
                if (*p == '\\' && p + 1 < last) {
                    p++;

                } else if (*p == '"') {
                    quoted = 0;
                }

            } else if (*p == '"') {
                quoted = 1;

            } else if (*p == ',') {
                break;
            }
        }
    }

    return NGX_OK;
}


/* $registry_cdn_loop: the client's CDN-Loop values, then this node's id */

ngx_int_t
ngx_http_registry_cdn_loop_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char                         *p;
    size_t                          len;
    ngx_http_registry_main_conf_t  *rmcf;

    rmcf = ngx_http_get_module_main_conf(r, ngx_http_registry_module);

    len = 0;

    (void) ngx_http_registry_headers(&r->main->headers_in.headers,
                                     &ngx_http_registry_cdn_loop,
                                     ngx_http_registry_loop_length, &len);

    p = ngx_pnalloc(r->pool, len + rmcf->node_id.len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    v->data = p;

    (void) ngx_http_registry_headers(&r->main->headers_in.headers,
                                     &ngx_http_registry_cdn_loop,
                                     ngx_http_registry_loop_copy, &p);

    p = ngx_cpymem(p, rmcf->node_id.data, rmcf->node_id.len);

    v->len = p - v->data;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;

    return NGX_OK;
}


/*
 * A client's line goes on only if it ends outside a quoted string: an
 * unclosed quote ('foo; a="') would swallow the node id appended after
 * it, and the next mirror would not see its own id come back.
 */

static ngx_uint_t
ngx_http_registry_loop_closed(ngx_str_t *value)
{
    u_char      *p, *last;
    ngx_uint_t   quoted;

    last = value->data + value->len;
    quoted = 0;

    for (p = value->data; p < last; p++) {

        if (quoted) {
            if (*p == '\\') {
                if (++p == last) {
                    return 0;
                }

            } else if (*p == '"') {
                quoted = 0;
            }

        } else if (*p == '"') {
            quoted = 1;
        }
    }

    return !quoted;
}


static ngx_int_t
ngx_http_registry_loop_length(ngx_table_elt_t *h, void *data)
{
    if (h->value.len && ngx_http_registry_loop_closed(&h->value)) {
        *(size_t *) data += h->value.len + sizeof(", ") - 1;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_registry_loop_copy(ngx_table_elt_t *h, void *data)
{
    u_char  **p = data;

    if (h->value.len && ngx_http_registry_loop_closed(&h->value)) {
        *p = ngx_cpymem(*p, h->value.data, h->value.len);
        *(*p)++ = ',';
        *(*p)++ = ' ';
    }

    return NGX_OK;
}
