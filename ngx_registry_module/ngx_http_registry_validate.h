
/*
 * Copyright (C) ngx_registry_module authors
 */


#ifndef _NGX_HTTP_REGISTRY_VALIDATE_H_INCLUDED_
#define _NGX_HTTP_REGISTRY_VALIDATE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


/*
 * The distribution grammar, on raw bytes.  Nothing here knows about
 * requests, so the checks can be unit tested and fuzzed on their own.
 * Each returns NGX_OK or NGX_DECLINED.
 */

#define NGX_HTTP_REGISTRY_NAME_MAX     255
#define NGX_HTTP_REGISTRY_TAG_MAX      128


ngx_int_t ngx_http_registry_valid_component(u_char *p, size_t len);
ngx_int_t ngx_http_registry_valid_tag(u_char *p, size_t len);
ngx_int_t ngx_http_registry_valid_digest(u_char *p, size_t len);
ngx_int_t ngx_http_registry_valid_host(u_char *p, size_t len);
ngx_int_t ngx_http_registry_host_like(u_char *p, size_t len);


#endif /* _NGX_HTTP_REGISTRY_VALIDATE_H_INCLUDED_ */
