
/*
 * Copyright (C) ngx_registry_module authors
 */


#ifndef _NGX_HTTP_REGISTRY_RESPONSE_H_INCLUDED_
#define _NGX_HTTP_REGISTRY_RESPONSE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_registry_grammar.h"


#define NGX_HTTP_REGISTRY_LOOP_DETECTED  508


typedef ngx_int_t (*ngx_http_registry_header_pt)(ngx_table_elt_t *h,
    void *data);


ngx_int_t ngx_http_registry_send_error(ngx_http_request_t *r,
    ngx_http_registry_error_t *err);
ngx_int_t ngx_http_registry_send_oci_error(ngx_http_request_t *r,
    ngx_uint_t status, char *code, char *message);
ngx_int_t ngx_http_registry_send(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *body);
ngx_int_t ngx_http_registry_send_body(ngx_http_request_t *r,
    ngx_uint_t status, ngx_str_t *type, ngx_str_t *body);
ngx_int_t ngx_http_registry_set_header(ngx_http_request_t *r, ngx_str_t *key,
    ngx_str_t *value);
ngx_int_t ngx_http_registry_headers(ngx_list_t *headers, ngx_str_t *name,
    ngx_http_registry_header_pt handler, void *data);
ngx_int_t ngx_http_registry_first_line(ngx_table_elt_t *h, void *data);
ngx_int_t ngx_http_registry_first_bearer(ngx_table_elt_t *h, void *data);
ngx_int_t ngx_http_registry_first_basic(ngx_table_elt_t *h, void *data);
ngx_int_t ngx_http_registry_subrequest_done(ngx_http_request_t *r,
    ngx_int_t rc, ngx_uint_t *failed);
ngx_int_t ngx_http_registry_hide_line(ngx_table_elt_t *h, void *data);


static ngx_inline void
ngx_http_registry_set_value(ngx_http_variable_value_t *v, ngx_str_t *s)
{
    v->len = s->len;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;
    v->data = s->data;
}


#endif /* _NGX_HTTP_REGISTRY_RESPONSE_H_INCLUDED_ */
