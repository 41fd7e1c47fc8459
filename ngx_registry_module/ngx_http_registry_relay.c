
/*
 * Copyright (C) ngx_registry_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_registry.h"
#include "ngx_http_registry_challenge.h"
#include "ngx_http_registry_grant.h"
#include "ngx_http_registry_zone.h"
#include "ngx_http_registry_response.h"
#include "ngx_http_registry_auth.h"
#include "ngx_http_registry_region.h"
#include "ngx_http_registry_target.h"
#include "ngx_http_registry_relay.h"


/*
 * The token relay of registries whose clients log in themselves
 * ("registry ... auth=client", ngx_http_registry_auth.c): the mirror's
 * challenges name a location with "registry_auth_relay" as the realm, so
 * clients need to reach only the mirror.  Their token request, the GET
 * form with Basic credentials or the OAuth2 POST form, goes on to the
 * upstream's realm (learnt from the upstream's own challenge, checked as
 * any realm) with the upstream's service and the scopes rewritten to
 * upstream names, pull only; nothing else of the client's.  The realm's
 * answer goes back as it came, and the auth step keeps what its token
 * grants.  Credentials pass through, never stored or logged.
 */


#define NGX_HTTP_REGISTRY_RELAY_VALUE    4096
#define NGX_HTTP_REGISTRY_RELAY_BODY     8192


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
static ngx_int_t ngx_http_registry_relay_finish(ngx_http_request_t *r,
    ngx_uint_t status, char *code, char *message);
static ngx_int_t ngx_http_registry_relay_unescape(ngx_pool_t *pool,
    ngx_str_t *raw, ngx_str_t *value);
static ngx_int_t ngx_http_registry_relay_raw(ngx_str_t *value);


static ngx_str_t  ngx_http_registry_www_authenticate =
    ngx_string("WWW-Authenticate");
static ngx_str_t  ngx_http_registry_probe_uri =
    ngx_string("/_registry/probe");
static ngx_str_t  ngx_http_registry_relay_uri =
    ngx_string("/_registry/relay");


/* $registry_relay_method, _authorization, _type, _body */

ngx_int_t
ngx_http_registry_relay_variable(ngx_http_request_t *r,
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
ngx_http_registry_relay_handler(ngx_http_request_t *r)
{
    ngx_int_t                      rc;
    ngx_http_registry_ctx_t       *ctx;
    ngx_http_registry_relay_t     *rl;
    ngx_http_registry_loc_conf_t  *rlcf;

    rlcf = ngx_http_get_module_loc_conf(r, ngx_http_registry_module);

    if (!rlcf->auth_relay || r != r->main) {
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

    rc = ngx_http_registry_realm(r, &ctx->token_url, ctx->region,
                                 &ctx->token_target);

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
            if (ngx_http_registry_relay_unescape(r->pool, &raw, &service)
                != NGX_OK)
            {
                return NGX_DECLINED;
            }

            continue;
        }

        if (key.len == 5 && ngx_strncmp(key.data, "scope", 5) == 0) {
            if (ngx_http_registry_relay_unescape(r->pool, &raw, &value)
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
                if (ngx_http_registry_relay_raw(&raw) != NGX_OK) {
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

    /* a login goes to the first region: regions share one token service */

    if (ngx_http_registry_region_route(r, ctx) != NGX_OK) {
        return NGX_ERROR;
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
    ngx_str_t                       name, first, checked;
    ngx_uint_t                      pull;
    ngx_http_registry_ctx_t        *ctx;
    ngx_http_registry_relay_t      *rl;
    ngx_http_registry_main_conf_t  *rmcf;
    u_char                          buf[NGX_HTTP_REGISTRY_LISTED_LEN];

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

        /* a repository the registry's lists refuse gets no token either */

        checked = name;

        if (ngx_http_registry_listed(reg, &checked, buf) != NGX_OK) {
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
        ngx_http_registry_auth_token(r, ctx->registry, &rl->requested, &body);
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


static ngx_int_t
ngx_http_registry_relay_finish(ngx_http_request_t *r, ngx_uint_t status,
    char *code, char *message)
{
    ngx_http_finalize_request(r, ngx_http_registry_send_oci_error(r, status,
                                                                  code,
                                                                  message));
    return NGX_DONE;
}


/* a form or query value, "+" as a space, escapes decoded */

static ngx_int_t
ngx_http_registry_relay_unescape(ngx_pool_t *pool, ngx_str_t *raw,
    ngx_str_t *value)
{
    u_char     *src, *dst;
    ngx_uint_t  i;

    if (raw->len > NGX_HTTP_REGISTRY_RELAY_VALUE) {
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
ngx_http_registry_relay_raw(ngx_str_t *value)
{
    ngx_uint_t  i;

    if (value->len > NGX_HTTP_REGISTRY_RELAY_VALUE) {
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
