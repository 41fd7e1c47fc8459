
/*
 * Copyright (C) ngx_registry_module authors
 *
 * The JSON tokenizer on its own, for t/json.t: reads documents, one per
 * line in hex, from standard input and writes for each one line: "error",
 * or "ok" followed by the tokens, each as
 * <depth>:<type>[:<key>][=<value>] (type O A E S N T F Z; key and value
 * raw, strings with "~" when they hold escapes), and for strings the
 * unescaped value in hex after "/" ("/!" when it cannot be unescaped).
 * Each document is copied into a buffer of exactly its size, so that
 * AddressSanitizer sees any read past its end.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_http_registry_json.h"


static void
dump(ngx_str_t *s)
{
    if (s->len) {
        fwrite(s->data, 1, s->len, stdout);
    }
}


int
main(void)
{
    char                            *line, *p;
    size_t                           cap, n, i, len;
    u_char                          *doc, *out;
    ssize_t                          got;
    ngx_int_t                        rc;
    unsigned int                     byte;
    ngx_http_registry_json_t         js;
    ngx_http_registry_json_token_t   tok;

    static const char  types[] = "?OAESNTFZ";

    line = NULL;
    cap = 0;

    while ((got = getline(&line, &cap, stdin)) > 0) {
        if (line[got - 1] == '\n') {
            line[--got] = '\0';
        }

        n = got / 2;
        doc = malloc(n ? n : 1);
        if (doc == NULL) {
            return 2;
        }

        for (i = 0, p = line; i < n; i++, p += 2) {
            if (sscanf(p, "%2x", &byte) != 1) {
                return 2;
            }
            doc[i] = (u_char) byte;
        }

        ngx_http_registry_json_init(&js, doc, n);

        /* tokens go to a buffer first: "error" replaces them */

        printf("ok");

        while ((rc = ngx_http_registry_json_next(&js, &tok)) == NGX_OK) {
            if (tok.value.len
                && (tok.value.data < doc || tok.value.data + tok.value.len
                                            > doc + n))
            {
                printf(" OUTSIDE");
            }

            printf(" %u:%c", (unsigned) tok.depth, types[tok.type]);

            if (tok.key.len || tok.depth) {
                printf(":");
                dump(&tok.key);
            }

            if (tok.type != NGX_HTTP_REGISTRY_JSON_OBJECT
                && tok.type != NGX_HTTP_REGISTRY_JSON_ARRAY
                && tok.type != NGX_HTTP_REGISTRY_JSON_END)
            {
                printf("=%s", tok.escaped ? "~" : "");
                dump(&tok.value);
            }

            if (tok.type == NGX_HTTP_REGISTRY_JSON_STRING) {
                out = malloc(tok.value.len + 1);
                if (out == NULL) {
                    return 2;
                }

                if (ngx_http_registry_json_unescape(&tok.value, out, &len)
                    == NGX_OK && len <= tok.value.len)
                {
                    printf("/");
                    for (i = 0; i < len; i++) {
                        printf("%02x", out[i]);
                    }

                } else {
                    printf("/!");
                }

                free(out);
            }
        }

        printf(rc == NGX_DONE ? "\n" : " error\n");

        /* after an error, it stays an error */

        if (rc == NGX_ERROR
            && ngx_http_registry_json_next(&js, &tok) != NGX_ERROR)
        {
            printf("STICKY\n");
        }

        free(doc);
    }

    free(line);

    return 0;
}
