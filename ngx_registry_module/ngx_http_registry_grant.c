
/*
 * Copyright (C) ngx_registry_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_http_registry_grammar.h"
#include "ngx_http_registry_json.h"
#include "ngx_http_registry_grant.h"


/*
 * What says that a client may pull a repository, and that a digest
 * belongs to one: a token's JWT "access" claim, the descriptors of a
 * manifest, the scope a client asks for, the form it asks with.  Bytes
 * in, results out, no request in sight, so t/ unit tests and fuzzes them.
 *
 * Both JSON walks read as distribution (Go's encoding/json into structs)
 * does: member names in any case and escapes decoded.  Go keeps the last
 * of two members with one name, a reader that keeps the first sees
 * another document: any such repetition of a member read here makes the
 * document ambiguous, and it is refused.  Each document is walked twice,
 * once to check it and once to call the handler, so that a refused one
 * has called it never.
 */


/* a member name or word longer than this, escaped, is none we compare */
#define NGX_HTTP_REGISTRY_GRANT_WORD   64


/* the members of a manifest whose descriptors are read */
#define NGX_HTTP_REGISTRY_GRANT_CONFIG     0x01
#define NGX_HTTP_REGISTRY_GRANT_LAYERS     0x02
#define NGX_HTTP_REGISTRY_GRANT_MANIFESTS  0x04
#define NGX_HTTP_REGISTRY_GRANT_BLOBS      0x08
#define NGX_HTTP_REGISTRY_GRANT_FSLAYERS   0x10
#define NGX_HTTP_REGISTRY_GRANT_MEMBERS    0x1f


typedef struct {
    char                      *name;
    char                      *digest;      /* the descriptor's member */
    ngx_uint_t                 type;        /* an object or an array of
                                               them */
    ngx_uint_t                 bit;
} ngx_http_registry_grant_member_t;


static ngx_http_registry_grant_member_t  ngx_http_registry_grant_members[] = {
    { "config", "digest", NGX_HTTP_REGISTRY_JSON_OBJECT,
      NGX_HTTP_REGISTRY_GRANT_CONFIG },
    { "layers", "digest", NGX_HTTP_REGISTRY_JSON_ARRAY,
      NGX_HTTP_REGISTRY_GRANT_LAYERS },
    { "manifests", "digest", NGX_HTTP_REGISTRY_JSON_ARRAY,
      NGX_HTTP_REGISTRY_GRANT_MANIFESTS },
    { "blobs", "digest", NGX_HTTP_REGISTRY_JSON_ARRAY,
      NGX_HTTP_REGISTRY_GRANT_BLOBS },
    { "fsLayers", "blobSum", NGX_HTTP_REGISTRY_JSON_ARRAY,
      NGX_HTTP_REGISTRY_GRANT_FSLAYERS },
    { NULL, NULL, 0, 0 }
};


/*
 * The members a type's own decoder reads, and so the only ones the
 * registry checked when the manifest was pushed: the index handler
 * checks that each child manifest exists in the repository, the image
 * handlers that the config and each layer blob do, the schema 1 handler
 * each blobSum.  A member of another type in the same body was stored
 * unread, and can name any digest at all.
 */

typedef struct {
    char                      *media_type;
    ngx_uint_t                 members;
} ngx_http_registry_grant_type_t;


static ngx_http_registry_grant_type_t  ngx_http_registry_grant_types[] = {
    { "application/vnd.oci.image.index.v1+json",
      NGX_HTTP_REGISTRY_GRANT_MANIFESTS },
    { "application/vnd.docker.distribution.manifest.list.v2+json",
      NGX_HTTP_REGISTRY_GRANT_MANIFESTS },
    { "application/vnd.oci.image.manifest.v1+json",
      NGX_HTTP_REGISTRY_GRANT_CONFIG | NGX_HTTP_REGISTRY_GRANT_LAYERS },
    { "application/vnd.docker.distribution.manifest.v2+json",
      NGX_HTTP_REGISTRY_GRANT_CONFIG | NGX_HTTP_REGISTRY_GRANT_LAYERS },
    { "application/vnd.oci.artifact.manifest.v1+json",
      NGX_HTTP_REGISTRY_GRANT_BLOBS },
    { "application/vnd.docker.distribution.manifest.v1+json",
      NGX_HTTP_REGISTRY_GRANT_FSLAYERS },
    { "application/vnd.docker.distribution.manifest.v1+prettyjws",
      NGX_HTTP_REGISTRY_GRANT_FSLAYERS },
    { NULL, 0 }
};


/* what the first walk over a manifest learns */

typedef struct {
    ngx_uint_t                 has;         /* members present */
    ngx_uint_t                 typed;       /* members its mediaType
                                               reads, + 1; 0: none */
} ngx_http_registry_grant_body_t;


static ngx_int_t ngx_http_registry_grant_claims(u_char *p, size_t len,
    time_t *exp, ngx_http_registry_grant_pt handler, void *data);
static ngx_int_t ngx_http_registry_grant_entry(ngx_str_t *name,
    ngx_uint_t escaped, ngx_http_registry_grant_pt handler, void *data);
static time_t ngx_http_registry_grant_exp(ngx_http_registry_json_token_t *t);
static ngx_int_t ngx_http_registry_grant_walk(u_char *p, size_t len,
    ngx_uint_t read, ngx_http_registry_grant_body_t *body,
    ngx_http_registry_grant_pt handler, void *data);
static ngx_int_t ngx_http_registry_grant_top(
    ngx_http_registry_json_token_t *t, ngx_http_registry_grant_body_t *body);
static ngx_uint_t ngx_http_registry_grant_read(
    ngx_http_registry_grant_body_t *body);
static ngx_int_t ngx_http_registry_grant_b64url(u_char *p, size_t len);
static ngx_uint_t ngx_http_registry_grant_is(ngx_str_t *raw, char *s,
    ngx_uint_t caseless);
static ngx_uint_t ngx_http_registry_grant_key(ngx_str_t *key, char **names);
static ngx_int_t ngx_http_registry_grant_valid_name(u_char *p, size_t len);


/*
 * A bearer token that is a JWT (three base64url parts, header.payload.sig,
 * no padding): its payload decoded into buf (at least len bytes), its
 * "exp" claim into *exp (0 when absent or not a positive integer a time_t
 * holds), and handler called for every entry of its "access" claim of
 * "type": "repository" whose "actions" hold "pull" or "*", with the
 * entry's "name", unescaped in buf, when it is a valid repository name
 * (others are skipped).  The signature is not checked: the token came
 * from the realm over verified TLS, and the registry checks it anyway.
 *
 * NGX_OK; NGX_DECLINED: not a JWT, not well-formed JSON, or a payload
 * distribution would not decode as these claims (a member read here
 * twice, an "access" that is not an array of objects, a "type" or "name"
 * not a string, "actions" not an array of strings); the handler is then
 * never called.  NGX_ERROR: the handler returned NGX_ERROR.
 */

ngx_int_t
ngx_http_registry_jwt_grants(u_char *token, size_t len, u_char *buf,
    time_t *exp, ngx_http_registry_grant_pt handler, void *data)
{
    u_char     *dot1, *dot2, *last;
    ngx_int_t   rc;
    ngx_str_t   src, dst;

    *exp = 0;

    last = token + len;

    dot1 = ngx_strlchr(token, last, '.');
    if (dot1 == NULL) {
        return NGX_DECLINED;
    }

    dot2 = ngx_strlchr(dot1 + 1, last, '.');
    if (dot2 == NULL) {
        return NGX_DECLINED;
    }

    if (ngx_http_registry_grant_b64url(token, dot1 - token) != NGX_OK
        || ngx_http_registry_grant_b64url(dot1 + 1, dot2 - dot1 - 1)
           != NGX_OK
        || ngx_http_registry_grant_b64url(dot2 + 1, last - dot2 - 1)
           != NGX_OK)
    {
        return NGX_DECLINED;
    }

    src.data = dot1 + 1;
    src.len = dot2 - dot1 - 1;
    dst.data = buf;

    if (ngx_decode_base64url(&dst, &src) != NGX_OK) {
        return NGX_DECLINED;
    }

    rc = ngx_http_registry_grant_claims(dst.data, dst.len, exp, NULL, NULL);

    if (rc != NGX_OK) {
        *exp = 0;
        return rc;
    }

    return ngx_http_registry_grant_claims(dst.data, dst.len, exp, handler,
                                          data);
}


/*
 * {"exp": 1700000300, "access": [{"type": "repository", "name": "a/b",
 * "actions": ["pull", "push"]}, ...], ...}; with handler NULL, only
 * checked.  Depths: 1 the claims, 2 the entries, 3 their members, 4 the
 * actions.
 */

static ngx_int_t
ngx_http_registry_grant_claims(u_char *p, size_t len, time_t *exp,
    ngx_http_registry_grant_pt handler, void *data)
{
    ngx_int_t                        rc;
    ngx_str_t                        name;
    ngx_uint_t                       claims, access, entry, seen, actions,
                                     pull, repository, escaped, bit;
    ngx_http_registry_json_t         js;
    ngx_http_registry_json_token_t   t;

    /* the bits of grant_key(): 1, 2, 4 in the order named */

    static char  *claim_names[] = { "access", "exp", NULL };
    static char  *entry_names[] = { "type", "name", "actions", NULL };

    if (ngx_http_registry_json_open(&js, p, len,
                                    NGX_HTTP_REGISTRY_JSON_OBJECT)
        != NGX_OK)
    {
        return NGX_DECLINED;
    }

    claims = 0;
    access = 0;
    entry = 0;
    seen = 0;
    actions = 0;
    pull = 0;
    repository = 0;
    escaped = 0;
    ngx_str_null(&name);

    while ((rc = ngx_http_registry_json_next(&js, &t)) == NGX_OK) {

        if (t.type == NGX_HTTP_REGISTRY_JSON_END) {

            if (t.depth == 1) {
                access = 0;

            } else if (t.depth == 2 && entry) {
                entry = 0;

                if (handler && repository && pull && name.data
                    && ngx_http_registry_grant_entry(&name, escaped, handler,
                                                     data)
                       == NGX_ERROR)
                {
                    return NGX_ERROR;
                }

            } else if (t.depth == 3) {
                actions = 0;
            }

            continue;
        }

        switch (t.depth) {

        case 1:

            bit = ngx_http_registry_grant_key(&t.key, claim_names);

            if (bit == 0) {
                break;
            }

            if (claims & bit) {
                return NGX_DECLINED;
            }

            claims |= bit;

            if (bit == 2) {     /* "exp" */
                *exp = ngx_http_registry_grant_exp(&t);

            } else if (t.type == NGX_HTTP_REGISTRY_JSON_ARRAY) {
                access = 1;

            } else if (t.type != NGX_HTTP_REGISTRY_JSON_NULL) {
                return NGX_DECLINED;
            }

            break;

        case 2:

            if (!access) {
                break;
            }

            if (t.type != NGX_HTTP_REGISTRY_JSON_OBJECT) {
                return NGX_DECLINED;
            }

            entry = 1;
            seen = 0;
            pull = 0;
            repository = 0;
            ngx_str_null(&name);
            break;

        case 3:

            if (!entry) {
                break;
            }

            bit = ngx_http_registry_grant_key(&t.key, entry_names);

            if (bit == 0) {
                break;
            }

            if (seen & bit) {
                return NGX_DECLINED;
            }

            seen |= bit;

            if (bit == 4) {     /* "actions" */
                if (t.type == NGX_HTTP_REGISTRY_JSON_ARRAY) {
                    actions = 1;

                } else if (t.type != NGX_HTTP_REGISTRY_JSON_NULL) {
                    return NGX_DECLINED;
                }

                break;
            }

            if (t.type != NGX_HTTP_REGISTRY_JSON_STRING) {
                return NGX_DECLINED;
            }

            if (bit == 1) {     /* "type" */
                repository = ngx_http_registry_grant_is(&t.value,
                                                        "repository", 0);

            } else {
                name = t.value;
                escaped = t.escaped;
            }

            break;

        case 4:

            if (!actions) {
                break;
            }

            if (t.type != NGX_HTTP_REGISTRY_JSON_STRING) {
                return NGX_DECLINED;
            }

            if (ngx_http_registry_grant_is(&t.value, "pull", 0)
                || ngx_http_registry_grant_is(&t.value, "*", 0))
            {
                pull = 1;
            }

            break;
        }
    }

    return rc == NGX_DONE ? NGX_OK : NGX_DECLINED;
}


/*
 * An entry that grants pull: its name, unescaped where it lies (no escape
 * is shorter than what it stands for, and the walk has passed it), to the
 * handler if it is a repository name.
 */

static ngx_int_t
ngx_http_registry_grant_entry(ngx_str_t *name, ngx_uint_t escaped,
    ngx_http_registry_grant_pt handler, void *data)
{
    if (escaped
        && ngx_http_registry_json_unescape(name, name->data, &name->len)
           != NGX_OK)
    {
        return NGX_OK;
    }

    if (ngx_http_registry_grant_valid_name(name->data, name->len) != NGX_OK) {
        return NGX_OK;
    }

    return handler(name, data) == NGX_ERROR ? NGX_ERROR : NGX_OK;
}


/* a positive integer a time_t holds, or 0 */

static time_t
ngx_http_registry_grant_exp(ngx_http_registry_json_token_t *t)
{
    size_t      i;
    time_t      exp;
    ngx_int_t   d;

    if (t->type != NGX_HTTP_REGISTRY_JSON_NUMBER) {
        return 0;
    }

    exp = 0;

    for (i = 0; i < t->value.len; i++) {
        d = t->value.data[i] - '0';

        if (d < 0 || d > 9 || exp > (NGX_MAX_TIME_T_VALUE - d) / 10) {
            return 0;
        }

        exp = exp * 10 + d;
    }

    return exp;
}


/*
 * Every descriptor digest a manifest names, of the members its type
 * reads: "manifests"[] of an index, "config" and "layers"[] of an image
 * manifest, "blobs"[] of an artifact manifest, "fsLayers"[] ("blobSum")
 * of schema 1.  The type is the body's top-level "mediaType"; without
 * one, what its members say (as ngx_http_registry_manifest_parse() lets
 * such a body be served): "manifests" alone, an index; "config" without
 * "manifests", "blobs" or "fsLayers", an image manifest; "fsLayers"
 * alone, schema 1; anything else names nothing.  Only members of the
 * root object, each array item's own digest member, and only valid
 * digests (ngx_http_registry_valid_digest) written without escapes (no
 * encoder escapes one; skipping it costs an upstream HEAD, no more).
 * Not "subject": a registry stores a manifest whose subject it does not
 * hold, so that referrers can be pushed first; not a descriptor with
 * "urls": a registry checks no blob of a foreign layer.  Neither proves
 * that the digest is in this repository.
 *
 * NGX_OK; NGX_DECLINED: not a JSON object, one of the members above (or
 * a descriptor's digest) twice, a mediaType not a string or two that
 * differ; the handler is then never called.  NGX_ERROR: the handler
 * returned NGX_ERROR.
 */

ngx_int_t
ngx_http_registry_manifest_digests(u_char *p, size_t len,
    ngx_http_registry_grant_pt handler, void *data)
{
    ngx_int_t                        rc;
    ngx_http_registry_grant_body_t   body;

    ngx_memzero(&body, sizeof(ngx_http_registry_grant_body_t));

    rc = ngx_http_registry_grant_walk(p, len, NGX_HTTP_REGISTRY_GRANT_MEMBERS,
                                      &body, NULL, NULL);
    if (rc != NGX_OK) {
        return rc;
    }

    return ngx_http_registry_grant_walk(p, len,
                                        ngx_http_registry_grant_read(&body),
                                        NULL, handler, data);
}


/*
 * One walk over a manifest: the descriptors of the members in read, to
 * the handler if any; the top-level members into body, if any.  A
 * descriptor is an object at depth 1 ("config") or 2 (an array item), its
 * members one deeper.
 */

static ngx_int_t
ngx_http_registry_grant_walk(u_char *p, size_t len, ngx_uint_t read,
    ngx_http_registry_grant_body_t *body, ngx_http_registry_grant_pt handler,
    void *data)
{
    ngx_int_t                          rc;
    ngx_str_t                          digest;
    ngx_uint_t                         depth, count, urls, pending, i;
    ngx_http_registry_json_t           js;
    ngx_http_registry_json_token_t     t;
    ngx_http_registry_grant_member_t  *m;

    if (ngx_http_registry_json_open(&js, p, len,
                                    NGX_HTTP_REGISTRY_JSON_OBJECT)
        != NGX_OK)
    {
        return NGX_DECLINED;
    }

    m = NULL;
    depth = 0;      /* of the descriptor open, 0 if none */
    count = 0;
    urls = 0;
    pending = 0;    /* "urls" opened as an array: empty? */
    ngx_str_null(&digest);

    while ((rc = ngx_http_registry_json_next(&js, &t)) == NGX_OK) {

        if (pending) {
            pending = 0;

            if (t.type != NGX_HTTP_REGISTRY_JSON_END
                || t.depth != depth + 1)
            {
                urls = 1;
            }
        }

        if (t.type == NGX_HTTP_REGISTRY_JSON_END) {

            if (depth && t.depth == depth) {
                depth = 0;

                if (handler && count && !urls && digest.len
                    && ngx_http_registry_valid_digest(digest.data,
                                                      digest.len)
                       == NGX_OK
                    && handler(&digest, data) == NGX_ERROR)
                {
                    return NGX_ERROR;
                }
            }

            if (t.depth == 1) {
                m = NULL;
            }

            continue;
        }

        if (t.depth == 1) {
            m = NULL;

            if (body) {
                rc = ngx_http_registry_grant_top(&t, body);
                if (rc != NGX_OK) {
                    return rc;
                }
            }

            for (i = 0; ngx_http_registry_grant_members[i].name; i++) {
                if (ngx_http_registry_grant_is(&t.key,
                                     ngx_http_registry_grant_members[i].name,
                                     1))
                {
                    m = &ngx_http_registry_grant_members[i];
                    break;
                }
            }

            if (m == NULL || !(read & m->bit) || t.type != m->type) {
                m = NULL;
                continue;
            }

            if (t.type == NGX_HTTP_REGISTRY_JSON_ARRAY) {
                continue;
            }
        }

        if (m == NULL) {
            continue;
        }

        if (t.type == NGX_HTTP_REGISTRY_JSON_OBJECT && depth == 0
            && t.depth == (m->type == NGX_HTTP_REGISTRY_JSON_OBJECT ? 1 : 2))
        {
            depth = t.depth;
            count = 0;
            urls = 0;
            ngx_str_null(&digest);
            continue;
        }

        if (depth == 0 || t.depth != depth + 1) {
            continue;
        }

        if (ngx_http_registry_grant_is(&t.key, m->digest, 1)) {

            if (count++) {
                return NGX_DECLINED;
            }

            if (t.type == NGX_HTTP_REGISTRY_JSON_STRING && !t.escaped) {
                digest = t.value;
            }

        } else if (ngx_http_registry_grant_is(&t.key, "urls", 1)) {

            if (t.type == NGX_HTTP_REGISTRY_JSON_ARRAY) {
                pending = 1;

            } else if (t.type != NGX_HTTP_REGISTRY_JSON_NULL) {
                urls = 1;
            }
        }
    }

    return rc == NGX_DONE ? NGX_OK : NGX_DECLINED;
}


/* a top-level member of a manifest, for its type */

static ngx_int_t
ngx_http_registry_grant_top(ngx_http_registry_json_token_t *t,
    ngx_http_registry_grant_body_t *body)
{
    ngx_uint_t                       i, typed;
    ngx_http_registry_grant_type_t  *type;

    if (ngx_http_registry_grant_is(&t->key, "mediaType", 1)) {

        if (t->type != NGX_HTTP_REGISTRY_JSON_STRING) {
            return NGX_DECLINED;
        }

        typed = 1;

        for (i = 0; ngx_http_registry_grant_types[i].media_type; i++) {
            type = &ngx_http_registry_grant_types[i];

            if (ngx_http_registry_grant_is(&t->value, type->media_type, 0)) {
                typed = type->members + 1;
                break;
            }
        }

        if (body->typed && body->typed != typed) {
            return NGX_DECLINED;
        }

        body->typed = typed;

        return NGX_OK;
    }

    for (i = 0; ngx_http_registry_grant_members[i].name; i++) {
        if (ngx_http_registry_grant_is(&t->key,
                                       ngx_http_registry_grant_members[i].name,
                                       1))
        {
            if (body->has & ngx_http_registry_grant_members[i].bit) {
                return NGX_DECLINED;
            }

            body->has |= ngx_http_registry_grant_members[i].bit;
        }
    }

    return NGX_OK;
}


/* the members whose descriptors count, by the manifest's type */

static ngx_uint_t
ngx_http_registry_grant_read(ngx_http_registry_grant_body_t *body)
{
    ngx_uint_t  has;

    if (body->typed) {
        return body->typed - 1;
    }

    has = body->has;

    if (has == NGX_HTTP_REGISTRY_GRANT_MANIFESTS) {
        return NGX_HTTP_REGISTRY_GRANT_MANIFESTS;
    }

    if ((has & NGX_HTTP_REGISTRY_GRANT_CONFIG)
        && !(has & (NGX_HTTP_REGISTRY_GRANT_MANIFESTS
                    | NGX_HTTP_REGISTRY_GRANT_BLOBS
                    | NGX_HTTP_REGISTRY_GRANT_FSLAYERS)))
    {
        return NGX_HTTP_REGISTRY_GRANT_CONFIG | NGX_HTTP_REGISTRY_GRANT_LAYERS;
    }

    if (has == NGX_HTTP_REGISTRY_GRANT_FSLAYERS) {
        return NGX_HTTP_REGISTRY_GRANT_FSLAYERS;
    }

    return 0;
}


/*
 * "repository:<name>:<actions>", as a client asks for it: the name may
 * hold a registry host with its port, so the actions follow the last
 * colon, and are words of lower-case letters or "*", comma-separated
 * ("5000/app" after a name's port is not one: no actions).  The name is
 * printable ASCII without spaces, and not checked further: the caller
 * routes it as it routes a request path.  NGX_DECLINED for anything else
 * (other resource types such as "registry:catalog:*", an empty name, no
 * actions, an empty action).
 */

ngx_int_t
ngx_http_registry_scope_parse(u_char *p, size_t len, ngx_str_t *name,
    ngx_uint_t *pull)
{
    u_char  *last, *colon, *word, *q;

    *pull = 0;

    if (len < sizeof("repository:") - 1
        || ngx_strncmp(p, "repository:", sizeof("repository:") - 1) != 0)
    {
        return NGX_DECLINED;
    }

    last = p + len;
    p += sizeof("repository:") - 1;

    for (colon = last; colon > p; colon--) {
        if (colon[-1] == ':') {
            break;
        }
    }

    if (colon - 1 <= p || colon == last) {
        return NGX_DECLINED;
    }

    name->data = p;
    name->len = colon - 1 - p;

    for (q = p; q < colon - 1; q++) {
        if (*q <= ' ' || *q > '~') {
            return NGX_DECLINED;
        }
    }

    for (word = colon; word <= last; word = q + 1) {

        for (q = word; q < last && *q != ','; q++) {
            if ((*q < 'a' || *q > 'z') && *q != '*') {
                return NGX_DECLINED;
            }
        }

        if (q == word) {
            return NGX_DECLINED;
        }

        if ((q - word == 4 && ngx_strncmp(word, "pull", 4) == 0)
            || (q - word == 1 && *word == '*'))
        {
            *pull = 1;
        }
    }

    return NGX_OK;
}


/*
 * The next key=value of an application/x-www-form-urlencoded body or a
 * query string, raw (not unescaped), advancing *pos: pairs split on '&'
 * (empty ones skipped), key and value on the first '=' (a pair without
 * one is a key with an empty value).  NGX_OK, NGX_DONE at the end.
 */

ngx_int_t
ngx_http_registry_form_next(u_char **pos, u_char *last, ngx_str_t *key,
    ngx_str_t *value)
{
    u_char  *p, *amp, *eq;

    p = *pos;

    while (p < last && *p == '&') {
        p++;
    }

    if (p >= last) {
        *pos = last;
        return NGX_DONE;
    }

    amp = ngx_strlchr(p, last, '&');
    if (amp == NULL) {
        amp = last;
    }

    eq = ngx_strlchr(p, amp, '=');

    key->data = p;
    key->len = (eq ? eq : amp) - p;

    value->data = eq ? eq + 1 : amp;
    value->len = amp - value->data;

    *pos = (amp < last) ? amp + 1 : last;

    return NGX_OK;
}


/* a JWT part: base64url, no padding, not empty */

static ngx_int_t
ngx_http_registry_grant_b64url(u_char *p, size_t len)
{
    size_t  i;

    if (len == 0 || len % 4 == 1) {
        return NGX_DECLINED;
    }

    for (i = 0; i < len; i++) {
        if ((p[i] < 'A' || p[i] > 'Z') && (p[i] < 'a' || p[i] > 'z')
            && (p[i] < '0' || p[i] > '9') && p[i] != '-' && p[i] != '_')
        {
            return NGX_DECLINED;
        }
    }

    return NGX_OK;
}


/*
 * A raw JSON string is s once unescaped: in any ASCII case for a member
 * name (caseless), as Go matches one to a struct field, exactly for a
 * value.
 */

static ngx_uint_t
ngx_http_registry_grant_is(ngx_str_t *raw, char *s, ngx_uint_t caseless)
{
    size_t     n;
    ngx_str_t  str;
    u_char     buf[NGX_HTTP_REGISTRY_GRANT_WORD];

    str = *raw;

    if (ngx_strlchr(raw->data, raw->data + raw->len, '\\')) {

        if (raw->len > NGX_HTTP_REGISTRY_GRANT_WORD
            || ngx_http_registry_json_unescape(raw, buf, &str.len) != NGX_OK)
        {
            return 0;
        }

        str.data = buf;
    }

    n = ngx_strlen(s);

    if (str.len != n) {
        return 0;
    }

    if (caseless) {
        return ngx_strncasecmp(str.data, (u_char *) s, n) == 0;
    }

    return ngx_strncmp(str.data, s, n) == 0;
}


/* which of names a member name is: bit i for names[i], 0 for none */

static ngx_uint_t
ngx_http_registry_grant_key(ngx_str_t *key, char **names)
{
    ngx_uint_t  i;

    for (i = 0; names[i]; i++) {
        if (ngx_http_registry_grant_is(key, names[i], 1)) {
            return (ngx_uint_t) 1 << i;
        }
    }

    return 0;
}


/*
 * A repository name as a token names it, without a registry host:
 * components of the grammar joined by "/", NGX_HTTP_REGISTRY_NAME_MAX
 * bytes at most.
 */

static ngx_int_t
ngx_http_registry_grant_valid_name(u_char *p, size_t len)
{
    u_char  *last, *slash;

    if (len == 0 || len > NGX_HTTP_REGISTRY_NAME_MAX) {
        return NGX_DECLINED;
    }

    last = p + len;

    for ( ;; ) {
        slash = ngx_strlchr(p, last, '/');

        if (ngx_http_registry_valid_component(p, (slash ? slash : last) - p)
            != NGX_OK)
        {
            return NGX_DECLINED;
        }

        if (slash == NULL) {
            return NGX_OK;
        }

        p = slash + 1;
    }
}
