
/*
 * Copyright (C) ngx_registry_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_http_registry_metrics.h"


#define NGX_HTTP_REGISTRY_METRICS_SIZE  (64 * 1024)


static ngx_int_t ngx_http_registry_metrics_init_zone(ngx_shm_zone_t *zone,
    void *data);


ngx_http_registry_counters_t  *ngx_http_registry_counters;


ngx_int_t
ngx_http_registry_metrics_zone(ngx_conf_t *cf, void *tag)
{
    ngx_str_t        name = ngx_string("ngx_http_registry_metrics");
    ngx_shm_zone_t  *zone;

    zone = ngx_shared_memory_add(cf, &name, NGX_HTTP_REGISTRY_METRICS_SIZE,
                                 tag);
    if (zone == NULL) {
        return NGX_ERROR;
    }

    zone->init = ngx_http_registry_metrics_init_zone;
    zone->data = (void *) 1;

    return NGX_OK;
}


/* on reload the old zone's counters are reused, so counts survive it */

static ngx_int_t
ngx_http_registry_metrics_init_zone(ngx_shm_zone_t *zone, void *data)
{
    ngx_slab_pool_t  *shpool;

    shpool = (ngx_slab_pool_t *) zone->shm.addr;

    if (data != NULL || zone->shm.exists) {
        ngx_http_registry_counters = shpool->data;
        return NGX_OK;
    }

    ngx_http_registry_counters = ngx_slab_calloc(shpool,
                                         sizeof(ngx_http_registry_counters_t));
    if (ngx_http_registry_counters == NULL) {
        return NGX_ERROR;
    }

    shpool->data = ngx_http_registry_counters;

    return NGX_OK;
}
