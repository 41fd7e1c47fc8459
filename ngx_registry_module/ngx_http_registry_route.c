
/*
 * Copyright (C) ngx_registry_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_registry.h"
#include "ngx_http_registry_grammar.h"
#include "ngx_http_registry_accept.h"
#include "ngx_http_registry_response.h"
#include "ngx_http_registry_loop.h"
#include "ngx_http_registry_tag.h"
#include "ngx_http_registry_auth.h"
#include "ngx_http_registry_region.h"
#include "ngx_http_registry_route.h"


static ngx_int_t ngx_http_registry_refuse(ngx_http_request_t *r,
    ngx_http_registry_error_t *err);
static ngx_http_registry_t *ngx_http_registry_select(ngx_http_request_t *r,
    ngx_http_registry_path_t *path, ngx_http_registry_args_t *args,
    ngx_http_registry_ctx_t *ctx, ngx_http_registry_error_t *err);
static ngx_int_t ngx_http_registry_allowed(ngx_http_request_t *r,
    ngx_http_registry_t *reg, ngx_http_registry_path_t *path,
    ngx_http_registry_error_t *err);
static ngx_int_t ngx_http_registry_upstream_uri(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_http_registry_path_t *path,
    ngx_http_registry_args_t *args);
static ngx_int_t ngx_http_registry_cache_key(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_accept_line(ngx_table_elt_t *h,
    void *data);
static ngx_int_t ngx_http_registry_token_key(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);


static ngx_str_t  ngx_http_registry_accept_header = ngx_string("Accept");


/*
 * The route and validate steps, in the preaccess phase: after rewrites,
 * before the access phase (where an authorisation step belongs) and before
 * the content phase, where proxy_pass and proxy_cache serve the request.
 * Anything that fails here is answered with an OCI error and never goes
 * upstream.
 */

ngx_int_t
ngx_http_registry_handler(ngx_http_request_t *r)
{
    u_char                        *q, *last;
    ngx_int_t                      rc;
    ngx_http_registry_ctx_t       *ctx;
    ngx_http_registry_path_t       path;
    ngx_http_registry_args_t       args;
    ngx_http_registry_error_t      err;
    ngx_http_registry_loc_conf_t  *rlcf;

    rlcf = ngx_http_get_module_loc_conf(r, ngx_http_registry_module);

    if (!rlcf->mirror || rlcf->auth_relay || r != r->main) {
        return NGX_DECLINED;
    }

    if (ngx_http_get_module_ctx(r, ngx_http_registry_module) != NULL) {
        return NGX_DECLINED;
    }

    /* first: a loop costs one request, whatever it asks for */

    if (ngx_http_registry_loop_seen(r)) {
        err.status = NGX_HTTP_REGISTRY_LOOP_DETECTED;
        ngx_str_set(&err.code, "UNAVAILABLE");
        ngx_str_set(&err.message, "request loop: this mirror has forwarded "
                                  "this request already (CDN-Loop)");
        goto failed;
    }

    if (ngx_http_registry_loop_too_long(r)) {
        err.status = NGX_HTTP_BAD_REQUEST;
        ngx_str_set(&err.code, "UNSUPPORTED");
        ngx_str_set(&err.message, "CDN-Loop longer than a chain of "
                                  "mirrors needs");
        goto failed;
    }

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        err.status = NGX_HTTP_NOT_ALLOWED;
        ngx_str_set(&err.code, "UNSUPPORTED");
        ngx_str_set(&err.message, "this mirror only serves GET and HEAD");
        goto failed;
    }

    last = r->unparsed_uri.data + r->unparsed_uri.len;

    q = ngx_strlchr(r->unparsed_uri.data, last, '?');
    if (q == NULL) {
        q = last;
    }

    if (ngx_http_registry_parse_path(r->unparsed_uri.data,
                                     q - r->unparsed_uri.data, &path, &err)
        != NGX_OK)
    {
        goto failed;
    }

    if (q < last) {
        q++;
    }

    if (ngx_http_registry_parse_args(q, last - q, &args, &err) != NGX_OK) {
        goto failed;
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_registry_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (path.endpoint == NGX_HTTP_REGISTRY_BASE) {

        /* where the server's registry's clients log in, "GET /v2/" says so */

        ctx->login = ngx_http_registry_select(r, &path, &args, ctx, &err);

        if (ctx->login && !ctx->login->client_auth) {
            ctx->login = NULL;
        }

        ctx->answer.status = NGX_HTTP_OK;
        ngx_http_set_ctx(r, ctx, ngx_http_registry_module);

        return NGX_DECLINED;
    }

    /* the repository as the client wrote it, registry prefix included */

    ctx->client_name.data = path.prefix.len ? path.prefix.data
                                            : path.name.data;
    ctx->client_name.len = path.name.data + path.name.len
                           - ctx->client_name.data;

    ctx->registry = ngx_http_registry_select(r, &path, &args, ctx, &err);
    if (ctx->registry == NULL) {
        goto failed;
    }

    /* before the cache too: a digest's entry is shared by every name */

    if (ngx_http_registry_allowed(r, ctx->registry, &path, &err) != NGX_OK) {
        goto failed;
    }

    if (ngx_http_registry_region_route(r, ctx) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_registry_upstream_uri(r, ctx, &path, &args) != NGX_OK
        || ngx_http_registry_cache_key(r, ctx) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_registry_token_key(r, ctx) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* a manifest by tag is served by the digest the tag names */

    if (ctx->endpoint == NGX_HTTP_REGISTRY_MANIFEST && !ctx->digest
        && ngx_http_registry_tag_route(r, ctx) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_set_ctx(r, ctx, ngx_http_registry_module);

    /* a pull has no body: whatever a client sends is read and dropped */

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "registry: \"%V\" %V%V",
                   &ctx->registry->name, &ctx->region->upstream, &ctx->uri);

    return NGX_DECLINED;

failed:

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "registry: refused \"%V\": %V %V",
                  &r->unparsed_uri, &err.code, &err.message);

    return ngx_http_registry_refuse(r, &err);
}


/*
 * The mirror's own answers (GET /v2/ and every refusal) wait for the
 * precontent phase, so that the operator's access control (auth_basic,
 * allow/deny, auth_request) runs first: a client is challenged at
 * "GET /v2/" as registries do, and nobody unauthorised learns which
 * registries the mirror serves.  A context without a registry carries
 * the answer.
 */

static ngx_int_t
ngx_http_registry_refuse(ngx_http_request_t *r,
    ngx_http_registry_error_t *err)
{
    ngx_http_registry_ctx_t  *ctx;

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_registry_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->answer = *err;

    ngx_http_set_ctx(r, ctx, ngx_http_registry_module);

    return NGX_DECLINED;
}


ngx_int_t
ngx_http_registry_answer_handler(ngx_http_request_t *r)
{
    ngx_int_t                 rc;
    ngx_str_t                 body;
    ngx_http_registry_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_registry_module);

    if (ctx == NULL || ctx->registry || r != r->main) {
        return NGX_DECLINED;
    }

    if (ctx->login && ngx_http_registry_auth_base(r, ctx->login) != NGX_OK) {
        return ngx_http_registry_auth_challenge(r, ctx->login, NULL,
                                                "authentication required");
    }

    if (ctx->answer.status == NGX_HTTP_OK) {
        ngx_str_set(&body, "{}\n");
        rc = ngx_http_registry_send(r, NGX_HTTP_OK, &body);

    } else {
        rc = ngx_http_registry_send_error(r, &ctx->answer);
    }

    ngx_http_finalize_request(r, rc);

    return NGX_DONE;
}


/*
 * The precedence: a registry in the path, containerd's "ns", the host
 * alias the request came in on, the default registry.  A registry named
 * by the client that is not configured is never guessed at or contacted.
 */

static ngx_http_registry_t *
ngx_http_registry_select(ngx_http_request_t *r,
    ngx_http_registry_path_t *path, ngx_http_registry_args_t *args,
    ngx_http_registry_ctx_t *ctx, ngx_http_registry_error_t *err)
{
    ngx_uint_t                      i;
    ngx_http_registry_t            *reg;
    ngx_http_registry_alias_t      *alias;
    ngx_http_registry_loc_conf_t   *rlcf;
    ngx_http_registry_main_conf_t  *rmcf;

    rmcf = ngx_http_get_module_main_conf(r, ngx_http_registry_module);
    rlcf = ngx_http_get_module_loc_conf(r, ngx_http_registry_module);

    if (path->prefix.len) {
        reg = ngx_http_registry_lookup(rmcf, &path->prefix);
        goto found;
    }

    if (args->ns.len) {
        reg = ngx_http_registry_lookup(rmcf, &args->ns);

        /* echoed in the answer: args are on the stack */

        ctx->ns.data = ngx_pstrdup(r->pool, &args->ns);
        if (ctx->ns.data == NULL) {
            err->status = NGX_HTTP_INTERNAL_SERVER_ERROR;
            ngx_str_set(&err->code, "UNKNOWN");
            ngx_str_set(&err->message, "out of memory");
            return NULL;
        }

        ctx->ns.len = args->ns.len;
        goto found;
    }

    if (rlcf->aliases && r->headers_in.server.len) {
        alias = rlcf->aliases->elts;

        for (i = 0; i < rlcf->aliases->nelts; i++) {
            if (alias[i].host.len == r->headers_in.server.len
                && ngx_strncmp(alias[i].host.data, r->headers_in.server.data,
                               alias[i].host.len)
                   == 0)
            {
                return alias[i].registry;
            }
        }
    }

    reg = rlcf->default_registry;

found:

    if (reg == NULL) {
        err->status = NGX_HTTP_NOT_FOUND;
        ngx_str_set(&err->code, "NAME_UNKNOWN");
        ngx_str_set(&err->message, "no such registry on this mirror");
    }

    return reg;
}


/*
 * A registry's allow and block lists (ngx_http_registry_listed()): the
 * path prefix of the registry's URL says where the registry is, not what
 * it holds, and is not part of the name checked.
 */

static ngx_int_t
ngx_http_registry_allowed(ngx_http_request_t *r, ngx_http_registry_t *reg,
    ngx_http_registry_path_t *path, ngx_http_registry_error_t *err)
{
    ngx_str_t  name;
    u_char     buf[NGX_HTTP_REGISTRY_LISTED_LEN];

    name = path->name;

    if (ngx_http_registry_listed(reg, &name, buf) == NGX_OK) {
        return NGX_OK;
    }

    err->status = NGX_HTTP_FORBIDDEN;
    ngx_str_set(&err->code, "DENIED");

    err->message.len = sizeof("repository \"\" is not mirrored here") - 1
                       + name.len;
    err->message.data = ngx_pnalloc(r->pool, err->message.len);
    if (err->message.data == NULL) {
        err->status = NGX_HTTP_INTERNAL_SERVER_ERROR;
        ngx_str_set(&err->code, "UNKNOWN");
        ngx_str_set(&err->message, "out of memory");
        return NGX_ERROR;
    }

    ngx_sprintf(err->message.data, "repository \"%V\" is not mirrored here",
                &name);

    return NGX_DECLINED;
}


/*
 * Rebuilds the path the upstream gets from the checked parts, so nothing
 * the client sent reaches it unless the grammar allowed it.
 */

static ngx_int_t
ngx_http_registry_upstream_uri(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_http_registry_path_t *path,
    ngx_http_registry_args_t *args)
{
    u_char               *p;
    size_t                len;
    ngx_uint_t            library;
    ngx_str_t             endpoint;
    ngx_http_registry_t  *reg;

    reg = ctx->registry;

    library = reg->library
              && ngx_strlchr(path->name.data,
                             path->name.data + path->name.len, '/')
                 == NULL;

    switch (path->endpoint) {

    case NGX_HTTP_REGISTRY_MANIFEST:
        ngx_str_set(&endpoint, "/manifests/");
        break;

    case NGX_HTTP_REGISTRY_BLOB:
        ngx_str_set(&endpoint, "/blobs/");
        break;

    case NGX_HTTP_REGISTRY_REFERRERS:
        ngx_str_set(&endpoint, "/referrers/");
        break;

    default: /* NGX_HTTP_REGISTRY_TAGS */
        ngx_str_set(&endpoint, "/tags/list");
        break;
    }

    len = sizeof("/v2/") - 1 + reg->prefix.len + 1
          + sizeof("library/") - 1 + path->name.len
          + endpoint.len + path->reference.len
          + sizeof("?n=&last=") - 1 + args->n.len + args->last.len
          + sizeof("?artifactType=") - 1 + args->artifact_type.len;

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ctx->uri.data = p;

    p = ngx_cpymem(p, "/v2/", 4);

    /* the upstream's name for the repository has the prefix */

    ctx->repository.data = p;

    if (reg->prefix.len) {
        p = ngx_cpymem(p, reg->prefix.data, reg->prefix.len);
        *p++ = '/';
    }

    if (library) {
        p = ngx_cpymem(p, "library/", 8);
    }

    p = ngx_cpymem(p, path->name.data, path->name.len);
    ctx->repository.len = p - ctx->repository.data;

    p = ngx_cpymem(p, endpoint.data, endpoint.len);

    ctx->reference.data = p;
    p = ngx_cpymem(p, path->reference.data, path->reference.len);
    ctx->reference.len = path->reference.len;

    if (path->endpoint == NGX_HTTP_REGISTRY_TAGS) {
        if (args->n.len) {
            p = ngx_sprintf(p, "?n=%V", &args->n);
        }

        if (args->last.len) {
            *p++ = args->n.len ? '&' : '?';
            p = ngx_sprintf(p, "last=%V", &args->last);
        }

    } else if (path->endpoint == NGX_HTTP_REGISTRY_REFERRERS
               && args->artifact_type.len)
    {
        p = ngx_sprintf(p, "?artifactType=%V", &args->artifact_type);
    }

    ctx->uri.len = p - ctx->uri.data;
    ctx->endpoint = path->endpoint;
    ctx->digest = path->digest
                  && path->endpoint != NGX_HTTP_REGISTRY_REFERRERS;

    return NGX_OK;
}


/*
 * Content named by its digest is keyed by the digest alone: one copy
 * however many repositories, and with verified fills however many
 * registries, share it (unverified, a registry could poison another's
 * entry, so the key then has the registry).  A tag is a moving pointer
 * whose answer depends on Accept, so its key has the normalised Accept
 * list, and that same list goes upstream.
 */

static ngx_int_t
ngx_http_registry_cache_key(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    u_char                        *p;
    ngx_str_t                      registry;
    ngx_uint_t                     mask;
    ngx_http_registry_loc_conf_t  *rlcf;

    rlcf = ngx_http_get_module_loc_conf(r, ngx_http_registry_module);

    if (ctx->endpoint == NGX_HTTP_REGISTRY_MANIFEST) {

        /* $http_accept is the first line only; docker sends one a type */

        mask = 0;
        (void) ngx_http_registry_headers(&r->headers_in.headers,
                                         &ngx_http_registry_accept_header,
                                         ngx_http_registry_accept_line, &mask);

        p = ngx_pnalloc(r->pool, NGX_HTTP_REGISTRY_ACCEPT_MAX);
        if (p == NULL) {
            return NGX_ERROR;
        }

        ctx->accept.data = p;
        ctx->accept.len = ngx_http_registry_accept_string(mask, p);
    }

    p = ngx_pnalloc(r->pool, ctx->registry->name.len + ctx->uri.len
                             + ctx->accept.len + sizeof(" manifest  ") - 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ctx->cache_key.data = p;

    if (ctx->digest) {
        if (rlcf->verify) {
            ngx_str_set(&registry, "*");

        } else {
            registry = ctx->registry->name;
        }

        p = ngx_sprintf(p, "%V %s %V", &registry,
                        ctx->endpoint == NGX_HTTP_REGISTRY_BLOB
                        ? "blob" : "manifest",
                        &ctx->reference);

    } else {
        p = ngx_sprintf(p, "%V %V %V", &ctx->registry->name, &ctx->uri,
                        &ctx->accept);
    }

    ctx->cache_key.len = p - ctx->cache_key.data;

    return NGX_OK;
}


static ngx_int_t
ngx_http_registry_accept_line(ngx_table_elt_t *h, void *data)
{
    *(ngx_uint_t *) data |= ngx_http_registry_accept_mask(h->value.data,
                                                         h->value.len);
    return NGX_OK;
}


/*
 * Where the upstream token for this repository is kept: per registry (two
 * names of one upstream may have different credentials), and per region
 * where a registry has several (each region may be a registry of its own,
 * with its own token service and credentials, under the same host name).
 */

static ngx_int_t
ngx_http_registry_token_key(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    u_char     *p;
    ngx_str_t  *name, *repo;

    name = &ctx->registry->name;
    repo = &ctx->repository;

    ctx->token_key.len = name->len + 2 + ctx->region->upstream.len
                         + ctx->region->host.len + repo->len
                         + sizeof(" repository::pull") - 1;
    ctx->token_key.data = ngx_pnalloc(r->pool, ctx->token_key.len);
    if (ctx->token_key.data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(ctx->token_key.data, name->data, name->len);

    if (ctx->registry->regions.nelts > 1) {
        *p++ = '@';
        p = ngx_cpymem(p, ctx->region->upstream.data,
                       ctx->region->upstream.len);
        *p++ = '@';
        p = ngx_cpymem(p, ctx->region->host.data, ctx->region->host.len);
    }

    p = ngx_sprintf(p, " repository:%V:pull", repo);

    ctx->token_key.len = p - ctx->token_key.data;

    return NGX_OK;
}
