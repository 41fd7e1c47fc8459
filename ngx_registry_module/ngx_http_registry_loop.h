
/*
 * Copyright (C) ngx_registry_module authors
 */


#ifndef _NGX_HTTP_REGISTRY_LOOP_H_INCLUDED_
#define _NGX_HTTP_REGISTRY_LOOP_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


/* the bytes of CDN-Loop a client may send: a chain of mirrors' ids */

#define NGX_HTTP_REGISTRY_CDN_LOOP_MAX  2048


ngx_int_t ngx_http_registry_node_id(ngx_conf_t *cf, ngx_str_t *id);
char *ngx_http_registry_node_id_check(ngx_conf_t *cf, void *post,
    void *data);
ngx_uint_t ngx_http_registry_loop_seen(ngx_http_request_t *r);
ngx_uint_t ngx_http_registry_loop_too_long(ngx_http_request_t *r);
ngx_int_t ngx_http_registry_cdn_loop_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);


#endif /* _NGX_HTTP_REGISTRY_LOOP_H_INCLUDED_ */
