
/*
 * Copyright (C) ngx_registry_module authors
 */


#ifndef _NGX_HTTP_REGISTRY_GRANT_H_INCLUDED_
#define _NGX_HTTP_REGISTRY_GRANT_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


/*
 * Called for each repository name a token grants, or each digest a
 * manifest names; NGX_ERROR stops the walk.
 */

typedef ngx_int_t (*ngx_http_registry_grant_pt)(ngx_str_t *name, void *data);


ngx_int_t ngx_http_registry_jwt_grants(u_char *token, size_t len,
    u_char *buf, time_t *exp, ngx_http_registry_grant_pt handler,
    void *data);
ngx_int_t ngx_http_registry_manifest_digests(u_char *p, size_t len,
    ngx_http_registry_grant_pt handler, void *data);
ngx_int_t ngx_http_registry_scope_parse(u_char *p, size_t len,
    ngx_str_t *name, ngx_uint_t *pull);
ngx_int_t ngx_http_registry_form_next(u_char **pos, u_char *last,
    ngx_str_t *key, ngx_str_t *value);


#endif /* _NGX_HTTP_REGISTRY_GRANT_H_INCLUDED_ */
