
/*
 * Copyright (C) ngx_registry_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_registry_history.h"


/* placeholder until the history branch is merged: nothing is kept */

ngx_int_t
ngx_http_registry_history_seen(ngx_http_request_t *r, ngx_str_t *registry,
    ngx_str_t *repository, ngx_str_t *tag, ngx_str_t *accept,
    ngx_str_t *digest, ngx_str_t *media_type)
{
    return NGX_DECLINED;
}


ngx_int_t
ngx_http_registry_history_last(ngx_http_request_t *r, ngx_str_t *registry,
    ngx_str_t *repository, ngx_str_t *tag, ngx_str_t *accept,
    ngx_pool_t *pool, ngx_str_t *digest, ngx_str_t *media_type)
{
    return NGX_DECLINED;
}
