#!/usr/bin/perl

# Build and install, as a user sees them: the built module loads into the
# nginx it was built for (Debian's packaged binary, or the one NGINX=
# names), takes its OpenSSL from that nginx rather than linking one of its
# own, and "make install" lays it out as Debian's libnginx-mod-* packages
# do, so that "nginx -t" passes on the stock Debian configuration with the
# module enabled.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use File::Path qw(make_path);
use RegistryTest;

my $nginx = $NGINX;
my ($version) = run_out($nginx, '-v') =~ m{nginx/(\S+)};
note("nginx $version: $nginx, module " . module_path());

# loads into the nginx it was built for: the same version and binary
# compatibility signature (--with-compat), every symbol it uses resolved
my $d = test_dir();
make_path("$d/tmp");
spew("$d/load.conf", nginx_conf('registry docker.io http://127.0.0.1:1;'));
(my $conf = slurp("$d/load.conf")) =~ s/\@DIR\@/$d/g;
spew("$d/load.conf", $conf);
my $out = run_out($nginx, '-t', '-c', "$d/load.conf", '-e', "$d/t.log");
is($?, 0, "load_module into nginx $version") or diag $out;
like($out, qr/test is successful/, '... nginx -t says so');

# one OpenSSL in the process: the module's libcrypto symbols are the nginx
# binary's (config: ngx_module_libs=OPENSSL), so a module built against an
# nginx with its own OpenSSL (--with-openssl=DIR) does not drag in the
# system's
my $dyn = run_out('readelf', '-d', module_path());
like($dyn, qr/\(NEEDED\)/, 'readelf lists what the module needs');
unlike($dyn, qr/\(NEEDED\).*lib(crypto|ssl)\b/,
       'the module links no libcrypto or libssl of its own');

# make install into a staging root
my $dest = "$d/root";
$out = run_out('make', '-s', '-C', $ROOT, 'install', "DESTDIR=$dest",
              'MODULE_SO=' . module_path());
is($?, 0, 'make install DESTDIR=...') or diag $out;

ok(-f "$dest/usr/lib/nginx/modules/ngx_http_registry_module.so",
   'module in /usr/lib/nginx/modules');
is(slurp("$dest/usr/share/nginx/modules-available/mod-http-registry.conf"),
   "load_module modules/ngx_http_registry_module.so;\n",
   'load snippet in modules-available');
is(readlink("$dest/etc/nginx/modules-enabled/50-mod-http-registry.conf"),
   '/usr/share/nginx/modules-available/mod-http-registry.conf',
   'enabled by a symlink in modules-enabled');
ok(-f "$dest/etc/nginx/registry_params", 'registry_params beside proxy_params');
is(readlink("$dest/etc/nginx/registry-ca.crt"),
   '/etc/ssl/certs/ca-certificates.crt',
   'registry-ca.crt links to the system CA bundle');

# the stock configuration, moved under the staging root with the module
# enabled: the same files, paths rewritten to point there
run_ok('cp', '-an', '/etc/nginx/.', "$dest/etc/nginx/");
unlink "$dest/etc/nginx/modules-enabled/50-mod-http-registry.conf";
symlink "$dest/usr/share/nginx/modules-available/mod-http-registry.conf",
        "$dest/etc/nginx/modules-enabled/50-mod-http-registry.conf";
symlink '../../lib/nginx/modules', "$dest/usr/share/nginx/modules";
for my $f ("$dest/etc/nginx/nginx.conf",
           glob("$dest/etc/nginx/sites-enabled/*"))
{
    (my $c = slurp($f)) =~ s{/etc/nginx/}{$dest/etc/nginx/}g;
    $c =~ s{/var/log/nginx/}{$d/}g;
    unlink $f;
    spew($f, $c);
}
$out = run_out($nginx, '-t', '-p', "$dest/usr/share/nginx/",
               '-c', "$dest/etc/nginx/nginx.conf", '-e', "$d/t.log");
is($?, 0, 'nginx -t on the stock configuration with the module enabled')
    or diag $out;
like($out, qr/test is successful/, 'nginx -t says so');

# the stock configuration plus a mirror server using registry_params
make_path("$dest/etc/nginx/conf.d");
spew("$dest/etc/nginx/conf.d/mirror.conf", <<"EOF");
proxy_cache_path $d/cache keys_zone=registry:8m;
registry docker.io https://registry-1.docker.io;
server {
    listen 127.0.0.1:5000;
    registry_default docker.io;
    include $dest/etc/nginx/registry_params;
}
EOF
$out = run_out($nginx, '-t', '-p', "$dest/usr/share/nginx/",
               '-c', "$dest/etc/nginx/nginx.conf", '-e', "$d/t.log");
is($?, 0, 'nginx -t with a mirror server in conf.d') or diag $out;

$out = run_out('make', '-s', '-C', $ROOT, 'uninstall', "DESTDIR=$dest");
ok(!-e "$dest/usr/lib/nginx/modules/ngx_http_registry_module.so"
   && !-e "$dest/etc/nginx/registry_params"
   && !-l "$dest/etc/nginx/registry-ca.crt", 'make uninstall');

done_testing();
