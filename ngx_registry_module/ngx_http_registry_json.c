
/*
 * Copyright (C) ngx_registry_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_http_registry_json.h"


/* what the tokenizer expects next */

#define NGX_HTTP_REGISTRY_JSON_ROOT        0   /* the root value */
#define NGX_HTTP_REGISTRY_JSON_OBJ_FIRST   1   /* a key or "}" */
#define NGX_HTTP_REGISTRY_JSON_OBJ_NEXT    2   /* "," or "}" */
#define NGX_HTTP_REGISTRY_JSON_ARR_FIRST   3   /* a value or "]" */
#define NGX_HTTP_REGISTRY_JSON_ARR_NEXT    4   /* "," or "]" */
#define NGX_HTTP_REGISTRY_JSON_DONE        5   /* white space only */
#define NGX_HTTP_REGISTRY_JSON_FAILED      6


static ngx_int_t ngx_http_registry_json_value(ngx_http_registry_json_t *js,
    ngx_http_registry_json_token_t *tok);
static ngx_int_t ngx_http_registry_json_string(ngx_http_registry_json_t *js,
    ngx_str_t *s, ngx_uint_t *escaped);
static ngx_int_t ngx_http_registry_json_number(ngx_http_registry_json_t *js,
    ngx_str_t *s);
static void ngx_http_registry_json_after(ngx_http_registry_json_t *js);
static void ngx_http_registry_json_space(ngx_http_registry_json_t *js);
static ngx_int_t ngx_http_registry_json_hex4(u_char *p);


void
ngx_http_registry_json_init(ngx_http_registry_json_t *js, u_char *p,
    size_t len)
{
    js->pos = p;
    js->last = p + len;
    js->state = NGX_HTTP_REGISTRY_JSON_ROOT;
    js->depth = 0;
}


/*
 * Starts reading a document that must be an object or an array (type):
 * NGX_OK when it opens so, NGX_ERROR otherwise.
 */

ngx_int_t
ngx_http_registry_json_open(ngx_http_registry_json_t *js, u_char *p,
    size_t len, ngx_uint_t type)
{
    ngx_http_registry_json_token_t  tok;

    ngx_http_registry_json_init(js, p, len);

    if (ngx_http_registry_json_next(js, &tok) != NGX_OK || tok.type != type) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * NGX_OK with the next token, NGX_DONE once the document has ended well
 * formed with nothing after it, NGX_ERROR on anything else (a malformed
 * or truncated document, nesting deeper than NGX_HTTP_REGISTRY_JSON_DEPTH).
 * After NGX_ERROR every call fails.
 */

ngx_int_t
ngx_http_registry_json_next(ngx_http_registry_json_t *js,
    ngx_http_registry_json_token_t *tok)
{
    ngx_uint_t  escaped;

    ngx_memzero(tok, sizeof(ngx_http_registry_json_token_t));

    if (js->state == NGX_HTTP_REGISTRY_JSON_FAILED) {
        return NGX_ERROR;
    }

    ngx_http_registry_json_space(js);

    switch (js->state) {

    case NGX_HTTP_REGISTRY_JSON_ROOT:
        return ngx_http_registry_json_value(js, tok);

    case NGX_HTTP_REGISTRY_JSON_DONE:
        return js->pos == js->last ? NGX_DONE : NGX_ERROR;

    case NGX_HTTP_REGISTRY_JSON_OBJ_NEXT:
    case NGX_HTTP_REGISTRY_JSON_ARR_NEXT:

        if (js->pos < js->last && *js->pos == ',') {
            js->pos++;
            ngx_http_registry_json_space(js);

            if (js->state == NGX_HTTP_REGISTRY_JSON_ARR_NEXT) {
                return ngx_http_registry_json_value(js, tok);
            }

            goto member;
        }

        /* fall through */

    case NGX_HTTP_REGISTRY_JSON_OBJ_FIRST:
    case NGX_HTTP_REGISTRY_JSON_ARR_FIRST:

        if (js->pos == js->last) {
            break;
        }

        if (*js->pos == (js->stack[js->depth - 1] == '{' ? '}' : ']')) {
            js->pos++;
            js->depth--;
            tok->type = NGX_HTTP_REGISTRY_JSON_END;
            tok->depth = js->depth;
            ngx_http_registry_json_after(js);
            return NGX_OK;
        }

        if (js->state == NGX_HTTP_REGISTRY_JSON_ARR_FIRST) {
            return ngx_http_registry_json_value(js, tok);
        }

        if (js->state != NGX_HTTP_REGISTRY_JSON_OBJ_FIRST) {
            break;
        }

    member:

        if (js->pos == js->last || *js->pos != '"'
            || ngx_http_registry_json_string(js, &tok->key, &escaped)
               != NGX_OK)
        {
            break;
        }

        ngx_http_registry_json_space(js);

        if (js->pos == js->last || *js->pos != ':') {
            break;
        }

        js->pos++;
        ngx_http_registry_json_space(js);

        return ngx_http_registry_json_value(js, tok);
    }

    js->state = NGX_HTTP_REGISTRY_JSON_FAILED;

    return NGX_ERROR;
}


static ngx_int_t
ngx_http_registry_json_value(ngx_http_registry_json_t *js,
    ngx_http_registry_json_token_t *tok)
{
    size_t       n;
    ngx_uint_t   escaped;
    static char *literals[] = { "true", "false", "null" };

    tok->depth = js->depth;

    if (js->pos == js->last) {
        goto failed;
    }

    switch (*js->pos) {

    case '{':
    case '[':
        if (js->depth == NGX_HTTP_REGISTRY_JSON_DEPTH) {
            goto failed;
        }

        js->stack[js->depth++] = *js->pos;

        if (*js->pos == '{') {
            tok->type = NGX_HTTP_REGISTRY_JSON_OBJECT;
            js->state = NGX_HTTP_REGISTRY_JSON_OBJ_FIRST;

        } else {
            tok->type = NGX_HTTP_REGISTRY_JSON_ARRAY;
            js->state = NGX_HTTP_REGISTRY_JSON_ARR_FIRST;
        }

        js->pos++;
        return NGX_OK;

    case '"':
        if (ngx_http_registry_json_string(js, &tok->value, &escaped)
            != NGX_OK)
        {
            goto failed;
        }

        tok->type = NGX_HTTP_REGISTRY_JSON_STRING;
        tok->escaped = escaped;
        break;

    case 't':
    case 'f':
    case 'n':
        tok->type = *js->pos == 't' ? NGX_HTTP_REGISTRY_JSON_TRUE
                    : *js->pos == 'f' ? NGX_HTTP_REGISTRY_JSON_FALSE
                    : NGX_HTTP_REGISTRY_JSON_NULL;

        n = ngx_strlen(literals[tok->type - NGX_HTTP_REGISTRY_JSON_TRUE]);

        if ((size_t) (js->last - js->pos) < n
            || ngx_strncmp(js->pos,
                           literals[tok->type - NGX_HTTP_REGISTRY_JSON_TRUE],
                           n)
               != 0)
        {
            goto failed;
        }

        tok->value.data = js->pos;
        tok->value.len = n;
        js->pos += n;
        break;

    default:
        if (ngx_http_registry_json_number(js, &tok->value) != NGX_OK) {
            goto failed;
        }

        tok->type = NGX_HTTP_REGISTRY_JSON_NUMBER;
    }

    ngx_http_registry_json_after(js);

    return NGX_OK;

failed:

    js->state = NGX_HTTP_REGISTRY_JSON_FAILED;

    return NGX_ERROR;
}


/* a string token: the bytes between the quotes, escapes checked */

static ngx_int_t
ngx_http_registry_json_string(ngx_http_registry_json_t *js, ngx_str_t *s,
    ngx_uint_t *escaped)
{
    u_char  *p;

    *escaped = 0;
    p = js->pos + 1;
    s->data = p;

    while (p < js->last) {

        if (*p == '"') {
            s->len = p - s->data;
            js->pos = p + 1;
            return NGX_OK;
        }

        if (*p < 0x20) {
            return NGX_ERROR;
        }

        if (*p++ != '\\') {
            continue;
        }

        *escaped = 1;

        if (p == js->last) {
            return NGX_ERROR;
        }

        if (*p == 'u') {
            if (js->last - p < 5 || ngx_http_registry_json_hex4(p + 1) < 0) {
                return NGX_ERROR;
            }

            p += 5;
            continue;
        }

        if (ngx_strlchr((u_char *) "\"\\/bfnrt", (u_char *) "\"\\/bfnrt" + 8,
                        *p)
            == NULL)
        {
            return NGX_ERROR;
        }

        p++;
    }

    return NGX_ERROR;
}


/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */

static ngx_int_t
ngx_http_registry_json_number(ngx_http_registry_json_t *js, ngx_str_t *s)
{
    u_char  *p, *last, *digits;

    p = js->pos;
    last = js->last;
    s->data = p;

    if (p < last && *p == '-') {
        p++;
    }

    digits = p;

    if (p < last && *p == '0') {
        p++;

    } else {
        while (p < last && *p >= '0' && *p <= '9') {
            p++;
        }
    }

    if (p == digits) {
        return NGX_ERROR;
    }

    if (p < last && *p == '.') {
        digits = ++p;

        while (p < last && *p >= '0' && *p <= '9') {
            p++;
        }

        if (p == digits) {
            return NGX_ERROR;
        }
    }

    if (p < last && (*p == 'e' || *p == 'E')) {
        p++;

        if (p < last && (*p == '+' || *p == '-')) {
            p++;
        }

        digits = p;

        while (p < last && *p >= '0' && *p <= '9') {
            p++;
        }

        if (p == digits) {
            return NGX_ERROR;
        }
    }

    s->len = p - s->data;
    js->pos = p;

    return NGX_OK;
}


/* a value has ended: what may follow it */

static void
ngx_http_registry_json_after(ngx_http_registry_json_t *js)
{
    if (js->depth == 0) {
        js->state = NGX_HTTP_REGISTRY_JSON_DONE;

    } else if (js->stack[js->depth - 1] == '{') {
        js->state = NGX_HTTP_REGISTRY_JSON_OBJ_NEXT;

    } else {
        js->state = NGX_HTTP_REGISTRY_JSON_ARR_NEXT;
    }
}


static void
ngx_http_registry_json_space(ngx_http_registry_json_t *js)
{
    while (js->pos < js->last
           && (*js->pos == ' ' || *js->pos == '\t' || *js->pos == '\n'
               || *js->pos == '\r'))
    {
        js->pos++;
    }
}


static ngx_int_t
ngx_http_registry_json_hex4(u_char *p)
{
    u_char      c;
    ngx_int_t   n;
    ngx_uint_t  i;

    n = 0;

    for (i = 0; i < 4; i++) {
        c = p[i];

        if (c >= '0' && c <= '9') {
            n = n * 16 + (c - '0');

        } else {
            c |= 0x20;

            if (c < 'a' || c > 'f') {
                return -1;
            }

            n = n * 16 + (c - 'a' + 10);
        }
    }

    return n;
}


/*
 * A raw string token decoded into dst (raw->len bytes are always enough:
 * no escape is shorter than what it stands for).  \u escapes become UTF-8;
 * a lone surrogate or U+0000 is refused.
 */

ngx_int_t
ngx_http_registry_json_unescape(ngx_str_t *raw, u_char *dst, size_t *len)
{
    u_char     *p, *last, *d;
    ngx_int_t   c, lo;

    p = raw->data;
    last = p + raw->len;
    d = dst;

    while (p < last) {

        if (*p != '\\') {
            *d++ = *p++;
            continue;
        }

        if (++p == last) {
            return NGX_ERROR;
        }

        switch (*p++) {
        case '"':  *d++ = '"'; continue;
        case '\\': *d++ = '\\'; continue;
        case '/':  *d++ = '/'; continue;
        case 'b':  *d++ = '\b'; continue;
        case 'f':  *d++ = '\f'; continue;
        case 'n':  *d++ = '\n'; continue;
        case 'r':  *d++ = '\r'; continue;
        case 't':  *d++ = '\t'; continue;
        case 'u':  break;
        default:   return NGX_ERROR;
        }

        if (last - p < 4 || (c = ngx_http_registry_json_hex4(p)) <= 0) {
            return NGX_ERROR;
        }

        p += 4;

        if (c >= 0xdc00 && c <= 0xdfff) {
            return NGX_ERROR;
        }

        if (c >= 0xd800 && c <= 0xdbff) {
            if (last - p < 6 || p[0] != '\\' || p[1] != 'u') {
                return NGX_ERROR;
            }

            lo = ngx_http_registry_json_hex4(p + 2);
            if (lo < 0xdc00 || lo > 0xdfff) {
                return NGX_ERROR;
            }

            p += 6;
            c = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
        }

        if (c < 0x80) {
            *d++ = (u_char) c;

        } else if (c < 0x800) {
            *d++ = (u_char) (0xc0 | (c >> 6));
            *d++ = (u_char) (0x80 | (c & 0x3f));

        } else if (c < 0x10000) {
            *d++ = (u_char) (0xe0 | (c >> 12));
            *d++ = (u_char) (0x80 | ((c >> 6) & 0x3f));
            *d++ = (u_char) (0x80 | (c & 0x3f));

        } else {
            *d++ = (u_char) (0xf0 | (c >> 18));
            *d++ = (u_char) (0x80 | ((c >> 12) & 0x3f));
            *d++ = (u_char) (0x80 | ((c >> 6) & 0x3f));
            *d++ = (u_char) (0x80 | (c & 0x3f));
        }
    }

    *len = d - dst;

    return NGX_OK;
}


/* a raw key or string is exactly s (escaped forms never match) */

ngx_int_t
ngx_http_registry_json_is(ngx_str_t *raw, char *s)
{
    size_t  n;

    n = ngx_strlen(s);

    return raw->len == n && ngx_strncmp(raw->data, s, n) == 0;
}
