#!/usr/bin/perl

# Routing: path prefix, containerd's ?ns=, host alias and default registry,
# in that order of precedence; Docker Hub's "library/"; a registry URL with
# a path prefix (a mirror in front of a mirror); registries that are not
# configured are refused and never contacted.  Loops: every request sent
# upstream carries CDN-Loop with the client's values and the node's id; a
# mirror in front of itself is refused after one hop (508), one in front
# of another mirror works.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use RegistryTest;

my $hub = start_registry();
my $gh = start_registry();

# Two different images, so each digest says which upstream answered.
my $img_a = build_image(layers => [{ a => "hub image\n" }]);
my $img_b = build_image(layers => [{ b => "ghcr image\n" }]);
push_image($img_a, $hub, 'library/app:1.0');
push_image($img_b, $gh, 'org/app:1.0');
push_image($img_b, $gh, 'solo:1.0');

my $dig_a = upstream_digest($hub, 'library/app', '1.0');
my $dig_b = upstream_digest($gh, 'org/app', '1.0');
ok($dig_a && $dig_b && $dig_a ne $dig_b, 'two upstreams, two digests');

my $port = free_port();
my $ng = start_nginx(ports => [$port, "127.0.0.2:$port"], http => <<"EOF");
    log_format up '\$upstream_addr \$request "\$http_cdn_loop"';
    access_log \@DIR\@/up.log up;

    registry docker.io  $hub->{url};
    registry ghcr.io    $gh->{url};
    registry loop.io    http://127.0.0.1:$port/loop.io;

    server {
        listen 127.0.0.1:$port;
        listen 127.0.0.2:$port;
        registry_default docker.io;
        registry_alias 127.0.0.2 ghcr.io;
        include $ROOT/registry_params;
    }
EOF

my @oci = ('Accept: application/vnd.oci.image.manifest.v1+json',
           'Accept: application/vnd.docker.distribution.manifest.v2+json');

sub digest_of {
    my ($path, %o) = @_;
    my $r = http_get($port, $path, headers => \@oci, %o);
    return ($r->{headers}{'docker-content-digest'} // [''])->[0], $r;
}

my ($d, $r);

($d) = digest_of('/v2/docker.io/library/app/manifests/1.0');
is($d, $dig_a, 'path prefix docker.io');

($d) = digest_of('/v2/ghcr.io/org/app/manifests/1.0');
is($d, $dig_b, 'path prefix ghcr.io');

($d) = digest_of('/v2/docker.io/app/manifests/1.0');
is($d, $dig_a, 'Docker Hub single name gets library/');
ok(eventually(sub { grep { $_ eq 'HEAD /v2/library/app/manifests/1.0' }
                   registry_requests($hub) }),
   'upstream asked for library/app');

($d) = digest_of('/v2/ghcr.io/solo/manifests/1.0');
is($d, $dig_b, 'other registries keep single names as they are');

($d, $r) = digest_of('/v2/org/app/manifests/1.0?ns=ghcr.io');
is($d, $dig_b, '?ns= selects the registry');
is($r->{headers}{'oci-namespace'}[0], 'ghcr.io', 'ns echoed in OCI-Namespace');

($d, $r) = digest_of('/v2/library/app/manifests/1.0');
is($d, $dig_a, 'bare path goes to the default registry');
ok(!$r->{headers}{'oci-namespace'}, 'no OCI-Namespace without ns');

($d) = digest_of('/v2/org/app/manifests/1.0', host => '127.0.0.2');
is($d, $dig_b, 'host alias 127.0.0.2 -> ghcr.io');

($d) = digest_of('/v2/org/app/manifests/1.0', host => '127.0.0.2',
                 host_header => 'other.name');
ok(!$d, 'alias follows the Host header, not the address');

# precedence: prefix > ns > alias > default
($d, $r) = digest_of('/v2/docker.io/library/app/manifests/1.0?ns=ghcr.io',
                     host => '127.0.0.2');
is($d, $dig_a, 'path prefix wins over ns and alias');
ok(!$r->{headers}{'oci-namespace'}, 'unused ns is not echoed');

($d) = digest_of('/v2/library/app/manifests/1.0?ns=docker.io',
                 host => '127.0.0.2');
is($d, $dig_a, 'ns wins over host alias');

($d) = digest_of('/v2/ORG/app/manifests/1.0?ns=GHCR.IO');
ok(!$d, 'upper case in name refused even with ns');

($d) = digest_of('/v2/org/app/manifests/1.0?ns=GHCR.io');
is($d, $dig_b, 'registry names match without regard to case');

# a registry URL with a path prefix: another mirror in front of this one
my $fport = free_port();
start_nginx(ports => [$fport], http => <<"EOF2");
    registry_node_id mirror-b;
    registry chained.io http://127.0.0.1:$port/docker.io;
    server {
        listen 127.0.0.1:$fport;
        registry_default chained.io;
        include $ROOT/registry_params;
    }
EOF2

sub front_get {
    my ($path, @h) = @_;
    return http_get($fport, $path, headers => [@oci, @h]);
}

$r = front_get('/v2/chained.io/library/app/manifests/1.0');
is($r->{headers}{'docker-content-digest'}[0], $dig_a,
   'registry URL with a path prefix: a mirror in front of another');
ok(eventually(sub { grep { m{ HEAD /v2/docker\.io/library/app/manifests/1\.0 .*"mirror-b"$} }
                   file_lines("$ng->{dir}/up.log") }),
   'prefix inserted after /v2/, CDN-Loop with the front mirror\'s id');

$r = front_get('/v2/library/app/tags/list', 'CDN-Loop: foo, bar;x=1');
is($r->{status}, 200, 'a client\'s own CDN-Loop: passed');
ok(eventually(sub { grep { m{ GET /v2/docker\.io/library/app/tags/list .*"foo, bar;x=1, mirror-b"$} }
                   file_lines("$ng->{dir}/up.log") }),
   '... on upstream, with the id after it');

$r = front_get('/v2/library/app/manifests/1.0',
               'CDN-Loop: x;p="mirror-b, y"');
is($r->{status}, 200, 'the id inside a quoted parameter: not a loop');

# (tags nothing has cached, so that anything let through goes upstream)
my $seen = () = file_lines("$ng->{dir}/up.log");
my $i = 0;
for my $loop ('mirror-b', 'other, MIRROR-B;p=1', 'a, b', 'a, mirror-b')
{
    my @h = $loop eq 'a, b' ? ('CDN-Loop: a', 'CDN-Loop: mirror-b')
                             : ("CDN-Loop: $loop");
    $r = front_get('/v2/library/app/manifests/loop-' . ++$i, @h);
    is($r->{status}, 508, join('; ', @h) . ": 508, this node's id");
    is(eval { $r->{json}{errors}[0]{code} }, 'UNAVAILABLE', '... OCI body');
}
$r = front_get('/v2/', 'CDN-Loop: mirror-b');
is($r->{status}, 508, '... before anything else, even /v2/');
is(scalar(() = file_lines("$ng->{dir}/up.log")), $seen,
   '... and nothing went upstream');

# this mirror in front of itself: refused at the second visit.  A tag is
# checked with a HEAD, and the refusal, which a HEAD answers without its
# body, is fetched with a GET for the client: the request and two copies.
my $loop_re = qr{ (?:GET|HEAD) /v2/loop\.io/};
$seen = grep { /$loop_re/ } file_lines("$ng->{dir}/up.log");
$r = http_get($port, '/v2/loop.io/library/app/manifests/1.0', headers => \@oci);
is($r->{status}, 508, 'a mirror in front of itself: 508');
is(eval { $r->{json}{errors}[0]{code} }, 'UNAVAILABLE', '... OCI body');
is(at_least($seen + 3, sub { scalar grep { /$loop_re/ }
                             file_lines("$ng->{dir}/up.log") }),
   $seen + 3, '... after one hop: the request, its check and its fetch');

# a client's CDN-Loop that ends inside a quoted string would swallow the
# id appended after it: such a line is not passed on
for my $bad ('foo; a="', 'foo; a="x\\') {
    $seen = grep { /$loop_re/ } file_lines("$ng->{dir}/up.log");
    $r = http_get($port, '/v2/loop.io/library/app/manifests/1.0',
                  headers => [@oci, "CDN-Loop: $bad",
                              'Authorization: Basic dTpw']);
    is($r->{status}, 508, "client's CDN-Loop '$bad': 508 all the same");
    is(at_least($seen + 3, sub { scalar grep { /$loop_re/ }
                                 file_lines("$ng->{dir}/up.log") }),
       $seen + 3, '... after one hop');
}

# unknown registries: 404 NAME_UNKNOWN, nothing contacted
my @before = (scalar registry_requests($hub), scalar registry_requests($gh));
my $lines = () = file_lines("$ng->{dir}/up.log");

for my $path ('/v2/evil.example.com/library/app/manifests/1.0',
              '/v2/localhost/app/manifests/1.0',
              '/v2/localhost:5000/app/manifests/1.0',
              "/v2/127.0.0.1:$hub->{port}/library/app/manifests/1.0",
              '/v2/app/manifests/1.0?ns=evil.example.com',
              '/v2/evil.example.com/app/blobs/sha256:' . ('a' x 64))
{
    $r = http_get($port, $path);
    is($r->{status}, 404, "$path: 404");
    is($r->{json}{errors}[0]{code}, 'NAME_UNKNOWN', "$path: NAME_UNKNOWN");
}

is_deeply([scalar registry_requests($hub), scalar registry_requests($gh)],
          \@before, 'no upstream saw a request for an unknown registry');
my @new = (file_lines("$ng->{dir}/up.log"))[$lines .. $lines + 5];
is(scalar(grep { /^- / } @new), 6, 'nginx contacted no upstream for them');

# a server without a default registry routes only by prefix, ns or alias
my $port2 = free_port();
start_nginx(ports => [$port2], http => <<"EOF");
    registry docker.io $hub->{url};
    server {
        listen 127.0.0.1:$port2;
        include $ROOT/registry_params;
    }
EOF
$r = http_get($port2, '/v2/library/app/manifests/1.0');
is($r->{status}, 404, 'no default registry: 404');
is($r->{json}{errors}[0]{code}, 'NAME_UNKNOWN', 'no default: NAME_UNKNOWN');
$r = http_get($port2, '/v2/docker.io/library/app/manifests/1.0',
              headers => \@oci);
is($r->{headers}{'docker-content-digest'}[0], $dig_a, 'prefix still routes');

# configuration errors fail nginx -t
my $bad = test_dir() . '/bad.conf';
for my $case (['registry_default nowhere.io;', 'registry_default'],
              ['registry_alias x.example nowhere.io;', 'registry_alias'],
              ['', 'invalid registry URL', 'registry q.io ftp://x;'],
              ['', 'is duplicate',
               "registry docker.io $hub->{url};"],
              ['', 'must be a token', 'registry_node_id "a b";'],
              ['', 'must be a token', 'registry_node_id a,b;'])
{
    my ($srv, $want, $http) = @$case;
    $http //= '';
    my $conf = nginx_conf("registry docker.io $hub->{url};\n$http\n"
                          . "server { listen 127.0.0.1:1; $srv }");
    $conf =~ s/\@DIR\@/${\ test_dir()}/g;
    spew($bad, $conf);
    my $out = run_out($NGINX, '-t', '-c', $bad, '-e', '/dev/null');
    like($out, qr/\Q$want\E/, "nginx -t refuses: $want");
}

done_testing();
