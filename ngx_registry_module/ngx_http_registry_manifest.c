
/*
 * Copyright (C) ngx_registry_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_http_registry_json.h"
#include "ngx_http_registry_manifest.h"


/*
 * What a manifest's digest does not settle.  The body's own top-level
 * mediaType, read as Go clients read it (the member name in any case,
 * escapes decoded, every occurrence), must be the media type the mirror
 * answers with.  A schema 1 manifest ("prettyjws") is a JWS whose digest
 * covers its payload without the signatures: the body up to formatLength
 * followed by formatTail, both from the base64url "protected" header of
 * the first signature, rebuilt as libtrust does.
 */


/* a name or value longer than this, escapes decoded, is none we compare */
#define NGX_HTTP_REGISTRY_MANIFEST_NAME  1024


static ngx_str_t  ngx_http_registry_schema1 =
    ngx_string("application/vnd.docker.distribution.manifest.v1+");


static ngx_int_t ngx_http_registry_manifest_str(ngx_str_t *raw, u_char *buf,
    ngx_str_t *out);
static ngx_uint_t ngx_http_registry_manifest_ci(ngx_str_t *s, char *name);
static ngx_int_t ngx_http_registry_manifest_jws(ngx_str_t *body,
    ngx_str_t *protected, ngx_http_registry_manifest_t *m, u_char *scratch);
static ngx_int_t ngx_http_registry_base64url(ngx_str_t *src, u_char *dst,
    size_t *len);


/*
 * NGX_OK: a JSON object whose every top-level mediaType is type; m->jws
 * with m->head and m->tail for a schema 1 type with signatures.
 * NGX_DECLINED: a mediaType differs (m->media_type).  NGX_ERROR: not a
 * JSON object, or a schema 1 manifest whose payload cannot be rebuilt.
 * scratch: body->len bytes, where m->tail is decoded.
 */

ngx_int_t
ngx_http_registry_manifest_parse(ngx_str_t *body, ngx_str_t *type,
    ngx_http_registry_manifest_t *m, u_char *scratch)
{
    ngx_int_t                        rc;
    ngx_str_t                        s, protected;
    ngx_uint_t                       signatures, item;
    ngx_http_registry_json_t         js;
    ngx_http_registry_json_token_t   tok;
    u_char                           buf[NGX_HTTP_REGISTRY_MANIFEST_NAME];

    ngx_memzero(m, sizeof(ngx_http_registry_manifest_t));

    ngx_http_registry_json_init(&js, body->data, body->len);

    if (ngx_http_registry_json_next(&js, &tok) != NGX_OK
        || tok.type != NGX_HTTP_REGISTRY_JSON_OBJECT)
    {
        return NGX_ERROR;
    }

    signatures = 0;
    item = 0;
    ngx_str_null(&protected);

    for ( ;; ) {
        rc = ngx_http_registry_json_next(&js, &tok);

        if (rc == NGX_DONE) {
            break;
        }

        if (rc != NGX_OK) {
            return NGX_ERROR;
        }

        if (tok.type == NGX_HTTP_REGISTRY_JSON_END) {
            if (tok.depth == 1) {
                signatures = 0;
            }

            continue;
        }

        if (tok.depth == 1) {

            if (ngx_http_registry_manifest_str(&tok.key, buf, &s) != NGX_OK) {
                continue;
            }

            if (ngx_http_registry_manifest_ci(&s, "mediaType")) {

                if (tok.type != NGX_HTTP_REGISTRY_JSON_STRING
                    || ngx_http_registry_manifest_str(&tok.value, buf, &s)
                       != NGX_OK
                    || s.len != type->len
                    || ngx_strncmp(s.data, type->data, s.len) != 0)
                {
                    m->media_type = tok.value;
                    return NGX_DECLINED;
                }

                continue;
            }

            /* a Go map: the name exactly, the last one counts */

            if (s.len == sizeof("signatures") - 1
                && ngx_strncmp(s.data, "signatures", s.len) == 0)
            {
                signatures = (tok.type == NGX_HTTP_REGISTRY_JSON_ARRAY);
                item = 0;
                ngx_str_null(&protected);
            }

            continue;
        }

        if (!signatures) {
            continue;
        }

        if (tok.depth == 2) {
            item++;
            continue;
        }

        if (tok.depth == 3 && item == 1
            && tok.type == NGX_HTTP_REGISTRY_JSON_STRING
            && ngx_http_registry_manifest_str(&tok.key, buf, &s) == NGX_OK
            && ngx_http_registry_manifest_ci(&s, "protected"))
        {
            if (tok.escaped) {
                return NGX_ERROR;
            }

            protected = tok.value;
        }
    }

    /* v1+prettyjws and v1+json: both are read as JWS by distribution */

    if (item
        && type->len > ngx_http_registry_schema1.len
        && ngx_strncmp(type->data, ngx_http_registry_schema1.data,
                       ngx_http_registry_schema1.len)
           == 0)
    {
        return ngx_http_registry_manifest_jws(body, &protected, m, scratch);
    }

    return NGX_OK;
}


/*
 * The protected header: {"formatLength": n, "formatTail": "...", ...},
 * base64url.  Decoded into scratch, and formatTail decoded after it.
 */

static ngx_int_t
ngx_http_registry_manifest_jws(ngx_str_t *body, ngx_str_t *protected,
    ngx_http_registry_manifest_t *m, u_char *scratch)
{
    size_t                           len, n;
    ngx_int_t                        rc;
    ngx_str_t                        header, tail;
    ngx_uint_t                       i, length;
    ngx_http_registry_json_t         js;
    ngx_http_registry_json_token_t   tok;

    if (protected->len == 0
        || protected->len / 4 * 3 + 3 > body->len
        || ngx_http_registry_base64url(protected, scratch, &len) != NGX_OK)
    {
        return NGX_ERROR;
    }

    header.data = scratch;
    header.len = len;

    ngx_http_registry_json_init(&js, header.data, header.len);

    if (ngx_http_registry_json_next(&js, &tok) != NGX_OK
        || tok.type != NGX_HTTP_REGISTRY_JSON_OBJECT)
    {
        return NGX_ERROR;
    }

    length = 0;
    n = 0;
    ngx_str_null(&tail);

    for ( ;; ) {
        rc = ngx_http_registry_json_next(&js, &tok);

        if (rc == NGX_DONE) {
            break;
        }

        if (rc != NGX_OK) {
            return NGX_ERROR;
        }

        if (tok.depth != 1 || tok.type == NGX_HTTP_REGISTRY_JSON_END) {
            continue;
        }

        /* a Go map again: names exactly, the last one counts */

        if (ngx_http_registry_json_is(&tok.key, "formatLength")) {

            if (tok.type != NGX_HTTP_REGISTRY_JSON_NUMBER) {
                return NGX_ERROR;
            }

            n = 0;

            for (i = 0; i < tok.value.len; i++) {
                if (tok.value.data[i] < '0' || tok.value.data[i] > '9'
                    || n > body->len)
                {
                    return NGX_ERROR;
                }

                n = n * 10 + tok.value.data[i] - '0';
            }

            length = 1;

        } else if (ngx_http_registry_json_is(&tok.key, "formatTail")) {

            if (tok.type != NGX_HTTP_REGISTRY_JSON_STRING || tok.escaped) {
                return NGX_ERROR;
            }

            tail = tok.value;
        }
    }

    if (!length || n > body->len || tail.data == NULL
        || header.len + tail.len / 4 * 3 + 3 > body->len)
    {
        return NGX_ERROR;
    }

    m->tail.data = scratch + header.len;

    if (ngx_http_registry_base64url(&tail, m->tail.data, &m->tail.len)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    m->head.data = body->data;
    m->head.len = n;
    m->jws = 1;

    return NGX_OK;
}


/* a raw JSON string, escapes decoded into buf when it has any */

static ngx_int_t
ngx_http_registry_manifest_str(ngx_str_t *raw, u_char *buf, ngx_str_t *out)
{
    if (ngx_strlchr(raw->data, raw->data + raw->len, '\\') == NULL) {
        *out = *raw;
        return NGX_OK;
    }

    if (raw->len > NGX_HTTP_REGISTRY_MANIFEST_NAME) {
        return NGX_DECLINED;
    }

    out->data = buf;

    return ngx_http_registry_json_unescape(raw, buf, &out->len);
}


/* as Go's encoding/json matches a name to a field: ASCII, any case */

static ngx_uint_t
ngx_http_registry_manifest_ci(ngx_str_t *s, char *name)
{
    size_t  i;
    u_char  a, b;

    for (i = 0; i < s->len; i++) {
        a = s->data[i];
        b = (u_char) name[i];

        if (b == '\0') {
            return 0;
        }

        if (a >= 'A' && a <= 'Z') {
            a |= 0x20;
        }

        if (b >= 'A' && b <= 'Z') {
            b |= 0x20;
        }

        if (a != b) {
            return 0;
        }
    }

    return name[i] == '\0';
}


/* base64url, padding optional, as libtrust's joseBase64UrlDecode */

static ngx_int_t
ngx_http_registry_base64url(ngx_str_t *src, u_char *dst, size_t *len)
{
    u_char      *d;
    size_t       n, i;
    uint32_t     bits;
    ngx_uint_t   c, have;

    n = src->len;

    while (n && src->data[n - 1] == '=') {
        n--;
    }

    if (n % 4 == 1 || (n != src->len && src->len % 4 != 0)) {
        return NGX_ERROR;
    }

    d = dst;
    bits = 0;
    have = 0;

    for (i = 0; i < n; i++) {
        c = src->data[i];

        if (c >= 'A' && c <= 'Z') {
            c -= 'A';

        } else if (c >= 'a' && c <= 'z') {
            c = c - 'a' + 26;

        } else if (c >= '0' && c <= '9') {
            c = c - '0' + 52;

        } else if (c == '-') {
            c = 62;

        } else if (c == '_') {
            c = 63;

        } else {
            return NGX_ERROR;
        }

        bits = (bits << 6) | c;
        have += 6;

        if (have >= 8) {
            have -= 8;
            *d++ = (u_char) (bits >> have);
        }
    }

    *len = d - dst;

    return NGX_OK;
}
