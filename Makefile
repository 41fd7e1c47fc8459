# Builds ngx_http_registry_module.so against Debian's nginx-dev, the way
# dh_nginx does: a copy of /usr/share/nginx/src configured with the packaged
# binary's own flags (--with-compat), then only the modules are compiled.

SHELL       := /bin/bash
NGX_SRC     ?= /usr/share/nginx/src
BUILD       ?= $(CURDIR)/build
MODULE      := $(BUILD)/nginx/objs/ngx_http_registry_module.so
CC_OPT      ?= -g -O2 -fstack-protector-strong -Wall -Wextra \
               -Wno-unused-parameter -Werror -fPIC

DESTDIR     ?=
MODULES_DIR ?= /usr/lib/nginx/modules
AVAIL_DIR   ?= /usr/share/nginx/modules-available
ENABLED_DIR ?= /etc/nginx/modules-enabled
CONF_DIR    ?= /etc/nginx
SYSTEM_CA   ?= /etc/ssl/certs/ca-certificates.crt

# "make run": conf-examples/mirror.conf, in the foreground, with the
# module and registry_params from this tree.
CONF        ?= conf-examples/mirror.conf
PORT        ?= 5000
CACHE       ?= /var/cache/nginx/registry
RUN_DIR     ?= $(BUILD)/run
RESOLVER    ?= $(shell awk '/^nameserver/ { a = $$2; \
                   if (a ~ /:/) a = "[" a "]"; print a; exit }' \
                   /etc/resolv.conf 2>/dev/null)

SOURCES := config $(wildcard ngx_registry_module/*.c ngx_registry_module/*.h)

.PHONY: all module test install uninstall run run-conf bench asan-test clean

all: module

module: $(MODULE)

$(BUILD)/nginx/objs/Makefile: config $(NGX_SRC)/conf_flags
	rm -rf $(BUILD)/nginx
	mkdir -p $(BUILD)
	cp -a $(NGX_SRC) $(BUILD)/nginx
	cd $(BUILD)/nginx && source ./conf_flags && \
	    ./configure "$${NGX_CONF_FLAGS[@]}" --with-cc-opt="$(CC_OPT)" \
	        --add-dynamic-module=$(CURDIR) > $(BUILD)/configure.log 2>&1 \
	    || { tail -30 $(BUILD)/configure.log; exit 1; }

$(MODULE): $(BUILD)/nginx/objs/Makefile $(SOURCES)
	$(MAKE) -C $(BUILD)/nginx -f objs/Makefile modules

test: module
	prove -r t

# As Debian's libnginx-mod-* packages lay a module out.
install: module
	install -d $(DESTDIR)$(MODULES_DIR) $(DESTDIR)$(AVAIL_DIR) \
	    $(DESTDIR)$(ENABLED_DIR) $(DESTDIR)$(CONF_DIR)
	install -m 644 $(MODULE) $(DESTDIR)$(MODULES_DIR)/
	echo 'load_module modules/ngx_http_registry_module.so;' \
	    > $(DESTDIR)$(AVAIL_DIR)/mod-http-registry.conf
	ln -sf $(AVAIL_DIR)/mod-http-registry.conf \
	    $(DESTDIR)$(ENABLED_DIR)/50-mod-http-registry.conf
	install -m 644 registry_params $(DESTDIR)$(CONF_DIR)/registry_params
	test -e $(DESTDIR)$(CONF_DIR)/registry-ca.crt || \
	    ln -s $(SYSTEM_CA) $(DESTDIR)$(CONF_DIR)/registry-ca.crt

uninstall:
	rm -f $(DESTDIR)$(ENABLED_DIR)/50-mod-http-registry.conf \
	    $(DESTDIR)$(AVAIL_DIR)/mod-http-registry.conf \
	    $(DESTDIR)$(MODULES_DIR)/ngx_http_registry_module.so \
	    $(DESTDIR)$(CONF_DIR)/registry_params
	test -L $(DESTDIR)$(CONF_DIR)/registry-ca.crt && \
	    rm -f $(DESTDIR)$(CONF_DIR)/registry-ca.crt || true

# The example config made runnable from this tree: module and snippet paths,
# port, cache folder, logs to the terminal, the system's DNS server.
run-conf:
	mkdir -p $(RUN_DIR) $(dir $(CACHE))
	test -e $(RUN_DIR)/registry-ca.crt || \
	    ln -s $(SYSTEM_CA) $(RUN_DIR)/registry-ca.crt
	sed -e 's|modules/ngx_http_registry_module.so|$(MODULE)|' \
	    -e 's|/etc/nginx/registry_params|$(CURDIR)/registry_params|' \
	    -e 's|127.0.0.1:5000|127.0.0.1:$(PORT)|' \
	    -e 's|/var/cache/nginx/registry|$(CACHE)|' \
	    -e 's|^\( *error_log\) [^;]*|\1 stderr|' \
	    -e 's|^\( *access_log\) [^;]*|\1 /dev/stdout|' \
	    -e 's|^\(pid\) [^;]*|\1 $(RUN_DIR)/nginx.pid|' \
	    $(if $(RESOLVER),-e 's|^\( *resolver\) [^ ;]*|\1 $(RESOLVER)|') \
	    $(CONF) > $(RUN_DIR)/nginx.conf

run: module run-conf
	exec nginx -p $(RUN_DIR)/ -c $(RUN_DIR)/nginx.conf -e stderr \
	    -g 'daemon off;'

clean:
	rm -rf $(BUILD)

# Side-by-side benchmarks on loopback (needs: apt-get install wrk curl):
# cache hits and fills against static nginx, plain proxy_cache and
# distribution; verified fills against the origin and SHA-256 speed.
bench: module
	perl bench/cache.pl
	perl bench/verify.pl

# The suite under AddressSanitizer: nginx and the module built from nginx's
# own sources (NGINX_SOURCE, e.g. from "apt-get source nginx") with the
# packaged flags plus -fsanitize=address; any report fails the run.
ASAN_DIR ?= $(BUILD)/asan
asan-test:
	test -x $(NGINX_SOURCE)/configure || \
	    { echo "set NGINX_SOURCE to an nginx 1.22.1 source tree"; exit 1; }
	rm -rf $(ASAN_DIR) && mkdir -p $(ASAN_DIR)/reports
	cp -a $(NGINX_SOURCE) $(ASAN_DIR)/nginx
	cd $(ASAN_DIR)/nginx && source /usr/share/nginx/src/conf_flags && \
	    ./configure "$${NGX_CONF_FLAGS[@]}" \
	        --with-cc-opt="-g -O1 -fsanitize=address -fno-omit-frame-pointer" \
	        --with-ld-opt="-fsanitize=address" \
	        --add-dynamic-module=$(CURDIR) > $(ASAN_DIR)/configure.log 2>&1
	$(MAKE) -C $(ASAN_DIR)/nginx -f objs/Makefile -j2 > $(ASAN_DIR)/make.log
	NGINX=$(ASAN_DIR)/nginx/objs/nginx \
	REGISTRY_MODULE=$(ASAN_DIR)/nginx/objs/ngx_http_registry_module.so \
	ASAN_OPTIONS=log_path=$(ASAN_DIR)/reports/asan:detect_leaks=0:detect_odr_violation=0 \
	    prove t/routing.t t/proxy.t t/validation.t t/private.t t/cache*.t \
	        t/auth.t t/token-answers.t t/zone.t t/tls.t t/redirect.t \
	        t/verify.t
	@if ls $(ASAN_DIR)/reports | grep -q .; then \
	    cat $(ASAN_DIR)/reports/*; exit 1; fi
	@echo "no AddressSanitizer reports"
