
/*
 * Copyright (C) ngx_registry_module authors
 */


#ifndef _NGX_HTTP_REGISTRY_GRAMMAR_H_INCLUDED_
#define _NGX_HTTP_REGISTRY_GRAMMAR_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


/*
 * The distribution grammar, on raw bytes: names, tags, digests and hosts
 * (each check returns NGX_OK or NGX_DECLINED), and the request path and
 * query arguments parsed with them.  Nothing here knows about requests,
 * so all of it can be unit tested and fuzzed on its own.
 */

#define NGX_HTTP_REGISTRY_NAME_MAX     255
#define NGX_HTTP_REGISTRY_TAG_MAX      128
#define NGX_HTTP_REGISTRY_DIGEST_MAX   (sizeof("sha512:") - 1 + 128)


#define NGX_HTTP_REGISTRY_BASE         1
#define NGX_HTTP_REGISTRY_MANIFEST     2
#define NGX_HTTP_REGISTRY_BLOB         3
#define NGX_HTTP_REGISTRY_TAGS         4
#define NGX_HTTP_REGISTRY_REFERRERS    5


/* the OCI error a request gets instead of going upstream */

typedef struct {
    ngx_uint_t                 status;
    ngx_str_t                  code;
    ngx_str_t                  message;
} ngx_http_registry_error_t;


/* what a raw "/v2/..." path asks for */

typedef struct {
    ngx_uint_t                 endpoint;
    ngx_str_t                  prefix;      /* host-like first segment */
    ngx_str_t                  name;        /* repository, as requested */
    ngx_str_t                  reference;   /* tag or digest */
    unsigned                   digest:1;
} ngx_http_registry_path_t;


/* the query arguments a pull may carry, checked */

/* a host name of 253 bytes and ":65535" */
#define NGX_HTTP_REGISTRY_NS_MAX       260


typedef struct {
    ngx_str_t                  ns;          /* decoded, in ns_buf */
    u_char                     ns_buf[NGX_HTTP_REGISTRY_NS_MAX];
    ngx_str_t                  n;
    ngx_str_t                  last;
    ngx_str_t                  artifact_type;
} ngx_http_registry_args_t;


ngx_int_t ngx_http_registry_valid_component(u_char *p, size_t len);
ngx_int_t ngx_http_registry_valid_tag(u_char *p, size_t len);
ngx_int_t ngx_http_registry_valid_digest(u_char *p, size_t len);
ngx_int_t ngx_http_registry_valid_host(u_char *p, size_t len);
ngx_int_t ngx_http_registry_host_like(u_char *p, size_t len);
ngx_int_t ngx_http_registry_parse_path(u_char *p, size_t len,
    ngx_http_registry_path_t *path, ngx_http_registry_error_t *err);
ngx_int_t ngx_http_registry_parse_args(u_char *p, size_t len,
    ngx_http_registry_args_t *args, ngx_http_registry_error_t *err);


#endif /* _NGX_HTTP_REGISTRY_GRAMMAR_H_INCLUDED_ */
