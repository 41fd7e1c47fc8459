
/*
 * Copyright (C) ngx_registry_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_registry.h"
#include "ngx_http_registry_response.h"
#include "ngx_http_registry_target.h"
#include "ngx_http_registry_tag.h"
#include "ngx_http_registry_redirect.h"


/*
 * Upstream redirects (a blob on a CDN, everything on registry.k8s.io) are
 * followed by the mirror, never shown to the client.  A Location is made
 * absolute against the URL of the request that got it, and checked as an
 * untrusted target (ngx_http_registry_target.c) at every hop; the request
 * goes to the checked address without the upstream's Authorization, and
 * what comes back is cached under the digest and verified like any fill.
 */


typedef struct {
    ngx_uint_t                    hops;
    ngx_http_registry_region_t   *region;    /* whose redirects they are */
    ngx_http_registry_target_t    target;
} ngx_http_registry_redirect_t;


static ngx_http_registry_redirect_t *ngx_http_registry_redirect_state(
    ngx_http_request_t *r, ngx_uint_t create);
static void ngx_http_registry_redirect_cleanup(void *data);
static ngx_int_t ngx_http_registry_redirect_fail(ngx_http_request_t *r,
    char *message);


static ngx_str_t  ngx_http_registry_redirect_uri =
    ngx_string("/_registry/redirect");


/*
 * Called from the upstream-error location for an upstream 3xx, and again
 * when the name of the target has been resolved.
 */

ngx_int_t
ngx_http_registry_redirect(ngx_http_request_t *r)
{
    u_char                        *p;
    ngx_int_t                      rc;
    ngx_str_t                      base;
    ngx_http_registry_ctx_t       *ctx;
    ngx_http_registry_redirect_t  *st;

    st = ngx_http_registry_redirect_state(r, 1);
    if (st == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_registry_module);

    if (st->target.busy) {
        goto check;
    }

    /* a region failed over to follows its own redirects from its own URL */

    if (st->region != ctx->region) {
        st->region = ctx->region;
        st->hops = 0;
    }

    if (++st->hops > NGX_HTTP_REGISTRY_REDIRECTS_MAX) {
        return ngx_http_registry_redirect_fail(r, "too many redirects");
    }

    if (!ngx_http_registry_redirects_left(r)) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "registry: no internal redirects left for hop %ui",
                      st->hops);
        return ngx_http_registry_redirect_fail(r, "too many redirects");
    }

    if (r->upstream->headers_in.location == NULL) {
        return ngx_http_registry_redirect_fail(r, "redirect without Location");
    }

    /* the first Location is relative to the URL the region was asked */

    if (st->hops == 1) {
        base = ctx->region->origin;

        p = ngx_pnalloc(r->pool, base.len + ctx->uri.len);
        if (p == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_memcpy(p, base.data, base.len);
        ngx_memcpy(p + base.len, ctx->uri.data, ctx->uri.len);

        base.data = p;
        base.len += ctx->uri.len;

    } else {
        base = st->target.absolute;
    }

    st->target.what = "redirect to";

    rc = ngx_http_registry_target_parse(r, &st->target,
                                        &r->upstream->headers_in.location
                                        ->value, &base);
    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc != NGX_OK) {
        return ngx_http_registry_redirect_fail(r, st->target.error);
    }

check:

    rc = ngx_http_registry_target_check(r, &st->target);

    if (rc == NGX_AGAIN) {
        return NGX_AGAIN;
    }

    if (rc == NGX_DECLINED) {
        return ngx_http_registry_redirect_fail(r, st->target.error);
    }

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "registry: following redirect to %V (%V)",
                   &st->target.url, &st->target.host);

    ngx_http_registry_stat(ctx->registry, redirects_followed);

    (void) ngx_http_internal_redirect(r, &ngx_http_registry_redirect_uri,
                                      &r->args);
    ngx_http_finalize_request(r, NGX_DONE);

    return NGX_DONE;
}


static ngx_int_t
ngx_http_registry_redirect_fail(ngx_http_request_t *r, char *message)
{
    ngx_int_t                  rc;
    ngx_http_registry_ctx_t   *ctx;
    ngx_http_registry_error_t  err;

    ctx = ngx_http_get_module_ctx(r, ngx_http_registry_module);

    if (ctx) {
        ngx_http_registry_stat(ctx->registry, redirects_refused);
    }

    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "registry: upstream redirect not followed: %s", message);

    /* a tag's check that could not follow it: the last known digest */

    if (ngx_http_registry_tag_stale(r,
                                    ngx_http_get_module_ctx(r,
                                        ngx_http_registry_module),
                                    "was redirected where the mirror "
                                    "does not follow")
        == NGX_DONE)
    {
        return NGX_DONE;
    }

    err.status = NGX_HTTP_BAD_GATEWAY;
    ngx_str_set(&err.code, "UNAVAILABLE");

    err.message.len = sizeof("upstream redirect not followed: ") - 1
                      + ngx_strlen(message);
    err.message.data = ngx_pnalloc(r->pool, err.message.len);
    if (err.message.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_sprintf(err.message.data, "upstream redirect not followed: %s",
                message);

    rc = ngx_http_registry_send_error(r, &err);
    ngx_http_finalize_request(r, rc);

    return NGX_DONE;
}


/* the state lives in the request pool: internal redirects zero r->ctx */

static ngx_http_registry_redirect_t *
ngx_http_registry_redirect_state(ngx_http_request_t *r, ngx_uint_t create)
{
    ngx_pool_cleanup_t            *cln;
    ngx_http_registry_redirect_t  *st;

    for (cln = r->pool->cleanup; cln; cln = cln->next) {
        if (cln->handler == ngx_http_registry_redirect_cleanup) {
            return cln->data;
        }
    }

    if (!create) {
        return NULL;
    }

    cln = ngx_pool_cleanup_add(r->pool, sizeof(ngx_http_registry_redirect_t));
    if (cln == NULL) {
        return NULL;
    }

    st = cln->data;
    ngx_memzero(st, sizeof(ngx_http_registry_redirect_t));

    cln->handler = ngx_http_registry_redirect_cleanup;

    return st;
}


static void
ngx_http_registry_redirect_cleanup(void *data)
{
    ngx_http_registry_redirect_t  *st = data;

    ngx_http_registry_target_cleanup(&st->target);
}


/*
 * $registry_redirect_url (data 0), $registry_redirect_host (1),
 * $registry_redirect_name (2)
 */

ngx_int_t
ngx_http_registry_redirect_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t                     *s;
    ngx_http_registry_redirect_t  *st;

    st = ngx_http_registry_redirect_state(r->main, 0);

    if (st == NULL || st->target.url.len == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    s = data == 0 ? &st->target.url
                  : data == 1 ? &st->target.host : &st->target.name;

    ngx_http_registry_set_value(v, s);

    return NGX_OK;
}
