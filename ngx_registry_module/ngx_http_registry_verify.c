
/*
 * Copyright (C) ngx_registry_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <openssl/evp.h>
#include "ngx_http_registry_module.h"


/*
 * Every fill of content named by a digest is hashed while it streams,
 * over exactly the bytes the proxy's input filter hands on (de-chunked,
 * trimmed to Content-Length): those are the bytes that reach the cache
 * and the client.  What the last raw buffer of the body gave is held back
 * until the hash is known, so a body that fails never reaches the cache
 * or a client whole: the pipe is aborted, nginx deletes the temp file,
 * and the client sees a cut-off transfer.
 */


typedef struct {
    EVP_MD_CTX                   *md;
    ngx_str_t                     expected;   /* "sha256:hex" */
    ngx_int_t                   (*init)(void *data);
    ngx_event_pipe_input_filter_pt  filter;
    ngx_chain_t                  *held;
    unsigned                      done:1;
} ngx_http_registry_verify_t;


static void ngx_http_registry_verify_cleanup(void *data);
static ngx_int_t ngx_http_registry_verify_init(void *data);
static ngx_int_t ngx_http_registry_verify_filter(ngx_event_pipe_t *p,
    ngx_buf_t *buf);
static ngx_int_t ngx_http_registry_verify_done(ngx_http_request_t *r,
    ngx_http_registry_verify_t *vf);


/*
 * Called from the header filter, before nginx calls u->input_filter_init:
 * the proxy's init chooses p->input_filter (copy or chunked), so it is
 * wrapped rather than replaced.
 */

ngx_int_t
ngx_http_registry_verify_body(ngx_http_request_t *r, ngx_str_t *expected)
{
    const EVP_MD                *md;
    ngx_pool_cleanup_t          *cln;
    ngx_http_upstream_t         *u;
    ngx_http_registry_ctx_t     *ctx;
    ngx_http_registry_verify_t  *vf;

    u = r->upstream;
    ctx = ngx_http_get_module_ctx(r, ngx_http_registry_module);

    /*
     * Unbuffered proxying has no event pipe to hook: registry_params keeps
     * proxy_buffering on.  A body ended by the upstream closing cannot be
     * checked before nginx commits it, and the header filter has already
     * made it uncacheable.
     */

    if (ctx->verify != NULL || !u->buffering || u->input_filter_init == NULL
        || (u->headers_in.content_length_n == -1 && !u->headers_in.chunked))
    {
        return NGX_OK;
    }

    md = ngx_strncmp(expected->data, "sha512:", 7) == 0 ? EVP_sha512()
                                                        : EVP_sha256();

    vf = ngx_pcalloc(r->pool, sizeof(ngx_http_registry_verify_t));
    if (vf == NULL) {
        return NGX_ERROR;
    }

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

    if (EVP_DigestInit_ex(vf->md, md, NULL) != 1) {
        return NGX_ERROR;
    }

    vf->expected = *expected;
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
        if (cl->buf->last > cl->buf->pos
            && EVP_DigestUpdate(vf->md, cl->buf->pos,
                                cl->buf->last - cl->buf->pos)
               != 1)
        {
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


static ngx_int_t
ngx_http_registry_verify_done(ngx_http_request_t *r,
    ngx_http_registry_verify_t *vf)
{
    u_char                    *p, hex[2 * EVP_MAX_MD_SIZE];
    size_t                     alg;
    unsigned int               len;
    u_char                     md[EVP_MAX_MD_SIZE];
    ngx_http_registry_ctx_t   *ctx;

    if (EVP_DigestFinal_ex(vf->md, md, &len) != 1) {
        return NGX_ERROR;
    }

    p = ngx_hex_dump(hex, md, len);

    alg = ngx_strlchr(vf->expected.data,
                      vf->expected.data + vf->expected.len, ':')
          - vf->expected.data + 1;

    if ((size_t) (p - hex) == vf->expected.len - alg
        && ngx_strncmp(hex, vf->expected.data + alg, p - hex) == 0)
    {
        return NGX_OK;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_registry_module);

    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "registry: digest mismatch from \"%V\" repository \"%V\": "
                  "expected %V, computed %*s:%*s; not cached, "
                  "transfer aborted",
                  &ctx->registry->name, &ctx->repository, &vf->expected,
                  alg - 1, vf->expected.data, p - hex, hex);

    if (ngx_http_registry_counters) {
        (void) ngx_atomic_fetch_add(
                          &ngx_http_registry_counters->digest_mismatches, 1);
    }

    r->upstream->cacheable = 0;

    return NGX_ERROR;
}
