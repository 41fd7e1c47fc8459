
/*
 * Copyright (C) ngx_registry_module authors
 */


#ifndef _NGX_HTTP_REGISTRY_HISTORY_H_INCLUDED_
#define _NGX_HTTP_REGISTRY_HISTORY_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


ngx_int_t ngx_http_registry_history_seen(ngx_http_request_t *r,
    ngx_str_t *registry, ngx_str_t *repository, ngx_str_t *tag,
    ngx_str_t *accept, ngx_str_t *digest, ngx_str_t *media_type);
ngx_int_t ngx_http_registry_history_last(ngx_http_request_t *r,
    ngx_str_t *registry, ngx_str_t *repository, ngx_str_t *tag,
    ngx_str_t *accept, ngx_pool_t *pool, ngx_str_t *digest,
    ngx_str_t *media_type);


#endif /* _NGX_HTTP_REGISTRY_HISTORY_H_INCLUDED_ */
