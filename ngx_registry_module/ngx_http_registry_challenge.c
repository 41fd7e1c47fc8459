
/*
 * Copyright (C) ngx_registry_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_http_registry_challenge.h"


/*
 * What upstream auth reads from untrusted answers: the WWW-Authenticate
 * challenge and the token service's JSON.  Bytes in, results out, no
 * request in sight, so t/ unit tests and fuzzes them.
 */


static ngx_int_t ngx_http_registry_param(u_char **pp, u_char *last,
    ngx_str_t *name, ngx_str_t *value);
static u_char *ngx_http_registry_json_value(u_char *p, u_char *last,
    char *name);


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
 * (access_token if there is no token) and its lifetime, 60 s if absent,
 * an hour at most: a token is not trusted for longer than that.
 */

ngx_int_t
ngx_http_registry_token_parse(u_char *p, size_t len, ngx_str_t *token,
    time_t *expires_in)
{
    u_char     *last, *v, *e;
    ngx_int_t   n;

    last = p + len;

    v = ngx_http_registry_json_value(p, last, "\"token\"");
    if (v == NULL) {
        v = ngx_http_registry_json_value(p, last, "\"access_token\"");
    }

    if (v == NULL || *v != '"') {
        return NGX_DECLINED;
    }

    v++;

    for (e = v; e < last && *e != '"'; e++) {
        if (*e == '\\' || *e < ' ' || *e > '~') {
            return NGX_DECLINED;
        }
    }

    if (e == last || e == v || e - v > 16384) {
        return NGX_DECLINED;
    }

    token->data = v;
    token->len = e - v;

    *expires_in = 60;

    v = ngx_http_registry_json_value(p, last, "\"expires_in\"");

    if (v) {
        for (e = v; e < last && *e >= '0' && *e <= '9'; e++) { /* void */ }

        n = ngx_atoi(v, e - v);
        if (n > 0) {
            *expires_in = ngx_min(n, NGX_HTTP_REGISTRY_TOKEN_MAX_AGE);
        }
    }

    return NGX_OK;
}


/* the first byte of the value of a top-level key, spaces skipped */

static u_char *
ngx_http_registry_json_value(u_char *p, u_char *last, char *name)
{
    size_t   n;
    u_char  *k;

    n = ngx_strlen(name);

    while ((k = ngx_strlcasestrn(p, last, (u_char *) name, n - 1)) != NULL) {
        p = k + n;

        while (p < last && (*p == ' ' || *p == '\t' || *p == '\n'
                            || *p == '\r'))
        {
            p++;
        }

        if (p < last && *p == ':') {
            p++;

            while (p < last && (*p == ' ' || *p == '\t')) {
                p++;
            }

            return p < last ? p : NULL;
        }
    }

    return NULL;
}
