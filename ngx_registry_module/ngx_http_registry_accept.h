
/*
 * Copyright (C) ngx_registry_module authors
 */


#ifndef _NGX_HTTP_REGISTRY_ACCEPT_H_INCLUDED_
#define _NGX_HTTP_REGISTRY_ACCEPT_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


/* room for every known manifest media type, joined by ", " */
#define NGX_HTTP_REGISTRY_ACCEPT_MAX  512


ngx_uint_t ngx_http_registry_accept_mask(u_char *p, size_t len);
size_t ngx_http_registry_accept_string(ngx_uint_t mask, u_char *buf);
ngx_str_t *ngx_http_registry_manifest_type(u_char *p, size_t len);


#endif /* _NGX_HTTP_REGISTRY_ACCEPT_H_INCLUDED_ */
