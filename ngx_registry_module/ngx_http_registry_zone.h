
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
#define NGX_HTTP_REGISTRY_ZONE_HISTORY 4    /* tag histories */
#define NGX_HTTP_REGISTRY_ZONE_PIN     5    /* immutable tags' digests */
#define NGX_HTTP_REGISTRY_ZONE_KINDS   6

#define NGX_HTTP_REGISTRY_ZONE_SIZE    (16 * 1024 * 1024)


/* counters shared by all workers, kept across reloads */

typedef struct {
    ngx_atomic_t               digest_mismatches;
    ngx_atomic_t               full;    /* when a record last found no
                                           room, even after evicting */
} ngx_http_registry_counters_t;


/*
 * Called under the zone's lock with a record's value (NULL when there is
 * none), which it may change in place; NGX_AGAIN: keep *value instead.
 */
typedef ngx_int_t (*ngx_http_registry_zone_update_pt)(ngx_str_t *old,
    ngx_str_t *value, void *data);

/* called under the zone's lock for every record of a kind */
typedef ngx_int_t (*ngx_http_registry_zone_walk_pt)(ngx_str_t *key,
    ngx_str_t *value, void *data);


ngx_shm_zone_t *ngx_http_registry_zone_add(ngx_conf_t *cf, size_t size,
    void *tag);
ngx_http_registry_counters_t *ngx_http_registry_zone_counters(
    ngx_shm_zone_t *zone);
void *ngx_http_registry_zone_block(ngx_shm_zone_t *zone, ngx_str_t *name,
    size_t size);
void ngx_http_registry_zone_use(ngx_slab_pool_t *shpool, size_t *size,
    size_t *used);
ngx_int_t ngx_http_registry_zone_get(ngx_shm_zone_t *zone, ngx_uint_t kind,
    ngx_str_t *key, ngx_pool_t *pool, ngx_str_t *value);
ngx_int_t ngx_http_registry_zone_set(ngx_shm_zone_t *zone, ngx_uint_t kind,
    ngx_str_t *key, ngx_str_t *value, time_t expires);
ngx_int_t ngx_http_registry_zone_keep(ngx_shm_zone_t *zone, ngx_uint_t kind,
    ngx_str_t *key, ngx_str_t *value, ngx_pool_t *pool, ngx_str_t *kept);
ngx_int_t ngx_http_registry_zone_update(ngx_shm_zone_t *zone,
    ngx_uint_t kind, ngx_str_t *key, ngx_http_registry_zone_update_pt handler,
    void *data);
ngx_int_t ngx_http_registry_zone_walk(ngx_shm_zone_t *zone, ngx_uint_t kind,
    ngx_http_registry_zone_walk_pt handler, void *data);
size_t ngx_http_registry_zone_share(ngx_shm_zone_t *zone, ngx_uint_t kind);
ngx_uint_t ngx_http_registry_zone_fresh(ngx_shm_zone_t *zone);


extern ngx_http_registry_counters_t  *ngx_http_registry_counters;


#endif /* _NGX_HTTP_REGISTRY_ZONE_H_INCLUDED_ */
