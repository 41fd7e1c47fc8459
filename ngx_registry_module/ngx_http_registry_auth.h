
/*
 * Copyright (C) ngx_registry_module authors
 */


#ifndef _NGX_HTTP_REGISTRY_AUTH_H_INCLUDED_
#define _NGX_HTTP_REGISTRY_AUTH_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


#include "ngx_http_registry_challenge.h"


ngx_int_t ngx_http_registry_upstream_error(ngx_http_request_t *r);
ngx_int_t ngx_http_registry_token_get(ngx_http_request_t *r, ngx_str_t *key,
    ngx_str_t *token);
ngx_int_t ngx_http_registry_token_set(ngx_http_request_t *r, ngx_str_t *key,
    ngx_str_t *token, time_t expires);
ngx_str_t *ngx_http_registry_client_credentials(ngx_http_request_t *r);


#endif /* _NGX_HTTP_REGISTRY_AUTH_H_INCLUDED_ */
