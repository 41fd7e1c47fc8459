
/*
 * Copyright (C) ngx_registry_module authors
 */


#ifndef _NGX_HTTP_REGISTRY_REGION_H_INCLUDED_
#define _NGX_HTTP_REGISTRY_REGION_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_registry.h"


ngx_int_t ngx_http_registry_region_route(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
ngx_int_t ngx_http_registry_failover(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_uint_t status, char *why);
ngx_uint_t ngx_http_registry_region_served(ngx_http_request_t *r,
    ngx_str_t *name);
ngx_int_t ngx_http_registry_region_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
ngx_int_t ngx_http_registry_region_served_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);


#endif /* _NGX_HTTP_REGISTRY_REGION_H_INCLUDED_ */
