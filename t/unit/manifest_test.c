
/*
 * Copyright (C) ngx_registry_module authors
 *
 * The manifest reader on its own, for t/manifest-body.t: reads lines
 * "<media type in hex> <document in hex>" from standard input and writes
 * for each one line: "ok", "ok jws <head length> <tail in hex>",
 * "declined <mediaType, raw, in hex>", "shape" (no mediaType, and not the
 * members of the type) or "error".  The document and the
 * scratch space are each copied into buffers of exactly their size, so
 * that AddressSanitizer sees any access past their ends.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_http_registry_manifest.h"


static u_char *
unhex(char *p, size_t *n)
{
    u_char        *buf;
    size_t         i;
    unsigned int   byte;

    *n = strspn(p, "0123456789abcdef") / 2;

    buf = malloc(*n ? *n : 1);
    if (buf == NULL) {
        exit(2);
    }

    for (i = 0; i < *n; i++, p += 2) {
        if (sscanf(p, "%2x", &byte) != 1) {
            exit(2);
        }

        buf[i] = (u_char) byte;
    }

    return buf;
}


static void
hex(ngx_str_t *s)
{
    size_t  i;

    for (i = 0; i < s->len; i++) {
        printf("%02x", s->data[i]);
    }
}


int
main(void)
{
    char                          *line, *sp;
    size_t                         cap;
    u_char                        *scratch;
    ssize_t                        got;
    ngx_int_t                      rc;
    ngx_str_t                      type, body;
    ngx_http_registry_manifest_t   m;

    line = NULL;
    cap = 0;

    while ((got = getline(&line, &cap, stdin)) > 0) {
        sp = strchr(line, ' ');
        if (sp == NULL) {
            return 2;
        }

        type.data = unhex(line, &type.len);
        body.data = unhex(sp + 1, &body.len);

        scratch = malloc(body.len ? 2 * body.len : 1);
        if (scratch == NULL) {
            return 2;
        }

        rc = ngx_http_registry_manifest_parse(&body, &type, &m, scratch);

        if (rc == NGX_OK && m.jws) {
            if (m.head.data != body.data || m.head.len > body.len
                || m.tail.data < scratch
                || m.tail.data + m.tail.len > scratch + 2 * body.len)
            {
                printf("OUTSIDE\n");

            } else {
                printf("ok jws %u ", (unsigned) m.head.len);
                hex(&m.tail);
                printf("\n");
            }

        } else if (rc == NGX_OK) {
            printf("ok\n");

        } else if (rc == NGX_ABORT) {
            printf("shape\n");

        } else if (rc == NGX_DECLINED) {
            printf("declined ");
            hex(&m.media_type);
            printf("\n");

        } else {
            printf("error\n");
        }

        free(type.data);
        free(body.data);
        free(scratch);
    }

    free(line);

    return 0;
}
