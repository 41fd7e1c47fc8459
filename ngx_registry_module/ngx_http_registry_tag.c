
/*
 * Copyright (C) ngx_registry_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_registry.h"
#include "ngx_http_registry_grammar.h"
#include "ngx_http_registry_accept.h"
#include "ngx_http_registry_zone.h"
#include "ngx_http_registry_response.h"
#include "ngx_http_registry_history.h"
#include "ngx_http_registry_target.h"
#include "ngx_http_registry_auth.h"
#include "ngx_http_registry_tag.h"


/*
 * Tags, resolved by HEAD and served by digest.  nginx keeps one response
 * under one key, fixed before the request goes upstream, so a manifest
 * fetched by tag cannot also be filed under its digest afterwards.  So a
 * tag is never a cache key: the shared zone maps (registry, repository,
 * tag, normalised Accept) to the digest the upstream last named for it,
 * and the request is served through that digest's entry, "* manifest
 * <digest>", fetched by digest on a miss.  One copy per digest however
 * many tags, repositories and Accept lists lead to it, and a pull by
 * digest finds it with the upstream gone.
 *
 * A map entry checked within registry_tag_valid is used as it is.  Past
 * that, the request itself checks the tag: a HEAD of the tag upstream
 * (the same location, token retry and redirect following as any request),
 * which ends, once its answer is read, with NGX_HTTP_REGISTRY_TAG_NEXT
 * and the request running again, now by digest.  Docker Hub counts
 * manifest GETs against its pull limit, not HEADs.  A check that fails
 * (refused, timed out, 5xx, 429, a name that does not resolve) serves
 * the last known digest, stale; so does a check that takes longer than
 * registry_tag_check_timeout, and one the mirror's own token fetch or
 * redirect following cannot finish.  Immutable tags are pinned in a
 * share of the zone nothing evicts, so that no flood of other tags can
 * unpin one; the map itself is least recently used, and keeps nothing
 * for a tag before its upstream names a digest.
 *
 * What a request decided survives its internal redirects (which zero
 * r->ctx) in a mark kept in the request pool, found by its cleanup
 * handler, as the token retry keeps its own.
 */


typedef struct {
    time_t                     checked;     /* the upstream named it */
    time_t                     checking;    /* a check started */
    time_t                     failed;      /* the last check failed */
    size_t                     len;
    u_char                     digest[NGX_HTTP_REGISTRY_DIGEST_MAX];
} ngx_http_registry_tag_entry_t;


typedef struct {
    ngx_uint_t                 state;
    ngx_str_t                  digest;      /* the one to serve */
    ngx_str_t                  known;       /* before the check */
    ngx_str_t                  uri;         /* where the request runs */
    ngx_str_t                  args;
    ngx_http_request_t        *request;
    ngx_event_t                timer;
    unsigned                   pinned:1;
    unsigned                   revalidated:1;
    unsigned                   bytag:1;
    unsigned                   next:1;      /* the filter's own 599 */
    unsigned                   timed_out:1;
} ngx_http_registry_tag_mark_t;


static ngx_http_registry_tag_mark_t *ngx_http_registry_tag_mark(
    ngx_http_request_t *r);
static ngx_http_registry_tag_mark_t *ngx_http_registry_tag_mark_add(
    ngx_http_request_t *r);
static void ngx_http_registry_tag_cleanup(void *data);
static ngx_int_t ngx_http_registry_tag_key(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_tag_get(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_http_registry_tag_entry_t *e);
static void ngx_http_registry_tag_put(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_http_registry_tag_entry_t *e);
static ngx_int_t ngx_http_registry_tag_serve(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_http_registry_tag_mark_t *mark);
static ngx_uint_t ngx_http_registry_tag_immutable(ngx_http_request_t *r,
    ngx_str_t *tag);
static ngx_int_t ngx_http_registry_tag_pin(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_str_t *digest, ngx_str_t *pinned);
static ngx_int_t ngx_http_registry_tag_failed(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_http_registry_tag_mark_t *mark,
    char *why, ngx_uint_t status);
static ngx_int_t ngx_http_registry_tag_again(ngx_http_request_t *r,
    ngx_http_registry_tag_mark_t *mark);
static ngx_int_t ngx_http_registry_tag_fetch(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_http_registry_tag_mark_t *mark);
static ngx_int_t ngx_http_registry_tag_kept(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_http_registry_tag_mark_t *mark);
static void ngx_http_registry_tag_timeout(ngx_event_t *ev);
static void ngx_http_registry_tag_unmark(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static void ngx_http_registry_tag_named(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_str_t *digest);
static ngx_uint_t ngx_http_registry_tag_same(ngx_str_t *a, ngx_str_t *b);


static ngx_str_t  ngx_http_registry_tag_statuses[] = {
    ngx_string("STALE"),
    ngx_string("UPDATING"),
    ngx_string("REVALIDATED"),
    ngx_string("MISS")
};


/*
 * The route step, for a manifest asked for by tag: ctx has the tag's
 * upstream path and cache key; this decides whether the request checks
 * the tag upstream or is served by a digest, and rewrites both to the
 * digest's.
 */

ngx_int_t
ngx_http_registry_tag_route(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    time_t                          now;
    ngx_str_t                       known, type, pinned;
    ngx_uint_t                      restarted;
    ngx_http_registry_tag_mark_t   *mark;
    ngx_http_registry_tag_entry_t   e;
    ngx_http_registry_loc_conf_t   *rlcf;

    ctx->tag = ctx->reference;

    if (ngx_http_registry_tag_key(r, ctx) != NGX_OK) {
        return NGX_ERROR;
    }

    mark = ngx_http_registry_tag_mark(r);

    if (mark) {
        /* the same request again: what it decided before holds */
        return ngx_http_registry_tag_serve(r, ctx, mark);
    }

    rlcf = ngx_http_get_module_loc_conf(r, ngx_http_registry_module);
    now = ngx_time();

    mark = ngx_http_registry_tag_mark_add(r);
    if (mark == NULL) {
        return NGX_ERROR;
    }

    restarted = 0;

    if (ngx_http_registry_tag_get(r, ctx, &e) != NGX_OK) {

        /* after a restart the map is empty; the history remembers */

        ngx_memzero(&e, sizeof(ngx_http_registry_tag_entry_t));
        restarted = 1;

        if (ngx_http_registry_history_last(r, &ctx->registry->name,
                                           &ctx->repository, &ctx->tag,
                                           &ctx->accept, r->pool, &known,
                                           &type)
            == NGX_OK
            && known.len <= NGX_HTTP_REGISTRY_DIGEST_MAX)
        {
            e.len = known.len;
            ngx_memcpy(e.digest, known.data, known.len);
        }
    }

    /*
     * An immutable tag: its pin; after a restart, the digest the history
     * remembers is pinned again (a check pins a tag seen for the first
     * time, not every request).
     */

    known.data = e.digest;
    known.len = e.len;

    if (ngx_http_registry_tag_pin(r, ctx, (restarted && e.len) ? &known : NULL,
                                  &pinned)
        == NGX_OK)
    {
        e.len = pinned.len;
        ngx_memcpy(e.digest, pinned.data, pinned.len);
        mark->pinned = 1;
    }

    /*
     * Credentials the mirror knows nothing fresh of are checked with the
     * tag itself, whatever the map says: the check's answer decides.
     */

    if (e.len && ngx_http_registry_auth_known(r, ctx) == NGX_OK) {
        mark->known.data = ngx_pnalloc(r->pool, e.len);
        if (mark->known.data == NULL) {
            return NGX_ERROR;
        }

        mark->known.len = e.len;
        ngx_memcpy(mark->known.data, e.digest, e.len);
        mark->digest = mark->known;

        if (now < e.checked + rlcf->tag_valid) {
            mark->state = NGX_HTTP_REGISTRY_TAG_FRESH;
            return ngx_http_registry_tag_serve(r, ctx, mark);
        }

        /* a failed check is not repeated by every request of an outage */

        if (now < e.failed + rlcf->tag_valid) {
            mark->state = NGX_HTTP_REGISTRY_TAG_STALE;
            return ngx_http_registry_tag_serve(r, ctx, mark);
        }

        /* one check at a time; the others serve what is known meanwhile */

        if (now <= e.checking
                   + (time_t) (rlcf->tag_check_timeout / 1000) + 1)
        {
            mark->state = NGX_HTTP_REGISTRY_TAG_UPDATING;
            return ngx_http_registry_tag_serve(r, ctx, mark);
        }
    }

    mark->state = NGX_HTTP_REGISTRY_TAG_CHECK;

    /* a tag nothing is known of is not kept until its upstream names it */

    if (e.len) {
        e.checking = now;
        ngx_http_registry_tag_put(r, ctx, &e);
    }

    /* with a digest to fall back on, the check waits only so long */

    if (e.len && rlcf->tag_check_timeout) {
        mark->timer.handler = ngx_http_registry_tag_timeout;
        mark->timer.data = mark;
        mark->timer.log = r->connection->log;

        ngx_add_timer(&mark->timer, rlcf->tag_check_timeout);
    }

    return ngx_http_registry_tag_serve(r, ctx, mark);
}


/* what the mark says, applied to this pass's ctx */

static ngx_int_t
ngx_http_registry_tag_serve(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_http_registry_tag_mark_t *mark)
{
    u_char                        *p;
    ngx_http_registry_loc_conf_t  *rlcf;

    /*
     * A check timed out between its upstream requests is given up when
     * the request is back where it started: not in the upstream-error
     * location (which answers the upstream's error as a failed check
     * itself) nor at a redirect's target (a hop that hangs is given up
     * by the timer).
     */

    if (mark->state == NGX_HTTP_REGISTRY_TAG_CHECK && mark->timed_out
        && r->uri.len == mark->uri.len
        && ngx_strncmp(r->uri.data, mark->uri.data, r->uri.len) == 0
        && !((ngx_http_registry_loc_conf_t *)
             ngx_http_get_module_loc_conf(r, ngx_http_registry_module))
            ->upstream_errors)
    {
        ctx->tag_state = mark->state;
        (void) ngx_http_registry_tag_failed(r, ctx, mark, "timed out", 0);
    }

    ctx->tag_state = mark->state;
    ctx->tag_pinned = mark->pinned;
    ctx->tag_revalidated = mark->revalidated;

    if (mark->state != NGX_HTTP_REGISTRY_TAG_CHECK && mark->timer.timer_set) {
        ngx_del_timer(&mark->timer);
    }

    if (mark->state == NGX_HTTP_REGISTRY_TAG_CHECK
        || mark->state == NGX_HTTP_REGISTRY_TAG_FETCH)
    {
        return NGX_OK;
    }

    rlcf = ngx_http_get_module_loc_conf(r, ngx_http_registry_module);

    ctx->resolved = mark->digest;
    ctx->digest = 1;

    p = ngx_pnalloc(r->pool, ctx->registry->name.len + mark->digest.len
                             + sizeof(" manifest ") - 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ctx->cache_key.data = p;

    if (rlcf->verify) {
        p = ngx_sprintf(p, "* manifest %V", &mark->digest);

    } else {
        p = ngx_sprintf(p, "%V manifest %V", &ctx->registry->name,
                        &mark->digest);
    }

    ctx->cache_key.len = p - ctx->cache_key.data;

    if (mark->state == NGX_HTTP_REGISTRY_TAG_BYTAG) {
        return NGX_OK;              /* fetched by tag, kept by digest */
    }

    /* "/v2/<repository>/manifests/<tag>" becomes ".../<digest>" */

    p = ngx_pnalloc(r->pool, ctx->reference.data - ctx->uri.data
                             + mark->digest.len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(p, ctx->uri.data, ctx->reference.data - ctx->uri.data);
    ngx_memcpy(p + (ctx->reference.data - ctx->uri.data), mark->digest.data,
               mark->digest.len);

    ctx->uri.len = ctx->reference.data - ctx->uri.data + mark->digest.len;
    ctx->uri.data = p;

    return NGX_OK;
}


/* a check that ended saying nothing of the tag: others may check again */

static void
ngx_http_registry_tag_unmark(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    ngx_http_registry_tag_entry_t  e;

    if (ngx_http_registry_tag_get(r, ctx, &e) == NGX_OK && e.checking) {
        e.checking = 0;
        ngx_http_registry_tag_put(r, ctx, &e);
    }
}


/*
 * Called from the header filter for a fresh answer to a tag check (a HEAD
 * of the tag).  NGX_DECLINED: it is answered as it is (a client's HEAD,
 * or an answer the filter refuses); NGX_HTTP_REGISTRY_TAG_NEXT: the
 * request runs again as the mark now says.
 */

ngx_int_t
ngx_http_registry_tag_checked(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    ngx_str_t                      digest, served, pinned, *type;
    ngx_table_elt_t               *h;
    ngx_http_upstream_t           *u;
    ngx_http_registry_tag_mark_t  *mark;

    static ngx_str_t  digest_header = ngx_string("Docker-Content-Digest");

    u = r->upstream;
    mark = ngx_http_registry_tag_mark(r);

    if (mark == NULL) {
        return NGX_DECLINED;
    }

    /*
     * A loop says nothing of the upstream: the client's own CDN-Loop may
     * have made it.  Nothing shared is marked; the client gets the 508,
     * with its body, as any other answer below.
     */

    if (u->headers_in.status_n == NGX_HTTP_REGISTRY_LOOP_DETECTED) {
        ngx_http_registry_tag_unmark(r, ctx);
        return ngx_http_registry_tag_fetch(r, ctx, mark);
    }

    if (u->headers_in.status_n >= NGX_HTTP_INTERNAL_SERVER_ERROR
        && ngx_http_registry_tag_failed(r, ctx, mark, "answered",
                                        u->headers_in.status_n)
           == NGX_HTTP_REGISTRY_TAG_NEXT)
    {
        mark->next = 1;
        return NGX_HTTP_REGISTRY_TAG_NEXT;
    }

    /*
     * Any other answer is the upstream's word on the tag, and a HEAD has
     * no body to say it with: a client's GET gets it with its body, from
     * a GET of the tag.
     */

    if (u->headers_in.status_n != NGX_HTTP_OK) {

        return ngx_http_registry_tag_fetch(r, ctx, mark);
    }

    type = ngx_http_registry_manifest_type(r->headers_out.content_type.data,
                                           r->headers_out.content_type.len);
    if (type == NULL) {
        return NGX_DECLINED;        /* refused by the filter, logged */
    }

    h = NULL;

    if (ngx_http_registry_headers(&u->headers_in.headers, &digest_header,
                                  ngx_http_registry_first_line, &h)
        != NGX_DONE
        || ngx_http_registry_valid_digest(h->value.data, h->value.len)
           != NGX_OK)
    {
        /* no digest named: the tag is fetched, and its digest computed */

        return ngx_http_registry_tag_fetch(r, ctx, mark);
    }

    digest = h->value;
    served = digest;

    if (ngx_http_registry_tag_pin(r, ctx, &digest, &pinned) == NGX_OK) {
        mark->pinned = 1;

        if (!ngx_http_registry_tag_same(&pinned, &digest)) {
            ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                          "registry: immutable tag \"%V\" of \"%V\" "
                          "repository \"%V\" is %V upstream, still served "
                          "as %V", &ctx->tag, &ctx->registry->name,
                          &ctx->repository, &digest, &pinned);
            served = pinned;
        }
    }

    mark->revalidated = ngx_http_registry_tag_same(&served, &mark->known);

    mark->digest.data = ngx_pnalloc(r->pool, served.len);
    if (mark->digest.data == NULL) {
        return NGX_ERROR;
    }

    mark->digest.len = served.len;
    ngx_memcpy(mark->digest.data, served.data, served.len);

    ngx_http_registry_tag_named(r, ctx, &mark->digest);

    /* the tag is there for these credentials, and names this digest */

    ngx_http_registry_auth_named(r, ctx, &mark->digest);

    ctx->tag_revalidated = mark->revalidated;

    if (r->method == NGX_HTTP_HEAD
        && ngx_http_registry_tag_same(&served, &digest))
    {
        /* the check's own answer is the client's: one HEAD upstream */

        mark->state = NGX_HTTP_REGISTRY_TAG_RESOLVED;
        ctx->tag_state = NGX_HTTP_REGISTRY_TAG_RESOLVED;

        if (mark->timer.timer_set) {
            ngx_del_timer(&mark->timer);
        }

        return NGX_DECLINED;
    }

    mark->state = NGX_HTTP_REGISTRY_TAG_RESOLVED;
    mark->next = 1;

    return NGX_HTTP_REGISTRY_TAG_NEXT;
}


/*
 * A check that named no digest, or answered what a check should not: an
 * immutable tag keeps its pin; a client's HEAD gets the answer as it is;
 * a client's GET gets the tag fetched with a GET (NGX_DECLINED or
 * NGX_HTTP_REGISTRY_TAG_NEXT, as ngx_http_registry_tag_checked()).
 */

static ngx_int_t
ngx_http_registry_tag_fetch(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_http_registry_tag_mark_t *mark)
{
    if (mark->pinned && mark->known.len) {
        return ngx_http_registry_tag_kept(r, ctx, mark);
    }

    if (r->method == NGX_HTTP_HEAD) {
        return NGX_DECLINED;
    }

    mark->state = NGX_HTTP_REGISTRY_TAG_FETCH;
    mark->next = 1;

    return NGX_HTTP_REGISTRY_TAG_NEXT;
}


/*
 * An immutable tag whose check named no digest, or answered what a check
 * should not: the pin is what it was, and is served; checked all the same.
 */

static ngx_int_t
ngx_http_registry_tag_kept(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_http_registry_tag_mark_t *mark)
{
    ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                  "registry: immutable tag \"%V\" of \"%V\" repository "
                  "\"%V\": the upstream answered %ui with no digest, still "
                  "served as %V", &ctx->tag, &ctx->registry->name,
                  &ctx->repository, r->upstream->headers_in.status_n,
                  &mark->known);

    ngx_http_registry_tag_named(r, ctx, &mark->known);

    mark->state = NGX_HTTP_REGISTRY_TAG_RESOLVED;
    mark->digest = mark->known;
    mark->revalidated = 1;
    mark->next = 1;

    return NGX_HTTP_REGISTRY_TAG_NEXT;
}


/*
 * A check that the mirror's own steps could not finish (its token
 * service failed, a redirect was refused or ran out of room): as a check
 * the upstream failed, the last known digest is served.  NGX_DONE: the
 * request runs again so; NGX_DECLINED: not a check, or nothing known.
 */

ngx_int_t
ngx_http_registry_tag_stale(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, char *why)
{
    ngx_http_registry_tag_mark_t  *mark;

    if (ctx == NULL || ctx->tag_state != NGX_HTTP_REGISTRY_TAG_CHECK) {
        return NGX_DECLINED;
    }

    mark = ngx_http_registry_tag_mark(r);

    if (mark == NULL
        || ngx_http_registry_tag_failed(r, ctx, mark, why, 0)
           != NGX_HTTP_REGISTRY_TAG_NEXT
        || ngx_http_registry_tag_again(r, mark) != NGX_DONE)
    {
        return NGX_DECLINED;
    }

    return NGX_DONE;
}


/*
 * The upstream-error location, for a request of a tag.  NGX_DECLINED: not
 * the tag's business, handled as any request's; NGX_DONE: the request
 * runs again; an HTTP status: answer it with that.
 */

ngx_int_t
ngx_http_registry_tag_error(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    ngx_uint_t                     status;
    ngx_http_registry_tag_mark_t  *mark;

    status = ctx->error_status;
    mark = ngx_http_registry_tag_mark(r);

    if (status == NGX_HTTP_REGISTRY_TAG_NEXT) {
        if (mark == NULL || !mark->next) {
            /* an upstream's own 599 */
            return NGX_HTTP_BAD_GATEWAY;
        }

        mark->next = 0;

        return ngx_http_registry_tag_again(r, mark);
    }

    if (mark == NULL) {
        return NGX_DECLINED;
    }

    switch (ctx->tag_state) {

    case NGX_HTTP_REGISTRY_TAG_CHECK:

        if (status == NGX_HTTP_TOO_MANY_REQUESTS
            || status >= NGX_HTTP_INTERNAL_SERVER_ERROR)
        {
            if (ngx_http_registry_tag_failed(r, ctx, mark, "failed", status)
                == NGX_HTTP_REGISTRY_TAG_NEXT)
            {
                return ngx_http_registry_tag_again(r, mark);
            }

            return NGX_DECLINED;
        }

        /* an immutable tag is what it was, whatever became of it */

        if (status == NGX_HTTP_NOT_FOUND && mark->pinned && mark->known.len) {
            mark->state = NGX_HTTP_REGISTRY_TAG_RESOLVED;
            mark->digest = mark->known;
            return ngx_http_registry_tag_again(r, mark);
        }

        return NGX_DECLINED;

    case NGX_HTTP_REGISTRY_TAG_FRESH:
    case NGX_HTTP_REGISTRY_TAG_RESOLVED:
    case NGX_HTTP_REGISTRY_TAG_STALE:
    case NGX_HTTP_REGISTRY_TAG_UPDATING:

        if (status != NGX_HTTP_NOT_FOUND) {
            return NGX_DECLINED;
        }

        if (mark->pinned) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "registry: immutable tag \"%V\" of \"%V\" "
                          "repository \"%V\" is pinned at %V, which is "
                          "neither cached nor upstream any more",
                          &ctx->tag, &ctx->registry->name, &ctx->repository,
                          &mark->digest);
            return NGX_DECLINED;
        }

        /*
         * A registry that names a digest for a tag it cannot serve by
         * that digest: distribution converts schema 2 images to schema 1
         * for clients that accept nothing newer, and names the converted
         * manifest's digest.  Fetched by tag, and kept by that digest.
         */

        if (mark->bytag) {
            return NGX_DECLINED;
        }

        mark->bytag = 1;
        mark->state = NGX_HTTP_REGISTRY_TAG_BYTAG;

        return ngx_http_registry_tag_again(r, mark);

    default:
        return NGX_DECLINED;
    }
}


/*
 * A check that could not name a digest: with a digest known, that one is
 * served, stale, and the tag is not checked again for registry_tag_valid.
 */

static ngx_int_t
ngx_http_registry_tag_failed(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_http_registry_tag_mark_t *mark,
    char *why, ngx_uint_t status)
{
    ngx_http_registry_tag_entry_t  e;

    /* credentials nothing fresh is known of get no guess */

    if (mark->known.len == 0
        || ngx_http_registry_auth_known(r, ctx) != NGX_OK)
    {
        return NGX_DECLINED;
    }

    ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                  "registry: tag check of \"%V\" repository \"%V\" tag "
                  "\"%V\" %s (status %ui); serving the last known digest %V",
                  &ctx->registry->name, &ctx->repository, &ctx->tag, why,
                  status, &mark->known);

    if (mark->timer.timer_set) {
        ngx_del_timer(&mark->timer);
    }

    mark->state = NGX_HTTP_REGISTRY_TAG_STALE;
    mark->digest = mark->known;

    if (ngx_http_registry_tag_get(r, ctx, &e) != NGX_OK) {
        ngx_memzero(&e, sizeof(ngx_http_registry_tag_entry_t));
        e.len = mark->known.len;
        ngx_memcpy(e.digest, mark->known.data, e.len);
    }

    e.checking = 0;
    e.failed = ngx_time();

    ngx_http_registry_tag_put(r, ctx, &e);

    return NGX_HTTP_REGISTRY_TAG_NEXT;
}


/* runs the request again, in the location it came through */

static ngx_int_t
ngx_http_registry_tag_again(ngx_http_request_t *r,
    ngx_http_registry_tag_mark_t *mark)
{
    /*
     * Serving what is known is the failover of a tag's check: it may
     * take the redirects kept for failover, leaving one for an error page.
     */

    if (r->uri_changes <= 2) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "registry: no internal redirects left to serve a "
                      "tag by digest");
        return NGX_HTTP_BAD_GATEWAY;
    }

    (void) ngx_http_internal_redirect(r, &mark->uri, &mark->args);
    ngx_http_finalize_request(r, NGX_DONE);

    return NGX_DONE;
}


/*
 * The check took longer than registry_tag_check_timeout (a resolver that
 * does not answer, a registry that accepts and says nothing): it is
 * given up, as nginx gives up an upstream request before it starts
 * another, and the last known digest is served.  A check waiting for
 * its token is left to run.
 */

static void
ngx_http_registry_tag_timeout(ngx_event_t *ev)
{
    ngx_connection_t               *c;
    ngx_http_request_t             *r;
    ngx_http_upstream_t            *u;
    ngx_http_registry_ctx_t        *ctx;
    ngx_http_registry_tag_mark_t   *mark;

    mark = ev->data;
    r = mark->request;
    c = r->connection;
    u = r->upstream;

    ctx = ngx_http_get_module_ctx(r, ngx_http_registry_module);

    if (mark->state != NGX_HTTP_REGISTRY_TAG_CHECK || ctx == NULL
        || ctx->registry == NULL)
    {
        return;
    }

    /*
     * Between upstream requests (a token being fetched, a redirect's
     * name being resolved): the next pass of the request serves stale,
     * and an upstream request started meanwhile is given up here.
     */

    if (u == NULL || u->cleanup == NULL || u->header_sent
        || !ngx_http_registry_redirects_left(r))
    {
        mark->timed_out = 1;
        ngx_add_timer(&mark->timer, 200);
        return;
    }

    if (ngx_http_registry_tag_failed(r, ctx, mark, "timed out", 0)
        != NGX_HTTP_REGISTRY_TAG_NEXT)
    {
        return;
    }

    /* as ngx_http_upstream_create() drops an upstream still running */

    r->main->count++;
    (*u->cleanup)(r);

    (void) ngx_http_internal_redirect(r, &mark->uri, &mark->args);
    ngx_http_finalize_request(r, NGX_DONE);

    ngx_http_run_posted_requests(c);
}


/* a manifest answered for a tag: the tag's history learns of it */

void
ngx_http_registry_tag_served(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_str_t *digest, ngx_str_t *type)
{
    if (ctx->tag.len == 0 || digest->len == 0) {
        return;
    }

    (void) ngx_http_registry_history_seen(r, &ctx->registry->name,
                                          &ctx->repository, &ctx->tag,
                                          &ctx->accept, digest, type);
}


/*
 * The X-Registry-Cache of a tag: the digest entry's own, unless the tag
 * made it otherwise (served stale, a check running, checked and found
 * unchanged, or fetched by tag).
 */

ngx_str_t *
ngx_http_registry_tag_cache_status(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    switch (ctx->tag_state) {

    case NGX_HTTP_REGISTRY_TAG_STALE:
        return &ngx_http_registry_tag_statuses[0];

    case NGX_HTTP_REGISTRY_TAG_UPDATING:
        return &ngx_http_registry_tag_statuses[1];

    case NGX_HTTP_REGISTRY_TAG_RESOLVED:
        return ctx->tag_revalidated ? &ngx_http_registry_tag_statuses[2]
                                    : NULL;

    case NGX_HTTP_REGISTRY_TAG_CHECK:
    case NGX_HTTP_REGISTRY_TAG_FETCH:
        return &ngx_http_registry_tag_statuses[3];

    default:
        return NULL;
    }
}


/*
 * A tag's manifest filled and matched its digest: the history learns of
 * it.  A tag fetched because its upstream names no digest: the digest
 * computed over the body that went out whole goes into the map, and the
 * tag is served by it from then on.
 */

ngx_int_t
ngx_http_registry_tag_log_handler(ngx_http_request_t *r)
{
    ngx_str_t                 digest, pinned;
    ngx_http_registry_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_registry_module);

    if (ctx == NULL || ctx->registry == NULL || ctx->tag.len == 0
        || !ctx->verified || r->headers_out.status != NGX_HTTP_OK)
    {
        return NGX_OK;
    }

    /* a tag's fill by digest: the history learns of it once it matched */

    if (ctx->tag_state != NGX_HTTP_REGISTRY_TAG_FETCH) {
        ngx_http_registry_tag_served(r, ctx, &ctx->expected,
                                     &r->headers_out.content_type);
        return NGX_OK;
    }

    /* the GET may name the digest its HEAD did not; the body matched it */

    digest = ctx->computed.len ? ctx->computed : ctx->expected;

    if (digest.len == 0 || digest.len > NGX_HTTP_REGISTRY_DIGEST_MAX) {
        return NGX_OK;
    }

    if (ngx_http_registry_tag_pin(r, ctx, &digest, &pinned) == NGX_OK) {
        digest = pinned;
    }

    ngx_http_registry_tag_named(r, ctx, &digest);

    ngx_http_registry_tag_served(r, ctx, &digest,
                                 &r->headers_out.content_type);

    return NGX_OK;
}


/*
 * $registry_method: HEAD while the tag is checked, else the client's;
 * $registry_tag_check: "1" while the answer is the tag's, not a digest's
 * (neither stored nor taken from the cache); $registry_digest: the digest
 * a manifest was answered with; $registry_refill: "1" while another
 * upstream's private entry is fetched again (not taken from the cache,
 * stored).
 */

ngx_int_t
ngx_http_registry_tag_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t                 s;
    ngx_http_registry_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_registry_module);

    ngx_str_null(&s);

    switch (data) {

    case 0:
        s = r->method_name;

        if (ctx && (ctx->tag_state == NGX_HTTP_REGISTRY_TAG_CHECK
                    || ctx->auth_state == NGX_HTTP_REGISTRY_AUTH_CHECK))
        {
            ngx_str_set(&s, "HEAD");
        }

        break;

    case 1:
        if (ctx && (ctx->tag_state == NGX_HTTP_REGISTRY_TAG_CHECK
                    || ctx->tag_state == NGX_HTTP_REGISTRY_TAG_FETCH
                    || ctx->auth_state == NGX_HTTP_REGISTRY_AUTH_CHECK))
        {
            ngx_str_set(&s, "1");
        }

        break;

    case 3:
        if (ctx && ctx->auth_state == NGX_HTTP_REGISTRY_AUTH_REFILL) {
            ngx_str_set(&s, "1");
        }

        break;

    default:
        if (ctx && ctx->endpoint == NGX_HTTP_REGISTRY_MANIFEST) {
            s = ctx->expected.len ? ctx->expected : ctx->computed;
        }

        break;
    }

    if (s.len == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    ngx_http_registry_set_value(v, &s);

    return NGX_OK;
}


/* registry_immutable_tags <regex> ...; */

char *
ngx_http_registry_immutable_tags(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
#if (NGX_PCRE)
    ngx_http_registry_loc_conf_t *rlcf = conf;

    ngx_str_t             *value;
    ngx_uint_t             i;
    ngx_regex_elt_t       *re;
    ngx_regex_compile_t    rc;
    u_char                 errstr[NGX_MAX_CONF_ERRSTR];

    if (rlcf->immutable_tags != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    rlcf->immutable_tags = NULL;

    if (cf->args->nelts == 2 && ngx_strcmp(value[1].data, "off") == 0) {
        return NGX_CONF_OK;
    }

    rlcf->immutable_tags = ngx_array_create(cf->pool, cf->args->nelts - 1,
                                            sizeof(ngx_regex_elt_t));
    if (rlcf->immutable_tags == NULL) {
        return NGX_CONF_ERROR;
    }

    for (i = 1; i < cf->args->nelts; i++) {
        ngx_memzero(&rc, sizeof(ngx_regex_compile_t));

        rc.pattern = value[i];
        rc.pool = cf->pool;
        rc.err.len = NGX_MAX_CONF_ERRSTR;
        rc.err.data = errstr;

        if (ngx_regex_compile(&rc) != NGX_OK) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "%V", &rc.err);
            return NGX_CONF_ERROR;
        }

        re = ngx_array_push(rlcf->immutable_tags);
        if (re == NULL) {
            return NGX_CONF_ERROR;
        }

        re->regex = rc.regex;
        re->name = value[i].data;
    }

    return NGX_CONF_OK;

#else

    return "needs nginx built with PCRE";

#endif
}


static ngx_uint_t
ngx_http_registry_tag_immutable(ngx_http_request_t *r, ngx_str_t *tag)
{
#if (NGX_PCRE)
    ngx_http_registry_loc_conf_t  *rlcf;

    rlcf = ngx_http_get_module_loc_conf(r, ngx_http_registry_module);

    if (rlcf->immutable_tags == NULL) {
        return 0;
    }

    return ngx_regex_exec_array(rlcf->immutable_tags, tag,
                                r->connection->log)
           == NGX_OK;
#else
    return 0;
#endif
}


/*
 * An immutable tag's pin, in the zone's share for pins, where nothing is
 * evicted: a flood of other tags cannot unpin it.  With digest, the tag
 * is pinned at it unless pinned already.  NGX_OK: *pinned is the pin;
 * NGX_DECLINED: not an immutable tag, not pinned, or no room for a pin
 * (logged: the tag then follows its upstream).
 */

static ngx_int_t
ngx_http_registry_tag_pin(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_str_t *digest, ngx_str_t *pinned)
{
    ngx_int_t                       rc;
    ngx_http_registry_main_conf_t  *rmcf;

    rmcf = ngx_http_get_module_main_conf(r, ngx_http_registry_module);

    if (rmcf->zone == NULL
        || !ngx_http_registry_tag_immutable(r, &ctx->tag))
    {
        return NGX_DECLINED;
    }

    if (digest == NULL) {
        return ngx_http_registry_zone_get(rmcf->zone,
                                          NGX_HTTP_REGISTRY_ZONE_PIN,
                                          &ctx->tag_key, r->pool, pinned)
               == NGX_OK
               ? NGX_OK : NGX_DECLINED;
    }

    rc = ngx_http_registry_zone_keep(rmcf->zone, NGX_HTTP_REGISTRY_ZONE_PIN,
                                     &ctx->tag_key, digest, r->pool, pinned);

    if (rc == NGX_DECLINED) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "registry: immutable tag \"%V\" of \"%V\" "
                      "repository \"%V\" not pinned: the shared zone's "
                      "share for pins is full", &ctx->tag,
                      &ctx->registry->name, &ctx->repository);
    }

    return rc == NGX_OK ? NGX_OK : NGX_DECLINED;
}


static ngx_http_registry_tag_mark_t *
ngx_http_registry_tag_mark(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t  *cln;

    for (cln = r->pool->cleanup; cln; cln = cln->next) {
        if (cln->handler == ngx_http_registry_tag_cleanup) {
            return cln->data;
        }
    }

    return NULL;
}


static ngx_http_registry_tag_mark_t *
ngx_http_registry_tag_mark_add(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t            *cln;
    ngx_http_registry_tag_mark_t  *mark;

    cln = ngx_pool_cleanup_add(r->pool, sizeof(ngx_http_registry_tag_mark_t));
    if (cln == NULL) {
        return NULL;
    }

    mark = cln->data;
    ngx_memzero(mark, sizeof(ngx_http_registry_tag_mark_t));

    mark->request = r;
    mark->uri = r->uri;
    mark->args = r->args;

    cln->handler = ngx_http_registry_tag_cleanup;

    return mark;
}


static void
ngx_http_registry_tag_cleanup(void *data)
{
    ngx_http_registry_tag_mark_t  *mark = data;

    if (mark->timer.timer_set) {
        ngx_del_timer(&mark->timer);
    }
}


/* "<registry> <repository> <tag> <normalised Accept>" */

static ngx_int_t
ngx_http_registry_tag_key(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    u_char  *p;

    p = ngx_pnalloc(r->pool, ctx->registry->name.len + ctx->repository.len
                             + ctx->tag.len + ctx->accept.len + 3);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ctx->tag_key.data = p;
    p = ngx_sprintf(p, "%V %V %V %V", &ctx->registry->name,
                    &ctx->repository, &ctx->tag, &ctx->accept);
    ctx->tag_key.len = p - ctx->tag_key.data;

    return NGX_OK;
}


static ngx_int_t
ngx_http_registry_tag_get(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_http_registry_tag_entry_t *e)
{
    ngx_str_t                       value;
    ngx_http_registry_main_conf_t  *rmcf;

    rmcf = ngx_http_get_module_main_conf(r, ngx_http_registry_module);

    if (rmcf->zone == NULL
        || ngx_http_registry_zone_get(rmcf->zone, NGX_HTTP_REGISTRY_ZONE_TAG,
                                      &ctx->tag_key, r->pool, &value)
           != NGX_OK
        || value.len != sizeof(ngx_http_registry_tag_entry_t))
    {
        return NGX_DECLINED;
    }

    ngx_memcpy(e, value.data, sizeof(ngx_http_registry_tag_entry_t));

    if (e->len > NGX_HTTP_REGISTRY_DIGEST_MAX) {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/*
 * Not atomic with the get before it: two workers checking the same tag at
 * once may both write, and the later wins; each wrote what its upstream
 * said.  Kept for a year, or until the zone's share for tags needs room.
 */

static void
ngx_http_registry_tag_put(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_http_registry_tag_entry_t *e)
{
    ngx_str_t                       value;
    ngx_http_registry_main_conf_t  *rmcf;

    rmcf = ngx_http_get_module_main_conf(r, ngx_http_registry_module);

    if (rmcf->zone == NULL) {
        return;
    }

    value.data = (u_char *) e;
    value.len = sizeof(ngx_http_registry_tag_entry_t);

    if (ngx_http_registry_zone_set(rmcf->zone, NGX_HTTP_REGISTRY_ZONE_TAG,
                                   &ctx->tag_key, &value,
                                   ngx_time() + 365 * 24 * 60 * 60)
        != NGX_OK)
    {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "registry: the shared zone could not keep the tag "
                      "\"%V\"", &ctx->tag_key);
    }
}


/*
 * The tag is now digest, checked now: an entry written whole, nothing of
 * the one before kept (no check running, none failed).
 */

static void
ngx_http_registry_tag_named(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_str_t *digest)
{
    ngx_http_registry_tag_entry_t  e;

    ngx_memzero(&e, sizeof(ngx_http_registry_tag_entry_t));

    e.len = digest->len;
    ngx_memcpy(e.digest, digest->data, digest->len);
    e.checked = ngx_time();

    ngx_http_registry_tag_put(r, ctx, &e);
}


static ngx_uint_t
ngx_http_registry_tag_same(ngx_str_t *a, ngx_str_t *b)
{
    return a->len == b->len && ngx_strncmp(a->data, b->data, a->len) == 0;
}
