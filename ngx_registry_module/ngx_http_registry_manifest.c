
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
 * answers with; without one, the body's members must be those of the
 * type it is answered as (an index has "manifests", an image manifest
 * "config"...), or an upstream could choose the type of a digest entry
 * every registry shares.  A schema 1 manifest ("prettyjws") is a JWS
 * whose digest covers its payload without the signatures: the body up to
 * formatLength followed by formatTail, both from the base64url
 * "protected" header of the first signature, rebuilt as libtrust does.
 * libtrust itself takes both on trust, so any body could claim any
 * payload, and so any digest: the payload is accepted only when the body
 * is that payload with a "signatures" member added last, as libtrust
 * writes it, and the payload is a schema 1 manifest.
 */


/* a name or value longer than this, escapes decoded, is none we compare */
#define NGX_HTTP_REGISTRY_MANIFEST_NAME  1024


/* the members that say what a manifest without a mediaType is */
#define NGX_HTTP_REGISTRY_SHAPE_MANIFESTS   0x01
#define NGX_HTTP_REGISTRY_SHAPE_CONFIG      0x02
#define NGX_HTTP_REGISTRY_SHAPE_LAYERS      0x04
#define NGX_HTTP_REGISTRY_SHAPE_BLOBS       0x08
#define NGX_HTTP_REGISTRY_SHAPE_FSLAYERS    0x10
#define NGX_HTTP_REGISTRY_SHAPE_SIGNATURES  0x20
#define NGX_HTTP_REGISTRY_SHAPE_V1          0x40


typedef struct {
    char                      *name;
    ngx_uint_t                 type;    /* the JSON type it must have */
    ngx_uint_t                 bit;
} ngx_http_registry_shape_member_t;


static ngx_http_registry_shape_member_t  ngx_http_registry_shape_members[] = {
    { "manifests", NGX_HTTP_REGISTRY_JSON_ARRAY,
      NGX_HTTP_REGISTRY_SHAPE_MANIFESTS },
    { "config", NGX_HTTP_REGISTRY_JSON_OBJECT,
      NGX_HTTP_REGISTRY_SHAPE_CONFIG },
    { "layers", NGX_HTTP_REGISTRY_JSON_ARRAY,
      NGX_HTTP_REGISTRY_SHAPE_LAYERS },
    { "blobs", NGX_HTTP_REGISTRY_JSON_ARRAY,
      NGX_HTTP_REGISTRY_SHAPE_BLOBS },
    { "fsLayers", NGX_HTTP_REGISTRY_JSON_ARRAY,
      NGX_HTTP_REGISTRY_SHAPE_FSLAYERS },
    { "signatures", NGX_HTTP_REGISTRY_JSON_ARRAY,
      NGX_HTTP_REGISTRY_SHAPE_SIGNATURES },
    { NULL, 0, 0 }
};


static ngx_str_t  ngx_http_registry_schema1 =
    ngx_string("application/vnd.docker.distribution.manifest.v1+");


static ngx_int_t ngx_http_registry_manifest_str(ngx_str_t *raw, u_char *buf,
    ngx_str_t *out);
static ngx_uint_t ngx_http_registry_manifest_ci(ngx_str_t *s, char *name);
static ngx_int_t ngx_http_registry_manifest_shape(ngx_str_t *type,
    ngx_uint_t has, ngx_uint_t ok);
static ngx_int_t ngx_http_registry_manifest_jws(ngx_str_t *body,
    ngx_str_t *protected, ngx_http_registry_manifest_t *m, u_char *scratch);
static ngx_int_t ngx_http_registry_manifest_signatures(u_char *p,
    u_char *last);
static ngx_int_t ngx_http_registry_manifest_v1(u_char *p, size_t len);
static ngx_uint_t ngx_http_registry_manifest_ws(u_char c);
static ngx_int_t ngx_http_registry_base64url(ngx_str_t *src, u_char *dst,
    size_t *len);


/*
 * NGX_OK: a JSON object whose every top-level mediaType is type, or that
 * has none and the members of type; m->jws with m->head and m->tail for a
 * schema 1 type with signatures.  NGX_DECLINED: a mediaType differs
 * (m->media_type).  NGX_ABORT: no mediaType, and not the members of type.
 * NGX_ERROR: not a JSON object, or a schema 1 manifest whose payload
 * cannot be rebuilt.  scratch: 2 * body->len bytes, where m->tail is
 * decoded and the payload rebuilt.
 */

ngx_int_t
ngx_http_registry_manifest_parse(ngx_str_t *body, ngx_str_t *type,
    ngx_http_registry_manifest_t *m, u_char *scratch)
{
    ngx_int_t                        rc;
    ngx_str_t                        s, protected;
    ngx_uint_t                       signatures, item, media, has, ok, i;
    ngx_http_registry_shape_member_t  *sm;
    ngx_http_registry_json_t         js;
    ngx_http_registry_json_token_t   tok;
    u_char                           buf[NGX_HTTP_REGISTRY_MANIFEST_NAME];

    ngx_memzero(m, sizeof(ngx_http_registry_manifest_t));

    if (ngx_http_registry_json_open(&js, body->data, body->len,
                                    NGX_HTTP_REGISTRY_JSON_OBJECT)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    signatures = 0;
    item = 0;
    media = 0;
    has = 0;
    ok = 0;
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

                media = 1;
                continue;
            }

            /* as Go decodes into a struct: any case, the last one counts */

            for (i = 0; ngx_http_registry_shape_members[i].name; i++) {
                sm = &ngx_http_registry_shape_members[i];

                if (ngx_http_registry_manifest_ci(&s, sm->name)) {
                    has |= sm->bit;

                    if (tok.type == sm->type) {
                        ok |= sm->bit;

                    } else {
                        ok &= ~sm->bit;
                    }
                }
            }

            if (ngx_http_registry_manifest_ci(&s, "schemaVersion")) {
                if (tok.type == NGX_HTTP_REGISTRY_JSON_NUMBER
                    && tok.value.len == 1 && tok.value.data[0] == '1')
                {
                    ok |= NGX_HTTP_REGISTRY_SHAPE_V1;

                } else {
                    ok &= ~NGX_HTTP_REGISTRY_SHAPE_V1;
                }
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

    if (!media && ngx_http_registry_manifest_shape(type, has, ok) != NGX_OK)
    {
        return NGX_ABORT;
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
 * A manifest without a mediaType must have the members of the type it is
 * answered as: an index (OCI, or a Docker manifest list) its "manifests"
 * array; an image manifest its "config" object (Docker schema 2 also its
 * "layers" array; OCI lets artifacts carry no layers, but "layers", where
 * present, is an array); an OCI artifact manifest (which the spec has
 * always name its mediaType) "blobs", if any, as an array; a schema 1
 * manifest "fsLayers", "signatures" or "schemaVersion": 1.  None may have
 * the members that mark another kind: "manifests" for manifests, "config"
 * or "layers" for an index, "fsLayers" for either.
 */

static ngx_int_t
ngx_http_registry_manifest_shape(ngx_str_t *type, ngx_uint_t has,
    ngx_uint_t ok)
{
    ngx_uint_t  need, none;

    if (ngx_http_registry_json_is(type,
                                  "application/vnd.oci.image.index.v1+json")
        || ngx_http_registry_json_is(type, "application/vnd.docker."
                                     "distribution.manifest.list.v2+json"))
    {
        need = NGX_HTTP_REGISTRY_SHAPE_MANIFESTS;
        none = NGX_HTTP_REGISTRY_SHAPE_CONFIG | NGX_HTTP_REGISTRY_SHAPE_LAYERS
               | NGX_HTTP_REGISTRY_SHAPE_FSLAYERS;

    } else if (ngx_http_registry_json_is(type,
                   "application/vnd.oci.image.manifest.v1+json"))
    {
        need = NGX_HTTP_REGISTRY_SHAPE_CONFIG
               | (has & NGX_HTTP_REGISTRY_SHAPE_LAYERS);
        none = NGX_HTTP_REGISTRY_SHAPE_MANIFESTS
               | NGX_HTTP_REGISTRY_SHAPE_FSLAYERS;

    } else if (ngx_http_registry_json_is(type,
                   "application/vnd.docker.distribution.manifest.v2+json"))
    {
        need = NGX_HTTP_REGISTRY_SHAPE_CONFIG | NGX_HTTP_REGISTRY_SHAPE_LAYERS;
        none = NGX_HTTP_REGISTRY_SHAPE_MANIFESTS
               | NGX_HTTP_REGISTRY_SHAPE_FSLAYERS;

    } else if (ngx_http_registry_json_is(type,
                   "application/vnd.oci.artifact.manifest.v1+json"))
    {
        need = has & NGX_HTTP_REGISTRY_SHAPE_BLOBS;
        none = NGX_HTTP_REGISTRY_SHAPE_MANIFESTS
               | NGX_HTTP_REGISTRY_SHAPE_CONFIG
               | NGX_HTTP_REGISTRY_SHAPE_FSLAYERS;

    } else if (type->len > ngx_http_registry_schema1.len
               && ngx_strncmp(type->data, ngx_http_registry_schema1.data,
                              ngx_http_registry_schema1.len)
                  == 0)
    {
        if (!(ok & (NGX_HTTP_REGISTRY_SHAPE_FSLAYERS
                    | NGX_HTTP_REGISTRY_SHAPE_SIGNATURES
                    | NGX_HTTP_REGISTRY_SHAPE_V1)))
        {
            return NGX_DECLINED;
        }

        need = 0;
        none = NGX_HTTP_REGISTRY_SHAPE_MANIFESTS
               | NGX_HTTP_REGISTRY_SHAPE_CONFIG;

    } else {
        return NGX_OK;
    }

    if ((ok & need) != need || (has & none)) {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/*
 * The protected header: {"formatLength": n, "formatTail": "...", ...},
 * base64url.  Decoded into scratch, and formatTail decoded after it; the
 * payload is rebuilt in the second half of scratch.  libtrust cuts the
 * payload before the white space ahead of its last "}" and writes
 *
 *     payload[:formatLength] "," ws "\"signatures\"" ws ":" ws array ws
 *     payload[formatLength:]
 *
 * and that is all a body may be.
 */

static ngx_int_t
ngx_http_registry_manifest_jws(ngx_str_t *body, ngx_str_t *protected,
    ngx_http_registry_manifest_t *m, u_char *scratch)
{
    u_char                          *p, *last, *payload;
    size_t                           len, n, i;
    ngx_int_t                        rc;
    ngx_str_t                        header, tail;
    ngx_uint_t                       length, braces;
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

    if (ngx_http_registry_json_open(&js, header.data, header.len,
                                    NGX_HTTP_REGISTRY_JSON_OBJECT)
        != NGX_OK)
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

    /* a payload of nothing but its tail is no manifest */

    if (!length || n == 0 || n >= body->len || tail.data == NULL
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

    /* the tail: white space and the "}" that close the payload */

    braces = 0;

    for (i = 0; i < m->tail.len; i++) {
        if (m->tail.data[i] == '}') {
            braces++;

        } else if (!ngx_http_registry_manifest_ws(m->tail.data[i])) {
            return NGX_ERROR;
        }
    }

    /* the body ends with it, and between: the signatures member, last */

    if (braces == 0
        || n + m->tail.len >= body->len
        || ngx_memcmp(body->data + body->len - m->tail.len, m->tail.data,
                      m->tail.len)
           != 0
        || ngx_http_registry_manifest_signatures(body->data + n,
                                        body->data + body->len - m->tail.len)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* and the payload is a schema 1 manifest */

    payload = scratch + body->len;
    p = ngx_cpymem(payload, body->data, n);
    last = ngx_cpymem(p, m->tail.data, m->tail.len);

    if (ngx_http_registry_manifest_v1(payload, last - payload) != NGX_OK) {
        return NGX_ERROR;
    }

    m->head.data = body->data;
    m->head.len = n;
    m->jws = 1;

    return NGX_OK;
}


/* "," ws "\"signatures\"" ws ":" ws array ws, exactly */

static ngx_int_t
ngx_http_registry_manifest_signatures(u_char *p, u_char *last)
{
    ngx_int_t                        rc;
    ngx_http_registry_json_t         js;
    ngx_http_registry_json_token_t   tok;

    static u_char  name[] = "\"signatures\"";

    if (p == last || *p++ != ',') {
        return NGX_ERROR;
    }

    while (p < last && ngx_http_registry_manifest_ws(*p)) {
        p++;
    }

    if ((size_t) (last - p) < sizeof(name) - 1
        || ngx_memcmp(p, name, sizeof(name) - 1) != 0)
    {
        return NGX_ERROR;
    }

    p += sizeof(name) - 1;

    while (p < last && ngx_http_registry_manifest_ws(*p)) {
        p++;
    }

    if (p == last || *p++ != ':') {
        return NGX_ERROR;
    }

    /* the tokenizer allows white space around the array, and nothing else */

    if (ngx_http_registry_json_open(&js, p, last - p,
                                    NGX_HTTP_REGISTRY_JSON_ARRAY)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    do {
        rc = ngx_http_registry_json_next(&js, &tok);
    } while (rc == NGX_OK);

    return rc == NGX_DONE ? NGX_OK : NGX_ERROR;
}


/* a JSON object whose every top-level "schemaVersion" is the number 1 */

static ngx_int_t
ngx_http_registry_manifest_v1(u_char *p, size_t len)
{
    ngx_int_t                        rc;
    ngx_str_t                        s;
    ngx_uint_t                       v1;
    ngx_http_registry_json_t         js;
    ngx_http_registry_json_token_t   tok;
    u_char                           buf[NGX_HTTP_REGISTRY_MANIFEST_NAME];

    if (ngx_http_registry_json_open(&js, p, len,
                                    NGX_HTTP_REGISTRY_JSON_OBJECT)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    v1 = 0;

    for ( ;; ) {
        rc = ngx_http_registry_json_next(&js, &tok);

        if (rc == NGX_DONE) {
            break;
        }

        if (rc != NGX_OK) {
            return NGX_ERROR;
        }

        if (tok.depth != 1 || tok.type == NGX_HTTP_REGISTRY_JSON_END
            || ngx_http_registry_manifest_str(&tok.key, buf, &s) != NGX_OK
            || !ngx_http_registry_manifest_ci(&s, "schemaVersion"))
        {
            continue;
        }

        if (tok.type != NGX_HTTP_REGISTRY_JSON_NUMBER
            || tok.value.len != 1 || tok.value.data[0] != '1')
        {
            return NGX_ERROR;
        }

        v1 = 1;
    }

    return v1 ? NGX_OK : NGX_ERROR;
}


/* JSON's white space */

static ngx_uint_t
ngx_http_registry_manifest_ws(u_char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
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
