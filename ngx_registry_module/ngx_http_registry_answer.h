
/*
 * Copyright (C) ngx_registry_module authors
 */


#ifndef _NGX_HTTP_REGISTRY_ANSWER_H_INCLUDED_
#define _NGX_HTTP_REGISTRY_ANSWER_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


ngx_int_t ngx_http_registry_header_filter_init(ngx_conf_t *cf);
ngx_str_t *ngx_http_registry_cache_status(ngx_http_request_t *r);


#endif /* _NGX_HTTP_REGISTRY_ANSWER_H_INCLUDED_ */
