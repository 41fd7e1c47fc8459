
/*
 * Copyright (C) ngx_registry_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <openssl/evp.h>
#include "ngx_http_registry.h"
#include "ngx_http_registry_zone.h"
#include "ngx_http_registry_manifest.h"
#include "ngx_http_registry_auth.h"
#include "ngx_http_registry_verify.h"


/*
 * Every fill of content named by a digest is hashed while it streams,
 * over exactly the bytes the proxy's input filter hands on (de-chunked,
 * trimmed to Content-Length): those are the bytes that reach the cache
 * and the client.  What the last raw buffer of the body gave is held back
 * until the hash is known, so a body that fails never reaches the cache
 * or a client whole: the pipe is aborted, nginx deletes the temp file,
 * and the client sees a cut-off transfer.  A manifest is also kept whole
 * (at most 4 MiB), so that its mediaType can be checked, and a schema 1
 * manifest's digest computed over its JWS payload, before its last bytes
 * go out.
 */


#define NGX_HTTP_REGISTRY_MANIFEST_MAX  (4 * 1024 * 1024)


typedef struct {
    EVP_MD_CTX                   *md;
    const EVP_MD                 *alg;
    ngx_str_t                     expected;   /* "sha256:hex", or none */
    ngx_str_t                     type;       /* a manifest's media type */
    u_char                       *body;       /* a manifest, kept */
    size_t                        len;
    size_t                        size;
    ngx_int_t                   (*init)(void *data);
    ngx_event_pipe_input_filter_pt  filter;
    ngx_chain_t                  *held;
    unsigned                      done:1;
} ngx_http_registry_verify_t;


static void ngx_http_registry_verify_cleanup(void *data);
static ngx_int_t ngx_http_registry_verify_init(void *data);
static ngx_int_t ngx_http_registry_verify_filter(ngx_event_pipe_t *p,
    ngx_buf_t *buf);
static ngx_int_t ngx_http_registry_verify_keep(ngx_http_request_t *r,
    ngx_http_registry_verify_t *vf, u_char *p, size_t n);
static ngx_int_t ngx_http_registry_verify_done(ngx_http_request_t *r,
    ngx_http_registry_verify_t *vf);
static ngx_int_t ngx_http_registry_verify_computed(ngx_http_request_t *r,
    ngx_http_registry_verify_t *vf, ngx_http_registry_manifest_t *m,
    u_char *md, unsigned int len);
static ngx_int_t ngx_http_registry_verify_manifest(ngx_http_request_t *r,
    ngx_http_registry_verify_t *vf, ngx_http_registry_manifest_t *m);


/*
 * Called from the header filter, before nginx calls u->input_filter_init:
 * the proxy's init chooses p->input_filter (copy or chunked), so it is
 * wrapped rather than replaced.  expected: the digest the body must have
 * (none: a tag manifest without one); type: a manifest's media type,
 * checked against its body.  NGX_DECLINED, with the reason: this body
 * cannot be checked before its last byte goes out.  NGX_ABORT: an empty
 * body, checked already, failed (logged and counted).
 */

ngx_int_t
ngx_http_registry_verify_body(ngx_http_request_t *r, ngx_str_t *expected,
    ngx_str_t *type, char **reason)
{
    off_t                        length;
    ngx_pool_cleanup_t          *cln;
    ngx_http_upstream_t         *u;
    ngx_http_registry_ctx_t     *ctx;
    ngx_http_registry_verify_t  *vf;

    u = r->upstream;
    ctx = ngx_http_get_module_ctx(r, ngx_http_registry_module);
    length = u->headers_in.content_length_n;

    if (ctx->verify != NULL) {
        return NGX_OK;
    }

    /*
     * Unbuffered proxying has no event pipe to hook (registry_params
     * keeps proxy_buffering on, and ignores X-Accel-Buffering).  A body
     * ended by the upstream closing cannot be checked before nginx
     * commits it.
     */

    if (!u->buffering || u->input_filter_init == NULL) {
        *reason = "proxied unbuffered";
        return NGX_DECLINED;
    }

    if (length == -1 && !u->headers_in.chunked) {
        *reason = "no Content-Length and not chunked";
        return NGX_DECLINED;
    }

    if (type->len && length > NGX_HTTP_REGISTRY_MANIFEST_MAX) {
        *reason = "a manifest larger than 4 MiB";
        return NGX_DECLINED;
    }

    vf = ngx_pcalloc(r->pool, sizeof(ngx_http_registry_verify_t));
    if (vf == NULL) {
        return NGX_ERROR;
    }

    if (type->len) {
        vf->type = *type;
        vf->size = length >= 0 ? (size_t) length : 16384;

        vf->body = ngx_pnalloc(r->pool, vf->size ? vf->size : 1);
        if (vf->body == NULL) {
            return NGX_ERROR;
        }
    }

    /*
     * A tag whose upstream names no digest for it: its digest is computed
     * (sha256, as registries name them), to serve the tag by from then on.
     */

    if (expected->len || (type->len && ctx->tag.len && !ctx->digest)) {
        cln = ngx_pool_cleanup_add(r->pool, 0);
        if (cln == NULL) {
            return NGX_ERROR;
        }

        vf->md = EVP_MD_CTX_new();
        if (vf->md == NULL) {
            return NGX_ERROR;
        }

        cln->handler = ngx_http_registry_verify_cleanup;
        cln->data = vf;

        vf->alg = (expected->len
                   && ngx_strncmp(expected->data, "sha512:", 7) == 0)
                  ? EVP_sha512() : EVP_sha256();

        if (EVP_DigestInit_ex(vf->md, vf->alg, NULL) != 1) {
            return NGX_ERROR;
        }

        vf->expected = *expected;
    }

    /*
     * An empty body is checked now, while the client can still get an
     * answer: later the check would fail before nginx sent the header,
     * and the client would get no answer at all.
     */

    if (length == 0) {
        return ngx_http_registry_verify_done(r, vf) == NGX_OK
               ? NGX_OK : NGX_ABORT;
    }

    vf->init = u->input_filter_init;
    u->input_filter_init = ngx_http_registry_verify_init;

    ctx->verify = vf;

    return NGX_OK;
}


static void
ngx_http_registry_verify_cleanup(void *data)
{
    ngx_http_registry_verify_t  *vf = data;

    EVP_MD_CTX_free(vf->md);
}


static ngx_int_t
ngx_http_registry_verify_init(void *data)
{
    ngx_http_request_t  *r = data;

    ngx_int_t                    rc;
    ngx_event_pipe_t            *p;
    ngx_http_registry_ctx_t     *ctx;
    ngx_http_registry_verify_t  *vf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_registry_module);
    vf = ctx->verify;
    p = r->upstream->pipe;

    rc = vf->init(data);
    if (rc != NGX_OK) {
        return rc;
    }

    vf->filter = p->input_filter;
    p->input_filter = ngx_http_registry_verify_filter;

    if (p->length == 0) {
        /* an empty body: the filter will not be called */
        vf->done = 1;
        return ngx_http_registry_verify_done(r, vf);
    }

    return NGX_OK;
}


/*
 * What is held back is every link made from the last raw buffer that gave
 * any: nginx frees a raw buffer when its last link is written, walking its
 * earlier links, so those must not have been written and recycled before.
 */

static ngx_int_t
ngx_http_registry_verify_filter(ngx_event_pipe_t *p, ngx_buf_t *buf)
{
    ngx_http_request_t  *r = p->input_ctx;

    ngx_int_t                    rc;
    ngx_chain_t                 *cl, **ll, **held;
    ngx_http_registry_ctx_t     *ctx;
    ngx_http_registry_verify_t  *vf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_registry_module);
    vf = ctx->verify;

    if (vf->done) {
        return vf->filter(p, buf);
    }

    /* the links held back last time go first; they were hashed then */

    ll = p->in ? p->last_in : &p->in;
    held = NULL;

    if (vf->held) {
        *ll = vf->held;
        held = ll;

        for (cl = vf->held; cl->next; cl = cl->next) { /* void */ }

        ll = &cl->next;
        p->last_in = ll;
        vf->held = NULL;
    }

    rc = vf->filter(p, buf);
    if (rc != NGX_OK) {
        return rc;
    }

    for (cl = *ll; cl; cl = cl->next) {
        if (cl->buf->last == cl->buf->pos) {
            continue;
        }

        if (vf->md
            && EVP_DigestUpdate(vf->md, cl->buf->pos,
                                cl->buf->last - cl->buf->pos)
               != 1)
        {
            return NGX_ERROR;
        }

        if (vf->type.len
            && ngx_http_registry_verify_keep(r, vf, cl->buf->pos,
                                             cl->buf->last - cl->buf->pos)
               != NGX_OK)
        {
            r->upstream->cacheable = 0;
            return NGX_ERROR;
        }
    }

    if (p->length == 0 || p->upstream_done) {
        vf->done = 1;
        return ngx_http_registry_verify_done(r, vf);
    }

    /* hold back what this buffer gave, or else what was held before */

    if (*ll) {
        held = ll;
    }

    if (held && *held) {
        vf->held = *held;
        *held = NULL;
        p->last_in = held;
    }

    return NGX_OK;
}


/* a chunked manifest grows its copy, up to 4 MiB */

static ngx_int_t
ngx_http_registry_verify_keep(ngx_http_request_t *r,
    ngx_http_registry_verify_t *vf, u_char *p, size_t n)
{
    u_char                   *body;
    size_t                    size;
    ngx_http_registry_ctx_t  *ctx;

    if (vf->len + n > vf->size) {

        if (vf->len + n > NGX_HTTP_REGISTRY_MANIFEST_MAX) {
            ctx = ngx_http_get_module_ctx(r, ngx_http_registry_module);

            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "registry: manifest from \"%V\" repository "
                          "\"%V\" is larger than 4 MiB; not cached, "
                          "transfer aborted",
                          &ctx->registry->name, &ctx->repository);
            return NGX_ERROR;
        }

        size = ngx_max(2 * vf->size, vf->len + n);
        size = ngx_min(size, NGX_HTTP_REGISTRY_MANIFEST_MAX);

        body = ngx_pnalloc(r->pool, size);
        if (body == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(body, vf->body, vf->len);
        vf->body = body;
        vf->size = size;
    }

    ngx_memcpy(vf->body + vf->len, p, n);
    vf->len += n;

    return NGX_OK;
}


static ngx_int_t
ngx_http_registry_verify_done(ngx_http_request_t *r,
    ngx_http_registry_verify_t *vf)
{
    u_char                        *p, hex[2 * EVP_MAX_MD_SIZE];
    size_t                         alg;
    unsigned int                   len;
    ngx_http_registry_ctx_t       *ctx;
    ngx_http_registry_manifest_t   m;
    u_char                         md[EVP_MAX_MD_SIZE];

    ngx_memzero(&m, sizeof(ngx_http_registry_manifest_t));

    if (vf->type.len
        && ngx_http_registry_verify_manifest(r, vf, &m) != NGX_OK)
    {
        goto failed;
    }

    if (vf->md == NULL) {
        return NGX_OK;
    }

    if (EVP_DigestFinal_ex(vf->md, md, &len) != 1) {
        return NGX_ERROR;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_registry_module);

    if (vf->expected.len == 0) {
        if (ngx_http_registry_verify_computed(r, vf, &m, md, len) != NGX_OK) {
            return NGX_ERROR;
        }

        ctx->verified = 1;
        ngx_http_registry_stat(ctx->registry, fills_verified);
        return NGX_OK;
    }

    alg = ngx_strlchr(vf->expected.data,
                      vf->expected.data + vf->expected.len, ':')
          - vf->expected.data + 1;

    for ( ;; ) {
        p = ngx_hex_dump(hex, md, len);

        if ((size_t) (p - hex) == vf->expected.len - alg
            && ngx_strncmp(hex, vf->expected.data + alg, p - hex) == 0)
        {
            ctx->verified = 1;
            ngx_http_registry_stat(ctx->registry, fills_verified);

            if (vf->body) {
                /* what it lists belongs to its repository */
                ngx_http_registry_auth_manifest(r, ctx, vf->body, vf->len);
            }

            return NGX_OK;
        }

        if (!m.jws) {
            break;
        }

        /* a schema 1 manifest: the digest of its JWS payload */

        m.jws = 0;

        if (EVP_DigestInit_ex(vf->md, vf->alg, NULL) != 1
            || EVP_DigestUpdate(vf->md, m.head.data, m.head.len) != 1
            || EVP_DigestUpdate(vf->md, m.tail.data, m.tail.len) != 1
            || EVP_DigestFinal_ex(vf->md, md, &len) != 1)
        {
            return NGX_ERROR;
        }
    }

    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "registry: digest mismatch from \"%V\" repository \"%V\": "
                  "expected %V, computed %*s:%*s; not cached, "
                  "transfer aborted",
                  &ctx->registry->name, &ctx->repository, &vf->expected,
                  alg - 1, vf->expected.data, p - hex, hex);

failed:

    ngx_http_registry_mismatch(r);

    r->upstream->cacheable = 0;

    return NGX_ERROR;
}


/*
 * A manifest whose top-level mediaType is not its media type fails as a
 * digest mismatch does; so does one without a mediaType whose members are
 * not those of its media type, one that is not a JSON object, and a
 * schema 1 manifest whose payload cannot be rebuilt.
 */

static ngx_int_t
ngx_http_registry_verify_manifest(ngx_http_request_t *r,
    ngx_http_registry_verify_t *vf, ngx_http_registry_manifest_t *m)
{
    u_char                   *scratch;
    ngx_int_t                 rc;
    ngx_str_t                 body;
    ngx_http_registry_ctx_t  *ctx;

    body.data = vf->body;
    body.len = vf->len;

    scratch = ngx_pnalloc(r->pool, body.len ? 2 * body.len : 1);
    if (scratch == NULL) {
        return NGX_ERROR;
    }

    rc = ngx_http_registry_manifest_parse(&body, &vf->type, m, scratch);

    if (rc == NGX_OK) {
        return NGX_OK;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_registry_module);

    if (rc == NGX_DECLINED) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "registry: manifest from \"%V\" repository \"%V\" "
                      "has mediaType \"%V\" but is answered as \"%V\"; "
                      "not cached, transfer aborted",
                      &ctx->registry->name, &ctx->repository,
                      &m->media_type, &vf->type);
        return NGX_ERROR;
    }

    if (rc == NGX_ABORT) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "registry: manifest from \"%V\" repository \"%V\" "
                      "has no mediaType and not the members of a %V; "
                      "not cached, transfer aborted",
                      &ctx->registry->name, &ctx->repository, &vf->type);
        return NGX_ERROR;
    }

    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "registry: manifest from \"%V\" repository \"%V\" "
                  "is not a %V document the mirror can read; "
                  "not cached, transfer aborted",
                  &ctx->registry->name, &ctx->repository, &vf->type);

    return NGX_ERROR;
}


/* the digest of a body that had none named: of its payload, for schema 1 */

static ngx_int_t
ngx_http_registry_verify_computed(ngx_http_request_t *r,
    ngx_http_registry_verify_t *vf, ngx_http_registry_manifest_t *m,
    u_char *md, unsigned int len)
{
    u_char                   *p;
    ngx_http_registry_ctx_t  *ctx;

    if (m->jws
        && (EVP_DigestInit_ex(vf->md, vf->alg, NULL) != 1
            || EVP_DigestUpdate(vf->md, m->head.data, m->head.len) != 1
            || EVP_DigestUpdate(vf->md, m->tail.data, m->tail.len) != 1
            || EVP_DigestFinal_ex(vf->md, md, &len) != 1))
    {
        return NGX_ERROR;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_registry_module);

    p = ngx_pnalloc(r->pool, sizeof("sha256:") - 1 + 2 * len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ctx->computed.data = p;
    p = ngx_cpymem(p, "sha256:", sizeof("sha256:") - 1);
    p = ngx_hex_dump(p, md, len);
    ctx->computed.len = p - ctx->computed.data;

    return NGX_OK;
}


/* the shared counters of bodies that failed their digest */

void
ngx_http_registry_mismatch(ngx_http_request_t *r)
{
    ngx_http_registry_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_registry_module);

    if (ctx) {
        ngx_http_registry_stat(ctx->registry, fills_mismatch);
    }

    if (ngx_http_registry_counters) {
        (void) ngx_atomic_fetch_add(
                          &ngx_http_registry_counters->digest_mismatches, 1);
    }
}
