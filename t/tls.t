#!/usr/bin/perl

# TLS to upstreams: SNI carries the registry's host name; certificates are
# verified by default against the bundle registry_params names
# (registry-ca.crt beside nginx.conf: the system bundle, plus a CA the
# operator adds); an untrusted or mismatched certificate gives the client
# a 502 with an OCI body, the error log says why, and nothing reaches the
# registry.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Digest::SHA qw(sha256_hex);
use RegistryTest;

my $ca = make_ca();
my %reg = (
    'good.test'     => start_registry(tls => make_cert($ca, 'good.test')),
    'bad.test'      => start_registry(tls => make_cert(undef, 'bad.test')),
    'mismatch.test' => start_registry(tls => make_cert($ca, 'other.test')),
);
my $img = build_image(layers => [{ tls => "over TLS\n" }]);
for my $r (values %reg) {
    run_ok('skopeo', '--insecure-policy', 'copy', '--dest-tls-verify=false',
           $img->{ref}, "docker://$r->{host}/library/app:1");
}

# a TLS front that logs the SNI name it was asked for, in front of a
# plain registry
my $plain = start_registry();
run_ok('skopeo', '--insecure-policy', 'copy', '--dest-tls-verify=false',
       $img->{ref}, "docker://$plain->{host}/library/app:1");
my $digest = upstream_digest($plain, 'library/app', '1');    # same image
my $fport = free_port();
my $sni_cert = make_cert($ca, 'sni.test');
my $front = start_nginx(plain => 1, ports => [$fport], http => <<"EOF");
    log_format sni '\$ssl_server_name \$request';
    server {
        listen 127.0.0.1:$fport ssl;
        ssl_certificate $sni_cert->[0];
        ssl_certificate_key $sni_cert->[1];
        access_log \@DIR\@/sni.log sni;
        location / { proxy_pass $plain->{url}; }
    }
EOF

my $upstreams = join '', map {
    "    upstream $_ { server 127.0.0.1:$reg{$_}{port}; }\n"
    . "    registry $_ https://$_;\n"
} sort keys %reg;
my $http = <<"EOF";
$upstreams
    upstream sni.test { server 127.0.0.1:$fport; }
    registry sni.test https://sni.test;
    server {
        listen 127.0.0.1:\@PORT\@;
        registry_default good.test;
        include $ROOT/registry_params;
    }
EOF

# the operator's bundle: the system's plus the test CA
my $port = free_port();
(my $h1 = $http) =~ s/\@PORT\@/$port/;
my $ng = start_nginx(ports => [$port], http => $h1,
                     ca => slurp($SYSTEM_CA) . slurp($ca->{crt}));

# the system bundle alone
my $port_sys = free_port();
(my $h2 = $http) =~ s/\@PORT\@/$port_sys/;
my $ng_sys = start_nginx(ports => [$port_sys], http => $h2);

my @accept = ('Accept: application/vnd.oci.image.manifest.v1+json');

my $r = http_get($port, '/v2/good.test/library/app/manifests/1',
                 headers => \@accept);
is($r->{status}, 200, 'trusted certificate: 200');
is($r->{headers}{'docker-content-digest'}[0], $digest, '... the manifest');

my $out = test_dir() . '/pull';
my $log = run_out('skopeo', '--insecure-policy', 'copy',
                  '--src-tls-verify=false',
                  "docker://127.0.0.1:$port/good.test/library/app:1",
                  "dir:$out");
is($?, 0, 'skopeo pull through the mirror from a TLS registry') or diag $log;
is('sha256:' . sha256_hex(slurp("$out/manifest.json")), $digest,
   '... upstream digest');

$r = http_get($port, '/v2/sni.test/library/app/manifests/1',
              headers => \@accept);
is($r->{status}, 200, 'through the TLS front');
ok(eventually(sub { grep { m{^sni\.test HEAD /v2/library/app/manifests/1 } }
                   file_lines("$front->{dir}/sni.log") }),
   'SNI was sni.test');

my $before = scalar registry_requests($reg{'good.test'});

for my $case (['bad.test', qr/upstream SSL certificate verify error/],
              ['mismatch.test',
               qr/upstream SSL certificate does not match "mismatch\.test"/])
{
    my ($name, $why) = @$case;
    my $seen = scalar registry_requests($reg{$name});
    $r = http_get($port, "/v2/$name/library/app/manifests/1",
                  headers => \@accept);
    is($r->{status}, 502, "$name: 502");
    is(eval { $r->{json}{errors}[0]{code} }, 'UNAVAILABLE',
       "$name: OCI body");
    like(slurp($ng->{error_log}), $why, "$name: the error log says why");
    is(scalar registry_requests($reg{$name}), $seen,
       "$name: no request reached the registry");
}

$r = http_get($port_sys, '/v2/good.test/library/app/manifests/1',
              headers => \@accept);
is($r->{status}, 502, 'without the operator CA: the test CA is not trusted');
like(slurp($ng_sys->{error_log}), qr/upstream SSL certificate verify error/,
     '... and the error log says why');
is(scalar registry_requests($reg{'good.test'}), $before,
   'the good registry saw nothing of the refused requests');

done_testing();
