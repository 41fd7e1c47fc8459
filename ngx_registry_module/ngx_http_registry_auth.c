
/*
 * Copyright (C) ngx_registry_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <openssl/evp.h>
#include "ngx_http_registry.h"
#include "ngx_http_registry_grammar.h"
#include "ngx_http_registry_challenge.h"
#include "ngx_http_registry_grant.h"
#include "ngx_http_registry_zone.h"
#include "ngx_http_registry_response.h"
#include "ngx_http_registry_target.h"
#include "ngx_http_registry_auth.h"


/*
 * Clients that bring their own credentials ("registry ... auth=client",
 * an edge in front of a private Harbor).  The mirror challenges them as
 * a registry does, with its own token endpoint as the realm (the relay
 * below, which passes their token request on to the upstream's realm),
 * and before anything is served to a request with credentials it knows
 * two things: these credentials may pull this repository, and the digest
 * asked for belongs to this repository (blobs are cached once per digest,
 * so a blob of team-b/secret must not be had as team-a/app/blobs/<it>).
 *
 * What it knows is kept in the zone's share for decisions, keyed by
 * hashes, never by the credentials themselves:
 *
 *   "G <hash of the Authorization>"  what a token the relay handed out
 *       grants (its JWT "access" claim) and what it was asked for, until
 *       the token expires: no upstream request for it;
 *   "D <hash> <registry> <repository>"  the upstream's own answer to a
 *       request with these credentials, "1" or "0", for
 *       registry_auth_valid (never past a JWT's "exp"); "-" for requests
 *       without credentials;
 *   "M <registry> <repository> <digest>"  the digest belongs to the
 *       repository: the upstream answered it there, a tag of it named
 *       it, or a verified manifest of it lists it.
 *
 * What is not known is learnt by the request itself: it runs as a HEAD
 * of its own reference upstream with its own credentials (the same
 * location, so redirects are followed and a request without credentials
 * gets the mirror's token), and runs again once the answer is read, as
 * a tag check does.  Fills made with a client's credentials are stored
 * under the usual digest keys, marked private in the cache file (its
 * ETag field, which nginx keeps only to revalidate, and digests are never
 * revalidated); a private entry is served on any route only to a request
 * that passes both checks, one without credentials included.
 */


#define NGX_HTTP_REGISTRY_AUTH_HASH      64
#define NGX_HTTP_REGISTRY_AUTH_MEMBER    (24 * 60 * 60)
#define NGX_HTTP_REGISTRY_AUTH_VALUE     4096
#define NGX_HTTP_REGISTRY_RELAY_BODY     8192

#define NGX_HTTP_REGISTRY_AUTH_MARK      17      /* "registry:private:" */
#define NGX_HTTP_REGISTRY_AUTH_MARK_LEN  NGX_HTTP_REGISTRY_PRIVATE_MARK


typedef struct {
    ngx_uint_t                 state;
    ngx_str_t                  uri;         /* where the request runs */
    ngx_str_t                  args;
    ngx_str_t                  proved;      /* the digest checked */
    unsigned                   next:1;      /* the filter's own 599 */
} ngx_http_registry_auth_mark_t;


/* the token relay's progress, in its request's ctx */

typedef struct {
    ngx_str_t                  form;        /* to the realm, POSTed */
    ngx_str_t                  requested;   /* upstream names, spaced */
    ngx_str_t                  challenge;   /* the upstream's, raw */
    ngx_http_request_t        *probe;
    ngx_http_request_t        *sr;
    ngx_uint_t                 status;
    ngx_buf_t                 *answer;
    ngx_str_t                  basic;       /* the realm's challenge */
    unsigned                   post:1;
    unsigned                   read:1;
    unsigned                   parsed:1;
    unsigned                   done:1;
    unsigned                   failed:1;
} ngx_http_registry_relay_t;


typedef struct {
    u_char                    *pos;
    u_char                    *end;
    ngx_str_t                  requested;
} ngx_http_registry_auth_names_t;


static ngx_http_registry_auth_mark_t *ngx_http_registry_auth_mark(
    ngx_http_request_t *r);
static ngx_http_registry_auth_mark_t *ngx_http_registry_auth_mark_add(
    ngx_http_request_t *r);
static void ngx_http_registry_auth_cleanup(void *data);
static ngx_int_t ngx_http_registry_auth_again(ngx_http_request_t *r,
    ngx_http_registry_auth_mark_t *mark);
static void ngx_http_registry_auth_hash(u_char *p, size_t len, u_char *hex);
static ngx_int_t ngx_http_registry_auth_principal(ngx_http_request_t *r,
    ngx_str_t *principal);
static ngx_int_t ngx_http_registry_auth_allowed(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_str_t *principal);
static ngx_int_t ngx_http_registry_auth_member(ngx_http_request_t *r,
    ngx_http_registry_t *reg, ngx_str_t *repository, ngx_str_t *digest);
static ngx_int_t ngx_http_registry_auth_proved(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_http_registry_auth_mark_t *mark);
static void ngx_http_registry_auth_record(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_str_t *digest, ngx_uint_t allowed);
static ngx_int_t ngx_http_registry_auth_set(ngx_http_request_t *r,
    ngx_str_t *key, ngx_str_t *value, time_t expires);
static ngx_int_t ngx_http_registry_auth_get(ngx_http_request_t *r,
    ngx_str_t *key, ngx_str_t *value);
static ngx_int_t ngx_http_registry_auth_listed(ngx_str_t *list,
    ngx_str_t *name);
static ngx_int_t ngx_http_registry_auth_collect(ngx_str_t *name, void *data);
static ngx_int_t ngx_http_registry_auth_nothing(ngx_str_t *name, void *data);
static ngx_int_t ngx_http_registry_auth_member_add(ngx_str_t *digest,
    void *data);
static ngx_uint_t ngx_http_registry_auth_private(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);

static time_t ngx_http_registry_auth_expires(ngx_http_request_t *r,
    ngx_str_t *credentials);
static ngx_int_t ngx_http_registry_auth_realm(ngx_http_request_t *r,
    ngx_str_t *realm);

static void ngx_http_registry_relay_body(ngx_http_request_t *r);
static ngx_int_t ngx_http_registry_relay_parse(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_http_registry_relay_t *rl);
static ngx_int_t ngx_http_registry_relay_scopes(ngx_http_request_t *r,
    ngx_http_registry_t *reg, ngx_str_t *value);
static ngx_int_t ngx_http_registry_relay_challenge(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_http_registry_relay_t *rl,
    ngx_uint_t learnt);
static ngx_int_t ngx_http_registry_relay_url(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_http_registry_relay_t *rl);
static ngx_int_t ngx_http_registry_relay_start(ngx_http_request_t *r,
    ngx_str_t *uri, ngx_http_request_t **srp, ngx_http_registry_relay_t *rl,
    ngx_http_post_subrequest_pt handler);
static ngx_int_t ngx_http_registry_relay_done(ngx_http_request_t *r,
    void *data, ngx_int_t rc);
static ngx_int_t ngx_http_registry_probe_done(ngx_http_request_t *r,
    void *data, ngx_int_t rc);
static ngx_int_t ngx_http_registry_relay_answer(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_http_registry_relay_t *rl);
static void ngx_http_registry_relay_grants(ngx_http_request_t *r,
    ngx_http_registry_t *reg, ngx_http_registry_relay_t *rl,
    ngx_str_t *body);
static ngx_int_t ngx_http_registry_relay_finish(ngx_http_request_t *r,
    ngx_uint_t status, char *code, char *message);
static ngx_int_t ngx_http_registry_auth_unescape(ngx_pool_t *pool,
    ngx_str_t *raw, ngx_str_t *value);
static ngx_int_t ngx_http_registry_auth_raw(ngx_str_t *value);


static ngx_str_t  ngx_http_registry_www_authenticate =
    ngx_string("WWW-Authenticate");
static ngx_str_t  ngx_http_registry_probe_uri =
    ngx_string("/_registry/probe");
static ngx_str_t  ngx_http_registry_relay_uri =
    ngx_string("/_registry/relay");


/*
 * The client's own Authorization, when it is the client's business with
 * the upstream: not when the operator's access control has read it
 * (auth_basic in front of the mirror parses it into r->headers_in.user),
 * nor where the operator says credentials are the mirror's
 * (registry_client_credentials off: "satisfy any", auth_request), for
 * those credentials are the operator's and stop here.
 */

ngx_str_t *
ngx_http_registry_client_credentials(ngx_http_request_t *r)
{
    ngx_http_registry_loc_conf_t  *rlcf;

    rlcf = ngx_http_get_module_loc_conf(r, ngx_http_registry_module);

    if (r->headers_in.authorization == NULL
        || r->headers_in.user.data != NULL
        || !rlcf->client_credentials)
    {
        return NULL;
    }

    return &r->headers_in.authorization->value;
}


/* a request with its own credentials, for a registry whose clients log in */

ngx_uint_t
ngx_http_registry_auth_client(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    return ctx->registry && ctx->registry->client_auth
           && ngx_http_registry_client_credentials(r) != NULL;
}


/*
 * For a tag of such a request: NGX_OK when these credentials are known to
 * pull its repository (its digest then is the tag map's word), else
 * NGX_DECLINED: the tag is checked upstream with them.  Requests without
 * credentials, and registries whose clients do not log in: NGX_OK.
 */

ngx_int_t
ngx_http_registry_auth_known(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    ngx_str_t                       principal;
    ngx_http_registry_auth_mark_t  *mark;

    if (!ngx_http_registry_auth_client(r, ctx)) {
        return NGX_OK;
    }

    mark = ngx_http_registry_auth_mark(r);

    if (mark && mark->state == NGX_HTTP_REGISTRY_AUTH_PROVED) {
        return NGX_OK;
    }

    if (ngx_http_registry_auth_principal(r, &principal) != NGX_OK) {
        return NGX_DECLINED;
    }

    return ngx_http_registry_auth_allowed(r, ctx, &principal) == NGX_OK
           ? NGX_OK : NGX_DECLINED;
}


/*
 * The precontent phase (after the operator's access control, which
 * "satisfy any" may cut short, so not in the access phase): a request
 * with credentials is served only once both checks pass; what is not
 * known, the request learns upstream first.
 */

ngx_int_t
ngx_http_registry_auth_handler(ngx_http_request_t *r)
{
    ngx_int_t                       rc;
    ngx_str_t                       principal;
    ngx_http_registry_ctx_t        *ctx;
    ngx_http_registry_auth_mark_t  *mark;
    ngx_http_registry_loc_conf_t   *rlcf;

    rlcf = ngx_http_get_module_loc_conf(r, ngx_http_registry_module);

    if (rlcf->auth_relay) {
        return ngx_http_registry_auth_relay_handler(r);
    }

    if (r != r->main || rlcf->upstream_errors) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_registry_module);

    if (ctx == NULL || ctx->registry == NULL) {
        return NGX_DECLINED;
    }

    mark = ngx_http_registry_auth_mark(r);

    if (mark
        && (mark->state != NGX_HTTP_REGISTRY_AUTH_NONE
            || r->uri.len != mark->uri.len
            || ngx_strncmp(r->uri.data, mark->uri.data, r->uri.len) != 0))
    {
        /* decided before this pass (a check running, or done), or a hop */
        ctx->auth_state = mark->state;
        return NGX_DECLINED;
    }

    if (!ngx_http_registry_auth_client(r, ctx)) {
        return NGX_DECLINED;
    }

    /* a tags list or referrers answer with credentials is not cached */

    if (ctx->endpoint != NGX_HTTP_REGISTRY_BLOB
        && ctx->endpoint != NGX_HTTP_REGISTRY_MANIFEST)
    {
        return NGX_DECLINED;
    }

    if (ngx_http_registry_auth_principal(r, &principal) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_registry_auth_allowed(r, ctx, &principal);

    if (rc == NGX_ABORT) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "registry: credentials refused for \"%V\" repository "
                      "\"%V\"", &ctx->registry->name, &ctx->repository);

        ngx_http_finalize_request(r,
            ngx_http_registry_send_oci_error(r, NGX_HTTP_FORBIDDEN, "DENIED",
                              "the upstream registry refused access"));
        return NGX_DONE;
    }

    /*
     * Credentials nothing fresh is known of, in a JWT past its own "exp":
     * refused here (registries allow a minute's leeway, so the check
     * upstream could still pass).  A claim the client could have forged
     * can only shorten what its holder gets.
     */

    if (rc != NGX_OK
        && ngx_http_registry_auth_expires(r,
                                   ngx_http_registry_client_credentials(r))
           <= ngx_time())
    {
        return ngx_http_registry_auth_challenge(r, ctx->registry,
                                                &ctx->client_name,
                                                "the token has expired");
    }

    /* a tag: its digest is the tag map's word, or the check's */

    if (ctx->tag.len) {
        if (rc == NGX_OK && ctx->resolved.len) {
            ctx->auth_state = NGX_HTTP_REGISTRY_AUTH_PROVED;
        }

        return NGX_DECLINED;
    }

    if (rc == NGX_OK
        && ngx_http_registry_auth_member(r, ctx->registry, &ctx->repository,
                                         &ctx->reference)
           == NGX_OK)
    {
        /* known for this pass: the filter need not look again */
        ctx->auth_state = NGX_HTTP_REGISTRY_AUTH_PROVED;
        return NGX_DECLINED;
    }

    if (mark == NULL) {
        mark = ngx_http_registry_auth_mark_add(r);
        if (mark == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    mark->state = NGX_HTTP_REGISTRY_AUTH_CHECK;
    ctx->auth_state = NGX_HTTP_REGISTRY_AUTH_CHECK;

    return NGX_DECLINED;
}


/*
 * The header filter, for an upstream's answer or a cache hit.
 * NGX_DECLINED: answered as usual; NGX_HTTP_REGISTRY_AUTH_NEXT: the
 * request runs again (checked now, or to be checked first).
 */

ngx_int_t
ngx_http_registry_auth_filter(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    ngx_str_t                      *digest;
    ngx_uint_t                      private;
    ngx_table_elt_t                *etag;
    ngx_http_upstream_t            *u;
    ngx_http_registry_auth_mark_t  *mark;

    u = r->upstream;
    mark = ngx_http_registry_auth_mark(r);

    if (!r->cached) {

        if (ctx->auth_state == NGX_HTTP_REGISTRY_AUTH_CHECK) {

            ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "registry: access check answered %ui, mark %p",
                           u->headers_in.status_n, mark);

            if (u->headers_in.status_n != NGX_HTTP_OK || mark == NULL) {
                return NGX_DECLINED;
            }

            /* the upstream served it here, with these credentials */

            digest = ctx->resolved.len ? &ctx->resolved : &ctx->reference;

            ngx_http_registry_auth_record(r, ctx, digest, 1);

            mark->state = NGX_HTTP_REGISTRY_AUTH_PROVED;
            mark->proved = *digest;

            if (r->method == NGX_HTTP_HEAD) {
                ctx->auth_state = NGX_HTTP_REGISTRY_AUTH_PROVED;
                return NGX_DECLINED;
            }

            mark->next = 1;
            return NGX_HTTP_REGISTRY_AUTH_NEXT;
        }

#if (NGX_HTTP_CACHE)
        if (u->headers_in.status_n != NGX_HTTP_OK || r->cache == NULL) {
            return NGX_DECLINED;
        }
#else
        return NGX_DECLINED;
#endif

        /*
         * A fill: private when the client's credentials fetched it.  The
         * mark goes into the cache file's ETag field, which nginx keeps
         * to revalidate with and digest entries never are; the
         * upstream's own ETag never gets there.
         */

        if (ngx_http_registry_client_credentials(r)) {
            etag = ngx_pcalloc(r->pool, sizeof(ngx_table_elt_t));
            if (etag == NULL) {
                return NGX_ERROR;
            }

            etag->value.data = ngx_pnalloc(r->pool,
                                           NGX_HTTP_REGISTRY_AUTH_MARK_LEN);
            if (etag->value.data == NULL) {
                return NGX_ERROR;
            }

            ngx_memcpy(etag->value.data, ctx->registry->private_mark,
                       NGX_HTTP_REGISTRY_AUTH_MARK_LEN);
            etag->value.len = NGX_HTTP_REGISTRY_AUTH_MARK_LEN;
            u->headers_in.etag = etag;

            if (ctx->registry->client_auth && ctx->digest) {
                ngx_http_registry_auth_record(r, ctx,
                                              ctx->resolved.len
                                              ? &ctx->resolved
                                              : &ctx->reference, 1);
            }

        } else {
            u->headers_in.etag = NULL;
        }

        return NGX_DECLINED;
    }

    private = ngx_http_registry_auth_private(r, ctx);

    if (private == 0
        || (private == 1
            && ngx_http_registry_auth_proved(r, ctx, mark) == NGX_OK))
    {
        return NGX_DECLINED;
    }

    if (mark == NULL) {
        mark = ngx_http_registry_auth_mark_add(r);
        if (mark == NULL) {
            return NGX_ERROR;
        }
    }

    /*
     * Filled privately from another upstream: no answer of this one
     * without a body (a HEAD, a tag's digest) proves anything about it.
     * The request fetches it from its own upstream instead, verified, and
     * what it fetches replaces the entry.
     */

    if (private == 2) {
        if (mark->state == NGX_HTTP_REGISTRY_AUTH_REFILL) {
            return NGX_HTTP_FORBIDDEN;
        }

        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "registry: private entry of another upstream, "
                       "fetched again");

        mark->state = NGX_HTTP_REGISTRY_AUTH_REFILL;
        mark->next = 1;

        return NGX_HTTP_REGISTRY_AUTH_NEXT;
    }

    /* a private entry nobody has checked for this request: check first */

    if (mark->state == NGX_HTTP_REGISTRY_AUTH_CHECK) {
        /* checked already and still not proved: not served */
        return NGX_HTTP_FORBIDDEN;
    }

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "registry: private entry, checked upstream first");

    mark->state = NGX_HTTP_REGISTRY_AUTH_CHECK;
    mark->next = 1;

    return NGX_HTTP_REGISTRY_AUTH_NEXT;
}


/* a tag's check named digest for this request: what it proves is kept */

void
ngx_http_registry_auth_named(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_str_t *digest)
{
    ngx_http_registry_auth_mark_t  *mark;

    ngx_http_registry_auth_record(r, ctx, digest, 1);

    mark = ngx_http_registry_auth_mark(r);

    if (mark == NULL) {
        mark = ngx_http_registry_auth_mark_add(r);
        if (mark == NULL) {
            return;
        }
    }

    mark->state = NGX_HTTP_REGISTRY_AUTH_PROVED;
    mark->proved = *digest;
}


/* a verified manifest of a repository: what it lists belongs there */

void
ngx_http_registry_auth_manifest(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, u_char *body, size_t len)
{
    if (ctx->registry == NULL || !ctx->registry->client_auth) {
        return;
    }

    (void) ngx_http_registry_manifest_digests(body, len,
                                      ngx_http_registry_auth_member_add, r);
}


/*
 * The upstream-error location.  NGX_DONE: handled (run again, or
 * answered); NGX_DECLINED: handled there as any request's error.
 */

ngx_int_t
ngx_http_registry_auth_error(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    ngx_uint_t                      status;
    ngx_http_registry_auth_mark_t  *mark;

    status = ctx->error_status;
    mark = ngx_http_registry_auth_mark(r);

    if (status == NGX_HTTP_REGISTRY_AUTH_NEXT) {
        if (mark == NULL || !mark->next) {
            return NGX_DECLINED;
        }

        mark->next = 0;

        return ngx_http_registry_auth_again(r, mark);
    }

    /*
     * An upstream that cannot say (down, timing out, failing) is not
     * taken for a yes: a check that fails is 503, and so is a request
     * with credentials nothing fresh is known of (a tag's check).
     */

    if (status < NGX_HTTP_INTERNAL_SERVER_ERROR
        && status != NGX_HTTP_TOO_MANY_REQUESTS)
    {
        return NGX_DECLINED;
    }

    if ((mark && mark->state == NGX_HTTP_REGISTRY_AUTH_CHECK)
        || ngx_http_registry_auth_known(r, ctx) != NGX_OK)
    {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "registry: access to \"%V\" repository \"%V\" cannot "
                      "be checked: the upstream answered %ui",
                      &ctx->registry->name, &ctx->repository, status);

        ngx_http_finalize_request(r,
            ngx_http_registry_send_oci_error(r,
                              NGX_HTTP_SERVICE_UNAVAILABLE, "UNAVAILABLE",
                              "the upstream registry is unavailable and "
                              "access cannot be checked"));
        return NGX_DONE;
    }

    return NGX_DECLINED;
}


/*
 * 401 with the mirror's own challenge: its token endpoint as the realm
 * (clients need to reach only the mirror), the registry's name as the
 * service, and the repository as the client named it.
 */

ngx_int_t
ngx_http_registry_auth_challenge(ngx_http_request_t *r,
    ngx_http_registry_t *reg, ngx_str_t *name, char *message)
{
    u_char           *p;
    size_t            len;
    ngx_str_t         realm;
    ngx_table_elt_t  *h;

    if (ngx_http_registry_auth_realm(r, &realm) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    len = sizeof("Bearer realm=\"\",service=\"\",scope=\"repository::pull\"")
          - 1 + realm.len + reg->name.len + (name ? name->len : 0);

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* whatever challenge the upstream sent is not the client's */

    (void) ngx_http_registry_headers(&r->headers_out.headers,
                                     &ngx_http_registry_www_authenticate,
                                     ngx_http_registry_hide_line, NULL);

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
    h->key = ngx_http_registry_www_authenticate;
    h->value.data = p;

    p = ngx_sprintf(p, "Bearer realm=\"%V\",service=\"%V\"", &realm,
                    &reg->name);

    if (name && name->len) {
        p = ngx_sprintf(p, ",scope=\"repository:%V:pull\"", name);
    }

    h->value.len = p - h->value.data;
#if (nginx_version >= 1023000)
    h->next = NULL;
#endif
    r->headers_out.www_authenticate = h;

    ngx_http_finalize_request(r,
        ngx_http_registry_send_oci_error(r, NGX_HTTP_UNAUTHORIZED,
                                         "UNAUTHORIZED", message));
    return NGX_DONE;
}


/*
 * "GET /v2/" on a server whose registry's clients log in: challenged
 * unless it carries a token the relay handed out.  NGX_OK: answer 200.
 */

ngx_int_t
ngx_http_registry_auth_base(ngx_http_request_t *r, ngx_http_registry_t *reg)
{
    ngx_str_t   principal, key, value;

    if (ngx_http_registry_client_credentials(r) == NULL
        || ngx_http_registry_auth_principal(r, &principal) != NGX_OK)
    {
        return NGX_DECLINED;
    }

    key.data = ngx_pnalloc(r->pool, 3 + principal.len + reg->name.len);
    if (key.data == NULL) {
        return NGX_DECLINED;
    }

    key.len = ngx_sprintf(key.data, "G %V %V", &principal, &reg->name)
              - key.data;

    return ngx_http_registry_auth_get(r, &key, &value);
}


/* $registry_relay_method, _authorization, _type, _body */

ngx_int_t
ngx_http_registry_auth_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t                   s, *cred;
    ngx_http_registry_ctx_t    *ctx;
    ngx_http_registry_relay_t  *rl;

    static ngx_str_t  form = ngx_string("application/x-www-form-urlencoded");

    ctx = ngx_http_get_module_ctx(r->main, ngx_http_registry_module);

    if (ctx == NULL || ctx->relay == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    rl = ctx->relay;
    ngx_str_null(&s);

    switch (data) {

    case 0:
        if (rl->post) {
            ngx_str_set(&s, "POST");
        } else {
            ngx_str_set(&s, "GET");
        }
        break;

    case 1:
        /* the client's own, never the operator's (auth_basic read it) */
        cred = ngx_http_registry_client_credentials(r->main);

        if (!rl->post && cred) {
            s = *cred;
        }
        break;

    case 2:
        if (rl->post) {
            s = form;
        }
        break;

    default:
        s = rl->form;
        break;
    }

    if (s.len == 0 && data != 3) {
        v->not_found = 1;
        return NGX_OK;
    }

    ngx_http_registry_set_value(v, &s);

    return NGX_OK;
}


/*
 * The token relay, a location of its own ("registry_auth_relay").  The
 * client's token request, as docker, podman, skopeo and containerd send
 * it (GET with Basic credentials, or the OAuth2 POST form), goes to the
 * upstream's realm (learnt from its challenge, checked as any realm) with
 * the upstream's service and its scopes rewritten to upstream names,
 * pull only; nothing else of the client's.  The realm's answer is handed
 * back as it came, and what a token grants is kept by its hash.
 * Credentials pass through, never stored or logged.
 */

ngx_int_t
ngx_http_registry_auth_relay_handler(ngx_http_request_t *r)
{
    ngx_int_t                   rc;
    ngx_http_registry_ctx_t    *ctx;
    ngx_http_registry_relay_t  *rl;

    if (r != r->main) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_registry_module);

    if (ctx == NULL) {
        ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_registry_ctx_t));
        if (ctx == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        rl = ngx_pcalloc(r->pool, sizeof(ngx_http_registry_relay_t));
        if (rl == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ctx->relay = rl;
        ngx_http_set_ctx(r, ctx, ngx_http_registry_module);

        if (r->method == NGX_HTTP_POST) {
            rl->post = 1;

            r->request_body_in_single_buf = 1;
            r->request_body_no_buffering = 0;

            rc = ngx_http_read_client_request_body(r,
                                               ngx_http_registry_relay_body);
            if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
                return rc;
            }

            ngx_http_finalize_request(r, NGX_DONE);
            return NGX_DONE;
        }

        if (r->method != NGX_HTTP_GET) {
            return ngx_http_registry_relay_finish(r, NGX_HTTP_NOT_FOUND,
                                                  "UNSUPPORTED",
                                                  "not relayed");
        }

        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        rl->read = 1;
    }

    rl = ctx->relay;

    if (rl == NULL || !rl->read) {
        return NGX_AGAIN;
    }

    if (!rl->parsed) {
        rc = ngx_http_registry_relay_parse(r, ctx, rl);

        if (rc == NGX_ERROR) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (rc != NGX_OK) {
            return ngx_http_registry_relay_finish(r, NGX_HTTP_NOT_FOUND,
                                                  "UNSUPPORTED",
                                                  "not relayed");
        }

        rl->parsed = 1;
    }

    /* the upstream's challenge: kept, or asked for once ("GET /v2/") */

    if (ctx->token_url.len == 0) {

        if (rl->probe == NULL && rl->challenge.len == 0
            && ngx_http_registry_relay_challenge(r, ctx, rl, 0) != NGX_OK)
        {
            return ngx_http_registry_relay_start(r,
                                             &ngx_http_registry_probe_uri,
                                             &rl->probe, rl,
                                             ngx_http_registry_probe_done);
        }

        if (rl->probe) {
            if (!rl->done) {
                return NGX_AGAIN;
            }

            rl->done = 0;
            (void) ngx_http_registry_relay_challenge(r, ctx, rl, 1);
        }

        rc = ngx_http_registry_relay_url(r, ctx, rl);

        if (rc == NGX_ERROR) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (rc != NGX_OK) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "registry: \"%V\" named no Bearer challenge to "
                          "relay a token request to (status %ui)",
                          &ctx->registry->name, rl->status);

            return ngx_http_registry_relay_finish(r, NGX_HTTP_BAD_GATEWAY,
                                                  "UNAVAILABLE",
                                                  "the upstream registry "
                                                  "has no token service");
        }
    }

    rc = ngx_http_registry_realm(r, &ctx->token_url,
                                 &ctx->registry->upstream, &ctx->token_target);

    if (rc == NGX_AGAIN) {
        return NGX_AGAIN;
    }

    if (rc == NGX_DECLINED) {
        return ngx_http_registry_relay_finish(r, NGX_HTTP_BAD_GATEWAY,
                                              "UNAVAILABLE",
                                              "upstream token realm refused");
    }

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rl->sr == NULL) {
        return ngx_http_registry_relay_start(r, &ngx_http_registry_relay_uri,
                                             &rl->sr, rl,
                                             ngx_http_registry_relay_done);
    }

    if (!rl->done) {
        return NGX_AGAIN;
    }

    return ngx_http_registry_relay_answer(r, ctx, rl);
}


static void
ngx_http_registry_relay_body(ngx_http_request_t *r)
{
    ngx_http_registry_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_registry_module);

    if (ctx && ctx->relay) {
        ((ngx_http_registry_relay_t *) ctx->relay)->read = 1;
    }

    r->write_event_handler = ngx_http_core_run_phases;
    ngx_http_core_run_phases(r);
}


/*
 * The client's service names the registry (the mirror's challenge says
 * its name), or else the server's own; its scopes become upstream names.
 */

static ngx_int_t
ngx_http_registry_relay_parse(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_http_registry_relay_t *rl)
{
    u_char                         *p, *last;
    size_t                          len;
    ngx_str_t                       key, raw, value, service, *s, grant;
    ngx_buf_t                      *b;
    ngx_uint_t                      i;
    ngx_chain_t                    *cl;
    ngx_array_t                     scopes, pass;
    ngx_http_registry_loc_conf_t   *rlcf;
    ngx_http_registry_main_conf_t  *rmcf;

    static char  *get_args[] = { "account", "client_id", "offline_token",
                                 NULL };
    static char  *post_args[] = { "grant_type", "username", "password",
                                  "refresh_token", "client_id",
                                  "access_type", NULL };

    rlcf = ngx_http_get_module_loc_conf(r, ngx_http_registry_module);
    rmcf = ngx_http_get_module_main_conf(r, ngx_http_registry_module);

    if (rl->post) {
        if (r->request_body == NULL || r->request_body->bufs == NULL) {
            p = NULL;
            last = NULL;

        } else {

            /* in memory, in one piece or several, 8 KiB at most */

            len = 0;

            for (cl = r->request_body->bufs; cl; cl = cl->next) {
                b = cl->buf;

                if (b->in_file || !ngx_buf_in_memory(b)) {
                    return NGX_DECLINED;
                }

                len += b->last - b->pos;
            }

            if (len > NGX_HTTP_REGISTRY_RELAY_BODY) {
                return NGX_DECLINED;
            }

            p = ngx_pnalloc(r->pool, len + 1);
            if (p == NULL) {
                return NGX_ERROR;
            }

            last = p;

            for (cl = r->request_body->bufs; cl; cl = cl->next) {
                last = ngx_cpymem(last, cl->buf->pos,
                                  cl->buf->last - cl->buf->pos);
            }
        }

    } else {
        p = r->args.data;
        last = r->args.data + r->args.len;
    }

    if (ngx_array_init(&scopes, r->pool, 4, sizeof(ngx_str_t)) != NGX_OK
        || ngx_array_init(&pass, r->pool, 4, sizeof(ngx_str_t)) != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_str_null(&service);
    ngx_str_null(&grant);

    while (p && ngx_http_registry_form_next(&p, last, &key, &raw) == NGX_OK)
    {
        if (key.len == 7 && ngx_strncmp(key.data, "service", 7) == 0) {
            if (ngx_http_registry_auth_unescape(r->pool, &raw, &service)
                != NGX_OK)
            {
                return NGX_DECLINED;
            }

            continue;
        }

        if (key.len == 5 && ngx_strncmp(key.data, "scope", 5) == 0) {
            if (ngx_http_registry_auth_unescape(r->pool, &raw, &value)
                != NGX_OK)
            {
                return NGX_DECLINED;
            }

            s = ngx_array_push(&scopes);
            if (s == NULL) {
                return NGX_ERROR;
            }

            *s = value;
            continue;
        }

        /* the other arguments clients send, raw, as they are */

        for (i = 0; (rl->post ? post_args : get_args)[i]; i++) {
            len = ngx_strlen((rl->post ? post_args : get_args)[i]);

            if (key.len == len
                && ngx_strncmp(key.data, (rl->post ? post_args : get_args)[i],
                               len)
                   == 0)
            {
                if (ngx_http_registry_auth_raw(&raw) != NGX_OK) {
                    return NGX_DECLINED;
                }

                s = ngx_array_push(&pass);
                if (s == NULL) {
                    return NGX_ERROR;
                }

                s->len = key.len + 1 + raw.len;
                s->data = key.data;     /* "key=raw", contiguous */

                if (len == 10 && ngx_strncmp(key.data, "grant_type", 10) == 0)
                {
                    grant = raw;
                }

                break;
            }
        }
    }

    if (rl->post
        && !(grant.len == 8 && ngx_strncmp(grant.data, "password", 8) == 0)
        && !(grant.len == 13
             && ngx_strncmp(grant.data, "refresh_token", 13) == 0))
    {
        return NGX_DECLINED;
    }

    if (service.len) {
        ctx->registry = ngx_http_registry_lookup(rmcf, &service);

    } else {
        ctx->registry = rlcf->default_registry;
    }

    if (ctx->registry == NULL || !ctx->registry->client_auth) {
        return NGX_DECLINED;
    }

    /* the scopes: "repository:<upstream name>:pull", space-separated */

    len = 0;
    s = scopes.elts;

    for (i = 0; i < scopes.nelts; i++) {
        /* each scope (17 bytes at least) may get the prefix, "library/" */
        len += s[i].len + 32
               + (ctx->registry->prefix.len + 10) * (s[i].len / 17 + 1);
    }

    rl->requested.data = ngx_pnalloc(r->pool, len + 1);
    if (rl->requested.data == NULL) {
        return NGX_ERROR;
    }

    rl->requested.len = 0;

    for (i = 0; i < scopes.nelts; i++) {
        if (ngx_http_registry_relay_scopes(r, ctx->registry, &s[i])
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    /* what goes to the realm besides service and scope */

    len = 0;
    s = pass.elts;

    for (i = 0; i < pass.nelts; i++) {
        len += s[i].len + 1;
    }

    rl->form.data = ngx_pnalloc(r->pool, len + 1);
    if (rl->form.data == NULL) {
        return NGX_ERROR;
    }

    p = rl->form.data;

    for (i = 0; i < pass.nelts; i++) {
        *p++ = '&';
        p = ngx_cpymem(p, s[i].data, s[i].len);
    }

    rl->form.len = p - rl->form.data;

    return NGX_OK;
}


/*
 * One client scope value (several scopes, space-separated, in the POST
 * form): each repository scope asking for pull becomes
 * "repository:<upstream name>:pull" in rl->requested, names as the route
 * step makes them (a registry prefix must be this registry's; Docker
 * Hub's "library/"; the registry URL's path prefix).  Others are dropped.
 */

static ngx_int_t
ngx_http_registry_relay_scopes(ngx_http_request_t *r,
    ngx_http_registry_t *reg, ngx_str_t *value)
{
    u_char                         *p, *last, *e, *slash, *c;
    ngx_str_t                       name, first;
    ngx_uint_t                      pull;
    ngx_http_registry_ctx_t        *ctx;
    ngx_http_registry_relay_t      *rl;
    ngx_http_registry_main_conf_t  *rmcf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_registry_module);
    rl = ctx->relay;
    rmcf = ngx_http_get_module_main_conf(r, ngx_http_registry_module);

    last = value->data + value->len;

    for (p = value->data; p < last; p = e + 1) {
        e = ngx_strlchr(p, last, ' ');
        if (e == NULL) {
            e = last;
        }

        if (e == p
            || ngx_http_registry_scope_parse(p, e - p, &name, &pull)
               != NGX_OK
            || !pull || name.len > 255)
        {
            continue;
        }

        slash = ngx_strlchr(name.data, name.data + name.len, '/');

        if (slash) {
            first.data = name.data;
            first.len = slash - name.data;

            if ((ngx_strlchr(first.data, slash, '.')
                 || ngx_strlchr(first.data, slash, ':')
                 || (first.len == 9
                     && ngx_strncmp(first.data, "localhost", 9) == 0)))
            {
                if (ngx_http_registry_lookup(rmcf, &first) != reg) {
                    continue;
                }

                name.data = slash + 1;
                name.len -= first.len + 1;
                slash = ngx_strlchr(name.data, name.data + name.len, '/');
            }
        }

        /* every component as the grammar has it */

        for (c = name.data; c < name.data + name.len; c = slash + 1) {
            slash = ngx_strlchr(c, name.data + name.len, '/');
            if (slash == NULL) {
                slash = name.data + name.len;
            }

            if (ngx_http_registry_valid_component(c, slash - c) != NGX_OK) {
                break;
            }
        }

        if (name.len == 0 || c < name.data + name.len) {
            continue;
        }

        c = rl->requested.data + rl->requested.len;

        if (rl->requested.len) {
            *c++ = ' ';
        }

        if (reg->prefix.len) {
            c = ngx_cpymem(c, reg->prefix.data, reg->prefix.len);
            *c++ = '/';
        }

        if (reg->library
            && ngx_strlchr(name.data, name.data + name.len, '/') == NULL)
        {
            c = ngx_cpymem(c, "library/", 8);
        }

        c = ngx_cpymem(c, name.data, name.len);

        rl->requested.len = c - rl->requested.data;
    }

    return NGX_OK;
}


/*
 * The upstream's challenge, kept an hour in the zone's share for tokens
 * as "<registry> challenge": a relayed login costs the upstream no
 * "GET /v2/" of its own.  learnt: the probe's, kept; else looked up.
 */

static ngx_int_t
ngx_http_registry_relay_challenge(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_http_registry_relay_t *rl,
    ngx_uint_t learnt)
{
    u_char                         *p;
    ngx_str_t                       key;
    ngx_http_registry_main_conf_t  *rmcf;

    rmcf = ngx_http_get_module_main_conf(r, ngx_http_registry_module);

    if (rmcf->zone == NULL) {
        return NGX_DECLINED;
    }

    p = ngx_pnalloc(r->pool, ctx->registry->name.len + sizeof(" challenge"));
    if (p == NULL) {
        return NGX_ERROR;
    }

    key.data = p;
    key.len = ngx_sprintf(p, "%V challenge", &ctx->registry->name) - p;

    if (!learnt) {
        return ngx_http_registry_zone_get(rmcf->zone,
                                          NGX_HTTP_REGISTRY_ZONE_TOKEN, &key,
                                          r->pool, &rl->challenge);
    }

    if (rl->challenge.len == 0) {
        return NGX_DECLINED;
    }

    return ngx_http_registry_zone_set(rmcf->zone, NGX_HTTP_REGISTRY_ZONE_TOKEN,
                                      &key, &rl->challenge,
                                      ngx_time() + 3600);
}


/*
 * The upstream's realm and service, from its challenge (the probe's
 * answer); the relayed request: its URL (GET: with the arguments), or
 * the form it POSTs.
 */

static ngx_int_t
ngx_http_registry_relay_url(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_http_registry_relay_t *rl)
{
    u_char                         *p, *q, *last, *e;
    size_t                          len;
    ngx_str_t                       name;
    ngx_http_registry_challenge_t   ch;

    if (rl->challenge.len == 0
        || ngx_http_registry_challenge_parse(rl->challenge.data,
                                             rl->challenge.len, &ch)
           != NGX_OK
        || !ch.bearer || ch.realm.len == 0)
    {
        return NGX_DECLINED;
    }

    /* "service=S&scope=repository:N:pull&..." then the client's others */

    len = sizeof("service=") - 1 + 3 * ch.service.len
          + 3 * rl->requested.len
          + sizeof("&scope=repository::pull") * 2 * (rl->requested.len + 1)
          + rl->form.len;

    q = ngx_pnalloc(r->pool, len);
    if (q == NULL) {
        return NGX_ERROR;
    }

    p = q;

    if (ch.service.len) {
        p = ngx_cpymem(p, "service=", 8);
        p = (u_char *) ngx_escape_uri(p, ch.service.data, ch.service.len,
                                      NGX_ESCAPE_ARGS);
    }

    last = rl->requested.data + rl->requested.len;

    if (rl->post && rl->requested.len) {
        /* OAuth2: one "scope", space-separated */
        p = ngx_cpymem(p, "&scope=", 7);
    }

    for (name.data = rl->requested.data; name.data < last;
         name.data = e + 1)
    {
        e = ngx_strlchr(name.data, last, ' ');
        if (e == NULL) {
            e = last;
        }

        name.len = e - name.data;

        if (rl->post) {
            if (name.data != rl->requested.data) {
                p = ngx_cpymem(p, "%20", 3);
            }

        } else {
            p = ngx_cpymem(p, "&scope=", 7);
        }

        p = ngx_cpymem(p, "repository%3A", 13);
        p = (u_char *) ngx_escape_uri(p, name.data, name.len,
                                      NGX_ESCAPE_ARGS);
        p = ngx_cpymem(p, "%3Apull", 7);
    }

    p = ngx_cpymem(p, rl->form.data, rl->form.len);

    if (p > q && *q == '&') {
        q++;
    }

    if (rl->post) {
        rl->form.data = q;
        rl->form.len = p - q;

        ctx->token_url.len = ch.realm.len;
        ctx->token_url.data = ngx_pstrdup(r->pool, &ch.realm);
        if (ctx->token_url.data == NULL) {
            return NGX_ERROR;
        }

        return NGX_OK;
    }

    ctx->token_url.len = ch.realm.len + 1 + (p - q);
    ctx->token_url.data = ngx_pnalloc(r->pool, ctx->token_url.len);
    if (ctx->token_url.data == NULL) {
        return NGX_ERROR;
    }

    e = ngx_cpymem(ctx->token_url.data, ch.realm.data, ch.realm.len);
    *e++ = ngx_strlchr(ch.realm.data, ch.realm.data + ch.realm.len, '?')
           ? '&' : '?';
    ngx_memcpy(e, q, p - q);

    ngx_str_null(&rl->form);

    return NGX_OK;
}


static ngx_int_t
ngx_http_registry_relay_start(ngx_http_request_t *r, ngx_str_t *uri,
    ngx_http_request_t **srp, ngx_http_registry_relay_t *rl,
    ngx_http_post_subrequest_pt handler)
{
    ngx_http_post_subrequest_t  *ps;

    ps = ngx_palloc(r->pool, sizeof(ngx_http_post_subrequest_t));
    if (ps == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ps->handler = handler;
    ps->data = rl;

    rl->done = 0;
    rl->failed = 0;

    if (ngx_http_subrequest(r, uri, NULL, srp, ps,
                            NGX_HTTP_SUBREQUEST_IN_MEMORY
                            |NGX_HTTP_SUBREQUEST_WAITED)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* no body of the client's goes with it; the form is a variable */

    (*srp)->request_body = NULL;

    return NGX_AGAIN;
}


/*
 * As ngx_http_registry_token_done(): an answer too big for the buffer,
 * or a connection lost mid-answer, is a failed relay, and the client's
 * connection is not failed for it.
 */

static ngx_int_t
ngx_http_registry_relay_done(ngx_http_request_t *r, void *data, ngx_int_t rc)
{
    ngx_uint_t                  failed;
    ngx_table_elt_t            *h;
    ngx_http_registry_relay_t  *rl = data;

    failed = 0;
    rc = ngx_http_registry_subrequest_done(r, rc, &failed);

    if (failed) {
        rl->failed = 1;

        if (r->connection->error) {
            return rc;
        }
    }

    rl->done = 1;

    if (rl->failed) {
        rl->status = NGX_HTTP_BAD_GATEWAY;
        rl->answer = NULL;
        return rc;
    }

    rl->status = r->headers_out.status;
    rl->answer = r->out ? r->out->buf : NULL;

    /* a refused login: the realm's Basic challenge goes back with it */

    h = NULL;

    if (rl->status == NGX_HTTP_UNAUTHORIZED
        && ngx_http_registry_headers(&r->headers_out.headers,
                                     &ngx_http_registry_www_authenticate,
                                     ngx_http_registry_first_basic, &h)
           == NGX_DONE)
    {
        rl->basic.data = ngx_pstrdup(r->main->pool, &h->value);
        if (rl->basic.data) {
            rl->basic.len = h->value.len;
        }
    }

    return rc;
}


/* the upstream's "GET /v2/": its first Bearer challenge, kept */

static ngx_int_t
ngx_http_registry_probe_done(ngx_http_request_t *r, void *data, ngx_int_t rc)
{
    ngx_table_elt_t            *h;
    ngx_http_registry_relay_t  *rl = data;

    rc = ngx_http_registry_relay_done(r, data, rc);

    if (rl->failed || rl->status != NGX_HTTP_UNAUTHORIZED) {
        return rc;
    }

    h = NULL;

    if (ngx_http_registry_headers(&r->headers_out.headers,
                                  &ngx_http_registry_www_authenticate,
                                  ngx_http_registry_first_bearer, &h)
        == NGX_DONE)
    {
        rl->challenge.data = ngx_pstrdup(r->main->pool, &h->value);
        if (rl->challenge.data) {
            rl->challenge.len = h->value.len;
        }
    }

    return rc;
}


/* the realm's answer, handed back; what its token grants, kept */

static ngx_int_t
ngx_http_registry_relay_answer(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_http_registry_relay_t *rl)
{
    ngx_str_t         body;
    ngx_table_elt_t  *h;

    if (rl->failed || rl->status == 0) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "registry: the token realm of \"%V\" did not answer "
                      "a relayed token request", &ctx->registry->name);

        return ngx_http_registry_relay_finish(r, NGX_HTTP_BAD_GATEWAY,
                                              "UNAVAILABLE",
                                              "upstream token service "
                                              "failed");
    }

    ngx_str_null(&body);

    if (rl->answer) {
        body.data = rl->answer->pos;
        body.len = rl->answer->last - rl->answer->pos;
    }

    if (rl->status == NGX_HTTP_OK) {
        ngx_http_registry_relay_grants(r, ctx->registry, rl, &body);
    }

    if (rl->basic.len) {
        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h->hash = 1;
        h->key = ngx_http_registry_www_authenticate;
        h->value = rl->basic;
#if (nginx_version >= 1023000)
        h->next = NULL;
#endif
        r->headers_out.www_authenticate = h;
    }

    ngx_http_finalize_request(r, ngx_http_registry_send(r, rl->status,
                                                        &body));
    return NGX_DONE;
}


/*
 * "G <hash of 'Bearer <token>'>" -> "<granted names>\n<requested names>",
 * until the token expires (its "exp", expires_in, an hour at most).  A
 * token that is not a JWT grants nothing the mirror can read: its
 * requests are decided upstream.
 */

static void
ngx_http_registry_relay_grants(ngx_http_request_t *r,
    ngx_http_registry_t *reg, ngx_http_registry_relay_t *rl,
    ngx_str_t *body)
{
    u_char                          *p, *buf;
    time_t                           exp, expires_in, expires;
    ngx_str_t                        token, key, value, bearer;
    ngx_http_registry_auth_names_t   names;
    u_char                           hex[NGX_HTTP_REGISTRY_AUTH_HASH];

    if (body->len == 0) {
        return;
    }

    p = ngx_pnalloc(r->pool, body->len);
    if (p == NULL) {
        return;
    }

    if (ngx_http_registry_token_parse(body->data, body->len, p, &token,
                                      &expires_in)
        != NGX_OK)
    {
        return;
    }

    buf = ngx_pnalloc(r->pool, 2 * token.len + rl->requested.len + 2);
    if (buf == NULL) {
        return;
    }

    names.pos = buf + token.len;
    names.end = buf + 2 * token.len;
    names.requested = rl->requested;

    if (ngx_http_registry_jwt_grants(token.data, token.len, buf, &exp,
                                     ngx_http_registry_auth_collect, &names)
        != NGX_OK)
    {
        return;
    }

    value.data = buf + token.len;
    value.len = names.pos - value.data;

    if (value.len && value.data[value.len - 1] == ' ') {
        value.len--;
    }

    p = value.data + value.len;
    *p++ = '\n';
    p = ngx_cpymem(p, rl->requested.data, rl->requested.len);
    value.len = p - value.data;

    expires = ngx_time() + ngx_min(expires_in,
                                   NGX_HTTP_REGISTRY_TOKEN_MAX_AGE);

    if (exp && exp < expires) {
        expires = exp;
    }

    if (expires <= ngx_time()) {
        return;
    }

    bearer.len = sizeof("Bearer ") - 1 + token.len;
    bearer.data = ngx_pnalloc(r->pool, bearer.len);
    if (bearer.data == NULL) {
        return;
    }

    ngx_sprintf(bearer.data, "Bearer %V", &token);
    ngx_http_registry_auth_hash(bearer.data, bearer.len, hex);

    /* a token's grants count for the registry whose realm issued it */

    key.len = 3 + NGX_HTTP_REGISTRY_AUTH_HASH + reg->name.len;
    key.data = ngx_pnalloc(r->pool, key.len);
    if (key.data == NULL) {
        return;
    }

    ngx_sprintf(key.data, "G %*s %V", (size_t) NGX_HTTP_REGISTRY_AUTH_HASH,
                hex, &reg->name);

    if (ngx_http_registry_auth_set(r, &key, &value, expires) != NGX_OK) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "registry: the shared zone could not keep what a "
                      "token grants (%uz bytes)", value.len);
    }
}


static ngx_int_t
ngx_http_registry_relay_finish(ngx_http_request_t *r, ngx_uint_t status,
    char *code, char *message)
{
    ngx_http_finalize_request(r, ngx_http_registry_send_oci_error(r, status,
                                                                  code,
                                                                  message));
    return NGX_DONE;
}


/* a name granted pull, collected "name name ..." */

static ngx_int_t
ngx_http_registry_auth_collect(ngx_str_t *name, void *data)
{
    ngx_http_registry_auth_names_t  *names = data;

    /* what the relay asked for only: a realm's word on nothing else */

    if ((size_t) (names->end - names->pos) < name->len + 1
        || ngx_http_registry_auth_listed(&names->requested, name) != NGX_OK)
    {
        return NGX_OK;
    }

    names->pos = ngx_cpymem(names->pos, name->data, name->len);
    *names->pos++ = ' ';

    return NGX_OK;
}


static ngx_int_t
ngx_http_registry_auth_nothing(ngx_str_t *name, void *data)
{
    return NGX_OK;
}


/* a digest a verified manifest lists belongs to its repository */

static ngx_int_t
ngx_http_registry_auth_member_add(ngx_str_t *digest, void *data)
{
    ngx_http_request_t  *r = data;

    u_char                   *p;
    ngx_str_t                 key, value;
    ngx_http_registry_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_registry_module);

    p = ngx_pnalloc(r->pool, ctx->registry->name.len + ctx->repository.len
                             + digest->len + 4);
    if (p == NULL) {
        return NGX_ERROR;
    }

    key.data = p;
    key.len = ngx_sprintf(p, "M %V %V %V", &ctx->registry->name,
                          &ctx->repository, digest)
              - p;

    ngx_str_set(&value, "1");

    (void) ngx_http_registry_auth_set(r, &key, &value,
                                      ngx_time()
                                      + NGX_HTTP_REGISTRY_AUTH_MEMBER);

    return NGX_OK;
}


/*
 * The upstream answered with these credentials (a 200: may pull, and
 * digest is there; a 403: may not): kept for registry_auth_valid, never
 * past the credentials' own expiry.
 */

static void
ngx_http_registry_auth_record(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_str_t *digest, ngx_uint_t allowed)
{
    u_char                         *p;
    time_t                          expires;
    ngx_str_t                       principal, key, value, *cred;
    ngx_http_registry_loc_conf_t   *rlcf;

    rlcf = ngx_http_get_module_loc_conf(r, ngx_http_registry_module);

    if (ngx_http_registry_auth_principal(r, &principal) != NGX_OK) {
        return;
    }

    expires = ngx_time() + rlcf->auth_valid;

    cred = ngx_http_registry_client_credentials(r);

    if (cred) {
        expires = ngx_min(expires,
                          ngx_http_registry_auth_expires(r, cred));
    }

    if (expires > ngx_time()) {
        p = ngx_pnalloc(r->pool, principal.len + ctx->registry->name.len
                                 + ctx->repository.len + 4);
        if (p == NULL) {
            return;
        }

        key.data = p;
        key.len = ngx_sprintf(p, "D %V %V %V", &principal,
                              &ctx->registry->name, &ctx->repository)
                  - p;

        if (allowed) {
            ngx_str_set(&value, "1");
        } else {
            ngx_str_set(&value, "0");
        }

        (void) ngx_http_registry_auth_set(r, &key, &value, expires);
    }

    if (allowed && digest && digest->len) {
        (void) ngx_http_registry_auth_member_add(digest, r);
    }
}


/*
 * NGX_OK: may pull ctx's repository; NGX_ABORT: may not (the token it
 * relayed was asked for it and does not grant it, or the upstream said
 * 403 lately); NGX_DECLINED: not known.
 */

static ngx_int_t
ngx_http_registry_auth_allowed(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_str_t *principal)
{
    u_char     *p, *nl;
    ngx_str_t   key, value, list;

    p = ngx_pnalloc(r->pool, principal->len + ctx->registry->name.len
                             + ctx->repository.len + 4);
    if (p == NULL) {
        return NGX_DECLINED;
    }

    key.data = p;

    if (principal->len == NGX_HTTP_REGISTRY_AUTH_HASH
        && ctx->registry->client_auth)
    {
        key.len = ngx_sprintf(p, "G %V %V", principal, &ctx->registry->name)
                  - p;

        if (ngx_http_registry_auth_get(r, &key, &value) == NGX_OK) {
            nl = ngx_strlchr(value.data, value.data + value.len, '\n');

            if (nl) {
                list.data = value.data;
                list.len = nl - value.data;

                if (ngx_http_registry_auth_listed(&list, &ctx->repository)
                    == NGX_OK)
                {
                    return NGX_OK;
                }

                list.data = nl + 1;
                list.len = value.data + value.len - list.data;

                if (ngx_http_registry_auth_listed(&list, &ctx->repository)
                    == NGX_OK)
                {
                    return NGX_ABORT;
                }
            }
        }
    }

    key.len = ngx_sprintf(p, "D %V %V %V", principal, &ctx->registry->name,
                          &ctx->repository)
              - p;

    if (ngx_http_registry_auth_get(r, &key, &value) != NGX_OK
        || value.len != 1)
    {
        return NGX_DECLINED;
    }

    return value.data[0] == '1' ? NGX_OK : NGX_ABORT;
}


static ngx_int_t
ngx_http_registry_auth_member(ngx_http_request_t *r,
    ngx_http_registry_t *reg, ngx_str_t *repository, ngx_str_t *digest)
{
    u_char     *p;
    ngx_str_t   key, value;

    p = ngx_pnalloc(r->pool, reg->name.len + repository->len + digest->len
                             + 4);
    if (p == NULL) {
        return NGX_DECLINED;
    }

    key.data = p;
    key.len = ngx_sprintf(p, "M %V %V %V", &reg->name, repository, digest)
              - p;

    return ngx_http_registry_auth_get(r, &key, &value);
}


/*
 * A private entry may be served to this request: it was checked by this
 * request, or both checks are known to pass.  A tag's digest belongs to
 * its repository by the tag map's word.
 */

static ngx_int_t
ngx_http_registry_auth_proved(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_http_registry_auth_mark_t *mark)
{
    ngx_str_t  principal, *digest;

    digest = ctx->resolved.len ? &ctx->resolved : &ctx->reference;

    if (!ctx->digest && ctx->resolved.len == 0) {
        return NGX_DECLINED;
    }

    /* this pass's credentials checked in the precontent phase */

    if (ctx->auth_state == NGX_HTTP_REGISTRY_AUTH_PROVED
        && ngx_http_registry_client_credentials(r)
        && ctx->registry->client_auth)
    {
        return NGX_OK;
    }

    if (mark && mark->state == NGX_HTTP_REGISTRY_AUTH_PROVED
        && mark->proved.len == digest->len
        && ngx_strncmp(mark->proved.data, digest->data, digest->len) == 0)
    {
        return NGX_OK;
    }

    if (ngx_http_registry_auth_principal(r, &principal) != NGX_OK
        || ngx_http_registry_auth_allowed(r, ctx, &principal) != NGX_OK)
    {
        return NGX_DECLINED;
    }

    if (ctx->tag.len && ctx->resolved.len) {
        return NGX_OK;
    }

    return ngx_http_registry_auth_member(r, ctx->registry, &ctx->repository,
                                         digest);
}


/*
 * 0: a shared entry; 1: private, filled from this registry's upstream;
 * 2: private, filled from another (or marked in a way this mirror does
 * not know: taken as another's).
 */

static ngx_uint_t
ngx_http_registry_auth_private(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
#if (NGX_HTTP_CACHE)
    if (r->cache == NULL
        || r->cache->etag.len < NGX_HTTP_REGISTRY_AUTH_MARK
        || ngx_strncmp(r->cache->etag.data, "registry:private",
                       NGX_HTTP_REGISTRY_AUTH_MARK - 1)
           != 0)
    {
        return 0;
    }

    return (r->cache->etag.len == NGX_HTTP_REGISTRY_AUTH_MARK_LEN
            && ngx_strncmp(r->cache->etag.data, ctx->registry->private_mark,
                           NGX_HTTP_REGISTRY_AUTH_MARK_LEN)
               == 0)
           ? 1 : 2;
#else
    return 0;
#endif
}


/*
 * The private mark names the upstream the fill came from (a hash: the
 * cache file keeps 128 bytes of it at most), for registries of the same
 * upstream under several names share what it says.  Made once, with the
 * configuration.
 */

void
ngx_http_registry_auth_private_mark(ngx_http_registry_t *reg, u_char *buf)
{
    u_char  hex[NGX_HTTP_REGISTRY_AUTH_HASH];

    ngx_http_registry_auth_hash(reg->upstream.data, reg->upstream.len, hex);

    buf = ngx_cpymem(buf, "registry:private:", NGX_HTTP_REGISTRY_AUTH_MARK);
    ngx_memcpy(buf, hex, NGX_HTTP_REGISTRY_AUTH_MARK_LEN
                         - NGX_HTTP_REGISTRY_AUTH_MARK);
}


/* a JWT's "exp"; other credentials: as long as the decision */

static time_t
ngx_http_registry_auth_expires(ngx_http_request_t *r, ngx_str_t *credentials)
{
    u_char  *buf;
    time_t   exp;

    if (credentials->len <= 7
        || ngx_strncasecmp(credentials->data, (u_char *) "Bearer ", 7) != 0)
    {
        return NGX_MAX_TIME_T_VALUE;
    }

    buf = ngx_pnalloc(r->pool, credentials->len);
    if (buf == NULL) {
        return 0;
    }

    if (ngx_http_registry_jwt_grants(credentials->data + 7,
                                     credentials->len - 7, buf, &exp,
                                     ngx_http_registry_auth_nothing, NULL)
        != NGX_OK
        || exp == 0)
    {
        return NGX_MAX_TIME_T_VALUE;
    }

    return exp;
}


/* the hex sha256 of the client's Authorization, or "-" for none */

static ngx_int_t
ngx_http_registry_auth_principal(ngx_http_request_t *r, ngx_str_t *principal)
{
    ngx_str_t                *cred;
    ngx_http_registry_ctx_t  *ctx;

    cred = ngx_http_registry_client_credentials(r);

    if (cred == NULL) {
        ngx_str_set(principal, "-");
        return NGX_OK;
    }

    /* hashed once a pass */

    ctx = ngx_http_get_module_ctx(r, ngx_http_registry_module);

    if (ctx && ctx->principal.len) {
        *principal = ctx->principal;
        return NGX_OK;
    }

    principal->data = ngx_pnalloc(r->pool, NGX_HTTP_REGISTRY_AUTH_HASH);
    if (principal->data == NULL) {
        return NGX_ERROR;
    }

    ngx_http_registry_auth_hash(cred->data, cred->len, principal->data);
    principal->len = NGX_HTTP_REGISTRY_AUTH_HASH;

    if (ctx) {
        ctx->principal = *principal;
    }

    return NGX_OK;
}


static void
ngx_http_registry_auth_hash(u_char *p, size_t len, u_char *hex)
{
    unsigned int   n;
    u_char         md[EVP_MAX_MD_SIZE];

    static const EVP_MD  *sha256;

    /* OpenSSL 3 looks EVP_sha256() up again on every use: once a process */

    if (sha256 == NULL) {
#if (OPENSSL_VERSION_NUMBER >= 0x30000000L)
        sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
#else
        sha256 = EVP_sha256();
#endif
    }

    n = 0;

    if (sha256 == NULL
        || EVP_Digest(p, len, md, &n, sha256, NULL) != 1 || n != 32)
    {
        /* never a key anyone's credentials could have */
        ngx_memset(hex, 'x', NGX_HTTP_REGISTRY_AUTH_HASH);
        return;
    }

    ngx_hex_dump(hex, md, n);
}


/* "name" is one of the space-separated names of list */

static ngx_int_t
ngx_http_registry_auth_listed(ngx_str_t *list, ngx_str_t *name)
{
    u_char  *p, *last, *e;

    last = list->data + list->len;

    for (p = list->data; p < last; p = e + 1) {
        e = ngx_strlchr(p, last, ' ');
        if (e == NULL) {
            e = last;
        }

        if ((size_t) (e - p) == name->len
            && ngx_strncmp(p, name->data, name->len) == 0)
        {
            return NGX_OK;
        }
    }

    return NGX_DECLINED;
}


static ngx_int_t
ngx_http_registry_auth_set(ngx_http_request_t *r, ngx_str_t *key,
    ngx_str_t *value, time_t expires)
{
    ngx_http_registry_main_conf_t  *rmcf;

    rmcf = ngx_http_get_module_main_conf(r, ngx_http_registry_module);

    if (rmcf->zone == NULL) {
        return NGX_DECLINED;
    }

    return ngx_http_registry_zone_set(rmcf->zone, NGX_HTTP_REGISTRY_ZONE_AUTHZ,
                                      key, value, expires);
}


static ngx_int_t
ngx_http_registry_auth_get(ngx_http_request_t *r, ngx_str_t *key,
    ngx_str_t *value)
{
    ngx_http_registry_main_conf_t  *rmcf;

    rmcf = ngx_http_get_module_main_conf(r, ngx_http_registry_module);

    if (rmcf->zone == NULL) {
        return NGX_DECLINED;
    }

    return ngx_http_registry_zone_get(rmcf->zone, NGX_HTTP_REGISTRY_ZONE_AUTHZ,
                                      key, r->pool, value);
}


/*
 * registry_auth_realm, or "<scheme>://<Host>/_registry/auth" as the
 * client reached the mirror.  A Host that could break out of the quoted
 * realm falls back to the server's name.
 */

static ngx_int_t
ngx_http_registry_auth_realm(ngx_http_request_t *r, ngx_str_t *realm)
{
    u_char                        *p;
    ngx_str_t                      host;
    ngx_uint_t                     i;
    ngx_http_core_srv_conf_t      *cscf;
    ngx_http_registry_loc_conf_t  *rlcf;

    rlcf = ngx_http_get_module_loc_conf(r, ngx_http_registry_module);

    if (rlcf->auth_realm.len) {
        *realm = rlcf->auth_realm;
        return NGX_OK;
    }

    ngx_str_null(&host);

    if (r->headers_in.host) {
        host = r->headers_in.host->value;

        for (i = 0; i < host.len; i++) {
            if (host.data[i] <= ' ' || host.data[i] >= 0x7f
                || host.data[i] == '"' || host.data[i] == '\\'
                || host.data[i] == '/')
            {
                ngx_str_null(&host);
                break;
            }
        }
    }

    if (host.len == 0) {
        cscf = ngx_http_get_module_srv_conf(r, ngx_http_core_module);
        host = cscf->server_name;
    }

    p = ngx_pnalloc(r->pool, sizeof("https:///_registry/auth") + host.len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    realm->data = p;

#if (NGX_HTTP_SSL)
    if (r->connection->ssl) {
        p = ngx_cpymem(p, "https://", 8);
    } else
#endif
    {
        p = ngx_cpymem(p, "http://", 7);
    }

    p = ngx_sprintf(p, "%V/_registry/auth", &host);
    realm->len = p - realm->data;

    return NGX_OK;
}


/* a form or query value, "+" as a space, escapes decoded */

static ngx_int_t
ngx_http_registry_auth_unescape(ngx_pool_t *pool, ngx_str_t *raw,
    ngx_str_t *value)
{
    u_char     *src, *dst;
    ngx_uint_t  i;

    if (raw->len > NGX_HTTP_REGISTRY_AUTH_VALUE) {
        return NGX_DECLINED;
    }

    src = ngx_pnalloc(pool, raw->len * 2 + 1);
    if (src == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < raw->len; i++) {
        src[i] = raw->data[i] == '+' ? ' ' : raw->data[i];
    }

    dst = src + raw->len;
    value->data = dst;

    ngx_unescape_uri(&dst, &src, raw->len, 0);

    value->len = dst - value->data;

    for (i = 0; i < value->len; i++) {
        if (value->data[i] < ' ' || value->data[i] >= 0x7f) {
            return NGX_DECLINED;
        }
    }

    return NGX_OK;
}


/* a value passed on raw: form-encoded bytes only, nothing to break out */

static ngx_int_t
ngx_http_registry_auth_raw(ngx_str_t *value)
{
    ngx_uint_t  i;

    if (value->len > NGX_HTTP_REGISTRY_AUTH_VALUE) {
        return NGX_DECLINED;
    }

    for (i = 0; i < value->len; i++) {
        if (value->data[i] <= ' ' || value->data[i] >= 0x7f
            || value->data[i] == '&' || value->data[i] == '='
            || value->data[i] == '#')
        {
            return NGX_DECLINED;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_registry_auth_again(ngx_http_request_t *r,
    ngx_http_registry_auth_mark_t *mark)
{
    if (!ngx_http_registry_redirects_left(r)) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "registry: no internal redirects left to serve a "
                      "checked request");

        ngx_http_finalize_request(r,
            ngx_http_registry_send_oci_error(r, NGX_HTTP_BAD_GATEWAY,
                                             "UNAVAILABLE",
                                             "too many internal redirects"));
        return NGX_DONE;
    }

    /* a pass that was a cache hit leaves its mark: the next is new */
    r->cached = 0;

    (void) ngx_http_internal_redirect(r, &mark->uri, &mark->args);
    ngx_http_finalize_request(r, NGX_DONE);

    return NGX_DONE;
}


static ngx_http_registry_auth_mark_t *
ngx_http_registry_auth_mark(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t  *cln;

    for (cln = r->pool->cleanup; cln; cln = cln->next) {
        if (cln->handler == ngx_http_registry_auth_cleanup) {
            return cln->data;
        }
    }

    return NULL;
}


static ngx_http_registry_auth_mark_t *
ngx_http_registry_auth_mark_add(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t             *cln;
    ngx_http_registry_auth_mark_t  *mark;

    cln = ngx_pool_cleanup_add(r->pool,
                               sizeof(ngx_http_registry_auth_mark_t));
    if (cln == NULL) {
        return NULL;
    }

    mark = cln->data;
    ngx_memzero(mark, sizeof(ngx_http_registry_auth_mark_t));

    mark->uri = r->uri;
    mark->args = r->args;

    cln->handler = ngx_http_registry_auth_cleanup;

    return mark;
}


/*
 * The handler is the mark's name: it must not be empty, for gcc's -O2
 * folds identical functions into one (-fipa-icf), and an empty one would
 * share its address with the token retry's empty marker.
 */

static void
ngx_http_registry_auth_cleanup(void *data)
{
    ngx_http_registry_auth_mark_t  *mark = data;

    mark->next = 0;
}

