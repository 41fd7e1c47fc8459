
/*
 * Copyright (C) ngx_registry_module authors
 */


#ifndef _NGX_HTTP_REGISTRY_H_INCLUDED_
#define _NGX_HTTP_REGISTRY_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_registry_grammar.h"
#include "ngx_http_registry_pattern.h"


/*
 * The module's shared types: its configuration and the per-request
 * context, read by every step.  No step's header is included here: a step
 * includes this, never the other way round.
 */

typedef struct ngx_http_registry_target_s  ngx_http_registry_target_t;


/* "registry:private:" and 16 hex digits of the upstream's sha256 */

#define NGX_HTTP_REGISTRY_PRIVATE_MARK  (17 + 16)


/*
 * Where a registry is fetched from: the URL of its "registry" line, then
 * each of its "registry_region" lines, in order.
 */

typedef struct {
    ngx_str_t                  name;       /* the URL's host: an upstream{}
                                              block or a host name */
    ngx_str_t                  upstream;   /* scheme://host[:port] */
    ngx_str_t                  host;       /* Host: sent there */
    ngx_str_t                  ssl_name;   /* its TLS name */
    ngx_str_t                  origin;     /* scheme://Host, as the
                                              registry knows itself */
    ngx_str_t                  credentials;  /* "Basic ...", from a file */
} ngx_http_registry_region_t;


/*
 * A registry's counters (README.md, Monitoring), in the shared zone under
 * its name, for every worker, across reloads.
 */

#define NGX_HTTP_REGISTRY_STAT_KINDS     4   /* manifest, blob, tags,
                                                referrers */
#define NGX_HTTP_REGISTRY_STAT_CACHE     8   /* hit ... bypass, none */
#define NGX_HTTP_REGISTRY_STAT_CLASSES   7   /* 1xx-5xx, 429, error */

typedef struct {
    ngx_atomic_t               requests[NGX_HTTP_REGISTRY_STAT_KINDS]
                                       [NGX_HTTP_REGISTRY_STAT_CACHE];
    ngx_atomic_t               sent_cache;     /* body bytes to clients */
    ngx_atomic_t               sent_upstream;
    ngx_atomic_t               received;       /* bytes from upstreams */
    ngx_atomic_t               upstream[NGX_HTTP_REGISTRY_STAT_CLASSES];
    ngx_atomic_t               fills_verified;
    ngx_atomic_t               fills_mismatch;
    ngx_atomic_t               tokens_ok;
    ngx_atomic_t               tokens_failed;
    ngx_atomic_t               redirects_followed;
    ngx_atomic_t               redirects_refused;
    ngx_atomic_t               auth_allowed;
    ngx_atomic_t               auth_denied;
    ngx_atomic_t               last_success;   /* time, status */
    ngx_atomic_t               last_success_status;
    ngx_atomic_t               last_failure;
    ngx_atomic_t               last_failure_status;
    ngx_atomic_t               last_stale;     /* served stale, time */
    ngx_atomic_t               failing;        /* the last answer failed */
} ngx_http_registry_stats_t;


/* one "registry" directive */

typedef struct {
    ngx_str_t                  name;       /* as clients write it */
    ngx_array_t                regions;    /* ngx_http_registry_region_t */
    ngx_str_t                  prefix;     /* inserted after "/v2/" */
    ngx_flag_t                 library;    /* Docker Hub "library/" */
    ngx_flag_t                 client_auth;  /* clients log in themselves */
    ngx_array_t               *allow;      /* patterns (ngx_str_t) of the
                                              repositories mirrored; NULL:
                                              all of them */
    ngx_array_t               *block;      /* and of those refused */
    u_char                     private_mark[NGX_HTTP_REGISTRY_PRIVATE_MARK];
    ngx_http_registry_stats_t *stats;      /* NULL: the zone had no room */
} ngx_http_registry_t;


typedef struct {
    ngx_str_t                  host;
    ngx_str_t                  name;
    ngx_http_registry_t       *registry;   /* found at merge time */
} ngx_http_registry_alias_t;


typedef struct {
    ngx_array_t                registries;  /* ngx_http_registry_t */
    ngx_str_t                  node_id;     /* in CDN-Loop */
    size_t                     zone_size;
    ngx_shm_zone_t            *zone;        /* NULL without registries */
    ngx_open_file_t           *history;     /* registry_tag_history */
    ngx_uint_t                 history_entries;  /* kept per tag */
    ngx_flag_t                 counters;    /* registry_counters */
} ngx_http_registry_main_conf_t;


typedef struct {
    ngx_flag_t                 mirror;
    ngx_flag_t                 cache_header;
    ngx_flag_t                 verify;
    ngx_flag_t                 upstream_errors;
    ngx_flag_t                 redirect_http;
    ngx_flag_t                 client_credentials;
    ngx_flag_t                 auth_relay;   /* the token relay's location */
    ngx_array_t               *redirect_allow;   /* ngx_cidr_t */
    time_t                     auth_valid;
    ngx_str_t                  auth_realm;
    time_t                     tag_valid;
    time_t                     digest_valid;
    ngx_msec_t                 tag_check_timeout;
    ngx_array_t               *immutable_tags;  /* ngx_regex_elt_t */
    ngx_array_t               *aliases;     /* ngx_http_registry_alias_t */
    ngx_http_complex_value_t  *region_first;
    ngx_str_t                  default_name;
    ngx_http_registry_t       *default_registry;
} ngx_http_registry_loc_conf_t;


/* what the route step decided; read by the variables and filters */

typedef struct {
    ngx_http_registry_t       *registry;
    ngx_http_registry_region_t  *region;   /* where it goes upstream */
    ngx_uint_t                 region_first;  /* index of the first tried */
    ngx_uint_t                 region_tries;  /* regions failed before */
    ngx_uint_t                 endpoint;
    ngx_str_t                  repository;  /* as sent upstream */
    ngx_str_t                  reference;
    ngx_str_t                  uri;         /* as sent upstream */
    ngx_str_t                  ns;          /* echoed in OCI-Namespace */
    ngx_str_t                  accept;      /* normalised manifest types */
    ngx_str_t                  cache_key;
    ngx_str_t                  expected;    /* digest a body must have */
    void                      *verify;      /* the running hash */
    ngx_str_t                  token_key;   /* "<registry> <scope>" */
    ngx_str_t                  authorization;  /* the mirror's own */
    ngx_str_t                  token_url;
    ngx_http_request_t        *token_sr;
    ngx_uint_t                 token_status;
    ngx_buf_t                 *token_body;
    ngx_http_registry_target_t  *token_target;  /* the realm, checked */
    ngx_http_registry_error_t  answer;      /* without a registry: the
                                               mirror's own answer */
    ngx_uint_t                 error_status;  /* what sent it to the
                                                 upstream-error location */
    ngx_str_t                  tag;         /* a tag served by digest */
    ngx_str_t                  tag_key;     /* its key in the tag map */
    ngx_str_t                  resolved;    /* the digest it is served by */
    ngx_str_t                  computed;    /* a fetched tag's digest */
    ngx_uint_t                 tag_state;   /* NGX_HTTP_REGISTRY_TAG_* */
    ngx_str_t                  client_name;  /* the repository as the
                                                client wrote it */
    ngx_http_registry_t       *login;      /* GET /v2/: clients log in */
    ngx_uint_t                 auth_state;  /* NGX_HTTP_REGISTRY_AUTH_* */
    void                      *relay;      /* the token relay's state */
    ngx_str_t                  principal;   /* the credentials' hash */
    unsigned                   token_done:1;
    unsigned                   token_failed:1;
    unsigned                   digest:1;    /* immutable content */
    unsigned                   tag_pinned:1;
    unsigned                   tag_revalidated:1;
    unsigned                   verified:1;  /* the whole body matched */
} ngx_http_registry_ctx_t;


extern ngx_module_t  ngx_http_registry_module;


/* one more of a registry's counters */

#define ngx_http_registry_stat(reg, field)                                    \
    if ((reg) && (reg)->stats) {                                              \
        (void) ngx_atomic_fetch_add(&(reg)->stats->field, 1);                 \
    }


/* a registry by the name clients know it by (any case) */

static ngx_inline ngx_http_registry_t *
ngx_http_registry_lookup(ngx_http_registry_main_conf_t *rmcf,
    ngx_str_t *name)
{
    ngx_uint_t            i;
    ngx_http_registry_t  *reg;

    reg = rmcf->registries.elts;

    for (i = 0; i < rmcf->registries.nelts; i++) {
        if (reg[i].name.len == name->len
            && ngx_strncasecmp(reg[i].name.data, name->data, name->len) == 0)
        {
            return &reg[i];
        }
    }

    return NULL;
}



/*
 * Whether a registry's allow and block lists let a repository through, on
 * its name as the registry knows it: with "library/" where the registry
 * adds it, which *name becomes (in buf, NGX_HTTP_REGISTRY_LISTED_LEN
 * bytes), and without the URL's path prefix.
 */

#define NGX_HTTP_REGISTRY_LISTED_LEN                                          \
    (sizeof("library/") - 1 + NGX_HTTP_REGISTRY_NAME_MAX)

static ngx_inline ngx_int_t
ngx_http_registry_listed(ngx_http_registry_t *reg, ngx_str_t *name,
    u_char *buf)
{
    u_char  *p;

    if (reg->allow == NULL && reg->block == NULL) {
        return NGX_OK;
    }

    if (reg->library
        && ngx_strlchr(name->data, name->data + name->len, '/') == NULL
        && name->len <= NGX_HTTP_REGISTRY_NAME_MAX)
    {
        p = ngx_cpymem(buf, "library/", 8);
        p = ngx_cpymem(p, name->data, name->len);

        name->data = buf;
        name->len = p - buf;
    }

    return ngx_http_registry_pattern_listed(reg->allow, reg->block,
                                            name->data, name->len);
}


#endif /* _NGX_HTTP_REGISTRY_H_INCLUDED_ */
