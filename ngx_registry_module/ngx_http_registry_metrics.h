
/*
 * Copyright (C) ngx_registry_module authors
 */


#ifndef _NGX_HTTP_REGISTRY_METRICS_H_INCLUDED_
#define _NGX_HTTP_REGISTRY_METRICS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


/* counters shared by all workers, kept across reloads */

typedef struct {
    ngx_atomic_t               digest_mismatches;
} ngx_http_registry_counters_t;


extern ngx_http_registry_counters_t  *ngx_http_registry_counters;


#endif /* _NGX_HTTP_REGISTRY_METRICS_H_INCLUDED_ */
