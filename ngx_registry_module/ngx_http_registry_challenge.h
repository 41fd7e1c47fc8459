
/*
 * Copyright (C) ngx_registry_module authors
 */


#ifndef _NGX_HTTP_REGISTRY_CHALLENGE_H_INCLUDED_
#define _NGX_HTTP_REGISTRY_CHALLENGE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


/* how long an upstream token is kept at most, whatever expires_in says */

#define NGX_HTTP_REGISTRY_TOKEN_MAX_AGE  3600

/* the longest upstream token taken */

#define NGX_HTTP_REGISTRY_TOKEN_LEN      16384


/* a WWW-Authenticate challenge, as registries send it */

typedef struct {
    ngx_uint_t                 bearer;      /* else Basic */
    ngx_str_t                  realm;
    ngx_str_t                  service;
    ngx_str_t                  scope;       /* empty if not named */
} ngx_http_registry_challenge_t;


ngx_int_t ngx_http_registry_challenge_parse(u_char *p, size_t len,
    ngx_http_registry_challenge_t *ch);
ngx_int_t ngx_http_registry_token_parse(u_char *p, size_t len, u_char *buf,
    ngx_str_t *token, time_t *expires_in);


#endif /* _NGX_HTTP_REGISTRY_CHALLENGE_H_INCLUDED_ */
