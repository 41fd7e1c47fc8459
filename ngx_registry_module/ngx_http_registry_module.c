
/*
 * Copyright (C) ngx_registry_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_registry.h"
#include "ngx_http_registry_grammar.h"
#include "ngx_http_registry_pattern.h"
#include "ngx_http_registry_accept.h"
#include "ngx_http_registry_zone.h"
#include "ngx_http_registry_response.h"
#include "ngx_http_registry_route.h"
#include "ngx_http_registry_answer.h"
#include "ngx_http_registry_verify.h"
#include "ngx_http_registry_upstream_error.h"
#include "ngx_http_registry_redirect.h"
#include "ngx_http_registry_target.h"
#include "ngx_http_registry_loop.h"
#include "ngx_http_registry_history.h"
#include "ngx_http_registry_tag.h"
#include "ngx_http_registry_auth.h"
#include "ngx_http_registry_relay.h"
#include "ngx_http_registry_region.h"
#include "ngx_http_registry_metrics.h"


static ngx_int_t ngx_http_registry_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_registry_conf_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_registry_cache_status_variable(
    ngx_http_request_t *r, ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_registry_counter_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);

static char *ngx_http_registry(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_registry_region(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_registry_region_add(ngx_conf_t *cf,
    ngx_http_registry_t *reg, ngx_str_t *url, ngx_str_t *prefix);
static ngx_int_t ngx_http_registry_region_option(ngx_conf_t *cf,
    ngx_http_registry_region_t *region, ngx_str_t *option);
static char *ngx_http_registry_alias(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_registry_credentials(ngx_conf_t *cf,
    ngx_str_t *name, ngx_str_t *basic);
static ngx_int_t ngx_http_registry_patterns(ngx_conf_t *cf,
    ngx_str_t *option, size_t skip, ngx_array_t **list);
static char *ngx_http_registry_redirect_allow(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_registry_zone_size(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_registry_auth_relay(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_registry_answer_with(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static ngx_int_t ngx_http_registry_add_variables(ngx_conf_t *cf);
static void *ngx_http_registry_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_registry_init_main_conf(ngx_conf_t *cf, void *conf);
static ngx_int_t ngx_http_registry_tls_names(ngx_conf_t *cf,
    ngx_http_registry_main_conf_t *rmcf);
static void *ngx_http_registry_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_registry_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static ngx_int_t ngx_http_registry_init(ngx_conf_t *cf);
static ngx_int_t ngx_http_registry_init_module(ngx_cycle_t *cycle);
static ngx_int_t ngx_http_registry_init_process(ngx_cycle_t *cycle);
static void ngx_http_registry_exit_process(ngx_cycle_t *cycle);


static ngx_conf_post_handler_pt  ngx_http_registry_node_id_post =
    ngx_http_registry_node_id_check;


static ngx_command_t  ngx_http_registry_commands[] = {

    { ngx_string("registry"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_2MORE,
      ngx_http_registry,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("registry_region"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_2MORE,
      ngx_http_registry_region,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("registry_region_first"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_set_complex_value_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_registry_loc_conf_t, region_first),
      NULL },

    { ngx_string("registry_node_id"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_registry_main_conf_t, node_id),
      &ngx_http_registry_node_id_post },

    { ngx_string("registry_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_registry_zone_size,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("registry_tag_history"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_http_registry_history,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("registry_tag_history_api"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_registry_history_api,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("registry_alias"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_TAKE2,
      ngx_http_registry_alias,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("registry_default"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_registry_loc_conf_t, default_name),
      NULL },

    { ngx_string("registry_mirror"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_registry_loc_conf_t, mirror),
      NULL },

    { ngx_string("registry_tag_valid"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_registry_loc_conf_t, tag_valid),
      NULL },

    { ngx_string("registry_tag_check_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_registry_loc_conf_t, tag_check_timeout),
      NULL },

    { ngx_string("registry_immutable_tags"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_registry_immutable_tags,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("registry_digest_valid"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_registry_loc_conf_t, digest_valid),
      NULL },

    { ngx_string("registry_verify"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_registry_loc_conf_t, verify),
      NULL },

    { ngx_string("registry_upstream_errors"),
      NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_registry_loc_conf_t, upstream_errors),
      NULL },

    { ngx_string("registry_redirect_http"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_registry_loc_conf_t, redirect_http),
      NULL },

    { ngx_string("registry_redirect_allow"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_registry_redirect_allow,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("registry_client_credentials"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_registry_loc_conf_t, client_credentials),
      NULL },

    { ngx_string("registry_auth_valid"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_registry_loc_conf_t, auth_valid),
      NULL },

    { ngx_string("registry_auth_realm"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_registry_loc_conf_t, auth_realm),
      NULL },

    { ngx_string("registry_auth_relay"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_registry_auth_relay,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("registry_counters"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_registry_main_conf_t, counters),
      NULL },

    { ngx_string("registry_metrics"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_registry_answer_with,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      ngx_http_registry_metrics_handler },

    { ngx_string("registry_health"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_registry_answer_with,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      ngx_http_registry_health_handler },

    { ngx_string("registry_cache_header"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_registry_loc_conf_t, cache_header),
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_registry_module_ctx = {
    ngx_http_registry_add_variables,       /* preconfiguration */
    ngx_http_registry_init,                /* postconfiguration */

    ngx_http_registry_create_main_conf,    /* create main configuration */
    ngx_http_registry_init_main_conf,      /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_registry_create_loc_conf,     /* create location configuration */
    ngx_http_registry_merge_loc_conf       /* merge location configuration */
};


ngx_module_t  ngx_http_registry_module = {
    NGX_MODULE_V1,
    &ngx_http_registry_module_ctx,         /* module context */
    ngx_http_registry_commands,            /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    ngx_http_registry_init_module,         /* init module */
    ngx_http_registry_init_process,        /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_registry_exit_process,        /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_http_variable_t  ngx_http_registry_vars[] = {

    { ngx_string("registry_upstream"), NULL,
      ngx_http_registry_region_variable,
      offsetof(ngx_http_registry_region_t, upstream),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("registry_host"), NULL,
      ngx_http_registry_region_variable,
      offsetof(ngx_http_registry_region_t, host),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("registry_ssl_name"), NULL,
      ngx_http_registry_region_variable,
      offsetof(ngx_http_registry_region_t, ssl_name),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("registry_region"), NULL,
      ngx_http_registry_region_served_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("registry_name"), NULL,
      ngx_http_registry_conf_variable,
      offsetof(ngx_http_registry_t, name),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("registry_uri"), NULL,
      ngx_http_registry_variable,
      offsetof(ngx_http_registry_ctx_t, uri),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("registry_repository"), NULL,
      ngx_http_registry_variable,
      offsetof(ngx_http_registry_ctx_t, repository),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("registry_reference"), NULL,
      ngx_http_registry_variable,
      offsetof(ngx_http_registry_ctx_t, reference),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("registry_accept"), NULL,
      ngx_http_registry_variable,
      offsetof(ngx_http_registry_ctx_t, accept),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("registry_cache_key"), NULL,
      ngx_http_registry_variable,
      offsetof(ngx_http_registry_ctx_t, cache_key),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("registry_cache_status"), NULL,
      ngx_http_registry_cache_status_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("registry_authorization"), NULL,
      ngx_http_registry_authorization_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("registry_client_credentials"), NULL,
      ngx_http_registry_client_credentials_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("registry_token_url"), NULL,
      ngx_http_registry_realm_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("registry_token_host"), NULL,
      ngx_http_registry_realm_variable, 1,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("registry_token_name"), NULL,
      ngx_http_registry_realm_variable, 2,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("registry_token_authorization"), NULL,
      ngx_http_registry_token_auth_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("registry_redirect_url"), NULL,
      ngx_http_registry_redirect_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("registry_redirect_host"), NULL,
      ngx_http_registry_redirect_variable, 1,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("registry_redirect_name"), NULL,
      ngx_http_registry_redirect_variable, 2,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("registry_cdn_loop"), NULL,
      ngx_http_registry_cdn_loop_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("registry_method"), NULL,
      ngx_http_registry_tag_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("registry_tag_check"), NULL,
      ngx_http_registry_tag_variable, 1,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("registry_digest"), NULL,
      ngx_http_registry_tag_variable, 2,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("registry_refill"), NULL,
      ngx_http_registry_tag_variable, 3,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("registry_relay_method"), NULL,
      ngx_http_registry_relay_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("registry_relay_authorization"), NULL,
      ngx_http_registry_relay_variable, 1,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("registry_relay_type"), NULL,
      ngx_http_registry_relay_variable, 2,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("registry_relay_body"), NULL,
      ngx_http_registry_relay_variable, 3,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("registry_digest_mismatches"), NULL,
      ngx_http_registry_counter_variable,
      offsetof(ngx_http_registry_counters_t, digest_mismatches),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


static ngx_int_t
ngx_http_registry_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t                *s;
    ngx_http_registry_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_registry_module);

    if (ctx == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    s = (ngx_str_t *) ((char *) ctx + data);

    ngx_http_registry_set_value(v, s);

    return NGX_OK;
}


/* a field of the chosen registry's configuration */

static ngx_int_t
ngx_http_registry_conf_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t                *s;
    ngx_http_registry_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_registry_module);

    if (ctx == NULL) {
        /* the token relay's subrequests: the relay's registry */
        ctx = ngx_http_get_module_ctx(r->main, ngx_http_registry_module);
    }

    if (ctx == NULL || ctx->registry == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    s = (ngx_str_t *) ((char *) ctx->registry + data);

    ngx_http_registry_set_value(v, s);

    return NGX_OK;
}


static ngx_int_t
ngx_http_registry_cache_status_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t  *status;

    status = ngx_http_registry_cache_status(r);

    if (status == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    ngx_http_registry_set_value(v, status);

    return NGX_OK;
}


static ngx_int_t
ngx_http_registry_counter_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char  *p;

    if (ngx_http_registry_counters == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, NGX_ATOMIC_T_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    v->len = ngx_sprintf(p, "%uA", *(ngx_atomic_t *)
                         ((char *) ngx_http_registry_counters + data))
             - p;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;
    v->data = p;

    return NGX_OK;
}


/*
 * registry <name> <url> [library=on|off] [auth=client|mirror]
 *          [host=<name[:port]>] [credentials=<file>] [allow=<file>]
 *          [block=<file>];
 *
 * The URL is "http[s]://host[:port][/prefix]", the registry's first
 * region.  The host may name an upstream{} block; a prefix puts the
 * upstream's names below it, so a mirror can front another path-prefix
 * mirror.
 */

static char *
ngx_http_registry(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_registry_main_conf_t *rmcf = conf;

    ngx_str_t                   *value;
    ngx_uint_t                   i;
    ngx_http_registry_t         *reg;
    ngx_http_registry_region_t  *region;

    value = cf->args->elts;

    if (ngx_http_registry_valid_host(value[1].data, value[1].len) != NGX_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid registry name \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    ngx_strlow(value[1].data, value[1].data, value[1].len);

    if (ngx_http_registry_lookup(rmcf, &value[1]) != NULL) {
        return "is duplicate";
    }

    reg = ngx_array_push(&rmcf->registries);
    if (reg == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(reg, sizeof(ngx_http_registry_t));

    reg->name = value[1];
    reg->library = (value[1].len == 9
                    && ngx_strncmp(value[1].data, "docker.io", 9) == 0);

    if (ngx_array_init(&reg->regions, cf->pool, 2,
                       sizeof(ngx_http_registry_region_t))
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_registry_region_add(cf, reg, &value[2], &reg->prefix)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    region = reg->regions.elts;

    for (i = 3; i < cf->args->nelts; i++) {

        if (ngx_strcmp(value[i].data, "library=on") == 0) {
            reg->library = 1;

        } else if (ngx_strcmp(value[i].data, "library=off") == 0) {
            reg->library = 0;

        } else if (ngx_strcmp(value[i].data, "auth=client") == 0) {
            reg->client_auth = 1;

        } else if (ngx_strcmp(value[i].data, "auth=mirror") == 0) {
            reg->client_auth = 0;

        } else if (ngx_strncmp(value[i].data, "allow=", 6) == 0) {
            if (ngx_http_registry_patterns(cf, &value[i], 6, &reg->allow)
                != NGX_OK)
            {
                return NGX_CONF_ERROR;
            }

        } else if (ngx_strncmp(value[i].data, "block=", 6) == 0) {
            if (ngx_http_registry_patterns(cf, &value[i], 6, &reg->block)
                != NGX_OK)
            {
                return NGX_CONF_ERROR;
            }

        } else if (ngx_http_registry_region_option(cf, &region[0], &value[i])
                   != NGX_OK)
        {
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


/*
 * registry_region <name> <url> [host=<name[:port]>] [credentials=<file>];
 *
 * One more place the registry is fetched from, after those declared
 * before it.  Its path prefix is the registry's.
 */

static char *
ngx_http_registry_region(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_registry_main_conf_t *rmcf = conf;

    ngx_str_t                   *value, prefix;
    ngx_uint_t                   i;
    ngx_http_registry_t         *reg;
    ngx_http_registry_region_t  *region;

    value = cf->args->elts;

    ngx_strlow(value[1].data, value[1].data, value[1].len);

    reg = ngx_http_registry_lookup(rmcf, &value[1]);
    if (reg == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "no registry \"%V\" declared before it",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    if (ngx_http_registry_region_add(cf, reg, &value[2], &prefix) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (prefix.len
        && (prefix.len != reg->prefix.len
            || ngx_strncmp(prefix.data, reg->prefix.data, prefix.len) != 0))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "region \"%V\" of registry \"%V\": a region's "
                           "path prefix is the registry's (\"/%V\")",
                           &value[2], &value[1], &reg->prefix);
        return NGX_CONF_ERROR;
    }

    region = reg->regions.elts;
    region = &region[reg->regions.nelts - 1];

    for (i = 3; i < cf->args->nelts; i++) {
        if (ngx_http_registry_region_option(cf, region, &value[i]) != NGX_OK) {
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


/*
 * A region from its URL, "http[s]://host[:port][/prefix]".  The host may
 * name an upstream{} block: it is the region's name.  Host and the TLS
 * name are the URL's unless "host=" says otherwise.
 */

static ngx_int_t
ngx_http_registry_region_add(ngx_conf_t *cf, ngx_http_registry_t *reg,
    ngx_str_t *url, ngx_str_t *prefix)
{
    u_char                      *p, *last, *host, *slash;
    ngx_uint_t                   i;
    ngx_http_registry_region_t  *region;

    p = url->data;
    last = p + url->len;

    if (url->len > 7 && ngx_strncasecmp(p, (u_char *) "http://", 7) == 0) {
        host = p + 7;

    } else if (url->len > 8
               && ngx_strncasecmp(p, (u_char *) "https://", 8) == 0)
    {
        host = p + 8;

    } else {
        goto invalid;
    }

    slash = ngx_strlchr(host, last, '/');
    if (slash == NULL) {
        slash = last;
    }

    if (slash == host) {
        goto invalid;
    }

    for (p = host; p < slash; p++) {
        if (*p <= ' ' || *p >= 0x7f || ngx_strchr("?#@$%\\\"'", *p)) {
            goto invalid;
        }
    }

    /* a region's name is its URL's host[:port]: one region each */

    region = reg->regions.elts;

    for (i = 0; i < reg->regions.nelts; i++) {
        if (region[i].name.len == (size_t) (slash - host)
            && ngx_strncasecmp(region[i].name.data, host, slash - host) == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "registry \"%V\" has region \"%V\" "
                               "already", &reg->name, url);
            return NGX_ERROR;
        }
    }

    region = ngx_array_push(&reg->regions);
    if (region == NULL) {
        return NGX_ERROR;
    }

    ngx_memzero(region, sizeof(ngx_http_registry_region_t));

    region->upstream.data = url->data;
    region->upstream.len = slash - url->data;
    region->host.data = host;
    region->host.len = slash - host;

    if (ngx_http_registry_region_option(cf, region, NULL) != NGX_OK) {
        return NGX_ERROR;
    }

    region->name = region->host;

    /* the path prefix: name components, surrounding slashes dropped */

    prefix->data = slash;
    prefix->len = last - slash;

    while (prefix->len && prefix->data[0] == '/') {
        prefix->data++;
        prefix->len--;
    }

    while (prefix->len && prefix->data[prefix->len - 1] == '/') {
        prefix->len--;
    }

    for (p = prefix->data; p < prefix->data + prefix->len; p = slash + 1) {
        slash = ngx_strlchr(p, prefix->data + prefix->len, '/');
        if (slash == NULL) {
            slash = prefix->data + prefix->len;
        }

        if (ngx_http_registry_valid_component(p, slash - p) != NGX_OK
            && ngx_http_registry_valid_host(p, slash - p) != NGX_OK)
        {
            goto invalid;
        }
    }

    return NGX_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid registry URL \"%V\", expected "
                       "\"http[s]://host[:port][/prefix]\"", url);

    return NGX_ERROR;
}


/*
 * A region's "host=" and "credentials="; with no option, its TLS name
 * made from its Host: the name without the port, an IPv6 literal
 * without its brackets' port.
 */

static ngx_int_t
ngx_http_registry_region_option(ngx_conf_t *cf,
    ngx_http_registry_region_t *region, ngx_str_t *option)
{
    u_char     *p, *last;
    ngx_str_t   file;

    if (option == NULL) {
        goto name;
    }

    if (ngx_strncmp(option->data, "credentials=", 12) == 0) {
        file.len = option->len - 12;
        file.data = option->data + 12;

        return ngx_http_registry_credentials(cf, &file, &region->credentials);
    }

    if (ngx_strncmp(option->data, "host=", 5) != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"", option);
        return NGX_ERROR;
    }

    region->host.data = option->data + 5;
    region->host.len = option->len - 5;

    p = region->host.data;

    if (ngx_http_registry_valid_host(p, region->host.len) != NGX_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid host name in \"%V\"", option);
        return NGX_ERROR;
    }

name:

    p = region->host.data;
    last = p + region->host.len;

    if (p < last && *p == '[') {
        p = ngx_strlchr(p, last, ']');
        last = p ? p + 1 : last;

    } else {
        p = ngx_strlchr(p, last, ':');
        last = p ? p : last;
    }

    region->ssl_name.data = region->host.data;
    region->ssl_name.len = last - region->host.data;

    /* the scheme of the URL, then Host */

    p = ngx_strlchr(region->upstream.data,
                    region->upstream.data + region->upstream.len, ':');

    region->origin.len = (p - region->upstream.data) + 3 + region->host.len;
    region->origin.data = ngx_pnalloc(cf->pool, region->origin.len);
    if (region->origin.data == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(region->origin.data, "%*s://%V",
                (size_t) (p - region->upstream.data), region->upstream.data,
                &region->host);

    return NGX_OK;
}


/*
 * credentials=<file>: one line "user:password", read once at start; kept
 * as a ready "Basic ..." header value, never logged.
 */

static ngx_int_t
ngx_http_registry_credentials(ngx_conf_t *cf, ngx_str_t *name,
    ngx_str_t *basic)
{
    u_char           *p, *last;
    ssize_t           n;
    ngx_fd_t          fd;
    ngx_str_t         plain, b64;
    ngx_file_info_t   fi;
    u_char            buf[1024];

    if (ngx_conf_full_name(cf->cycle, name, 1) != NGX_OK) {
        return NGX_ERROR;
    }

    fd = ngx_open_file(name->data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_open_file_n " \"%V\" failed", name);
        return NGX_ERROR;
    }

    n = -1;

    if (ngx_fd_info(fd, &fi) != NGX_FILE_ERROR
        && ngx_file_size(&fi) < (off_t) sizeof(buf))
    {
        n = ngx_read_fd(fd, buf, sizeof(buf));
    }

    ngx_close_file(fd);

    p = buf;
    last = n > 0 ? buf + n : buf;

    while (last > p && (last[-1] == '\n' || last[-1] == '\r')) {
        last--;
    }

    if (ngx_strlchr(p, last, ':') == NULL || ngx_strlchr(p, last, '\n')) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "credentials file \"%V\" must hold one line "
                           "\"user:password\"", name);
        return NGX_ERROR;
    }

    plain.data = p;
    plain.len = last - p;

    basic->len = sizeof("Basic ") - 1 + ngx_base64_encoded_length(plain.len);
    basic->data = ngx_pnalloc(cf->pool, basic->len);
    if (basic->data == NULL) {
        return NGX_ERROR;
    }

    b64.data = ngx_cpymem(basic->data, "Basic ", 6);
    ngx_encode_base64(&b64, &plain);
    basic->len = 6 + b64.len;

    ngx_explicit_memzero(buf, sizeof(buf));

    return NGX_OK;
}


/*
 * allow=<file>, block=<file>: repository patterns, one a line, "#"
 * comments; read with the configuration, so a reload takes a changed
 * file, and a line that is not a pattern fails it with its number.
 */

static ngx_int_t
ngx_http_registry_patterns(ngx_conf_t *cf, ngx_str_t *option, size_t skip,
    ngx_array_t **list)
{
    u_char           *buf, *p, *last, *eol;
    off_t             size;
    ssize_t           n;
    ngx_fd_t          fd;
    ngx_int_t         rc;
    ngx_str_t         name, line, *pattern;
    ngx_uint_t        lineno;
    ngx_file_info_t   fi;

    if (*list != NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "duplicate parameter \"%V\"", option);
        return NGX_ERROR;
    }

    name.data = option->data + skip;
    name.len = option->len - skip;

    if (name.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"", option);
        return NGX_ERROR;
    }

    if (ngx_conf_full_name(cf->cycle, &name, 1) != NGX_OK) {
        return NGX_ERROR;
    }

    fd = ngx_open_file(name.data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_open_file_n " \"%V\" failed", &name);
        return NGX_ERROR;
    }

    buf = NULL;
    size = 0;

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_fd_info_n " \"%V\" failed", &name);
        goto failed;
    }

    buf = ngx_pnalloc(cf->pool, ngx_file_size(&fi) + 1);
    if (buf == NULL) {
        goto failed;
    }

    while (size < ngx_file_size(&fi)) {
        n = ngx_read_fd(fd, buf + size, ngx_file_size(&fi) - size);

        if (n == -1) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                               ngx_read_fd_n " \"%V\" failed", &name);
            goto failed;
        }

        if (n == 0) {
            break;
        }

        size += n;
    }

    ngx_close_file(fd);

    *list = ngx_array_create(cf->pool, 16, sizeof(ngx_str_t));
    if (*list == NULL) {
        return NGX_ERROR;
    }

    last = buf + size;

    for (p = buf, lineno = 1; p < last; p = eol + 1, lineno++) {
        eol = ngx_strlchr(p, last, '\n');
        if (eol == NULL) {
            eol = last;
        }

        rc = ngx_http_registry_pattern_line(p, eol - p, &line);

        if (rc == NGX_DONE) {
            continue;
        }

        if (rc != NGX_OK) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "%V:%ui: invalid pattern \"%V\", expected "
                               "\"/\" separated segments of [a-z0-9._-] "
                               "and \"*\", or \"**\"",
                               &name, lineno, &line);
            return NGX_ERROR;
        }

        pattern = ngx_array_push(*list);
        if (pattern == NULL) {
            return NGX_ERROR;
        }

        *pattern = line;
    }

    return NGX_OK;

failed:

    ngx_close_file(fd);

    return NGX_ERROR;
}


/* registry_redirect_allow <cidr> ...; "off" clears an inherited list */

static char *
ngx_http_registry_redirect_allow(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_registry_loc_conf_t *rlcf = conf;

    ngx_int_t    rc;
    ngx_str_t   *value;
    ngx_uint_t   i;
    ngx_cidr_t  *cidr;

    value = cf->args->elts;

    if (rlcf->redirect_allow != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    rlcf->redirect_allow = NULL;

    if (cf->args->nelts == 2 && ngx_strcmp(value[1].data, "off") == 0) {
        return NGX_CONF_OK;
    }

    rlcf->redirect_allow = ngx_array_create(cf->pool, cf->args->nelts - 1,
                                            sizeof(ngx_cidr_t));
    if (rlcf->redirect_allow == NULL) {
        return NGX_CONF_ERROR;
    }

    for (i = 1; i < cf->args->nelts; i++) {
        cidr = ngx_array_push(rlcf->redirect_allow);
        if (cidr == NULL) {
            return NGX_CONF_ERROR;
        }

        rc = ngx_ptocidr(&value[i], cidr);

        if (rc == NGX_ERROR) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid address range \"%V\"", &value[i]);
            return NGX_CONF_ERROR;
        }

        if (rc == NGX_DONE) {
            ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                               "low address bits of %V are meaningless",
                               &value[i]);
        }
    }

    return NGX_CONF_OK;
}


/* registry_auth_relay; the location is the token relay */

static char *
ngx_http_registry_auth_relay(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_registry_loc_conf_t *rlcf = conf;

    if (rlcf->auth_relay != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    rlcf->auth_relay = 1;

    return NGX_CONF_OK;
}


/*
 * registry_metrics; registry_health: the location answers with them, and
 * is not a mirror location (not routed, whatever its server says).
 */

static char *
ngx_http_registry_answer_with(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_registry_loc_conf_t *rlcf = conf;

    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->handler) {
        return "is duplicate";
    }

    clcf->handler = (ngx_http_handler_pt) cmd->post;
    rlcf->mirror = 0;

    return NGX_CONF_OK;
}


/* registry_zone <size>; */

static char *
ngx_http_registry_zone_size(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_registry_main_conf_t *rmcf = conf;

    ssize_t     size;
    ngx_str_t  *value;

    value = cf->args->elts;

    if (rmcf->zone_size != NGX_CONF_UNSET_SIZE) {
        return "is duplicate";
    }

    size = ngx_parse_size(&value[1]);

    if (size == NGX_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone size \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    if (size < (ssize_t) (8 * ngx_pagesize)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "registry_zone \"%V\" is too small, "
                           "%uzk at least", &value[1],
                           8 * ngx_pagesize / 1024);
        return NGX_CONF_ERROR;
    }

    rmcf->zone_size = size;

    return NGX_CONF_OK;
}


/* registry_alias <host> <registry>; the registry is found at merge time */

static char *
ngx_http_registry_alias(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_registry_loc_conf_t *rlcf = conf;

    ngx_str_t                  *value;
    ngx_http_registry_alias_t  *alias;

    value = cf->args->elts;

    if (rlcf->aliases == NULL) {
        rlcf->aliases = ngx_array_create(cf->pool, 4,
                                         sizeof(ngx_http_registry_alias_t));
        if (rlcf->aliases == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    alias = ngx_array_push(rlcf->aliases);
    if (alias == NULL) {
        return NGX_CONF_ERROR;
    }

    /* r->headers_in.server is lower case, without port or trailing dot */

    ngx_strlow(value[1].data, value[1].data, value[1].len);

    alias->host = value[1];
    alias->name = value[2];
    alias->registry = NULL;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_registry_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_registry_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


static void *
ngx_http_registry_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_registry_main_conf_t  *rmcf;

    rmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_registry_main_conf_t));
    if (rmcf == NULL) {
        return NULL;
    }

    if (ngx_array_init(&rmcf->registries, cf->pool, 4,
                       sizeof(ngx_http_registry_t))
        != NGX_OK)
    {
        return NULL;
    }

    rmcf->zone_size = NGX_CONF_UNSET_SIZE;
    rmcf->history_entries = NGX_CONF_UNSET_UINT;
    rmcf->counters = NGX_CONF_UNSET;

    return rmcf;
}


/*
 * The node id for CDN-Loop; the shared zone, only where there is a
 * registry to keep anything for.
 */

static char *
ngx_http_registry_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_registry_main_conf_t *rmcf = conf;

    ngx_uint_t            i;
    ngx_http_registry_t  *reg;

    if (rmcf->node_id.data == NULL
        && ngx_http_registry_node_id(cf, &rmcf->node_id) != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    ngx_conf_init_size_value(rmcf->zone_size, NGX_HTTP_REGISTRY_ZONE_SIZE);
    ngx_conf_init_value(rmcf->counters, 1);

    /* what marks a private fill from each registry's upstream */

    reg = rmcf->registries.elts;

    for (i = 0; i < rmcf->registries.nelts; i++) {
        if (ngx_http_registry_auth_private_mark(cf->pool, &reg[i],
                                                reg[i].private_mark)
            != NGX_OK)
        {
            return NGX_CONF_ERROR;
        }
    }

    if (ngx_http_registry_tls_names(cf, rmcf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    ngx_conf_init_uint_value(rmcf->history_entries,
                             NGX_HTTP_REGISTRY_HISTORY_ENTRIES);

    if (rmcf->registries.nelts) {
        rmcf->zone = ngx_http_registry_zone_add(cf, rmcf->zone_size,
                                                &ngx_http_registry_module);
        if (rmcf->zone == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


/*
 * nginx keeps one TLS session, and one set of idle connections, per server
 * of an upstream{} block, whatever name they were made for: a session a
 * server gave under one TLS name is offered under the next (its
 * certificate then fails that name's check), and a kept connection
 * checked for one name would carry another's requests.  So the block an
 * https region reaches, found as proxy_pass finds it (a block has no
 * port: a URL without one; a "proxy_pass https://host[:port]" elsewhere
 * makes one with its port, 443 if none), is reached under one TLS name.
 */

typedef struct {
    ngx_http_upstream_srv_conf_t   *block;
    ngx_http_registry_t            *registry;
    ngx_http_registry_region_t     *region;
} ngx_http_registry_tls_use_t;


static ngx_int_t
ngx_http_registry_tls_names(ngx_conf_t *cf,
    ngx_http_registry_main_conf_t *rmcf)
{
    ngx_url_t                       u;
    ngx_uint_t                      i, j, k;
    ngx_array_t                     uses;
    ngx_http_registry_t            *reg;
    ngx_http_registry_region_t     *region;
    ngx_http_upstream_srv_conf_t  **uscfp;
    ngx_http_upstream_main_conf_t  *umcf;
    ngx_http_registry_tls_use_t    *use, *a, *b;

    umcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_upstream_module);
    uscfp = umcf->upstreams.elts;

    if (ngx_array_init(&uses, cf->temp_pool, 4,
                       sizeof(ngx_http_registry_tls_use_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    reg = rmcf->registries.elts;

    for (i = 0; i < rmcf->registries.nelts; i++) {
        region = reg[i].regions.elts;

        for (j = 0; j < reg[i].regions.nelts; j++) {

            if (region[j].upstream.len < 8
                || ngx_strncasecmp(region[j].upstream.data,
                                   (u_char *) "https://", 8)
                   != 0)
            {
                continue;
            }

            ngx_memzero(&u, sizeof(ngx_url_t));

            u.url.len = region[j].upstream.len - 8;
            u.url.data = region[j].upstream.data + 8;
            u.default_port = 443;
            u.no_resolve = 1;

            if (ngx_parse_url(cf->pool, &u) != NGX_OK) {
                continue;
            }

            for (k = 0; k < umcf->upstreams.nelts; k++) {
                if (uscfp[k]->host.len == u.host.len
                    && ((uscfp[k]->port == 0 && u.no_port)
                        || uscfp[k]->port == u.port)
                    && ngx_strncasecmp(uscfp[k]->host.data, u.host.data,
                                       u.host.len)
                       == 0)
                {
                    break;
                }
            }

            if (k == umcf->upstreams.nelts) {
                continue;           /* resolved at request time */
            }

            use = ngx_array_push(&uses);
            if (use == NULL) {
                return NGX_ERROR;
            }

            use->block = uscfp[k];
            use->registry = &reg[i];
            use->region = &region[j];
        }
    }

    use = uses.elts;

    for (i = 0; i < uses.nelts; i++) {
        for (j = i + 1; j < uses.nelts; j++) {
            a = &use[i];
            b = &use[j];

            if (a->block != b->block
                || (a->region->ssl_name.len == b->region->ssl_name.len
                    && ngx_strncasecmp(a->region->ssl_name.data,
                                       b->region->ssl_name.data,
                                       a->region->ssl_name.len)
                       == 0))
            {
                continue;
            }

            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "registry \"%V\" (%V) and registry \"%V\" (%V) "
                          "reach one upstream, \"%V\" of %s:%ui, under the "
                          "TLS names \"%V\" and \"%V\": nginx keeps one TLS "
                          "session and one set of idle connections per "
                          "server, whatever the name; give each name an "
                          "upstream{} block of its own",
                          &a->registry->name, &a->region->upstream,
                          &b->registry->name, &b->region->upstream,
                          &a->block->host,
                          a->block->file_name ? a->block->file_name
                                              : (u_char *) "nginx.conf",
                          a->block->line, &a->region->ssl_name,
                          &b->region->ssl_name);
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static void *
ngx_http_registry_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_registry_loc_conf_t  *rlcf;

    rlcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_registry_loc_conf_t));
    if (rlcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     rlcf->aliases = NULL;
     *     rlcf->region_first = NULL;
     *     rlcf->default_name = { 0, NULL };
     *     rlcf->default_registry = NULL;
     */

    rlcf->mirror = NGX_CONF_UNSET;
    rlcf->cache_header = NGX_CONF_UNSET;
    rlcf->verify = NGX_CONF_UNSET;
    rlcf->upstream_errors = NGX_CONF_UNSET;
    rlcf->redirect_http = NGX_CONF_UNSET;
    rlcf->client_credentials = NGX_CONF_UNSET;
    rlcf->auth_relay = NGX_CONF_UNSET;
    rlcf->auth_valid = NGX_CONF_UNSET;
    rlcf->redirect_allow = NGX_CONF_UNSET_PTR;
    rlcf->tag_valid = NGX_CONF_UNSET;
    rlcf->digest_valid = NGX_CONF_UNSET;
    rlcf->tag_check_timeout = NGX_CONF_UNSET_MSEC;
    rlcf->immutable_tags = NGX_CONF_UNSET_PTR;

    return rlcf;
}


/*
 * All "registry" directives are known by the time locations are merged,
 * so names given to registry_alias and registry_default are resolved here
 * and a typo fails "nginx -t" instead of a request.
 */

static char *
ngx_http_registry_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_registry_loc_conf_t *prev = parent;
    ngx_http_registry_loc_conf_t *conf = child;

    ngx_uint_t                      i;
    ngx_http_registry_alias_t      *alias;
    ngx_http_registry_main_conf_t  *rmcf;

    rmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_registry_module);

    ngx_conf_merge_value(conf->mirror, prev->mirror, 0);
    ngx_conf_merge_value(conf->cache_header, prev->cache_header, 1);
    ngx_conf_merge_value(conf->verify, prev->verify, 1);
    ngx_conf_merge_value(conf->upstream_errors, prev->upstream_errors, 0);
    ngx_conf_merge_value(conf->redirect_http, prev->redirect_http, 0);
    ngx_conf_merge_value(conf->client_credentials,
                         prev->client_credentials, 1);
    ngx_conf_merge_ptr_value(conf->redirect_allow, prev->redirect_allow,
                             NULL);
    ngx_conf_merge_sec_value(conf->auth_valid, prev->auth_valid, 60);
    ngx_conf_merge_str_value(conf->auth_realm, prev->auth_realm, "");

    /* a location of its own: not inherited */
    if (conf->auth_relay == NGX_CONF_UNSET) {
        conf->auth_relay = 0;
    }
    ngx_conf_merge_sec_value(conf->tag_valid, prev->tag_valid, 60);
    ngx_conf_merge_sec_value(conf->digest_valid, prev->digest_valid,
                             365 * 24 * 60 * 60);
    ngx_conf_merge_msec_value(conf->tag_check_timeout,
                              prev->tag_check_timeout, 5000);
    ngx_conf_merge_ptr_value(conf->immutable_tags, prev->immutable_tags,
                             NULL);
    ngx_conf_merge_str_value(conf->default_name, prev->default_name, "");

    if (conf->aliases == NULL) {
        conf->aliases = prev->aliases;
    }

    if (conf->region_first == NULL) {
        conf->region_first = prev->region_first;
    }

    if (conf->aliases) {
        alias = conf->aliases->elts;

        for (i = 0; i < conf->aliases->nelts; i++) {
            if (alias[i].registry) {
                continue;
            }

            alias[i].registry = ngx_http_registry_lookup(rmcf, &alias[i].name);
            if (alias[i].registry == NULL) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "registry_alias \"%V\": no registry "
                                   "\"%V\"", &alias[i].host, &alias[i].name);
                return NGX_CONF_ERROR;
            }
        }
    }

    if (conf->default_name.len && conf->default_registry == NULL) {
        conf->default_registry = ngx_http_registry_lookup(rmcf,
                                                         &conf->default_name);
        if (conf->default_registry == NULL) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "registry_default: no registry \"%V\"",
                               &conf->default_name);
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_registry_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_PREACCESS_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_registry_handler;

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_PRECONTENT_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_registry_answer_handler;

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_PRECONTENT_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_registry_auth_handler;

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_PRECONTENT_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_registry_relay_handler;

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_ACCESS_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_registry_upstream_error;

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_registry_tag_log_handler;

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_registry_metrics_log_handler;

    return ngx_http_registry_header_filter_init(cf);
}


/* in the master, once the zones are made, at start and on every reload */

static ngx_int_t
ngx_http_registry_init_module(ngx_cycle_t *cycle)
{
    if (ngx_http_registry_metrics_init(cycle) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_registry_history_init(cycle);
}


static void
ngx_http_registry_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_registry_history_exit(cycle);
}


/*
 * The counters are reached from code that has no configuration at hand
 * (the verifier): each worker points them at its cycle's zone, or at
 * nothing when this configuration has no registry.
 */

static ngx_int_t
ngx_http_registry_init_process(ngx_cycle_t *cycle)
{
    ngx_http_registry_main_conf_t  *rmcf;

    rmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_registry_module);

    ngx_http_registry_counters = (rmcf && rmcf->zone)
                                 ? ngx_http_registry_zone_counters(rmcf->zone)
                                 : NULL;

    return NGX_OK;
}
