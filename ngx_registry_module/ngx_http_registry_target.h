
/*
 * Copyright (C) ngx_registry_module authors
 */


#ifndef _NGX_HTTP_REGISTRY_TARGET_H_INCLUDED_
#define _NGX_HTTP_REGISTRY_TARGET_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_registry.h"


/*
 * Of nginx's ten internal redirects a request may make, the ones kept for
 * region failover (a later step): a hop or a token retry is not started
 * unless it, the error page after it and these still fit.
 */
#define NGX_HTTP_REGISTRY_FAILOVER_REDIRECTS  2


/* a URL an upstream named: a redirect's Location or a token realm */

struct ngx_http_registry_target_s {
    ngx_http_request_t           *request;
    char                         *what;      /* for the log */
    char                         *error;     /* why it was refused */
    ngx_str_t                     absolute;  /* as named, made absolute */
    ngx_str_t                     url;       /* scheme://address:port/uri */
    ngx_str_t                     host;      /* Host: as named */
    ngx_str_t                     name;      /* TLS name */
    ngx_str_t                     scheme;
    ngx_str_t                     uri;
    in_port_t                     port;
    ngx_resolver_ctx_t           *resolving;
    ngx_int_t                     state;
    ngx_str_t                     address;   /* checked, with port */
    unsigned                      https:1;
    unsigned                      refused:1;
    unsigned                      busy:1;
    unsigned                      done:1;
    unsigned                      waiting:1;
    unsigned                      origin:1;  /* a realm on the region's
                                                origin: not checked */
};


ngx_int_t ngx_http_registry_target_parse(ngx_http_request_t *r,
    ngx_http_registry_target_t *t, ngx_str_t *ref, ngx_str_t *base);
ngx_int_t ngx_http_registry_target_check(ngx_http_request_t *r,
    ngx_http_registry_target_t *t);
void ngx_http_registry_target_cleanup(void *data);
ngx_int_t ngx_http_registry_addr_allowed(struct sockaddr *sa,
    ngx_array_t *allow);
ngx_uint_t ngx_http_registry_redirects_left(ngx_http_request_t *r);
ngx_int_t ngx_http_registry_realm(ngx_http_request_t *r, ngx_str_t *url,
    ngx_http_registry_region_t *region, ngx_http_registry_target_t **tp);
ngx_int_t ngx_http_registry_realm_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);


#endif /* _NGX_HTTP_REGISTRY_TARGET_H_INCLUDED_ */
