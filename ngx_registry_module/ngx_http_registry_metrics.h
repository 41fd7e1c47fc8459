
/*
 * Copyright (C) ngx_registry_module authors
 */


#ifndef _NGX_HTTP_REGISTRY_METRICS_H_INCLUDED_
#define _NGX_HTTP_REGISTRY_METRICS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


ngx_int_t ngx_http_registry_metrics_init(ngx_cycle_t *cycle);
ngx_int_t ngx_http_registry_metrics_log_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_registry_metrics_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_registry_health_handler(ngx_http_request_t *r);


#endif /* _NGX_HTTP_REGISTRY_METRICS_H_INCLUDED_ */
