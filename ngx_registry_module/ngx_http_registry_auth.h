
/*
 * Copyright (C) ngx_registry_module authors
 */


#ifndef _NGX_HTTP_REGISTRY_AUTH_H_INCLUDED_
#define _NGX_HTTP_REGISTRY_AUTH_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_registry.h"


/* how a request is being authorised (ctx->auth_state) */

#define NGX_HTTP_REGISTRY_AUTH_NONE     0
#define NGX_HTTP_REGISTRY_AUTH_CHECK    1   /* HEAD upstream, its own
                                               credentials */
#define NGX_HTTP_REGISTRY_AUTH_PROVED   2   /* checked by this request */
#define NGX_HTTP_REGISTRY_AUTH_REFILL   3   /* another upstream's private
                                               entry: fetched again */

/* the status a check ends with when the request runs again */

#define NGX_HTTP_REGISTRY_AUTH_NEXT     599


ngx_str_t *ngx_http_registry_client_credentials(ngx_http_request_t *r);
ngx_uint_t ngx_http_registry_auth_client(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
ngx_int_t ngx_http_registry_auth_known(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
ngx_int_t ngx_http_registry_auth_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_registry_auth_filter(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
void ngx_http_registry_auth_named(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_str_t *digest);
void ngx_http_registry_auth_manifest(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, u_char *body, size_t len);
ngx_int_t ngx_http_registry_auth_error(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
ngx_int_t ngx_http_registry_auth_challenge(ngx_http_request_t *r,
    ngx_http_registry_t *reg, ngx_str_t *name, char *message);
ngx_int_t ngx_http_registry_auth_base(ngx_http_request_t *r,
    ngx_http_registry_t *reg);
ngx_int_t ngx_http_registry_auth_private_mark(ngx_pool_t *pool,
    ngx_http_registry_t *reg, u_char *buf);
void ngx_http_registry_auth_token(ngx_http_request_t *r,
    ngx_http_registry_t *reg, ngx_str_t *requested, ngx_str_t *body);


#endif /* _NGX_HTTP_REGISTRY_AUTH_H_INCLUDED_ */
