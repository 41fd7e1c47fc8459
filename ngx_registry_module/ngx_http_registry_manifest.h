
/*
 * Copyright (C) ngx_registry_module authors
 */


#ifndef _NGX_HTTP_REGISTRY_MANIFEST_H_INCLUDED_
#define _NGX_HTTP_REGISTRY_MANIFEST_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


/* what a manifest body says about itself */

typedef struct {
    ngx_str_t                  media_type;  /* a top-level mediaType that
                                               differs, raw */
    ngx_str_t                  head;        /* a schema 1 JWS: the body up
                                               to formatLength ... */
    ngx_str_t                  tail;        /* ... and formatTail, decoded:
                                               together, what its digest
                                               covers */
    unsigned                   jws:1;
} ngx_http_registry_manifest_t;


ngx_int_t ngx_http_registry_manifest_parse(ngx_str_t *body, ngx_str_t *type,
    ngx_http_registry_manifest_t *m, u_char *scratch);


#endif /* _NGX_HTTP_REGISTRY_MANIFEST_H_INCLUDED_ */
