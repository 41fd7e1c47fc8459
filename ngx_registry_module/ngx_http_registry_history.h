
/*
 * Copyright (C) ngx_registry_module authors
 */


#ifndef _NGX_HTTP_REGISTRY_HISTORY_H_INCLUDED_
#define _NGX_HTTP_REGISTRY_HISTORY_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


/* entries kept per tag unless registry_tag_history says entries= */
#define NGX_HTTP_REGISTRY_HISTORY_ENTRIES   16
#define NGX_HTTP_REGISTRY_HISTORY_MAX       1024

/* how often at most "last seen" alone is written to the journal */
#define NGX_HTTP_REGISTRY_HISTORY_INTERVAL  60


/*
 * the mirror served <digest> (<media_type>) for tag <tag> of <repository>
 * on <registry>, to a request whose normalised Accept was <accept>
 */
ngx_int_t ngx_http_registry_history_seen(ngx_http_request_t *r,
    ngx_str_t *registry, ngx_str_t *repository, ngx_str_t *tag,
    ngx_str_t *accept, ngx_str_t *digest, ngx_str_t *media_type);

/*
 * the digest (and its media type) most recently seen for that tag and
 * Accept: NGX_OK, NGX_DECLINED when none is known; copies in pool
 */
ngx_int_t ngx_http_registry_history_last(ngx_http_request_t *r,
    ngx_str_t *registry, ngx_str_t *repository, ngx_str_t *tag,
    ngx_str_t *accept, ngx_pool_t *pool, ngx_str_t *digest,
    ngx_str_t *media_type);

char *ngx_http_registry_history(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_registry_history_api(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_registry_history_init(ngx_cycle_t *cycle);
void ngx_http_registry_history_exit(ngx_cycle_t *cycle);


#endif /* _NGX_HTTP_REGISTRY_HISTORY_H_INCLUDED_ */
