
/*
 * Copyright (C) ngx_registry_module authors
 */


#ifndef _NGX_HTTP_REGISTRY_PATTERN_H_INCLUDED_
#define _NGX_HTTP_REGISTRY_PATTERN_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


/*
 * The repository patterns of a registry's allow and block lists: "/"
 * separated segments of name characters and "*" (any characters within
 * one segment), or a segment "**" (any number of segments, none too).
 * Nothing here knows about requests or files, so all of it can be unit
 * tested on its own.
 */

#define NGX_HTTP_REGISTRY_PATTERN_MAX  255


ngx_int_t ngx_http_registry_pattern_line(u_char *p, size_t len,
    ngx_str_t *pattern);
ngx_int_t ngx_http_registry_pattern_valid(u_char *p, size_t len);
ngx_int_t ngx_http_registry_pattern_match(u_char *p, size_t len,
    u_char *name, size_t name_len);
ngx_int_t ngx_http_registry_pattern_find(ngx_array_t *list, u_char *name,
    size_t len);
ngx_int_t ngx_http_registry_pattern_listed(ngx_array_t *allow,
    ngx_array_t *block, u_char *name, size_t len);


#endif /* _NGX_HTTP_REGISTRY_PATTERN_H_INCLUDED_ */
