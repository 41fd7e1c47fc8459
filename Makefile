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

# What "make install" and "make run" use: this tree's module and Debian's
# nginx, unless told another build (the tests' nginx 1.26, say).
MODULE_SO   ?= $(MODULE)
NGINX_BIN   ?= nginx

SOURCES := config $(wildcard ngx_registry_module/*.c ngx_registry_module/*.h)

.PHONY: all module test install uninstall run run-conf bench bench-tags \
        bench-edge bench-regional bench-metrics asan-test clean

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

# The suite on both nginx versions Debian ships: 1.22 (Debian 12's packaged
# binary with the module built above) and 1.26 (Debian 13's, built from its
# source below with the module); first, the builds other users make.
test: module nginx-1.26 build-checks
	prove -r t
	NGINX=$(N126_BIN) REGISTRY_MODULE=$(N126_MODULE) prove -r t

# Sources fetched by apt-get through a private apt state under $(APT_DIR)
# (trixie's nginx and nginx-dev, bookworm's openssl), so that the system's
# sources and package lists are left as they are.
APT_DIR     := $(BUILD)/apt
APTGET       = apt-get -q -o Dir::Etc::SourceList=/dev/null \
               -o Dir::Etc::SourceParts=$(APT_DIR)/sources \
               -o Dir::State::Lists=$(APT_DIR)/lists \
               -o Dir::Cache=$(APT_DIR)/cache \
               -o Dir::State::Status=/dev/null
DEBIAN_KEY  := /usr/share/keyrings/debian-archive-keyring.gpg

$(APT_DIR)/fetched:
	rm -rf $(APT_DIR) && mkdir -p $(APT_DIR)/sources \
	    $(APT_DIR)/lists/partial $(APT_DIR)/cache/archives/partial
	printf '%s\n' 'Types: deb deb-src' 'URIs: http://deb.debian.org/debian' \
	    'Suites: trixie' 'Components: main' 'Signed-By: $(DEBIAN_KEY)' '' \
	    'Types: deb-src' 'URIs: http://deb.debian.org/debian' \
	    'Suites: bookworm' 'Components: main' 'Signed-By: $(DEBIAN_KEY)' \
	    > $(APT_DIR)/sources/debian.sources
	cd $(APT_DIR) && { $(APTGET) update && \
	    $(APTGET) source --tar-only nginx/trixie openssl/bookworm && \
	    $(APTGET) download nginx-dev/trixie; } > $(APT_DIR)/fetch.log 2>&1 \
	    || { cat $(APT_DIR)/fetch.log; exit 1; }
	touch $@

# nginx 1.26 as Debian 13 packages it, with the module: the upstream
# tarball of trixie's source package, configured with the packaged core and
# ABI flags (conf_flags of trixie's nginx-dev, which debian/rules writes
# from its basic_configure_flags), the modules debian/rules builds into the
# binary, and dpkg-buildflags' CFLAGS and LDFLAGS as debian/rules passes
# them.  Left out: the dynamic geoip, image filter, perl and xslt modules
# (they need libgeoip-dev, libgd-dev, libperl-dev and libxslt1-dev, for
# modules unrelated to this one) and Debian's patches (the source package's
# debian.tar.xz is not reachable here, only its upstream tarball).
N126_DIR    ?= $(BUILD)/nginx-1.26
N126_BIN    := $(N126_DIR)/objs/nginx
N126_MODULE := $(N126_DIR)/objs/ngx_http_registry_module.so
N126_FLAGS  := --with-http_addition_module --with-http_flv_module \
               --with-http_gunzip_module --with-http_gzip_static_module \
               --with-http_mp4_module --with-http_random_index_module \
               --with-http_secure_link_module --with-http_sub_module \
               --with-mail=dynamic --with-mail_ssl_module \
               --with-stream=dynamic --with-stream_ssl_module \
               --with-stream_ssl_preread_module --with-stream_realip_module

.PHONY: nginx-1.26 build-checks
nginx-1.26: $(N126_MODULE)

# A fresh nginx 1.26 source tree in folder $(1).
define nginx126_tree
	rm -rf $(1) && mkdir -p $(1)
	tar -xzf $(APT_DIR)/nginx_1.26.*.orig.tar.gz --strip-components=1 -C $(1)
endef

$(N126_DIR)/objs/Makefile: config $(APT_DIR)/fetched
	$(call nginx126_tree,$(N126_DIR))
	dpkg-deb -x $(APT_DIR)/nginx-dev_1.26.*.deb $(N126_DIR)/nginx-dev
	cd $(N126_DIR) && source nginx-dev/usr/share/nginx/src/conf_flags && \
	    ./configure "$${NGX_CONF_FLAGS[@]}" $(N126_FLAGS) \
	        --with-cc-opt="$$(dpkg-buildflags --get CFLAGS) -fPIC $$(dpkg-buildflags --get CPPFLAGS)" \
	        --with-ld-opt="$$(dpkg-buildflags --get LDFLAGS) -fPIC" \
	        --add-dynamic-module=$(CURDIR) > configure.log 2>&1 \
	    || { tail -30 configure.log; exit 1; }

$(N126_MODULE): $(N126_DIR)/objs/Makefile $(SOURCES)
	$(MAKE) -C $(N126_DIR) -f objs/Makefile -j2 > $(N126_DIR)/make.log 2>&1 \
	    || { tail -40 $(N126_DIR)/make.log; exit 1; }

# Builds users make other than Debian's (build only, on nginx 1.26's
# source): without http_ssl_module, configure stops with the module's
# message; built in (--add-module), nginx -t accepts a registry; against
# an OpenSSL source tree (--with-openssl=DIR, bookworm's openssl), the
# module links no libcrypto of its own and loads.
CHECKS_DIR  := $(BUILD)/checks
CHECK_CONF   = printf '%s\n' $(1) 'pid t.pid;' 'events {}' \
                   'http { registry docker.io https://registry-1.docker.io; }' \
                   > $(2)/t.conf && \
               $(2)/objs/nginx -t -p $(2)/ -c $(2)/t.conf -e stderr
build-checks: $(CHECKS_DIR)/nossl.ok $(CHECKS_DIR)/static.ok \
              $(CHECKS_DIR)/openssl.ok

$(CHECKS_DIR)/nossl.ok: $(APT_DIR)/fetched $(SOURCES)
	$(call nginx126_tree,$(CHECKS_DIR)/nossl)
	cd $(CHECKS_DIR)/nossl && ! ./configure --add-dynamic-module=$(CURDIR) \
	    > configure.log 2>&1
	grep -q 'ngx_http_registry_module needs the http_ssl_module' \
	    $(CHECKS_DIR)/nossl/configure.log
	@echo 'build check: without http_ssl_module, configure says so and stops'
	touch $@

$(CHECKS_DIR)/static.ok: $(APT_DIR)/fetched $(SOURCES)
	$(call nginx126_tree,$(CHECKS_DIR)/static)
	cd $(CHECKS_DIR)/static && ./configure --with-http_ssl_module \
	    --add-module=$(CURDIR) > configure.log 2>&1 && \
	    $(MAKE) -f objs/Makefile -j2 > make.log 2>&1 \
	    || { tail -30 configure.log make.log; exit 1; }
	$(call CHECK_CONF,,$(CHECKS_DIR)/static)
	@echo 'build check: built in with --add-module, nginx -t passes'
	touch $@

$(CHECKS_DIR)/openssl.ok: $(APT_DIR)/fetched $(SOURCES)
	$(call nginx126_tree,$(CHECKS_DIR)/openssl)
	tar -xzf $(APT_DIR)/openssl_*.orig.tar.gz -C $(CHECKS_DIR)/openssl
	cd $(CHECKS_DIR)/openssl && ./configure --with-compat \
	    --with-http_ssl_module --with-openssl=$$(echo openssl-*/) \
	    --with-openssl-opt=no-tests --add-dynamic-module=$(CURDIR) \
	    > configure.log 2>&1 && \
	    $(MAKE) -f objs/Makefile -j2 > make.log 2>&1 \
	    || { tail -30 configure.log make.log; exit 1; }
	! readelf -d $(CHECKS_DIR)/openssl/objs/ngx_http_registry_module.so | \
	    grep -E 'NEEDED.*lib(crypto|ssl)'
	$(call CHECK_CONF,'load_module objs/ngx_http_registry_module.so;',$(CHECKS_DIR)/openssl)
	@echo 'build check: with --with-openssl=DIR, the module links no libcrypto of its own and loads'
	touch $@

# As Debian's libnginx-mod-* packages lay a module out.
install: module
	install -d $(DESTDIR)$(MODULES_DIR) $(DESTDIR)$(AVAIL_DIR) \
	    $(DESTDIR)$(ENABLED_DIR) $(DESTDIR)$(CONF_DIR)
	install -m 644 $(MODULE_SO) \
	    $(DESTDIR)$(MODULES_DIR)/ngx_http_registry_module.so
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
	sed -e 's|modules/ngx_http_registry_module.so|$(MODULE_SO)|' \
	    -e 's|/etc/nginx/registry_params|$(CURDIR)/registry_params|' \
	    -e 's|127.0.0.1:5000|127.0.0.1:$(PORT)|' \
	    -e 's|/var/cache/nginx/registry|$(CACHE)|' \
	    -e 's|^\( *error_log\) [^;]*|\1 stderr|' \
	    -e 's|^\( *access_log\) [^ ;]*|\1 /dev/stdout|' \
	    -e 's|^\(pid\) [^;]*|\1 $(RUN_DIR)/nginx.pid|' \
	    $(if $(RESOLVER),-e 's|^\( *resolver\) [^ ;]*|\1 $(RESOLVER)|') \
	    $(CONF) > $(RUN_DIR)/nginx.conf

run: module run-conf
	exec $(NGINX_BIN) -p $(RUN_DIR)/ -c $(RUN_DIR)/nginx.conf -e stderr \
	    -g 'daemon off;'

clean:
	rm -rf $(BUILD)

# Side-by-side benchmarks on loopback (needs: apt-get install wrk curl):
# cache hits and fills against static nginx, plain proxy_cache and
# distribution; verified fills against the origin and SHA-256 speed; what
# one tag pulled 1,000 times costs the upstream in manifest GETs and HEADs;
# on an auth=client edge over TLS, manifest hits for a client with a
# token against anonymous ones, and what warm pulls cost the upstream;
# an edge in front of two parents (regional nodes): blob hits at the edge
# against static nginx, first pulls (parent hits) against the parent direct;
# manifest hits with the metrics on against the same mirror with them off.
bench: module
	perl bench/cache.pl
	perl bench/verify.pl
	perl bench/tags.pl
	perl bench/edge.pl
	perl bench/regional.pl
	perl bench/metrics.pl

bench-tags: module
	perl bench/tags.pl

bench-edge: module
	perl bench/edge.pl

bench-regional: module
	perl bench/regional.pl

bench-metrics: module
	perl bench/metrics.pl

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
	        t/verify.t t/tags.t t/history.t t/referrers.t t/manifest.t \
	        t/headers.t t/tags-hostile.t t/edge.t t/edge-clients.t \
	        t/edge-hostile-upstream.t t/edge-hostile-client.t t/edge-hostile-2.t \
	        t/regions.t t/regions-hostile.t t/tiers.t t/regional.t \
	        t/allowlist.t t/metrics.t t/metrics-size.t t/health.t
	@if ls $(ASAN_DIR)/reports | grep -q .; then \
	    cat $(ASAN_DIR)/reports/*; exit 1; fi
	@echo "no AddressSanitizer reports"
