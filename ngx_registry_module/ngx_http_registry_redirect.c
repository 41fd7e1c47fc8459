
/*
 * Copyright (C) ngx_registry_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_registry_module.h"


/*
 * Upstream redirects (a blob on a CDN, everything on registry.k8s.io) are
 * followed by the mirror, never shown to the client.  A redirect target
 * is untrusted: https only (unless registry_redirect_http), and the
 * address its host resolves to, with nginx's resolver, must not be
 * loopback, private, link-local, unspecified, multicast or IPv4-mapped
 * IPv6 unless registry_redirect_allow names it; every address a name
 * resolves to is checked, at every hop.  The request then goes to the
 * checked address itself, with the target's name as Host and TLS name,
 * and without the upstream's Authorization; what comes back is cached
 * under the digest and verified like any fill.
 */


typedef struct {
    ngx_http_request_t           *request;
    ngx_uint_t                    hops;
    ngx_str_t                     url;      /* scheme://address:port/uri */
    ngx_str_t                     host;     /* Host: as in the Location */
    ngx_str_t                     name;     /* TLS name */

    /* the hop being worked on */
    ngx_str_t                     scheme;
    ngx_str_t                     uri;
    in_port_t                     port;
    ngx_resolver_ctx_t           *resolving;
    ngx_int_t                     state;
    ngx_str_t                     address;  /* checked, with port */
    ngx_str_t                     refused;  /* why not */
    unsigned                      busy:1;
    unsigned                      done:1;
    unsigned                      waiting:1;
} ngx_http_registry_redirect_t;


static ngx_http_registry_redirect_t *ngx_http_registry_redirect_state(
    ngx_http_request_t *r, ngx_uint_t create);
static void ngx_http_registry_redirect_cleanup(void *data);
static ngx_int_t ngx_http_registry_redirect_parse(ngx_http_request_t *r,
    ngx_http_registry_redirect_t *st, ngx_str_t *location);
static void ngx_http_registry_redirect_resolved(ngx_resolver_ctx_t *ctx);
static ngx_int_t ngx_http_registry_redirect_check(ngx_http_request_t *r,
    ngx_http_registry_redirect_t *st, struct sockaddr *sa,
    socklen_t socklen);
static ngx_int_t ngx_http_registry_redirect_go(ngx_http_request_t *r,
    ngx_http_registry_redirect_t *st);
static ngx_int_t ngx_http_registry_redirect_fail(ngx_http_request_t *r,
    char *message);


static ngx_str_t  ngx_http_registry_redirect_uri =
    ngx_string("/_registry/redirect");


/*
 * Called from the upstream-error location for an upstream 3xx, and again
 * when the name of the target has been resolved.
 */

ngx_int_t
ngx_http_registry_redirect(ngx_http_request_t *r)
{
    u_char                        *p;
    in_addr_t                      addr;
    ngx_str_t                      location;
    ngx_resolver_ctx_t            *rctx;
    ngx_http_core_loc_conf_t      *clcf;
    ngx_http_registry_redirect_t  *st;
#if (NGX_HAVE_INET6)
    u_char                         a6[16];
    struct sockaddr_in6            sin6;
#endif
    struct sockaddr_in             sin;

    st = ngx_http_registry_redirect_state(r, 1);
    if (st == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (st->busy) {
        if (!st->done) {
            return NGX_AGAIN;
        }

        goto resolved;
    }

    if (++st->hops > NGX_HTTP_REGISTRY_REDIRECTS_MAX) {
        return ngx_http_registry_redirect_fail(r, "too many redirects");
    }

    if (r->upstream->headers_in.location == NULL) {
        return ngx_http_registry_redirect_fail(r, "redirect without Location");
    }

    location = r->upstream->headers_in.location->value;

    if (ngx_http_registry_redirect_parse(r, st, &location) != NGX_OK) {
        return NGX_DONE;
    }

    /* an address literal needs no resolver, and is checked as it is */

    addr = ngx_inet_addr(st->name.data, st->name.len);

    if (addr != INADDR_NONE) {
        ngx_memzero(&sin, sizeof(struct sockaddr_in));
        sin.sin_family = AF_INET;
        sin.sin_addr.s_addr = addr;

        if (ngx_http_registry_redirect_check(r, st, (struct sockaddr *) &sin,
                                             sizeof(struct sockaddr_in))
            != NGX_OK)
        {
            return ngx_http_registry_redirect_fail(r, "refused address");
        }

        return ngx_http_registry_redirect_go(r, st);
    }

#if (NGX_HAVE_INET6)
    if (st->name.len > 2 && st->name.data[0] == '[') {
        if (ngx_inet6_addr(st->name.data + 1, st->name.len - 2, a6)
            != NGX_OK)
        {
            return ngx_http_registry_redirect_fail(r, "bad address");
        }

        ngx_memzero(&sin6, sizeof(struct sockaddr_in6));
        sin6.sin6_family = AF_INET6;
        ngx_memcpy(sin6.sin6_addr.s6_addr, a6, 16);

        if (ngx_http_registry_redirect_check(r, st,
                                             (struct sockaddr *) &sin6,
                                             sizeof(struct sockaddr_in6))
            != NGX_OK)
        {
            return ngx_http_registry_redirect_fail(r, "refused address");
        }

        return ngx_http_registry_redirect_go(r, st);
    }
#endif

    for (p = st->name.data; p < st->name.data + st->name.len; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
              || (*p >= '0' && *p <= '9') || *p == '-' || *p == '.'))
        {
            return ngx_http_registry_redirect_fail(r, "bad host name");
        }
    }

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    rctx = ngx_resolve_start(clcf->resolver, NULL);

    if (rctx == NULL || rctx == NGX_NO_RESOLVER) {
        return ngx_http_registry_redirect_fail(r,
                                  "no resolver for the redirect target");
    }

    rctx->name = st->name;
    rctx->handler = ngx_http_registry_redirect_resolved;
    rctx->data = st;
    rctx->timeout = clcf->resolver_timeout;

    st->request = r;
    st->busy = 1;
    st->done = 0;
    st->resolving = rctx;

    if (ngx_resolve_name(rctx) != NGX_OK) {
        st->resolving = NULL;
        st->busy = 0;
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (!st->done) {
        st->waiting = 1;
        return NGX_AGAIN;
    }

resolved:

    st->busy = 0;
    st->done = 0;
    st->waiting = 0;

    if (st->state != NGX_OK) {
        return ngx_http_registry_redirect_fail(r,
                                  "the redirect target does not resolve");
    }

    if (st->refused.len) {
        return ngx_http_registry_redirect_fail(r, "refused address");
    }

    return ngx_http_registry_redirect_go(r, st);
}


static void
ngx_http_registry_redirect_resolved(ngx_resolver_ctx_t *ctx)
{
    ngx_http_registry_redirect_t  *st = ctx->data;

    ngx_uint_t           i;
    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    r = st->request;
    c = r->connection;

    st->state = ctx->state;
    st->resolving = NULL;

    if (ctx->state == NGX_OK) {
        for (i = 0; i < ctx->naddrs; i++) {
            if (ngx_http_registry_redirect_check(r, st, ctx->addrs[i].sockaddr,
                                                 ctx->addrs[i].socklen)
                != NGX_OK)
            {
                break;
            }
        }
    }

    ngx_resolve_name_done(ctx);

    st->done = 1;

    if (st->waiting) {
        ngx_http_core_run_phases(r);
        ngx_http_run_posted_requests(c);
    }
}


/*
 * Every address must pass; the first one is the one used.  The port is
 * the target's.
 */

static ngx_int_t
ngx_http_registry_redirect_check(ngx_http_request_t *r,
    ngx_http_registry_redirect_t *st, struct sockaddr *sa, socklen_t socklen)
{
    u_char                        *p;
    size_t                         len;
    ngx_http_registry_loc_conf_t  *rlcf;

    rlcf = ngx_http_get_module_loc_conf(r, ngx_http_registry_module);

    ngx_inet_set_port(sa, st->port);

    len = NGX_SOCKADDR_STRLEN;
    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        st->refused.len = 1;
        return NGX_ERROR;
    }

    len = ngx_sock_ntop(sa, socklen, p, len, 1);

    if (ngx_http_registry_addr_allowed(sa, rlcf->redirect_allow) != NGX_OK) {
        st->refused.data = p;
        st->refused.len = len;

        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "registry: redirect to \"%V\" refused: it is %V",
                      &st->name, &st->refused);
        return NGX_ERROR;
    }

    if (st->address.len == 0) {
        st->address.data = p;
        st->address.len = len;
    }

    return NGX_OK;
}


/*
 * Loopback, private, shared (CGNAT), link-local, unspecified, multicast
 * and reserved IPv4; IPv6 loopback, unspecified, link-local, unique local,
 * multicast, and every IPv4-mapped or -compatible address.
 */

ngx_int_t
ngx_http_registry_addr_allowed(struct sockaddr *sa, ngx_array_t *allow)
{
    in_addr_t             a;
    ngx_uint_t            i, n;
    ngx_cidr_t           *cidr;
    struct sockaddr_in   *sin;
#if (NGX_HAVE_INET6)
    u_char               *a6;
    struct sockaddr_in6  *sin6;
#endif

    if (allow) {
        cidr = allow->elts;

        for (i = 0; i < allow->nelts; i++) {

            if (cidr[i].family != sa->sa_family) {
                continue;
            }

            if (sa->sa_family == AF_INET) {
                sin = (struct sockaddr_in *) sa;

                if ((sin->sin_addr.s_addr & cidr[i].u.in.mask)
                    == cidr[i].u.in.addr)
                {
                    return NGX_OK;
                }
            }

#if (NGX_HAVE_INET6)
            if (sa->sa_family == AF_INET6) {
                sin6 = (struct sockaddr_in6 *) sa;
                a6 = sin6->sin6_addr.s6_addr;

                for (n = 0; n < 16; n++) {
                    if ((a6[n] & cidr[i].u.in6.mask.s6_addr[n])
                        != cidr[i].u.in6.addr.s6_addr[n])
                    {
                        break;
                    }
                }

                if (n == 16) {
                    return NGX_OK;
                }
            }
#endif
        }
    }

    switch (sa->sa_family) {

    case AF_INET:
        sin = (struct sockaddr_in *) sa;
        a = ntohl(sin->sin_addr.s_addr);

        if ((a >> 24) == 0                          /* 0.0.0.0/8 */
            || (a >> 24) == 10                      /* 10.0.0.0/8 */
            || (a >> 24) == 127                     /* 127.0.0.0/8 */
            || (a & 0xffc00000) == 0x64400000       /* 100.64.0.0/10 */
            || (a & 0xffff0000) == 0xa9fe0000       /* 169.254.0.0/16 */
            || (a & 0xfff00000) == 0xac100000       /* 172.16.0.0/12 */
            || (a & 0xffff0000) == 0xc0a80000       /* 192.168.0.0/16 */
            || (a & 0xffffff00) == 0xc0000000       /* 192.0.0.0/24 */
            || (a >> 28) >= 0xe)                    /* multicast, 240/4 */
        {
            return NGX_DECLINED;
        }

        return NGX_OK;

#if (NGX_HAVE_INET6)
    case AF_INET6:
        sin6 = (struct sockaddr_in6 *) sa;
        a6 = sin6->sin6_addr.s6_addr;

        for (n = 0; n < 10 && a6[n] == 0; n++) { /* void */ }

        if (n == 10) {
            /* ::, ::1, ::a.b.c.d and ::ffff:a.b.c.d */
            return NGX_DECLINED;
        }

        if ((a6[0] == 0xfe && (a6[1] & 0xc0) == 0x80)   /* fe80::/10 */
            || (a6[0] & 0xfe) == 0xfc                   /* fc00::/7 */
            || a6[0] == 0xff)                           /* ff00::/8 */
        {
            return NGX_DECLINED;
        }

        return NGX_OK;
#endif

    default:
        return NGX_DECLINED;
    }
}


/* Location: https://host[:port]/path?query (registries send absolute ones) */

static ngx_int_t
ngx_http_registry_redirect_parse(ngx_http_request_t *r,
    ngx_http_registry_redirect_t *st, ngx_str_t *location)
{
    u_char                        *p, *last, *host, *colon;
    ngx_int_t                      port;
    ngx_uint_t                     https;
    ngx_http_registry_loc_conf_t  *rlcf;

    rlcf = ngx_http_get_module_loc_conf(r, ngx_http_registry_module);

    p = location->data;
    last = p + location->len;

    if (location->len > 8 && ngx_strncasecmp(p, (u_char *) "https://", 8) == 0)
    {
        https = 1;
        p += 8;

    } else if (location->len > 7
               && ngx_strncasecmp(p, (u_char *) "http://", 7) == 0)
    {
        https = 0;
        p += 7;

        if (!rlcf->redirect_http) {
            ngx_http_registry_redirect_fail(r, "redirect to http refused");
            return NGX_ERROR;
        }

    } else {
        ngx_http_registry_redirect_fail(r, "bad redirect");
        return NGX_ERROR;
    }

    host = p;

    while (p < last && *p != '/' && *p != '?' && *p != '#') {
        if (*p == '@' || *p == '\\' || *p == '%') {
            ngx_http_registry_redirect_fail(r, "bad redirect");
            return NGX_ERROR;
        }
        p++;
    }

    st->host.data = host;
    st->host.len = p - host;

    st->uri.data = p;
    st->uri.len = last - p;

    if (st->uri.len == 0 || st->uri.data[0] != '/') {
        ngx_str_set(&st->uri, "/");
    }

    /* [v6]:port, name:port, name */

    colon = NULL;

    if (st->host.len && host[0] == '[') {
        colon = ngx_strlchr(host, host + st->host.len, ']');
        if (colon == NULL) {
            ngx_http_registry_redirect_fail(r, "bad redirect");
            return NGX_ERROR;
        }

        colon++;
        st->name.data = host;
        st->name.len = colon - host;

        if (colon == host + st->host.len) {
            colon = NULL;

        } else if (*colon != ':') {
            ngx_http_registry_redirect_fail(r, "bad redirect");
            return NGX_ERROR;
        }

    } else {
        colon = ngx_strlchr(host, host + st->host.len, ':');
        st->name.data = host;
        st->name.len = (colon ? colon : host + st->host.len) - host;
    }

    port = https ? 443 : 80;

    if (colon) {
        port = ngx_atoi(colon + 1, host + st->host.len - colon - 1);
        if (port < 1 || port > 65535) {
            ngx_http_registry_redirect_fail(r, "bad redirect");
            return NGX_ERROR;
        }
    }

    if (st->name.len == 0) {
        ngx_http_registry_redirect_fail(r, "bad redirect");
        return NGX_ERROR;
    }

    ngx_str_set(&st->scheme, "http://");

    if (https) {
        ngx_str_set(&st->scheme, "https://");
    }

    st->port = (in_port_t) port;
    st->address.len = 0;
    st->refused.len = 0;
    st->url.len = 0;

    return NGX_OK;
}


static ngx_int_t
ngx_http_registry_redirect_go(ngx_http_request_t *r,
    ngx_http_registry_redirect_t *st)
{
    u_char  *p;

    p = ngx_pnalloc(r->pool, st->scheme.len + st->address.len + st->uri.len);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    st->url.data = p;
    p = ngx_cpymem(p, st->scheme.data, st->scheme.len);
    p = ngx_cpymem(p, st->address.data, st->address.len);
    p = ngx_cpymem(p, st->uri.data, st->uri.len);
    st->url.len = p - st->url.data;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "registry: following redirect to %V (%V)",
                   &st->url, &st->host);

    (void) ngx_http_internal_redirect(r, &ngx_http_registry_redirect_uri,
                                      &r->args);
    ngx_http_finalize_request(r, NGX_DONE);

    return NGX_DONE;
}


static ngx_int_t
ngx_http_registry_redirect_fail(ngx_http_request_t *r, char *message)
{
    ngx_int_t                  rc;
    ngx_http_registry_error_t  err;

    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "registry: upstream redirect not followed: %s", message);

    err.status = NGX_HTTP_BAD_GATEWAY;
    ngx_str_set(&err.code, "UNAVAILABLE");
    err.message.data = (u_char *) message;
    err.message.len = ngx_strlen(message);

    rc = ngx_http_registry_send_error(r, &err);
    ngx_http_finalize_request(r, rc);

    return NGX_DONE;
}


/* the state lives in the request pool: internal redirects zero r->ctx */

static ngx_http_registry_redirect_t *
ngx_http_registry_redirect_state(ngx_http_request_t *r, ngx_uint_t create)
{
    ngx_pool_cleanup_t            *cln;
    ngx_http_registry_redirect_t  *st;

    for (cln = r->pool->cleanup; cln; cln = cln->next) {
        if (cln->handler == ngx_http_registry_redirect_cleanup) {
            return cln->data;
        }
    }

    if (!create) {
        return NULL;
    }

    cln = ngx_pool_cleanup_add(r->pool, sizeof(ngx_http_registry_redirect_t));
    if (cln == NULL) {
        return NULL;
    }

    st = cln->data;
    ngx_memzero(st, sizeof(ngx_http_registry_redirect_t));

    cln->handler = ngx_http_registry_redirect_cleanup;

    return st;
}


static void
ngx_http_registry_redirect_cleanup(void *data)
{
    ngx_http_registry_redirect_t  *st = data;

    if (st->resolving) {
        ngx_resolve_name_done(st->resolving);
        st->resolving = NULL;
    }
}


/*
 * $registry_redirect_url (data 0), $registry_redirect_host (1),
 * $registry_redirect_name (2)
 */

ngx_int_t
ngx_http_registry_redirect_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t                     *s;
    ngx_http_registry_redirect_t  *st;

    st = ngx_http_registry_redirect_state(r->main, 0);

    if (st == NULL || st->url.len == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    s = data == 0 ? &st->url : data == 1 ? &st->host : &st->name;

    ngx_http_registry_set_value(v, s);

    return NGX_OK;
}
