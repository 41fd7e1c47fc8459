
/*
 * Copyright (C) ngx_registry_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_registry.h"
#include "ngx_http_registry_zone.h"
#include "ngx_http_registry_response.h"
#include "ngx_http_registry_answer.h"
#include "ngx_http_registry_metrics.h"


/*
 * What the mirror counts, and the two answers made of it (README.md,
 * Monitoring): each registry's counters live in the shared zone under its
 * name, so every worker adds to the same ones, and a reload (which keeps
 * the zone) finds them again whatever the order of the registries; a
 * restart makes a new zone.  A request is counted once, in the log
 * phase, with what every upstream attempt it made (tag checks, token
 * retries, redirects, failovers) received; the steps count their own
 * events (fills, tokens, redirects, authorisations) as they happen.
 */


typedef struct {
    u_char                        *pos;
    u_char                        *last;
} ngx_http_registry_out_t;


typedef struct {
    ngx_list_part_t               *part;    /* NULL: from the start */
    ngx_uint_t                     i;
} ngx_http_registry_zones_t;


static ngx_uint_t ngx_http_registry_stat_cache(ngx_str_t *status);
static void ngx_http_registry_metrics_caches(ngx_http_registry_out_t *o,
    ngx_pool_t *pool);
static void ngx_http_registry_metrics_zone(ngx_http_registry_out_t *o,
    ngx_str_t *name, ngx_slab_pool_t *shpool, ngx_uint_t which);
static ngx_int_t ngx_http_registry_metrics_send(ngx_http_request_t *r,
    ngx_uint_t status, ngx_str_t *type, ngx_http_registry_out_t *o,
    u_char *start);
static ngx_uint_t ngx_http_registry_cache_writable(ngx_http_request_t *r,
    ngx_path_t *path);
static ngx_int_t ngx_http_registry_out_start(ngx_http_request_t *r,
    size_t per_registry, size_t per_zone, ngx_http_registry_out_t *o);
static ngx_str_t *ngx_http_registry_label(ngx_pool_t *pool, ngx_str_t *s);
static ngx_shm_zone_t *ngx_http_registry_next_zone(
    ngx_http_registry_zones_t *it, ngx_uint_t caches);


extern ngx_module_t  ngx_http_proxy_module;


static char  *ngx_http_registry_stat_kinds[] = {
    "manifest", "blob", "tags", "referrers"
};

static char  *ngx_http_registry_stat_caches[] = {
    "hit", "miss", "expired", "stale", "updating", "revalidated", "bypass",
    "none"
};

static char  *ngx_http_registry_stat_classes[] = {
    "1xx", "2xx", "3xx", "4xx", "5xx", "429", "error"
};


/* the families of one counter (or gauge) per registry and label value */

typedef struct {
    char                          *name;
    char                          *type;
    char                          *help;
    char                          *label;     /* ",source=\"cache\"", ... */
    size_t                         offset;
} ngx_http_registry_family_t;


#define ngx_http_registry_stat_offset(f)                                      \
    offsetof(ngx_http_registry_stats_t, f)

static ngx_http_registry_family_t  ngx_http_registry_families[] = {

    { "nginx_registry_sent_bytes_total", "counter",
      "Body bytes sent to clients, from the cache or as fetched upstream.",
      ",source=\"cache\"", ngx_http_registry_stat_offset(sent_cache) },
    { "nginx_registry_sent_bytes_total", NULL, NULL,
      ",source=\"upstream\"", ngx_http_registry_stat_offset(sent_upstream) },

    { "nginx_registry_upstream_received_bytes_total", "counter",
      "Bytes received from upstreams (headers and bodies).",
      "", ngx_http_registry_stat_offset(received) },

    { "nginx_registry_fills_total", "counter",
      "Blob and manifest fills checked against their digest.",
      ",result=\"verified\"", ngx_http_registry_stat_offset(fills_verified) },
    { "nginx_registry_fills_total", NULL, NULL,
      ",result=\"mismatch\"", ngx_http_registry_stat_offset(fills_mismatch) },

    { "nginx_registry_token_fetches_total", "counter",
      "Upstream token fetches.",
      ",result=\"ok\"", ngx_http_registry_stat_offset(tokens_ok) },
    { "nginx_registry_token_fetches_total", NULL, NULL,
      ",result=\"failed\"", ngx_http_registry_stat_offset(tokens_failed) },

    { "nginx_registry_redirects_total", "counter",
      "Upstream redirects followed, and refused by the address policy.",
      ",result=\"followed\"",
      ngx_http_registry_stat_offset(redirects_followed) },
    { "nginx_registry_redirects_total", NULL, NULL,
      ",result=\"refused\"", ngx_http_registry_stat_offset(redirects_refused) },

    { "nginx_registry_auth_decisions_total", "counter",
      "What clients' own credentials may read (auth=client), as decided.",
      ",decision=\"allowed\"", ngx_http_registry_stat_offset(auth_allowed) },
    { "nginx_registry_auth_decisions_total", NULL, NULL,
      ",decision=\"denied\"", ngx_http_registry_stat_offset(auth_denied) },

    { "nginx_registry_upstream_last_success_timestamp_seconds", "gauge",
      "When an upstream last answered below 500 (and not 429); 0: never.",
      "", ngx_http_registry_stat_offset(last_success) },

    { "nginx_registry_upstream_last_failure_timestamp_seconds", "gauge",
      "When an upstream last failed (no answer, 5xx, 429); 0: never.",
      "", ngx_http_registry_stat_offset(last_failure) },

    { NULL, NULL, NULL, NULL, 0 }
};


#define NGX_HTTP_REGISTRY_STALE_NOW  60     /* s: "served stale now" */
#define NGX_HTTP_REGISTRY_CACHE_FULL 90     /* %: degraded from here */


/* in the master, once the zone is made: each registry's counters */

ngx_int_t
ngx_http_registry_metrics_init(ngx_cycle_t *cycle)
{
    u_char                         *p;
    ngx_str_t                       name;
    ngx_uint_t                      i;
    ngx_http_registry_t            *reg;
    ngx_http_registry_main_conf_t  *rmcf;

    rmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_registry_module);

    if (rmcf == NULL || rmcf->zone == NULL || !rmcf->counters) {
        return NGX_OK;
    }

    reg = rmcf->registries.elts;

    for (i = 0; i < rmcf->registries.nelts; i++) {
        p = ngx_pnalloc(cycle->pool, sizeof("stats ") - 1 + reg[i].name.len);
        if (p == NULL) {
            return NGX_ERROR;
        }

        name.data = p;
        name.len = ngx_sprintf(p, "stats %V", &reg[i].name) - p;

        reg[i].stats = ngx_http_registry_zone_block(rmcf->zone, &name,
                                            sizeof(ngx_http_registry_stats_t));

        if (reg[i].stats == NULL) {
            ngx_log_error(NGX_LOG_WARN, cycle->log, 0,
                          "registry: no room in the shared zone for the "
                          "counters of \"%V\": it is not counted",
                          &reg[i].name);
        }
    }

    return NGX_OK;
}


/* the log phase: the request, its bytes, its upstream attempts */

ngx_int_t
ngx_http_registry_metrics_log_handler(ngx_http_request_t *r)
{
    off_t                       body;
    time_t                      now;
    ngx_uint_t                  i, kind, class;
    ngx_str_t                  *status;
    ngx_http_upstream_state_t  *state;
    ngx_http_registry_ctx_t    *ctx;
    ngx_http_registry_stats_t  *st;

    ctx = ngx_http_get_module_ctx(r, ngx_http_registry_module);

    if (r != r->main || ctx == NULL || ctx->registry == NULL
        || ctx->registry->stats == NULL
        || ctx->endpoint < NGX_HTTP_REGISTRY_MANIFEST
        || ctx->endpoint > NGX_HTTP_REGISTRY_REFERRERS)
    {
        return NGX_OK;
    }

    st = ctx->registry->stats;
    kind = ctx->endpoint - NGX_HTTP_REGISTRY_MANIFEST;
    status = ngx_http_registry_cache_status(r);

    (void) ngx_atomic_fetch_add(
                     &st->requests[kind][ngx_http_registry_stat_cache(status)],
                     1);

    /* content: a 200 or 206 the proxy answered, never the mirror's errors */

    body = r->connection->sent - r->header_size;

    if (body > 0 && r->upstream
        && (r->headers_out.status == NGX_HTTP_OK
            || r->headers_out.status == NGX_HTTP_PARTIAL_CONTENT))
    {
        (void) ngx_atomic_fetch_add(r->cached ? &st->sent_cache
                                              : &st->sent_upstream,
                                    body);
    }

    now = ngx_time();

    if (status && status->len == 5
        && ngx_strncmp(status->data, "STALE", 5) == 0)
    {
        st->last_stale = now;
    }

    if (r->upstream_states == NULL) {
        return NGX_OK;
    }

    state = r->upstream_states->elts;

    for (i = 0; i < r->upstream_states->nelts; i++) {

        if (state[i].peer == NULL) {
            continue;           /* a separator, or no upstream was asked */
        }

        /* the client went away before the answer: says nothing of it */

        if (r->connection->error && i == r->upstream_states->nelts - 1
            && state[i].status == 0)
        {
            continue;
        }

        (void) ngx_atomic_fetch_add(&st->received, state[i].bytes_received);

        if (state[i].header_time == (ngx_msec_t) -1 || state[i].status == 0)
        {
            class = 6;

        } else if (state[i].status == NGX_HTTP_TOO_MANY_REQUESTS) {
            class = 5;

        } else if (state[i].status >= 100 && state[i].status < 600) {
            class = state[i].status / 100 - 1;

        } else {
            class = 6;
        }

        (void) ngx_atomic_fetch_add(&st->upstream[class], 1);

        /*
         * A loop (508) says nothing of the upstream's health: a client's
         * own CDN-Loop can make one.  No answer: status 0, whatever nginx
         * set for the failure.
         */

        if (state[i].status == NGX_HTTP_REGISTRY_LOOP_DETECTED) {
            continue;
        }

        if (class == 4 || class == 5 || class == 6) {
            st->last_failure = now;
            st->last_failure_status = (class == 6) ? 0 : state[i].status;
            st->failing = 1;

        } else {
            st->last_success = now;
            st->last_success_status = state[i].status;
            st->failing = 0;
        }
    }

    return NGX_OK;
}


static ngx_uint_t
ngx_http_registry_stat_cache(ngx_str_t *status)
{
    ngx_uint_t  i;

    if (status == NULL) {
        return NGX_HTTP_REGISTRY_STAT_CACHE - 1;
    }

    for (i = 0; i < NGX_HTTP_REGISTRY_STAT_CACHE - 1; i++) {
        if (status->len == ngx_strlen(ngx_http_registry_stat_caches[i])
            && ngx_strncasecmp(status->data,
                               (u_char *) ngx_http_registry_stat_caches[i],
                               status->len)
               == 0)
        {
            return i;
        }
    }

    return NGX_HTTP_REGISTRY_STAT_CACHE - 1;
}


/* "registry_metrics": the Prometheus text exposition format, 0.0.4 */

ngx_int_t
ngx_http_registry_metrics_handler(ngx_http_request_t *r)
{
    u_char                         *start;
    ngx_int_t                       rc;
    ngx_uint_t                      i, k, c;
    ngx_atomic_t                   *v;
    ngx_http_registry_t            *reg;
    ngx_http_registry_stats_t      *st, zero;
    ngx_http_registry_out_t         o;
    ngx_http_registry_family_t     *f;
    ngx_http_registry_main_conf_t  *rmcf;

    static ngx_str_t  type = ngx_string("text/plain; version=0.0.4");

    rc = ngx_http_registry_out_start(r, 8192, 1024, &o);
    if (rc != NGX_OK) {
        return rc;
    }

    start = o.pos;
    rmcf = ngx_http_get_module_main_conf(r, ngx_http_registry_module);

    reg = rmcf->registries.elts;
    ngx_memzero(&zero, sizeof(ngx_http_registry_stats_t));

    /* each family's lines together, as the format wants */

    o.pos = ngx_slprintf(o.pos, o.last,
        "# HELP nginx_registry_requests_total Requests answered, by "
        "registry, kind and cache status.\n"
        "# TYPE nginx_registry_requests_total counter\n");

    for (i = 0; i < rmcf->registries.nelts; i++) {
        st = reg[i].stats ? reg[i].stats : &zero;

        for (k = 0; k < NGX_HTTP_REGISTRY_STAT_KINDS; k++) {
            for (c = 0; c < NGX_HTTP_REGISTRY_STAT_CACHE; c++) {
                o.pos = ngx_slprintf(o.pos, o.last,
                            "nginx_registry_requests_total{registry=\"%V\","
                            "kind=\"%s\",cache=\"%s\"} %uA\n",
                            &reg[i].name, ngx_http_registry_stat_kinds[k],
                            ngx_http_registry_stat_caches[c],
                            st->requests[k][c]);
            }
        }
    }

    o.pos = ngx_slprintf(o.pos, o.last,
        "# HELP nginx_registry_upstream_responses_total Upstream answers "
        "(registries, redirect targets), by status class; error: none.\n"
        "# TYPE nginx_registry_upstream_responses_total counter\n");

    for (i = 0; i < rmcf->registries.nelts; i++) {
        st = reg[i].stats ? reg[i].stats : &zero;

        for (c = 0; c < NGX_HTTP_REGISTRY_STAT_CLASSES; c++) {
            o.pos = ngx_slprintf(o.pos, o.last,
                                 "nginx_registry_upstream_responses_total"
                                 "{registry=\"%V\",status=\"%s\"} %uA\n",
                                 &reg[i].name,
                                 ngx_http_registry_stat_classes[c],
                                 st->upstream[c]);
        }
    }

    for (f = ngx_http_registry_families; f->name; f++) {

        if (f->help) {
            o.pos = ngx_slprintf(o.pos, o.last, "# HELP %s %s\n# TYPE %s %s\n",
                                 f->name, f->help, f->name, f->type);
        }

        for (i = 0; i < rmcf->registries.nelts; i++) {
            st = reg[i].stats ? reg[i].stats : &zero;
            v = (ngx_atomic_t *) ((u_char *) st + f->offset);

            o.pos = ngx_slprintf(o.pos, o.last, "%s{registry=\"%V\"%s} %uA\n",
                                 f->name, &reg[i].name, f->label, *v);
        }
    }

    ngx_http_registry_metrics_caches(&o, r->pool);

    if (o.pos == o.last) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;   /* cannot happen */
    }

    return ngx_http_registry_metrics_send(r, NGX_HTTP_OK, &type, &o, start);
}


/*
 * The caches (proxy_cache_path zones) and the shared zones: size and
 * use.  A cache without max_size has no max_size line.
 */

static void
ngx_http_registry_metrics_caches(ngx_http_registry_out_t *o,
    ngx_pool_t *pool)
{
    ngx_str_t                      *label;
    ngx_uint_t                      which;
    ngx_http_registry_zones_t       it;
    ngx_shm_zone_t                 *shm;
    ngx_http_file_cache_t          *cache;
    ngx_http_registry_main_conf_t  *rmcf;

    for (which = 0; which < 4; which++) {

        switch (which) {
        case 0:
            o->pos = ngx_slprintf(o->pos, o->last,
                "# HELP nginx_registry_cache_size_bytes What a cache "
                "(proxy_cache_path) holds on disk.\n"
                "# TYPE nginx_registry_cache_size_bytes gauge\n");
            break;
        case 1:
            o->pos = ngx_slprintf(o->pos, o->last,
                "# HELP nginx_registry_cache_max_size_bytes A cache's "
                "max_size.\n"
                "# TYPE nginx_registry_cache_max_size_bytes gauge\n");
            break;
        case 2:
            o->pos = ngx_slprintf(o->pos, o->last,
                "# HELP nginx_registry_zone_size_bytes A shared memory "
                "zone's size.\n"
                "# TYPE nginx_registry_zone_size_bytes gauge\n");
            break;
        default:
            o->pos = ngx_slprintf(o->pos, o->last,
                "# HELP nginx_registry_zone_used_bytes A shared memory "
                "zone's pages in use.\n"
                "# TYPE nginx_registry_zone_used_bytes gauge\n");
        }

        it.part = NULL;

        while ((shm = ngx_http_registry_next_zone(&it, 1)) != NULL) {

            cache = shm->data;

            label = ngx_http_registry_label(pool, &shm->shm.name);
            if (label == NULL) {
                continue;
            }

            if (which == 0) {
                o->pos = ngx_slprintf(o->pos, o->last,
                             "nginx_registry_cache_size_bytes{cache=\"%V\"} "
                             "%O\n", label,
                             cache->sh->size * (off_t) cache->bsize);

            } else if (which == 1) {
                if (cache->max_size
                    < NGX_MAX_OFF_T_VALUE / (off_t) cache->bsize)
                {
                    o->pos = ngx_slprintf(o->pos, o->last,
                             "nginx_registry_cache_max_size_bytes"
                             "{cache=\"%V\"} %O\n", label,
                             cache->max_size * (off_t) cache->bsize);
                }

            } else {
                ngx_http_registry_metrics_zone(o, label, cache->shpool,
                                               which);
            }
        }

        if (which >= 2) {
            rmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                                    ngx_http_registry_module);

            if (rmcf && rmcf->zone) {
                ngx_http_registry_metrics_zone(o, &rmcf->zone->shm.name,
                                               (ngx_slab_pool_t *)
                                               rmcf->zone->shm.addr, which);
            }
        }
    }
}


static void
ngx_http_registry_metrics_zone(ngx_http_registry_out_t *o, ngx_str_t *name,
    ngx_slab_pool_t *shpool, ngx_uint_t which)
{
    size_t  size, used;

    ngx_http_registry_zone_use(shpool, &size, &used);

    o->pos = ngx_slprintf(o->pos, o->last,
                          "nginx_registry_zone_%s_bytes{zone=\"%V\"} %uz\n",
                          which == 2 ? "size" : "used", name,
                          which == 2 ? size : used);
}


/*
 * "registry_health": ok, degraded (200) or down (503), as README.md
 * (Monitoring) defines them, with what decided it.
 */

ngx_int_t
ngx_http_registry_health_handler(ngx_http_request_t *r)
{
    u_char                         *start;
    size_t                          size, zsize, zused;
    time_t                          now;
    ngx_int_t                       rc;
    ngx_str_t                      *label;
    ngx_uint_t                      i, state, failing, stale, first, writable;
    ngx_http_registry_zones_t       it;
    ngx_shm_zone_t                 *shm;
    ngx_http_registry_t            *reg;
    ngx_http_file_cache_t          *cache;
    ngx_http_registry_out_t         o;
    ngx_http_registry_stats_t      *st, zero;
    ngx_http_registry_counters_t   *counters;
    ngx_http_registry_main_conf_t  *rmcf;
    off_t                           csize, cmax;

    static ngx_str_t  type = ngx_string("application/json");
    static char      *states[] = { "ok", "degraded", "down" };

    rc = ngx_http_registry_out_start(r, 512, 256, &o);
    if (rc != NGX_OK) {
        return rc;
    }

    rmcf = ngx_http_get_module_main_conf(r, ngx_http_registry_module);

    /* the body after the status, which is known last: filled from 32 on */

    start = o.pos;
    o.pos += 32;

    now = ngx_time();
    state = 0;
    ngx_memzero(&zero, sizeof(ngx_http_registry_stats_t));

    o.pos = ngx_slprintf(o.pos, o.last, ",\"registries\":{");

    reg = rmcf->registries.elts;

    for (i = 0; i < rmcf->registries.nelts; i++) {
        st = reg[i].stats ? reg[i].stats : &zero;

        failing = st->failing;
        stale = st->last_stale
                && now - (time_t) st->last_stale < NGX_HTTP_REGISTRY_STALE_NOW;

        if (failing || stale) {
            state = 1;
        }

        o.pos = ngx_slprintf(o.pos, o.last,
                             "%s\"%V\":{\"failing\":%s,\"stale\":%s,"
                             "\"last_success\":{\"time\":%uA,\"status\":%uA},"
                             "\"last_failure\":{\"time\":%uA,\"status\":%uA}}",
                             i ? "," : "", &reg[i].name,
                             failing ? "true" : "false",
                             stale ? "true" : "false",
                             st->last_success, st->last_success_status,
                             st->last_failure, st->last_failure_status);
    }

    o.pos = ngx_slprintf(o.pos, o.last, "},\"caches\":{");

    it.part = NULL;
    first = 1;

    while ((shm = ngx_http_registry_next_zone(&it, 1)) != NULL) {

        cache = shm->data;
        label = ngx_http_registry_label(r->pool, &shm->shm.name);
        if (label == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        writable = ngx_http_registry_cache_writable(r, cache->path);
        csize = cache->sh->size * (off_t) cache->bsize;
        cmax = cache->max_size < NGX_MAX_OFF_T_VALUE / (off_t) cache->bsize
               ? cache->max_size * (off_t) cache->bsize : 0;

        if (!writable) {
            state = 2;

        } else if (cmax
                   && csize * 100 >= cmax * NGX_HTTP_REGISTRY_CACHE_FULL
                   && state == 0)
        {
            state = 1;
        }

        o.pos = ngx_slprintf(o.pos, o.last,
                             "%s\"%V\":{\"size\":%O,\"max_size\":%O,"
                             "\"writable\":%s}",
                             first ? "" : ",", label, csize, cmax,
                             writable ? "true" : "false");
        first = 0;
    }

    o.pos = ngx_slprintf(o.pos, o.last, "}");

    if (rmcf->zone) {
        ngx_http_registry_zone_use((ngx_slab_pool_t *) rmcf->zone->shm.addr,
                                   &zsize, &zused);

        counters = ngx_http_registry_zone_counters(rmcf->zone);

        /*
         * A record that found no room even after evicting: the zone is
         * exhausted.  Degraded, not down: the mirror serves on without
         * the record (a token or tag map entry costs one more upstream
         * request), and a zone a client could fill must not take the
         * node out of a load balancer.
         */

        if (counters->full
            && now - (time_t) counters->full < NGX_HTTP_REGISTRY_STALE_NOW
            && state == 0)
        {
            state = 1;
        }

        o.pos = ngx_slprintf(o.pos, o.last,
                             ",\"zone\":{\"size\":%uz,\"used\":%uz,"
                             "\"full\":%uA}", zsize, zused, counters->full);
    }

    o.pos = ngx_slprintf(o.pos, o.last, "}\n");

    if (o.pos == o.last) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;   /* cannot happen */
    }

    /* the head, right before the body */

    size = ngx_strlen(states[state]) + sizeof("{\"status\":\"\"") - 1;
    start += 32 - size;
    ngx_sprintf(start, "{\"status\":\"%s\"", states[state]);

    return ngx_http_registry_metrics_send(r, state == 2
                                     ? NGX_HTTP_SERVICE_UNAVAILABLE
                                     : NGX_HTTP_OK,
                                  &type, &o, start);
}


/* a file made and removed in the cache folder: it can be written */

static ngx_uint_t
ngx_http_registry_cache_writable(ngx_http_request_t *r, ngx_path_t *path)
{
    u_char    *name;
    ngx_fd_t   fd;

    name = ngx_pnalloc(r->pool, path->name.len
                                + sizeof("/.registry-health-") + NGX_INT_T_LEN);
    if (name == NULL) {
        return 0;
    }

    ngx_sprintf(name, "%V/.registry-health-%P%Z", &path->name, ngx_pid);

    /* made anew, never through a link someone left there */

    (void) ngx_delete_file(name);

    fd = ngx_open_file(name, NGX_FILE_WRONLY|NGX_FILE_NOFOLLOW,
                       NGX_FILE_CREATE_OR_OPEN|O_EXCL, NGX_FILE_DEFAULT_ACCESS);

    if (fd == NGX_INVALID_FILE) {
        return 0;
    }

    (void) ngx_close_file(fd);
    (void) ngx_delete_file(name);

    return 1;
}


static ngx_int_t
ngx_http_registry_metrics_send(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *type, ngx_http_registry_out_t *o, u_char *start)
{
    ngx_str_t  body;

    body.data = start;
    body.len = o->pos - start;

    return ngx_http_registry_send_body(r, status, type, &body);
}


/*
 * A GET or HEAD, its body dropped, and room for the answer: each
 * registry's lines, and each shared zone's (caches included) with its
 * name escaped, at most twice as long.
 */

static ngx_int_t
ngx_http_registry_out_start(ngx_http_request_t *r, size_t per_registry,
    size_t per_zone, ngx_http_registry_out_t *o)
{
    size_t                          size;
    ngx_int_t                       rc;
    ngx_uint_t                      i;
    ngx_shm_zone_t                 *shm;
    ngx_http_registry_t            *reg;
    ngx_http_registry_zones_t       it;
    ngx_http_registry_main_conf_t  *rmcf;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    rmcf = ngx_http_get_module_main_conf(r, ngx_http_registry_module);

    size = 4096;
    reg = rmcf->registries.elts;

    for (i = 0; i < rmcf->registries.nelts; i++) {
        size += per_registry + 64 * reg[i].name.len;
    }

    it.part = NULL;

    while ((shm = ngx_http_registry_next_zone(&it, 0)) != NULL) {
        size += per_zone + 8 * shm->shm.name.len;
    }

    o->pos = ngx_pnalloc(r->pool, size);
    if (o->pos == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    o->last = o->pos + size;

    return NGX_OK;
}


/*
 * A zone's name (the operator's, any bytes) as a Prometheus label value
 * and a JSON string: "\" and the quote escaped, a newline as "\n", other
 * control bytes as "?".
 */

static ngx_str_t *
ngx_http_registry_label(ngx_pool_t *pool, ngx_str_t *s)
{
    u_char     *p;
    size_t      i;
    ngx_str_t  *out;

    out = ngx_palloc(pool, sizeof(ngx_str_t));
    if (out == NULL) {
        return NULL;
    }

    out->data = ngx_pnalloc(pool, 2 * s->len);
    if (out->data == NULL) {
        return NULL;
    }

    p = out->data;

    for (i = 0; i < s->len; i++) {
        switch (s->data[i]) {

        case '\\':
        case '"':
            *p++ = '\\';
            *p++ = s->data[i];
            break;

        case '\n':
            *p++ = '\\';
            *p++ = 'n';
            break;

        default:
            *p++ = (s->data[i] < 0x20 || s->data[i] == 0x7f)
                   ? '?' : s->data[i];
        }
    }

    out->len = p - out->data;

    return out;
}


/*
 * The shared memory zones of this cycle, one by one; with caches, only
 * the proxy caches (proxy_cache_path zones).  NULL after the last.
 */

static ngx_shm_zone_t *
ngx_http_registry_next_zone(ngx_http_registry_zones_t *it, ngx_uint_t caches)
{
    ngx_shm_zone_t  *shm;

    if (it->part == NULL) {
        it->part = (ngx_list_part_t *) &ngx_cycle->shared_memory.part;
        it->i = 0;
    }

    for ( ;; ) {

        if (it->i >= it->part->nelts) {
            if (it->part->next == NULL) {
                return NULL;
            }

            it->part = it->part->next;
            it->i = 0;
            continue;
        }

        shm = (ngx_shm_zone_t *) it->part->elts + it->i++;

        if (!caches || (shm->tag == &ngx_http_proxy_module && shm->data)) {
            return shm;
        }
    }
}
