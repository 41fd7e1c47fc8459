
/*
 * Copyright (C) ngx_registry_module authors
 */


#ifndef _NGX_HTTP_REGISTRY_MODULE_H_INCLUDED_
#define _NGX_HTTP_REGISTRY_MODULE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_registry_grammar.h"
#include "ngx_http_registry_accept.h"
#include "ngx_http_registry_verify.h"
#include "ngx_http_registry_zone.h"
#include "ngx_http_registry_auth.h"
#include "ngx_http_registry_redirect.h"
#include "ngx_http_registry_json.h"
#include "ngx_http_registry_manifest.h"
#include "ngx_http_registry_target.h"
#include "ngx_http_registry_loop.h"


/* one "registry" directive */

typedef struct {
    ngx_str_t                  name;       /* as clients write it */
    ngx_str_t                  upstream;   /* scheme://host[:port] */
    ngx_str_t                  prefix;     /* inserted after "/v2/" */
    ngx_flag_t                 library;    /* Docker Hub "library/" */
    ngx_str_t                  credentials;  /* "Basic ...", from a file */
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
} ngx_http_registry_main_conf_t;


typedef struct {
    ngx_flag_t                 mirror;
    ngx_flag_t                 cache_header;
    ngx_flag_t                 verify;
    ngx_flag_t                 upstream_errors;
    ngx_flag_t                 redirect_http;
    ngx_flag_t                 client_credentials;
    ngx_array_t               *redirect_allow;   /* ngx_cidr_t */
    time_t                     tag_valid;
    time_t                     digest_valid;
    ngx_array_t               *aliases;     /* ngx_http_registry_alias_t */
    ngx_str_t                  default_name;
    ngx_http_registry_t       *default_registry;
} ngx_http_registry_loc_conf_t;


/* what the route step decided; read by the variables and filters */

typedef struct {
    ngx_http_registry_t       *registry;
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
    unsigned                   token_done:1;
    unsigned                   token_failed:1;
    unsigned                   digest:1;    /* immutable content */
} ngx_http_registry_ctx_t;


typedef ngx_int_t (*ngx_http_registry_header_pt)(ngx_table_elt_t *h,
    void *data);


ngx_int_t ngx_http_registry_send_error(ngx_http_request_t *r,
    ngx_http_registry_error_t *err);
ngx_int_t ngx_http_registry_answer(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
ngx_int_t ngx_http_registry_headers(ngx_list_t *headers, ngx_str_t *name,
    ngx_http_registry_header_pt handler, void *data);
ngx_int_t ngx_http_registry_first_line(ngx_table_elt_t *h, void *data);
ngx_str_t *ngx_http_registry_client_credentials(ngx_http_request_t *r);


static ngx_inline void
ngx_http_registry_set_value(ngx_http_variable_value_t *v, ngx_str_t *s)
{
    v->len = s->len;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;
    v->data = s->data;
}


extern ngx_module_t  ngx_http_registry_module;


#endif /* _NGX_HTTP_REGISTRY_MODULE_H_INCLUDED_ */
