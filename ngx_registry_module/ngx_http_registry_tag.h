
/*
 * Copyright (C) ngx_registry_module authors
 */


#ifndef _NGX_HTTP_REGISTRY_TAG_H_INCLUDED_
#define _NGX_HTTP_REGISTRY_TAG_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_registry.h"


/* how a request for a manifest by tag is being served (ctx->tag_state) */

#define NGX_HTTP_REGISTRY_TAG_NONE      0   /* not a tag */
#define NGX_HTTP_REGISTRY_TAG_FRESH     1   /* by the digest checked lately */
#define NGX_HTTP_REGISTRY_TAG_CHECK     2   /* HEAD of the tag upstream */
#define NGX_HTTP_REGISTRY_TAG_RESOLVED  3   /* by the digest the check named */
#define NGX_HTTP_REGISTRY_TAG_STALE     4   /* last known: the check failed */
#define NGX_HTTP_REGISTRY_TAG_UPDATING  5   /* last known: a check is running */
#define NGX_HTTP_REGISTRY_TAG_BYTAG     6   /* GET by tag, kept by digest */
#define NGX_HTTP_REGISTRY_TAG_FETCH     7   /* GET by tag, digest computed */

/*
 * The status a tag check ends with when it has decided how the request
 * goes on: registry_params sends it to the upstream-error location, which
 * runs the request again.  An upstream's own 599 finds no decision there.
 */

#define NGX_HTTP_REGISTRY_TAG_NEXT      599


ngx_int_t ngx_http_registry_tag_route(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
ngx_int_t ngx_http_registry_tag_checked(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
ngx_int_t ngx_http_registry_tag_error(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
ngx_int_t ngx_http_registry_tag_stale(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, char *why);
void ngx_http_registry_tag_served(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_str_t *digest, ngx_str_t *type);
ngx_str_t *ngx_http_registry_tag_cache_status(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
ngx_int_t ngx_http_registry_tag_log_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_registry_tag_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
char *ngx_http_registry_immutable_tags(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


#endif /* _NGX_HTTP_REGISTRY_TAG_H_INCLUDED_ */
