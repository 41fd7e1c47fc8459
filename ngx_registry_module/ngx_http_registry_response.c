
/*
 * Copyright (C) ngx_registry_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_registry_response.h"


/*
 * What every step answers with: the mirror's own OCI errors and small
 * JSON answers, and the walk over a list of header lines.
 */


static ngx_str_t  ngx_http_registry_api_header =
    ngx_string("Docker-Distribution-API-Version");
static ngx_str_t  ngx_http_registry_api_version = ngx_string("registry/2.0");
static ngx_str_t  ngx_http_registry_allow_header = ngx_string("Allow");
static ngx_str_t  ngx_http_registry_json =
    ngx_string("application/json; charset=utf-8");


/* the same, from a status and C strings */

ngx_int_t
ngx_http_registry_send_oci_error(ngx_http_request_t *r, ngx_uint_t status,
    char *code, char *message)
{
    ngx_http_registry_error_t  err;

    err.status = status;
    err.code.data = (u_char *) code;
    err.code.len = ngx_strlen(code);
    err.message.data = (u_char *) message;
    err.message.len = ngx_strlen(message);

    return ngx_http_registry_send_error(r, &err);
}


ngx_int_t
ngx_http_registry_send_error(ngx_http_request_t *r,
    ngx_http_registry_error_t *err)
{
    u_char     *p;
    uintptr_t   escape;
    ngx_str_t   body, allow;

    /* a message may quote what the client asked for */

    escape = ngx_escape_json(NULL, err->message.data, err->message.len);

    p = ngx_pnalloc(r->pool, sizeof("{\"errors\":[{\"code\":\"\","
                                    "\"message\":\"\"}]}\n") - 1
                             + err->code.len + err->message.len + escape);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    body.data = p;
    p = ngx_sprintf(p, "{\"errors\":[{\"code\":\"%V\",\"message\":\"",
                    &err->code);
    p = (u_char *) ngx_escape_json(p, err->message.data, err->message.len);
    p = ngx_cpymem(p, "\"}]}\n", sizeof("\"}]}\n") - 1);
    body.len = p - body.data;

    if (err->status == NGX_HTTP_NOT_ALLOWED) {
        ngx_str_set(&allow, "GET, HEAD");

        if (ngx_http_registry_set_header(r, &ngx_http_registry_allow_header,
                                         &allow)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    /* nginx knows no reason phrase for 508 */

    if (err->status == NGX_HTTP_REGISTRY_LOOP_DETECTED) {
        ngx_str_set(&r->headers_out.status_line, "508 Loop Detected");
    }

    return ngx_http_registry_send(r, err->status, &body);
}


/* a small JSON answer of the mirror's own, body dropped for HEAD */

ngx_int_t
ngx_http_registry_send(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *body)
{
    ngx_int_t  rc;

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    if (ngx_http_registry_set_header(r, &ngx_http_registry_api_header,
                                     &ngx_http_registry_api_version)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_registry_send_body(r, status, &ngx_http_registry_json,
                                       body);
}


/* an answer of the mirror's own, whole: status, Content-Type, body */

ngx_int_t
ngx_http_registry_send_body(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *type, ngx_str_t *body)
{
    ngx_int_t    rc;
    ngx_buf_t   *b;
    ngx_chain_t  out;

    r->headers_out.status = status;
    r->headers_out.content_type = *type;
    r->headers_out.content_type_len = type->len;
    r->headers_out.content_type_lowcase = NULL;
    r->headers_out.content_length_n = body->len;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->pos = body->data;
    b->last = body->data + body->len;
    b->memory = body->len ? 1 : 0;
    b->last_buf = 1;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


ngx_int_t
ngx_http_registry_set_header(ngx_http_request_t *r, ngx_str_t *key,
    ngx_str_t *value)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    h->key = *key;
    h->value = *value;

    return NGX_OK;
}


/*
 * Calls handler for every header line called name, until it returns
 * NGX_DONE (then NGX_DONE is returned).
 */

ngx_int_t
ngx_http_registry_headers(ngx_list_t *headers, ngx_str_t *name,
    ngx_http_registry_header_pt handler, void *data)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &headers->part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NGX_OK;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == name->len
            && ngx_strncasecmp(h[i].key.data, name->data, name->len) == 0
            && handler(&h[i], data) == NGX_DONE)
        {
            return NGX_DONE;
        }
    }
}


ngx_int_t
ngx_http_registry_first_line(ngx_table_elt_t *h, void *data)
{
    *(ngx_table_elt_t **) data = h;

    return NGX_DONE;
}


/* a header line dropped from what is sent */

ngx_int_t
ngx_http_registry_hide_line(ngx_table_elt_t *h, void *data)
{
    h->hash = 0;

    return NGX_OK;
}


/* the first WWW-Authenticate line of the Bearer scheme */

ngx_int_t
ngx_http_registry_first_bearer(ngx_table_elt_t *h, void *data)
{
    if (h->hash == 0 || h->value.len < 7
        || ngx_strncasecmp(h->value.data, (u_char *) "Bearer ", 7) != 0)
    {
        return NGX_OK;
    }

    *(ngx_table_elt_t **) data = h;

    return NGX_DONE;
}


/* the first WWW-Authenticate line of the Basic scheme */

ngx_int_t
ngx_http_registry_first_basic(ngx_table_elt_t *h, void *data)
{
    if (h->hash == 0 || h->value.len < 6
        || ngx_strncasecmp(h->value.data, (u_char *) "Basic ", 6) != 0)
    {
        return NGX_OK;
    }

    *(ngx_table_elt_t **) data = h;

    return NGX_DONE;
}


/*
 * An in-memory subrequest that failed on the way (an answer larger than
 * subrequest_output_buffer_size, a connection lost mid-answer) would end
 * the client's request with it, unanswered: *failed is set, and unless
 * the client's side itself failed (closed, errored, timed out) the mark
 * nginx put on the client's connection for it is lifted (an answer too
 * big for the buffer marks it failed, as ngx_http_output_filter does for
 * any filter's NGX_ERROR, although nothing was written to it).  Returns
 * what the post-subrequest handler returns.
 */

ngx_int_t
ngx_http_registry_subrequest_done(ngx_http_request_t *r, ngx_int_t rc,
    ngx_uint_t *failed)
{
    ngx_connection_t  *c;

    c = r->connection;

    if (rc != NGX_ERROR && !c->error) {
        return rc;
    }

    *failed = 1;

    if (c->error
        && (c->timedout || c->read->eof || c->read->error
            || c->write->eof || c->write->error))
    {
        return rc;
    }

    c->error = 0;

    return NGX_OK;
}
