
/*
 * Copyright (C) ngx_registry_module authors
 *
 * The grant parsers on their own, for t/grant.t: reads lines
 * "<command> <input in hex>" from standard input and writes one line for
 * each:
 *
 *     jwt <token>          "<rc> exp=<exp>" and the names granted
 *     manifest <body>      "<rc>" and the digests named
 *     scope <scope>        "ok <pull> <name>" or "declined"
 *     form <body>          "[key]=[value]" for each pair, then "done"
 *
 * rc is ok, declined or error; "jwt-stop" and "manifest-stop" have the
 * handler fail on its second call.  A refusal that called the handler
 * adds "CALLED"; a name outside the buffer, "OUTSIDE".  Inputs and the
 * JWT's buffer are copied into allocations of exactly their size, so
 * that AddressSanitizer sees any access past their ends.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_http_registry_grant.h"


/*
 * nginx's ngx_string.c is not in nginx-dev: the functions of it the
 * parsers use, with the same contracts.
 */

ngx_int_t
ngx_strncasecmp(u_char *s1, u_char *s2, size_t n)
{
    return strncasecmp((char *) s1, (char *) s2, n);
}


/* as nginx's: stops at "=", refuses a byte outside the alphabet */

ngx_int_t
ngx_decode_base64url(ngx_str_t *dst, ngx_str_t *src)
{
    char        *at;
    size_t       n, i;
    u_char      *d;
    uint32_t     acc;

    static char  alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

    for (n = 0; n < src->len && src->data[n] != '='; n++) {
        if (src->data[n] == '\0' || strchr(alphabet, src->data[n]) == NULL) {
            return NGX_ERROR;
        }
    }

    if (n % 4 == 1) {
        return NGX_ERROR;
    }

    d = dst->data;
    acc = 0;

    for (i = 0; i < n; i++) {
        at = strchr(alphabet, src->data[i]);
        acc = acc << 6 | (uint32_t) (at - alphabet);

        if (i % 4 == 3) {
            *d++ = (u_char) (acc >> 16);
            *d++ = (u_char) (acc >> 8);
            *d++ = (u_char) acc;
            acc = 0;
        }
    }

    if (n % 4 == 2) {
        *d++ = (u_char) (acc >> 4);

    } else if (n % 4 == 3) {
        *d++ = (u_char) (acc >> 10);
        *d++ = (u_char) (acc >> 2);
    }

    dst->len = d - dst->data;

    return NGX_OK;
}


typedef struct {
    u_char        *lo;
    u_char        *hi;
    ngx_uint_t     calls;
    ngx_uint_t     stop;
    char           out[65536];
    size_t         used;
} grant_calls_t;


static ngx_int_t
grant_handler(ngx_str_t *name, void *data)
{
    grant_calls_t  *c = data;

    if (++c->calls == 2 && c->stop) {
        return NGX_ERROR;
    }

    if (name->data < c->lo || name->data + name->len > c->hi) {
        c->used += snprintf(c->out + c->used, sizeof(c->out) - c->used,
                            " OUTSIDE");

    } else {
        c->used += snprintf(c->out + c->used, sizeof(c->out) - c->used,
                            " %.*s", (int) name->len, name->data);
    }

    if (c->used >= sizeof(c->out)) {
        c->used = sizeof(c->out) - 1;
    }

    return NGX_OK;
}


/* the input line's hex, into an allocation of exactly its size */

static u_char *
unhex(char *p, size_t *n)
{
    char    *hex;
    u_char  *bytes;
    size_t   k;

    static char  digits[] = "0123456789abcdef";

    *n = strspn(p, digits) / 2;

    bytes = malloc(*n + (*n == 0));
    if (bytes == NULL) {
        exit(2);
    }

    for (k = 0, hex = p; k < *n; k++, hex += 2) {
        bytes[k] = (u_char) ((strchr(digits, hex[0]) - digits) << 4
                             | (strchr(digits, hex[1]) - digits));
    }

    return bytes;
}


static const char *
rc_name(ngx_int_t rc)
{
    return rc == NGX_OK ? "ok" : rc == NGX_DECLINED ? "declined"
           : rc == NGX_ERROR ? "error" : "OTHER";
}


int
main(void)
{
    char           *line, *sp;
    size_t          cap, n;
    u_char         *in, *buf, *pos;
    time_t          exp;
    ssize_t         got;
    ngx_int_t       rc;
    ngx_str_t       key, value, name;
    ngx_uint_t      pull;
    grant_calls_t  *c;

    c = malloc(sizeof(grant_calls_t));
    if (c == NULL) {
        return 2;
    }

    line = NULL;
    cap = 0;

    while ((got = getline(&line, &cap, stdin)) > 0) {
        sp = strchr(line, ' ');
        if (sp == NULL) {
            return 2;
        }

        *sp = '\0';
        in = unhex(sp + 1, &n);

        c->calls = 0;
        c->used = 0;
        c->out[0] = '\0';
        c->stop = (strstr(line, "-stop") != NULL);
        c->lo = in;
        c->hi = in + n;

        if (strncmp(line, "jwt", 3) == 0) {
            buf = malloc(n ? n : 1);
            if (buf == NULL) {
                return 2;
            }

            c->lo = buf;
            c->hi = buf + n;
            exp = -1;

            rc = ngx_http_registry_jwt_grants(in, n, buf, &exp, grant_handler,
                                              c);

            printf("%s exp=%ld%s%s\n", rc_name(rc), (long) exp, c->out,
                   (rc == NGX_DECLINED && c->calls) ? " CALLED" : "");
            free(buf);

        } else if (strncmp(line, "manifest", 8) == 0) {
            rc = ngx_http_registry_manifest_digests(in, n, grant_handler, c);

            printf("%s%s%s\n", rc_name(rc), c->out,
                   (rc == NGX_DECLINED && c->calls) ? " CALLED" : "");

        } else if (strcmp(line, "scope") == 0) {
            rc = ngx_http_registry_scope_parse(in, n, &name, &pull);

            if (rc == NGX_OK) {
                printf("ok %u %.*s\n", (unsigned) pull, (int) name.len,
                       name.data);

            } else {
                printf("%s\n", rc_name(rc));
            }

        } else if (strcmp(line, "form") == 0) {
            pos = in;

            while ((rc = ngx_http_registry_form_next(&pos, in + n, &key,
                                                     &value))
                   == NGX_OK)
            {
                if (key.data < in || key.data + key.len > in + n
                    || value.data < in || value.data + value.len > in + n)
                {
                    printf("OUTSIDE ");
                    break;
                }

                printf("[%.*s]=[%.*s] ", (int) key.len, key.data,
                       (int) value.len, value.data);
            }

            printf("%s\n", rc == NGX_DONE ? "done" : rc_name(rc));

        } else {
            return 2;
        }

        fflush(stdout);
        free(in);
    }

    free(line);
    free(c);

    return 0;
}
