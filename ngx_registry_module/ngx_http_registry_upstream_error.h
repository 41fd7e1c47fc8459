
/*
 * Copyright (C) ngx_registry_module authors
 */


#ifndef _NGX_HTTP_REGISTRY_UPSTREAM_ERROR_H_INCLUDED_
#define _NGX_HTTP_REGISTRY_UPSTREAM_ERROR_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


#include "ngx_http_registry_challenge.h"


ngx_int_t ngx_http_registry_upstream_error(ngx_http_request_t *r);
ngx_int_t ngx_http_registry_token_get(ngx_http_request_t *r, ngx_str_t *key,
    ngx_str_t *token);
ngx_int_t ngx_http_registry_token_set(ngx_http_request_t *r, ngx_str_t *key,
    ngx_str_t *token, time_t expires);
ngx_int_t ngx_http_registry_authorization_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
ngx_int_t ngx_http_registry_client_credentials_variable(
    ngx_http_request_t *r, ngx_http_variable_value_t *v, uintptr_t data);
ngx_int_t ngx_http_registry_token_auth_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);


#endif /* _NGX_HTTP_REGISTRY_UPSTREAM_ERROR_H_INCLUDED_ */
