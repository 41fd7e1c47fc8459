
/*
 * Copyright (C) ngx_registry_module authors
 */


#ifndef _NGX_HTTP_REGISTRY_RELAY_H_INCLUDED_
#define _NGX_HTTP_REGISTRY_RELAY_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


ngx_int_t ngx_http_registry_relay_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_registry_relay_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);


#endif /* _NGX_HTTP_REGISTRY_RELAY_H_INCLUDED_ */
