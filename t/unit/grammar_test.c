
/*
 * Copyright (C) ngx_registry_module authors
 *
 * Unit tests and a bounded fuzz loop for the grammar and path parser,
 * compiled without the rest of nginx (t/grammar.t builds and runs this).
 * Prints TAP.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_http_registry_grammar.h"
#include "ngx_http_registry_accept.h"
#include "ngx_http_registry_challenge.h"
#include "ngx_http_registry_json.h"
#include "tap.h"


/*
 * nginx's ngx_string.c is not in nginx-dev, so the few functions of it the
 * parsers use are given here, with the same contracts.
 */

ngx_int_t
ngx_strncasecmp(u_char *s1, u_char *s2, size_t n)
{
    return strncasecmp((char *) s1, (char *) s2, n);
}


ngx_int_t
ngx_atoi(u_char *line, size_t n)
{
    ngx_int_t  value;

    if (n == 0 || n > 18) {
        return NGX_ERROR;
    }

    for (value = 0; n--; line++) {
        if (*line < '0' || *line > '9') {
            return NGX_ERROR;
        }

        value = value * 10 + (*line - '0');
    }

    return value;
}


static int
eq(ngx_str_t *s, const char *want)
{
    return s->len == strlen(want)
           && (s->len == 0 || ngx_strncmp(s->data, want, s->len) == 0);
}


#define check(fn, s, want)                                                    \
    ok(fn((u_char *) s, sizeof(s) - 1) == (want), #fn, s)


static void
check_path(const char *s, ngx_int_t want_rc, ngx_uint_t endpoint,
    const char *prefix, const char *name, const char *ref, const char *code)
{
    ngx_int_t                  rc;
    ngx_http_registry_path_t   path;
    ngx_http_registry_error_t  err;

    ngx_memzero(&err, sizeof(err));

    rc = ngx_http_registry_parse_path((u_char *) s, strlen(s), &path, &err);

    if (want_rc != NGX_OK) {
        ok(rc != NGX_OK && eq(&err.code, code), code, s);
        return;
    }

    ok(rc == NGX_OK && path.endpoint == endpoint && eq(&path.prefix, prefix)
       && eq(&path.name, name) && eq(&path.reference, ref), "parsed", s);
}


/* a token answer: NGX_OK with the token and lifetime wanted, or refused */

static void
check_token(const char *json, ngx_int_t want_rc, const char *want,
    time_t want_exp, const char *what)
{
    u_char     *copy, *buf;
    size_t      len;
    time_t      exp;
    ngx_int_t   rc;
    ngx_str_t   tok;

    len = strlen(json);
    copy = malloc(len + 1);
    buf = malloc(len + 1);

    if (copy == NULL || buf == NULL) {
        exit(2);
    }

    ngx_memcpy(copy, json, len);

    rc = ngx_http_registry_token_parse(copy, len, buf, &tok, &exp);

    ok(rc == want_rc
       && (rc != NGX_OK || (eq(&tok, want) && exp == want_exp)),
       what, len > 100 ? "(long)" : json);

    free(copy);
    free(buf);
}


static void
check_accept(const char *lines[], const char *want)
{
    u_char      buf[NGX_HTTP_REGISTRY_ACCEPT_MAX];
    size_t      len;
    ngx_uint_t  i, mask;

    mask = 0;

    for (i = 0; lines[i]; i++) {
        mask |= ngx_http_registry_accept_mask((u_char *) lines[i],
                                              strlen(lines[i]));
    }

    len = ngx_http_registry_accept_string(mask, buf);

    ok(len == strlen(want) && ngx_strncmp(buf, want, len) == 0,
       "accept", lines[0]);
}


/*
 * Mutations of valid paths: the parser must never read outside the input
 * (ASan), and whatever it accepts must satisfy the grammar on its own.
 */

static void
fuzz(unsigned iterations)
{
    size_t                     len, i;
    u_char                     buf[600], *copy, *p, *last, *slash;
    unsigned                   n, seed, bad;
    ngx_http_registry_path_t   path;
    ngx_http_registry_error_t  err;

    static const char  *seeds[] = {
        "/v2/docker.io/library/nginx/manifests/1.25",
        "/v2/library/nginx/blobs/sha256:"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "/v2/ghcr.io/org/app/tags/list",
        "/v2/a/b/referrers/sha256:"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    };
    static const char   alphabet[] = "/.:%_-aZ09\\\0@ ~";

    seed = 12345;
    bad = 0;

    for (n = 0; n < iterations; n++) {
        const char  *s = seeds[n % 4];

        len = strlen(s);
        ngx_memcpy(buf, s, len);

        for (i = 0; i < 1 + n % 5; i++) {
            seed = seed * 1103515245 + 12345;

            switch ((seed >> 16) % 3) {

            case 0:
                buf[(seed >> 8) % len] = alphabet[(seed >> 20) % 15];
                break;

            case 1:
                if (len > 1) {
                    len--;
                }
                break;

            default:
                if (len < sizeof(buf)) {
                    buf[len++] = alphabet[(seed >> 20) % 15];
                }
            }
        }

        /* an exact-length heap copy, so ASan sees any over-read */

        copy = malloc(len);
        if (copy == NULL) {
            exit(2);
        }

        ngx_memcpy(copy, buf, len);

        if (ngx_http_registry_parse_path(copy, len, &path, &err) == NGX_OK
            && path.endpoint != NGX_HTTP_REGISTRY_BASE)
        {
            if (path.name.len > NGX_HTTP_REGISTRY_NAME_MAX) {
                bad++;
            }

            last = path.name.data + path.name.len;

            for (p = path.name.data; p < last; p = slash + 1) {
                slash = ngx_strlchr(p, last, '/');
                if (slash == NULL) {
                    slash = last;
                }

                if (ngx_http_registry_valid_component(p, slash - p)
                    != NGX_OK)
                {
                    bad++;
                }
            }

            if (path.reference.len
                && ngx_http_registry_valid_tag(path.reference.data,
                                               path.reference.len) != NGX_OK
                && ngx_http_registry_valid_digest(path.reference.data,
                                                  path.reference.len)
                   != NGX_OK)
            {
                bad++;
            }
        }

        free(copy);
    }

    tests++;
    printf("%sok %d - fuzz: %u mutated paths, %u accepted outside grammar\n",
           bad ? "not " : "", tests, iterations, bad);
    failed += bad != 0;
}


/* mutated challenges and token answers: never a read past the input */

static void
fuzz_auth(const char *challenge, const char *json, unsigned iterations)
{
    size_t                          len;
    u_char                          buf[256], *copy, *dst;
    time_t                          exp;
    unsigned                        n, i, seed, bad;
    ngx_str_t                       tok;
    ngx_http_registry_challenge_t   ch;

    static const char   alphabet[] = "\",=: {}\\abc0";

    seed = 777;
    bad = 0;

    for (n = 0; n < iterations; n++) {
        const char  *s = (n & 1) ? json : challenge;

        len = strlen(s);
        ngx_memcpy(buf, s, len);

        for (i = 0; i < 1 + n % 4; i++) {
            seed = seed * 1103515245 + 12345;

            if ((seed >> 16) % 2 && len > 1) {
                len = 1 + (seed >> 8) % len;

            } else {
                buf[(seed >> 8) % len] = alphabet[(seed >> 20) % 13];
            }
        }

        copy = malloc(len);
        dst = malloc(len);
        if (copy == NULL || dst == NULL) {
            exit(2);
        }

        ngx_memcpy(copy, buf, len);

        if (n & 1) {
            if (ngx_http_registry_token_parse(copy, len, dst, &tok, &exp)
                == NGX_OK
                && (tok.data < copy || tok.data + tok.len > copy + len)
                && (tok.data < dst || tok.data + tok.len > dst + len))
            {
                bad++;
            }

        } else {
            (void) ngx_http_registry_challenge_parse(copy, len, &ch);
        }

        free(copy);
        free(dst);
    }

    tests++;
    failed += bad != 0;
    printf("%sok %d - fuzz: %u mutated challenges and token answers, "
           "%u tokens outside the input\n", bad ? "not " : "", tests,
           iterations, bad);
}


int
main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);

    check(ngx_http_registry_valid_component, "nginx", NGX_OK);
    check(ngx_http_registry_valid_component, "a.b_c__d-e--f", NGX_OK);
    check(ngx_http_registry_valid_component, "a___b", NGX_DECLINED);
    check(ngx_http_registry_valid_component, "a..b", NGX_DECLINED);
    check(ngx_http_registry_valid_component, "a.-b", NGX_DECLINED);
    check(ngx_http_registry_valid_component, ".a", NGX_DECLINED);
    check(ngx_http_registry_valid_component, "a-", NGX_DECLINED);
    check(ngx_http_registry_valid_component, "A", NGX_DECLINED);
    check(ngx_http_registry_valid_component, "", NGX_DECLINED);
    check(ngx_http_registry_valid_component, "..", NGX_DECLINED);
    check(ngx_http_registry_valid_component, "a%2e", NGX_DECLINED);

    check(ngx_http_registry_valid_tag, "latest", NGX_OK);
    check(ngx_http_registry_valid_tag, "_v1.0-RC", NGX_OK);
    check(ngx_http_registry_valid_tag, ".x", NGX_DECLINED);
    check(ngx_http_registry_valid_tag, "-x", NGX_DECLINED);
    check(ngx_http_registry_valid_tag, "a:b", NGX_DECLINED);
    check(ngx_http_registry_valid_tag, "", NGX_DECLINED);

    check(ngx_http_registry_valid_digest, "sha256:"
          "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
          NGX_OK);
    check(ngx_http_registry_valid_digest, "sha256:"
          "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
          NGX_DECLINED);
    check(ngx_http_registry_valid_digest, "sha256:abc", NGX_DECLINED);
    check(ngx_http_registry_valid_digest, "sha256:", NGX_DECLINED);
    check(ngx_http_registry_valid_digest, "sha25", NGX_DECLINED);
    check(ngx_http_registry_valid_digest, "md5:"
          "d41d8cd98f00b204e9800998ecf8427e", NGX_DECLINED);

    check(ngx_http_registry_valid_host, "docker.io", NGX_OK);
    check(ngx_http_registry_valid_host, "localhost:5000", NGX_OK);
    check(ngx_http_registry_valid_host, "127.0.0.1:1", NGX_OK);
    check(ngx_http_registry_valid_host, "my-reg.example.com", NGX_OK);
    check(ngx_http_registry_valid_host, "a..b", NGX_DECLINED);
    check(ngx_http_registry_valid_host, ".a", NGX_DECLINED);
    check(ngx_http_registry_valid_host, "a.", NGX_DECLINED);
    check(ngx_http_registry_valid_host, "-a.b", NGX_DECLINED);
    check(ngx_http_registry_valid_host, "a-.b", NGX_DECLINED);
    check(ngx_http_registry_valid_host, "a:", NGX_DECLINED);
    check(ngx_http_registry_valid_host, "a:123456", NGX_DECLINED);
    check(ngx_http_registry_valid_host, "a:1:2", NGX_DECLINED);
    check(ngx_http_registry_valid_host, "a/b", NGX_DECLINED);
    check(ngx_http_registry_valid_host, "a_b", NGX_DECLINED);

    check(ngx_http_registry_host_like, "docker.io", NGX_OK);
    check(ngx_http_registry_host_like, "localhost", NGX_OK);
    check(ngx_http_registry_host_like, "host:5000", NGX_OK);
    check(ngx_http_registry_host_like, "library", NGX_DECLINED);

    check_path("/v2", NGX_OK, NGX_HTTP_REGISTRY_BASE, "", "", "", NULL);
    check_path("/v2/", NGX_OK, NGX_HTTP_REGISTRY_BASE, "", "", "", NULL);
    check_path("/v2/docker.io/library/nginx/manifests/1.25", NGX_OK,
               NGX_HTTP_REGISTRY_MANIFEST, "docker.io", "library/nginx",
               "1.25", NULL);
    check_path("/v2/nginx/manifests/latest", NGX_OK,
               NGX_HTTP_REGISTRY_MANIFEST, "", "nginx", "latest", NULL);
    check_path("/v2/my.app/manifests/latest", NGX_OK,
               NGX_HTTP_REGISTRY_MANIFEST, "", "my.app", "latest", NULL);
    check_path("/v2/localhost/a/tags/list", NGX_OK,
               NGX_HTTP_REGISTRY_TAGS, "localhost", "a", "", NULL);
    check_path("/v2/a/manifests/b/manifests/c", NGX_OK,
               NGX_HTTP_REGISTRY_MANIFEST, "", "a/manifests/b", "c", NULL);
    check_path("/v2/a/blobs/sha256:"
               "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
               NGX_OK, NGX_HTTP_REGISTRY_BLOB, "", "a", "sha256:"
               "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
               NULL);
    check_path("/v2/a/tags/list/", NGX_ERROR, 0, "", "", "", "NAME_INVALID");
    check_path("/v2/docker.io/", NGX_ERROR, 0, "", "", "", "NAME_INVALID");
    check_path("/v2/a/b", NGX_ERROR, 0, "", "", "", "UNSUPPORTED");
    check_path("/v2/_catalog", NGX_ERROR, 0, "", "", "", "UNSUPPORTED");
    check_path("/v2x", NGX_ERROR, 0, "", "", "", "UNSUPPORTED");
    check_path("", NGX_ERROR, 0, "", "", "", "UNSUPPORTED");
    check_path("/v2/a//b/manifests/x", NGX_ERROR, 0, "", "", "",
               "NAME_INVALID");
    check_path("/v2/bad_host.io/a/manifests/x", NGX_ERROR, 0, "", "", "",
               "NAME_INVALID");
    check_path("/v2/a/manifests/sha256:x", NGX_ERROR, 0, "", "", "",
               "DIGEST_INVALID");

    {
    const char  *a1[] = { "application/vnd.oci.image.manifest.v1+json", NULL };
    const char  *a2[] = { "application/vnd.oci.image.index.v1+json;q=0, "
                          "application/vnd.oci.image.manifest.v1+json", NULL };
    const char  *a3[] = { "application/vnd.oci.image.index.v1+json; q=0.000",
                          "*/*, application/json", NULL };
    const char  *a4[] = { " APPLICATION/vnd.oci.image.index.v1+json ;q=0.5",
                          "application/vnd.docker.distribution.manifest.v2+json",
                          "application/vnd.oci.image.index.v1+json", NULL };
    const char  *a5[] = { "application/vnd.oci.image.manifest.v1+jsonx, "
                          "application/vnd.oci.image.manifest.v1, ,,", NULL };
    const char  *a6[] = { "application/vnd.oci.image.index.v1+json;q=0.01",
                          NULL };

    check_accept(a1, "application/vnd.oci.image.manifest.v1+json");
    check_accept(a2, "application/vnd.oci.image.manifest.v1+json");
    check_accept(a3, "");
    check_accept(a4, "application/vnd.docker.distribution.manifest.v2+json, "
                     "application/vnd.oci.image.index.v1+json");
    check_accept(a5, "");
    check_accept(a6, "application/vnd.oci.image.index.v1+json");
    }

    {
    ngx_http_registry_challenge_t  ch;

    static char  c1[] = "Bearer realm=\"https://auth.docker.io/token\","
                        "service=\"registry.docker.io\","
                        "scope=\"repository:library/nginx:pull\"";
    static char  c2[] = "Basic realm=\"Registry Realm\"";
    static char  c3[] = "Bearer realm=\"ftp://x/\"";
    static char  c4[] = "Bearer realm=\"https://a/t\",service=\"s";
    static char  c5[] = "Negotiate abc";
    static char  j1[] = "{\"token\": \"abc.def.ghi\", \"expires_in\": 300}";
    static char  j2[] = "{\"access_token\":\"xyz\"}";
    static char  j3[] = "{\"token\":\"a\\\"b\"}";
    static char  j4[] = "{\"token\":42}";
    static char  j5[] = "{\"token\":\"t\",\"expires_in\":99999999}";

    ok(ngx_http_registry_challenge_parse((u_char *) c1, sizeof(c1) - 1, &ch)
       == NGX_OK && ch.bearer && eq(&ch.realm, "https://auth.docker.io/token")
       && eq(&ch.service, "registry.docker.io")
       && eq(&ch.scope, "repository:library/nginx:pull"), "challenge", c1);
    ok(ngx_http_registry_challenge_parse((u_char *) c2, sizeof(c2) - 1, &ch)
       == NGX_OK && !ch.bearer, "challenge", c2);
    ok(ngx_http_registry_challenge_parse((u_char *) c3, sizeof(c3) - 1, &ch)
       == NGX_DECLINED, "challenge refused", c3);
    ok(ngx_http_registry_challenge_parse((u_char *) c4, sizeof(c4) - 1, &ch)
       == NGX_OK && eq(&ch.realm, "https://a/t") && ch.service.len == 0,
       "challenge, unterminated quote ignored", c4);
    ok(ngx_http_registry_challenge_parse((u_char *) c5, sizeof(c5) - 1, &ch)
       == NGX_DECLINED, "challenge refused", c5);

    check_token(j1, NGX_OK, "abc.def.ghi", 300, "token");
    check_token(j2, NGX_OK, "xyz", 60, "access_token");
    check_token(j3, NGX_OK, "a\"b", 60, "token with an escape, unescaped");
    check_token(j4, NGX_DECLINED, NULL, 0, "token not a string refused");
    check_token(j5, NGX_OK, "t", NGX_HTTP_REGISTRY_TOKEN_MAX_AGE,
                "expires_in bounded");
    check_token("{\"token\":\"a\\/b\\u0041\"}", NGX_OK, "a/bA", 60,
                "escapes unescaped");
    check_token("{\"token\":\"a\\u00e9\"}", NGX_DECLINED, NULL, 0,
                "token not ASCII refused");
    check_token("{\"token\":\"a b\"}", NGX_DECLINED, NULL, 0,
                "token with a space refused");
    check_token("{\"token\":\"a\\nb\"}", NGX_DECLINED, NULL, 0,
                "token with an escaped control refused");
    check_token("{\"token\":\"\"}", NGX_DECLINED, NULL, 0,
                "empty token refused");
    check_token("{\"token\":null,\"access_token\":\"x\"}", NGX_DECLINED,
                NULL, 0, "token not a string refused, access_token or not");
    check_token("{\"token\":{\"token\":\"x\"}}", NGX_DECLINED, NULL, 0,
                "token an object refused");
    check_token("{\"data\":{\"token\":\"nested\"}}", NGX_DECLINED, NULL, 0,
                "nested token ignored");
    check_token("{\"data\":[{\"access_token\":\"nested\"}]}", NGX_DECLINED,
                NULL, 0, "nested access_token ignored");
    check_token("{\"data\":{\"token\":\"nested\",\"expires_in\":5},"
                "\"token\":\"top\"}", NGX_OK, "top", 60,
                "nested token and expires_in ignored, top-level one taken");
    check_token("[{\"token\":\"x\"}]", NGX_DECLINED, NULL, 0,
                "not an object refused");
    check_token("\"token\"", NGX_DECLINED, NULL, 0, "a string refused");
    check_token("{\"TOKEN\":\"x\"}", NGX_DECLINED, NULL, 0,
                "TOKEN ignored");
    check_token("{\"Token\":\"x\",\"access_token\":\"y\"}", NGX_OK, "y",
                60, "Token ignored, access_token taken");
    check_token("{\"tok\\u0065n\":\"x\"}", NGX_DECLINED, NULL, 0,
                "escaped name ignored");
    check_token("{\"token\":\"a\",\"token\":\"b\"}", NGX_DECLINED, NULL, 0,
                "duplicate token refused");
    check_token("{\"access_token\":\"a\",\"access_token\":\"b\","
                "\"token\":\"c\"}", NGX_DECLINED, NULL, 0,
                "duplicate access_token refused");
    check_token("{\"token\":\"a\",\"expires_in\":300,\"expires_in\":1}",
                NGX_DECLINED, NULL, 0, "duplicate expires_in refused");
    check_token("{\"token\":\"a\",\"expires_in\":\"300\"}", NGX_OK, "a",
                60, "expires_in a string: 60 s");
    check_token("{\"token\":\"a\",\"expires_in\":null}", NGX_OK, "a", 60,
                "expires_in null: 60 s");
    check_token("{\"token\":\"a\",\"expires_in\":-5}", NGX_OK, "a", 60,
                "expires_in negative: 60 s");
    check_token("{\"token\":\"a\",\"expires_in\":0}", NGX_OK, "a", 60,
                "expires_in 0: 60 s");
    check_token("{\"token\":\"a\",\"expires_in\":3.5e2}", NGX_OK, "a", 60,
                "expires_in not an integer: 60 s");
    check_token("{\"token\":\"a\",\"expires_in\":1800}", NGX_OK, "a", 1800,
                "expires_in 1800");
    check_token("{\"token\":\"a\",\"expires_in\":"
                "123456789012345678901234567890}", NGX_OK, "a",
                NGX_HTTP_REGISTRY_TOKEN_MAX_AGE, "expires_in huge: bounded");
    check_token("{\"token\":\"a\"} x", NGX_DECLINED, NULL, 0,
                "trailing bytes refused");
    check_token("{\"token\":\"a\"", NGX_DECLINED, NULL, 0,
                "truncated answer refused");
    check_token("{\"token\":\"a\",}", NGX_DECLINED, NULL, 0,
                "malformed answer refused");

    {
    static char  big[NGX_HTTP_REGISTRY_TOKEN_LEN + 32];
    char         want[NGX_HTTP_REGISTRY_TOKEN_LEN + 2];

    memset(want, 'a', sizeof(want) - 1);
    want[NGX_HTTP_REGISTRY_TOKEN_LEN] = '\0';
    snprintf(big, sizeof(big), "{\"token\":\"%s\"}", want);
    check_token(big, NGX_OK, want, 60, "token of the longest length");

    want[NGX_HTTP_REGISTRY_TOKEN_LEN] = 'a';
    want[NGX_HTTP_REGISTRY_TOKEN_LEN + 1] = '\0';
    snprintf(big, sizeof(big), "{\"token\":\"%s\"}", want);
    check_token(big, NGX_DECLINED, NULL, 0, "token one byte longer refused");
    }

    fuzz_auth(c1, j1, argc > 1 ? (unsigned) atoi(argv[1]) : 200000);
    }

    fuzz(argc > 1 ? (unsigned) atoi(argv[1]) : 200000);

    printf("1..%d\n", tests);

    return failed ? 1 : 0;
}
