
/*
 * Copyright (C) ngx_registry_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_registry.h"
#include "ngx_http_registry_response.h"
#include "ngx_http_registry_target.h"


/*
 * A URL an upstream names (a redirect's Location, a token realm) is
 * untrusted: https only (unless registry_redirect_http), and the address
 * its host resolves to, with nginx's resolver, must not be in a special
 * range (loopback, private, link-local, documentation, translation and
 * tunnel prefixes that embed one...) unless registry_redirect_allow names
 * it; every address a name resolves to is checked.  The request then goes
 * to the checked address itself, with the URL's name as Host and TLS name,
 * so that nothing resolves the name again between the check and the
 * connection.
 */


static ngx_int_t ngx_http_registry_target_resolve(ngx_pool_t *pool,
    ngx_str_t *ref, ngx_str_t *base, ngx_str_t *out);
static ngx_int_t ngx_http_registry_target_split(ngx_pool_t *pool,
    ngx_http_registry_target_t *t, ngx_str_t *url);
static size_t ngx_http_registry_dot_segments(u_char *path, size_t len,
    u_char *out);
static void ngx_http_registry_target_resolved(ngx_resolver_ctx_t *ctx);
static ngx_int_t ngx_http_registry_target_addr(ngx_http_request_t *r,
    ngx_http_registry_target_t *t, struct sockaddr *sa, socklen_t socklen);
static ngx_int_t ngx_http_registry_target_url(ngx_http_request_t *r,
    ngx_http_registry_target_t *t);
static ngx_int_t ngx_http_registry_ipv4_special(in_addr_t a);


/*
 * ref, made absolute against base (the URL of the request that got it),
 * or absolute already when base is NULL.  NGX_DECLINED and t->error when
 * it is not an http(s) URL the mirror can follow.
 */

ngx_int_t
ngx_http_registry_target_parse(ngx_http_request_t *r,
    ngx_http_registry_target_t *t, ngx_str_t *ref, ngx_str_t *base)
{
    u_char     *p;
    ngx_int_t   rc;
    ngx_str_t   url;

    /* nothing of it may end up as a request line of its own */

    for (p = ref->data; p < ref->data + ref->len; p++) {
        if (*p <= ' ' || *p == 0x7f) {
            t->error = "bad URL";
            return NGX_DECLINED;
        }
    }

    rc = ngx_http_registry_target_resolve(r->pool, ref, base, &url);

    if (rc == NGX_OK) {
        rc = ngx_http_registry_target_split(r->pool, t, &url);
    }

    if (rc == NGX_DECLINED) {
        t->error = "bad URL";
    }

    return rc;
}


/* RFC 3986, section 5.2: a reference made absolute; the fragment dropped */

static ngx_int_t
ngx_http_registry_target_resolve(ngx_pool_t *pool, ngx_str_t *ref,
    ngx_str_t *base, ngx_str_t *out)
{
    u_char      *p, *last, *authority, *path, *query;
    size_t       keep;
    ngx_str_t    rel;
    ngx_uint_t   slash;

    rel = *ref;

    p = ngx_strlchr(rel.data, rel.data + rel.len, '#');
    if (p) {
        rel.len = p - rel.data;
    }

    /* scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ), then ":" */

    for (p = rel.data; p < rel.data + rel.len; p++) {

        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')) {
            continue;
        }

        if (p > rel.data
            && ((*p >= '0' && *p <= '9') || *p == '+' || *p == '-'
                || *p == '.'))
        {
            continue;
        }

        break;
    }

    if (p > rel.data && p < rel.data + rel.len && *p == ':') {
        *out = rel;
        return NGX_OK;
    }

    if (base == NULL) {
        return NGX_DECLINED;
    }

    /* the base: scheme "://" authority [ path ] [ "?" query ] */

    last = base->data + base->len;

    authority = ngx_strlcasestrn(base->data, last, (u_char *) "://", 3 - 1);
    if (authority == NULL) {
        return NGX_DECLINED;
    }

    authority += 3;

    for (path = authority; path < last && *path != '/' && *path != '?';
         path++)
    {
        /* void */
    }

    query = ngx_strlchr(path, last, '?');
    if (query == NULL) {
        query = last;
    }

    slash = 0;

    if (rel.len >= 2 && rel.data[0] == '/' && rel.data[1] == '/') {
        keep = authority - 2 - base->data;              /* "https:" */

    } else if (rel.len == 0) {
        keep = base->len;

    } else if (rel.data[0] == '?') {
        keep = query - base->data;

    } else if (rel.data[0] == '/') {
        keep = path - base->data;

    } else {

        /* a relative path replaces the base path's last segment */

        for (p = query; p > path && p[-1] != '/'; p--) { /* void */ }

        keep = p - base->data;
        slash = (p == path);
    }

    out->len = keep + slash + rel.len;
    out->data = ngx_pnalloc(pool, out->len);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(out->data, base->data, keep);

    if (slash) {
        *p++ = '/';
    }

    ngx_memcpy(p, rel.data, rel.len);

    return NGX_OK;
}


/* http[s]://host[:port][/path][?query] */

static ngx_int_t
ngx_http_registry_target_split(ngx_pool_t *pool,
    ngx_http_registry_target_t *t, ngx_str_t *url)
{
    u_char     *p, *last, *host, *colon, *path, *query;
    ngx_int_t   port;

    p = url->data;
    last = p + url->len;

    if (url->len > 8 && ngx_strncasecmp(p, (u_char *) "https://", 8) == 0) {
        t->https = 1;
        p += 8;

    } else if (url->len > 7
               && ngx_strncasecmp(p, (u_char *) "http://", 7) == 0)
    {
        t->https = 0;
        p += 7;

    } else {
        return NGX_DECLINED;
    }

    host = p;

    /* a host name, an IPv4 or [IPv6] literal, a port: nothing else */

    while (p < last && *p != '/' && *p != '?') {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
              || (*p >= '0' && *p <= '9') || *p == '-' || *p == '.'
              || *p == ':' || *p == '[' || *p == ']'))
        {
            return NGX_DECLINED;
        }
        p++;
    }

    t->host.data = host;
    t->host.len = p - host;

    path = p;

    query = ngx_strlchr(path, last, '?');
    if (query == NULL) {
        query = last;
    }

    /* [v6]:port, name:port, name */

    if (t->host.len && host[0] == '[') {
        colon = ngx_strlchr(host, host + t->host.len, ']');
        if (colon == NULL) {
            return NGX_DECLINED;
        }

        colon++;
        t->name.data = host;
        t->name.len = colon - host;

        if (colon == host + t->host.len) {
            colon = NULL;

        } else if (*colon != ':') {
            return NGX_DECLINED;
        }

    } else {
        colon = ngx_strlchr(host, host + t->host.len, ':');
        t->name.data = host;
        t->name.len = (colon ? colon : host + t->host.len) - host;
    }

    port = t->https ? 443 : 80;

    if (colon) {
        port = ngx_atoi(colon + 1, host + t->host.len - colon - 1);
        if (port < 1 || port > 65535) {
            return NGX_DECLINED;
        }
    }

    if (t->name.len == 0) {
        return NGX_DECLINED;
    }

    t->port = (in_port_t) port;

    if (t->https) {
        ngx_str_set(&t->scheme, "https://");

    } else {
        ngx_str_set(&t->scheme, "http://");
    }

    /* the path without dot segments, at least "/"; then the query */

    t->uri.data = ngx_pnalloc(pool, 1 + (last - path));
    if (t->uri.data == NULL) {
        return NGX_ERROR;
    }

    if (path < query && path[0] == '/') {
        p = t->uri.data + ngx_http_registry_dot_segments(path, query - path,
                                                         t->uri.data);

    } else {
        p = t->uri.data;
        *p++ = '/';
    }

    p = ngx_cpymem(p, query, last - query);
    t->uri.len = p - t->uri.data;

    t->absolute.len = t->scheme.len + t->host.len + t->uri.len;
    t->absolute.data = ngx_pnalloc(pool, t->absolute.len);
    if (t->absolute.data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(t->absolute.data, t->scheme.data, t->scheme.len);
    p = ngx_cpymem(p, t->host.data, t->host.len);
    ngx_memcpy(p, t->uri.data, t->uri.len);

    t->url.len = 0;
    t->address.len = 0;
    t->refused = 0;
    t->error = NULL;

    return NGX_OK;
}


/*
 * RFC 3986, section 5.2.4, for a path that starts with "/": out gets at
 * most len bytes.
 */

static size_t
ngx_http_registry_dot_segments(u_char *path, size_t len, u_char *out)
{
    u_char  *p, *last, *segment, *o;
    size_t   n;

    o = out;
    last = path + len;

    for (p = path; p < last; /* void */) {

        /* p is at a "/" */

        segment = p + 1;

        p = ngx_strlchr(segment, last, '/');
        if (p == NULL) {
            p = last;
        }

        n = p - segment;

        if (n == 1 && segment[0] == '.') {
            if (p == last) {
                *o++ = '/';
            }

            continue;
        }

        if (n == 2 && segment[0] == '.' && segment[1] == '.') {

            /* back to the "/" before the last segment written */

            while (o > out && *--o != '/') { /* void */ }

            if (p == last) {
                *o++ = '/';
            }

            continue;
        }

        *o++ = '/';
        o = ngx_cpymem(o, segment, n);
    }

    if (o == out) {
        *o++ = '/';
    }

    return o - out;
}


/*
 * NGX_OK: t->url is the checked address to send the request to;
 * NGX_AGAIN: the name is being resolved, and the request's phases run
 * again when it is (call again then); NGX_DECLINED: refused, t->error
 * says why.
 */

ngx_int_t
ngx_http_registry_target_check(ngx_http_request_t *r,
    ngx_http_registry_target_t *t)
{
    u_char                        *p;
    in_addr_t                      addr;
    ngx_resolver_ctx_t            *rctx;
    ngx_http_core_loc_conf_t      *clcf;
    ngx_http_registry_loc_conf_t  *rlcf;
#if (NGX_HAVE_INET6)
    u_char                         a6[16];
    struct sockaddr_in6            sin6;
#endif
    struct sockaddr_in             sin;

    if (t->busy) {
        if (!t->done) {
            return NGX_AGAIN;
        }

        goto resolved;
    }

    rlcf = ngx_http_get_module_loc_conf(r, ngx_http_registry_module);

    if (!t->https && !rlcf->redirect_http) {
        t->error = "http refused";
        return NGX_DECLINED;
    }

    /* an address literal needs no resolver, and is checked as it is */

    addr = ngx_inet_addr(t->name.data, t->name.len);

    if (addr != INADDR_NONE) {
        ngx_memzero(&sin, sizeof(struct sockaddr_in));
        sin.sin_family = AF_INET;
        sin.sin_addr.s_addr = addr;

        if (ngx_http_registry_target_addr(r, t, (struct sockaddr *) &sin,
                                          sizeof(struct sockaddr_in))
            != NGX_OK)
        {
            t->error = "refused address";
            return NGX_DECLINED;
        }

        return ngx_http_registry_target_url(r, t);
    }

#if (NGX_HAVE_INET6)
    if (t->name.len > 2 && t->name.data[0] == '[') {
        if (ngx_inet6_addr(t->name.data + 1, t->name.len - 2, a6) != NGX_OK) {
            t->error = "bad address";
            return NGX_DECLINED;
        }

        ngx_memzero(&sin6, sizeof(struct sockaddr_in6));
        sin6.sin6_family = AF_INET6;
        ngx_memcpy(sin6.sin6_addr.s6_addr, a6, 16);

        if (ngx_http_registry_target_addr(r, t, (struct sockaddr *) &sin6,
                                          sizeof(struct sockaddr_in6))
            != NGX_OK)
        {
            t->error = "refused address";
            return NGX_DECLINED;
        }

        return ngx_http_registry_target_url(r, t);
    }
#endif

    for (p = t->name.data; p < t->name.data + t->name.len; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
              || (*p >= '0' && *p <= '9') || *p == '-' || *p == '.'))
        {
            t->error = "bad host name";
            return NGX_DECLINED;
        }
    }

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    rctx = ngx_resolve_start(clcf->resolver, NULL);

    if (rctx == NULL || rctx == NGX_NO_RESOLVER) {
        t->error = "no resolver";
        return NGX_DECLINED;
    }

    rctx->name = t->name;
    rctx->handler = ngx_http_registry_target_resolved;
    rctx->data = t;
    rctx->timeout = clcf->resolver_timeout;

    t->request = r;
    t->busy = 1;
    t->done = 0;
    t->resolving = rctx;

    if (ngx_resolve_name(rctx) != NGX_OK) {
        t->resolving = NULL;
        t->busy = 0;
        return NGX_ERROR;
    }

    if (!t->done) {
        t->waiting = 1;
        return NGX_AGAIN;
    }

resolved:

    t->busy = 0;
    t->done = 0;
    t->waiting = 0;

    if (t->state != NGX_OK || (t->address.len == 0 && !t->refused)) {
        t->error = "does not resolve";
        return NGX_DECLINED;
    }

    if (t->refused) {
        t->error = "refused address";
        return NGX_DECLINED;
    }

    return ngx_http_registry_target_url(r, t);
}


static void
ngx_http_registry_target_resolved(ngx_resolver_ctx_t *ctx)
{
    ngx_http_registry_target_t  *t = ctx->data;

    ngx_uint_t           i;
    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    r = t->request;
    c = r->connection;

    t->state = ctx->state;
    t->resolving = NULL;

    if (ctx->state == NGX_OK) {
        for (i = 0; i < ctx->naddrs; i++) {
            if (ngx_http_registry_target_addr(r, t, ctx->addrs[i].sockaddr,
                                              ctx->addrs[i].socklen)
                != NGX_OK)
            {
                break;
            }
        }
    }

    ngx_resolve_name_done(ctx);

    t->done = 1;

    if (t->waiting) {
        ngx_http_core_run_phases(r);
        ngx_http_run_posted_requests(c);
    }
}


/*
 * Every address must pass; the first one is the one used.  The port is
 * the target's.
 */

static ngx_int_t
ngx_http_registry_target_addr(ngx_http_request_t *r,
    ngx_http_registry_target_t *t, struct sockaddr *sa, socklen_t socklen)
{
    u_char                        *p;
    size_t                         len;
    ngx_http_registry_loc_conf_t  *rlcf;

    rlcf = ngx_http_get_module_loc_conf(r, ngx_http_registry_module);

    ngx_inet_set_port(sa, t->port);

    len = NGX_SOCKADDR_STRLEN;
    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        t->refused = 1;
        return NGX_ERROR;
    }

    len = ngx_sock_ntop(sa, socklen, p, len, 1);

    if (ngx_http_registry_addr_allowed(sa, rlcf->redirect_allow) != NGX_OK) {
        t->refused = 1;

        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "registry: %s \"%V\" refused: it is %*s",
                      t->what, &t->name, len, p);
        return NGX_ERROR;
    }

    if (t->address.len == 0) {
        t->address.data = p;
        t->address.len = len;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_registry_target_url(ngx_http_request_t *r,
    ngx_http_registry_target_t *t)
{
    u_char  *p;

    p = ngx_pnalloc(r->pool, t->scheme.len + t->address.len + t->uri.len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    t->url.data = p;
    p = ngx_cpymem(p, t->scheme.data, t->scheme.len);
    p = ngx_cpymem(p, t->address.data, t->address.len);
    p = ngx_cpymem(p, t->uri.data, t->uri.len);
    t->url.len = p - t->url.data;

    return NGX_OK;
}


void
ngx_http_registry_target_cleanup(void *data)
{
    ngx_http_registry_target_t  *t = data;

    if (t->resolving) {
        ngx_resolve_name_done(t->resolving);
        t->resolving = NULL;
    }
}


/*
 * Refused unless the allow list names it: IPv4 "this network",
 * loopback, private, shared (CGNAT), link-local, IETF protocol
 * assignments, documentation, benchmarking, the 6to4 relay anycast,
 * multicast and reserved; IPv6 unspecified, loopback, IPv4-compatible,
 * -mapped and -translated (all of ::/8 but NAT64's 64:ff9b::/96),
 * discard-only, Teredo, benchmarking, documentation, unique local,
 * link-local, site-local and multicast.  NAT64 (64:ff9b::/96) and 6to4
 * (2002::/16) addresses are checked on the IPv4 address they embed.
 */

ngx_int_t
ngx_http_registry_addr_allowed(struct sockaddr *sa, ngx_array_t *allow)
{
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

        return ngx_http_registry_ipv4_special(ntohl(sin->sin_addr.s_addr));

#if (NGX_HAVE_INET6)
    case AF_INET6:
        sin6 = (struct sockaddr_in6 *) sa;
        a6 = sin6->sin6_addr.s6_addr;

        if (a6[0] == 0x00 && a6[1] == 0x64 && a6[2] == 0xff
            && a6[3] == 0x9b)
        {
            for (n = 4; n < 12 && a6[n] == 0; n++) { /* void */ }

            if (n < 12) {
                return NGX_DECLINED;        /* 64:ff9b:1::/48 and others */
            }

            /* NAT64, 64:ff9b::/96: the IPv4 address in the last 4 bytes */

            return ngx_http_registry_ipv4_special(
                       ((in_addr_t) a6[12] << 24) | (a6[13] << 16)
                       | (a6[14] << 8) | a6[15]);
        }

        if (a6[0] == 0x20 && a6[1] == 0x02) {

            /* 6to4, 2002::/16: the IPv4 address in bytes 2 to 5 */

            return ngx_http_registry_ipv4_special(
                       ((in_addr_t) a6[2] << 24) | (a6[3] << 16)
                       | (a6[4] << 8) | a6[5]);
        }

        if (a6[0] == 0x00                                 /* ::/8 */
            || (a6[0] == 0x01 && a6[1] == 0x00            /* 100::/64 */
                && a6[2] == 0 && a6[3] == 0 && a6[4] == 0 && a6[5] == 0
                && a6[6] == 0 && a6[7] == 0)
            || (a6[0] == 0x20 && a6[1] == 0x01           /* 2001::/32 */
                && a6[2] == 0x00 && a6[3] == 0x00)
            || (a6[0] == 0x20 && a6[1] == 0x01           /* 2001:2::/48 */
                && a6[2] == 0x00 && a6[3] == 0x02
                && a6[4] == 0x00 && a6[5] == 0x00)
            || (a6[0] == 0x20 && a6[1] == 0x01           /* 2001:db8::/32 */
                && a6[2] == 0x0d && a6[3] == 0xb8)
            || (a6[0] == 0x3f && a6[1] == 0xff           /* 3fff::/20 */
                && (a6[2] & 0xf0) == 0)
            || (a6[0] & 0xfe) == 0xfc                     /* fc00::/7 */
            || (a6[0] == 0xfe && (a6[1] & 0xc0) == 0x80)  /* fe80::/10 */
            || (a6[0] == 0xfe && (a6[1] & 0xc0) == 0xc0)  /* fec0::/10 */
            || a6[0] == 0xff)                             /* ff00::/8 */
        {
            return NGX_DECLINED;
        }

        return NGX_OK;
#endif

    default:
        return NGX_DECLINED;
    }
}


/* a in host byte order */

static ngx_int_t
ngx_http_registry_ipv4_special(in_addr_t a)
{
    if ((a >> 24) == 0                          /* 0.0.0.0/8 */
        || (a >> 24) == 10                      /* 10.0.0.0/8 */
        || (a & 0xffc00000) == 0x64400000       /* 100.64.0.0/10 */
        || (a >> 24) == 127                     /* 127.0.0.0/8 */
        || (a & 0xffff0000) == 0xa9fe0000       /* 169.254.0.0/16 */
        || (a & 0xfff00000) == 0xac100000       /* 172.16.0.0/12 */
        || (a & 0xffffff00) == 0xc0000000       /* 192.0.0.0/24 */
        || (a & 0xffffff00) == 0xc0000200       /* 192.0.2.0/24 */
        || (a & 0xffffff00) == 0xc0586300       /* 192.88.99.0/24 */
        || (a & 0xffff0000) == 0xc0a80000       /* 192.168.0.0/16 */
        || (a & 0xfffe0000) == 0xc6120000       /* 198.18.0.0/15 */
        || (a & 0xffffff00) == 0xc6336400       /* 198.51.100.0/24 */
        || (a & 0xffffff00) == 0xcb007100       /* 203.0.113.0/24 */
        || (a >> 28) >= 0xe)                    /* multicast, 240/4 */
    {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/*
 * Before a hop or a token retry, which each cost one of nginx's internal
 * redirects: r->uri_changes counts down from 11, and the redirect that
 * takes it to 0 fails with nginx's own 500 page, error pages included.
 * What comes back from the hop may need an error page (one more), and the
 * failover share stays untouched.
 */

ngx_uint_t
ngx_http_registry_redirects_left(ngx_http_request_t *r)
{
    return r->uri_changes > 2 + NGX_HTTP_REGISTRY_FAILOVER_REDIRECTS;
}


/*
 * The token realm of an upstream's challenge, url with its arguments.  On
 * the region's own origin (scheme, Host and port) it is trusted as the
 * region is, and fetched where the region's requests go (its upstream{}
 * block, if it names one) with the realm's path; anywhere else it is an
 * untrusted target.  NGX_OK, NGX_AGAIN or NGX_DECLINED as
 * ngx_http_registry_target_check() returns them; *tp holds the state.
 */

ngx_int_t
ngx_http_registry_realm(ngx_http_request_t *r, ngx_str_t *url,
    ngx_http_registry_region_t *region, ngx_http_registry_target_t **tp)
{
    ngx_int_t                    rc;
    ngx_pool_cleanup_t          *cln;
    ngx_http_registry_target_t  *t, reg;

    t = *tp;

    /* asked again (the relay is, after its subrequest): as decided */

    if (t && t->origin) {
        return NGX_OK;
    }

    if (t == NULL) {
        cln = ngx_pool_cleanup_add(r->pool,
                                   sizeof(ngx_http_registry_target_t));
        if (cln == NULL) {
            return NGX_ERROR;
        }

        t = cln->data;
        ngx_memzero(t, sizeof(ngx_http_registry_target_t));

        cln->handler = ngx_http_registry_target_cleanup;

        *tp = t;
        t->what = "token realm";

        /* a realm has no business with a fragment: its arguments follow */

        if (ngx_strlchr(url->data, url->data + url->len, '#')) {
            t->error = "a fragment in the realm";
            rc = NGX_DECLINED;
            goto failed;
        }

        rc = ngx_http_registry_target_parse(r, t, url, NULL);
        if (rc != NGX_OK) {
            goto failed;
        }

        ngx_memzero(&reg, sizeof(ngx_http_registry_target_t));

        rc = ngx_http_registry_target_split(r->pool, &reg, &region->origin);
        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }

        if (rc == NGX_OK
            && reg.https == t->https
            && reg.port == t->port
            && reg.name.len == t->name.len
            && ngx_strncasecmp(reg.name.data, t->name.data, t->name.len)
               == 0)
        {
            /*
             * The path and arguments as parsed and rebuilt, never the
             * upstream's raw bytes; Host and the TLS name the region's,
             * not the realm's spelling of them.
             */

            t->origin = 1;
            t->host = region->host;
            t->name = region->ssl_name;

            t->url.len = region->upstream.len + t->uri.len;
            t->url.data = ngx_pnalloc(r->pool, t->url.len);
            if (t->url.data == NULL) {
                return NGX_ERROR;
            }

            ngx_memcpy(ngx_cpymem(t->url.data, region->upstream.data,
                                  region->upstream.len),
                       t->uri.data, t->uri.len);

            return NGX_OK;
        }
    }

    rc = ngx_http_registry_target_check(r, t);

failed:

    if (rc == NGX_DECLINED) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "registry: token realm \"%V\" not fetched: %s",
                      url, t->error);
    }

    return rc;
}


/*
 * In the token subrequest: $registry_token_url (data 0), the realm's
 * checked address or, on the region's origin, the region's upstream and
 * the realm's path;
 * $registry_token_host (1) and $registry_token_name (2).
 */

ngx_int_t
ngx_http_registry_realm_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t                *s;
    ngx_http_registry_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r->main, ngx_http_registry_module);

    if (ctx == NULL || ctx->token_target == NULL
        || ctx->token_target->url.len == 0)
    {
        v->not_found = 1;
        return NGX_OK;
    }

    s = data == 0 ? &ctx->token_target->url
                  : data == 1 ? &ctx->token_target->host
                              : &ctx->token_target->name;

    ngx_http_registry_set_value(v, s);

    return NGX_OK;
}
