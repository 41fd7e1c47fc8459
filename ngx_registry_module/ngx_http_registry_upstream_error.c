
/*
 * Copyright (C) ngx_registry_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_registry.h"
#include "ngx_http_registry_zone.h"
#include "ngx_http_registry_response.h"
#include "ngx_http_registry_challenge.h"
#include "ngx_http_registry_redirect.h"
#include "ngx_http_registry_target.h"
#include "ngx_http_registry_tag.h"
#include "ngx_http_registry_auth.h"
#include "ngx_http_registry_region.h"
#include "ngx_http_registry_upstream_error.h"


typedef struct {
    ngx_str_t                     token;
    ngx_http_registry_region_t   *region;
} ngx_http_registry_retry_t;


static ngx_int_t ngx_http_registry_token_done(ngx_http_request_t *r,
    void *data, ngx_int_t rc);
static ngx_int_t ngx_http_registry_token_retry(ngx_http_request_t *r,
    ngx_str_t *value);
static void ngx_http_registry_retried(void *data);
static ngx_str_t *ngx_http_registry_retry_token(ngx_http_request_t *r);
static ngx_int_t ngx_http_registry_deny(ngx_http_request_t *r,
    ngx_uint_t status, char *code, char *message);
static ngx_int_t ngx_http_registry_unavailable(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, char *message);
static ngx_int_t ngx_http_registry_too_many(ngx_http_request_t *r);
static ngx_int_t ngx_http_registry_hide_bearer(ngx_table_elt_t *h,
    void *data);


static ngx_str_t  ngx_http_registry_token_uri = ngx_string("/_registry/token");
static ngx_str_t  ngx_http_registry_www_authenticate =
    ngx_string("WWW-Authenticate");


/*
 * The Authorization for key: the token this request was retried with (it
 * reaches the retry even when the zone could not keep it), else a copy
 * of the one kept in the shared zone for every worker, if it has not
 * expired.
 */

ngx_int_t
ngx_http_registry_token_get(ngx_http_request_t *r, ngx_str_t *key,
    ngx_str_t *token)
{
    ngx_str_t                      *kept;
    ngx_http_registry_main_conf_t  *rmcf;

    kept = ngx_http_registry_retry_token(r);

    if (kept) {
        *token = *kept;
        return NGX_OK;
    }

    rmcf = ngx_http_get_module_main_conf(r, ngx_http_registry_module);

    if (rmcf->zone == NULL) {
        return NGX_DECLINED;
    }

    return ngx_http_registry_zone_get(rmcf->zone,
                                      NGX_HTTP_REGISTRY_ZONE_TOKEN, key,
                                      r->pool, token);
}


ngx_int_t
ngx_http_registry_token_set(ngx_http_request_t *r, ngx_str_t *key,
    ngx_str_t *token, time_t expires)
{
    ngx_http_registry_main_conf_t  *rmcf;

    rmcf = ngx_http_get_module_main_conf(r, ngx_http_registry_module);

    if (rmcf->zone == NULL) {
        return NGX_DECLINED;
    }

    return ngx_http_registry_zone_set(rmcf->zone,
                                      NGX_HTTP_REGISTRY_ZONE_TOKEN, key,
                                      token, expires);
}


/*
 * What goes upstream as Authorization: the client's own, if it sent one
 * (its business with the upstream), else the mirror's kept token, else
 * none.  Evaluated only when a request goes upstream, so a cache hit never
 * touches the token zone; only a lookup, never a fetch (that waits for an
 * upstream 401).
 */

ngx_int_t
ngx_http_registry_authorization_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t                *s;
    ngx_http_registry_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_registry_module);

    s = ngx_http_registry_client_credentials(r);

    if (s == NULL && ctx
        && ngx_http_registry_token_get(r, &ctx->token_key,
                                       &ctx->authorization)
           == NGX_OK)
    {
        s = &ctx->authorization;
    }

    if (s == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    ngx_http_registry_set_value(v, s);

    return NGX_OK;
}


/*
 * "1" when the client's own credentials go upstream and the answer is
 * not cached: everywhere but blobs and manifests of a registry whose
 * clients log in, which the mirror authorises itself (README.md, Edge).
 */

ngx_int_t
ngx_http_registry_client_credentials_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_registry_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_registry_module);

    if (ngx_http_registry_client_credentials(r) == NULL
        || (ctx && ctx->registry && ctx->registry->client_auth
            && (ctx->endpoint == NGX_HTTP_REGISTRY_BLOB
                || ctx->endpoint == NGX_HTTP_REGISTRY_MANIFEST)))
    {
        v->not_found = 1;
        return NGX_OK;
    }

    v->len = 1;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;
    v->data = (u_char *) "1";

    return NGX_OK;
}


ngx_int_t
ngx_http_registry_token_auth_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_registry_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r->main, ngx_http_registry_module);

    if (ctx == NULL || ctx->region == NULL
        || ctx->region->credentials.len == 0)
    {
        v->not_found = 1;
        return NGX_OK;
    }

    ngx_http_registry_set_value(v, &ctx->region->credentials);

    return NGX_OK;
}


/*
 * An upstream redirect, 401, 403, 404 or 429 (proxy_intercept_errors sent
 * the request here, "registry_upstream_errors on").  A redirect is
 * followed (ngx_http_registry_redirect.c).  A 403 is answered DENIED and a
 * 404 MANIFEST_UNKNOWN, BLOB_UNKNOWN or NAME_UNKNOWN, with OCI bodies
 * whatever the upstream's (or its CDN's) were.  For a 401, with the
 * upstream's WWW-Authenticate kept: fetch a token from the realm it names,
 * anonymously or with the registry's credentials, store it for every
 * worker, and run the request again.  Tokens are fetched only here, when a
 * request has to go upstream, never for what the cache can answer.  A
 * second 401 after a fresh token is the upstream's final word.
 */

ngx_int_t
ngx_http_registry_upstream_error(ngx_http_request_t *r)
{
    u_char                         *p, *e, *last;
    time_t                          expires_in;
    ngx_int_t                       rc;
    ngx_str_t                       token, value;
    ngx_table_elt_t                *h;
    ngx_http_request_t             *sr;
    ngx_http_registry_ctx_t        *ctx;
    ngx_http_post_subrequest_t     *ps;
    ngx_http_registry_challenge_t   ch;
    ngx_http_registry_loc_conf_t   *rlcf;

    rlcf = ngx_http_get_module_loc_conf(r, ngx_http_registry_module);

    if (!rlcf->upstream_errors || r != r->main) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_registry_module);

    if (ctx == NULL || ctx->registry == NULL || ctx->token_key.len == 0) {
        return ngx_http_registry_deny(r, NGX_HTTP_BAD_GATEWAY,
                                      "UNAVAILABLE", "upstream refused");
    }

    /*
     * error_page without "=" keeps the status that sent the request here
     * in r->err_status; this location's own answer decides the status
     * from here on.  Only an upstream's answer is handled: what nginx
     * raised itself (the operator's auth_basic, deny, ...) goes on as it
     * was, with its WWW-Authenticate.
     */

    if (ctx->error_status == 0) {
        ctx->error_status = r->err_status;
        r->err_status = 0;

        /*
         * A region that failed (nginx's own 502 or 504 when it could not
         * connect, resolve or read; the upstream's 5xx or 429): the next
         * region, before anything is served stale or refused.
         */

        if (r->upstream
            && ngx_http_registry_failover(r, ctx, ctx->error_status,
                                          "failed")
               == NGX_DONE)
        {
            return NGX_DONE;
        }
    }

    /* a request that checks what its credentials may read */

    rc = ngx_http_registry_auth_error(r, ctx);

    if (rc != NGX_DECLINED) {
        return rc;
    }

    /* a tag's check, done or failed, and a digest a tag named, missing */

    if (ctx->tag_state != NGX_HTTP_REGISTRY_TAG_NONE
        || ctx->error_status == NGX_HTTP_REGISTRY_TAG_NEXT)
    {
        rc = ngx_http_registry_tag_error(r, ctx);

        if (rc == NGX_DONE) {
            return NGX_DONE;
        }

        if (rc != NGX_DECLINED) {
            return ngx_http_registry_deny(r, rc, "UNAVAILABLE",
                                          "upstream registry unavailable");
        }
    }

    /*
     * The OCI answer here, not through the server's error_page: a request
     * that went through several regions may have no internal redirect
     * left for it.
     */

    if (ctx->error_status >= NGX_HTTP_INTERNAL_SERVER_ERROR
        && ctx->error_status < NGX_HTTP_REGISTRY_TAG_NEXT)
    {
        return ngx_http_registry_deny(r, ctx->error_status, "UNAVAILABLE",
                                      ctx->error_status
                                      == NGX_HTTP_GATEWAY_TIME_OUT
                                      ? "upstream registry timed out"
                                      : "upstream registry unavailable");
    }

    if (r->upstream == NULL
        || r->upstream->headers_in.status_n != ctx->error_status)
    {
        ngx_http_finalize_request(r, ctx->error_status
                                     ? (ngx_int_t) ctx->error_status
                                     : NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NGX_DONE;
    }

    if (ctx->token_sr == NULL && r->upstream) {
        switch (r->upstream->headers_in.status_n) {

        case NGX_HTTP_TOO_MANY_REQUESTS:
            return ngx_http_registry_too_many(r);

        case NGX_HTTP_FORBIDDEN:
            if (ctx->registry->client_auth
                && ngx_http_registry_client_credentials(r) == NULL)
            {
                /* never 403 before the client has tried credentials */
                return ngx_http_registry_auth_challenge(r, ctx->registry,
                                                     &ctx->client_name,
                                                     "authentication "
                                                     "required");
            }

            return ngx_http_registry_deny(r, NGX_HTTP_FORBIDDEN, "DENIED",
                                          "the upstream registry refused "
                                          "access");

        case NGX_HTTP_NOT_FOUND:
            return ngx_http_registry_deny(r, NGX_HTTP_NOT_FOUND,
                       ctx->endpoint == NGX_HTTP_REGISTRY_BLOB
                       ? "BLOB_UNKNOWN"
                       : ctx->endpoint == NGX_HTTP_REGISTRY_TAGS
                         ? "NAME_UNKNOWN" : "MANIFEST_UNKNOWN",
                       "not found upstream");

        case NGX_HTTP_MOVED_PERMANENTLY:
        case NGX_HTTP_MOVED_TEMPORARILY:
        case NGX_HTTP_SEE_OTHER:
        case NGX_HTTP_TEMPORARY_REDIRECT:
        case NGX_HTTP_PERMANENT_REDIRECT:
            return ngx_http_registry_redirect(r);
        }
    }

    if (ctx->token_target && ctx->token_sr == NULL) {
        goto fetch;             /* the realm's address is being checked */
    }

    if (ctx->token_sr) {
        if (!ctx->token_done) {
            return NGX_AGAIN;
        }

        /* room for the token unescaped: at most the answer's size */

        p = NULL;

        if (ctx->token_body) {
            p = ngx_pnalloc(r->pool,
                            ctx->token_body->last - ctx->token_body->pos);
            if (p == NULL) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }
        }

        if (ctx->token_status != NGX_HTTP_OK || ctx->token_body == NULL
            || ngx_http_registry_token_parse(ctx->token_body->pos,
                                             ctx->token_body->last
                                             - ctx->token_body->pos,
                                             p, &token, &expires_in)
               != NGX_OK)
        {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "registry: no token for \"%V\" from \"%V\" "
                          "(status %ui)", &ctx->token_key, &ctx->token_url,
                          ctx->token_status);

            ngx_http_registry_stat(ctx->registry, tokens_failed);

            return ngx_http_registry_unavailable(r, ctx,
                                                 "upstream token service "
                                                 "failed");
        }

        ngx_http_registry_stat(ctx->registry, tokens_ok);

        value.len = sizeof("Bearer ") - 1 + token.len;
        value.data = ngx_pnalloc(r->pool, value.len);
        if (value.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_sprintf(value.data, "Bearer %V", &token);

        /* kept until shortly before it expires */

        expires_in = expires_in > 30 ? expires_in - 10 : expires_in / 2 + 1;

        if (ngx_http_registry_token_set(r, &ctx->token_key, &value,
                                        ngx_time() + expires_in)
            != NGX_OK)
        {
            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "registry: the shared zone could not keep the "
                          "token for \"%V\" (%uz bytes)",
                          &ctx->token_key, value.len);
        }

        return ngx_http_registry_token_retry(r, &value);
    }

    h = r->headers_out.www_authenticate;

    if (ctx->registry->client_auth) {

        /*
         * Clients log in: the mirror's own challenge, for credentials
         * refused (a token expired, tampered with, or for another
         * scope) and for a request without that the mirror's own access
         * could not serve.  The mirror's token is tried first.
         */

        if (ngx_http_registry_client_credentials(r)
            || ngx_http_registry_retry_token(r)
            || h == NULL)
        {
            return ngx_http_registry_auth_challenge(r, ctx->registry,
                                                    &ctx->client_name,
                                                    "authentication "
                                                    "required");
        }

    } else if (ngx_http_registry_client_credentials(r)) {

        /* the client's own credentials: its business with the upstream */

        return ngx_http_registry_deny(r, NGX_HTTP_UNAUTHORIZED,
                                      "UNAUTHORIZED",
                                      "authentication required");
    }

    if (h == NULL
        || ngx_http_registry_challenge_parse(h->value.data, h->value.len, &ch)
           != NGX_OK)
    {
        ch.bearer = 0;
        ch.realm.len = 0;
    }

    if (!ch.bearer && ctx->region->credentials.len == 0) {

        /*
         * The mirror has nothing to answer this challenge with: pass it
         * on, so that a client with its own credentials can.  Only Basic
         * lines: a Bearer realm is the mirror's to check and fetch, never
         * handed to a client unchecked (nginx 1.23 and later carry every
         * line over, 1.22 the first only).
         */

        (void) ngx_http_registry_headers(&r->headers_out.headers,
                                         &ngx_http_registry_www_authenticate,
                                         ngx_http_registry_hide_bearer,
                                         NULL);

        return ngx_http_registry_deny(r, NGX_HTTP_UNAUTHORIZED,
                                      "UNAUTHORIZED",
                                      "authentication required");
    }

    /*
     * From here on the mirror authenticates: the client gets no challenge,
     * not one line of it (nginx 1.23 and later carry every line over).
     */

    (void) ngx_http_registry_headers(&r->headers_out.headers,
                                     &ngx_http_registry_www_authenticate,
                                     ngx_http_registry_hide_line, NULL);
    r->headers_out.www_authenticate = NULL;

    if (ngx_http_registry_retry_token(r) || (h == NULL)) {
        return ngx_http_registry_deny(r, NGX_HTTP_FORBIDDEN, "DENIED",
                                      "the upstream registry refused access");
    }

    if (!ch.bearer) {
        (void) ngx_http_registry_token_set(r, &ctx->token_key,
                                           &ctx->region->credentials,
                                           ngx_time() + 3600);

        return ngx_http_registry_token_retry(r, &ctx->region->credentials);
    }

    /*
     * realm?service=...&scope=repository:<name>:pull, or the scopes the
     * challenge names (space-separated: one "scope" argument each)
     */

    if (ch.scope.len == 0) {
        ch.scope.data = ngx_strlchr(ctx->token_key.data,
                                    ctx->token_key.data + ctx->token_key.len,
                                    ' ')
                        + 1;
        ch.scope.len = ctx->token_key.data + ctx->token_key.len
                       - ch.scope.data;
    }

    p = ngx_pnalloc(r->pool, ch.realm.len + 3 * ch.service.len
                             + 10 * ch.scope.len
                             + sizeof("?service=&scope=") - 1);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->token_url.data = p;
    p = ngx_cpymem(p, ch.realm.data, ch.realm.len);
    *p++ = ngx_strlchr(ch.realm.data, ch.realm.data + ch.realm.len, '?')
           ? '&' : '?';

    if (ch.service.len) {
        p = ngx_cpymem(p, "service=", 8);
        p = (u_char *) ngx_escape_uri(p, ch.service.data, ch.service.len,
                                      NGX_ESCAPE_ARGS);
        *p++ = '&';
    }

    last = ch.scope.data + ch.scope.len;

    for (value.data = ch.scope.data; value.data < last; /* void */ ) {
        e = ngx_strlchr(value.data, last, ' ');
        if (e == NULL) {
            e = last;
        }

        value.len = e - value.data;

        if (value.len) {
            p = ngx_cpymem(p, "scope=", 6);
            p = (u_char *) ngx_escape_uri(p, value.data, value.len,
                                          NGX_ESCAPE_ARGS);
            *p++ = '&';
        }

        value.data = e + 1;
    }

    ctx->token_url.len = p - 1 - ctx->token_url.data;

fetch:

    rc = ngx_http_registry_realm(r, &ctx->token_url, ctx->region,
                                 &ctx->token_target);

    if (rc == NGX_AGAIN) {
        return NGX_AGAIN;
    }

    if (rc == NGX_DECLINED) {
        ngx_http_registry_stat(ctx->registry, tokens_failed);

        return ngx_http_registry_unavailable(r, ctx,
                                             "upstream token realm refused");
    }

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ps = ngx_palloc(r->pool, sizeof(ngx_http_post_subrequest_t));
    if (ps == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ps->handler = ngx_http_registry_token_done;
    ps->data = ctx;

    if (ngx_http_subrequest(r, &ngx_http_registry_token_uri, NULL, &sr, ps,
                            NGX_HTTP_SUBREQUEST_IN_MEMORY
                            |NGX_HTTP_SUBREQUEST_WAITED)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->token_sr = sr;

    return NGX_AGAIN;
}


/*
 * A fetch that failed on the way is a failed fetch, and the client gets
 * an OCI error (ngx_http_registry_subrequest_done()).
 */

static ngx_int_t
ngx_http_registry_token_done(ngx_http_request_t *r, void *data, ngx_int_t rc)
{
    ngx_uint_t                failed;
    ngx_http_registry_ctx_t  *ctx = data;

    failed = 0;
    rc = ngx_http_registry_subrequest_done(r, rc, &failed);

    if (failed) {
        ctx->token_failed = 1;

        if (r->connection->error) {
            return rc;
        }
    }

    ctx->token_done = 1;

    if (ctx->token_failed) {
        ctx->token_status = NGX_HTTP_BAD_GATEWAY;
        ctx->token_body = NULL;
        return rc;
    }

    ctx->token_status = r->headers_out.status;

    if (r->out) {
        ctx->token_body = r->out->buf;
    }

    return rc;
}


/*
 * Runs the request again through its location, now with the token.  The
 * redirect zeroes r->ctx, so the retry, and the token it is made with,
 * are kept in the pool.
 */

static ngx_int_t
ngx_http_registry_token_retry(ngx_http_request_t *r, ngx_str_t *value)
{
    ngx_pool_cleanup_t         *cln;
    ngx_http_registry_ctx_t    *ctx;
    ngx_http_registry_retry_t  *retry;

    if (!ngx_http_registry_redirects_left(r)) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "registry: no internal redirects left for a retry");

        return ngx_http_registry_deny(r, NGX_HTTP_BAD_GATEWAY, "UNAVAILABLE",
                                      "too many internal redirects");
    }

    cln = ngx_pool_cleanup_add(r->pool, sizeof(ngx_http_registry_retry_t));
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_registry_module);

    retry = cln->data;
    retry->token = *value;
    retry->region = ctx->region;

    cln->handler = ngx_http_registry_retried;

    (void) ngx_http_internal_redirect(r, &r->uri, &r->args);
    ngx_http_finalize_request(r, NGX_DONE);

    return NGX_DONE;
}


static void
ngx_http_registry_retried(void *data)
{
    ngx_http_registry_retry_t  *retry = data;

    /*
     * A marker: the request has already been retried with a fresh token.
     * Not empty: it is found by its address, and the compiler folds
     * identical functions into one (-fipa-icf).
     */

    retry->region = NULL;
}


/*
 * The token the request was retried with, NULL if it was not retried in
 * the region it is in now (another region is another token service).
 */

static ngx_str_t *
ngx_http_registry_retry_token(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t         *cln;
    ngx_http_registry_ctx_t    *ctx;
    ngx_http_registry_retry_t  *retry;

    for (cln = r->pool->cleanup; cln; cln = cln->next) {
        if (cln->handler == ngx_http_registry_retried) {
            retry = cln->data;
            ctx = ngx_http_get_module_ctx(r, ngx_http_registry_module);

            if (ctx && ctx->region && retry->region != ctx->region) {
                return NULL;
            }

            return &retry->token;
        }
    }

    return NULL;
}


/*
 * An upstream 429 that the cache could not answer (stale content would
 * have been served before this): an OCI body, with the upstream's
 * Retry-After, which nginx does not carry into an error_page itself.
 */

static ngx_int_t
ngx_http_registry_too_many(ngx_http_request_t *r)
{
    ngx_table_elt_t  *h, *ra;

    static ngx_str_t  retry_after = ngx_string("Retry-After");

    h = NULL;

    if (ngx_http_registry_headers(&r->upstream->headers_in.headers,
                                  &retry_after, ngx_http_registry_first_line,
                                  &h)
        == NGX_DONE)
    {
        ra = ngx_list_push(&r->headers_out.headers);
        if (ra == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        *ra = *h;
        ra->hash = 1;
    }

    return ngx_http_registry_deny(r, NGX_HTTP_TOO_MANY_REQUESTS,
                                  "TOOMANYREQUESTS",
                                  "the upstream registry is rate-limiting");
}


static ngx_int_t
ngx_http_registry_hide_bearer(ngx_table_elt_t *h, void *data)
{
    if (h->value.len < 5
        || ngx_strncasecmp(h->value.data, (u_char *) "Basic", 5) != 0
        || (h->value.len > 5 && h->value.data[5] != ' '))
    {
        h->hash = 0;
    }

    return NGX_OK;
}


/*
 * The mirror's own step failed (its token fetch): the next region, else a
 * tag's check serves stale, else 502.
 */

static ngx_int_t
ngx_http_registry_unavailable(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, char *message)
{
    if (ngx_http_registry_failover(r, ctx, NGX_HTTP_BAD_GATEWAY, message)
        == NGX_DONE)
    {
        return NGX_DONE;
    }

    if (ngx_http_registry_tag_stale(r, ctx, message) == NGX_DONE) {
        return NGX_DONE;
    }

    return ngx_http_registry_deny(r, NGX_HTTP_BAD_GATEWAY, "UNAVAILABLE",
                                  message);
}


static ngx_int_t
ngx_http_registry_deny(ngx_http_request_t *r, ngx_uint_t status, char *code,
    char *message)
{
    ngx_http_finalize_request(r, ngx_http_registry_send_oci_error(r, status,
                                                              code,
                                                              message));

    return NGX_DONE;
}
