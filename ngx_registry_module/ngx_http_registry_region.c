
/*
 * Copyright (C) ngx_registry_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_registry.h"
#include "ngx_http_registry_response.h"
#include "ngx_http_registry_region.h"


/*
 * Regions: a registry fetched from several places, each an upstream{}
 * block (or a host name) with its own Host, TLS name and credentials.
 * nginx's proxy_next_upstream moves a request between the servers of one
 * block only, and Host and the TLS name are one per request, so a server
 * of another region inside the same block would fail its certificate
 * check: the move between regions is the module's.  The first region is
 * registry_region_first's, the others follow in the order they are
 * declared.  A request that fails in one region (refused, timed out, no
 * address, 5xx, 429) runs again through its location in the next, as a
 * token retry runs again: what survives the internal redirect (which
 * zeroes r->ctx) is a mark in the request pool, made on the request's
 * first pass, when r->uri is still the one its location was found by.
 */


typedef struct {
    ngx_str_t                  uri;         /* where it runs again */
    ngx_str_t                  args;
    ngx_uint_t                 first;
    ngx_uint_t                 tries;       /* regions failed so far */
} ngx_http_registry_failover_t;


static ngx_http_registry_failover_t *ngx_http_registry_failover_mark(
    ngx_http_request_t *r);
static void ngx_http_registry_failover_cleanup(void *data);
static ngx_uint_t ngx_http_registry_region_at(ngx_uint_t first,
    ngx_uint_t k);


/* the region a request goes to: the first, or the next after failures */

ngx_int_t
ngx_http_registry_region_route(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    ngx_str_t                      value;
    ngx_uint_t                     i, n;
    ngx_pool_cleanup_t            *cln;
    ngx_http_registry_region_t    *region;
    ngx_http_registry_failover_t  *fo;
    ngx_http_registry_loc_conf_t  *rlcf;

    region = ctx->registry->regions.elts;
    n = ctx->registry->regions.nelts;

    ctx->region = &region[0];
    ctx->region_first = 0;
    ctx->region_tries = 0;

    if (n == 1) {
        return NGX_OK;
    }

    fo = ngx_http_registry_failover_mark(r);

    if (fo) {
        ctx->region_first = fo->first;
        ctx->region_tries = fo->tries;
        ctx->region = &region[ngx_http_registry_region_at(fo->first,
                                                          fo->tries)];
        return NGX_OK;
    }

    rlcf = ngx_http_get_module_loc_conf(r, ngx_http_registry_module);

    if (rlcf->region_first) {
        if (ngx_http_complex_value(r, rlcf->region_first, &value) != NGX_OK) {
            return NGX_ERROR;
        }

        for (i = 0; i < n; i++) {
            if (region[i].name.len == value.len
                && ngx_strncasecmp(region[i].name.data, value.data,
                                   value.len)
                   == 0)
            {
                ctx->region_first = i;
                ctx->region = &region[i];
                break;
            }
        }
    }

    cln = ngx_pool_cleanup_add(r->pool, sizeof(ngx_http_registry_failover_t));
    if (cln == NULL) {
        return NGX_ERROR;
    }

    fo = cln->data;
    fo->uri = r->uri;
    fo->args = r->args;
    fo->first = ctx->region_first;
    fo->tries = 0;

    cln->handler = ngx_http_registry_failover_cleanup;

    return NGX_OK;
}


/*
 * An upstream failure in this request's region: NGX_DONE when the
 * request runs again in the next region, NGX_DECLINED when it is the
 * last region tried, the failure is none a region is left for (a 403, a
 * 404: every region holds the same content), or no internal redirect is
 * left for it (one is kept for the error page after it).
 */

ngx_int_t
ngx_http_registry_failover(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_uint_t status, char *why)
{
    ngx_http_registry_region_t    *region;
    ngx_http_registry_failover_t  *fo;

    if (status != NGX_HTTP_TOO_MANY_REQUESTS
        && status != NGX_HTTP_INTERNAL_SERVER_ERROR
        && status != NGX_HTTP_BAD_GATEWAY
        && status != NGX_HTTP_SERVICE_UNAVAILABLE
        && status != NGX_HTTP_GATEWAY_TIME_OUT)
    {
        return NGX_DECLINED;
    }

    if (ctx == NULL || ctx->registry == NULL || ctx->region == NULL) {
        return NGX_DECLINED;
    }

    fo = ngx_http_registry_failover_mark(r);

    if (fo == NULL) {
        return NGX_DECLINED;
    }

    region = ctx->registry->regions.elts;

    if (fo->tries + 1 >= ctx->registry->regions.nelts) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "registry: \"%V\" region \"%V\" %s (status %ui), "
                      "and no region is left", &ctx->registry->name,
                      &ctx->region->name, why, status);
        return NGX_DECLINED;
    }

    if (r->uri_changes <= 2) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "registry: \"%V\" region \"%V\" %s (status %ui), "
                      "and no internal redirect is left to try another",
                      &ctx->registry->name, &ctx->region->name, why, status);
        return NGX_DECLINED;
    }

    fo->tries++;

    ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                  "registry: \"%V\" region \"%V\" %s (status %ui); "
                  "trying region \"%V\"", &ctx->registry->name,
                  &ctx->region->name, why, status,
                  &region[ngx_http_registry_region_at(fo->first, fo->tries)]
                  .name);

    (void) ngx_http_internal_redirect(r, &fo->uri, &fo->args);
    ngx_http_finalize_request(r, NGX_DONE);

    return NGX_DONE;
}


/*
 * The region an answer came from: only an answer fetched now, for a
 * registry with more than one region.
 */

ngx_uint_t
ngx_http_registry_region_served(ngx_http_request_t *r, ngx_str_t *name)
{
    ngx_http_registry_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_registry_module);

    if (ctx == NULL || ctx->region == NULL || r->upstream == NULL
        || r->cached || ctx->registry->regions.nelts < 2)
    {
        return 0;
    }

    *name = ctx->region->name;

    return 1;
}


/*
 * $registry_upstream, $registry_host, $registry_ssl_name: a field of the
 * request's region; in the token relay's subrequests, the relay's.
 */

ngx_int_t
ngx_http_registry_region_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_registry_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_registry_module);

    if (ctx == NULL) {
        ctx = ngx_http_get_module_ctx(r->main, ngx_http_registry_module);
    }

    if (ctx == NULL || ctx->region == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    ngx_http_registry_set_value(v, (ngx_str_t *) ((char *) ctx->region
                                                  + data));

    return NGX_OK;
}


/* $registry_region: the region an answer was fetched from */

ngx_int_t
ngx_http_registry_region_served_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t  name;

    if (!ngx_http_registry_region_served(r, &name)) {
        v->not_found = 1;
        return NGX_OK;
    }

    ngx_http_registry_set_value(v, &name);

    return NGX_OK;
}


static ngx_http_registry_failover_t *
ngx_http_registry_failover_mark(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t  *cln;

    for (cln = r->pool->cleanup; cln; cln = cln->next) {
        if (cln->handler == ngx_http_registry_failover_cleanup) {
            return cln->data;
        }
    }

    return NULL;
}


static void
ngx_http_registry_failover_cleanup(void *data)
{
    ngx_http_registry_failover_t  *fo = data;

    /*
     * Not empty: the mark is found by this function's address, and the
     * compiler folds identical functions into one (-fipa-icf).
     */

    fo->tries = 0;
}


/* the k-th region tried: the first, then the others in declared order */

static ngx_uint_t
ngx_http_registry_region_at(ngx_uint_t first, ngx_uint_t k)
{
    if (k == 0) {
        return first;
    }

    return (k - 1 < first) ? k - 1 : k;
}
