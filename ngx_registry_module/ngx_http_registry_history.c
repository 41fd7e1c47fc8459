
/*
 * Copyright (C) ngx_registry_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_registry.h"
#include "ngx_http_registry_accept.h"
#include "ngx_http_registry_zone.h"
#include "ngx_http_registry_response.h"
#include "ngx_http_registry_history.h"


/*
 * Tag history: every digest the mirror has served for a tag, with its
 * media type, the Accept it answered and the times first and last seen.
 *
 * In the shared zone (kind NGX_HTTP_REGISTRY_ZONE_HISTORY) one record a
 * tag, key "<registry> <repository> <tag>", value one line an entry,
 * oldest first:
 *
 *     <first> <last> <written> <digest> <media type> <accept>\n
 *
 * the times as ten digits, so that "last seen" is updated in place, with
 * no allocation, under the zone's lock.  <written> is when the entry was
 * last written to the journal.
 *
 * On disk, the journal: one line for each thing learnt, appended by the
 * workers through the file nginx's master opened (O_APPEND, so that
 * lines of several workers never mix):
 *
 *     <first> <last> <registry> <repository> <tag> <digest> <type> <accept>
 *
 * Lines of the same entry merge (the earliest first, the latest last).
 * It is read back when the zone is new (a start, or a reload that changes
 * the zone's size), and rewritten from the zone then, and whenever it
 * grows past four times the history's share of the zone.
 */


#define NGX_HTTP_REGISTRY_HISTORY_TIME  10
#define NGX_HTTP_REGISTRY_HISTORY_HEAD  (3 * (NGX_HTTP_REGISTRY_HISTORY_TIME \
                                              + 1))
#define NGX_HTTP_REGISTRY_HISTORY_LINE  4096

#define ngx_http_registry_history_eq(a, b)                                    \
    ((a)->len == (b)->len && ngx_strncmp((a)->data, (b)->data, (a)->len) == 0)


typedef struct {
    u_char                    *line;
    size_t                     len;         /* with its "\n" */
    time_t                     first;
    time_t                     last;
    time_t                     written;
    ngx_str_t                  digest;
    ngx_str_t                  type;
    ngx_str_t                  accept;
} ngx_http_registry_history_entry_t;


/* what an update of a tag's record is told, and tells back */

typedef struct {
    ngx_pool_t                *pool;
    ngx_uint_t                 entries;
    time_t                     first;
    time_t                     last;
    ngx_str_t                 *digest;
    ngx_str_t                 *type;
    ngx_str_t                 *accept;
    time_t                     write_first;   /* of the line to write */
    unsigned                   load:1;        /* a journal line read back */
    unsigned                   write:1;       /* a line is due */
} ngx_http_registry_history_update_t;


typedef struct {
    ngx_pool_t                *pool;
    u_char                    *start;
    u_char                    *pos;
    u_char                    *end;
    ngx_uint_t                 unwritten;   /* those entries only */
} ngx_http_registry_history_buf_t;


static ngx_int_t ngx_http_registry_history_entry(u_char **pos, u_char *last,
    ngx_http_registry_history_entry_t *e);
static ngx_http_registry_history_entry_t ngx_http_registry_history_victim(
    ngx_str_t *old, ngx_str_t *digest,
    ngx_http_registry_history_entry_t *oldest);
static ngx_int_t ngx_http_registry_history_update(ngx_str_t *old,
    ngx_str_t *value, void *data);
static ngx_int_t ngx_http_registry_history_key(ngx_pool_t *pool,
    ngx_str_t *registry, ngx_str_t *repository, ngx_str_t *tag,
    ngx_str_t *key);
static void ngx_http_registry_history_write(
    ngx_http_registry_main_conf_t *rmcf, ngx_log_t *log, ngx_str_t *key,
    ngx_http_registry_history_update_t *u);
static ngx_int_t ngx_http_registry_history_load(ngx_cycle_t *cycle,
    ngx_http_registry_main_conf_t *rmcf);
static ngx_int_t ngx_http_registry_history_line(ngx_cycle_t *cycle,
    ngx_http_registry_main_conf_t *rmcf, ngx_pool_t *pool, u_char *p,
    u_char *last, char **reason);
static ngx_int_t ngx_http_registry_history_compact(
    ngx_http_registry_main_conf_t *rmcf, ngx_log_t *log, ngx_uint_t start);
static ngx_int_t ngx_http_registry_history_dump(ngx_str_t *key,
    ngx_str_t *value, void *data);
static ngx_int_t ngx_http_registry_history_valid_name(u_char *p, size_t len);
static ngx_int_t ngx_http_registry_history_handler(ngx_http_request_t *r);


static ngx_str_t  ngx_http_registry_history_arg_registry =
    ngx_string("registry");
static ngx_str_t  ngx_http_registry_history_arg_repository =
    ngx_string("repository");
static ngx_str_t  ngx_http_registry_history_arg_tag = ngx_string("tag");


ngx_int_t
ngx_http_registry_history_seen(ngx_http_request_t *r, ngx_str_t *registry,
    ngx_str_t *repository, ngx_str_t *tag, ngx_str_t *accept,
    ngx_str_t *digest, ngx_str_t *media_type)
{
    ngx_int_t                            rc;
    ngx_str_t                            key;
    ngx_http_registry_main_conf_t       *rmcf;
    ngx_http_registry_history_update_t   u;

    rmcf = ngx_http_get_module_main_conf(r, ngx_http_registry_module);

    if (rmcf->history == NULL || rmcf->zone == NULL) {
        return NGX_DECLINED;
    }

    if (ngx_http_registry_history_key(r->pool, registry, repository, tag,
                                      &key)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_memzero(&u, sizeof(ngx_http_registry_history_update_t));

    u.pool = r->pool;
    u.entries = rmcf->history_entries;
    u.first = ngx_time();
    u.last = u.first;
    u.digest = digest;
    u.type = media_type;
    u.accept = accept;

    rc = ngx_http_registry_zone_update(rmcf->zone,
                                       NGX_HTTP_REGISTRY_ZONE_HISTORY, &key,
                                       ngx_http_registry_history_update, &u);
    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (u.write) {
        ngx_http_registry_history_write(rmcf, r->connection->log, &key, &u);
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_registry_history_last(ngx_http_request_t *r, ngx_str_t *registry,
    ngx_str_t *repository, ngx_str_t *tag, ngx_str_t *accept,
    ngx_pool_t *pool, ngx_str_t *digest, ngx_str_t *media_type)
{
    u_char                             *p, *last;
    ngx_int_t                           rc, found;
    ngx_str_t                           key, value;
    ngx_http_registry_main_conf_t      *rmcf;
    ngx_http_registry_history_entry_t   e, best;

    rmcf = ngx_http_get_module_main_conf(r, ngx_http_registry_module);

    if (rmcf->history == NULL || rmcf->zone == NULL) {
        return NGX_DECLINED;
    }

    if (ngx_http_registry_history_key(r->pool, registry, repository, tag,
                                      &key)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    rc = ngx_http_registry_zone_get(rmcf->zone,
                                    NGX_HTTP_REGISTRY_ZONE_HISTORY, &key,
                                    pool, &value);
    if (rc != NGX_OK) {
        return rc;
    }

    found = 0;
    p = value.data;
    last = p + value.len;

    /* the latest; of two seen in the same second, the one learnt later */

    while (ngx_http_registry_history_entry(&p, last, &e) == NGX_OK) {
        if (e.accept.len == accept->len
            && ngx_strncmp(e.accept.data, accept->data, accept->len) == 0
            && (!found || e.last >= best.last))
        {
            best = e;
            found = 1;
        }
    }

    if (!found) {
        return NGX_DECLINED;
    }

    *digest = best.digest;
    *media_type = best.type;

    return NGX_OK;
}


static ngx_int_t
ngx_http_registry_history_key(ngx_pool_t *pool, ngx_str_t *registry,
    ngx_str_t *repository, ngx_str_t *tag, ngx_str_t *key)
{
    key->len = registry->len + repository->len + tag->len + 2;

    key->data = ngx_pnalloc(pool, key->len);
    if (key->data == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(key->data, "%V %V %V", registry, repository, tag);

    return NGX_OK;
}


/* one entry of a record's value; NGX_DONE at its end */

static ngx_int_t
ngx_http_registry_history_entry(u_char **pos, u_char *last,
    ngx_http_registry_history_entry_t *e)
{
    u_char  *p, *nl, *sp;

    p = *pos;

    if (p == last) {
        return NGX_DONE;
    }

    nl = ngx_strlchr(p, last, '\n');

    if (nl == NULL || nl - p < NGX_HTTP_REGISTRY_HISTORY_HEAD) {
        return NGX_ERROR;
    }

    e->line = p;
    e->len = nl + 1 - p;
    e->first = ngx_atotm(p, NGX_HTTP_REGISTRY_HISTORY_TIME);
    e->last = ngx_atotm(p + NGX_HTTP_REGISTRY_HISTORY_TIME + 1,
                        NGX_HTTP_REGISTRY_HISTORY_TIME);
    e->written = ngx_atotm(p + 2 * (NGX_HTTP_REGISTRY_HISTORY_TIME + 1),
                           NGX_HTTP_REGISTRY_HISTORY_TIME);

    p += NGX_HTTP_REGISTRY_HISTORY_HEAD;

    sp = ngx_strlchr(p, nl, ' ');
    if (sp == NULL) {
        return NGX_ERROR;
    }

    e->digest.data = p;
    e->digest.len = sp - p;

    p = sp + 1;

    sp = ngx_strlchr(p, nl, ' ');
    if (sp == NULL) {
        return NGX_ERROR;
    }

    e->type.data = p;
    e->type.len = sp - p;

    e->accept.data = sp + 1;
    e->accept.len = nl - (sp + 1);

    *pos = nl + 1;

    return NGX_OK;
}


/*
 * The entry a full tag drops for a new one: the least recently seen of
 * those whose digest has another entry (the same digest answered to
 * another Accept list), so that clients asking with many Accept lists
 * never push a digest out of the history while others remain; only when
 * every digest has one entry, the least recently seen of all.  At most
 * "entries" entries (1024): a quadratic walk, under the lock, only when
 * a new entry comes in.
 */

static ngx_http_registry_history_entry_t
ngx_http_registry_history_victim(ngx_str_t *old, ngx_str_t *digest,
    ngx_http_registry_history_entry_t *oldest)
{
    u_char                             *p, *q, *last;
    ngx_uint_t                          dup, have;
    ngx_http_registry_history_entry_t   e, g, victim;

    victim = *oldest;
    have = 0;
    last = old->data + old->len;

    for (p = old->data;
         ngx_http_registry_history_entry(&p, last, &e) == NGX_OK;
         /* void */)
    {
        dup = ngx_http_registry_history_eq(&e.digest, digest);

        for (q = old->data;
             !dup && ngx_http_registry_history_entry(&q, last, &g) == NGX_OK;
             /* void */)
        {
            dup = (g.line != e.line
                   && ngx_http_registry_history_eq(&g.digest, &e.digest));
        }

        if (dup && (!have || e.last < victim.last)) {
            victim = e;
            have = 1;
        }
    }

    return victim;
}


/*
 * Under the zone's lock: a digest seen (or a journal line read back) for
 * a tag.  A known entry is changed in place; a new one makes a new value,
 * without the least recently seen entry when the tag has its fill.
 */

static ngx_int_t
ngx_http_registry_history_update(ngx_str_t *old, ngx_str_t *value,
    void *data)
{
    ngx_http_registry_history_update_t *u = data;

    u_char                             *p, *last;
    size_t                              len;
    ngx_int_t                           rc;
    ngx_uint_t                          n, found, other;
    time_t                              other_last;
    ngx_http_registry_history_entry_t   e, f, oldest;

    n = 0;
    found = 0;
    other = 0;
    other_last = 0;
    rc = NGX_DONE;
    ngx_memzero(&f, sizeof(ngx_http_registry_history_entry_t));
    ngx_memzero(&oldest, sizeof(ngx_http_registry_history_entry_t));

    if (old) {
        p = old->data;
        last = p + old->len;

        while ((rc = ngx_http_registry_history_entry(&p, last, &e))
               == NGX_OK)
        {
            if (n == 0 || e.last < oldest.last) {
                oldest = e;
            }

            n++;

            if (ngx_http_registry_history_eq(&e.digest, u->digest)
                && ngx_http_registry_history_eq(&e.type, u->type)
                && ngx_http_registry_history_eq(&e.accept, u->accept))
            {
                f = e;
                found = 1;
                continue;
            }

            if (ngx_http_registry_history_eq(&e.accept, u->accept)
                && (!other || e.last > other_last))
            {
                other = 1;
                other_last = e.last;
            }
        }
    }

    if (rc == NGX_ERROR) {
        /* never written so; start the tag afresh rather than stop */
        old = NULL;
        n = 0;
        found = 0;
    }

    if (found) {

        if (u->load) {
            if (u->first < f.first) {
                (void) ngx_sprintf(f.line, "%010T", u->first);
            }

            if (u->last > f.last) {
                (void) ngx_sprintf(f.line + NGX_HTTP_REGISTRY_HISTORY_TIME + 1,
                                   "%010T %010T", u->last, u->last);
            }

            return NGX_OK;
        }

        if (u->last > f.last) {
            (void) ngx_sprintf(f.line + NGX_HTTP_REGISTRY_HISTORY_TIME + 1,
                               "%010T", u->last);
        }

        /*
         * Written when the tag went back to this digest (after a restart
         * the latest must be it), or when "last seen" was last written an
         * interval ago.
         */

        if ((other && other_last >= f.last)
            || u->last - f.written >= NGX_HTTP_REGISTRY_HISTORY_INTERVAL)
        {
            (void) ngx_sprintf(f.line
                               + 2 * (NGX_HTTP_REGISTRY_HISTORY_TIME + 1),
                               "%010T", u->last);
            u->write = 1;
            u->write_first = f.first;
        }

        return NGX_OK;
    }

    if (u->load && n >= u->entries && u->last < oldest.last) {
        /* older than every entry the tag keeps */
        return NGX_OK;
    }

    if (old && n >= u->entries) {
        oldest = ngx_http_registry_history_victim(old, u->digest, &oldest);
    }

    len = NGX_HTTP_REGISTRY_HISTORY_HEAD + u->digest->len + 1 + u->type->len
          + 1 + u->accept->len + 1;

    if (old) {
        len += old->len;

        if (n >= u->entries) {
            len -= oldest.len;
        }
    }

    value->data = ngx_pnalloc(u->pool, len);
    if (value->data == NULL) {
        return NGX_ERROR;
    }

    p = value->data;

    if (old) {
        if (n >= u->entries) {
            p = ngx_cpymem(p, old->data, oldest.line - old->data);
            p = ngx_cpymem(p, oldest.line + oldest.len,
                           old->data + old->len - (oldest.line + oldest.len));

        } else {
            p = ngx_cpymem(p, old->data, old->len);
        }
    }

    p = ngx_sprintf(p, "%010T %010T %010T %V %V %V\n",
                    u->first, u->last, u->last, u->digest, u->type,
                    u->accept);

    value->len = p - value->data;

    if (!u->load) {
        u->write = 1;
        u->write_first = u->first;
    }

    return NGX_AGAIN;
}


/*
 * One journal line, appended in one write(): O_APPEND keeps each whole
 * however many workers write.  A journal grown past four times the
 * history's share is rewritten from the zone.
 */

static void
ngx_http_registry_history_write(ngx_http_registry_main_conf_t *rmcf,
    ngx_log_t *log, ngx_str_t *key, ngx_http_registry_history_update_t *u)
{
    u_char           *p;
    ssize_t           n;
    ngx_file_info_t   fi;
    u_char            line[NGX_HTTP_REGISTRY_HISTORY_LINE];

    if (2 * NGX_TIME_T_LEN + key->len + u->digest->len + u->type->len
        + u->accept->len + 6 > sizeof(line))
    {
        return;
    }

    p = ngx_sprintf(line, "%T %T %V %V %V %V\n", u->write_first, u->last,
                    key, u->digest, u->type, u->accept);

    n = ngx_write_fd(rmcf->history->fd, line, p - line);

    if (n != p - line) {
        ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                      "registry: tag history \"%V\" not written",
                      &rmcf->history->name);
        return;
    }

    if (ngx_fd_info(rmcf->history->fd, &fi) != NGX_FILE_ERROR
        && ngx_file_size(&fi)
           > (off_t) (4 * ngx_http_registry_zone_share(rmcf->zone,
                                              NGX_HTTP_REGISTRY_ZONE_HISTORY)))
    {
        (void) ngx_http_registry_history_compact(rmcf, log, 0);
    }
}


/*
 * A worker that exits writes what "last seen" the journal is behind on,
 * so that a stop or a restart loses none of it (a crash loses at most an
 * interval's).
 */

void
ngx_http_registry_history_exit(ngx_cycle_t *cycle)
{
    size_t                            len;
    ngx_pool_t                       *pool;
    ngx_http_registry_main_conf_t    *rmcf;
    ngx_http_registry_history_buf_t   b;

    rmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_registry_module);

    if (rmcf == NULL || rmcf->history == NULL || rmcf->zone == NULL) {
        return;
    }

    pool = ngx_create_pool(NGX_DEFAULT_POOL_SIZE, cycle->log);
    if (pool == NULL) {
        return;
    }

    b.pool = pool;
    b.start = NULL;
    b.pos = NULL;
    b.end = NULL;
    b.unwritten = 1;

    if (ngx_http_registry_zone_walk(rmcf->zone,
                                    NGX_HTTP_REGISTRY_ZONE_HISTORY,
                                    ngx_http_registry_history_dump, &b)
        == NGX_OK)
    {
        len = b.pos - b.start;

        if (len && ngx_write_fd(rmcf->history->fd, b.start, len)
                   != (ssize_t) len)
        {
            ngx_log_error(NGX_LOG_ERR, cycle->log, ngx_errno,
                          "registry: tag history \"%V\" not written",
                          &rmcf->history->name);
        }
    }

    ngx_destroy_pool(pool);
}


/*
 * In the master, once the zones are made: a new zone (a start, or a
 * reload that changed the zone's size) is filled from the journal, which
 * is then rewritten from it.  A reload that keeps the zone reads nothing.
 */

ngx_int_t
ngx_http_registry_history_init(ngx_cycle_t *cycle)
{
    ngx_http_registry_main_conf_t  *rmcf;

    rmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_registry_module);

    if (ngx_test_config
        || rmcf == NULL
        || rmcf->history == NULL
        || rmcf->zone == NULL
        || !ngx_http_registry_zone_fresh(rmcf->zone))
    {
        return NGX_OK;
    }

    /* the journal is the operator's file: whatever it holds, nginx starts */

    if (ngx_http_registry_history_load(cycle, rmcf) == NGX_OK) {
        (void) ngx_http_registry_history_compact(rmcf, cycle->log, 1);
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_registry_history_load(ngx_cycle_t *cycle,
    ngx_http_registry_main_conf_t *rmcf)
{
    u_char      *buf, *p, *nl;
    char        *reason;
    size_t       len;
    ssize_t      n;
    ngx_fd_t     fd;
    ngx_int_t    rc;
    ngx_uint_t   line, skip, bad;
    ngx_pool_t  *pool, *temp;

    fd = ngx_open_file(rmcf->history->name.data, NGX_FILE_RDONLY,
                       NGX_FILE_OPEN, 0);

    if (fd == NGX_INVALID_FILE) {
        ngx_log_error(NGX_LOG_WARN, cycle->log, ngx_errno,
                      "registry: tag history \"%V\" not read: "
                      ngx_open_file_n " failed", &rmcf->history->name);
        return NGX_ERROR;
    }

    pool = ngx_create_pool(NGX_DEFAULT_POOL_SIZE, cycle->log);
    temp = ngx_create_pool(NGX_DEFAULT_POOL_SIZE, cycle->log);

    if (pool == NULL || temp == NULL) {
        rc = NGX_ERROR;
        goto done;
    }

    buf = ngx_pnalloc(pool, NGX_HTTP_REGISTRY_HISTORY_LINE);
    if (buf == NULL) {
        rc = NGX_ERROR;
        goto done;
    }

    len = 0;
    line = 0;
    skip = 0;
    bad = 0;

    for ( ;; ) {
        n = ngx_read_fd(fd, buf + len, NGX_HTTP_REGISTRY_HISTORY_LINE - len);

        if (n == -1) {
            ngx_log_error(NGX_LOG_WARN, cycle->log, ngx_errno,
                          "registry: tag history \"%V\" not read: "
                          ngx_read_fd_n " failed", &rmcf->history->name);
            rc = NGX_ERROR;
            goto done;
        }

        if (n == 0) {
            break;
        }

        len += n;
        p = buf;

        while ((nl = ngx_strlchr(p, buf + len, '\n')) != NULL) {
            line++;

            if (skip) {
                skip = 0;
                reason = "too long";
                rc = NGX_DECLINED;

            } else {
                rc = ngx_http_registry_history_line(cycle, rmcf, temp, p, nl,
                                                    &reason);
                ngx_reset_pool(temp);
            }

            if (rc == NGX_ERROR) {
                goto done;
            }

            if (rc == NGX_DECLINED && bad++ < 10) {
                ngx_log_error(NGX_LOG_WARN, cycle->log, 0,
                              "registry: tag history \"%V\", line %ui: %s, "
                              "skipped", &rmcf->history->name, line, reason);
            }

            p = nl + 1;
        }

        len = buf + len - p;
        ngx_memmove(buf, p, len);

        if (len == NGX_HTTP_REGISTRY_HISTORY_LINE) {
            skip = 1;
            len = 0;
        }
    }

    if (len || skip) {
        /* a line a crash cut short */
        bad++;
        ngx_log_error(NGX_LOG_WARN, cycle->log, 0,
                      "registry: tag history \"%V\", line %ui: not ended, "
                      "skipped", &rmcf->history->name, line + 1);
    }

    if (bad > 10) {
        ngx_log_error(NGX_LOG_WARN, cycle->log, 0,
                      "registry: tag history \"%V\": %ui lines skipped",
                      &rmcf->history->name, bad);
    }

    rc = NGX_OK;

done:

    if (pool) {
        ngx_destroy_pool(pool);
    }

    if (temp) {
        ngx_destroy_pool(temp);
    }

    if (ngx_close_file(fd) == NGX_FILE_ERROR) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, ngx_errno,
                      ngx_close_file_n " \"%V\" failed",
                      &rmcf->history->name);
    }

    return rc;
}


/*
 * "<first> <last> <registry> <repository> <tag> <digest> <type> <accept>",
 * every part checked as a request's would be: NGX_DECLINED and why, if
 * not.
 */

static ngx_int_t
ngx_http_registry_history_line(ngx_cycle_t *cycle,
    ngx_http_registry_main_conf_t *rmcf, ngx_pool_t *pool, u_char *p,
    u_char *last, char **reason)
{
    u_char                              *sp;
    ngx_str_t                            part[7], key, accept, *type;
    ngx_uint_t                           i;
    ngx_http_registry_history_update_t   u;
    u_char                               norm[NGX_HTTP_REGISTRY_ACCEPT_MAX];

    for (i = 0; i < 7; i++) {
        sp = ngx_strlchr(p, last, ' ');
        if (sp == NULL) {
            *reason = "too few fields";
            return NGX_DECLINED;
        }

        part[i].data = p;
        part[i].len = sp - p;
        p = sp + 1;
    }

    accept.data = p;
    accept.len = last - p;

    ngx_memzero(&u, sizeof(ngx_http_registry_history_update_t));

    for (i = 0; i < 2; i++) {
        if (part[i].len == 0 || part[i].len > NGX_HTTP_REGISTRY_HISTORY_TIME
            || ngx_atotm(part[i].data, part[i].len) == NGX_ERROR)
        {
            *reason = "invalid time";
            return NGX_DECLINED;
        }
    }

    u.first = ngx_atotm(part[0].data, part[0].len);
    u.last = ngx_atotm(part[1].data, part[1].len);

    if (u.first > u.last) {
        *reason = "first seen after last seen";
        return NGX_DECLINED;
    }

    ngx_strlow(part[2].data, part[2].data, part[2].len);

    if (ngx_http_registry_valid_host(part[2].data, part[2].len) != NGX_OK) {
        *reason = "invalid registry";
        return NGX_DECLINED;
    }

    if (ngx_http_registry_history_valid_name(part[3].data, part[3].len)
        != NGX_OK)
    {
        *reason = "invalid repository";
        return NGX_DECLINED;
    }

    if (ngx_http_registry_valid_tag(part[4].data, part[4].len) != NGX_OK) {
        *reason = "invalid tag";
        return NGX_DECLINED;
    }

    if (ngx_http_registry_valid_digest(part[5].data, part[5].len) != NGX_OK) {
        *reason = "invalid digest";
        return NGX_DECLINED;
    }

    type = ngx_http_registry_manifest_type(part[6].data, part[6].len);

    if (type == NULL || !ngx_http_registry_history_eq(type, &part[6])) {
        *reason = "invalid media type";
        return NGX_DECLINED;
    }

    /* the Accept as the mirror writes it, and nothing else */

    if (accept.len > NGX_HTTP_REGISTRY_ACCEPT_MAX
        || ngx_http_registry_accept_string(
               ngx_http_registry_accept_mask(accept.data, accept.len), norm)
           != accept.len
        || ngx_strncmp(norm, accept.data, accept.len) != 0)
    {
        *reason = "invalid accept";
        return NGX_DECLINED;
    }

    key.data = part[2].data;
    key.len = part[4].data + part[4].len - part[2].data;

    u.pool = pool;
    u.entries = rmcf->history_entries;
    u.digest = &part[5];
    u.type = &part[6];
    u.accept = &accept;
    u.load = 1;

    if (ngx_http_registry_zone_update(rmcf->zone,
                                      NGX_HTTP_REGISTRY_ZONE_HISTORY, &key,
                                      ngx_http_registry_history_update, &u)
        == NGX_ERROR)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * The journal rewritten from the zone.  At start, in the master, through
 * a file beside it renamed over it, and the master's descriptor (which
 * the workers inherit) moved to the new file; if nothing can be made
 * beside it, and in a worker (which may not write the folder), in place.
 */

static ngx_int_t
ngx_http_registry_history_compact(ngx_http_registry_main_conf_t *rmcf,
    ngx_log_t *log, ngx_uint_t start)
{
    u_char                           *name;
    size_t                            len;
    ngx_fd_t                          fd;
    ngx_int_t                         rc;
    ngx_pool_t                       *pool;
    ngx_http_registry_history_buf_t   b;

    pool = ngx_create_pool(NGX_DEFAULT_POOL_SIZE, log);
    if (pool == NULL) {
        return NGX_ERROR;
    }

    b.pool = pool;
    b.start = NULL;
    b.pos = NULL;
    b.end = NULL;
    b.unwritten = 0;

    rc = ngx_http_registry_zone_walk(rmcf->zone,
                                     NGX_HTTP_REGISTRY_ZONE_HISTORY,
                                     ngx_http_registry_history_dump, &b);
    if (rc != NGX_OK) {
        goto done;
    }

    len = b.pos - b.start;
    rc = NGX_ERROR;
    fd = NGX_INVALID_FILE;
    name = NULL;

    if (start) {
        name = ngx_pnalloc(pool, rmcf->history->name.len + sizeof(".new"));
        if (name == NULL) {
            goto done;
        }

        (void) ngx_sprintf(name, "%V.new%Z", &rmcf->history->name);

        fd = ngx_open_file(name, NGX_FILE_WRONLY, NGX_FILE_TRUNCATE,
                           NGX_FILE_DEFAULT_ACCESS);
    }

    if (fd != NGX_INVALID_FILE) {

        if ((len && ngx_write_fd(fd, b.start, len) != (ssize_t) len)
            || fsync(fd) == -1)
        {
            ngx_log_error(NGX_LOG_WARN, log, ngx_errno,
                          "registry: tag history \"%s\" not written", name);
            (void) ngx_close_file(fd);
            (void) ngx_delete_file(name);
            goto in_place;
        }

        (void) ngx_close_file(fd);

        if (ngx_rename_file(name, rmcf->history->name.data) == NGX_FILE_ERROR)
        {
            ngx_log_error(NGX_LOG_WARN, log, ngx_errno,
                          ngx_rename_file_n " \"%s\" to \"%V\" failed",
                          name, &rmcf->history->name);
            (void) ngx_delete_file(name);
            goto in_place;
        }

        fd = ngx_open_file(rmcf->history->name.data, NGX_FILE_APPEND,
                           NGX_FILE_CREATE_OR_OPEN, NGX_FILE_DEFAULT_ACCESS);

        if (fd == NGX_INVALID_FILE
            || dup2(fd, rmcf->history->fd) == -1)
        {
            ngx_log_error(NGX_LOG_ALERT, log, ngx_errno,
                          "registry: tag history \"%V\" not reopened",
                          &rmcf->history->name);
        }

        if (fd != NGX_INVALID_FILE) {
            (void) ngx_close_file(fd);
        }

        rc = NGX_OK;
        goto done;
    }

in_place:

    /* appends of other workers meanwhile merge as any line does */

    if (ftruncate(rmcf->history->fd, 0) == -1
        || (len && ngx_write_fd(rmcf->history->fd, b.start, len)
                   != (ssize_t) len))
    {
        ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                      "registry: tag history \"%V\" not rewritten",
                      &rmcf->history->name);
        goto done;
    }

    rc = NGX_OK;

done:

    ngx_destroy_pool(pool);

    return rc;
}


/* under the zone's lock: a tag's entries as journal lines */

static ngx_int_t
ngx_http_registry_history_dump(ngx_str_t *key, ngx_str_t *value, void *data)
{
    ngx_http_registry_history_buf_t *b = data;

    u_char                             *p, *last, *n;
    size_t                              need, size;
    ngx_http_registry_history_entry_t   e;

    p = value->data;
    last = p + value->len;

    while (ngx_http_registry_history_entry(&p, last, &e) == NGX_OK) {

        if (b->unwritten) {
            if (e.written >= e.last) {
                continue;
            }

            (void) ngx_sprintf(e.line
                               + 2 * (NGX_HTTP_REGISTRY_HISTORY_TIME + 1),
                               "%010T", e.last);
        }

        need = 2 * NGX_TIME_T_LEN + key->len + e.digest.len + e.type.len
               + e.accept.len + 6;

        if ((size_t) (b->end - b->pos) < need) {
            size = ngx_max(2 * (size_t) (b->end - b->start), 65536);

            while (size < (size_t) (b->pos - b->start) + need) {
                size *= 2;
            }

            n = ngx_pnalloc(b->pool, size);
            if (n == NULL) {
                return NGX_ERROR;
            }

            b->pos = ngx_cpymem(n, b->start, b->pos - b->start);
            b->start = n;
            b->end = n + size;
        }

        b->pos = ngx_sprintf(b->pos, "%T %T %V %V %V %V\n", e.first, e.last,
                             key, &e.digest, &e.type, &e.accept);
    }

    return NGX_OK;
}


/* a repository name: components of the grammar joined by "/" */

static ngx_int_t
ngx_http_registry_history_valid_name(u_char *p, size_t len)
{
    u_char  *last, *slash;

    if (len == 0 || len > NGX_HTTP_REGISTRY_NAME_MAX) {
        return NGX_ERROR;
    }

    last = p + len;

    for ( ;; ) {
        slash = ngx_strlchr(p, last, '/');
        if (slash == NULL) {
            slash = last;
        }

        if (ngx_http_registry_valid_component(p, slash - p) != NGX_OK) {
            return NGX_ERROR;
        }

        if (slash == last) {
            return NGX_OK;
        }

        p = slash + 1;
    }
}


/*
 * registry_tag_history off | <file> [entries=<n>];
 *
 * The file is opened by nginx as its logs are (the master opens it, the
 * workers inherit it, "nginx -s reopen" opens it again), so workers that
 * run as another user write it all the same.
 */

char *
ngx_http_registry_history(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_registry_main_conf_t *rmcf = conf;

    ngx_int_t   n;
    ngx_str_t  *value;
    ngx_uint_t  i;

    if (rmcf->history_entries != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    rmcf->history_entries = NGX_HTTP_REGISTRY_HISTORY_ENTRIES;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        if (cf->args->nelts > 2) {
            return "takes no parameters with \"off\"";
        }

        return NGX_CONF_OK;
    }

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "entries=", 8) == 0) {
            n = ngx_atoi(value[i].data + 8, value[i].len - 8);

            if (n < 1 || n > NGX_HTTP_REGISTRY_HISTORY_MAX) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid entries \"%V\", expected 1 to %d",
                                   &value[i], NGX_HTTP_REGISTRY_HISTORY_MAX);
                return NGX_CONF_ERROR;
            }

            rmcf->history_entries = n;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"", &value[i]);
        return NGX_CONF_ERROR;
    }

    rmcf->history = ngx_conf_open_file(cf->cycle, &value[1]);
    if (rmcf->history == NULL) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* registry_tag_history_api; (location): the JSON answer is its content */

char *
ngx_http_registry_history_api(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_registry_loc_conf_t *rlcf = conf;

    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_registry_history_handler;

    /* not a mirror location: its URI is no registry path */
    rlcf->mirror = 0;

    return NGX_CONF_OK;
}


/*
 * GET <location>?registry=<name>&repository=<name>&tag=<tag>:
 *
 *     {"registry":"...","repository":"...","tag":"...","history":[
 *      {"digest":"...","media_type":"...","accept":"...",
 *       "first_seen":"2026-01-02T03:04:05Z","last_seen":"..."}, ...]}
 *
 * oldest first.  Every value is checked by the grammar, so none needs
 * escaping.
 */

static ngx_int_t
ngx_http_registry_history_handler(ngx_http_request_t *r)
{
    u_char                             *p, *q, *last;
    size_t                              len;
    ngx_int_t                           rc;
    ngx_str_t                           registry, repository, tag, key;
    ngx_str_t                           value, body;
    ngx_tm_t                            first, seen;
    ngx_uint_t                          n;
    ngx_http_registry_main_conf_t      *rmcf;
    ngx_http_registry_history_entry_t   e;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return ngx_http_registry_send_oci_error(r, NGX_HTTP_NOT_ALLOWED,
                   "UNSUPPORTED", "the tag history is read with GET");
    }

    if (ngx_http_arg(r, ngx_http_registry_history_arg_registry.data,
                     ngx_http_registry_history_arg_registry.len, &registry)
        != NGX_OK
        || ngx_http_registry_valid_host(registry.data, registry.len)
           != NGX_OK)
    {
        return ngx_http_registry_send_oci_error(r, NGX_HTTP_BAD_REQUEST,
                   "NAME_INVALID", "invalid or missing argument: registry");
    }

    if (ngx_http_arg(r, ngx_http_registry_history_arg_repository.data,
                     ngx_http_registry_history_arg_repository.len,
                     &repository)
        != NGX_OK
        || ngx_http_registry_history_valid_name(repository.data,
                                                repository.len)
           != NGX_OK)
    {
        return ngx_http_registry_send_oci_error(r, NGX_HTTP_BAD_REQUEST,
                   "NAME_INVALID",
                   "invalid or missing argument: repository");
    }

    if (ngx_http_arg(r, ngx_http_registry_history_arg_tag.data,
                     ngx_http_registry_history_arg_tag.len, &tag)
        != NGX_OK
        || ngx_http_registry_valid_tag(tag.data, tag.len) != NGX_OK)
    {
        return ngx_http_registry_send_oci_error(r, NGX_HTTP_BAD_REQUEST,
                   "TAG_INVALID", "invalid or missing argument: tag");
    }

    /* registry names are kept in lower case, as the directive has them */

    p = ngx_pnalloc(r->pool, registry.len);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_strlow(p, registry.data, registry.len);
    registry.data = p;

    rmcf = ngx_http_get_module_main_conf(r, ngx_http_registry_module);

    rc = NGX_DECLINED;

    if (rmcf->history && rmcf->zone) {
        if (ngx_http_registry_history_key(r->pool, &registry, &repository,
                                          &tag, &key)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        rc = ngx_http_registry_zone_get(rmcf->zone,
                                        NGX_HTTP_REGISTRY_ZONE_HISTORY, &key,
                                        r->pool, &value);
    }

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc != NGX_OK) {
        return ngx_http_registry_send_oci_error(r, NGX_HTTP_NOT_FOUND,
                   "MANIFEST_UNKNOWN", "no history for this tag");
    }

    len = sizeof("{\"registry\":\"\",\"repository\":\"\",\"tag\":\"\","
                 "\"history\":[]}\n") - 1
          + registry.len + repository.len + tag.len;

    p = value.data;
    last = p + value.len;

    while (ngx_http_registry_history_entry(&p, last, &e) == NGX_OK) {
        len += sizeof(",{\"digest\":\"\",\"media_type\":\"\",\"accept\":\"\","
                      "\"first_seen\":\"\",\"last_seen\":\"\"}") - 1
               + e.digest.len + e.type.len + e.accept.len
               + 2 * (sizeof("2026-01-02T03:04:05Z") - 1 + 4);
    }

    body.data = ngx_pnalloc(r->pool, len);
    if (body.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_sprintf(body.data,
                    "{\"registry\":\"%V\",\"repository\":\"%V\","
                    "\"tag\":\"%V\",\"history\":[",
                    &registry, &repository, &tag);

    n = 0;
    q = value.data;

    while (ngx_http_registry_history_entry(&q, last, &e) == NGX_OK) {
        ngx_gmtime(e.first, &first);
        ngx_gmtime(e.last, &seen);

        p = ngx_sprintf(p, "%s{\"digest\":\"%V\",\"media_type\":\"%V\","
                        "\"accept\":\"%V\","
                        "\"first_seen\":\"%4d-%02d-%02dT%02d:%02d:%02dZ\","
                        "\"last_seen\":\"%4d-%02d-%02dT%02d:%02d:%02dZ\"}",
                        n++ ? "," : "", &e.digest, &e.type, &e.accept,
                        first.ngx_tm_year, first.ngx_tm_mon,
                        first.ngx_tm_mday, first.ngx_tm_hour,
                        first.ngx_tm_min, first.ngx_tm_sec,
                        seen.ngx_tm_year, seen.ngx_tm_mon,
                        seen.ngx_tm_mday, seen.ngx_tm_hour,
                        seen.ngx_tm_min, seen.ngx_tm_sec);
    }

    p = ngx_sprintf(p, "]}\n");

    body.len = p - body.data;

    return ngx_http_registry_send(r, NGX_HTTP_OK, &body);
}


