#!/usr/bin/perl

# Tags, resolved by HEAD and served by digest (README.md, Tags).  Every
# manifest the mirror serves lives in the cache under its digest, however
# it was asked for; a tag costs the upstream one HEAD per validity period
# and no GET once its digest is cached; a check that fails or hangs (the
# registry gone, silent, or its name not resolving) serves the last known
# digest, stale; multi-platform images work by tag and by digest, with
# the upstream stopped too; immutable tags keep their first digest.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Digest::SHA qw(sha256_hex);
use JSON::PP;
use Time::HiRes qw(time);
use RegistryTest;

my $reg = start_registry();
my $img_a = build_image(layers => [{ a => "tags a\n" }]);
my $img_b = build_image(layers => [{ b => "tags b\n" }]);
push_image($img_a, $reg, 'library/app:v1');
push_image($img_a, $reg, 'library/app:v2');
push_image($img_a, $reg, 'library/other:v1');
push_image($img_a, $reg, 'library/app:v1.0.0');
push_image(build_index_image(), $reg, 'library/multi:oci', all => 1);
run_ok('skopeo', '--insecure-policy', 'copy', '--all', '--format', 'v2s2',
       '--src-tls-verify=false', '--dest-tls-verify=false',
       "docker://$reg->{host}/library/multi:oci",
       "docker://$reg->{host}/library/multi:docker");
my $dig_a = upstream_digest($reg, 'library/app', 'v1');

# The mirror's upstream is a plain nginx in front of the registry that logs
# what it is asked, so that its port can be taken over by a failing one.
my $fport = free_port();
my $front_http = <<"EOF";
    log_format front '\$request_method \$uri \$status';
    server {
        listen 127.0.0.1:$fport;
        access_log \@DIR\@/front.log front;
        location / { proxy_pass $reg->{url}; }
    }
EOF
my $front = start_nginx(ports => [$fport], http => $front_http, plain => 1);
my @fronts = ($front);

# A registry whose HEAD answers name no digest (the front hides it).
# One worker: its log's order is the order of the requests (with two, the
# GET's worker could write its line before the HEAD's).
my $nport = free_port();
my $nodigest = start_nginx(ports => [$nport], plain => 1, workers => 1,
                           http => <<"EOF");
    log_format front '\$request_method \$request_uri \$status';
    server {
        listen 127.0.0.1:$nport;
        access_log \@DIR\@/front.log front;
        location / {
            if (\$request_method = HEAD) { rewrite ^ /_head\$uri last; }
            proxy_pass $reg->{url};
        }
        location /_head/ {
            internal;
            rewrite ^/_head(/.*)\$ \$1 break;
            proxy_pass $reg->{url};
            proxy_hide_header Docker-Content-Digest;
        }
    }
EOF

my $dns = start_dns('reg.test' => '127.0.0.1');

my $port = free_port();
my $ng_http = <<"EOF";
    log_format tags '\$registry_cache_status \$registry_digest \$request';
    resolver 127.0.0.1:$dns valid=1s ipv6=off;
    registry docker.io    http://127.0.0.1:$fport;
    registry dns.test     http://reg.test:$fport;
    registry nodigest.test http://127.0.0.1:$nport;
    registry_tag_valid 1s;
    registry_tag_check_timeout 1s;
    registry_immutable_tags ^v[0-9]+\\.[0-9]+\\.[0-9]+\$;
    registry_tag_history \@DIR\@/tag-history;
    server {
        listen 127.0.0.1:$port;
        access_log \@DIR\@/tags.log tags;
        registry_default docker.io;
        proxy_read_timeout 60s;
        include $ROOT/registry_params;
    }
EOF
my $ng = start_nginx(ports => [$port], http => $ng_http);

my @all = map { "Accept: $_" }
    'application/vnd.oci.image.index.v1+json',
    'application/vnd.oci.image.manifest.v1+json',
    'application/vnd.docker.distribution.manifest.list.v2+json',
    'application/vnd.docker.distribution.manifest.v2+json';
my $oci_only = 'Accept: application/vnd.oci.image.manifest.v1+json';

sub get { return http_get($port, @_) }
sub status { return ($_[0]{headers}{'x-registry-cache'} // ['-'])->[0] }
sub digest_of { return ($_[0]{headers}{'docker-content-digest'} // [''])->[0] }
sub front_lines { return map { file_lines("$_->{dir}/front.log") } @fronts }
sub front_count {
    my ($re) = @_;
    return scalar grep { /$re/ } front_lines();
}
sub keys_now { return keys %{ cache_entries("$ng->{dir}/cache") } }
sub next_second { wait_until(int(time) + 1.05) }
sub restart_front {
    $front = start_nginx(ports => [$fport], http => $front_http, plain => 1);
    push @fronts, $front;
}
sub pull { return skopeo_pull($port, @_) }

# --- 1. kept under its digest, however it was asked for ---------------------

my ($ok, $log, $out) = pull('docker.io/library/app:v1');
ok($ok, 'skopeo pulls a single-arch image by tag only') or diag $log;
is('sha256:' . sha256_hex(slurp("$out/manifest.json")), $dig_a,
   '... the upstream\'s manifest');
ok((grep { $_ eq "* manifest $dig_a" } keys_now()),
   'the manifest is in the cache under its digest');
ok(!(grep { /manifest.*\bv1\b/ } keys_now()), '... and under no tag key');

stop($front->{pid});
($ok, $log) = pull("docker.io/library/app\@$dig_a");
ok($ok, 'upstream stopped: the same image pulls by digest') or diag $log;
my $r = get("/v2/library/app/manifests/$dig_a", headers => \@all);
is(status($r), 'HIT', '... a cache hit');
restart_front();

my $get_tag = qr{^GET /v2/library/\w+/manifests/v};
my $get_a = qr{^GET /v2/library/\w+/manifests/\Q$dig_a\E };
$r = get('/v2/library/app/manifests/v2', headers => \@all);
is(digest_of($r), $dig_a, 'another tag of the same image: the same digest');
is(status($r), 'HIT', '... served from the digest\'s entry');
$r = get('/v2/library/other/manifests/v1', headers => [$oci_only]);
is(digest_of($r), $dig_a, 'another repository, another Accept list: the '
   . 'same digest');
is(status($r), 'HIT', '... served from the digest\'s entry');
is(at_least(1, sub { front_count($get_a) }), 1,
   'the manifest\'s bytes were fetched upstream once, by digest');
is(front_count($get_tag), 0, '... and never by tag');
like((grep { m{GET /v2/library/other/manifests/v1 } }
      file_lines("$ng->{dir}/tags.log"))[-1] // '',
     qr{^HIT \Q$dig_a\E GET}, '$registry_digest logs the digest served');

# a registry whose HEAD names no digest: fetched by tag, digest computed
next_second();
$r = get('/v2/nodigest.test/library/app/manifests/v2', headers => \@all);
is($r->{status}, 200, 'no digest on HEAD: the tag is fetched');
is('sha256:' . sha256_hex($r->{body}), $dig_a, '... the manifest');
my $nlog = "$nodigest->{dir}/front.log";
is(at_least(2, sub { scalar file_lines($nlog) }), 2,
   '... one HEAD and one GET upstream');
like(join(' | ', file_lines($nlog)),
     qr{^HEAD /v2/library/app/manifests/v2 200 \| GET /v2/library/app/manifests/v2 200$},
     '... the GET by tag after the HEAD');
like((file_lines("$ng->{dir}/tags.log"))[-1], qr{^MISS \Q$dig_a\E GET},
     '... its digest computed');
$r = get('/v2/nodigest.test/library/app/manifests/v2', headers => \@all);
is(digest_of($r), $dig_a, 'then the tag is served by that digest');
is(status($r), 'HIT', '... from its entry');
is(scalar file_lines($nlog), 2, '... without asking upstream again');

# --- 2. one HEAD per validity period, no GET ---------------------------------

my @head_v1 = (qr{^HEAD /v2/library/app/manifests/v1 });
my $heads = front_count($head_v1[0]);
my $gets = front_count(qr{^GET /v2/library/app/manifests/});
next_second();
my $t0 = time;
my ($pulls, $good) = (0, 0);
my %seconds;
while ($pulls < 50) {
    $seconds{ int time } = 1;
    my $h = get('/v2/library/app/manifests/v1', method => 'HEAD',
                headers => \@all);
    my $g = get('/v2/library/app/manifests/v1', headers => \@all);
    $pulls++;
    $good++ if $h->{status} == 200 && $g->{status} == 200
               && digest_of($h) eq $dig_a && digest_of($g) eq $dig_a
               && 'sha256:' . sha256_hex($g->{body}) eq $dig_a;
    wait_until($t0 + $pulls * 0.12);
}
my $periods = keys %seconds;
is($good, 50, '50 pulls (HEAD and GET of the tag)');
cmp_ok($periods, '>=', 5, "... spread over $periods validity periods");
my $new_heads = at_least($heads + $periods - 1,
                         sub { front_count($head_v1[0]) }) - $heads;
cmp_ok($new_heads, '<=', $periods, "... $new_heads HEADs upstream: at most "
       . 'one a validity period');
cmp_ok($new_heads, '>=', $periods - 1, '... the tag was checked each period');
is(front_count(qr{^GET /v2/library/app/manifests/}) - $gets, 0,
   '... and no manifest GET');

push_image($img_b, $reg, 'library/app:v1');
my $dig_b = upstream_digest($reg, 'library/app', 'v1');
isnt($dig_b, $dig_a, 'v1 pushed anew upstream');
next_second();
$r = get('/v2/library/app/manifests/v1', method => 'HEAD', headers => \@all);
is(digest_of($r), $dig_b, 'past validity, a HEAD names the new digest');
$r = get('/v2/library/app/manifests/v1', headers => \@all);
is(digest_of($r), $dig_b, 'the GET gets the new manifest');
is('sha256:' . sha256_hex($r->{body}), $dig_b, '... its bytes');
is(at_least(1, sub {
       front_count(qr{^GET /v2/library/app/manifests/\Q$dig_b\E }) }), 1,
   '... fetched once, by digest');

# --- 3. a check that fails or hangs: the last known digest, stale ----------

next_second();
$heads = front_count($head_v1[0]);
$r = get('/v2/library/app/manifests/v1', method => 'HEAD', headers => \@all);
is(status($r), 'REVALIDATED', 'a client\'s HEAD on an expired tag');
is(at_least($heads + 1, sub { front_count($head_v1[0]) }) - $heads, 1,
   '... one HEAD upstream');

stop($front->{pid});
next_second();
$r = get('/v2/library/app/manifests/v1', headers => \@all);
is($r->{status}, 200, 'upstream refusing connections: 200');
is(status($r), 'STALE', '... STALE');
is(digest_of($r), $dig_b, '... the last known digest');
$r = get('/v2/library/app/manifests/v1', method => 'HEAD', headers => \@all);
is(status($r), 'STALE', '... a HEAD too');

# accepts and never answers: the check is given up after 1 s
my $hang = start_silent($fport);
ok($hang, 'silent upstream listening');
next_second();
my $t1 = time;
$r = get('/v2/library/app/manifests/v1', headers => \@all);
my $took = time - $t1;
is($r->{status}, 200, 'silent upstream: 200');
is(status($r), 'STALE', '... STALE');
is(digest_of($r), $dig_b, '... the last known digest');
like(slurp($ng->{error_log}),
     qr/tag check of "docker\.io" repository "library\/app" tag "v1" timed out \(status 0\); serving the last known digest \Q$dig_b\E/,
     '... given up by registry_tag_check_timeout, not proxy_read_timeout');
diag(sprintf 'silent upstream: answered after %.1f s '
     . '(registry_tag_check_timeout 1s, proxy_read_timeout 60s)', $took);
stop($hang);
restart_front();

# a name that does not resolve: its DNS server stopped
$r = get('/v2/dns.test/library/app/manifests/v2', headers => \@all);
is(digest_of($r), $dig_a, 'a registry by name: served while its DNS is up');
kill 'TERM', grep { $_ } map { /^\s*(\d+)/ ? $1 : () }
    split /\n/, run_out('pgrep', '-f', "dnsmasq.*--port=$dns");
eventually(sub { !run_out('pgrep', '-f', "dnsmasq.*--port=$dns") });
wait_until(time + 1.1);     # the resolver's valid=1s, the tag's 1s
next_second();
$t1 = time;
$r = get('/v2/dns.test/library/app/manifests/v2', headers => \@all);
$took = time - $t1;
is($r->{status}, 200, 'its DNS server stopped: 200');
is(status($r), 'STALE', '... STALE');
is(digest_of($r), $dig_a, '... the last known digest');
like(slurp($ng->{error_log}), qr/tag check of "dns\.test"/,
     '... the error log says why');
diag(sprintf 'name not resolving: answered after %.1f s', $took);

# --- 4. multi-platform images --------------------------------------------------

my %index_type = (
    oci => 'application/vnd.oci.image.index.v1+json',
    docker => 'application/vnd.docker.distribution.manifest.list.v2+json',
);
my %platforms;
for my $tag (qw(oci docker)) {
    $r = get("/v2/library/multi/manifests/$tag", headers => \@all);
    is($r->{headers}{'content-type'}[0], $index_type{$tag},
       "$tag index by tag: its media type");
    my $index = eval { decode_json($r->{body}) } // {};
    is(scalar @{ $index->{manifests} // [] }, 2, '... two platforms');
    for my $m (@{ $index->{manifests} // [] }) {
        my $p = get("/v2/library/multi/manifests/$m->{digest}",
                    headers => \@all);
        ok($p->{status} == 200
           && 'sha256:' . sha256_hex($p->{body}) eq $m->{digest}
           && $p->{headers}{'content-type'}[0] eq $m->{mediaType},
           "... $m->{platform}{architecture} by digest, as $m->{mediaType}");
    }
    $platforms{$tag} = $index;
}
my $amd64 = (grep { $_->{platform}{architecture} eq 'amd64' }
             @{ $platforms{docker}{manifests} })[0]{digest};
my $docker_v2 = 'application/vnd.docker.distribution.manifest.v2+json';
$r = get('/v2/library/multi/manifests/docker',
         headers => ["Accept: $docker_v2"]);
is($r->{headers}{'content-type'}[0], $docker_v2,
   'a client that reads no lists: a single manifest');
is(digest_of($r), $amd64, '... linux/amd64\'s, as the registry chose');

stop($front->{pid});
next_second();
for my $tag (qw(oci docker)) {
    $r = get("/v2/library/multi/manifests/$tag", headers => \@all);
    is($r->{status}, 200, "upstream stopped: $tag index by tag");
    is($r->{headers}{'content-type'}[0], $index_type{$tag},
       '... its media type');
    for my $m (@{ $platforms{$tag}{manifests} }) {
        my $p = get("/v2/library/multi/manifests/$m->{digest}",
                    headers => \@all);
        ok($p->{status} == 200 && status($p) eq 'HIT'
           && $p->{headers}{'content-type'}[0] eq $m->{mediaType},
           "... $m->{platform}{architecture} by digest, from the cache");
    }
}
$r = get('/v2/library/multi/manifests/docker',
         headers => ["Accept: $docker_v2"]);
is($r->{headers}{'content-type'}[0], $docker_v2,
   '... and the single manifest for a client that reads no lists');
restart_front();

# --- 6. immutable tags -----------------------------------------------------------

$r = get('/v2/library/app/manifests/v1.0.0', headers => \@all);
is(digest_of($r), $dig_a, 'v1.0.0 (immutable here) pulled');
push_image($img_b, $reg, 'library/app:v1.0.0');
is(upstream_digest($reg, 'library/app', 'v1.0.0'), $dig_b,
   'v1.0.0 overwritten upstream');
next_second();
$heads = front_count(qr{^HEAD /v2/library/app/manifests/v1\.0\.0 });
$r = get('/v2/library/app/manifests/v1.0.0', headers => \@all);
is(digest_of($r), $dig_a, 'past validity: still the first digest');
is('sha256:' . sha256_hex($r->{body}), $dig_a, '... its bytes');
is(at_least($heads + 1, sub {
       front_count(qr{^HEAD /v2/library/app/manifests/v1\.0\.0 }) })
   - $heads, 1,
   '... the tag was checked');
like(slurp($ng->{error_log}),
     qr/immutable tag "v1\.0\.0" of "docker\.io" repository "library\/app" is \Q$dig_b\E upstream, still served as \Q$dig_a\E/,
     '... the change is logged with both digests');
$r = get('/v2/library/app/manifests/v1', headers => \@all);
is(digest_of($r), $dig_b, 'a tag not matching the pattern follows upstream');

# the pinned digest gone from the cache and from the registry
my $e = cache_entries("$ng->{dir}/cache");
unlink map { $e->{$_}[0] } grep { /\Q$dig_a\E/ } keys %$e;
run_ok('curl', '-sf', '-X', 'DELETE',
       "$reg->{url}/v2/library/app/manifests/$dig_a");
next_second();
$r = get('/v2/library/app/manifests/v1.0.0', headers => \@all);
is($r->{status}, 404, 'the pinned digest can no longer be had: 404');
is(eval { $r->{json}{errors}[0]{code} }, 'MANIFEST_UNKNOWN',
   '... MANIFEST_UNKNOWN');
like(slurp($ng->{error_log}),
     qr/immutable tag "v1\.0\.0" of "docker\.io" repository "library\/app" is pinned at \Q$dig_a\E, which is neither cached nor upstream any more/,
     '... and the log says why');

# --- a restart: the map is gone, the history remembers ----------------------

stop($front->{pid});
my $errors = slurp($ng->{error_log});
stop($ng->{pid});
$ng = start_nginx(ports => [$port], dir => $ng->{dir}, http => $ng_http);
$r = get('/v2/library/app/manifests/v1', headers => \@all);
is($r->{status}, 200, 'restarted with the upstream stopped: the tag served');
is(status($r), 'STALE', '... STALE');
is(digest_of($r), $dig_b, '... the last digest served, from the history');
is('sha256:' . sha256_hex($r->{body}), $dig_b, '... from the cache');

unlike($errors . slurp($ng->{error_log}),
       qr/\[(?:alert|crit|emerg)\]|exited on signal/,
       'no worker crashed, nothing critical logged');

done_testing();
