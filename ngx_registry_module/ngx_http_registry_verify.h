
/*
 * Copyright (C) ngx_registry_module authors
 */


#ifndef _NGX_HTTP_REGISTRY_VERIFY_H_INCLUDED_
#define _NGX_HTTP_REGISTRY_VERIFY_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


ngx_int_t ngx_http_registry_verify_body(ngx_http_request_t *r,
    ngx_str_t *expected, ngx_str_t *type, char **reason);
void ngx_http_registry_mismatch(ngx_http_request_t *r);


#endif /* _NGX_HTTP_REGISTRY_VERIFY_H_INCLUDED_ */
