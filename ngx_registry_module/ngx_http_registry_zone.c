
/*
 * Copyright (C) ngx_registry_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_http_registry_zone.h"


/*
 * The module's one shared memory zone, shared by all workers and kept
 * across reloads: the counters, and records of a few kinds, each a string
 * key -> value with an expiry.  Each kind has its own rbtree (nginx's
 * string rbtree: equal hashes are told apart by the key), its own least
 * recently used queue and its own share of the zone, so one kind never
 * evicts another.  A kind over its share, or a zone too full or too
 * fragmented for a record, evicts that kind's oldest records; a record
 * that still does not fit is not kept, and nothing is logged: callers go
 * on without it.
 */


typedef struct {
    ngx_str_node_t             sn;          /* crc32 of the key, the key */
    ngx_queue_t                queue;
    time_t                     expires;
    size_t                     footprint;   /* counted against the share */
    size_t                     len;         /* of the value */
    u_char                     data[1];     /* key, then value */
} ngx_http_registry_record_t;


typedef struct {
    ngx_rbtree_t               rbtree;
    ngx_rbtree_node_t          sentinel;
    ngx_queue_t                queue;       /* most recently used first */
    size_t                     used;
} ngx_http_registry_zone_kind_t;


/* a named block of counters, found again by its name after a reload */

typedef struct ngx_http_registry_block_s  ngx_http_registry_block_t;

struct ngx_http_registry_block_s {
    ngx_http_registry_block_t     *next;
    size_t                         size;
    ngx_str_t                      name;    /* after the block */
    ngx_atomic_t                   block[1];
};


typedef struct {
    ngx_http_registry_counters_t   counters;
    ngx_http_registry_zone_kind_t  kinds[NGX_HTTP_REGISTRY_ZONE_KINDS];
    ngx_http_registry_block_t     *blocks;
} ngx_http_registry_zone_sh_t;


typedef struct {
    ngx_http_registry_zone_sh_t   *sh;
    ngx_slab_pool_t               *shpool;
    size_t                         quota[NGX_HTTP_REGISTRY_ZONE_KINDS];
    ngx_uint_t                     fresh;   /* made by this cycle */
} ngx_http_registry_zone_t;


static ngx_int_t ngx_http_registry_zone_init(ngx_shm_zone_t *zone,
    void *data);
static ngx_int_t ngx_http_registry_zone_copy(ngx_http_registry_record_t *rec,
    ngx_str_t *key, ngx_pool_t *pool, ngx_str_t *value);
static ngx_int_t ngx_http_registry_zone_set_locked(
    ngx_http_registry_zone_t *z, ngx_uint_t kind, ngx_str_t *key,
    uint32_t hash, ngx_str_t *value, time_t expires);
static void ngx_http_registry_zone_insert(ngx_http_registry_zone_kind_t *k,
    ngx_http_registry_record_t *rec, ngx_str_t *key, uint32_t hash,
    ngx_str_t *value, time_t expires, size_t footprint);
static void ngx_http_registry_zone_free(ngx_http_registry_zone_t *z,
    ngx_http_registry_zone_kind_t *k, ngx_http_registry_record_t *rec);
static size_t ngx_http_registry_zone_footprint(size_t size);


/*
 * Shares of the zone's pages, in percent, by kind; the rest is left for
 * the slab allocator's own rounding and partly used pages.
 */

static ngx_uint_t  ngx_http_registry_zone_shares[] = { 25, 15, 25, 10, 10, 5 };


/*
 * Each worker finds the counters in the zone at its start, and has none
 * when no registry is configured.
 */

ngx_http_registry_counters_t  *ngx_http_registry_counters;


ngx_shm_zone_t *
ngx_http_registry_zone_add(ngx_conf_t *cf, size_t size, void *tag)
{
    ngx_str_t                  name = ngx_string("ngx_http_registry");
    ngx_shm_zone_t            *zone;
    ngx_http_registry_zone_t  *z;

    z = ngx_pcalloc(cf->pool, sizeof(ngx_http_registry_zone_t));
    if (z == NULL) {
        return NULL;
    }

    zone = ngx_shared_memory_add(cf, &name, size, tag);
    if (zone == NULL) {
        return NULL;
    }

    zone->init = ngx_http_registry_zone_init;
    zone->data = z;

    return zone;
}


/* a reload with the same size finds the old zone, and all in it, again */

static ngx_int_t
ngx_http_registry_zone_init(ngx_shm_zone_t *zone, void *data)
{
    ngx_http_registry_zone_t *oz = data;

    size_t                     len, pages;
    ngx_uint_t                 i;
    ngx_http_registry_zone_t  *z;

    z = zone->data;
    z->shpool = (ngx_slab_pool_t *) zone->shm.addr;

    pages = (z->shpool->end - z->shpool->start) / ngx_pagesize;

    for (i = 0; i < NGX_HTTP_REGISTRY_ZONE_KINDS; i++) {
        /* rounded up: in the smallest zones each kind has a page */

        z->quota[i] = (pages * ngx_http_registry_zone_shares[i] + 99) / 100
                      * ngx_pagesize;
    }

    if (oz) {
        z->sh = oz->sh;
        return NGX_OK;
    }

    if (zone->shm.exists) {
        z->sh = z->shpool->data;
        return NGX_OK;
    }

    z->sh = ngx_slab_calloc(z->shpool, sizeof(ngx_http_registry_zone_sh_t));
    if (z->sh == NULL) {
        return NGX_ERROR;
    }

    z->shpool->data = z->sh;
    z->fresh = 1;

    for (i = 0; i < NGX_HTTP_REGISTRY_ZONE_KINDS; i++) {
        ngx_rbtree_init(&z->sh->kinds[i].rbtree, &z->sh->kinds[i].sentinel,
                        ngx_str_rbtree_insert_value);
        ngx_queue_init(&z->sh->kinds[i].queue);
    }

    len = sizeof(" in registry zone \"\"") + zone->shm.name.len;

    z->shpool->log_ctx = ngx_slab_alloc(z->shpool, len);
    if (z->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(z->shpool->log_ctx, " in registry zone \"%V\"%Z",
                &zone->shm.name);

    z->shpool->log_nomem = 0;

    return NGX_OK;
}


/*
 * A block of size bytes, zeroed when made, named: the same name finds the
 * same block at every configuration load, so counters kept under a
 * registry's name survive a reload that reorders or adds registries.
 * Called in the master; NULL when the zone has no room.
 */

void *
ngx_http_registry_zone_block(ngx_shm_zone_t *zone, ngx_str_t *name,
    size_t size)
{
    ngx_http_registry_zone_t   *z;
    ngx_http_registry_block_t  *b;

    z = zone->data;

    ngx_shmtx_lock(&z->shpool->mutex);

    for (b = z->sh->blocks; b; b = b->next) {
        if (b->size == size && b->name.len == name->len
            && ngx_memcmp(b->name.data, name->data, name->len) == 0)
        {
            goto done;
        }
    }

    b = ngx_slab_calloc_locked(z->shpool,
                               offsetof(ngx_http_registry_block_t, block)
                               + size + name->len);
    if (b == NULL) {
        goto done;
    }

    b->size = size;
    b->name.len = name->len;
    b->name.data = (u_char *) b->block + size;
    ngx_memcpy(b->name.data, name->data, name->len);

    b->next = z->sh->blocks;
    z->sh->blocks = b;

done:

    ngx_shmtx_unlock(&z->shpool->mutex);

    return b ? (void *) b->block : NULL;
}


/* the pages of a slab pool, and those in use, for the metrics */

void
ngx_http_registry_zone_use(ngx_slab_pool_t *shpool, size_t *size,
    size_t *used)
{
    size_t  pages;

    pages = (shpool->end - shpool->start) / ngx_pagesize;

    *size = pages * ngx_pagesize;
    *used = (pages - shpool->pfree) * ngx_pagesize;
}


ngx_http_registry_counters_t *
ngx_http_registry_zone_counters(ngx_shm_zone_t *zone)
{
    ngx_http_registry_zone_t  *z;

    z = zone->data;

    return &z->sh->counters;
}


/* a copy of the record's value, if there is one and it has not expired */

ngx_int_t
ngx_http_registry_zone_get(ngx_shm_zone_t *zone, ngx_uint_t kind,
    ngx_str_t *key, ngx_pool_t *pool, ngx_str_t *value)
{
    ngx_int_t                       rc;
    ngx_http_registry_zone_t       *z;
    ngx_http_registry_record_t     *rec;
    ngx_http_registry_zone_kind_t  *k;

    z = zone->data;
    k = &z->sh->kinds[kind];

    rc = NGX_DECLINED;

    ngx_shmtx_lock(&z->shpool->mutex);

    rec = (ngx_http_registry_record_t *)
              ngx_str_rbtree_lookup(&k->rbtree, key,
                                    ngx_crc32_short(key->data, key->len));

    if (rec && rec->expires <= ngx_time()) {
        ngx_http_registry_zone_free(z, k, rec);
        rec = NULL;
    }

    if (rec) {
        rc = ngx_http_registry_zone_copy(rec, key, pool, value);

        if (rc == NGX_OK) {
            ngx_queue_remove(&rec->queue);
            ngx_queue_insert_head(&k->queue, &rec->queue);
        }
    }

    ngx_shmtx_unlock(&z->shpool->mutex);

    return rc;
}


/* keeps value under key, replacing what was there; NGX_DECLINED: not kept */

ngx_int_t
ngx_http_registry_zone_set(ngx_shm_zone_t *zone, ngx_uint_t kind,
    ngx_str_t *key, ngx_str_t *value, time_t expires)
{
    uint32_t                     hash;
    ngx_int_t                    rc;
    ngx_http_registry_zone_t    *z;
    ngx_http_registry_record_t  *rec;

    z = zone->data;
    hash = ngx_crc32_short(key->data, key->len);

    ngx_shmtx_lock(&z->shpool->mutex);

    rec = (ngx_http_registry_record_t *)
              ngx_str_rbtree_lookup(&z->sh->kinds[kind].rbtree, key, hash);

    if (rec) {
        ngx_http_registry_zone_free(z, &z->sh->kinds[kind], rec);
    }

    rc = ngx_http_registry_zone_set_locked(z, kind, key, hash, value,
                                           expires);

    ngx_shmtx_unlock(&z->shpool->mutex);

    return rc;
}


/*
 * The first value kept under key wins, and stays: *kept is a copy of the
 * value kept, this one or the one there before.  Nothing is evicted for
 * it: NGX_DECLINED when the kind's share (or the zone) has no room.
 * For records nobody may push out, however many others come.
 */

ngx_int_t
ngx_http_registry_zone_keep(ngx_shm_zone_t *zone, ngx_uint_t kind,
    ngx_str_t *key, ngx_str_t *value, ngx_pool_t *pool, ngx_str_t *kept)
{
    size_t                          size, footprint;
    uint32_t                        hash;
    ngx_int_t                       rc;
    ngx_http_registry_zone_t       *z;
    ngx_http_registry_record_t     *rec;
    ngx_http_registry_zone_kind_t  *k;

    z = zone->data;
    k = &z->sh->kinds[kind];
    hash = ngx_crc32_short(key->data, key->len);
    size = offsetof(ngx_http_registry_record_t, data) + key->len + value->len;
    footprint = ngx_http_registry_zone_footprint(size);

    ngx_shmtx_lock(&z->shpool->mutex);

    rec = (ngx_http_registry_record_t *)
              ngx_str_rbtree_lookup(&k->rbtree, key, hash);

    if (rec == NULL && k->used + footprint <= z->quota[kind]) {
        rec = ngx_slab_alloc_locked(z->shpool, size);

        if (rec) {
            ngx_http_registry_zone_insert(k, rec, key, hash, value,
                                          NGX_MAX_TIME_T_VALUE, footprint);
        }
    }

    rc = NGX_DECLINED;

    if (rec) {
        rc = ngx_http_registry_zone_copy(rec, key, pool, kept);
    }

    ngx_shmtx_unlock(&z->shpool->mutex);

    return rc;
}


/*
 * A record read and changed under one hold of the lock, so that two
 * workers changing the same record never lose each other's change.  The
 * record never expires; it is the most recently used of its kind after.
 */

ngx_int_t
ngx_http_registry_zone_update(ngx_shm_zone_t *zone, ngx_uint_t kind,
    ngx_str_t *key, ngx_http_registry_zone_update_pt handler, void *data)
{
    uint32_t                        hash;
    ngx_int_t                       rc;
    ngx_str_t                       old, value;
    ngx_http_registry_zone_t       *z;
    ngx_http_registry_record_t     *rec;
    ngx_http_registry_zone_kind_t  *k;

    z = zone->data;
    k = &z->sh->kinds[kind];
    hash = ngx_crc32_short(key->data, key->len);

    ngx_shmtx_lock(&z->shpool->mutex);

    rec = (ngx_http_registry_record_t *)
              ngx_str_rbtree_lookup(&k->rbtree, key, hash);

    if (rec) {
        old.len = rec->len;
        old.data = rec->data + key->len;
    }

    rc = handler(rec ? &old : NULL, &value, data);

    if (rc == NGX_AGAIN) {
        if (rec) {
            ngx_http_registry_zone_free(z, k, rec);
        }

        rc = ngx_http_registry_zone_set_locked(z, kind, key, hash, &value,
                                               NGX_MAX_TIME_T_VALUE);

    } else if (rec) {
        ngx_queue_remove(&rec->queue);
        ngx_queue_insert_head(&k->queue, &rec->queue);
    }

    ngx_shmtx_unlock(&z->shpool->mutex);

    return rc;
}


/* least recently used first, so that a walk written out reads back so */

ngx_int_t
ngx_http_registry_zone_walk(ngx_shm_zone_t *zone, ngx_uint_t kind,
    ngx_http_registry_zone_walk_pt handler, void *data)
{
    ngx_int_t                       rc;
    ngx_str_t                       key, value;
    ngx_queue_t                    *q;
    ngx_http_registry_zone_t       *z;
    ngx_http_registry_record_t     *rec;
    ngx_http_registry_zone_kind_t  *k;

    z = zone->data;
    k = &z->sh->kinds[kind];
    rc = NGX_OK;

    ngx_shmtx_lock(&z->shpool->mutex);

    for (q = ngx_queue_last(&k->queue);
         q != ngx_queue_sentinel(&k->queue);
         q = ngx_queue_prev(q))
    {
        rec = ngx_queue_data(q, ngx_http_registry_record_t, queue);

        if (rec->expires <= ngx_time()) {
            continue;
        }

        key = rec->sn.str;
        value.len = rec->len;
        value.data = rec->data + key.len;

        rc = handler(&key, &value, data);
        if (rc != NGX_OK) {
            break;
        }
    }

    ngx_shmtx_unlock(&z->shpool->mutex);

    return rc;
}


size_t
ngx_http_registry_zone_share(ngx_shm_zone_t *zone, ngx_uint_t kind)
{
    ngx_http_registry_zone_t  *z;

    z = zone->data;

    return z->quota[kind];
}


/* the zone was made empty by this cycle: not kept from the one before */

ngx_uint_t
ngx_http_registry_zone_fresh(ngx_shm_zone_t *zone)
{
    ngx_http_registry_zone_t  *z;

    z = zone->data;

    return z->fresh;
}


/*
 * Keeps value under key, the lock held and no record under key.
 * NGX_DECLINED: it is not kept (larger than the kind's share, or no room
 * even after evicting the kind's own records, a bounded number of tries).
 */

static ngx_int_t
ngx_http_registry_zone_set_locked(ngx_http_registry_zone_t *z,
    ngx_uint_t kind, ngx_str_t *key, uint32_t hash, ngx_str_t *value,
    time_t expires)
{
    size_t                          size, footprint;
    ngx_uint_t                      i;
    ngx_http_registry_record_t     *rec;
    ngx_http_registry_zone_kind_t  *k;

    k = &z->sh->kinds[kind];

    size = offsetof(ngx_http_registry_record_t, data) + key->len + value->len;
    footprint = ngx_http_registry_zone_footprint(size);

    if (footprint > z->quota[kind]) {
        return NGX_DECLINED;
    }

    while (k->used + footprint > z->quota[kind]
           && !ngx_queue_empty(&k->queue))
    {
        rec = ngx_queue_data(ngx_queue_last(&k->queue),
                             ngx_http_registry_record_t, queue);
        ngx_http_registry_zone_free(z, k, rec);
    }

    for (i = 0; /* void */ ; i++) {
        rec = ngx_slab_alloc_locked(z->shpool, size);

        if (rec || i == 16 || ngx_queue_empty(&k->queue)) {
            break;
        }

        ngx_http_registry_zone_free(z, k,
                                    ngx_queue_data(ngx_queue_last(&k->queue),
                                                   ngx_http_registry_record_t,
                                                   queue));
    }

    if (rec == NULL) {
        z->sh->counters.full = ngx_time();
        return NGX_DECLINED;
    }

    ngx_http_registry_zone_insert(k, rec, key, hash, value, expires,
                                  footprint);

    return NGX_OK;
}


/* a new record, allocated, filled and made the kind's most recent */

static void
ngx_http_registry_zone_insert(ngx_http_registry_zone_kind_t *k,
    ngx_http_registry_record_t *rec, ngx_str_t *key, uint32_t hash,
    ngx_str_t *value, time_t expires, size_t footprint)
{
    rec->sn.node.key = hash;
    rec->sn.str.len = key->len;
    rec->sn.str.data = rec->data;
    rec->expires = expires;
    rec->footprint = footprint;
    rec->len = value->len;
    ngx_memcpy(rec->data, key->data, key->len);
    ngx_memcpy(rec->data + key->len, value->data, value->len);

    ngx_rbtree_insert(&k->rbtree, &rec->sn.node);
    ngx_queue_insert_head(&k->queue, &rec->queue);
    k->used += footprint;
}


static void
ngx_http_registry_zone_free(ngx_http_registry_zone_t *z,
    ngx_http_registry_zone_kind_t *k, ngx_http_registry_record_t *rec)
{
    ngx_queue_remove(&rec->queue);
    ngx_rbtree_delete(&k->rbtree, &rec->sn.node);
    k->used -= rec->footprint;
    ngx_slab_free_locked(z->shpool, rec);
}


/* what the slab allocator takes for size bytes: pages, or a power of 2 */

static size_t
ngx_http_registry_zone_footprint(size_t size)
{
    size_t  n;

    if (size > ngx_pagesize / 2) {
        return ngx_align(size, ngx_pagesize);
    }

    for (n = 8; n < size; n <<= 1) { /* void */ }

    return n;
}


/* a record's value, copied out of shared memory: called under the lock */

static ngx_int_t
ngx_http_registry_zone_copy(ngx_http_registry_record_t *rec, ngx_str_t *key,
    ngx_pool_t *pool, ngx_str_t *value)
{
    value->data = ngx_pnalloc(pool, rec->len);
    if (value->data == NULL) {
        return NGX_ERROR;
    }

    value->len = rec->len;
    ngx_memcpy(value->data, rec->data + key->len, rec->len);

    return NGX_OK;
}
