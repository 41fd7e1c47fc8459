
/*
 * Copyright (C) ngx_registry_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_http_registry_challenge.h"
#include "ngx_http_registry_json.h"


/*
 * What upstream auth reads from untrusted answers: the WWW-Authenticate
 * challenge and the token service's JSON.  Bytes in, results out, no
 * request in sight, so t/ unit tests and fuzzes them.
 */


static ngx_int_t ngx_http_registry_param(u_char **pp, u_char *last,
    ngx_str_t *name, ngx_str_t *value);


/*
 * Bearer realm="https://auth.example/token",service="registry.example",
 *        scope="repository:app:pull"
 * Basic realm="Registry"
 */

ngx_int_t
ngx_http_registry_challenge_parse(u_char *p, size_t len,
    ngx_http_registry_challenge_t *ch)
{
    u_char     *last;
    ngx_str_t   name, value;

    ngx_memzero(ch, sizeof(ngx_http_registry_challenge_t));

    last = p + len;

    if (len > 7 && ngx_strncasecmp(p, (u_char *) "Bearer ", 7) == 0) {
        ch->bearer = 1;
        p += 7;

    } else if (len >= 5 && ngx_strncasecmp(p, (u_char *) "Basic", 5) == 0) {
        return NGX_OK;

    } else {
        return NGX_DECLINED;
    }

    while (ngx_http_registry_param(&p, last, &name, &value) == NGX_OK) {

        if (name.len == 5 && ngx_strncasecmp(name.data, (u_char *) "realm", 5)
                             == 0)
        {
            ch->realm = value;

        } else if (name.len == 7
                   && ngx_strncasecmp(name.data, (u_char *) "service", 7)
                      == 0)
        {
            ch->service = value;

        } else if (name.len == 5
                   && ngx_strncasecmp(name.data, (u_char *) "scope", 5) == 0)
        {
            ch->scope = value;
        }
    }

    if (ch->realm.len < 8
        || (ngx_strncasecmp(ch->realm.data, (u_char *) "https://", 8) != 0
            && ngx_strncasecmp(ch->realm.data, (u_char *) "http://", 7) != 0))
    {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/* one name="value" (or name=token) parameter and the comma after it */

static ngx_int_t
ngx_http_registry_param(u_char **pp, u_char *last, ngx_str_t *name,
    ngx_str_t *value)
{
    u_char  *p;

    p = *pp;

    while (p < last && (*p == ' ' || *p == ',' || *p == '\t')) {
        p++;
    }

    name->data = p;

    while (p < last && *p != '=') {
        p++;
    }

    if (p == last || p == name->data) {
        return NGX_DECLINED;
    }

    name->len = p - name->data;
    p++;

    if (p < last && *p == '"') {
        p++;
        value->data = p;

        while (p < last && *p != '"') {
            if (*p == '\\' || *p < ' ') {
                return NGX_DECLINED;
            }
            p++;
        }

        if (p == last) {
            return NGX_DECLINED;
        }

        value->len = p - value->data;
        p++;

    } else {
        value->data = p;

        while (p < last && *p != ',' && *p != ' ') {
            p++;
        }

        value->len = p - value->data;
    }

    *pp = p;

    return NGX_OK;
}


/*
 * {"token":"...","access_token":"...","expires_in":300,...}: the token
 * (access_token if there is no token) and its lifetime, 60 s if absent or
 * not a positive integer, an hour at most: a token is not trusted for
 * longer than that.  Only members of the top-level object count, named
 * exactly (a "token" nested deeper, "TOKEN" or an escaped spelling of the
 * name is not the token), in a well-formed document; any of the three
 * twice is refused, as parsers disagree on which one counts.  The token
 * is unescaped into buf (len bytes) when it has escapes, and must be
 * printable ASCII without spaces, at most NGX_HTTP_REGISTRY_TOKEN_LEN
 * bytes.
 */

ngx_int_t
ngx_http_registry_token_parse(u_char *p, size_t len, u_char *buf,
    ngx_str_t *token, time_t *expires_in)
{
    size_t                           n;
    ngx_int_t                        rc, age;
    ngx_http_registry_json_t         js;
    ngx_http_registry_json_token_t   t, tok, access, expires, *found;

    if (ngx_http_registry_json_open(&js, p, len,
                                    NGX_HTTP_REGISTRY_JSON_OBJECT)
        != NGX_OK)
    {
        return NGX_DECLINED;
    }

    tok.type = 0;
    access.type = 0;
    expires.type = 0;

    while ((rc = ngx_http_registry_json_next(&js, &t)) == NGX_OK) {

        if (t.depth != 1 || t.type == NGX_HTTP_REGISTRY_JSON_END) {
            continue;
        }

        if (ngx_http_registry_json_is(&t.key, "token")) {
            found = &tok;

        } else if (ngx_http_registry_json_is(&t.key, "access_token")) {
            found = &access;

        } else if (ngx_http_registry_json_is(&t.key, "expires_in")) {
            found = &expires;

        } else {
            continue;
        }

        if (found->type) {
            return NGX_DECLINED;
        }

        *found = t;
    }

    if (rc != NGX_DONE) {
        return NGX_DECLINED;
    }

    if (tok.type == 0) {
        tok = access;
    }

    if (tok.type != NGX_HTTP_REGISTRY_JSON_STRING) {
        return NGX_DECLINED;
    }

    if (tok.escaped) {
        if (ngx_http_registry_json_unescape(&tok.value, buf, &token->len)
            != NGX_OK)
        {
            return NGX_DECLINED;
        }

        token->data = buf;

    } else {
        *token = tok.value;
    }

    if (token->len == 0 || token->len > NGX_HTTP_REGISTRY_TOKEN_LEN) {
        return NGX_DECLINED;
    }

    for (n = 0; n < token->len; n++) {
        if (token->data[n] <= ' ' || token->data[n] > '~') {
            return NGX_DECLINED;
        }
    }

    *expires_in = 60;

    if (expires.type == NGX_HTTP_REGISTRY_JSON_NUMBER) {

        /* a non-negative integer: no sign, fraction or exponent */

        for (n = 0; n < expires.value.len; n++) {
            if (expires.value.data[n] < '0' || expires.value.data[n] > '9') {
                break;
            }
        }

        if (n == expires.value.len) {
            age = (n > 9) ? NGX_HTTP_REGISTRY_TOKEN_MAX_AGE
                          : ngx_atoi(expires.value.data, n);

            if (age > 0) {
                *expires_in = ngx_min(age, NGX_HTTP_REGISTRY_TOKEN_MAX_AGE);
            }
        }
    }

    return NGX_OK;
}
