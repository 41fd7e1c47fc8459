
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
 * a registry does, with its own token endpoint as the realm (the relay,
 * ngx_http_registry_relay.c, which passes their token request on to the
 * upstream's realm),
 * and before anything is served to a request with credentials it knows
 * two things: these credentials may pull this repository, and the digest
 * asked for belongs to this repository (blobs are cached once per digest,
 * so a blob of team-b/secret must not be had as team-a/app/blobs/<it>).
 *
 * What it knows is kept in the zone's share for decisions, keyed by
 * hashes, never by the credentials themselves:
 *
 *   "G <hash of the Authorization> <registry>"  what a token the relay
 *       fetched from that registry's realm grants (its JWT "access"
 *       claim, only what was asked for) and what it was asked for, until
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

#define NGX_HTTP_REGISTRY_AUTH_MARK      17      /* "registry:private:" */
#define NGX_HTTP_REGISTRY_AUTH_MARK_LEN  NGX_HTTP_REGISTRY_PRIVATE_MARK


typedef struct {
    ngx_uint_t                 state;
    ngx_str_t                  uri;         /* where the request runs */
    ngx_str_t                  args;
    ngx_str_t                  proved;      /* the digest checked */
    unsigned                   next:1;      /* the filter's own 599 */
} ngx_http_registry_auth_mark_t;


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


static ngx_str_t  ngx_http_registry_www_authenticate =
    ngx_string("WWW-Authenticate");


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

    if (r != r->main || rlcf->upstream_errors || rlcf->auth_relay) {
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

        ngx_http_registry_stat(ctx->registry, auth_denied);

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
            ngx_http_registry_stat(ctx->registry, auth_allowed);
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
        ngx_http_registry_stat(ctx->registry, auth_allowed);
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

                if (u->headers_in.status_n == NGX_HTTP_UNAUTHORIZED
                    || u->headers_in.status_n == NGX_HTTP_FORBIDDEN
                    || u->headers_in.status_n == NGX_HTTP_NOT_FOUND)
                {
                    ngx_http_registry_stat(ctx->registry, auth_denied);
                }

                return NGX_DECLINED;
            }

            /* the upstream served it here, with these credentials */

            digest = ctx->resolved.len ? &ctx->resolved : &ctx->reference;

            ngx_http_registry_auth_record(r, ctx, digest, 1);

            mark->state = NGX_HTTP_REGISTRY_AUTH_PROVED;
            mark->proved = *digest;
            ngx_http_registry_stat(ctx->registry, auth_allowed);

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


/*
 * "G <hash of 'Bearer <token>'>" -> "<granted names>\n<requested names>",
 * until the token expires (its "exp", expires_in, an hour at most).  A
 * token that is not a JWT grants nothing the mirror can read: its
 * requests are decided upstream.
 */

void
ngx_http_registry_auth_token(ngx_http_request_t *r,
    ngx_http_registry_t *reg, ngx_str_t *requested, ngx_str_t *body)
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

    buf = ngx_pnalloc(r->pool, 2 * token.len + requested->len + 2);
    if (buf == NULL) {
        return;
    }

    names.pos = buf + token.len;
    names.end = buf + 2 * token.len;
    names.requested = *requested;

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
    p = ngx_cpymem(p, requested->data, requested->len);
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
 * upstream under several names share what it says.  A registry with
 * several regions is named by all of them, in order: a check of what
 * credentials may read can be answered by any of its regions, so it
 * shares private entries only with a registry of the very same regions.
 * Made once, with the configuration.
 */

ngx_int_t
ngx_http_registry_auth_private_mark(ngx_pool_t *pool,
    ngx_http_registry_t *reg, u_char *buf)
{
    u_char                      *p, *all;
    size_t                       len;
    ngx_uint_t                   i;
    ngx_http_registry_region_t  *region;
    u_char                       hex[NGX_HTTP_REGISTRY_AUTH_HASH];

    region = reg->regions.elts;

    if (reg->regions.nelts == 1) {
        ngx_http_registry_auth_hash(region[0].upstream.data,
                                    region[0].upstream.len, hex);

    } else {
        len = 0;

        for (i = 0; i < reg->regions.nelts; i++) {
            len += region[i].upstream.len + 1 + region[i].host.len + 1;
        }

        all = ngx_pnalloc(pool, len);
        if (all == NULL) {
            return NGX_ERROR;
        }

        p = all;

        for (i = 0; i < reg->regions.nelts; i++) {
            p = ngx_sprintf(p, "%V %V\n", &region[i].upstream,
                            &region[i].host);
        }

        ngx_http_registry_auth_hash(all, p - all, hex);
    }

    buf = ngx_cpymem(buf, "registry:private:", NGX_HTTP_REGISTRY_AUTH_MARK);
    ngx_memcpy(buf, hex, NGX_HTTP_REGISTRY_AUTH_MARK_LEN
                         - NGX_HTTP_REGISTRY_AUTH_MARK);

    return NGX_OK;
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

