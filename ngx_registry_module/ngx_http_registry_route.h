
/*
 * Copyright (C) ngx_registry_module authors
 */


#ifndef _NGX_HTTP_REGISTRY_ROUTE_H_INCLUDED_
#define _NGX_HTTP_REGISTRY_ROUTE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_registry.h"


ngx_int_t ngx_http_registry_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_registry_answer_handler(ngx_http_request_t *r);


#endif /* _NGX_HTTP_REGISTRY_ROUTE_H_INCLUDED_ */
