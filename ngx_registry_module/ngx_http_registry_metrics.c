
/*
 * Copyright (C) ngx_registry_module authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_http_registry_metrics.h"


/*
 * The counters live in the module's shared zone
 * (ngx_http_registry_zone.c); each worker finds them at its start, and
 * has none when no registry is configured.
 */

ngx_http_registry_counters_t  *ngx_http_registry_counters;
