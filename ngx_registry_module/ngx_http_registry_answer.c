
/*
 * Copyright (C) ngx_registry_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_registry.h"
#include "ngx_http_registry_grammar.h"
#include "ngx_http_registry_accept.h"
#include "ngx_http_registry_json.h"
#include "ngx_http_registry_response.h"
#include "ngx_http_registry_verify.h"
#include "ngx_http_registry_tag.h"
#include "ngx_http_registry_auth.h"
#include "ngx_http_registry_region.h"
#include "ngx_http_registry_answer.h"


/*
 * What the mirror answers with.  An upstream's answer carries whatever
 * headers the upstream chose, and nginx stores the upstream's raw header
 * bytes in the cache file and replays them on every hit; a digest entry
 * is shared by every registry and client of the mirror.  So every header
 * the upstream sent is dropped, on fills and on hits alike, and an answer
 * gets only what the mirror decides: Content-Type (by endpoint; for a
 * manifest its media type, which must be a known one), Content-Length,
 * Docker-Content-Digest and ETag (the digest), the mirror's own headers,
 * and Accept-Ranges and Content-Range from nginx's range filter, which
 * runs after this one, as do add_header, charset and gzip.
 *
 * Before any header goes out, a fill the mirror would have to pass on
 * unchecked is refused: the header filter returns 502 before calling the
 * next filter, so nginx finalizes the upstream request with that status
 * (nothing has been sent: the error_page gives the OCI body), frees the
 * cache lock and the temp file.
 */


/* what the next hop's Cache-Status lines hold, gathered */

typedef struct {
    u_char                    *start;
    u_char                    *pos;
    u_char                    *end;
    ngx_uint_t                 bad;
} ngx_http_registry_hops_t;


static ngx_int_t ngx_http_registry_header_filter(ngx_http_request_t *r);
static ngx_int_t ngx_http_registry_expected_digest(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_answer(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_answer_fresh(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_count(ngx_table_elt_t *h, void *data);
static ngx_int_t ngx_http_registry_answer_refuse(ngx_http_request_t *r);
static void ngx_http_registry_answer_clear(ngx_http_request_t *r);
static ngx_int_t ngx_http_registry_encoded(ngx_table_elt_t *h, void *data);
static ngx_int_t ngx_http_registry_answer_link(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_table_elt_t *h);
static ngx_int_t ngx_http_registry_answer_header(ngx_http_request_t *r,
    char *key, ngx_str_t *value, ngx_table_elt_t **ph);
#if (NGX_HTTP_CACHE)
static ngx_int_t ngx_http_registry_rfc_cache_status(ngx_http_request_t *r,
    ngx_str_t *status);
static ngx_int_t ngx_http_registry_next_hop(ngx_table_elt_t *h, void *data);
#endif


static ngx_str_t  ngx_http_registry_octet_stream =
    ngx_string("application/octet-stream");
static ngx_str_t  ngx_http_registry_json_type =
    ngx_string("application/json");
static ngx_str_t  ngx_http_registry_index_type =
    ngx_string("application/vnd.oci.image.index.v1+json");
static ngx_str_t  ngx_http_registry_api_version = ngx_string("registry/2.0");
static ngx_str_t  ngx_http_registry_digest_header =
    ngx_string("Docker-Content-Digest");
static ngx_str_t  ngx_http_registry_ns_header = ngx_string("OCI-Namespace");
static ngx_str_t  ngx_http_registry_cache_header =
    ngx_string("X-Registry-Cache");
static ngx_str_t  ngx_http_registry_rfc_cache_header =
    ngx_string("Cache-Status");


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;


ngx_int_t
ngx_http_registry_header_filter_init(ngx_conf_t *cf)
{
    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_registry_header_filter;

    return NGX_OK;
}


/*
 * Cache validity is decided here, not by proxy_cache_valid: header filters
 * run before nginx decides whether to store a response (and, for a 304
 * revalidation, before it refreshes the entry), and only here is the kind
 * of request known.  Only a GET stores or refreshes an entry; a HEAD
 * response has no body and must never stand in for one.  Upstream
 * Cache-Control and Expires are ignored (registry_params), so nothing else
 * makes a response cacheable.
 */

static ngx_int_t
ngx_http_registry_header_filter(ngx_http_request_t *r)
{
    ngx_int_t                      rc;
    ngx_str_t                     *status;
    ngx_http_upstream_t           *u;
    ngx_http_registry_ctx_t       *ctx;
    ngx_http_registry_loc_conf_t  *rlcf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_registry_module);

    if (ctx == NULL || ctx->registry == NULL || r != r->main) {
        return ngx_http_next_header_filter(r);
    }

    rlcf = ngx_http_get_module_loc_conf(r, ngx_http_registry_module);
    u = r->upstream;

    /*
     * An upstream's answer, fresh or from the cache, in a location that
     * proxies (the upstream-error location answers with the mirror's own
     * errors): checked, or refused, and its headers replaced by the
     * mirror's, before anything is sent.
     */

    if (u && !rlcf->upstream_errors) {
        (void) ngx_http_registry_expected_digest(r, ctx);

        /* a tag's check decides how the request goes on */

        if (ctx->tag_state == NGX_HTTP_REGISTRY_TAG_CHECK && !r->cached) {
            rc = ngx_http_registry_tag_checked(r, ctx);

            if (rc != NGX_DECLINED) {
                ngx_http_registry_answer_clear(r);
                u->cacheable = 0;
                return rc;
            }
        }

        /* what this request's credentials may read decides the rest */

        rc = ngx_http_registry_auth_filter(r, ctx);

        if (rc != NGX_DECLINED) {
            ngx_http_registry_answer_clear(r);
            u->cacheable = 0;
            return rc;
        }

        rc = ngx_http_registry_answer(r, ctx);
        if (rc != NGX_OK) {
            return rc;
        }

        /* a fill is recorded once its body has matched (log phase) */

        if (ctx->tag.len && ctx->expected.len
            && r->headers_out.status == NGX_HTTP_OK
            && (r->cached || r->method == NGX_HTTP_HEAD))
        {
            ngx_http_registry_tag_served(r, ctx, &ctx->expected,
                                         &r->headers_out.content_type);
        }
    }

#if (NGX_HTTP_CACHE)

    if (u && r->cache && r->method == NGX_HTTP_GET
        && ((!r->cached && u->headers_in.status_n == NGX_HTTP_OK)
            || (r->cached && u->cache_status == NGX_HTTP_CACHE_REVALIDATED)))
    {
        r->cache->valid_sec = ngx_time()
                              + (ctx->digest ? rlcf->digest_valid
                                             : rlcf->tag_valid);
    }

    status = ngx_http_registry_cache_status(r);

    if (rlcf->cache_header && status) {

        if (ngx_http_registry_set_header(r, &ngx_http_registry_cache_header,
                                         status)
            != NGX_OK
            || ngx_http_registry_rfc_cache_status(r, status) != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

#endif

    /*
     * A body ended only by the upstream closing is committed by nginx at
     * EOF with no hook to check it first, and a short one looks whole:
     * never cache it.
     */

    if (u && !r->cached && u->headers_in.content_length_n == -1
        && !u->headers_in.chunked)
    {
        u->cacheable = 0;
    }

    /* containerd's "ns" is echoed back, as the distribution spec asks */

    if (ctx->ns.len) {
        if (ngx_http_registry_set_header(r, &ngx_http_registry_ns_header,
                                         &ctx->ns)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return ngx_http_next_header_filter(r);
}


/*
 * What a fill's body must hash to: the digest in the URL, or for a tag the
 * upstream's Docker-Content-Digest.  A tag without one cannot be checked.
 */

static ngx_int_t
ngx_http_registry_expected_digest(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    ngx_table_elt_t  *h;

    if (ctx->digest) {
        ctx->expected = ctx->resolved.len ? ctx->resolved : ctx->reference;
        return NGX_OK;
    }

    if (ctx->endpoint != NGX_HTTP_REGISTRY_MANIFEST) {
        return NGX_DECLINED;
    }

    h = NULL;

    if (ngx_http_registry_headers(&r->upstream->headers_in.headers,
                                  &ngx_http_registry_digest_header,
                                  ngx_http_registry_first_line, &h)
        != NGX_DONE
        || ngx_http_registry_valid_digest(h->value.data, h->value.len)
           != NGX_OK)
    {
        return NGX_DECLINED;
    }

    ctx->expected = h->value;

    return NGX_OK;
}


/*
 * Called from the header filter for an upstream's answer, fresh or from
 * the cache, with ctx->expected set to the digest the body must have (if
 * known).  NGX_OK: the headers are the mirror's; an HTTP status: refused.
 */

static ngx_int_t
ngx_http_registry_answer(ngx_http_request_t *r, ngx_http_registry_ctx_t *ctx)
{
    char                          *reason;
    u_char                        *p;
    ngx_int_t                      rc;
    ngx_str_t                      type, *mt, ct, etag, value;
    ngx_uint_t                     status, content;
    ngx_table_elt_t               *encoding, *range, *link, *filters;
    ngx_http_upstream_t           *u;
    ngx_http_registry_loc_conf_t  *rlcf;

    static ngx_str_t  content_encoding = ngx_string("Content-Encoding");
    static ngx_str_t  link_header = ngx_string("Link");
    static ngx_str_t  filters_header = ngx_string("OCI-Filters-Applied");

    u = r->upstream;
    rlcf = ngx_http_get_module_loc_conf(r, ngx_http_registry_module);

    if (!r->cached) {
        rc = ngx_http_registry_answer_fresh(r, ctx);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    status = r->headers_out.status;
    content = (status == NGX_HTTP_OK || status == NGX_HTTP_PARTIAL_CONTENT);

    /* the Content-Type: by endpoint; a manifest's must name its type */

    ngx_str_null(&type);

    if (ctx->endpoint == NGX_HTTP_REGISTRY_MANIFEST) {
        mt = ngx_http_registry_manifest_type(r->headers_out.content_type.data,
                                             r->headers_out.content_type.len);
        if (mt) {
            type = *mt;

        } else if (content) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "registry: manifest from \"%V\" repository \"%V\" "
                          "has Content-Type \"%V\", not a manifest media "
                          "type; refused", &ctx->registry->name,
                          &ctx->repository, &r->headers_out.content_type);

            return ngx_http_registry_answer_refuse(r);
        }

    } else if (content) {
        type = ctx->endpoint == NGX_HTTP_REGISTRY_BLOB
               ? ngx_http_registry_octet_stream
               : ctx->endpoint == NGX_HTTP_REGISTRY_REFERRERS
                 ? ngx_http_registry_index_type
                 : ngx_http_registry_json_type;
    }

    if (!content && r->headers_out.content_type.len) {

        /* an upstream's error passed on: an OCI body, or none said */

        ct = r->headers_out.content_type;
        p = ngx_strlchr(ct.data, ct.data + ct.len, ';');

        if (p) {
            ct.len = p - ct.data;
        }

        while (ct.len && ct.data[ct.len - 1] == ' ') {
            ct.len--;
        }

        if (ct.len == ngx_http_registry_json_type.len
            && ngx_strncasecmp(ct.data, ngx_http_registry_json_type.data,
                               ct.len)
               == 0)
        {
            type = ngx_http_registry_json_type;
        }
    }

    /*
     * A body that is not identity-encoded is never cached; one named by a
     * digest cannot match it (the digest is of the content itself), and a
     * manifest cannot be read.
     */

    encoding = NULL;

    (void) ngx_http_registry_headers(&u->headers_in.headers,
                                     &content_encoding,
                                     ngx_http_registry_encoded, &encoding);

    if (encoding) {
        u->cacheable = 0;

        if (content && rlcf->verify
            && (ctx->expected.len
                || ctx->endpoint == NGX_HTTP_REGISTRY_MANIFEST))
        {
            value = ctx->expected;

            if (value.len == 0) {
                ngx_str_set(&value, "a manifest");
            }

            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "registry: digest mismatch from \"%V\" repository "
                          "\"%V\": expected %V, got a body with "
                          "Content-Encoding \"%V\"; not cached, refused",
                          &ctx->registry->name, &ctx->repository,
                          &value, &encoding->value);

            if (!r->cached && r->method == NGX_HTTP_GET) {
                ngx_http_registry_mismatch(r);
            }

            return ngx_http_registry_answer_refuse(r);
        }
    }

    /*
     * A fill of content named by a digest, and every manifest fill, is
     * checked before its last byte goes out, or not sent at all.
     */

    if (rlcf->verify && !r->cached && r->method == NGX_HTTP_GET
        && u->headers_in.status_n == NGX_HTTP_OK
        && (ctx->expected.len
            || ctx->endpoint == NGX_HTTP_REGISTRY_MANIFEST))
    {
        ngx_str_null(&value);

        if (ctx->endpoint == NGX_HTTP_REGISTRY_MANIFEST) {
            value = type;
        }

        rc = ngx_http_registry_verify_body(r, &ctx->expected, &value,
                                           &reason);

        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }

        if (rc == NGX_ABORT) {
            return ngx_http_registry_answer_refuse(r);
        }

        if (rc == NGX_DECLINED) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "registry: %s from \"%V\" repository \"%V\" "
                          "cannot be verified (%s); refused",
                          ctx->endpoint == NGX_HTTP_REGISTRY_BLOB
                          ? "blob" : "manifest",
                          &ctx->registry->name, &ctx->repository, reason);

            return ngx_http_registry_answer_refuse(r);
        }
    }

    /* from here on, only what the mirror decides */

    range = r->headers_out.content_range;
    link = NULL;
    filters = NULL;

    if (ctx->endpoint == NGX_HTTP_REGISTRY_TAGS && status == NGX_HTTP_OK) {
        (void) ngx_http_registry_headers(&u->headers_in.headers,
                                         &link_header,
                                         ngx_http_registry_first_line,
                                         &link);
    }

    if (ctx->endpoint == NGX_HTTP_REGISTRY_REFERRERS
        && status == NGX_HTTP_OK)
    {
        (void) ngx_http_registry_headers(&u->headers_in.headers,
                                         &filters_header,
                                         ngx_http_registry_first_line,
                                         &filters);
    }

    ngx_http_registry_answer_clear(r);

    if (type.len) {
        r->headers_out.content_type = type;
        r->headers_out.content_type_len = type.len;
    }

    /* an encoded body passed on as it came, uncached: for the client */

    if (encoding
        && ngx_http_registry_answer_header(r, "Content-Encoding",
                                           &encoding->value,
                                           &r->headers_out.content_encoding)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (status == NGX_HTTP_PARTIAL_CONTENT && range) {
        range->hash = 1;
        r->headers_out.content_range = range;
    }

    if (ngx_http_registry_answer_header(r, "Docker-Distribution-API-Version",
                                        &ngx_http_registry_api_version, NULL)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ctx->expected.len
        && (content || status == NGX_HTTP_NOT_MODIFIED))
    {
        p = ngx_pnalloc(r->pool, ctx->expected.len + 2);
        if (p == NULL) {
            return NGX_ERROR;
        }

        etag.data = p;
        etag.len = ngx_sprintf(p, "\"%V\"", &ctx->expected) - p;

        if (ngx_http_registry_answer_header(r, "Docker-Content-Digest",
                                            &ctx->expected, NULL)
            != NGX_OK
            || ngx_http_registry_answer_header(r, "ETag", &etag,
                                               &r->headers_out.etag)
               != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (link && ngx_http_registry_answer_link(r, ctx, link) != NGX_OK) {
        return NGX_ERROR;
    }

    /* the filter the mirror passed on was applied: the client's to know */

    if (filters && ngx_http_registry_json_is(&filters->value, "artifactType")
        && ngx_strlchr(ctx->uri.data, ctx->uri.data + ctx->uri.len, '?'))
    {
        ngx_str_set(&value, "artifactType");

        if (ngx_http_registry_answer_header(r, "OCI-Filters-Applied", &value,
                                            NULL)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    /*
     * nginx's range filter cuts a range from a cacheable fill as it
     * streams, before the digest is known: a fill goes out whole (RFC
     * 9110 lets a server ignore Range), a verified entry in ranges.
     */

    r->allow_ranges = (r->cached && status == NGX_HTTP_OK);

    return NGX_OK;
}


/*
 * A fresh answer with a status the mirror never asks for is refused: it
 * sends no Range, no Upgrade or Expect, and no condition but the cache's
 * own.  nginx 1.22 takes a 1xx for the final answer: the upstream's
 * further bytes would reach the client raw and be read as the answers to
 * its next requests, on a connection kept alive (a 101 to a client that
 * sent Upgrade would even be tunnelled: refusing here, before the next
 * filter, comes before nginx looks at u->upgrade).  A 206, 203, 204, an
 * unsolicited 304 or another 3xx would go out unverified (only a 200 is
 * hashed).  What nginx handles itself never gets here: the redirects
 * registry_params intercepts, and the 304 that answers the cache's own
 * revalidation (sent from the entry, r->cached).  4xx and 5xx are the
 * upstream errors handled elsewhere.
 *
 * Content-Length more than once: nginx 1.22 keeps every line and reads
 * the last; the framing is the upstream's guess to make, not ours.
 */

static ngx_int_t
ngx_http_registry_answer_fresh(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    ngx_uint_t            status, n;
    ngx_http_upstream_t  *u;

    static ngx_str_t  content_length = ngx_string("Content-Length");

    u = r->upstream;
    status = u->headers_in.status_n;

    /*
     * Status 0: no status line at all (nginx's proxy then takes the
     * whole answer as an HTTP/0.9 body); 600 and over: no status HTTP
     * has.
     */

    if (status < NGX_HTTP_OK
        || (status > NGX_HTTP_OK && status < NGX_HTTP_BAD_REQUEST)
        || status >= 600)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "registry: answer from \"%V\" repository \"%V\" "
                      "has status %ui, which the mirror never asks for; "
                      "refused", &ctx->registry->name, &ctx->repository,
                      status);

        return ngx_http_registry_answer_refuse(r);
    }

    n = 0;

    (void) ngx_http_registry_headers(&u->headers_in.headers, &content_length,
                                     ngx_http_registry_count, &n);

    if (n > 1) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "registry: answer from \"%V\" repository \"%V\" "
                      "has %ui Content-Length lines; refused",
                      &ctx->registry->name, &ctx->repository, n);

        return ngx_http_registry_answer_refuse(r);
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_registry_count(ngx_table_elt_t *h, void *data)
{
    (*(ngx_uint_t *) data)++;

    return NGX_OK;
}


static ngx_int_t
ngx_http_registry_answer_refuse(ngx_http_request_t *r)
{
    ngx_http_registry_answer_clear(r);

    r->upstream->cacheable = 0;

    /*
     * An answer without a status line made nginx's proxy answer the client
     * as HTTP/0.9 (no status line, no headers): the refusal is answered in
     * the client's own version.
     */

    r->http_version = r->http_major * 1000 + r->http_minor;

    return NGX_HTTP_BAD_GATEWAY;
}


/* drops every header the upstream sent (or the cache replays) */

static void
ngx_http_registry_answer_clear(ngx_http_request_t *r)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->headers_out.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        h[i].hash = 0;
    }

    r->headers_out.status_line.len = 0;

    r->headers_out.server = NULL;
    r->headers_out.date = NULL;
    r->headers_out.content_length = NULL;
    r->headers_out.content_encoding = NULL;
    r->headers_out.location = NULL;
    r->headers_out.refresh = NULL;
    r->headers_out.last_modified = NULL;
    r->headers_out.content_range = NULL;
    r->headers_out.accept_ranges = NULL;
    r->headers_out.www_authenticate = NULL;
    r->headers_out.expires = NULL;
    r->headers_out.etag = NULL;
    r->headers_out.override_charset = NULL;

    r->headers_out.content_type_len = 0;
    ngx_str_null(&r->headers_out.content_type);
    ngx_str_null(&r->headers_out.charset);
    r->headers_out.content_type_lowcase = NULL;
    r->headers_out.content_type_hash = 0;

#if (nginx_version >= 1023000)
    r->headers_out.cache_control = NULL;
    r->headers_out.link = NULL;
#else
    r->headers_out.cache_control.nelts = 0;
    r->headers_out.link.nelts = 0;
#endif

    r->headers_out.last_modified_time = -1;
}


/* a Content-Encoding other than "identity" */

static ngx_int_t
ngx_http_registry_encoded(ngx_table_elt_t *h, void *data)
{
    if (h->value.len == 0
        || (h->value.len == sizeof("identity") - 1
            && ngx_strncasecmp(h->value.data, (u_char *) "identity",
                               h->value.len)
               == 0))
    {
        return NGX_OK;
    }

    *(ngx_table_elt_t **) data = h;

    return NGX_DONE;
}


/*
 * A tags list's next page: the upstream's Link names its own path; the
 * client gets the path it asked for, with the checked "n" and "last" of
 * the upstream's next page (and containerd's "ns").
 */

static ngx_int_t
ngx_http_registry_answer_link(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_table_elt_t *h)
{
    u_char                     *p, *lt, *gt, *q, *last;
    ngx_str_t                   value, path;
    ngx_http_registry_args_t    args;
    ngx_http_registry_error_t   err;

    last = h->value.data + h->value.len;

    lt = ngx_strlchr(h->value.data, last, '<');
    gt = lt ? ngx_strlchr(lt, last, '>') : NULL;

    if (gt == NULL
        || ngx_strlcasestrn(gt, last, (u_char *) "rel=\"next\"",
                            sizeof("rel=\"next\"") - 2)
           == NULL)
    {
        return NGX_OK;
    }

    q = ngx_strlchr(lt, gt, '?');

    if (q == NULL
        || ngx_http_registry_parse_args(q + 1, gt - q - 1, &args, &err)
           != NGX_OK
        || args.last.len == 0)
    {
        return NGX_OK;
    }

    path = r->unparsed_uri;
    q = ngx_strlchr(path.data, path.data + path.len, '?');

    if (q) {
        path.len = q - path.data;
    }

    p = ngx_pnalloc(r->pool, path.len + ctx->ns.len + args.n.len
                             + args.last.len
                             + sizeof("<?ns=&n=&last=>; rel=\"next\"") - 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    value.data = p;
    p = ngx_sprintf(p, "<%V?", &path);

    if (ctx->ns.len) {
        p = ngx_sprintf(p, "ns=%V&", &ctx->ns);
    }

    if (args.n.len) {
        p = ngx_sprintf(p, "n=%V&", &args.n);
    }

    p = ngx_sprintf(p, "last=%V>; rel=\"next\"", &args.last);
    value.len = p - value.data;

    return ngx_http_registry_answer_header(r, "Link", &value, NULL);
}


static ngx_int_t
ngx_http_registry_answer_header(ngx_http_request_t *r, char *key,
    ngx_str_t *value, ngx_table_elt_t **ph)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    h->key.data = (u_char *) key;
    h->key.len = ngx_strlen(key);
    h->value = *value;
#if (nginx_version >= 1023000)
    h->next = NULL;
#endif

    if (ph) {
        *ph = h;
    }

    return NGX_OK;
}


/*
 * What X-Registry-Cache and $registry_cache_status say: the cache's own
 * status, unless a tag made it otherwise.
 */

ngx_str_t *
ngx_http_registry_cache_status(ngx_http_request_t *r)
{
    ngx_str_t                *status;
    ngx_http_registry_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_registry_module);

    if (ctx == NULL || ctx->registry == NULL || r->upstream == NULL) {
        return NULL;
    }

    status = ngx_http_registry_tag_cache_status(r, ctx);

#if (NGX_HTTP_CACHE)

    if (status == NULL && r->upstream->cache_status) {
        status = &ngx_http_cache_status[r->upstream->cache_status - 1];
    }

#endif

    return status;
}


#if (NGX_HTTP_CACHE)

/*
 * Cache-Status (RFC 9211): the entries of the caches before this one,
 * closest to the origin first, then this node's own, named by
 * registry_node_id.  The next hop's entries count only on an answer
 * fetched now: on a hit, the upstream's lines nginx stored in the cache
 * file say what happened to an earlier request, and are never replayed.
 * Its lines are taken only whole and printable, 1 KiB in all at most.
 */

static ngx_int_t
ngx_http_registry_rfc_cache_status(ngx_http_request_t *r, ngx_str_t *status)
{
    u_char                         *p, *end;
    size_t                          len;
    ngx_str_t                       value, detail, region, *id;
    ngx_uint_t                      served;
    ngx_http_upstream_t            *u;
    ngx_http_registry_hops_t        hops;
    ngx_http_registry_main_conf_t  *rmcf;
    u_char                          buf[1024];

    static ngx_str_t  hit = ngx_string("HIT");
    static ngx_str_t  miss = ngx_string("MISS");
    static ngx_str_t  bypass = ngx_string("BYPASS");
    static ngx_str_t  expired = ngx_string("EXPIRED");

    u = r->upstream;
    rmcf = ngx_http_get_module_main_conf(r, ngx_http_registry_module);
    id = &rmcf->node_id;

    hops.start = buf;
    hops.pos = buf;
    hops.end = buf + sizeof(buf);
    hops.bad = 0;

    if (!r->cached) {
        (void) ngx_http_registry_headers(&u->headers_in.headers,
                                         &ngx_http_registry_rfc_cache_header,
                                         ngx_http_registry_next_hop, &hops);
    }

    if (hops.bad) {
        hops.pos = buf;
    }

    ngx_str_null(&detail);
    ngx_str_null(&region);
    served = ngx_http_registry_region_served(r, &region);

    len = (hops.pos - buf) + 2 + id->len + 2
          + sizeof("; fwd=bypass; fwd-status=999; detail=\"REVALIDATED "
                   "region=\"") - 1
          + region.len;

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    value.data = p;
    end = p + len;

    p = ngx_cpymem(p, buf, hops.pos - buf);

    if (p > value.data) {
        *p++ = ',';
        *p++ = ' ';
    }

    /* an sf-token starts with a letter or "*"; other ids are sf-strings */

    if ((id->data[0] >= 'a' && id->data[0] <= 'z')
        || (id->data[0] >= 'A' && id->data[0] <= 'Z') || id->data[0] == '*')
    {
        p = ngx_cpymem(p, id->data, id->len);

    } else {
        p = ngx_slprintf(p, end, "\"%V\"", id);
    }

    if (status->len == hit.len
        && ngx_strncmp(status->data, hit.data, hit.len) == 0)
    {
        p = ngx_cpymem(p, "; hit", 5);

    } else if (status->len == miss.len
               && ngx_strncmp(status->data, miss.data, miss.len) == 0)
    {
        p = ngx_cpymem(p, "; fwd=miss", 10);

    } else if (status->len == bypass.len
               && ngx_strncmp(status->data, bypass.data, bypass.len) == 0)
    {
        p = ngx_cpymem(p, "; fwd=bypass", 12);

    } else if (status->len == expired.len
               && ngx_strncmp(status->data, expired.data, expired.len)
                  == 0)
    {
        p = ngx_cpymem(p, "; fwd=stale", 11);

    } else if (r->cached) {
        /* STALE, UPDATING, REVALIDATED: served from an entry */
        p = ngx_cpymem(p, "; hit", 5);
        detail = *status;

    } else {
        p = ngx_cpymem(p, "; fwd=stale", 11);
        detail = *status;
    }

    if (!r->cached && u->headers_in.status_n) {
        p = ngx_slprintf(p, end, "; fwd-status=%ui", u->headers_in.status_n);
    }

    /* the region an answer fetched now came from, where there are several */

    if (served) {
        p = ngx_slprintf(p, end, "; detail=\"%V%sregion=%V\"", &detail,
                         detail.len ? " " : "", &region);

    } else if (detail.len) {
        p = ngx_slprintf(p, end, "; detail=%V", &detail);
    }

    value.len = p - value.data;

    return ngx_http_registry_set_header(r, &ngx_http_registry_rfc_cache_header,
                                        &value);
}


static ngx_int_t
ngx_http_registry_next_hop(ngx_table_elt_t *h, void *data)
{
    ngx_http_registry_hops_t  *hops = data;

    size_t      i;
    ngx_uint_t  quoted;

    /*
     * Printable, and every quoted string closed: an open one would take
     * this node's own entry into it.
     */

    quoted = 0;

    for (i = 0; i < h->value.len; i++) {
        if (h->value.data[i] < 0x20 || h->value.data[i] > 0x7e) {
            hops->bad = 1;
            return NGX_DONE;
        }

        if (quoted && h->value.data[i] == '\\') {
            i++;

        } else if (h->value.data[i] == '"') {
            quoted = !quoted;
        }
    }

    if (quoted || i > h->value.len) {
        hops->bad = 1;
        return NGX_DONE;
    }

    if (h->value.len == 0) {
        return NGX_OK;
    }

    if ((size_t) (hops->end - hops->pos) < h->value.len + 2) {
        hops->bad = 1;
        return NGX_DONE;
    }

    if (hops->pos > hops->start) {
        *hops->pos++ = ',';
        *hops->pos++ = ' ';
    }

    hops->pos = ngx_cpymem(hops->pos, h->value.data, h->value.len);

    return NGX_OK;
}

#endif
