
/*
 * Copyright (C) ngx_registry_module authors
 */


#ifndef _NGX_HTTP_REGISTRY_REDIRECT_H_INCLUDED_
#define _NGX_HTTP_REGISTRY_REDIRECT_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


/*
 * At most this many hops; each costs two of nginx's ten internal
 * redirects (to /_registry/redirect, then to the error location), and
 * ngx_http_registry_redirects_left() may stop a chain sooner.
 */
#define NGX_HTTP_REGISTRY_REDIRECTS_MAX  4


ngx_int_t ngx_http_registry_redirect(ngx_http_request_t *r);
ngx_int_t ngx_http_registry_redirect_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);


#endif /* _NGX_HTTP_REGISTRY_REDIRECT_H_INCLUDED_ */
