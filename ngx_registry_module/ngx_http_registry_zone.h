
/*
 * Copyright (C) ngx_registry_module authors
 */


#ifndef _NGX_HTTP_REGISTRY_ZONE_H_INCLUDED_
#define _NGX_HTTP_REGISTRY_ZONE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


/*
 * The kinds of records the module's shared zone keeps, each in its own
 * share of the zone (README.md, registry_zone).
 */

#define NGX_HTTP_REGISTRY_ZONE_TOKEN   0    /* upstream tokens */
#define NGX_HTTP_REGISTRY_ZONE_AUTHZ   1    /* client authorisation decisions */
#define NGX_HTTP_REGISTRY_ZONE_TAG     2    /* tag -> digest maps */
#define NGX_HTTP_REGISTRY_ZONE_FILL    3    /* fills in progress */
#define NGX_HTTP_REGISTRY_ZONE_KINDS   4

#define NGX_HTTP_REGISTRY_ZONE_SIZE    (16 * 1024 * 1024)


/* counters shared by all workers, kept across reloads */

typedef struct {
    ngx_atomic_t               digest_mismatches;
} ngx_http_registry_counters_t;


ngx_shm_zone_t *ngx_http_registry_zone_add(ngx_conf_t *cf, size_t size,
    void *tag);
ngx_http_registry_counters_t *ngx_http_registry_zone_counters(
    ngx_shm_zone_t *zone);
ngx_int_t ngx_http_registry_zone_get(ngx_shm_zone_t *zone, ngx_uint_t kind,
    ngx_str_t *key, ngx_pool_t *pool, ngx_str_t *value);
ngx_int_t ngx_http_registry_zone_set(ngx_shm_zone_t *zone, ngx_uint_t kind,
    ngx_str_t *key, ngx_str_t *value, time_t expires);


extern ngx_http_registry_counters_t  *ngx_http_registry_counters;


#endif /* _NGX_HTTP_REGISTRY_ZONE_H_INCLUDED_ */
