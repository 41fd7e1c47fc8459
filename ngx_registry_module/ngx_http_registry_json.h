
/*
 * Copyright (C) ngx_registry_module authors
 */


#ifndef _NGX_HTTP_REGISTRY_JSON_H_INCLUDED_
#define _NGX_HTTP_REGISTRY_JSON_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


/*
 * A JSON tokenizer for what upstreams send (token answers, manifests,
 * indexes): bytes in, one token at a time out, nothing allocated and no
 * request in sight, so t/ unit tests and fuzzes it.  It checks the whole
 * grammar (RFC 8259) as it goes; the caller picks what it needs by key
 * and depth.
 */

#define NGX_HTTP_REGISTRY_JSON_DEPTH   32

#define NGX_HTTP_REGISTRY_JSON_OBJECT  1
#define NGX_HTTP_REGISTRY_JSON_ARRAY   2
#define NGX_HTTP_REGISTRY_JSON_END     3    /* of an object or array */
#define NGX_HTTP_REGISTRY_JSON_STRING  4
#define NGX_HTTP_REGISTRY_JSON_NUMBER  5
#define NGX_HTTP_REGISTRY_JSON_TRUE    6
#define NGX_HTTP_REGISTRY_JSON_FALSE   7
#define NGX_HTTP_REGISTRY_JSON_NULL    8


typedef struct {
    u_char                    *pos;
    u_char                    *last;
    ngx_uint_t                 state;
    ngx_uint_t                 depth;       /* containers open */
    u_char                     stack[NGX_HTTP_REGISTRY_JSON_DEPTH];
} ngx_http_registry_json_t;


typedef struct {
    ngx_uint_t                 type;
    ngx_str_t                  key;     /* raw member name; empty for array
                                           items and the root */
    ngx_str_t                  value;   /* raw: a string without its quotes,
                                           or a number */
    ngx_uint_t                 depth;   /* 0: the root, 1: its members */
    unsigned                   escaped:1;   /* value holds a backslash */
} ngx_http_registry_json_token_t;


void ngx_http_registry_json_init(ngx_http_registry_json_t *js, u_char *p,
    size_t len);
ngx_int_t ngx_http_registry_json_next(ngx_http_registry_json_t *js,
    ngx_http_registry_json_token_t *tok);
ngx_int_t ngx_http_registry_json_open(ngx_http_registry_json_t *js,
    u_char *p, size_t len, ngx_uint_t type);
ngx_int_t ngx_http_registry_json_unescape(ngx_str_t *raw, u_char *dst,
    size_t *len);
ngx_int_t ngx_http_registry_json_is(ngx_str_t *raw, char *s);


#endif /* _NGX_HTTP_REGISTRY_JSON_H_INCLUDED_ */
